// Runs with commands for a state machine of the cluster's own (sim/app-check.ts): through
// crashes, partitions, snapshots and restarts every replica reaches the same digest at every
// index it applies a command at, and a machine that is not deterministic (the planted bug
// 'app-nondeterministic', which mixes in its node's id) is caught, the same seed passing
// without it.
import { describe, expect, it } from 'vitest';
import { defaultSimOptions, Simulation } from '../../src/sim/simulation.ts';
import { huntBug } from './planted-bugs.ts';
import { AppCheck } from '../../src/sim/app-check.ts';

describe("the simulator and a cluster's own state machine", () => {
  it('every replica reaches one digest at every index, through the faults of 40 seeds', () => {
    let applied = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const sim = new Simulation(defaultSimOptions(seed, { appCommands: 0.3 }));
      const r = sim.run();
      expect(r.violation, `seed ${seed}`).toBeUndefined();
      applied += sim.appCheck!.applied;
    }
    // Commands ran on every replica, many times over.
    expect(applied).toBeGreaterThan(1000);
  });

  it('catches a state machine that is not deterministic', () => {
    const found = huntBug('app-nondeterministic', 50, /^state machine divergence: node \d+ answered the command at index \d+ otherwise/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
  });

  it('keys commands batched in one entry by their place in it: replicas that apply them in the same order agree', () => {
    const found: string[] = [];
    const check = new AppCheck((what) => found.push(what), undefined, false, { awaitWork: () => undefined, later: (f) => f() });
    const [a, b] = [check.machine(1), check.machine(2)];
    for (const m of [a, b]) {
      m.apply(Uint8Array.of(1), 7);
      m.apply(Uint8Array.of(2), 7);
    }
    expect(found).toEqual([]);
    const c = check.machine(3);
    c.apply(Uint8Array.of(2), 7);
    expect(found[0]).toMatch(/^state machine divergence: node 3 answered the command at index 7/);
  });

  it('draws nothing more from a seed without commands for it: a run is the same with appCommands 0', () => {
    const a = new Simulation(defaultSimOptions(7)).run();
    const b = new Simulation(defaultSimOptions(7, { appCommands: 0 })).run();
    expect(b.stats).toEqual(a.stats);
  });
});
