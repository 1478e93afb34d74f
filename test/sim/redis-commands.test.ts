// The store's Redis commands under the simulator's faults (runs with redisCommands): puts,
// deletes and reads of one key sent as SET, DEL and GET (a redis log command, a redis read)
// are judged in the same history as the rest, so exactly-once and linearizability hold for
// them through crashes, partitions and leader changes, on every seed tried.
import { describe, expect, it } from 'vitest';
import { defaultSimOptions, runSimulation } from '../../src/sim/index.ts';

describe('Redis commands in the simulator', () => {
  it('keep the history linearizable through faults, on every seed', () => {
    let sent = 0;
    const violations: string[] = [];
    for (let seed = 1; seed <= 24; seed++) {
      const r = runSimulation(defaultSimOptions(seed, { nodes: seed % 2 === 0 ? 3 : 5, redisCommands: 0.5 }));
      if (!r.ok) violations.push(`seed ${seed}: ${r.violation!.split('\n')[0]}`);
      sent += r.stats.redisCommands;
    }
    expect(violations).toEqual([]);
    expect(sent).toBeGreaterThan(1_000);
  }, 120_000);
});
