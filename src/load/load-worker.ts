/**
 * The piscina task of the load harness: one load generator thread. It connects to the
 * cluster through the endpoint descriptor it is given and runs its share of the workload.
 */

import { connectEndpoint, type EndpointDescriptor } from '../cluster/index.ts';
import { runWorkload, type WorkloadResult, type WorkloadSpec } from './workload.ts';

export interface LoadTask {
  readonly descriptor: EndpointDescriptor;
  readonly spec: WorkloadSpec;
  /** History client number of this thread. */
  readonly client: number;
  readonly seed: number;
  /** Absolute ms (performance.timeOrigin based) at which every thread starts. */
  readonly startAt: number;
}

export default async function loadTask(task: LoadTask): Promise<WorkloadResult> {
  const endpoint = connectEndpoint(task.descriptor);
  try {
    return await runWorkload(endpoint.client(), task.spec, task.client, task.seed, task.startAt);
  } finally {
    endpoint.close();
  }
}
