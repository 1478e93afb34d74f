// Proves WalStorage equivalent to MemoryStorage (the model) under random use: fast-check
// generates sequences of appends that overlap and truncate the log, hard states (some with
// mustSync false, which WalStorage defers), locally created and leader-sent snapshots,
// whole-Ready persists, reads with byte limits, and close-and-reopen; after every step both
// must hold the same first and last index, entries, terms, hard state and snapshot. Small
// segments and a tiny entry cache make rollover, compaction and reads from disk frequent.
import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { emptyConfState, type Entry, type HardState, type Snapshot } from '../../src/core/index.ts';
import { MemoryStorage, WalStorage } from '../../src/storage/index.ts';
import { ent, freshDir, plain, tempDir } from './helpers.ts';

const root = tempDir();

type Op =
  | { kind: 'append'; at: number; bumps: number[]; bytes: number; withHardState: boolean }
  | { kind: 'hardState'; term: number; vote: number; commit: number; mustSync: boolean }
  | { kind: 'createSnapshot'; at: number; bytes: number }
  | { kind: 'applySnapshot'; ahead: number; bump: number; bytes: number; entries: number }
  | { kind: 'read'; lo: number; span: number; bytesMax: number }
  | { kind: 'reopen' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('append' as const), at: fc.nat(), bumps: fc.array(fc.nat({ max: 1 }), { minLength: 1, maxLength: 8 }), bytes: fc.nat({ max: 400 }), withHardState: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('hardState' as const), term: fc.nat({ max: 20 }), vote: fc.nat({ max: 5 }), commit: fc.nat({ max: 100 }), mustSync: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('createSnapshot' as const), at: fc.nat(), bytes: fc.nat({ max: 200 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('applySnapshot' as const), ahead: fc.integer({ min: -5, max: 8 }), bump: fc.nat({ max: 2 }), bytes: fc.nat({ max: 200 }), entries: fc.nat({ max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('read' as const), lo: fc.nat(), span: fc.nat({ max: 20 }), bytesMax: fc.nat({ max: 2000 }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

function bytesOf(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed * 13 + i) & 0xff);
}

/** The term the next entry after index `i` must at least have (terms never go down). */
function termAt(m: MemoryStorage, i: number): number {
  return m.term(Math.max(i, m.firstIndex() - 1));
}

function entriesFrom(m: MemoryStorage, from: number, bumps: readonly number[], bytes: number): Entry[] {
  let term = Math.max(1, termAt(m, from - 1));
  return bumps.map((b, k) => {
    term += b;
    return ent(from + k, term, (bytes + k * 17) % 401);
  });
}

/** `count` entries after a snapshot at (index, term). */
function entriesAfterSnapshot(index: number, term: number, count: number, bytes: number): Entry[] {
  return Array.from({ length: count }, (_, k) => ent(index + 1 + k, term, bytes));
}

function expectSame(wal: WalStorage, model: MemoryStorage, hardState: HardState): void {
  expect(wal.firstIndex()).toBe(model.firstIndex());
  expect(wal.lastIndex()).toBe(model.lastIndex());
  expect(plain(wal.allEntries())).toEqual(plain(model.allEntries()));
  for (let i = model.firstIndex() - 1; i <= model.lastIndex(); i++) expect(wal.term(i)).toBe(model.term(i));
  expect(wal.initialState().hardState).toEqual(hardState);
  expect(wal.snapshot().meta).toEqual(model.snapshot().meta);
  expect([...wal.snapshot().data]).toEqual([...model.snapshot().data]);
}

function run(ops: readonly Op[], cacheEntriesMax: number): void {
  const dir = freshDir(root);
  const options = { segmentSizeBytesMax: 4096, cacheEntriesMax, durability: 'none' as const };
  let wal = WalStorage.open(dir, options);
  const model = new MemoryStorage();
  let hardState: HardState = { term: 0, vote: 0, commit: 0 };
  const conf = emptyConfState([1, 2, 3]);
  try {
    ops.forEach((op, step) => {
      switch (op.kind) {
        case 'append': {
          const lo = Math.max(1, model.firstIndex() - 2);
          const from = lo + (op.at % (model.lastIndex() + 2 - lo));
          const es = entriesFrom(model, from, op.bumps, op.bytes);
          model.append(es);
          if (op.withHardState) {
            hardState = { term: es.at(-1)!.term, vote: 1, commit: step };
            wal.persist({ entries: es, hardState });
          } else wal.append(es);
          break;
        }
        case 'hardState':
          hardState = { term: op.term, vote: op.vote, commit: op.commit };
          wal.persist({ hardState, mustSync: op.mustSync });
          break;
        case 'createSnapshot': {
          const first = model.firstIndex();
          if (model.lastIndex() < first) break;
          const index = first + (op.at % (model.lastIndex() - first + 1));
          const data = bytesOf(op.bytes, step);
          const a = model.createSnapshot(index, conf, data);
          const b = wal.createSnapshot(index, conf, data);
          expect(b.meta).toEqual(a.meta);
          break;
        }
        case 'applySnapshot': {
          const index = Math.max(model.firstIndex(), model.lastIndex() + op.ahead);
          const term = Math.max(1, termAt(model, model.lastIndex())) + op.bump;
          const snap: Snapshot = { meta: { index, term, conf }, data: bytesOf(op.bytes, step) };
          const es = entriesAfterSnapshot(index, term, op.entries, op.bytes);
          model.applySnapshot(snap);
          model.append(es);
          wal.persist({ snapshot: snap, entries: es });
          break;
        }
        case 'read': {
          if (model.lastIndex() < model.firstIndex()) break;
          const lo = model.firstIndex() + (op.lo % (model.lastIndex() - model.firstIndex() + 1));
          const hi = Math.min(model.lastIndex() + 1, lo + op.span);
          expect(plain(wal.entries(lo, hi, op.bytesMax))).toEqual(plain(model.entries(lo, hi, op.bytesMax)));
          break;
        }
        case 'reopen':
          wal.close();
          wal = WalStorage.open(dir, options);
          expect(wal.recovery.tornTail).toBeUndefined();
          break;
      }
      expectSame(wal, model, hardState);
      expect(readdirSync(dir).filter((n) => n.endsWith('.snap')).length).toBeLessThanOrEqual(1);
    });
    wal.close();
    wal = WalStorage.open(dir, options);
    expectSame(wal, model, hardState);
  } finally {
    wal.close();
  }
}

describe('WalStorage against the MemoryStorage model', () => {
  it('holds the same log after any sequence of writes, snapshots and reopens', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), fc.nat({ max: 6 }), (ops, cache) => run(ops, cache)),
      { numRuns: 150 },
    );
  });
});
