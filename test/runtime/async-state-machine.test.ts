// A cluster's own state machine that restores or snapshots async, on hosts driven by hand
// (helpers.ts): a follower whose restore is pending takes no Raft message (counted), refuses
// what needs the leader with NOT_LEADER and a hint and what it could serve itself with
// UNAVAILABLE, takes an unwatch, and once the restore settles finishes the Ready it was
// restoring for and catches up; a restore that rejects fails the node with CORRUPT_SNAPSHOT;
// a snapshot given async is of the state at its call, stored once it settles while the node
// applies on, and dropped if a restore replaced the state meanwhile; a host built from a
// snapshot whose machine restores async waits before anything.
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/base/index.ts';
import { encodeKvRequest, KvStateMachine, type SnapshotChunks, type StateMachine } from '../../src/kv/index.ts';
import type { ClientRequest } from '../../src/runtime/index.ts';
import { HostNetwork, readReq, watchReq } from './helpers.ts';

/** A promise to settle by hand. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const i32 = (n: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n);
  return b;
};
const int = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, 4).getInt32(0);
const joined = (chunks: Iterable<Uint8Array>): Uint8Array => Uint8Array.from([...chunks].flatMap((c) => [...c]));
/** Lets settled promises' callbacks run. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** How the test's machines behave: a sum of the i32 commands, restored and snapshotted at once unless a gate is set. */
interface Gates {
  restore?: Promise<void>;
  snapshot?: Promise<void>;
  /** Only the machine made `only`-th (from 0, in the order the hosts make them) waits for the snapshot gate. */
  only?: number;
}

function summing(gates: Gates, totals: Map<StateMachine, () => number>): () => StateMachine {
  let made = 0;
  return () => {
    const no = made++;
    let total = 0;
    const m: StateMachine = {
      apply: (c) => {
        total += int(c);
        return i32(total);
      },
      query: () => i32(total),
      snapshot: () => {
        const gate = gates.only === undefined || gates.only === no ? gates.snapshot : undefined;
        if (gate === undefined) return i32(total);
        // The state at the call, given once the gate opens.
        const state = i32(total);
        return (async function* () {
          await gate;
          yield state;
        })();
      },
      restore: (chunks: SnapshotChunks) => {
        const gate = gates.restore;
        if (gate === undefined) {
          total = int(joined(chunks));
          return;
        }
        return gate.then(async () => {
          const parts: Uint8Array[] = [];
          for await (const c of chunks) parts.push(c);
          total = int(joined(parts));
        });
      },
    };
    totals.set(m, () => total);
    return m;
  };
}

/** Each network's writes so far: the next request id, and the next seq of its one client. */
const writesOf = new WeakMap<HostNetwork, number>();
function add(net: HostNetwork, n: number): void {
  const requestId = (writesOf.get(net) ?? 0) + 1;
  writesOf.set(net, requestId);
  net.request(1, { kind: 'write', requestId, data: encodeKvRequest({ clientId: 100, seq: requestId, command: { op: 'app', data: i32(n) } }) });
  net.deliverAll();
  expect(net.repliesTo(1, requestId).map((r) => r.kind)).toEqual(['write']);
}

/** A three-node network led by node 1, snapshotting every 3 entries, node 3 cut off while 1 to 10 are added: it must catch up by a snapshot. */
function behind(gates: Gates, totals: Map<StateMachine, () => number>): HostNetwork {
  const net = new HostNetwork([1, 2, 3], { app: summing(gates, totals), node: { snapshotEveryEntries: 3, snapshotRetainEntries: 0 } });
  net.elect(1);
  net.isolated.add(3);
  net.tickAll(12, [1, 2]);
  for (let n = 1; n <= 10; n++) add(net, n);
  expect(net.node(1).storage.snapshot().meta.index).toBeGreaterThan(0);
  return net;
}

/**
 * Nodes 1 to 3 led by 1, snapshotting every 3 entries: node 3 takes a snapshot (held by its
 * machine: it must be async) after 1 to 4 are added, is cut off while 5 to 10 are, then
 * catches up by the leader's snapshot, which replaces the state its own was taken of.
 */
