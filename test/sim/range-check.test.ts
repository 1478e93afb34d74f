// The simulator's check of range reads and transactions on hand-made runs: a read that
// matches the log at its index passes; one whose entries differ from the log replayed to its
// index, or whose index misses a write acknowledged before its call, is reported; one past
// the log seen is left unchecked rather than judged. A transaction likewise, by its result.
import { describe, expect, it } from 'vitest';
import { EntryType, type Entry } from '../../src/core/index.ts';
import { encodeKvRequest, KvStateMachine, type KvRangeQuery, type KvTxn } from '../../src/kv/index.ts';
import { checkRangeReads } from '../../src/sim/range-check.ts';
import { checkLeaseExpiries } from '../../src/sim/lease-check.ts';
import type { RangeRead, TxnAck } from '../../src/sim/workload.ts';

const enc = new TextEncoder();
const put = (index: number, key: string, value: string): Entry => ({
  index,
  term: 1,
  type: EntryType.Normal,
  data: encodeKvRequest({ clientId: 100 + index, seq: 1, command: { op: 'put', key: enc.encode(key), value: enc.encode(value) } }),
});

const log = [put(1, 'k1', 'a'), put(2, 'k2', 'b'), put(3, 'k1', 'c')];
const applied = new Map(log.map((e) => [e.index, e]));

/** A read of `query` as the state machine answers it after the first `index` entries. */
function readAt(index: number, query: KvRangeQuery, call: number): RangeRead {
  const kv = new KvStateMachine();
  for (const e of log.slice(0, index)) kv.apply(e.index, e.data);
  const r = kv.range(query);
  return { client: 1, query, mode: 'safe', call, return: call + 1, result: { ...r, entries: r.entries.map((e) => ({ ...e, key: e.key.slice(), value: e.value?.slice() })) } };
}

