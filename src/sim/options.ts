/**
 * The simulator's options: what a run simulates (cluster size, workload, faults and their
 * rates, protocol knobs) and the per-seed profile that varies them between runs, as swarm
 * testing does. The same seed and overrides give the same options, so a run replays.
 */
import { Rand, resolveRaftSettings, type RaftConfig, type RaftNode, type RaftSettings, type RaftSettingsInput } from '../core/index.ts';
import { resolveNodeSettings, type NodeSettings, type NodeSettingsInput } from '../runtime/index.ts';
import { DEFAULT_NETWORK, type NetworkOptions } from './network.ts';
import type { SimStateMachine } from './app-check.ts';

/**
 * Faults the scheduler injects, one at a time at random intervals. Two more happen inside
 * others, each with its own probability: a crash may tear the write under way, flip a bit of
 * the log (`bitFlipProbability`) or wipe the node's disk (`diskWipeProbability`).
 *
 * 'misconfigure' is the operator's mistake of starting nodes with a configuration the
 * cluster does not have (see operator.ts): extra nodes from a wrong node count, or a new
 * member given a voter set of its own. The start guard must refuse it.
 */
export const FAULT_KINDS = ['partition', 'asymmetric', 'isolate', 'crash', 'drop', 'membership', 'transfer', 'misconfigure', 'pause'] as const;
/** One of {@link FAULT_KINDS}: a kind of fault the simulator injects. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Host-side bugs the bug-planting suite can switch on. Never set outside tests. */
export interface HostBugs {
  /** The cluster's own state machine is not deterministic (sim/app-check.ts): needs appCommands. */
  readonly appNondeterministic?: boolean;
  /** Send messages before the term and vote they depend on are durable (they become durable at the next tick). */
  readonly persistHardStateLate?: boolean;
  /** The host loop sends every Ready's messages before its write, votes and acknowledgements too. */
  readonly sendBeforePersist?: boolean;
  /** With deferred syncs: the host loop sends a Ready's messages once it is written, not once it is synced. */
  readonly sendBeforeSync?: boolean;
  /**
   * "Repair" a log that recovery reports corrupt by cutting it at the bad record (and
   * dropping the segments after it), then serve from what is left.
   */
  readonly truncateCorruptLog?: boolean;
  /** Take a log whose last write a crash tore for a damaged one (CORRUPT_LOG) instead of cutting the torn write. */
  readonly refuseTornTail?: boolean;
  /** Answer each put that applied twice (sim/host-bugs.ts, WritesAnsweredTwiceHost). */
  readonly answerWritesTwice?: boolean;
  /** Answer linearizable and lease range reads from the state of whatever node they reach, without ReadIndex. */
  readonly rangeReadsLocal?: boolean;
  /** Apply a transaction's puts after its first one entry late (sim/host-bugs.ts, SplitTxnStateMachine). */
  readonly splitTxn?: boolean;
  /** A new leader keeps each lease's deadline from its grant instead of a full TTL afresh (sim/host-bugs.ts, GrantTimeLeaseKeeper). */
  readonly leaseNoFreshTtl?: boolean;
  /** Answer a follower read when the leader's read index arrives, without waiting to apply it. */
  readonly followerReadsUnapplied?: boolean;
}

/**
 * Checks the starter of nodes (the embedding API; here the simulator as operator) skips, for
 * the bug-planting suite. Never set outside tests.
 */
export interface OperatorBugs {
  /**
   * Restart a node without checking its directory against what the operator knows
   * (checkNodeDirectory): a node whose disk was wiped rejoins with an empty log under its
   * old identity, and votes.
   */
  readonly skipDirectoryCheck?: boolean;
  /**
   * Start a node with whatever voters it is given, without holding them (and its
   * membership) against the cluster's record: a node started with a wrong configuration
   * bootstraps a cluster of its own.
   */
  readonly skipConfigurationCheck?: boolean;
}

