// A cluster's own state machine (createCluster's `stateMachine`): proposals apply once each,
// in one order, on every replica, through a leader crash under load and restarts from disk
// with snapshots; queries at each consistency; an apply that throws is APPLY_FAILED with its
// message and the cluster serves on; a module that does not load, or exports no function,
// fails the start naming it; a cluster without one answers APPLY_FAILED.
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/index.ts';
import { APP_RESULT_BYTES_MAX } from '../../src/kv/index.ts';
import { leaderOf, refused, start, stopAfterEach, tempDir } from './helpers.ts';

stopAfterEach();

const LEDGER = new URL('../fixtures/ledger-machine.mjs', import.meta.url);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (s: string): Uint8Array => encoder.encode(s);
const json = (b: Uint8Array): unknown => JSON.parse(decoder.decode(b));

describe("a cluster's own state machine", () => {
  it.each([false, true])('applies each proposal once, in one order on every replica, through a leader crash under load and restarts from disk with snapshots (snapshot and restore async: %s)', async (async) => {
    const cluster = await start({ dataDir: tempDir(), stateMachine: { module: LEDGER, options: { name: 'ledger', async } }, node: { snapshotEveryEntries: 25 } });
    const kv = cluster.client();
    expect(json(await kv.query(text('options')))).toEqual({ name: 'ledger', async });
    const acked = new Set<number>();
    let next = 1;
    let stop = false;
    const load = Array.from({ length: 16 }, async () => {
      while (!stop && next <= 2_000) {
        const id = next++;
        try {
          await kv.propose(text(String(id)), { timeoutMs: 5_000 });
          acked.add(id);
        } catch (error) {
          // A call that failed may or may not have applied; it must not apply twice.
          if (!(error instanceof Error)) throw error;
        }
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    const leader = await leaderOf(cluster);
    await cluster.crash(leader);
    await new Promise((r) => setTimeout(r, 300));
    await cluster.restart(leader);
    await new Promise((r) => setTimeout(r, 200));
    stop = true;
    await Promise.all(load);
    expect(acked.size).toBeGreaterThan(100);

    const ids = json(await kv.query(text('ids'))) as number[];
    expect(new Set(ids).size).toBe(ids.length);
    expect([...acked].filter((id) => !ids.includes(id))).toEqual([]);
    // Every replica, once caught up, applied the same ids in the same order.
    const commit = (await cluster.status()).nodes.reduce((m, n) => Math.max(m, n.commitIndex), 0);
    for (const node of (await cluster.status()).nodes) {
      const deadline = Date.now() + 5_000;
      while ((await cluster.status()).nodes.find((n) => n.id === node.id)!.appliedIndex < commit && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(json(await kv.query(text('ids'), { consistency: 'stale', nodeId: node.id }))).toEqual(ids);
    }
    // Restarted from its log and snapshot, a node comes back with the same state.
    const follower = (await cluster.status()).nodes.find((n) => n.id !== leader && n.role === 'follower')!.id;
    await cluster.crash(follower);
    await cluster.restart(follower);
    const deadline = Date.now() + 5_000;
    let again: unknown;
    do {
      again = json(await kv.query(text('ids'), { consistency: 'stale', nodeId: follower }));
      if (JSON.stringify(again) !== JSON.stringify(ids)) await new Promise((r) => setTimeout(r, 20));
    } while (JSON.stringify(again) !== JSON.stringify(ids) && Date.now() < deadline);
    expect(again).toEqual(ids);
    // It came back through its snapshot.
    expect(json(await kv.query(text('restores'), { consistency: 'stale', nodeId: follower }))).toBeGreaterThanOrEqual(1);
    for (const node of (await cluster.status()).nodes) expect(node.restoring).toBe(false);
  });

  it('closes at once while a node restores async (its pending restore does not hold its thread)', async () => {
    const cluster = await start({ dataDir: tempDir(), stateMachine: { module: LEDGER, options: { async: true, restoreMs: 20_000 } }, node: { snapshotEveryEntries: 5 } });
    const kv = cluster.client();
    for (let id = 1; id <= 20; id++) await kv.propose(text(String(id)));
    const follower = (await cluster.status()).nodes.find((n) => n.role === 'follower')!.id;
    await cluster.crash(follower);
    await cluster.restart(follower);
    const deadline = Date.now() + 5_000;
    while (!(await cluster.status()).nodes.find((n) => n.id === follower)!.restoring && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect((await cluster.status()).nodes.find((n) => n.id === follower)!.restoring).toBe(true);
    const started = performance.now();
    await cluster.close();
    // Without ending itself, the thread waits out the 20 s timer until the cluster terminates it (2 s).
    expect(performance.now() - started).toBeLessThan(1_500);
  });

  it('answers an apply that throws with APPLY_FAILED and its message, the same when retried, and serves on', async () => {
    const cluster = await start({ stateMachine: { module: LEDGER } });
    const kv = cluster.client();
    const error = await refused(kv.propose(text('throw:no such account')));
    expect(error.code).toBe(ErrorCode.APPLY_FAILED);
    expect(error.message).toBe('Error: no such account');
    const q = await refused(kv.query(text('what')));
    expect(q.code).toBe(ErrorCode.APPLY_FAILED);
    expect(q.message).toBe('RangeError: unknown query what');
    expect(decoder.decode(await kv.propose(text('7')))).toBe('1');
    for (const how of [{ consistency: 'linearizable' }, { consistency: 'lease' }, { consistency: 'stale' }, { readFrom: 'any' }] as const) {
      const deadline = Date.now() + 5_000;
      let ids: unknown;
      do ids = json(await kv.query(text('ids'), how));
      while (JSON.stringify(ids) !== '[7]' && Date.now() < deadline);
      expect(ids).toEqual([7]);
    }
  });

  it('fails the start with INVALID_ARGUMENT naming a module that does not load or exports no function', async () => {
    const missing = new URL('../fixtures/no-such-machine.mjs', import.meta.url);
    const e1 = await refused(start({ stateMachine: { module: missing } }));
    expect(e1.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(e1.message).toContain(missing.href);
    const noDefault = 'data:text/javascript,export const x = 1';
    const e2 = await refused(start({ stateMachine: { module: noDefault } }));
    expect(e2.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(e2.message).toMatch(/has no default export/);
    for (const stateMachine of [{ module: 7 }, { module: '' }, { module: LEDGER, extra: 1 }, { module: LEDGER, options: { f: () => 1 } }]) {
      const e = await refused(start({ stateMachine: stateMachine as never }));
      expect(e.code).toBe(ErrorCode.INVALID_ARGUMENT);
      expect(e.message).toMatch(/stateMachine/);
    }
  });

  it('fails a node whose factory throws, alone, naming why', async () => {
    const module = 'data:text/javascript,export default function () { throw new Error("factory says no"); }';
    const e = await refused(start({ stateMachine: { module } }));
    expect(e.code).toBe(ErrorCode.NO_QUORUM);
    expect(e.message).toContain('factory says no');
  });

  it('survives a snapshot() that throws: the nodes go on, their logs uncompacted, and serve', async () => {
    const module = `data:text/javascript,${encodeURIComponent('export default () => { let n = 0; return { apply() { n++; }, query() { return new TextEncoder().encode(String(n)); }, snapshot() { throw new Error("cannot snapshot"); }, restore() {} }; }')}`;
    const cluster = await start({ stateMachine: { module }, node: { snapshotEveryEntries: 5 } });
    const kv = cluster.client();
    for (let i = 0; i < 30; i++) await kv.propose(text(String(i)));
    const nodes = (await cluster.status()).nodes;
    expect(nodes.every((n) => n.alive)).toBe(true);
    expect(nodes.every((n) => n.snapshotsFailed! >= 1 && /cannot snapshot/.test(n.snapshotFailure!))).toBe(true);
    expect(decoder.decode(await kv.query(new Uint8Array(0)))).toBe('30');
  });

  it('answers a result of APP_RESULT_BYTES_MAX bytes, to a command and to a query, and APPLY_FAILED past it', async () => {
    const module = `data:text/javascript,${encodeURIComponent('export default () => ({ apply(c) { return new Uint8Array(c[0] === 1 ? 1048575 : 1048576); }, query(q) { return new Uint8Array(q[0] === 1 ? 1048575 : 1048576); }, snapshot() { return new Uint8Array(0); }, restore() {} })')}`;
    const cluster = await start({ stateMachine: { module } });
    const kv = cluster.client();
    expect((await kv.propose(Uint8Array.of(1))).length).toBe(APP_RESULT_BYTES_MAX);
    expect((await kv.query(Uint8Array.of(1))).length).toBe(APP_RESULT_BYTES_MAX);
    await expect(kv.propose(Uint8Array.of(2))).rejects.toMatchObject({ code: ErrorCode.APPLY_FAILED });
    await expect(kv.query(Uint8Array.of(2))).rejects.toMatchObject({ code: ErrorCode.APPLY_FAILED });
  });

  it('fails the start of a node whose factory makes no state machine (an async one, say), naming the module', async () => {
    const module = 'data:text/javascript,export default async function () { return {}; }';
    const e = await refused(start({ stateMachine: { module } }));
    expect(e.message).toContain('not a state machine');
  });

  it('answers APPLY_FAILED where the cluster has no state machine of its own', async () => {
    const cluster = await start();
    const kv = cluster.client();
    for (const call of [() => kv.propose(text('1')), () => kv.query(text('ids'))]) {
      const e = await refused(call());
      expect(e.code).toBe(ErrorCode.APPLY_FAILED);
      expect(e.message).toBe('this cluster has no state machine of its own');
    }
    await expect(kv.propose('1' as unknown as Uint8Array)).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
  });
});
