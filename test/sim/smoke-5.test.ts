// Proves the same as the 3-node smoke run for 5-node clusters (different quorums, joint
// configurations with more members, two failures tolerated).
import { describe, expect, it } from 'vitest';
import { smokeSweep } from './smoke-sweep.ts';

describe('simulator smoke run, 5 nodes', () => {
  it('finds no violation in 120 seeds with all faults', () => {
    const sweep = smokeSweep(5, 1001, 120);
    expect(sweep.failures).toEqual([]);
    expect(sweep.runs).toBe(120);
    sweep.expectCoverage();
  });
});
