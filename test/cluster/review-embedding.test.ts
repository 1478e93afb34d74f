/**
 * Review findings on the embedding layer, each a scenario a user of the cluster can hit:
 * a client whose first write never reached the log, a call waiting for an in-flight slot,
 * a watch of another thread's endpoint whose node crashes, a watch no node can resume,
 * and restart racing restart or close. Each test starts real worker threads (the build)
 * and bounds every wait, so a hang shows as a failed assertion, not a stuck suite.
 */

import type { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { connectEndpoint, createCluster, ErrorCode, type Cluster } from '../../src/index.ts';
import { afterTest, FAST, leaderOf, start, stopAfterEach, tempDir } from './helpers.ts';

stopAfterEach();

/** Settles with the promise's outcome, or with 'pending' after `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<{ value: T } | { error: unknown } | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'pending'>((r) => (timer = setTimeout(() => r('pending'), ms)));
  try {
    return await Promise.race([p.then((value) => ({ value }), (error: unknown) => ({ error })), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Records every worker the cluster starts (through its private startWorker), so a test can check that each one stopped. */
function spyWorkers(cluster: Cluster): Worker[] {
  const workers: Worker[] = [];
  const c = cluster as unknown as { startWorker(id: number, voters: readonly number[], beforeRun: () => void): Promise<void>; slots: Map<number, { worker: Worker | undefined }> };
  const original = c.startWorker.bind(c);
  c.startWorker = (id, voters, beforeRun) => {
    const p = original(id, voters, beforeRun);
    const w = c.slots.get(id)!.worker!;
    workers.push(w);
    return p;
  };
  afterTest(async () => {
    await Promise.all(workers.map((w) => w.terminate().catch(() => undefined)));
  });
  return workers;
}

/** Whether `w` has exited (its 'exit' event has fired) within `ms`. */
function exitsWithin(w: Worker, ms: number): Promise<boolean> {
  if (w.threadId === -1) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    w.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe('review: sessions', () => {
  it('a first write refused before it reached the log (aborted) does not break the next write', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const aborted = AbortSignal.abort();
    await expect(kv.put('a', '1', { signal: aborted })).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    // The session's seq 1 never reached the state machine; its seq 2 is refused there as
    // 'expired' (no session, seq > 1) and the client reports SESSION_EXPIRED.
    await expect(kv.put('a', '2')).resolves.toBeUndefined();
    expect(new TextDecoder().decode(await kv.get('a'))).toBe('2');
  });

  it('a first write refused with NOT_LEADER by a pinned follower does not break the next write', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const leader = await leaderOf(cluster);
    const follower = cluster.nodeIds().find((id) => id !== leader)!;
    await expect(kv.put('b', '1', { nodeId: follower })).rejects.toMatchObject({ code: ErrorCode.NOT_LEADER });
    await expect(kv.put('b', '2')).resolves.toBeUndefined();
    // Every later write of this client goes through the same broken session.
    await expect(kv.put('b', '3')).resolves.toBeUndefined();
  });
});

