// Proves RaftLog over a MemoryStorage right: maybeAppend (match, conflict truncation,
// idempotent re-append, commit capping), findConflict, findConflictByTerm, isUpToDate
// (§5.4.1), slice across the stable/unstable boundary under byte limits, and restore from a
// snapshot, by fixed cases; and a fast-check property that applies random appends with
// truncation, persisting entries to storage at random points, and checks every read of the
// log against a plain array model.
import { AssertionError } from '../../src/base/index.ts';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EntryType, RaftLog, emptyConfState, entryBytes } from '../../src/core/index.ts';
import type { Entry, Snapshot } from '../../src/core/index.ts';
import { MemoryStorage } from '../../src/storage/index.ts';

/** An entry whose data is a function of (index, term), as Log Matching guarantees in real logs. */
function ent(index: number, term: number, dataBytes = 4): Entry {
  const data = new Uint8Array(dataBytes);
  for (let i = 0; i < dataBytes; i++) data[i] = (index * 31 + term * 7 + i) & 0xff;
  return { index, term, type: EntryType.Normal, data };
}

/** Entries 1..n with the given terms. */
function ents(terms: readonly number[], from = 1, dataBytes = 4): Entry[] {
  return terms.map((t, i) => ent(from + i, t, dataBytes));
}

/** A log whose storage holds `stableTerms` (from index 1) and whose unstable part holds `unstableTerms` after them. */
function makeLog(stableTerms: readonly number[], unstableTerms: readonly number[] = [], dataBytes = 4): { log: RaftLog; storage: MemoryStorage } {
  const storage = new MemoryStorage();
  storage.append(ents(stableTerms, 1, dataBytes));
  const log = new RaftLog(storage, Infinity);
  if (unstableTerms.length > 0) log.append(ents(unstableTerms, stableTerms.length + 1, dataBytes));
  return { log, storage };
}

const termsOf = (es: readonly Entry[]): number[] => es.map((e) => e.term);
const indexesOf = (es: readonly Entry[]): number[] => es.map((e) => e.index);

describe('RaftLog.maybeAppend', () => {
  it('appends after a matching previous entry and reports the last new index', () => {
    const { log } = makeLog([1, 2, 3]);
    expect(log.maybeAppend(3, 3, 3, [ent(4, 3), ent(5, 3)])).toBe(5);
    expect(log.lastIndex()).toBe(5);
    expect(log.committed).toBe(3);
    expect(indexesOf(log.unstableToPersist())).toEqual([4, 5]);
  });

  it('refuses when the previous entry is missing or of another term, changing nothing', () => {
    const { log } = makeLog([1, 2, 3]);
    expect(log.maybeAppend(3, 2, 3, [ent(4, 3)])).toBeUndefined();
    expect(log.maybeAppend(4, 3, 3, [ent(5, 3)])).toBeUndefined();
    expect(log.lastIndex()).toBe(3);
    expect(log.committed).toBe(0);
  });

  it('truncates a conflicting suffix (§5.3)', () => {
    const { log } = makeLog([1, 1, 2, 2]);
    expect(log.maybeAppend(2, 1, 0, [ent(3, 3)])).toBe(3);
    expect(log.lastIndex()).toBe(3);
    expect(termsOf(log.slice(1, 4, Infinity))).toEqual([1, 1, 3]);
    expect(log.term(4)).toBe(0);
  });

  it('re-appending entries it already holds is a no-op and keeps the longer suffix', () => {
    const { log } = makeLog([1, 2, 3]);
    expect(log.maybeAppend(1, 1, 0, [ent(2, 2), ent(3, 3)])).toBe(3);
    expect(log.maybeAppend(0, 0, 0, [ent(1, 1)])).toBe(1);
    // A stale, shorter AppendEntries must not cut entries that may already be acknowledged.
    expect(log.lastIndex()).toBe(3);
    expect(log.unstableToPersist()).toEqual([]);
  });

  it('caps the commit index at the last entry this message vouches for', () => {
    const { log } = makeLog([1, 1, 1]);
    // Entry 3 is ours but this message says nothing about it: commit only to 2.
    expect(log.maybeAppend(1, 1, 10, [ent(2, 1)])).toBe(2);
    expect(log.committed).toBe(2);
    // An empty append vouches for the previous entry only; commit never moves back.
    expect(log.maybeAppend(1, 1, 1, [])).toBe(1);
    expect(log.committed).toBe(2);
    expect(log.maybeAppend(3, 1, 3, [])).toBe(3);
    expect(log.committed).toBe(3);
  });

  it('treats a conflict with a committed entry as a broken invariant', () => {
    const { log } = makeLog([1, 1, 1]);
    log.commitTo(3);
    expect(() => log.maybeAppend(1, 1, 3, [ent(2, 2)])).toThrow(AssertionError);
  });
});

