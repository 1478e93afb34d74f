/**
 * The piscina worker behind `ringraft sim --seeds N`: runs one seeded simulation and
 * returns its summary (without the history and the recorded events, which stay in the worker).
 */
import { plantBug, type PlantedBug } from './planted-bugs.ts';
import { defaultSimOptions, runSimulation, type FaultKind, type SimOverrides } from './simulation.ts';

export interface SimTask {
  readonly seed: number;
  readonly nodes: number | undefined;
  readonly faults: readonly FaultKind[] | undefined;
  readonly plant: PlantedBug | undefined;
  /** The share of puts, deletes and reads sent as Redis commands (SimOptions.redisCommands); left out: none. */
  readonly redis?: number | undefined;
}

export interface SimTaskResult {
  readonly seed: number;
  readonly nodes: number;
  readonly ok: boolean;
  readonly violation: string | undefined;
  readonly operations: number;
  readonly elections: number;
  readonly faults: number;
}

/**
 * The overrides of one run: a planted bug's hunting profile, then what the command line
 * said explicitly (which wins), so a printed replay command reproduces the run.
 */
export function simOverrides(task: SimTask): SimOverrides {
  return {
    ...(task.plant !== undefined ? plantBug(task.plant) : {}),
    ...(task.nodes !== undefined ? { nodes: task.nodes } : {}),
    ...(task.faults !== undefined ? { faults: task.faults } : {}),
    ...(task.redis !== undefined ? { redisCommands: task.redis } : {}),
  };
}

export function runSimTask(task: SimTask): SimTaskResult {
  const options = defaultSimOptions(task.seed, simOverrides(task));
  const r = runSimulation(options);
  return {
    seed: r.seed,
    nodes: r.nodes,
    ok: r.ok,
    violation: r.violation,
    operations: r.operations,
    elections: r.elections,
    faults: r.faults,
  };
}

export default function (task: SimTask): SimTaskResult {
  return runSimTask(task);
}