function snapshotThenReplaced(app: () => StateMachine): HostNetwork {
  const net = new HostNetwork([1, 2, 3], { app, node: { snapshotEveryEntries: 3, snapshotRetainEntries: 0 } });
  net.elect(1);
  for (let n = 1; n <= 4; n++) add(net, n);
  expect(net.host(3).isAwaiting).toBe(true);
  net.isolated.add(3);
  net.tickAll(12, [1, 2]);
  for (let n = 5; n <= 10; n++) add(net, n);
  net.isolated.delete(3);
  net.tickAll(3);
  return net;
}

const queryOf = (net: HostNetwork, id: number): number => int(net.host(id).kv.query(new Uint8Array(0)).subarray(1));

describe('a state machine that restores async', () => {
  it('holds its follower while it restores (messages dropped, requests refused with the right code), then catches up', async () => {
    const gates: Gates = {};
    const totals = new Map<StateMachine, () => number>();
    const net = behind(gates, totals);
    const gate = deferred();
    gates.restore = gate.promise;
    net.isolated.delete(3);
    net.tickAll(3);
    const host3 = net.host(3);
    expect(host3.status().restoring).toBe(true);
    const dropped = host3.status().droppedWhileRestoring;
    net.tickAll(3);
    expect(host3.status().droppedWhileRestoring, 'heartbeats dropped').toBeGreaterThan(dropped);
    const before = host3.appliedIndex;
    const requests: [ClientRequest, string, string][] = [
      [{ kind: 'write', requestId: 9001, data: encodeKvRequest({ clientId: 7, seq: 1, command: { op: 'app', data: i32(1) } }) }, 'error', ErrorCode.NOT_LEADER],
      [readReq(9002, 'k', 'linearizable'), 'error', ErrorCode.NOT_LEADER],
      [readReq(9003, 'k', 'stale'), 'error', ErrorCode.UNAVAILABLE],
      // A follower read goes to the leader, which can serve it: not held here until the restore ends.
      [{ kind: 'read', requestId: 9006, consistency: 'follower', key: new TextEncoder().encode('k') }, 'error', ErrorCode.NOT_LEADER],
      [{ kind: 'query', requestId: 9004, consistency: 'stale', data: new Uint8Array(0) }, 'error', ErrorCode.UNAVAILABLE],
      [watchReq(9005, 'k'), 'watch-end', ErrorCode.UNAVAILABLE],
    ];
    for (const [req, kind, code] of requests) {
      net.request(3, req);
      const [reply] = net.repliesTo(3, req.requestId);
      expect(reply?.kind).toBe(kind);
      expect((reply as { code: string }).code).toBe(code);
      if (code === ErrorCode.NOT_LEADER) expect((reply as { leaderHint: number }).leaderHint).toBe(1);
    }
    // An unwatch is taken (it has no answer): the node does not refuse it.
    net.request(3, { kind: 'unwatch', requestId: 9005 });
    expect(net.repliesTo(3, 9005)).toHaveLength(1);
    expect(host3.appliedIndex).toBe(before);

    gate.resolve();
    await turn();
    expect(host3.hasSettledWork).toBe(true);
    net.tickAll(5);
    expect(host3.status().restoring).toBe(false);
    expect(host3.appliedIndex).toBe(net.host(1).appliedIndex);
    expect(queryOf(net, 3)).toBe(55);
    add(net, 100);
    net.tickAll(2);
    expect(queryOf(net, 3)).toBe(155);
  });

  it('fails the node with CORRUPT_SNAPSHOT when the restore rejects', async () => {
    const gates: Gates = {};
    const net = behind(gates, new Map());
    const gate = deferred();
    gates.restore = gate.promise;
    net.isolated.delete(3);
    net.tickAll(3);
    expect(net.host(3).status().restoring).toBe(true);
    gate.reject(new Error('disk full'));
    await turn();
    expect(() => net.host(3).processReady()).toThrow(expect.objectContaining({ code: ErrorCode.CORRUPT_SNAPSHOT, message: expect.stringContaining('disk full') }));
  });

  it('makes a host built from a snapshot wait for its restore before anything', async () => {
    const gates: Gates = {};
    const net = behind(gates, new Map());
    const gate = deferred();
    gates.restore = gate.promise;
    const restarted = net.start(1, net.node(1).storage);
    expect(restarted.host.status().restoring).toBe(true);
    restarted.host.tick();
    expect(restarted.host.processReady()).toBe(false);
    gate.resolve();
    await turn();
    expect(restarted.host.processReady()).toBe(true);
    expect(restarted.host.status().restoring).toBe(false);
    net.isolated.delete(3);
    net.awaitLeader();
    net.tickAll(5);
    expect(queryOf(net, 1)).toBe(55);
  });
});

