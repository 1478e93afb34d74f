// F64Deque against an array: any sequence of pushes and drops at either end leaves the same
// values in the same order (through wrap-arounds and growth), bad arguments are refused, and
// an emptied deque that grew past its shrink bound goes back to its first size.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { F64Deque } from '../../src/base/f64-deque.ts';

type Op = { readonly op: 'push'; readonly n: number } | { readonly op: 'drop-first' | 'drop-last'; readonly n: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('push' as const), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ op: fc.constantFrom('drop-first' as const, 'drop-last' as const), n: fc.integer({ min: 0, max: 40 }) }),
);

describe('F64Deque', () => {
  it('holds what an array would, in order, through wrap-around and growth', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), fc.constantFrom(1, 4, 16), (ops, initial) => {
        const deque = new F64Deque(initial);
        const model: number[] = [];
        let next = 2 ** 40 + 0.5; // not small integers: the deque holds any double
        for (const o of ops) {
          if (o.op === 'push') {
            for (let i = 0; i < o.n; i++) {
              deque.push(next);
              model.push(next++);
            }
          } else {
            const n = Math.min(o.n, model.length);
            if (o.op === 'drop-first') {
              deque.dropFirst(n);
              model.splice(0, n);
            } else {
              deque.dropLast(n);
              model.splice(model.length - n, n);
            }
          }
          expect(deque.length).toBe(model.length);
          expect(Array.from({ length: deque.length }, (_, i) => deque.at(i))).toEqual(model);
          const from = Math.floor(model.length / 3);
          expect(deque.slice(from, model.length)).toEqual(model.slice(from));
        }
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('refuses an index outside it, a drop of more than it holds, and a first size not a power of two', () => {
    const deque = new F64Deque(4);
    deque.push(1);
    expect(() => deque.at(1)).toThrow(/outside/);
    expect(() => deque.at(-1)).toThrow(/outside/);
    expect(() => deque.dropFirst(2)).toThrow(/cannot drop/);
    expect(() => deque.slice(0, 2)).toThrow(/outside/);
    expect(() => deque.slice(1, 0)).toThrow(/outside/);
    expect(() => deque.dropLast(2)).toThrow(/cannot drop/);
    expect(() => new F64Deque(3)).toThrow(/power of two/);
    expect(() => new F64Deque(0)).toThrow(/power of two/);
  });

  it('gives back the memory of a burst once emptied', () => {
    const deque = new F64Deque(8);
    for (let i = 0; i < 100_000; i++) deque.push(i);
    expect(deque.capacity).toBeGreaterThanOrEqual(100_000);
    deque.dropFirst(99_999);
    expect(deque.capacity).toBeGreaterThanOrEqual(100_000); // not empty yet
    deque.dropLast(1);
    expect(deque.capacity).toBe(8);
    deque.push(5);
    expect(deque.at(0)).toBe(5);
  });
});
