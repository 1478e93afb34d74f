/** Shared body of the bug-planting tests: the first seed whose run catches a planted bug by the check the test names. */
import { HUNTING_PROFILES, plantBug, type PlantedBug } from '../../src/sim/planted-bugs.ts';
import { defaultSimOptions, runSimulation, type SimStats } from '../../src/sim/simulation.ts';

/**
 * Runs seeds 1..seedsMax with `bug` planted until one reports a violation that `caughtBy`
 * matches: the check the test proves catches the bug. A seed caught only by another check is
 * passed over (a bug may trip several; which one trips first moves with every change to the
 * runs' trajectories). Returns the seed, what was found, and the result of the control: the
 * same seed and profile with the bug left out, which must pass (else the violation is not the
 * bug's doing), and what happened in it.
 */
export function huntBug(
  bug: PlantedBug,
  seedsMax: number,
  caughtBy: RegExp,
): { seed: number; violation: string; controlViolation: string | undefined; controlStats: SimStats } | undefined {
  for (let seed = 1; seed <= seedsMax; seed++) {
    const r = runSimulation(defaultSimOptions(seed, plantBug(bug)));
    if (r.ok || !caughtBy.test(r.violation!)) continue;
    const control = runSimulation(defaultSimOptions(seed, HUNTING_PROFILES[bug]));
    return { seed, violation: r.violation!, controlViolation: control.violation, controlStats: control.stats };
  }
  return undefined;
}