export interface SimOptions {
  readonly seed: number;
  readonly nodes: number;
  readonly faults: readonly FaultKind[];
  /** Simulated run time before the final quiet period, in ms. */
  readonly durationMs: number;
  /** Quiet period at the end (faults healed) in which the cluster must make progress. */
  readonly quiesceMs: number;
  readonly clients: number;
  /** Clients that hold a lease each: grant, a key under it, keep-alives, and now and then they stop renewing (lease-holders.ts). */
  readonly leaseHolders: number;
  readonly keys: number;
  readonly clientTimeoutMs: number;
  readonly clientAttemptsMax: number;
  /**
   * Probability of crashing a node at each crash point it reaches (a vote or new term, a
   * commit advance, winning an election), with at most a minority down. Needs 'crash' among
   * the faults.
   */
  readonly crashPointProbability: number;
  /** Mean time between injected faults, ms. */
  readonly faultMeanIntervalMs: number;
  readonly network: NetworkOptions;
  /**
   * The Raft settings (core/settings.ts), the same that `createCluster({ raft })` takes:
   * protocol knobs, batch and window sizes, varied between runs to cover more of the state
   * space.
   */
  readonly raft: RaftSettings;
  /**
   * The host settings (runtime/settings.ts), the same that `createCluster({ node })` takes:
   * the tick, and snapshots every `snapshotEveryEntries` applied entries with as many kept
   * behind for followers slightly behind.
   */
  readonly node: NodeSettings;
  /**
   * A leader sends its messages before persisting the Ready (thesis §10.2.1), so a crash
   * can leave followers with entries the leader itself lost.
   */
  readonly leaderSendsEarly: boolean;
  /**
   * In 'wal' mode: each node's WAL syncs at a later event (sim-sync.ts), as on a sync thread,
   * while the node goes on; what depends on a write waits for its sync.
   */
  readonly deferredSync: boolean;
  /**
   * 'memory': each node's disk is a MemoryStorage. 'wal': each node runs the real WAL on a
   * simulated file system that crashes tear and bit flips corrupt (see sim-fs.ts).
   */
  readonly storage: 'memory' | 'wal';
  /** In 'wal' mode: probability that a crash also flips a bit in the node's durable log. */
  readonly bitFlipProbability: number;
  /**
   * Probability that a crash also wipes the node's disk: in 'wal' mode every file in its
   * directory is deleted from the simulated file system (log, snapshots, identity); in
   * 'memory' mode its MemoryStorage is replaced by a fresh one. Either way the node has
   * lost its state, and on restart the operator's check (checkNodeDirectory) refuses it with
   * STATE_LOST: it stays down and is replaced by a new member. Like a bit flip, at most once
   * per run and only where the cluster survives losing the node for good. Needs 'crash'
   * among the faults.
   */
  readonly diskWipeProbability: number;
  /** Builds each Raft node; the bug-planting suite substitutes a broken one. */
  readonly createNode?: (config: RaftConfig) => RaftNode;
  readonly hostBugs?: HostBugs;
  readonly operatorBugs?: OperatorBugs;
  /** Check linearizability of the history at the end. Default true. */
  readonly checkHistory?: boolean;
  /**
   * Probability that a client's write is a command for a state machine of the cluster's own
   * (sim/app-check.ts: every replica must reach the same digest at each index). Default 0,
   * never drawn from the seed, so the seeds kept as tests replay as they were.
   */
  readonly appCommands?: number;
  /**
   * Probability that a client's put, delete or read of one key goes as Redis's SET, DEL or GET
   * (kv/redis.ts: a redis log command, a redis read), judged in the same history. Default 0,
   * never drawn from the seed, so the seeds kept as tests replay as they were.
   */
  readonly redisCommands?: number;
  /** The state machine those commands are for (what `ringraft/sim` tests); default the simulator's digest machine (app-check.ts). */
  readonly stateMachine?: SimStateMachine;
  /** Real time (ms) a run waits at most for the state machine's async work (runAsync) before it calls it a violation; default 30,000. */
  readonly asyncWorkWaitMs?: number;
}

/** What a caller may override: any option, and any of the Raft and host settings (merged into the profile's). */
export type SimOverrides = Partial<Omit<SimOptions, 'raft' | 'node'>> & { readonly raft?: RaftSettingsInput; readonly node?: NodeSettingsInput };

/**
 * The options of run `seed`: a profile drawn from the seed (protocol knobs, batch and
 * window sizes, network behaviour, workload shape) so that many seeds cover many
 * configurations, then `overrides`. The same seed and overrides give the same options.
 * New knobs are drawn after the older ones, so adding one leaves the others of a seed as
 * they were.
 */

export function defaultSimOptions(seed: number, overrides: SimOverrides = {}): SimOptions {
  const r = new Rand(seed ^ 0x2545f491);
  const slowNetwork = r.chance(0.3);
  const clients = r.pick([2, 4, 8]);
  const keys = r.pick([1, 3, 6]);
  const clientTimeoutMs = r.pick([60, 150, 400]);
  const snapshotEveryEntries = r.pick([8, 64, 512]);
  const faultMeanIntervalMs = r.pick([100, 250, 500]);
  const crashPointProbability = r.pick([0, 0.01, 0.05]);
  const preVote = r.chance(0.7);
  const checkQuorum = r.chance(0.7);
  const inflightMessagesMax = r.pick([1, 4, 64]);
  const appendBytesMax = r.pick([1, 200, 65536]);
  const leaderSendsEarly = r.chance(0.5);
  const snapshotChunkBytes = r.pick([64, 1024, 1 << 20]);
  const { raft, node, ...rest } = overrides;
  return {
    seed,
    nodes: 3,
    faults: FAULT_KINDS,
    durationMs: 4000,
    quiesceMs: 3000,
    clients,
    leaseHolders: 2,
    keys,
    clientTimeoutMs,
    clientAttemptsMax: 5,
    faultMeanIntervalMs,
    crashPointProbability,
    network: {
      ...DEFAULT_NETWORK,
      // Sometimes messages linger for longer than an election timeout, so that old
      // messages reach nodes that have moved on several terms.
      longDelayProbability: slowNetwork ? 0.05 : DEFAULT_NETWORK.longDelayProbability,
      longDelayMaxMs: slowNetwork ? 400 : DEFAULT_NETWORK.longDelayMaxMs,
    },
    leaderSendsEarly,
    storage: r.chance(0.3) ? 'wal' : 'memory',
    bitFlipProbability: r.pick([0, 0.05]),
    diskWipeProbability: r.pick([0, 0.02, 0.1]),
    deferredSync: r.chance(0.5),
    ...rest,
    raft: resolveRaftSettings(
      { electionTimeoutTicks: 10, heartbeatIntervalTicks: 1, preVote, checkQuorum, inflightMessagesMax, appendBytesMax, snapshotChunkBytes, ...raft },
      'raft.',
    ),
    node: resolveNodeSettings({ tickMs: 10, snapshotEveryEntries, snapshotRetainEntries: snapshotEveryEntries, ...node }, 'node.'),
  };
}
