// Proves the Raft core keeps every safety property, and clients see a linearizable store,
// across many seeded simulation runs of a 3-node cluster with every fault kind, and that
// those runs really exercised the faults, snapshots and membership changes they claim.
import { describe, expect, it } from 'vitest';
import { smokeSweep } from './smoke-sweep.ts';

describe('simulator smoke run, 3 nodes', () => {
  it('finds no violation in 150 seeds with all faults', () => {
    const sweep = smokeSweep(3, 1, 150);
    expect(sweep.failures).toEqual([]);
    expect(sweep.runs).toBe(150);
    sweep.expectCoverage();
  });
});
