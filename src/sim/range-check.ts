/**
 * The check of range reads, which the per-key linearizability search cannot judge (one
 * operation over many keys). A linearizable (or lease) range read answers at some log index
 * I; it is correct when
 *
 * 1. what it returned is exactly the state of the committed log replayed up to I (keys,
 *    values, revisions, count, more): checked against a fresh state machine fed the entries
 *    the nodes applied, in index order;
 * 2. I covers every write acknowledged before the read was called: a read cannot miss a
 *    write that completed before it started (real-time order).
 *
 * Together these place the read at I, a point inside its call and return: I is at least every
 * write finished before the call (2), and no later than the commit index when the node
 * answered, so no write that began after its return is in it. A read whose index the run
 * never saw applied to the end is not judged by (1) (counted in `unchecked`).
 */

import { EntryType, type Entry } from '../core/index.ts';
import { isKvBatch, KvStateMachine, type KvRangeResult } from '../kv/index.ts';
import type { RangeRead, WriteAck } from './workload.ts';

export interface RangeCheckResult {
  readonly violation: string | undefined;
  readonly checked: number;
  readonly unchecked: number;
}

export function checkRangeReads(ranges: readonly RangeRead[], acks: readonly WriteAck[], applied: ReadonlyMap<number, Entry>): RangeCheckResult {
  const realTime = checkRealTime(ranges, acks);
  if (realTime !== undefined) return { violation: realTime, checked: 0, unchecked: ranges.length };
  const oracle = new KvStateMachine();
  let next = 1;
  let checked = 0;
  const byIndex = [...ranges].sort((a, b) => a.result.index - b.result.index);
  for (const [i, r] of byIndex.entries()) {
    for (; next <= r.result.index; next++) {
      const e = applied.get(next);
      if (e === undefined) return { violation: undefined, checked, unchecked: byIndex.length - i };
      applyEntry(oracle, e);
    }
    const expected = oracle.range(r.query);
    const got = r.result;
    if (!sameResult(expected, got)) {
      return {
        violation: `range read of client ${r.client} (${r.mode}, called at ${r.call}, answered at ${r.return}) with ${describeQuery(r)} at index ${got.index} read ${describeResult(got)}; the committed log up to ${got.index} holds ${describeResult(expected)}`,
        checked,
        unchecked: byIndex.length - i,
      };
    }
    checked++;
  }
  return { violation: undefined, checked, unchecked: 0 };
}

/** Each read's index is at least that of every write acknowledged before its call. */
function checkRealTime(ranges: readonly RangeRead[], acks: readonly WriteAck[]): string | undefined {
  const sorted = [...acks].sort((a, b) => a.return - b.return);
  // highest[i]: the highest index among sorted[0..i].
  const highest: number[] = [];
  for (const [i, a] of sorted.entries()) highest.push(Math.max(a.index, i > 0 ? highest[i - 1]! : 0));
  for (const r of ranges) {
    // The acks that returned strictly before the call.
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]!.return < r.call) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) continue;
    const must = highest[lo - 1]!;
    if (r.result.index < must) {
      return `range read of client ${r.client} (${r.mode}, called at ${r.call}) read the state at index ${r.result.index}, but a write acknowledged before its call is at index ${must}: it missed a completed write`;
    }
  }
  return undefined;
}

/** Applies a committed entry as the node's host does (runtime/node-host.ts, applyEntry). */
function applyEntry(kv: KvStateMachine, e: Entry): void {
  if (e.type !== EntryType.Normal || e.data.length === 0) kv.skip(e.index);
  else if (isKvBatch(e.data)) kv.applyBatch(e.index, e.data);
  else kv.apply(e.index, e.data);
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sameResult(a: KvRangeResult, b: KvRangeResult): boolean {
  if (a.index !== b.index || a.count !== b.count || a.more !== b.more || a.entries.length !== b.entries.length) return false;
  return a.entries.every((x, i) => {
    const y = b.entries[i]!;
    return sameBytes(x.key, y.key) && sameBytes(x.value, y.value) && x.createIndex === y.createIndex && x.modIndex === y.modIndex && x.version === y.version;
  });
}

const text = new TextDecoder();

function describeQuery(r: RangeRead): string {
  const q = r.query;
  const parts = [q.prefix !== undefined ? `prefix '${text.decode(q.prefix)}'` : `['${text.decode(q.start ?? new Uint8Array())}', ${q.end === undefined ? 'end' : `'${text.decode(q.end)}'`})`];
  if (q.reverse === true) parts.push('reverse');
  if (q.limit !== undefined) parts.push(`limit ${q.limit}`);
  return parts.join(' ');
}

function describeResult(r: KvRangeResult): string {
  const entries = r.entries.map((e) => `${text.decode(e.key)}=${e.value === undefined ? '-' : text.decode(e.value)}@${e.createIndex}/${e.modIndex}/v${e.version}`);
  return `[${entries.join(', ')}] count ${r.count}${r.more ? ' more' : ''}`;
}
