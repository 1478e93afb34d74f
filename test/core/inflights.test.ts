// Proves the Inflights ring (add, freeLE, full, reset) keeps count, bytes and fullness right,
// including when slots wrap around the end of the ring and under a byte limit, by fixed
// cases and a fast-check property that runs random operations against a plain array model.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Inflights } from '../../src/core/index.ts';
import { AssertionError } from '../../src/base/index.ts';

describe('Inflights', () => {
  it('rejects a capacity below 1', () => {
    expect(() => new Inflights(0, 0)).toThrow(AssertionError);
  });

  it('is full by count at capacity and frees what is acknowledged', () => {
    const inf = new Inflights(3, 0);
    expect(inf.full()).toBe(false);
    inf.add(1, 10);
    inf.add(2, 10);
    expect(inf.full()).toBe(false);
    inf.add(5, 10);
    expect(inf.full()).toBe(true);
    expect(() => inf.add(6, 1)).toThrow();
    inf.freeLE(2);
    expect(inf.count).toBe(1);
    expect(inf.bytes).toBe(10);
    expect(inf.full()).toBe(false);
    // Freeing below the oldest frees nothing.
    inf.freeLE(4);
    expect(inf.count).toBe(1);
    inf.freeLE(5);
    expect(inf.count).toBe(0);
    expect(inf.bytes).toBe(0);
  });

  it('refuses an index not above the newest', () => {
    const inf = new Inflights(4, 0);
    inf.add(3, 1);
    expect(() => inf.add(3, 1)).toThrow();
    expect(() => inf.add(2, 1)).toThrow();
    expect(inf.count).toBe(1);
  });

  it('wraps around the end of the ring', () => {
    const inf = new Inflights(4, 0);
    for (let i = 1; i <= 4; i++) inf.add(i, i);
    inf.freeLE(3); // start moves to slot 3; slots 0..2 are free again.
    inf.add(5, 5);
    inf.add(6, 6);
    inf.add(7, 7); // Occupies slots 3, 0, 1, 2: the ring is full across the wrap.
    expect(inf.count).toBe(4);
    expect(inf.full()).toBe(true);
    expect(inf.bytes).toBe(4 + 5 + 6 + 7);
    inf.freeLE(5); // Frees slot 3 and the wrapped slot 0.
    expect(inf.count).toBe(2);
    expect(inf.bytes).toBe(6 + 7);
    inf.add(8, 8);
    inf.add(9, 9);
    expect(inf.full()).toBe(true);
    inf.freeLE(100);
    expect(inf.count).toBe(0);
    expect(inf.bytes).toBe(0);
  });

  it('is full once the byte limit is reached, though slots remain', () => {
    const inf = new Inflights(10, 100);
    inf.add(1, 60);
    expect(inf.full()).toBe(false);
    inf.add(2, 40); // Exactly at the limit: full.
    expect(inf.full()).toBe(true);
    inf.freeLE(1);
    expect(inf.full()).toBe(false);
    // One message may take the window over the limit (it cannot be split); then it is full.
    inf.add(3, 500);
    expect(inf.bytes).toBe(540);
    expect(inf.full()).toBe(true);
  });

  it('reset empties the window', () => {
    const inf = new Inflights(2, 50);
    inf.add(1, 30);
    inf.add(2, 30);
    inf.reset();
    expect(inf.count).toBe(0);
    expect(inf.bytes).toBe(0);
    expect(inf.full()).toBe(false);
    inf.add(1, 1); // Indexes may start over after a reset.
    expect(inf.count).toBe(1);
  });

  type Op = { kind: 'add'; gap: number; bytes: number } | { kind: 'free'; back: number } | { kind: 'reset' };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('add' as const), gap: fc.integer({ min: 0, max: 3 }), bytes: fc.integer({ min: 0, max: 40 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('free' as const), back: fc.integer({ min: -2, max: 6 }) }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'reset' as const }) },
  );

  it('agrees with an array model under random operations', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 120 }), fc.array(opArb, { maxLength: 80 }), (capacity, bytesMax, ops) => {
        const inf = new Inflights(capacity, bytesMax);
        let model: { index: number; bytes: number }[] = [];
        let lastIndex = 0;
        for (const op of ops) {
          switch (op.kind) {
            case 'add': {
              // gap 0 tries a duplicate index, which must be refused.
              const index = lastIndex + op.gap;
              const newest = model.length > 0 ? model[model.length - 1]!.index : -Infinity;
              if (model.length === capacity || index <= newest) {
                expect(() => inf.add(index, op.bytes)).toThrow();
              } else {
                inf.add(index, op.bytes);
                model.push({ index, bytes: op.bytes });
                lastIndex = index;
              }
              break;
            }
            case 'free': {
              const upTo = lastIndex - op.back;
              inf.freeLE(upTo);
              model = model.filter((m) => m.index > upTo);
              break;
            }
            case 'reset':
              inf.reset();
              model = [];
              break;
          }
          const bytes = model.reduce((sum, m) => sum + m.bytes, 0);
          expect(inf.count).toBe(model.length);
          expect(inf.bytes).toBe(bytes);
          expect(inf.full()).toBe(model.length === capacity || (bytesMax > 0 && bytes >= bytesMax));
        }
      }),
      { numRuns: 300 },
    );
  });
});
