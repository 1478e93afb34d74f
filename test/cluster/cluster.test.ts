/**
 * The embedded cluster on real worker threads: writes and reads under concurrent load,
 * the leader crashing under load (every acknowledged write survives, service resumes), a
 * whole cluster restarted from disk, a partitioned minority leader that must not serve,
 * membership changes under load, watches, and that close() leaves nothing running.
 * The threads run the build (npm test builds first).
 */

import { readdirSync, readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { createCluster, ErrorCode, RingraftError, type KvClient } from '../../src/index.ts';
import { afterTest, corruptFirstSegment, ELECTION_TIMEOUT_MS, FAST, leaderOf, start, stopAfterEach, tempDir } from './helpers.ts';

stopAfterEach();

const text = new TextDecoder();
/** Writers that put `w<i>` keys until stopped; returns the keys acknowledged. */
function writeLoad(
  kv: KvClient,
  writers: number,
  countMax: number,
): { stop: () => void; acked: Map<string, string>; done: Promise<{ acked: Map<string, string>; errors: string[] }> } {
  let stopped = false;
  let next = 0;
  const acked = new Map<string, string>();
  const errors: string[] = [];
  const one = async (): Promise<void> => {
    while (!stopped && next < countMax) {
      const i = next++;
      const key = `w${i}`;
      const value = `v${i}`;
      try {
        await kv.put(key, value, { timeoutMs: 10_000 });
        acked.set(key, value);
      } catch (error) {
        errors.push((error as RingraftError).code ?? String(error));
      }
    }
  };
  const done = Promise.all(Array.from({ length: writers }, one)).then(() => ({ acked, errors }));
  return { stop: () => (stopped = true), acked, done };
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('a 3-node cluster on worker threads', () => {
  it('serves concurrent writes and reads at every consistency, cas and delete', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const n = 500;
    await Promise.all(Array.from({ length: n }, (_, i) => kv.put(`k${i}`, `v${i}`)));
    const reads = await Promise.all(Array.from({ length: n }, (_, i) => kv.get(`k${i}`)));
    expect(reads.map((v) => (v === undefined ? undefined : text.decode(v)))).toEqual(Array.from({ length: n }, (_, i) => `v${i}`));
    expect(text.decode((await kv.get('k7', { consistency: 'lease' }))!)).toBe('v7');
    expect(await kv.get('missing')).toBeUndefined();
    expect(await kv.cas('k1', 'v1', 'x')).toBe(true);
    expect(await kv.cas('k1', 'v1', 'y')).toBe(false);
    expect(await kv.cas('new', undefined, 'z')).toBe(true);
    expect(await kv.delete('k1')).toBe(true);
    expect(await kv.delete('k1')).toBe(false);
    expect(await kv.get('k1')).toBeUndefined();
    // A stale read at any node eventually sees the write.
    const st = await cluster.status();
    for (const node of st.nodes) {
      for (let i = 0; ; i++) {
        const v = await kv.get('new', { consistency: 'stale', nodeId: node.id });
        if (v !== undefined) {
          expect(text.decode(v)).toBe('z');
          break;
        }
        expect(i).toBeLessThan(200);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  });

  it('refuses bad arguments with INVALID_ARGUMENT before sending anything', async () => {
    const cluster = await start({ nodes: 1 });
    const kv = cluster.client();
    await expect(kv.put('', 'x')).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    await expect(kv.put('k', 42 as unknown as string)).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    await expect(kv.get('k', { consistency: 'fast' as 'stale' })).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    await expect(kv.get('k', { timeoutMs: -1 })).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    await expect(kv.put('k', new Uint8Array(2 << 20))).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    await expect(createCluster({ nodes: 0 })).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    await expect(createCluster({ ringBytes: 1 << 20 })).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    await expect(cluster.restart(1)).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
  });

  it('honours AbortSignal and timeouts with typed errors', async () => {
    const cluster = await start({ raft: { checkQuorum: false } });
    const kv = cluster.client();
    await kv.put('a', '1');
    const aborted = AbortSignal.abort();
    await expect(kv.put('a', '2', { signal: aborted })).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    // With every follower cut off (and no check-quorum to make it step down), the leader
    // cannot commit: the call times out.
    const leader = await leaderOf(cluster);
    await cluster.partition([leader]);
    await expect(kv.put('a', '3', { timeoutMs: 300, nodeId: leader })).rejects.toMatchObject({ code: ErrorCode.TIMEOUT });
    const controller = new AbortController();
    const pending = kv.put('a', '4', { signal: controller.signal, nodeId: leader });
    setTimeout(() => controller.abort(), 50);
    await expect(pending).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    await cluster.heal();
  });

  it.each([3, 1])('keeps every acknowledged write when the leader crashes under load, and resumes service within a few election timeouts (%i node threads)', async (nodeThreads) => {
    const cluster = await start({ dataDir: tempDir(), nodeThreads });
    const kv = cluster.client();
    await kv.put('warm', 'up');
    const load = writeLoad(kv, 32, 1_000_000);
    await new Promise((r) => setTimeout(r, 300));
    const leader = await leaderOf(cluster);
    const crashedAt = performance.now();
    await cluster.crash(leader);
    // Service resumes: a fresh write commits soon after the crash.
    await kv.put('after-crash', 'yes', { timeoutMs: 5_000 });
    const resumeMs = performance.now() - crashedAt;
    await new Promise((r) => setTimeout(r, 200));
    load.stop();
    const { acked } = await load.done;
    expect(acked.size).toBeGreaterThan(100);
    // A few election timeouts (each is randomized in [T, 2T)).
    expect(resumeMs).toBeLessThan(ELECTION_TIMEOUT_MS * 2 * 5);
    const keys = [...acked.keys()];
    const values = await Promise.all(keys.map((k) => kv.get(k)));
    const lost = keys.filter((k, i) => values[i] === undefined || text.decode(values[i]) !== acked.get(k));
    expect(lost).toEqual([]);
    await cluster.restart(leader);
    const st = await cluster.status();
    expect(st.nodes.every((n) => n.alive)).toBe(true);
  });

  it('a node whose log is corrupt refuses to restart, and status() says why', async () => {
    const dataDir = tempDir();
    const cluster = await start({ dataDir });
    const kv = cluster.client();
    await Promise.all(Array.from({ length: 50 }, (_, i) => kv.put(`k${i}`, 'v'.repeat(100))));
    const victim = (await cluster.status()).nodes.find((n) => n.role !== 'leader')!.id;
    await cluster.crash(victim);
    corruptFirstSegment(dataDir, victim);
    await expect(cluster.restart(victim)).rejects.toThrow(/corrupt WAL/);
    const down = (await cluster.status()).nodes.find((n) => n.id === victim)!;
    expect(down).toMatchObject({ alive: false, role: 'down' });
    expect(down.error).toMatch(/corrupt WAL/);
    // The others go on serving.
    await kv.put('after', 'corruption');
  });

  it('restarts a whole cluster from disk with its data intact', async () => {
    const dataDir = tempDir();
    const first = await start({ dataDir, node: { snapshotEveryEntries: 200, snapshotRetainEntries: 20 } });
    const kv1 = first.client();
    const n = 1_000;
    await Promise.all(Array.from({ length: n }, (_, i) => kv1.put(`k${i}`, `v${i}`)));
    await kv1.delete('k0');
    await first.close();
    const second = await start({ dataDir });
    const kv2 = second.client();
    const values = await Promise.all(Array.from({ length: n }, (_, i) => kv2.get(`k${i}`)));
    expect(values[0]).toBeUndefined();
    for (let i = 1; i < n; i++) expect(text.decode(values[i]!)).toBe(`v${i}`);
    // New clients of the restarted cluster get fresh sessions: their writes apply.
    await kv2.put('k1', 'again');
    expect(text.decode((await kv2.get('k1'))!)).toBe('again');
  });

  it('a partitioned minority leader neither commits a write nor serves a linearizable read', async () => {
    const cluster = await start();
    const kv = cluster.client();
    await kv.put('x', 'old');
    const oldLeader = await leaderOf(cluster);
    const others = (await cluster.status()).nodes.map((n) => n.id).filter((id) => id !== oldLeader);
    await cluster.partition([oldLeader], others);
    // The majority elects a leader and takes a new write.
    await kv.put('x', 'new', { timeoutMs: 5_000 });
    await expect(kv.put('x', 'minority', { nodeId: oldLeader, timeoutMs: 600 })).rejects.toBeInstanceOf(RingraftError);
    await expect(kv.get('x', { nodeId: oldLeader, timeoutMs: 600 })).rejects.toBeInstanceOf(RingraftError);
    await expect(kv.get('x', { nodeId: oldLeader, timeoutMs: 600, consistency: 'lease' })).rejects.toBeInstanceOf(RingraftError);
    await cluster.heal();
    // The minority's write never took effect.
    expect(text.decode((await kv.get('x'))!)).toBe('new');
  });

  it('adds and removes nodes under load', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const load = writeLoad(kv, 16, 1_000_000);
    await until(() => load.acked.size >= 50);
    const added = await cluster.addNode();
    expect(added).toBe(4);
    const leader = await leaderOf(cluster);
    const victim = [1, 2, 3].find((id) => id !== leader)!;
    await cluster.removeNode(victim);
    const ackedBefore = load.acked.size;
    await until(() => load.acked.size >= ackedBefore + 50);
    load.stop();
    const { acked, errors } = await load.done;
    expect(errors).toEqual([]);
    const st = await cluster.status();
    expect(st.nodes.map((n) => n.id).sort()).toEqual([1, 2, 3, 4].filter((id) => id !== victim));
    // The new node holds the data (stale read at it).
    const someKey = [...acked.keys()][0]!;
    for (let i = 0; ; i++) {
      const v = await kv.get(someKey, { consistency: 'stale', nodeId: added });
      if (v !== undefined) break;
      expect(i).toBeLessThan(200);
      await new Promise((r) => setTimeout(r, 10));
    }
    await kv.put('after', 'membership');
  });

  it('watch delivers every change under the prefix once, in log order', async () => {
    const cluster = await start();
    const kv = cluster.client();
    await kv.put('warm', 'up');
    const watch = kv.watch('w/');
    const seen: { type: string; key: string; index: number; position: number }[] = [];
    const reader = (async () => {
      for await (const ev of watch) {
        seen.push({ type: ev.type, key: text.decode(ev.key), index: ev.index, position: ev.position });
        if (seen.length === 201) break;
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    await Promise.all(Array.from({ length: 100 }, (_, i) => kv.put(`w/${i}`, 'v')));
    await kv.put('other', 'not watched');
    await Promise.all(Array.from({ length: 100 }, (_, i) => kv.put(`w/${i}`, 'v2')));
    await kv.delete('w/0');
    await reader;
    expect(seen).toHaveLength(201);
    // (index, position) strictly increases: one entry may carry a batch of writes.
    for (let i = 1; i < seen.length; i++) {
      const [a, b] = [seen[i - 1]!, seen[i]!];
      expect(b.index > a.index || (b.index === a.index && b.position > a.position)).toBe(true);
    }
    expect(seen.some((e) => e.key === 'other')).toBe(false);
    expect(seen.at(-1)).toMatchObject({ type: 'delete', key: 'w/0' });
    const counts = new Map<string, number>();
    for (const e of seen) counts.set(e.key, (counts.get(e.key) ?? 0) + 1);
    expect(counts.get('w/0')).toBe(3); // two puts and a delete
    expect([...counts.entries()].filter(([k, c]) => k !== 'w/0' && c !== 2)).toEqual([]);
  });

  it('serves clients in other threads through their own rings (connectEndpoint)', async () => {
    const cluster = await start();
    const kv = cluster.client();
    await kv.put('warm', 'up');
    const run = async (prefix: string): Promise<{ wrote: number; errors: string[]; last: string | null }> => {
      const descriptor = await cluster.connectEndpoint();
      const worker = new Worker(new URL('../fixtures/remote-client.mjs', import.meta.url), { workerData: { descriptor, prefix, count: 300 } });
      // Listened for before anything is awaited: the thread may exit right after its message.
      const exited = new Promise((r) => worker.once('exit', r));
      const result = await new Promise<{ wrote: number; errors: string[]; last: string | null }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`the client thread exited (code ${code}) without a result`)));
      });
      await exited;
      return result;
    };
    const [a, b] = await Promise.all([run('a/'), run('b/')]);
    expect(a).toEqual({ wrote: 300, errors: [], last: 'v299' });
    expect(b).toEqual({ wrote: 300, errors: [], last: 'v299' });
    // The writes of both threads are in the store, seen from this thread.
    for (const key of ['a/0', 'a/150', 'b/7', 'b/299']) expect(await kv.get(key)).toBeDefined();
  });

  it('an idle cluster sleeps: idle CPU of all threads stays low', async () => {
    // The library's default timing, not FAST: this measures what a user gets.
    const cluster = await createCluster({});
    afterTest(() => cluster.close());
    await cluster.client().put('a', 'b');
    const before = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 2000));
    const used = process.cpuUsage(before);
    const share = (used.user + used.system) / 1000 / (performance.now() - t0);
    // Measured some 1% of one core with the default timers; 10% would mean nodes spin.
    expect(share).toBeLessThan(0.1);
  });

  it("status() names each node's kernel thread, whose CPU time grows as the node works; a restarted node names its new thread", async () => {
    const cluster = await start({ dataDir: tempDir(), nodeThreads: 3 });
    const kv = cluster.client();
    await kv.put('warm', 'up');
    const tids = (await cluster.status()).nodes.map((n) => n.osThreadId);
    expect(tids.every((t) => t !== undefined && t !== process.pid)).toBe(true);
    expect(new Set(tids).size).toBe(3);
    const cpuNs = (tid: number): number => Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    const before = tids.map((t) => cpuNs(t!));
    for (let i = 0; i < 300; i++) await kv.put(`k${i}`, 'v');
    // Every node applies every write: each one's thread did work.
    tids.forEach((t, i) => expect(cpuNs(t!)).toBeGreaterThan(before[i]!));
    const victim = (await cluster.status()).nodes[0]!.id;
    await cluster.crash(victim);
    expect((await cluster.status()).nodes.find((n) => n.id === victim)!.osThreadId).toBeUndefined();
    await cluster.restart(victim);
    const again = (await cluster.status()).nodes.find((n) => n.id === victim)!.osThreadId;
    expect(again).toBeDefined();
    expect(again).not.toBe(tids[0]);
    expect(readdirSync('/proc/self/task').map(Number)).toContain(again);
  });

  it('leaves no thread, timer or handle behind after close()', async () => {
    const countOf = (list: string[], name: string): number => list.filter((x) => x === name).length;
    const beforeList = process.getActiveResourcesInfo();
    const cluster = await createCluster({ ...FAST, dataDir: tempDir() });
    const kv = cluster.client();
    await kv.put('a', 'b');
    const w = kv.watch('a');
    const pendingNext = w.next().catch((e: unknown) => e);
    expect(process.getActiveResourcesInfo().length).toBeGreaterThan(beforeList.length);
    await cluster.close();
    await expect(kv.put('a', 'c')).rejects.toMatchObject({ code: ErrorCode.CLOSED });
    expect(await pendingNext).toMatchObject({ code: ErrorCode.CLOSED });
    await new Promise((r) => setTimeout(r, 20));
    const after = process.getActiveResourcesInfo();
    for (const name of new Set(after)) expect(countOf(after, name)).toBeLessThanOrEqual(countOf(beforeList, name));
  });
});
