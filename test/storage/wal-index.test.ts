// Proves the in-memory structures of WalStorage against plain arrays (fast-check): the
// EntryIndex (typed arrays in chunks of 4096 slots: push, truncate, compact, reset, runs of
// pushes across many chunks, chunks dropped from the front and released from the end) and the
// TailCache (the newest entries, bounded by count and bytes).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { entryBytes } from '../../src/core/index.ts';
import { EntryIndex } from '../../src/storage/wal/entry-index.ts';
import { TailCache } from '../../src/storage/wal/tail-cache.ts';
import { ent } from './helpers.ts';

type IndexOp = { kind: 'push'; n: number } | { kind: 'truncate'; at: number } | { kind: 'compact'; at: number } | { kind: 'reset'; ahead: number };
const indexOp: fc.Arbitrary<IndexOp> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('push' as const), n: fc.integer({ min: 1, max: 3000 }) }) },
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('compact' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('reset' as const), ahead: fc.nat({ max: 10 }) }),
);

describe('EntryIndex', () => {
  it('matches a plain array model', () => {
    fc.assert(
      fc.property(fc.array(indexOp, { maxLength: 40 }), (ops) => {
        const index = new EntryIndex();
        let base = 0;
        let model: { term: number; segment: number; offset: number; length: number }[] = [];
        for (const op of ops) {
          const last = base + model.length;
          if (op.kind === 'push') {
            for (let k = 1; k <= op.n; k++) {
              const i = last + k;
              const row = { term: Math.floor(i / 7) + 1, segment: i % 5, offset: i * 8, length: i % 100 };
              index.push(i, row.term, row.segment, row.offset, row.length);
              model.push(row);
            }
          } else if (op.kind === 'truncate') {
            const at = 1 + (op.at % (last + 1));
            index.truncateFrom(at);
            if (at <= base) {
              base = at - 1;
              model = [];
            } else model = model.slice(0, at - 1 - base);
          } else if (op.kind === 'compact') {
            const at = base + (op.at % (model.length + 1));
            index.compactThrough(at);
            model = model.slice(at - base);
            base = at;
          } else {
            base = last + op.ahead;
            model = [];
            index.reset(base);
          }
          expect(index.base).toBe(base);
          expect(index.lastIndex).toBe(base + model.length);
        }
        const stored = model.map((_, k) => {
          const i = base + 1 + k;
          return { term: index.term(i), segment: index.segment(i), offset: index.batchOffset(i), length: index.length(i) };
        });
        expect(stored).toEqual(model);
        expect(index.has(base)).toBe(false);
        expect(index.has(base + model.length + 1)).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});

describe('TailCache', () => {
  it('holds the newest contiguous entries within its bounds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 2000 }), fc.array(fc.tuple(fc.nat({ max: 40 }), fc.integer({ min: 1, max: 6 }), fc.nat({ max: 3 })), { maxLength: 30 }), (entriesMax, bytesMax, ops) => {
        const cache = new TailCache(entriesMax, bytesMax);
        let log: ReturnType<typeof ent>[] = [];
        for (const [at, n, action] of ops) {
          if (action === 3) {
            const upTo = at % (log.length + 1);
            cache.compactThrough(upTo);
            continue;
          }
          const from = 1 + (at % (log.length + 1));
          const es = Array.from({ length: n }, (_, k) => ent(from + k, 1, (at * 13 + k) % 200));
          log = [...log.slice(0, from - 1), ...es];
          cache.truncateFrom(from);
          cache.append(es);
        }
        // Whatever the cache returns is the log's entry; what it holds is a contiguous newest run within bounds.
        const held = log.filter((e) => cache.get(e.index) !== undefined);
        for (const e of held) expect(cache.get(e.index)).toBe(e);
        expect(held.length).toBeLessThanOrEqual(entriesMax);
        expect(held.reduce((s, e) => s + entryBytes(e), 0)).toBeLessThanOrEqual(bytesMax);
        if (held.length > 0) expect(held.at(-1)!.index - held[0]!.index + 1).toBe(held.length);
        expect(cache.get(log.length + 1)).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});