describe('RaftLog.findConflict', () => {
  const { log } = makeLog([1, 2, 3]);
  it('is 0 when every entry is held already (or none given)', () => {
    expect(log.findConflict([])).toBe(0);
    expect(log.findConflict([ent(1, 1), ent(2, 2), ent(3, 3)])).toBe(0);
    expect(log.findConflict([ent(2, 2)])).toBe(0);
  });
  it('is the first new entry', () => {
    expect(log.findConflict([ent(2, 2), ent(3, 3), ent(4, 4)])).toBe(4);
    expect(log.findConflict([ent(4, 4)])).toBe(4);
  });
  it('is the first entry whose term differs', () => {
    expect(log.findConflict([ent(1, 1), ent(2, 5), ent(3, 5)])).toBe(2);
    expect(log.findConflict([ent(3, 4), ent(4, 4)])).toBe(3);
  });
});

describe('RaftLog.findConflictByTerm', () => {
  // Index:        1  2  3  4  5  6  7
  const terms = [1, 1, 2, 2, 2, 5, 5];
  const { log } = makeLog(terms);
  it('returns the largest index <= index whose term is <= term', () => {
    expect(log.findConflictByTerm(7, 5)).toEqual({ index: 7, term: 5 });
    expect(log.findConflictByTerm(7, 4)).toEqual({ index: 5, term: 2 });
    expect(log.findConflictByTerm(7, 3)).toEqual({ index: 5, term: 2 });
    expect(log.findConflictByTerm(4, 2)).toEqual({ index: 4, term: 2 });
    expect(log.findConflictByTerm(7, 1)).toEqual({ index: 2, term: 1 });
    expect(log.findConflictByTerm(7, 0)).toEqual({ index: 0, term: 0 });
  });
  it('starts from the last index when asked beyond it', () => {
    expect(log.findConflictByTerm(100, 9)).toEqual({ index: 7, term: 5 });
  });
  it('stops at the snapshot boundary of a compacted log', () => {
    const storage = new MemoryStorage();
    storage.append(ents(terms));
    storage.createSnapshot(3, emptyConfState([1]), new Uint8Array(0));
    const compacted = new RaftLog(storage, Infinity);
    expect(compacted.firstIndex()).toBe(4);
    expect(compacted.findConflictByTerm(7, 1)).toEqual({ index: 3, term: 2 });
    expect(compacted.findConflictByTerm(7, 2)).toEqual({ index: 5, term: 2 });
  });
});

describe('RaftLog.isUpToDate (§5.4.1)', () => {
  const { log } = makeLog([1, 2], [3]); // last entry (3, term 3), partly unstable
  it('a later last term wins whatever the length', () => {
    expect(log.isUpToDate(1, 4)).toBe(true);
    expect(log.isUpToDate(50, 2)).toBe(false);
  });
  it('with the same last term, the longer log wins and equal is up to date', () => {
    expect(log.isUpToDate(3, 3)).toBe(true);
    expect(log.isUpToDate(4, 3)).toBe(true);
    expect(log.isUpToDate(2, 3)).toBe(false);
  });
});

