// Several nodes on one worker thread (`nodeThreads`): nodes are spread over the threads in
// turn, they hand each other their messages without a ring (a partition still cuts them),
// a crash of one node of a shared thread drops that node alone (the others keep
// serving, and it restarts on the same thread), a node that fails on a shared thread fails
// alone, and the option is checked like any other.
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ErrorCode, RingraftError } from '../../src/index.ts';
import { defaultNodeThreads } from '../../src/index.ts';
import { CLUSTER_NODES_MAX } from '../../src/base/index.ts';
import { corruptFirstSegment, leaderOf, refused, start, stopAfterEach, tempDir } from './helpers.ts';

stopAfterEach();

const text = new TextDecoder();

/** Each node's kernel thread id, by node id. */
async function threadsOf(cluster: Awaited<ReturnType<typeof start>>): Promise<Map<number, number | undefined>> {
  return new Map((await cluster.status()).nodes.map((n) => [n.id, n.osThreadId]));
}

describe('nodes sharing worker threads', () => {
  it('spreads the nodes over the threads in turn: node k on thread k mod nodeThreads', async () => {
    const cluster = await start({ nodes: 3, nodeThreads: 2 });
    await cluster.client().put('k', 'v');
    const tids = await threadsOf(cluster);
    expect([...tids.values()].every((t) => t !== undefined && t !== process.pid)).toBe(true);
    expect(tids.get(1)).toBe(tids.get(3));
    expect(tids.get(2)).not.toBe(tids.get(1));
    // Only the two node threads exist beside this process's own.
    expect(readdirSync('/proc/self/task').map(Number)).toEqual(expect.arrayContaining([tids.get(1)!, tids.get(2)!]));
  });

  it('nodes of one thread hand each other their messages directly, and a partition still cuts them', async () => {
    const cluster = await start({ nodes: 3, nodeThreads: 2 });
    const kv = cluster.client();
    await leaderOf(cluster);
    await cluster.transferLeadership(1);
    for (let i = 0; i < 20; i++) await kv.put(`k${i}`, 'v');
    const direct = async () => new Map((await cluster.status()).nodes.map((n) => [n.id, n.peerMessagesDirect ?? -1]));
    let counts = await direct();
    // Nodes 1 and 3 share a thread; node 2 has its own, so everything it takes came by ring.
    expect(counts.get(2)).toBe(0);
    expect(counts.get(3)).toBeGreaterThan(20);
    expect(counts.get(1)).toBeGreaterThan(20);
    // Cut node 3 off: no message of its shared thread's other node reaches it, directly or not.
    await cluster.partition([1, 2], [3]);
    await new Promise((r) => setTimeout(r, 50));
    const before = (await direct()).get(3)!;
    for (let i = 0; i < 20; i++) await kv.put(`cut${i}`, 'v', { timeoutMs: 5_000 });
    await new Promise((r) => setTimeout(r, 100));
    expect((await direct()).get(3)).toBe(before);
    const cut = (await cluster.status()).nodes.find((n) => n.id === 3)!;
    await cluster.heal();
    // Healed, it catches up.
    for (;;) {
      const st = await cluster.status();
      const three = st.nodes.find((n) => n.id === 3)!;
      if (three.appliedIndex > cut.appliedIndex && three.appliedIndex >= Math.min(...st.nodes.filter((n) => n.id !== 3).map((n) => n.commitIndex))) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    counts = await direct();
    expect(counts.get(2)).toBe(0);
  });

  it('nodes of one thread never crowd out each other\'s messages, however small the peer queues: five nodes elect and all replicate', async () => {
    const cluster = await start({ nodes: 5, nodeThreads: 1, node: { peerQueueMessagesMax: 1 } });
    const kv = cluster.client();
    await leaderOf(cluster);
    await Promise.all(Array.from({ length: 32 }, (_, i) => kv.put(`k${i}`, 'v', { timeoutMs: 5_000 })));
    for (;;) {
      const st = await cluster.status();
      const commit = Math.max(...st.nodes.map((n) => n.commitIndex));
      if (st.nodes.every((n) => n.appliedIndex >= commit)) break;
      await new Promise((r) => setTimeout(r, 10));
    }
  });

  it('a crash of one node of a shared thread drops it alone: the others serve on, nothing acknowledged is lost, and it restarts on the same thread', async () => {
    const cluster = await start({ dataDir: tempDir(), nodeThreads: 1 });
    const kv = cluster.client();
    await kv.put('warm', 'up');
    const tids = await threadsOf(cluster);
    expect(new Set(tids.values()).size).toBe(1);
    const shared = tids.get(1)!;
    const leader = await leaderOf(cluster);
    const acked = new Map<string, string>();
    const writes = Array.from({ length: 200 }, (_, i) =>
      kv.put(`k${i}`, `v${i}`, { timeoutMs: 5_000 }).then(
        () => void acked.set(`k${i}`, `v${i}`),
        () => undefined,
      ),
    );
    await cluster.crash(leader);
    await Promise.all(writes);
    const st = await cluster.status();
    expect(st.nodes.find((n) => n.id === leader)).toMatchObject({ alive: false, role: 'down' });
    // The thread that hosted the crashed node still runs the others.
    expect(st.nodes.filter((n) => n.id !== leader).every((n) => n.alive && n.osThreadId === shared)).toBe(true);
    await kv.put('after-crash', 'yes', { timeoutMs: 5_000 });
    for (const [k, v] of acked) expect(text.decode((await kv.get(k))!)).toBe(v);
    await cluster.restart(leader);
    const again = await threadsOf(cluster);
    expect(again.get(leader)).toBe(shared);
    // It catches up: it applies the write made while it was down.
    const target = Math.max(...(await cluster.status()).nodes.filter((n) => n.id !== leader).map((n) => n.commitIndex));
    const deadline = Date.now() + 5_000;
    let applied = 0;
    while (applied < target && Date.now() < deadline) {
      applied = (await cluster.status()).nodes.find((n) => n.id === leader)!.appliedIndex;
      if (applied < target) await new Promise((r) => setTimeout(r, 20));
    }
    expect(applied).toBeGreaterThanOrEqual(target);
  });

  it('a node whose log is corrupt fails alone on its shared thread', async () => {
    const dataDir = tempDir();
    const cluster = await start({ dataDir, nodeThreads: 1 });
    const kv = cluster.client();
    await Promise.all(Array.from({ length: 50 }, (_, i) => kv.put(`k${i}`, 'v'.repeat(100))));
    const victim = (await cluster.status()).nodes.find((n) => n.role !== 'leader')!.id;
    await cluster.crash(victim);
    corruptFirstSegment(dataDir, victim);
    const error = await refused(cluster.restart(victim));
    expect(error.code).toBe(ErrorCode.CORRUPT_LOG);
    const st = await cluster.status();
    expect(st.nodes.find((n) => n.id === victim)).toMatchObject({ alive: false, role: 'down' });
    expect(st.nodes.filter((n) => n.id !== victim).every((n) => n.alive)).toBe(true);
    await kv.put('after', 'corruption');
  });

  it('a start that races the termination of its thread gets a new worker, not the dying one', async () => {
    const cluster = await start({ dataDir: tempDir(), nodeThreads: 1 });
    await cluster.client().put('a', 'b');
    await cluster.crash(1);
    await cluster.crash(2);
    // Node 3 has the thread to itself: crashing it terminates the worker, while node 1 starts.
    const [crashed, restarted] = await Promise.allSettled([cluster.crash(3), cluster.restart(1)]);
    expect(crashed.status).toBe('fulfilled');
    expect(restarted).toEqual({ status: 'fulfilled', value: undefined });
    const st = await cluster.status();
    expect(st.nodes.find((n) => n.id === 1)).toMatchObject({ alive: true });
    expect(st.nodes.find((n) => n.id === 1)!.error).toBeUndefined();
  });

  it('close() while a node is being added leaves no worker running', async () => {
    const tasks = (): number => readdirSync('/proc/self/task').length;
    const before = tasks();
    const cluster = await start({ nodes: 1, nodeThreads: 2 });
    await cluster.client().put('a', 'b');
    const adding = cluster.addNode().catch((e: unknown) => e);
    await new Promise((r) => setImmediate(r));
    await cluster.close();
    await adding;
    // Every worker thread this cluster started has exited (V8's own helper threads may linger: allow them).
    const deadline = Date.now() + 3_000;
    while (tasks() > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(tasks()).toBeLessThanOrEqual(before);
  });

  it('refuses a nodeThreads that is not an integer from 1 to the most nodes', async () => {
    for (const nodeThreads of [0, -1, 1.5, CLUSTER_NODES_MAX + 1, '2' as unknown as number]) {
      const error = await refused(start({ nodeThreads }));
      expect(error).toBeInstanceOf(RingraftError);
      expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
      expect(error.message).toMatch(/nodeThreads/);
    }
  });

  it('defaults to a thread per core beyond the client’s, at least one', () => {
    expect(defaultNodeThreads(1)).toBe(1);
    expect(defaultNodeThreads(2)).toBe(1);
    expect(defaultNodeThreads(4)).toBe(3);
    expect(defaultNodeThreads(64)).toBe(CLUSTER_NODES_MAX);
  });
});
