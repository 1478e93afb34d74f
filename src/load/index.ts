/**
 * The load harness behind `ringraft load`, and the public names of this folder. It ships in
 * the package (with its runtime dependencies, piscina and hdr-histogram-js) because every
 * command of the published `ringraft` bin must run from an installed package. The benchmarks
 * in bench/ that only need the closed and open loops keep those in bench/load/loops.ts.
 *
 * `load-worker.ts` is the piscina task file: the harness names it by URL, so it is no import
 * and not re-exported here beyond its task type.
 */

export { FAULT_KINDS, recoveryMs, runLoad, type FaultKind, type FaultReport, type FaultStep, type LoadOptions, type LoadReport } from './harness.ts';
export type { LoadTask } from './load-worker.ts';
export { keyName, nowMs, OP_KINDS, OpPicker, runWorkload, type OpKind, type WorkloadResult, type WorkloadSpec } from './workload.ts';
