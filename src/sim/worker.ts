/**
 * The piscina worker behind `ringraft sim --seeds N`: runs one seeded simulation and
 * returns its summary (without the history, which stays in the worker).
 */
import { plantBug, type PlantedBug } from './planted-bugs.ts';
import { defaultSimOptions, runSimulation, type FaultKind } from './simulation.ts';

export interface SimTask {
  readonly seed: number;
  readonly nodes: number;
  readonly faults: readonly FaultKind[] | undefined;
  readonly plant: PlantedBug | undefined;
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

export function runSimTask(task: SimTask): SimTaskResult {
  const options = defaultSimOptions(task.seed, {
    nodes: task.nodes,
    ...(task.faults !== undefined ? { faults: task.faults } : {}),
    ...(task.plant !== undefined ? plantBug(task.plant) : {}),
  });
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
