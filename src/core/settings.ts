/**
 * The Raft settings, each defined once: its default, its range and its doc comment. The core
 * reads them from {@link RaftConfig}; the embedding API takes them as `createCluster({ raft })`,
 * the worker and the simulator pass them on as they are, and the coming `serve` command reads
 * them from its configuration file. Ticks are the host's unit of time (`tickMs` milliseconds
 * each in the worker-thread cluster).
 */
import {
  APPEND_BYTES_LIMIT,
  PROPOSAL_BYTES_LIMIT,
  SNAPSHOT_CHUNK_BYTES_MAX,
  boolean,
  integer,
  checkOrder,
  resolveSettings,
  type Settings,
  type SettingsInput,
} from '../base/index.ts';

const TICKS_MAX = 1_000_000;

/** The Raft settings by name, each with its default and range; a cluster takes them as `createCluster({ raft })`. Ticks are the host's unit of time. */
export const RAFT_SETTINGS = {
  /**
   * Base election timeout in ticks: a follower that hears from no leader for a random time in
   * [electionTimeoutTicks, 2 × electionTimeoutTicks) campaigns; a leader with check-quorum
   * steps down when it has not heard from a quorum for this long. Default 10.
   */
  electionTimeoutTicks: integer(10, 2, TICKS_MAX),
  /** Ticks between a leader's heartbeats; less than electionTimeoutTicks. Default 1. */
  heartbeatIntervalTicks: integer(1, 1, TICKS_MAX),
  /** Run a pre-vote round before a real election (thesis §9.6), so a partitioned node cannot raise the term. Default true. */
  preVote: boolean(true),
  /** A leader steps down when it has not heard from a quorum for an election timeout; leases need it. Default true. */
  checkQuorum: boolean(true),
  /** AppendEntries messages in flight to one follower in replicate state. Default 256. */
  inflightMessagesMax: integer(256, 1, 1 << 16),
  /** Entry bytes in flight to one follower (0: no byte bound, only the message count). Default 16 MiB. */
  inflightBytesMax: integer(16 << 20, 0, Number.MAX_SAFE_INTEGER),
  /** Entry bytes in one AppendEntries message (at least one entry is always sent). Default 256 KiB. */
  appendBytesMax: integer(256 << 10, 1, APPEND_BYTES_LIMIT),
  /** Largest single proposal; larger ones are refused with PROPOSAL_TOO_LARGE. Default 8 MiB. */
  proposalBytesMax: integer(8 << 20, 1, PROPOSAL_BYTES_LIMIT),
  /** Bytes a leader has proposed and not yet committed before it refuses more (PROPOSALS_FULL). Default 64 MiB. */
  uncommittedBytesMax: integer(64 << 20, 1, Number.MAX_SAFE_INTEGER),
  /** Bytes of committed entries handed out in one Ready (at least one entry is). Default 4 MiB. */
  applyBytesMax: integer(4 << 20, 1, Number.MAX_SAFE_INTEGER),
  /** Ticks a leader's lease is shortened by, for tick phase and clock drift between nodes; less than electionTimeoutTicks. Default 2. */
  leaseMarginTicks: integer(2, 1, TICKS_MAX),
  /** ReadIndex requests pending at once before more are refused (PROPOSALS_FULL). Default 65,536. */
  readsPendingMax: integer(65_536, 1, 1 << 24),
  /** Snapshot bytes in one InstallSnapshot chunk. Default 256 KiB. */
  snapshotChunkBytes: integer(256 << 10, 1, SNAPSHOT_CHUNK_BYTES_MAX),
  /** Largest snapshot a follower accepts (it assembles one in memory). Default 1 GiB. */
  snapshotBytesMax: integer(1 << 30, 1, 2 ** 32 - 1),
} as const;

/** Every Raft setting, resolved. */
export type RaftSettings = Settings<typeof RAFT_SETTINGS>;
/** The Raft settings a caller may give; the rest take their defaults. */
export type RaftSettingsInput = SettingsInput<typeof RAFT_SETTINGS>;

/**
 * Resolves Raft settings and checks how they relate. `path` prefixes names in errors
 * (`raft.`). An unknown name or a bad value is an INVALID_ARGUMENT naming it.
 */
export function resolveRaftSettings(input: unknown, path = ''): RaftSettings {
  const s = resolveSettings(RAFT_SETTINGS, input, path);
  checkOrder(s, path, 'heartbeatIntervalTicks', 'electionTimeoutTicks', 'less');
  checkOrder(s, path, 'leaseMarginTicks', 'electionTimeoutTicks', 'less');
  return s;
}
