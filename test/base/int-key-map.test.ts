/**
 * IntKeyMap (src/base/int-key-map.ts) against a Map as the model. The keys come from a small
 * pool, so that sets, replacements and deletions keep meeting the same keys; with the
 * multiplier 1 the home slot is the key's top bits, so keys that differ only in their low
 * bits all share one home and its run wraps past the last slot: the case a deletion's
 * back-shift must get right.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IntKeyMap } from '../../src/base/index.ts';

type Op = { kind: 'set'; key: number; value: number } | { kind: 'delete'; key: number } | { kind: 'get'; key: number };

/** Keys of every shape: small, negative, past 2^32, the largest safe ones, sharing low bits. */
const keyArb = fc.oneof(
  fc.integer({ min: -40, max: 40 }),
  fc.integer({ min: 0, max: 40 }).map((k) => k * 2 ** 28),
  fc.integer({ min: 0, max: 40 }).map((k) => 2 ** 32 + k),
  fc.integer({ min: 0, max: 40 }).map((k) => Number.MAX_SAFE_INTEGER - k),
  fc.integer({ min: 0, max: 40 }).map((k) => -(2 ** 31) + k),
  fc.constant(2 ** 31 - 1),
);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('set' as const), key: keyArb, value: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('get' as const), key: keyArb }) },
);

function check(map: IntKeyMap<{ v: number }>, model: Map<number, { v: number }>, keys: Iterable<number>): void {
  expect(map.size).toBe(model.size);
  for (const k of keys) {
    expect(map.get(k)).toBe(model.get(k));
    expect(map.has(k)).toBe(model.has(k));
  }
  // Every key ever used is probed above, so a value left behind in a slot would show.
}

describe('IntKeyMap', () => {
  it('holds what a Map holds, through growth, shrinking and deletions in wrapped runs', () => {
    fc.assert(
      fc.property(fc.option(fc.integer(), { nil: undefined }), fc.array(opArb, { maxLength: 600 }), fc.array(keyArb, { maxLength: 20 }), (multiplier, ops, probes) => {
        const map = new IntKeyMap<{ v: number }>(multiplier);
        const model = new Map<number, { v: number }>();
        const seen = new Set<number>(probes);
        for (const op of ops) {
          seen.add(op.key);
          if (op.kind === 'set') {
            const value = { v: op.value };
            map.set(op.key, value);
            model.set(op.key, value);
          } else if (op.kind === 'delete') {
            expect(map.delete(op.key)).toBe(model.delete(op.key));
          } else {
            expect(map.get(op.key)).toBe(model.get(op.key));
          }
        }
        check(map, model, seen);
        // Emptied one by one, it gives its memory back and still answers.
        for (const k of [...model.keys()]) {
          expect(map.delete(k)).toBe(true);
          model.delete(k);
        }
        check(map, model, seen);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps keys that share a home slot apart, across the wrap at the table end', () => {
    // Multiplier 1: the home is the key's top 4 bits of 32 (16 slots). 0xf0000000 | i all
    // start at the last slot and wrap to the first ones.
    const map = new IntKeyMap<{ v: number }>(1);
    const keys = Array.from({ length: 7 }, (_, i) => (0xf000_0000 | i) | 0);
    keys.forEach((k, i) => map.set(k, { v: i }));
    map.delete(keys[0]!);
    map.delete(keys[3]!);
    keys.forEach((k, i) => expect(map.get(k)?.v).toBe(i === 0 || i === 3 ? undefined : i));
    expect(map.size).toBe(5);
  });

  it('refuses a key that is not a safe integer and an undefined value', () => {
    const map = new IntKeyMap<number>();
    expect(() => map.set(2 ** 53, 1)).toThrow();
    expect(() => map.set(0.5, 1)).toThrow();
    expect(() => map.set(Number.NaN, 1)).toThrow();
    expect(() => map.set(1, undefined as unknown as number)).toThrow();
    expect(map.get(Number.NaN)).toBeUndefined();
    expect(map.size).toBe(0);
  });
});
