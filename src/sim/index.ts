/**
 * The simulator's public names: a seeded run (`runSimulation`), its options and faults, the
 * planted bugs, the events a run records and their lines, the pool worker's task, the history
 * format and the linearizability checker (the load harness checks real histories with it).
 */
export { historyToJsonLines, type HistoryOp } from './history.ts';
export { checkLinearizable } from './linearizability.ts';
export { PLANTED_BUGS, type PlantedBug } from './planted-bugs.ts';
export { FAULT_KINDS, defaultSimOptions, runSimulation, Simulation, type FaultKind, type SimResult } from './simulation.ts';
export { formatTraceRecord, type SimTraceEvent, type TraceOptions, type TraceRecord } from './trace-recorder.ts';
export { simOverrides, type SimTask, type SimTaskResult } from './worker.ts';
export {
  ReadyDriver,
  type DriverEvent,
  type DriverNode,
  type DriverNodeOptions,
  type DropFilter,
  type DropReason,
  type MessageSink,
  type ReadyDriverOptions,
} from './ready-driver.ts';
