// Proves the WatchHistory bounded in count and in bytes: with large values the byte bound
// keeps it small however many changes come (a count of 65,536 changes of 1 MiB values
// would hold 64 GiB), a change larger than the whole bound is not kept, the floor follows
// what was forgotten (the index of the last change dropped, so the rest of a batch entry's
// changes at that index do not count as resumable), and reset() forgets everything. A
// fast-check property runs random pushes of changes of random sizes, some sharing an index
// as a batch entry's changes do, against a naive model (an array trimmed from the front
// while either bound is passed).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KvChange } from '../../src/kv/index.ts';
import { WATCH_CHANGE_OVERHEAD_BYTES, WatchHistory } from '../../src/runtime/index.ts';

/** A put of `valueBytes` bytes (or a delete) to a one-byte key, at (index, position). */
function change(index: number, position: number, valueBytes: number | undefined): KvChange {
  return { index, position, key: Uint8Array.of(index & 0xff), value: valueBytes === undefined ? undefined : new Uint8Array(valueBytes), createIndex: valueBytes === undefined ? 0 : index, version: valueBytes === undefined ? 0 : 1 };
}

const bytesOf = (c: KvChange): number => c.key.length + (c.value?.length ?? 0) + WATCH_CHANGE_OVERHEAD_BYTES;

function heldAfter(h: WatchHistory, index: number): [number, number][] {
  const out: [number, number][] = [];
  h.forEachAfter(index, (c) => out.push([c.index, c.position]));
  return out;
}

describe('WatchHistory', () => {
  it('keeps at most changesMax changes; the floor is the index of the last one forgotten', () => {
    const h = new WatchHistory(10, 3, Number.POSITIVE_INFINITY);
    for (let i = 11; i <= 15; i++) h.push(change(i, 0, 4));
    expect(h.count).toBe(3);
    expect(h.floorIndex).toBe(12);
    expect(heldAfter(h, 12)).toEqual([
      [13, 0],
      [14, 0],
      [15, 0],
    ]);
    expect(heldAfter(h, 14)).toEqual([[15, 0]]);
  });

  it('keeps at most bytesMax of changes, however large the values: 1 MiB values against a 4 MiB bound', () => {
    const h = new WatchHistory(0, 65_536, 4 << 20);
    for (let i = 1; i <= 100; i++) {
      h.push(change(i, 0, 1 << 20));
      expect(h.sizeBytes).toBeLessThanOrEqual(4 << 20);
    }
    // Three 1 MiB changes with their overhead fit in 4 MiB, a fourth does not.
    expect(h.count).toBe(3);
    expect(h.floorIndex).toBe(97);
    expect(heldAfter(h, 0).map(([i]) => i)).toEqual([98, 99, 100]);
    expect(h.sizeBytes).toBe(3 * bytesOf(change(98, 0, 1 << 20)));
  });

  it('a change larger than the whole bound is not kept: the floor moves to its index', () => {
    const h = new WatchHistory(0, 100, 1000);
    h.push(change(1, 0, 10));
    h.push(change(2, 0, 5000));
    expect(h.count).toBe(0);
    expect(h.sizeBytes).toBe(0);
    expect(h.floorIndex).toBe(2);
    h.push(change(3, 0, 10));
    expect(heldAfter(h, 2)).toEqual([[3, 0]]);
  });

  it('forgetting part of a batch entry puts the floor at that entry, not before it', () => {
    const h = new WatchHistory(0, 2, Number.POSITIVE_INFINITY);
    h.push(change(5, 0, 1));
    h.push(change(5, 1, 1));
    h.push(change(5, 2, 1));
    // (5, 0) is gone: a watch after index 4 would miss it, so the floor is 5.
    expect(h.floorIndex).toBe(5);
    expect(heldAfter(h, 4)).toEqual([
      [5, 1],
      [5, 2],
    ]);
  });

  it('reset() forgets everything and sets the floor', () => {
    const h = new WatchHistory(0, 10, 10_000);
    for (let i = 1; i <= 5; i++) h.push(change(i, 0, 100));
    h.reset(40);
    expect(h.count).toBe(0);
    expect(h.sizeBytes).toBe(0);
    expect(h.floorIndex).toBe(40);
    expect(heldAfter(h, 0)).toEqual([]);
    h.push(change(41, 0, 1));
    expect(heldAfter(h, 40)).toEqual([[41, 0]]);
  });

  it('agrees with a naive model on random pushes, sizes and bounds', () => {
    const pushArb = fc.record({
      sameIndex: fc.boolean(),
      valueBytes: fc.oneof(fc.constant(undefined), fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 4096 })),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70 }),
        fc.integer({ min: 0, max: 8192 }),
        fc.array(pushArb, { maxLength: 400 }),
        (changesMax, bytesMax, pushes) => {
          const h = new WatchHistory(0, changesMax, bytesMax);
          let model: KvChange[] = [];
          const pushed: KvChange[] = [];
          let floor = 0;
          let index = 0;
          let position = 0;
          for (const p of pushes) {
            if (p.sameIndex && index > 0) {
              position++;
            } else {
              index++;
              position = 0;
            }
            const c = change(index, position, p.valueBytes);
            h.push(c);
            model.push(c);
            pushed.push(c);
            const sum = (): number => model.reduce((s, m) => s + bytesOf(m), 0);
            while (model.length > 0 && (model.length > changesMax || sum() > bytesMax)) floor = model.shift()!.index;
            expect(h.count).toBe(model.length);
            expect(h.sizeBytes).toBe(sum());
            expect(h.floorIndex).toBe(floor);
            expect(h.count).toBeLessThanOrEqual(changesMax);
            expect(h.sizeBytes).toBeLessThanOrEqual(bytesMax);
          }
          const held: KvChange[] = [];
          h.forEachAfter(-1, (c) => held.push(c));
          expect(held).toEqual(model);
          // Every change after the floor is held: resuming there misses nothing.
          const after: KvChange[] = [];
          h.forEachAfter(floor, (c) => after.push(c));
          expect(after).toEqual(pushed.filter((m) => m.index > floor));
          model = [];
        },
      ),
      { numRuns: 200 },
    );
  });
});
