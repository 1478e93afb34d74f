/**
 * The check of range reads and transactions, which the per-key linearizability search cannot
 * judge (one operation over many keys). A linearizable (or lease) range read answers at some
 * log index I; it is correct when
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
 *
 * A transaction the client saw acknowledged at index I is correct when the committed log
 * replayed by a fresh state machine applies its request (client id, sequence number) at I,
 * with a result equal byte for byte to the one the client got (its compares, and every read
 * in it, were answered from the state at I and nowhere else), and when I is above every
 * write acknowledged before its call, as for (2). A node whose state runs apart from its log,
 * a transaction half applied at I, is seen here.
 */

import { Buffer } from 'node:buffer';
import { EntryType, type Entry } from '../core/index.ts';
import { decodeTxnResult, isKvBatch, KvStateMachine, type KvApplyOutcome, type KvRangeResult } from '../kv/index.ts';
import type { RangeRead, TxnAck, WriteAck } from './workload.ts';

export interface RangeCheckResult {
  readonly violation: string | undefined;
  /** Range reads and transactions judged. */
  readonly checked: number;
  /** Of them, the transactions. */
  readonly txnsChecked?: number;
  readonly unchecked: number;
}

export function checkRangeReads(ranges: readonly RangeRead[], txns: readonly TxnAck[], acks: readonly WriteAck[], applied: ReadonlyMap<number, Entry>): RangeCheckResult {
  const calls = [
    ...ranges.map((r) => ({ call: r.call, index: r.result.index, what: `range read of client ${r.client} (${r.mode}, called at ${r.call})` })),
    ...txns.map((t) => ({ call: t.call, index: t.index, what: `transaction of client ${t.client} (called at ${t.call})` })),
  ];
  const realTime = checkRealTime(calls, acks);
  const total = ranges.length + txns.length;
  if (realTime !== undefined) return { violation: realTime, checked: 0, unchecked: total };
  const oracle = new KvStateMachine();
  /** The oracle's transaction results, by client id and sequence number: where each applied and what it answered. */
  const txnResults = new Map<string, { index: number; result: Uint8Array }>();
  const keep = (index: number, o: KvApplyOutcome): void => {
    if (o.status === 'applied' && o.result?.op === 'txn') txnResults.set(`${o.clientId}/${o.seq}`, { index, result: o.result.encoded });
  };
  let next = 1;
  let checked = 0;
  let txnsChecked = 0;
  const byIndex = [...ranges.map((r) => ({ index: r.result.index, range: r, txn: undefined })), ...txns.map((t) => ({ index: t.index, range: undefined, txn: t }))].sort((a, b) => a.index - b.index);
  for (const [i, item] of byIndex.entries()) {
    for (; next <= item.index; next++) {
      const e = applied.get(next);
      if (e === undefined) return { violation: undefined, checked, txnsChecked, unchecked: byIndex.length - i };
      for (const o of applyEntry(oracle, e)) keep(next, o);
    }
    const t = item.txn;
    if (t !== undefined) {
      const expected = txnResults.get(`${t.clientId}/${t.seq}`);
      const where = `transaction ${t.clientId}/${t.seq} of client ${t.client} (called at ${t.call}, answered at ${t.return}, at index ${t.index})`;
      if (expected === undefined || expected.index !== t.index) {
        return { violation: `${where}: the committed log applies it ${expected === undefined ? 'nowhere up to that index' : `at index ${expected.index}`}`, checked, unchecked: byIndex.length - i };
      }
      if (!Buffer.from(expected.result).equals(t.result)) {
        return { violation: `${where} answered ${describeTxn(t.result)}; the committed log replayed answers ${describeTxn(expected.result)}`, checked, unchecked: byIndex.length - i };
      }
      checked++;
      txnsChecked++;
      continue;
    }
    const r = item.range!;
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
  return { violation: undefined, checked, txnsChecked, unchecked: 0 };
}

/** Each read's (or transaction's) index is at least that of every write acknowledged before its call. */
function checkRealTime(calls: readonly { call: number; index: number; what: string }[], acks: readonly WriteAck[]): string | undefined {
  const sorted = [...acks].sort((a, b) => a.return - b.return);
  // highest[i]: the highest index among sorted[0..i].
  const highest: number[] = [];
  for (const [i, a] of sorted.entries()) highest.push(Math.max(a.index, i > 0 ? highest[i - 1]! : 0));
  for (const r of calls) {
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
    if (r.index < must) {
      return `${r.what} read the state at index ${r.index}, but a write acknowledged before its call is at index ${must}: it missed a completed write`;
    }
  }
  return undefined;
}

/** Applies a committed entry as the node's host does (runtime/node-host.ts, applyEntry); the outcomes of its requests. */
function applyEntry(kv: KvStateMachine, e: Entry): readonly KvApplyOutcome[] {
  if (e.type !== EntryType.Normal || e.data.length === 0) {
    kv.skip(e.index);
    return [];
  }
  if (isKvBatch(e.data)) return kv.applyBatch(e.index, e.data);
  return [kv.apply(e.index, e.data)];
}

/** A transaction's result in a line: whether it succeeded, and each operation's result. */
function describeTxn(encoded: Uint8Array): string {
  const r = decodeTxnResult(encoded);
  const ops = r.results.map((x) => {
    if (x.op === 'get') return x.entry === undefined ? `get ${x.truncated ? 'truncated' : 'absent'}` : `get ${text.decode(x.entry.value)}@${x.entry.createIndex}/${x.entry.modIndex}/v${x.entry.version}`;
    if (x.op === 'range') return `range ${describeResult(x.result)}`;
    if (x.op === 'delete') return `delete ${x.existed ? 'existed' : 'absent'}`;
    if (x.op === 'deleteRange') return `deleteRange ${x.deleted}`;
    return x.op;
  });
  return `${r.succeeded ? 'succeeded' : 'failed'}: ${ops.join('; ')}`;
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
