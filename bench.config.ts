/**
 * The benchmark scenarios `npm run bench` knows, as typed data. `bench/run.ts` picks them
 * by name (`--scenario NAME`); each `kind` has its own runner under `bench/`.
 *
 * Only `kind: 'core'` exists so far: the Raft core alone, three RaftNode instances driven
 * in memory with no I/O, which is the ceiling every layer above the core lives under.
 * Cluster scenarios (worker threads, WAL, rings) will join the `Scenario` union with their
 * own `kind`.
 */

/** RaftNode options a scenario fixes (see RaftConfig in src/core/raft-node.ts). */
export interface BenchNodeConfig {
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxInflight: number;
  readonly maxBatchBytes: number;
}

/** Fields every scenario has, whatever its kind. */
export interface ScenarioBase {
  /** Unique; what `--scenario NAME` matches. */
  readonly name: string;
  /** One line saying what the scenario measures, printed while it runs. */
  readonly description: string;
  /** Time budget per measured task, in milliseconds (`--quick` shortens it). */
  readonly timeMs: number;
}

/**
 * The core alone: committed entries per second at each batch size (a round proposes
 * `batch` entries on the leader and drives the cluster until the leader has applied them
 * all), and the cost of single `step` calls on the leader and on a follower.
 */
export interface CoreScenario extends ScenarioBase {
  readonly kind: 'core';
  readonly clusterSize: 3;
  /** Entries proposed per round, one measured task each. */
  readonly batchSizes: readonly number[];
  /** Bytes of each proposed entry's payload. */
  readonly payloadBytes: number;
  /** Entries carried by the App message a follower steps in the follower step task. */
  readonly stepAppEntries: number;
  /**
   * A node compacts its storage into a snapshot once it holds more than this many entries,
   * so that a long run uses bounded memory.
   */
  readonly compactionEntriesMax: number;
  readonly node: BenchNodeConfig;
}

/** Every scenario kind; later kinds (e.g. `kind: 'cluster'`) are added to this union. */
export type Scenario = CoreScenario;
export type ScenarioKind = Scenario['kind'];

export const scenarios: readonly Scenario[] = [
  {
    name: 'core',
    kind: 'core',
    description: 'Raft core only: 3 RaftNodes in memory, no I/O, no codec',
    timeMs: 1000,
    clusterSize: 3,
    batchSizes: [1, 64, 1024],
    payloadBytes: 128,
    stepAppEntries: 64,
    compactionEntriesMax: 8192,
    node: {
      electionTicks: 10,
      heartbeatTicks: 1,
      preVote: true,
      checkQuorum: true,
      maxInflight: 256,
      maxBatchBytes: 1 << 20,
    },
  },
];

/** Time budget per task under `--quick`, in milliseconds. */
export const quickTimeMs = 200;