describe('range read check', () => {
  it('passes reads that match the log at their index and cover every earlier acknowledged write', () => {
    const reads = [readAt(2, { prefix: enc.encode('k') }, 10), readAt(3, { prefix: enc.encode('k'), reverse: true }, 20)];
    const acks = [{ return: 5, index: 2 }, { return: 15, index: 3 }];
    expect(checkRangeReads(reads, [], acks, applied)).toEqual({ violation: undefined, checked: 2, txnsChecked: 0, unchecked: 0 });
  });

  it('reports a read that missed a write acknowledged before its call', () => {
    const result = checkRangeReads([readAt(2, { prefix: enc.encode('k') }, 20)], [], [{ return: 15, index: 3 }], applied);
    expect(result.violation).toMatch(/read the state at index 2, but a write acknowledged before its call is at index 3/);
  });

  it('does not hold a write acknowledged after the call against the read', () => {
    expect(checkRangeReads([readAt(2, { prefix: enc.encode('k') }, 20)], [], [{ return: 25, index: 3 }], applied).violation).toBeUndefined();
  });

  it('reports a read whose entries differ from the log replayed to its index', () => {
    const wrong = readAt(3, { prefix: enc.encode('k') }, 10);
    const tampered: RangeRead = { ...wrong, result: { ...wrong.result, entries: wrong.result.entries.map((e, i) => (i === 0 ? { ...e, value: enc.encode('a') } : e)) } };
    expect(checkRangeReads([tampered], [], [], applied).violation).toMatch(/read \[k1=a@1\/3\/v2, k2=b@2\/2\/v1\] count 2; the committed log up to 3 holds \[k1=c@1\/3\/v2/);
  });

  it('leaves a read at an index past the log it saw unchecked', () => {
    const later = readAt(3, { prefix: enc.encode('k') }, 10);
    const result = checkRangeReads([later], [], [], new Map([[1, log[0]!]]));
    expect(result).toEqual({ violation: undefined, checked: 0, txnsChecked: 0, unchecked: 1 });
  });
});

describe('transaction check', () => {
  const txn: KvTxn = {
    compares: [{ key: enc.encode('k1'), target: 'version', op: '>', value: 0 }],
    then: [{ op: 'put', key: enc.encode('k2'), value: enc.encode('t') }, { op: 'range', query: { prefix: enc.encode('k') } }],
    else: [],
  };
  const withTxn = [...log, { index: 4, term: 1, type: EntryType.Normal, data: encodeKvRequest({ clientId: 9, seq: 1, command: { op: 'txn', txn } }) }];
  const appliedTxn = new Map(withTxn.map((e) => [e.index, e]));
  /** The transaction's result as a replica that applied the log answers it. */
  function answered(): Uint8Array {
    const kv = new KvStateMachine();
    let r: Uint8Array | undefined;
    for (const e of withTxn) {
      const o = kv.apply(e.index, e.data);
      if (o.result?.op === 'txn') r = o.result.encoded.slice();
    }
    return r!;
  }
  const ack = (over: Partial<TxnAck> = {}): TxnAck => ({ client: 1, clientId: 9, seq: 1, call: 30, return: 31, index: 4, result: answered(), ...over });

  it('passes a transaction answered as the log replayed answers it, at its index', () => {
    expect(checkRangeReads([], [ack()], [{ return: 20, index: 3 }], appliedTxn)).toEqual({ violation: undefined, checked: 1, txnsChecked: 1, unchecked: 0 });
  });

  it('reports a result that differs, a wrong index, and a missed write', () => {
    // The value k2=t read back by the range becomes k2=u.
    const tampered = answered();
    tampered[tampered.lastIndexOf(0x74)] = 0x75;
    expect(checkRangeReads([], [ack({ result: tampered })], [], appliedTxn).violation).toMatch(/answered succeeded: put; range \[k1=c@1\/3\/v2, k2=u@2\/4\/v2\] count 2; the committed log replayed answers succeeded: put; range \[k1=c@1\/3\/v2, k2=t@2\/4\/v2\]/);
    expect(checkRangeReads([], [ack({ index: 3 })], [], appliedTxn).violation).toMatch(/transaction 9\/1 of client 1 .*: the committed log applies it nowhere up to that index/);
    expect(checkRangeReads([], [ack()], [{ return: 20, index: 5 }], appliedTxn).violation).toMatch(/transaction of client 1 \(called at 30\) read the state at index 4, but a write acknowledged before its call is at index 5/);
  });
});

describe('the workload', () => {
  it('sends range reads, delete-ranges, transactions and lease renewals, and the final checks judge them', async () => {
    const { runSimulation, defaultSimOptions } = await import('../../src/sim/index.ts');
    let clears = 0;
    let ranges = 0;
    let txns = 0;
    let renewals = 0;
    let expired = 0;
    for (let seed = 1; seed <= 4; seed++) {
      const r = runSimulation(defaultSimOptions(seed));
      expect(r.ok, r.violation).toBe(true);
      clears += r.history.filter((h) => h.op === 'clear' && h.return !== null).length;
      ranges += r.stats.rangeReadsChecked;
      txns += r.stats.txnsChecked;
      renewals += r.stats.leaseRenewalsChecked;
      expired += r.stats.leasesExpired;
    }
    expect(clears).toBeGreaterThan(0);
    expect(ranges).toBeGreaterThan(0);
    expect(txns).toBeGreaterThan(0);
    expect(renewals).toBeGreaterThan(0);
    expect(expired).toBeGreaterThan(0);
  });
});

describe('lease expiry check', () => {
  const expire = (index: number, id: number): Entry => ({ index, term: 1, type: EntryType.Normal, data: encodeKvRequest({ op: 'lease-expire', id }) });
  const applied = new Map([[1, expire(1, 7)], [2, expire(2, 7)]]);
  const at = (ms: number) => new Map([[1, ms], [2, ms + 50]]);
  const renewal = { holder: 3, lease: 7, ttlMs: 400, call: 1000, return: 1010 };

  it('passes an expiry a whole TTL after the call of every renewal, and judges only the first expiry', () => {
    expect(checkLeaseExpiries([renewal], applied, at(1400))).toEqual({ violation: undefined, expired: 1, checked: 1 });
  });

  it('reports an expiry before the call of a renewal plus its TTL, by how much', () => {
    expect(checkLeaseExpiries([renewal], applied, at(1390)).violation).toMatch(/^lease 7 \(TTL 400 ms\) expired at 1390 ms \(its expiry applied at index 1\), 10 ms early: holder 3 renewed it by a call at 1000 ms/);
    // A lease never expired is not judged.
    expect(checkLeaseExpiries([{ ...renewal, lease: 8 }], applied, at(0))).toEqual({ violation: undefined, expired: 1, checked: 0 });
  });
});