describe('RaftLog.slice', () => {
  // Stable 1..5, unstable 6..8; each entry costs 10 + 24 = 34 bytes.
  const { log } = makeLog([1, 1, 2, 2, 2], [3, 3, 3], 10);
  const size = entryBytes(ent(1, 1, 10));

  it('reads across the stable/unstable boundary', () => {
    expect(log.unstable.offset).toBe(6);
    expect(indexesOf(log.slice(3, 8, Infinity))).toEqual([3, 4, 5, 6, 7]);
    expect(indexesOf(log.slice(6, 9, Infinity))).toEqual([6, 7, 8]);
    expect(indexesOf(log.slice(1, 4, Infinity))).toEqual([1, 2, 3]);
    expect(log.slice(4, 4, Infinity)).toEqual([]);
  });

  it('stops at the byte limit, counting both parts', () => {
    expect(indexesOf(log.slice(3, 9, size * 4))).toEqual([3, 4, 5, 6]);
    expect(indexesOf(log.slice(3, 9, size * 4 - 1))).toEqual([3, 4, 5]);
    expect(indexesOf(log.slice(5, 9, size * 2))).toEqual([5, 6]);
    expect(indexesOf(log.slice(1, 9, size * 2))).toEqual([1, 2]);
  });

  it('returns at least one entry however small the limit', () => {
    expect(indexesOf(log.slice(4, 9, 1))).toEqual([4]);
    expect(indexesOf(log.slice(7, 9, 0))).toEqual([7]);
  });

  it('refuses ranges outside the log', () => {
    expect(() => log.slice(0, 3, Infinity)).toThrow(AssertionError);
    expect(() => log.slice(5, 10, Infinity)).toThrow(AssertionError);
  });

  it('committedToApply hands out committed entries within applyBytesMax', () => {
    const storage = new MemoryStorage();
    storage.append(ents([1, 1, 1, 1], 1, 10));
    const small = new RaftLog(storage, size * 2);
    small.commitTo(4);
    expect(indexesOf(small.committedToApply())).toEqual([1, 2]);
    small.applying = 2;
    expect(indexesOf(small.committedToApply())).toEqual([3, 4]);
  });
});

describe('RaftLog.restore', () => {
  const snap: Snapshot = { meta: { index: 10, term: 4, conf: emptyConfState([1, 2, 3]) }, data: new Uint8Array([9]) };

  it('replaces the log with the snapshot, then storage takes it over', () => {
    const { log, storage } = makeLog([1, 1, 2], [2, 3]);
    log.restore(snap);
    expect(log.firstIndex()).toBe(11);
    expect(log.lastIndex()).toBe(10);
    expect(log.term(10)).toBe(4);
    expect(log.lastTerm()).toBe(4);
    expect(log.term(3)).toBe(0); // Compacted away.
    expect(log.committed).toBe(10);
    expect(log.unstableToPersist()).toEqual([]);
    expect(log.unstable.snapshot).toBe(snap);
    expect(log.hasCommittedToApply()).toBe(false);
    log.append([ent(11, 4)]);
    expect(log.lastIndex()).toBe(11);

    // The host persists the snapshot and the entry; the log then reads them from storage.
    storage.applySnapshot(snap);
    storage.append(log.unstableToPersist());
    log.unstable.stableSnapTo(10);
    log.unstable.stableTo(11, 4);
    expect(log.unstable.snapshot).toBeUndefined();
    expect(log.unstable.entries).toEqual([]);
    expect(log.firstIndex()).toBe(11);
    expect(log.term(10)).toBe(4);
    expect(termsOf(log.slice(11, 12, Infinity))).toEqual([4]);
  });

  it('a new RaftLog over a compacted storage starts after the snapshot', () => {
    const storage = new MemoryStorage();
    storage.append(ents([1, 1, 2, 2]));
    storage.createSnapshot(2, emptyConfState([1]), new Uint8Array(0));
    const log = new RaftLog(storage, Infinity);
    expect(log.firstIndex()).toBe(3);
    expect(log.committed).toBe(2);
    expect(log.applied).toBe(2);
    expect(log.term(2)).toBe(1);
    expect(indexesOf(log.slice(3, 5, Infinity))).toEqual([3, 4]);
  });
});

// ─── Property: random appends with truncation against an array model ────────────

type Op =
  | { kind: 'append'; startPick: number; count: number; newTerm: boolean }
  | { kind: 'maybeAppend'; prevPick: number; copyPick: number; newCount: number; wrongPrev: boolean; commitPick: number }
  | { kind: 'persist' }
  | { kind: 'advance' }
  | { kind: 'commit'; pick: number };