describe('a state machine that gives its snapshot async', () => {
  it('stores the state at its call once it settles, while the node applies on', async () => {
    const gates: Gates = {};
    const totals = new Map<StateMachine, () => number>();
    const net = new HostNetwork([1, 2, 3], { app: summing(gates, totals), node: { snapshotEveryEntries: 3, snapshotRetainEntries: 0 } });
    net.elect(1);
    const gate = deferred();
    gates.snapshot = gate.promise;
    const storage = net.node(1).storage;
    const start = storage.snapshot().meta.index;
    for (let n = 1; n <= 10; n++) add(net, n);
    // Taken at some index, not stored yet: the log is not compacted meanwhile.
    expect(storage.snapshot().meta.index).toBe(start);
    expect(net.host(1).isAwaiting).toBe(true);
    gate.resolve();
    await turn();
    net.tickAll(1);
    const snap = storage.snapshot();
    expect(snap.meta.index).toBeGreaterThan(start);
    expect(snap.meta.index).toBeLessThan(net.host(1).appliedIndex);
    // It holds the sum at its index, not the sum now.
    const restored = KvStateMachine.restore(snap.data, { app: summing({}, totals) });
    const atIndex = int(restored.query(new Uint8Array(0)).subarray(1));
    expect(atIndex).toBeLessThan(55);
    expect(atIndex).toBeGreaterThan(0);
  });

  it('drops a snapshot taken before a restore replaced the state', async () => {
    const gate = deferred();
    // Node 3's first machine (the third made) holds its snapshots; the others snapshot at once.
    const gates: Gates = { snapshot: gate.promise, only: 2 };
    // Node 3 catches up by the leader's snapshot, which replaces its machine; then its own would settle.
    const net = snapshotThenReplaced(summing(gates, new Map()));
    const storage3 = net.node(3).storage;
    const installed = storage3.snapshot().meta.index;
    expect(installed).toBeGreaterThanOrEqual(net.node(1).storage.snapshot().meta.index);
    // Dropped when the leader's was installed: nothing of it is awaited any more.
    expect(net.host(3).isAwaiting).toBe(false);
    gate.resolve();
    await turn();
    expect(net.host(3).hasSettledWork).toBe(false);
    net.tickAll(2);
    expect(net.host(3).isAwaiting).toBe(false);
    expect(storage3.snapshot().meta.index).toBeGreaterThanOrEqual(installed);
    expect(queryOf(net, 3)).toBe(55);
    const restored = KvStateMachine.restore(storage3.snapshot().data, { app: summing({}, new Map()) });
    expect(restored.appliedIndex).toBe(storage3.snapshot().meta.index);
  });

  it('stops reading a dropped snapshot (its sequence ended), and snapshots again at once', async () => {
    const gate = deferred();
    let ended = 0;
    let made = 0;
    const app = (): StateMachine => {
      const no = made++;
      const m = summing({}, new Map())();
      return {
        ...m,
        snapshot: () => {
          if (no !== 2) return m.snapshot();
          const state = m.snapshot() as Uint8Array;
          return (async function* () {
            try {
              yield state.subarray(0, 2);
              await gate.promise;
              yield state.subarray(2);
            } finally {
              ended++;
            }
          })();
        },
      };
    };
    const net = snapshotThenReplaced(app);
    // The leader's snapshot replaced node 3's state: its own is dropped, not awaited.
    expect(net.host(3).isAwaiting).toBe(false);
    gate.resolve();
    await turn();
    await turn();
    expect(ended, 'the dropped sequence was ended').toBe(1);
    const before = net.node(3).storage.snapshot().meta.index;
    for (let n = 11; n <= 20; n++) add(net, n);
    expect(net.node(3).storage.snapshot().meta.index).toBeGreaterThan(before);
  });
});
