// The simulator's check of range reads on hand-made runs: a read that matches the log at its
// index passes; one whose entries differ from the log replayed to its index, or whose index
// misses a write acknowledged before its call, is reported; one past the log seen is left
// unchecked rather than judged.
import { describe, expect, it } from 'vitest';
import { EntryType, type Entry } from '../../src/core/index.ts';
import { encodeKvRequest, KvStateMachine, type KvRangeQuery } from '../../src/kv/index.ts';
import { checkRangeReads } from '../../src/sim/range-check.ts';
import type { RangeRead } from '../../src/sim/workload.ts';

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
    expect(checkRangeReads(reads, acks, applied)).toEqual({ violation: undefined, checked: 2, unchecked: 0 });
  });

  it('reports a read that missed a write acknowledged before its call', () => {
    const result = checkRangeReads([readAt(2, { prefix: enc.encode('k') }, 20)], [{ return: 15, index: 3 }], applied);
    expect(result.violation).toMatch(/read the state at index 2, but a write acknowledged before its call is at index 3/);
  });

  it('does not hold a write acknowledged after the call against the read', () => {
    expect(checkRangeReads([readAt(2, { prefix: enc.encode('k') }, 20)], [{ return: 25, index: 3 }], applied).violation).toBeUndefined();
  });

  it('reports a read whose entries differ from the log replayed to its index', () => {
    const wrong = readAt(3, { prefix: enc.encode('k') }, 10);
    const tampered: RangeRead = { ...wrong, result: { ...wrong.result, entries: wrong.result.entries.map((e, i) => (i === 0 ? { ...e, value: enc.encode('a') } : e)) } };
    expect(checkRangeReads([tampered], [], applied).violation).toMatch(/read \[k1=a@1\/3\/v2, k2=b@2\/2\/v1\] count 2; the committed log up to 3 holds \[k1=c@1\/3\/v2/);
  });

  it('leaves a read at an index past the log it saw unchecked', () => {
    const later = readAt(3, { prefix: enc.encode('k') }, 10);
    const result = checkRangeReads([later], [], new Map([[1, log[0]!]]));
    expect(result).toEqual({ violation: undefined, checked: 0, unchecked: 1 });
  });
});

describe('the workload', () => {
  it('sends range reads and delete-ranges, and the final checks judge them', async () => {
    const { runSimulation, defaultSimOptions } = await import('../../src/sim/index.ts');
    let clears = 0;
    let ranges = 0;
    for (let seed = 1; seed <= 4; seed++) {
      const r = runSimulation(defaultSimOptions(seed));
      expect(r.ok, r.violation).toBe(true);
      clears += r.history.filter((h) => h.op === 'clear' && h.return !== null).length;
      ranges += r.stats.rangeReadsChecked;
    }
    expect(clears).toBeGreaterThan(0);
    expect(ranges).toBeGreaterThan(0);
  });
});
