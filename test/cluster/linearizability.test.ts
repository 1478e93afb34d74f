/**
 * What clients of a real-thread cluster saw is linearizable, through leader crashes,
 * restarts and partitions: concurrent clients run puts, gets, deletes and cas on a few
 * keys while a schedule of faults runs, each operation is recorded with its call and
 * return times, and the simulator's checker judges the history. A control run serves the
 * "linearizable" reads from any node's state instead and must be caught.
 */

import { describe, expect, it } from 'vitest';
import { ErrorCode, RingraftError, type Cluster, type KvClient, type ReadConsistency } from '../../src/index.ts';
import type { HistoryOp } from '../../src/sim/history.ts';
import { checkLinearizable } from '../../src/sim/linearizability.ts';
import { start, stopAfterEach, tempDir } from './helpers.ts';

const text = new TextDecoder();
stopAfterEach();

const KEYS = ['a', 'b', 'c', 'd'];

/** One client loop: random ops until `until`, recording each in `history`. */
async function clientLoop(kv: KvClient, client: number, history: HistoryOp[], until: number, readConsistency: ReadConsistency, readNode: () => number | undefined): Promise<void> {
  let n = 0;
  while (performance.now() < until) {
    const key = KEYS[Math.floor(Math.random() * KEYS.length)]!;
    const value = `${client}.${n++}`;
    const roll = Math.random();
    const call = performance.now();
    const op: HistoryOp = { client, op: 'get', key, value: null, expected: null, output: null, call, return: null };
    try {
      if (roll < 0.4) {
        op.op = 'put';
        op.value = value;
        await kv.put(key, value, { timeoutMs: 2_000 });
      } else if (roll < 0.8) {
        op.op = 'get';
        const nodeId = readNode();
        const v = await kv.get(key, { consistency: readConsistency, timeoutMs: 2_000, ...(nodeId === undefined ? {} : { nodeId }) });
        op.output = v === undefined ? null : text.decode(v);
      } else if (roll < 0.9) {
        op.op = 'delete';
        op.output = await kv.delete(key, { timeoutMs: 2_000 });
      } else {
        op.op = 'cas';
        const expected = `${Math.floor(Math.random() * 4)}.${Math.max(0, n - 2)}`;
        op.expected = expected;
        op.value = value;
        op.output = await kv.cas(key, expected, value, { timeoutMs: 2_000 });
      }
      op.return = performance.now();
      history.push(op);
    } catch (error) {
      if (!(error instanceof RingraftError)) throw error;
      // A failed read had no effect; a failed write may or may not have taken effect.
      if (op.op === 'get') continue;
      op.output = null;
      history.push(op);
    }
  }
}

async function leader(c: Cluster): Promise<number | undefined> {
  return (await c.status()).leaderId;
}

async function runWithFaults(c: Cluster, readConsistency: ReadConsistency, readNode: () => number | undefined, durationMs: number): Promise<HistoryOp[]> {
  const history: HistoryOp[] = [];
  const until = performance.now() + durationMs;
  const clients = Array.from({ length: 6 }, (_, i) => clientLoop(c.client(), i + 1, history, until, readConsistency, readNode));
  const faults = (async () => {
    const ids = c.nodeIds();
    while (performance.now() < until - 600) {
      await new Promise((r) => setTimeout(r, 150));
      const l = await leader(c);
      const roll = Math.random();
      if (roll < 0.4 && l !== undefined) {
        await c.crash(l);
        await new Promise((r) => setTimeout(r, 200));
        await c.restart(l);
      } else if (roll < 0.8) {
        const victim = l ?? ids[0]!;
        await c.partition([victim], ids.filter((id) => id !== victim));
        await new Promise((r) => setTimeout(r, 300));
        await c.heal();
      } else if (l !== undefined) {
        await c.transferLeadership(ids.find((id) => id !== l)!).catch((error: unknown) => {
          if (!(error instanceof RingraftError) || error.code !== ErrorCode.TIMEOUT) throw error;
        });
      }
    }
  })();
  await Promise.all([...clients, faults]);
  return history;
}

describe('linearizability of a real-thread cluster', () => {
  it('holds through leader crashes, restarts, partitions and transfers', async () => {
    const cluster = await start({ dataDir: tempDir(), node: { snapshotEveryEntries: 300, snapshotRetainEntries: 50 } });
    const history = await runWithFaults(cluster, 'linearizable', () => undefined, 4_000);
    const completed = history.filter((op) => op.return !== null);
    expect(completed.filter((op) => op.op === 'get').length).toBeGreaterThan(50);
    expect(completed.filter((op) => op.op !== 'get').length).toBeGreaterThan(50);
    const result = checkLinearizable(history);
    if (result.ok !== true) console.error(result);
    expect(result.ok).toBe(true);
  });

  it('catches reads served from a lagging node (control run)', async () => {
    const c = await start();
    // Stale reads at a node kept behind a partition half the time: must not linearize.
    const kv = c.client();
    await kv.put('a', 'first');
    const ids = c.nodeIds();
    const l = (await leader(c)) ?? ids[0]!;
    const lagging = ids.find((id) => id !== l)!;
    await c.partition([lagging], ids.filter((id) => id !== lagging));
    const history: HistoryOp[] = [];
    const until = performance.now() + 800;
    await Promise.all([
      clientLoop(c.client(), 1, history, until, 'linearizable', () => undefined),
      clientLoop(c.client(), 2, history, until, 'stale', () => lagging),
    ]);
    await c.heal();
    const result = checkLinearizable(history);
    expect(result.ok).toBe(false);
  });
});