const nat = fc.nat({ max: 1000 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('append' as const), startPick: nat, count: fc.integer({ min: 1, max: 4 }), newTerm: fc.boolean() }),
  fc.record({
    kind: fc.constant('maybeAppend' as const),
    prevPick: nat,
    copyPick: nat,
    newCount: fc.integer({ min: 0, max: 3 }),
    wrongPrev: fc.boolean(),
    commitPick: nat,
  }),
  fc.constant({ kind: 'persist' as const }),
  fc.constant({ kind: 'advance' as const }),
  fc.record({ kind: fc.constant('commit' as const), pick: nat }),
);

describe('RaftLog against an array model', () => {
  it('reads what was appended, wherever the stable/unstable boundary lies', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        const storage = new MemoryStorage();
        const log = new RaftLog(storage, Infinity);
        let model: Entry[] = [];
        let committed = 0;
        let term = 1;
        /** The last entry of the batch handed to storage and not yet marked stable. */
        let outstanding: Entry | undefined;

        const check = (): void => {
          const last = model.length;
          expect(log.lastIndex()).toBe(last);
          expect(log.committed).toBe(committed);
          expect(log.term(0)).toBe(0);
          for (let i = 1; i <= last; i++) expect(log.term(i)).toBe(model[i - 1]!.term);
          expect(log.term(last + 1)).toBe(0);
          expect(log.slice(1, last + 1, Infinity)).toEqual(model);
          const pending = log.unstableToPersist();
          if (pending.length > 0) expect(pending).toEqual(model.slice(pending[0]!.index - 1));
        };

        for (const op of ops) {
          const last = model.length;
          switch (op.kind) {
            case 'append': {
              const start = committed + 1 + (op.startPick % (last + 1 - committed));
              // Truncating means a newer leader: a new term. Appending may keep the term.
              if (start <= last || op.newTerm) term++;
              const batch = Array.from({ length: op.count }, (_, k) => ent(start + k, term));
              log.append(batch);
              model = model.slice(0, start - 1).concat(batch);
              break;
            }
            case 'maybeAppend': {
              const prev = op.prevPick % (last + 1);
              if (op.wrongPrev && prev > 0) {
                expect(log.maybeAppend(prev, model[prev - 1]!.term + 1000, last, [ent(prev + 1, term)])).toBeUndefined();
                break;
              }
              const prevTerm = prev === 0 ? 0 : model[prev - 1]!.term;
              // Copy at least through the commit index (a real leader's log contains it).
              const copyMin = Math.max(0, committed - prev);
              const copy = copyMin + (op.copyPick % (last - prev - copyMin + 1));
              const copied = model.slice(prev, prev + copy);
              if (op.newCount > 0) term++;
              const fresh = Array.from({ length: op.newCount }, (_, k) => ent(prev + copy + 1 + k, term));
              const lastNew = prev + copy + op.newCount;
              const commit = op.commitPick % (lastNew + 3);
              expect(log.maybeAppend(prev, prevTerm, commit, [...copied, ...fresh])).toBe(lastNew);
              if (fresh.length > 0) model = model.slice(0, prev + copy).concat(fresh);
              committed = Math.max(committed, Math.min(commit, lastNew));
              break;
            }
            case 'persist': {
              if (outstanding !== undefined) break;
              const batch = log.unstableToPersist();
              if (batch.length === 0) break;
              storage.append(batch);
              log.unstable.inProgress = log.unstable.entries.length;
              outstanding = batch[batch.length - 1]!;
              break;
            }
            case 'advance':
              if (outstanding !== undefined) log.unstable.stableTo(outstanding.index, outstanding.term);
              outstanding = undefined;
              break;
            case 'commit': {
              const to = committed + (op.pick % (last - committed + 1));
              log.commitTo(to);
              committed = to;
              break;
            }
          }
          check();
        }

        // Persist everything: storage then holds exactly the model.
        if (outstanding !== undefined) log.unstable.stableTo(outstanding.index, outstanding.term);
        const rest = log.unstableToPersist();
        if (rest.length > 0) {
          storage.append(rest);
          log.unstable.stableTo(rest[rest.length - 1]!.index, rest[rest.length - 1]!.term);
        }
        expect(log.unstable.entries).toEqual([]);
        expect(storage.allEntries()).toEqual(model);
        check();
      }),
      { numRuns: 300 },
    );
  });
});