describe('review: in-flight slots', () => {
  it('a call waiting for an in-flight slot gives up at its own timeoutMs', async () => {
    const cluster = await start({ requestsInFlightMax: 1 });
    const kv = cluster.client();
    await kv.put('warm', 'up');
    const leader = await leaderOf(cluster);
    // No quorum: the put below holds the only slot until its own 3 s timeout.
    for (const id of cluster.nodeIds()) if (id !== leader) await cluster.crash(id);
    const holder = kv.put('x', '1', { timeoutMs: 3_000 }).catch((e: unknown) => e);
    const t0 = performance.now();
    const r = await within(kv.get('x', { consistency: 'stale', timeoutMs: 200 }), 2_500);
    const elapsedMs = performance.now() - t0;
    await holder;
    // A stale read could be answered by the live node at once; at the latest it must fail
    // with TIMEOUT near 200 ms, not wait until another call frees the slot.
    expect(r).not.toBe('pending');
    expect(elapsedMs).toBeLessThan(1_000);
  });

  it('a call waiting for an in-flight slot is aborted by its signal', async () => {
    const cluster = await start({ requestsInFlightMax: 1 });
    const kv = cluster.client();
    await kv.put('warm', 'up');
    const leader = await leaderOf(cluster);
    for (const id of cluster.nodeIds()) if (id !== leader) await cluster.crash(id);
    const holder = kv.put('x', '1', { timeoutMs: 3_000 }).catch((e: unknown) => e);
    const ac = new AbortController();
    const waiting = kv.get('x', { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    const r = await within(waiting, 1_000);
    await holder;
    expect(r).not.toBe('pending');
    expect(r).toMatchObject({ error: { code: ErrorCode.ABORTED } });
  });
});

describe('review: watches', () => {
  it("a watch through another thread's endpoint moves on when its node crashes", async () => {
    const cluster = await start();
    const kv = cluster.client();
    await kv.put('warm', 'up');
    const remote = connectEndpoint(await cluster.connectEndpoint());
    afterTest(() => remote.close());
    const rkv = remote.client();
    // The remote client learns the leader; its watch then goes to the leader.
    await rkv.put('w/0', 'a');
    const leader = await leaderOf(cluster);
    const watch = rkv.watch('w/');
    afterTest(async () => {
      await watch.return!();
    });
    await rkv.put('w/1', 'b');
    const first = await within(watch.next(), 5_000);
    expect(first).toMatchObject({ value: { value: { index: expect.any(Number) } } });
    await cluster.crash(leader);
    await kv.put('w/2', 'c', { timeoutMs: 10_000 });
    // Nothing tells a remote endpoint that a node went down except the liveness words, and
    // its sweep looks at them only for request attempts, not for watches: the watch stays
    // registered with the dead node and waits for ever.
    const next = await within(watch.next(), 5_000);
    expect(next).not.toBe('pending');
    expect(next).toMatchObject({ value: { value: { key: new TextEncoder().encode('w/2') } } });
  });

  it('a watch that no node can resume ends with COMPACTED instead of retrying for ever', async () => {
    const dataDir = tempDir();
    const first = await createCluster({ ...FAST, dataDir, snapshotEveryEntries: 5 });
    const kv1 = first.client();
    for (let i = 0; i < 30; i++) await kv1.put(`k${i}`, `${i}`);
    await first.close();
    // Restarted from disk, every node's watch history starts at its snapshot (past index 1).
    const cluster = await start({ dataDir, snapshotEveryEntries: 5 });
    const kv = cluster.client();
    await kv.put('again', 'x');
    const watch = kv.watch('k', { afterIndex: 1 });
    afterTest(async () => {
      await watch.return!();
    });
    // Client.ts retryLater: the back-off is capped at the election timeout, and the give-up
    // test asks for 50 election timeouts, so the watch re-subscribes for ever.
    const r = await within(watch.next(), 15_000);
    expect(r).not.toBe('pending');
    expect(r).toMatchObject({ error: { code: ErrorCode.COMPACTED } });
  });
});

describe('review: restart races', () => {
  it('two restart() calls of one node at once start one worker, not two', async () => {
    const cluster = await start({ dataDir: tempDir() });
    const workers = spyWorkers(cluster);
    await cluster.crash(2);
    await Promise.all([cluster.restart(2), cluster.restart(2)]);
    // Two workers would be two Raft nodes numbered 2 on one WAL directory and one set of rings.
    expect(workers.length).toBe(1);
    await cluster.close();
    for (const w of workers) expect(await exitsWithin(w, 3_000)).toBe(true);
  });

  it('close() while a restart is under way stops the restarted worker too', async () => {
    const cluster = await start({ dataDir: tempDir() });
    const workers = spyWorkers(cluster);
    await cluster.crash(2);
    const restarting = cluster.restart(2).catch((e: unknown) => e);
    await cluster.close();
    await restarting;
    expect(workers.length).toBeLessThanOrEqual(1);
    // close() skipped the node (not alive yet); the worker started anyway and keeps running.
    for (const w of workers) expect(await exitsWithin(w, 3_000)).toBe(true);
  });
});

describe('review: membership churn', () => {
  it('a node added after a removal gets no rings to the removed node (memory stays bounded under replacement)', async () => {
    const cluster = await start();
    const kv = cluster.client();
    await kv.put('a', 'b');
    await cluster.removeNode(3, { timeoutMs: 20_000 });
    const added = await cluster.addNode({ timeoutMs: 20_000 });
    await kv.put('c', 'd');
    const peerRings = (cluster as unknown as { peerRings: Map<string, SharedArrayBuffer> }).peerRings;
    // makeSlot (cluster.ts:387) pairs the new node with every slot, removed ones included,
    // and nothing frees a removed node's rings: each replacement adds 2 rings (8 MiB each by
    // default) per node ever created.
    const toRemoved = [...peerRings.keys()].filter((k) => k.split('>').includes('3'));
    expect(added).toBe(4);
    expect(toRemoved).toEqual([]);
  });
});
