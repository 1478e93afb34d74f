// A state machine that restores async, under the simulator's crashes: a restore that settles
// is finished before the node takes its next input, and a crash point reached while finishing
// it takes the node down cleanly (no run ends in the simulator's own TypeError); meanwhile the
// node drops the Raft messages it is sent and refuses requests (the host's drop path runs);
// and a restore that never settles fails its seed after asyncWorkWaitMs instead of hanging.
import { describe, expect, it } from 'vitest';
import counter from '../../examples/state-machines/counter.ts';
import { simulateStateMachine } from '../../src/lib-sim.ts';
import type { SnapshotChunks, StateMachine } from '../../src/kv/index.ts';
import { defaultSimOptions, Simulation } from '../../src/sim/index.ts';

const asyncRestore = (options: unknown): StateMachine => {
  const c = (counter as (o: unknown) => StateMachine)(options);
  return {
    ...c,
    async restore(chunks: SnapshotChunks) {
      const parts: Uint8Array[] = [];
      for await (const chunk of chunks) parts.push(chunk);
      await new Promise((resolve) => setImmediate(resolve));
      c.restore({ [Symbol.iterator]: () => parts[Symbol.iterator](), [Symbol.asyncIterator]: () => chunks[Symbol.asyncIterator]() });
    },
  };
};
const increments = (random: () => number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, 1 + Math.floor(random() * 9));
  return b;
};

describe('an async restore in the simulator', () => {
  it('passes seeds with frequent crash points, its node dropping what comes while it restores', async () => {
    let dropped = 0;
    const violations: string[] = [];
    for (let seed = 1; seed <= 12; seed++) {
      const sim = new Simulation(
        defaultSimOptions(seed, {
          nodes: 3,
          appCommands: 1,
          crashPointProbability: 0.3,
          faults: ['crash', 'partition'],
          stateMachine: { factory: asyncRestore, command: increments },
          node: { snapshotEveryEntries: 8, snapshotRetainEntries: 0 },
        }),
      );
      const r = await sim.runAsync();
      if (!r.ok) violations.push(`seed ${seed}: ${r.violation!.split('\n')[0]}`);
      for (const node of sim.nodes.values()) dropped += node.host?.status().droppedWhileRestoring ?? 0;
    }
    expect(violations).toEqual([]);
    expect(dropped, 'messages and requests dropped by restoring nodes').toBeGreaterThan(0);
  }, 120_000);

  it('fails a seed whose restore never settles, after asyncWorkWaitMs, naming it', async () => {
    const stuck = (options: unknown): StateMachine => ({ ...asyncRestore(options), restore: () => new Promise<void>(() => {}) });
    const report = await simulateStateMachine({ stateMachine: stuck, command: increments, seeds: 3, nodes: [3], commandShare: 1, asyncWorkWaitMs: 200 });
    expect(report.failures.map((f) => f.violation)).toContainEqual(expect.stringMatching(/did not settle within 200 ms/));
  }, 60_000);
});
