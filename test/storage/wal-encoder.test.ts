// Proves the WAL's fast write path against its reference: BatchEncoder (entries straight
// from the caller's array into one reused scratch buffer, split into entries frames at each
// change of term and at the frame size target) writes the same bytes as encodeBatch for the
// same records, split here by a plain reading of the rule, with the iovecs split the same way
// for referenced entry data, across many batches through one encoder (the scratch buffer
// reused, grown and bypassed); EntryIndex.pushRun matches push per entry; TailCache.append
// from an offset, wrapping around its ring, matches appending the suffix.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Entry } from '../../src/core/index.ts';
import { EntryIndex } from '../../src/storage/wal/entry-index.ts';
import { BatchEncoder, ENTRIES_PAYLOAD_BYTES_TARGET, RecordType, SnapshotKind, encodeBatch, type WalRecord } from '../../src/storage/wal/format.ts';
import { TailCache } from '../../src/storage/wal/tail-cache.ts';
import { ent } from './helpers.ts';

const safeIndex = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
/** Consecutive entries whose terms never go down, as the WAL is given them. */
const entriesArb: fc.Arbitrary<Entry[]> = fc
  .tuple(
    fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER - 100 }),
    fc.integer({ min: 1, max: 1000 }),
    fc.array(
      fc.tuple(
        fc.constantFrom(0, 0, 0, 1),
        fc.constantFrom(0 as const, 1 as const),
        fc.oneof({ weight: 6, arbitrary: fc.uint8Array({ maxLength: 300 }) }, fc.uint8Array({ minLength: 16 * 1024 - 9, maxLength: 16 * 1024 + 9 })),
      ),
      { maxLength: 40 },
    ),
  )
  .map(([index, term, es]) => {
    let t = term;
    return es.map(([bump, type, data], k) => ({ index: index + k, term: (t += bump), type, data }));
  });
const headArb: fc.Arbitrary<WalRecord[]> = fc.tuple(
  fc.option(fc.record({ index: safeIndex, term: safeIndex, kind: fc.constantFrom(SnapshotKind.Compact, SnapshotKind.Replace), fileName: fc.constantFrom('snapshot-00000000000000000001.snap', 'snapshot-09007199254740991000.snap') }), { nil: undefined }),
  fc.option(safeIndex, { nil: undefined }),
).map(([marker, truncation]) => {
  const out: WalRecord[] = [];
  if (marker !== undefined) out.push({ type: RecordType.SnapshotMarker, marker });
  if (truncation !== undefined) out.push({ type: RecordType.Truncation, index: truncation });
  return out;
});
const tailArb: fc.Arbitrary<WalRecord[]> = fc.option(fc.record({ term: fc.maxSafeNat(), vote: fc.maxSafeNat(), commit: fc.maxSafeNat() }), { nil: undefined }).map((hs) => (hs === undefined ? [] : [{ type: RecordType.HardState, hardState: hs }]));
const batchArb = fc.record({ head: headArb, skip: fc.nat({ max: 3 }), entries: entriesArb, tail: tailArb });

/**
 * The entries records of `entries`, split as docs/wal-format.md says: a new frame at each
 * change of term, and before an entry that would take a frame's payload (24 bytes, then 4
 * per entry and its data) past the target; every frame holds at least one entry.
 */
function runsOf(entries: readonly Entry[]): WalRecord[] {
  const runs: Entry[][] = [];
  let payload = 0;
  for (const e of entries) {
    const run = runs.at(-1);
    if (run !== undefined && run[0]!.term === e.term && payload + 4 + e.data.length <= ENTRIES_PAYLOAD_BYTES_TARGET) {
      run.push(e);
      payload += 4 + e.data.length;
    } else {
      runs.push([e]);
      payload = 24 + 4 + e.data.length;
    }
  }
  return runs.map((run) => ({ type: RecordType.Entry, entries: run }));
}

function concat(buffers: readonly Uint8Array[]): Buffer {
  return Buffer.concat(buffers);
}

/** Byte equality, without comparing megabytes element by element through toEqual. */
function expectSameBytes(got: Buffer, expected: Buffer): void {
  expect(got.length).toBe(expected.length);
  const at = got.findIndex((b, i) => b !== expected[i]);
  expect(at, `first differing byte`).toBe(-1);
}

