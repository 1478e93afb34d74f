// Proves a seed replays a run exactly: two runs of the same seed produce the same history,
// event count, statistics and fault log (disk wipes and misconfigured starts included), and
// different seeds produce different runs.
import { describe, expect, it } from 'vitest';
import { historyToJsonLines } from '../../src/sim/history.ts';
import { defaultSimOptions, runSimulation } from '../../src/sim/simulation.ts';

describe('simulator determinism', () => {
  it('replays a seed exactly', () => {
    for (const seed of [7, 42]) {
      const a = runSimulation(defaultSimOptions(seed, { nodes: 5 }));
      const b = runSimulation(defaultSimOptions(seed, { nodes: 5 }));
      expect(a.events).toBe(b.events);
      expect(a.stats).toEqual(b.stats);
      expect(historyToJsonLines(a.history)).toBe(historyToJsonLines(b.history));
      expect(a.history.length).toBeGreaterThan(50);
    }
  });

  it('replays a seed with disk wipes and misconfigured starts exactly, in each storage mode', () => {
    // Seeds whose runs have both, in each mode (checked below): memory, the WAL synced at
    // once, the WAL synced at a later event.
    const modes = [
      { seed: 1, storage: 'memory', deferredSync: false },
      { seed: 1, storage: 'wal', deferredSync: false },
      { seed: 3, storage: 'wal', deferredSync: true },
    ] as const;
    for (const { seed, storage, deferredSync } of modes) {
      const options = defaultSimOptions(seed, { storage, deferredSync, diskWipeProbability: 1, crashPointProbability: 0.05 });
      const a = runSimulation(options);
      const b = runSimulation(options);
      expect(a.ok, a.violation).toBe(true);
      expect(a.stats.diskWipes).toBe(1);
      expect(a.stats.misconfiguredStarts).toBeGreaterThan(0);
      expect(a.events).toBe(b.events);
      expect(a.stats).toEqual(b.stats);
      expect(a.faultLog).toEqual(b.faultLog);
      expect(historyToJsonLines(a.history)).toBe(historyToJsonLines(b.history));
      if (deferredSync) expect(a.stats.syncsDeferred).toBeGreaterThan(0);
    }
  });

  it('gives different seeds different runs', () => {
    const a = runSimulation(defaultSimOptions(1));
    const b = runSimulation(defaultSimOptions(2));
    expect(historyToJsonLines(a.history)).not.toBe(historyToJsonLines(b.history));
  });
});
