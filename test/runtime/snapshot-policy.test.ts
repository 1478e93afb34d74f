// SnapshotPolicy (runtime/snapshot-policy.ts): when a snapshot is due. A node's first snapshot
// after it starts comes early by its phase, so that the nodes of a cluster, applying the same
// entries, snapshot at different indexes; after that, every interval.
import { describe, expect, it } from 'vitest';
import { EntryType } from '../../src/core/index.ts';
import { SnapshotPolicy, snapshotPhase } from '../../src/runtime/snapshot-policy.ts';

const SETTINGS = { snapshotEveryEntries: 1000, snapshotEveryBytes: 1 << 30, snapshotRetainEntries: 0, snapshotRetainBytes: 0 };

/** Applies entries from 1 on, taking each snapshot when due; the indexes the snapshots were taken at. */
function snapshotsTaken(policy: SnapshotPolicy, entries: number, dataBytes = 10): number[] {
  const taken: number[] = [];
  let snapshotIndex = 0;
  for (let index = 1; index <= entries; index++) {
    policy.noteApplied({ index, term: 1, type: EntryType.Normal, data: new Uint8Array(dataBytes) });
    if (policy.isDue(index, snapshotIndex)) {
      taken.push(index);
      snapshotIndex = index;
      policy.noteTaken();
    }
  }
  return taken;
}

describe('SnapshotPolicy', () => {
  it('is due every snapshotEveryEntries entries, or every snapshotEveryBytes bytes', () => {
    expect(snapshotsTaken(new SnapshotPolicy(SETTINGS, 0), 3500)).toEqual([1000, 2000, 3000]);
    expect(snapshotsTaken(new SnapshotPolicy({ ...SETTINGS, snapshotEveryBytes: 5000 }, 0), 1200, 100)).toEqual([50, 100, 150, 200, 250, 300, 350, 400, 450, 500, 550, 600, 650, 700, 750, 800, 850, 900, 950, 1000, 1050, 1100, 1150, 1200]);
  });

  it('takes the first snapshot early by its phase, by entries and by bytes, then every interval', () => {
    expect(snapshotsTaken(new SnapshotPolicy(SETTINGS, 0, 0.25), 3000)).toEqual([750, 1750, 2750]);
    expect(snapshotsTaken(new SnapshotPolicy({ ...SETTINGS, snapshotEveryBytes: 10_000 }, 0, 0.4), 300, 100)).toEqual([60, 160, 260]);
  });

  it('counts from an installed snapshot without the phase', () => {
    const policy = new SnapshotPolicy(SETTINGS, 0, 0.3);
    policy.noteInstalled(500);
    expect(policy.isDue(1499, 500)).toBe(false);
    expect(policy.isDue(1500, 500)).toBe(true);
  });

  it('gives the first ids phases in [0, 0.5), well apart, and refuses one outside [0, 1)', () => {
    const phases = [1, 2, 3, 4, 5].map(snapshotPhase);
    for (const p of phases) expect(p >= 0 && p < 0.5).toBe(true);
    const sorted = [...phases.slice(0, 3)].sort((a, b) => a - b);
    for (let k = 1; k < sorted.length; k++) expect(sorted[k]! - sorted[k - 1]!).toBeGreaterThan(0.1);
    expect(() => new SnapshotPolicy(SETTINGS, 0, 1)).toThrow(/phase/);
    expect(() => new SnapshotPolicy(SETTINGS, 0, -0.1)).toThrow(/phase/);
  });
});