describe('BatchEncoder', () => {
  it('encodes byte for byte what encodeBatch does, reusing its scratch buffer', () => {
    fc.assert(
      fc.property(fc.array(batchArb, { minLength: 1, maxLength: 6 }), (batches) => {
        const encoder = new BatchEncoder();
        for (const { head, skip, entries, tail } of batches) {
          const from = Math.min(skip, entries.length);
          const records: WalRecord[] = [...head, ...runsOf(entries.slice(from)), ...tail];
          if (records.length === 0) continue;
          const expected = encodeBatch(records);
          const got = encoder.encode(head, entries, from, tail);
          expect(got.bytes).toBe(expected.bytes);
          expect(got.buffers.map((b) => b.length)).toEqual(expected.buffers.map((b) => b.length));
          expectSameBytes(concat(got.buffers), concat(expected.buffers));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('encodes a batch larger than the scratch buffer it keeps, then small ones again', () => {
    const encoder = new BatchEncoder();
    const small = [ent(1, 1, 150), ent(2, 1, 3)];
    // 4.5 MB: many entries frames (each closed at the size target), and a scratch buffer used once.
    const big = Array.from({ length: 300 }, (_, k) => ent(k + 1, 1, 15_000));
    const hs: WalRecord[] = [{ type: RecordType.HardState, hardState: { term: 1, vote: 0, commit: 0 } }];
    expect(runsOf(big).length).toBeGreaterThan(10);
    for (const entries of [small, big, small, big, small]) {
      const expected = concat(encodeBatch([...runsOf(entries), ...hs]).buffers);
      expectSameBytes(concat(encoder.encode([], entries, 0, hs).buffers), expected);
    }
  });
});

describe('EntryIndex.pushRun', () => {
  it('matches push for each entry, across growth', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.nat({ max: 3 }), fc.nat({ max: 40 })), { maxLength: 8 }), fc.nat({ max: 5 }), (runs, compactEvery) => {
        const a = new EntryIndex();
        const b = new EntryIndex();
        let offset = 32;
        let r = 0;
        for (const [n, skip, dataBytes] of runs) {
          const from = Math.min(skip, n);
          const entries = Array.from({ length: n }, (_, k) => ent(a.lastIndex + 1 - from + k, 1 + Math.floor(k / 7), (dataBytes + k) % 50));
          a.pushRun(entries, from, 3 + r, offset);
          for (let k = from; k < n; k++) {
            const e = entries[k]!;
            b.push(e.index, e.term, 3 + r, offset, e.data.length);
          }
          offset += 1000 + 8 * n;
          r++;
          if (compactEvery > 0 && r % compactEvery === 0 && a.lastIndex > a.base) {
            const at = a.base + Math.ceil((a.lastIndex - a.base) / 2);
            a.compactThrough(at);
            b.compactThrough(at);
          }
        }
        expect([a.base, a.lastIndex]).toEqual([b.base, b.lastIndex]);
        for (let i = a.base + 1; i <= a.lastIndex; i++) {
          expect([a.segment(i), a.batchOffset(i), a.length(i), a.term(i)]).toEqual([b.segment(i), b.batchOffset(i), b.length(i), b.term(i)]);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('refuses entries that do not follow the last one', () => {
    const index = new EntryIndex();
    index.pushRun([ent(1, 1), ent(2, 1)], 0, 1, 32);
    expect(() => index.pushRun([ent(4, 1)], 0, 1, 100)).toThrow(/does not follow/);
    expect(index.lastIndex).toBe(2);
  });
});

describe('TailCache.append from an offset', () => {
  it('holds what appending the suffix holds, over many wrapping appends', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 70 }), fc.integer({ min: 0, max: 20_000 }), fc.array(fc.tuple(fc.integer({ min: 1, max: 150 }), fc.nat({ max: 4 })), { maxLength: 25 }), (entriesMax, bytesMax, runs) => {
        const a = new TailCache(entriesMax, bytesMax);
        const b = new TailCache(entriesMax, bytesMax);
        let next = 1;
        for (const [n, skip] of runs) {
          const from = Math.min(skip, n);
          const entries = Array.from({ length: n }, (_, k) => ent(next - from + k, 1, (k * 37) % 180));
          next += n - from;
          a.append(entries, from);
          b.append(entries.slice(from));
        }
        for (let i = 0; i <= next; i++) expect(a.get(i)).toBe(b.get(i));
        // The newest entries are the ones held.
        let held = 0;
        for (let i = next - 1; i >= 1 && a.get(i) !== undefined; i--) held++;
        for (let i = 1; i < next - held; i++) expect(a.get(i)).toBeUndefined();
        expect(held).toBeLessThanOrEqual(entriesMax);
      }),
      { numRuns: 300 },
    );
  });
});
