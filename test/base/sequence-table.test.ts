/**
 * SequenceTable (src/base/sequence-table.ts) against a Map as the model: ids handed out in
 * sequence, most deleted soon and some kept long (so that newer ids find their slots taken
 * and overflow, and the table grows), with lookups of ids present, deleted and never seen.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SequenceTable } from '../../src/base/index.ts';

type Op = { kind: 'add' } | { kind: 'delete-recent'; back: number } | { kind: 'delete-any'; pick: number } | { kind: 'get'; id: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.constant({ kind: 'add' as const }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('delete-recent' as const), back: fc.nat({ max: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete-any' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('get' as const), id: fc.nat({ max: 5000 }) }) },
);

describe('SequenceTable', () => {
  it('holds what a Map holds, whatever stays how long', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.nat({ max: 2 ** 32 }), fc.array(opArb, { maxLength: 3000 }), (capacity, firstId, ops) => {
        const table = new SequenceTable<{ id: number }>(capacity);
        const model = new Map<number, { id: number }>();
        let next = firstId;
        for (const op of ops) {
          if (op.kind === 'add') {
            const item = { id: next };
            table.set(next, item);
            model.set(next, item);
            next++;
          } else if (op.kind === 'delete-recent' || op.kind === 'delete-any') {
            const ids = [...model.keys()];
            if (ids.length === 0) continue;
            const id = op.kind === 'delete-recent' ? ids[Math.max(0, ids.length - 1 - op.back)]! : ids[op.pick % ids.length]!;
            expect(table.delete(id)).toBe(model.get(id));
            model.delete(id);
            expect(table.delete(id)).toBeUndefined();
          } else {
            const id = firstId + op.id;
            expect(table.get(id)).toBe(model.get(id));
            expect(table.has(id)).toBe(model.has(id));
          }
          expect(table.size).toBe(model.size);
        }
        const entries = table.entries().sort((a, b) => a[0] - b[0]);
        expect(entries).toEqual([...model.entries()].sort((a, b) => a[0] - b[0]));
        const odd = table.select((item, id) => id % 2 === 1 && item.id === id).sort((a, b) => a[0] - b[0]);
        expect(odd).toEqual([...model.entries()].filter(([id]) => id % 2 === 1).sort((a, b) => a[0] - b[0]));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses an id already in it', () => {
    const table = new SequenceTable<string>(4);
    table.set(7, 'a');
    expect(() => table.set(7, 'b')).toThrow(/not in the table/);
    // The same slot, another id: fine (it overflows).
    table.set(11, 'c');
    expect(table.get(11)).toBe('c');
    expect(table.get(7)).toBe('a');
  });
});
