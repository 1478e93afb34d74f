// The benchmark's collection between scenarios: garbage promoted to the old generation (which
// scavenges leave alone) is gone after collectGarbage, and what is still referenced stays.
import { describe, expect, it } from 'vitest';
import { collectGarbage } from '../../bench/shared/collect-garbage.ts';

describe('collectGarbage', () => {
  it('frees old garbage and keeps what is referenced', () => {
    collectGarbage();
    const kept = Array.from({ length: 1000 }, (_, i) => ({ i }));
    // Some 100 MB of objects that live through scavenges (so they are promoted), then are dropped.
    let garbage: { i: number; s: string }[][] = [];
    for (let round = 0; round < 10; round++) garbage.push(Array.from({ length: 100_000 }, (_, i) => ({ i, s: `value ${i} of round ${round}` })));
    const before = process.memoryUsage().heapUsed;
    expect(garbage.length).toBe(10);
    garbage = [];
    collectGarbage();
    const after = process.memoryUsage().heapUsed;
    expect(before - after).toBeGreaterThan(50 << 20);
    expect(kept[999]!.i).toBe(999);
  });
});
