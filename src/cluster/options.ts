/**
 * The options of {@link createCluster}, their defaults and their checks. Every limit is
 * named; an option outside its range is refused with INVALID_ARGUMENT before any thread
 * starts.
 */

import { ErrorCode, RingraftError } from '../base/index.ts';
import { KV_KEY_BYTES_MAX, KV_VALUE_BYTES_MAX } from '../kv/index.ts';
import { SNAPSHOT_RETAIN_ENTRIES_MAX, type NodeSettings } from '../runtime/index.ts';
import { RING_CAPACITY_BYTES_MAX, ringFrameBytesMax } from '../transport/index.ts';

export interface ClusterOptions {
  /** Number of nodes, 1 to {@link CLUSTER_NODES_MAX}. Default 3. */
  readonly nodes?: number;
  /** A directory for the nodes' logs (one subdirectory each); omit for logs in memory. */
  readonly dataDir?: string;
  /** With a dataDir: `always` (default) syncs every write before it is acknowledged; `none` is unsafe (benchmarks only). */
  readonly fsync?: 'always' | 'none';
  /** Milliseconds per Raft tick. Default 10. */
  readonly tickMs?: number;
  /** Election timeout in ticks (randomized in [n, 2n)). Default 30 (300 to 600 ms). */
  readonly electionTicks?: number;
  /** Heartbeat interval in ticks. Default 5 (50 ms): an idle cluster wakes some 60 times a second in all. */
  readonly heartbeatTicks?: number;
  /** Pre-vote and check-quorum (both on by default; leases need check-quorum). */
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  /** AppendEntries in flight per follower. Default 256. */
  readonly maxInflight?: number;
  /** Entry bytes per AppendEntries. Default 256 KiB. */
  readonly maxBatchBytes?: number;
  /** Snapshot bytes per InstallSnapshot chunk. Default 256 KiB. */
  readonly snapshotChunkBytes?: number;
  /** Applied entries between snapshots. Default 50,000. */
  readonly snapshotEveryEntries?: number;
  /** Applied entry bytes between snapshots (an entry may carry a batch of writes). Default 64 MiB. */
  readonly snapshotEveryBytes?: number;
  /** Entries kept behind a snapshot for followers slightly behind, at most 65,536. Default 1,000. */
  readonly snapshotRetainEntries?: number;
  /** Bytes of those entries, at most: whichever bound comes first. Default 16 MiB. */
  readonly snapshotRetainBytes?: number;
  /** Bytes of AppendEntries a leader has in flight to one follower (maxInflight bounds their count). Default 16 MiB. */
  readonly inflightBytesMax?: number;
  /** Bytes of Raft messages queued for a peer whose ring is full, before the oldest are dropped as lost. Default 32 MiB. */
  readonly peerQueueBytesMax?: number;
  /** Bytes of replies queued for one client thread whose ring is full (watches end at half). Default 64 MiB. */
  readonly replyQueueBytesMax?: number;
  /** Bytes of recent changes each node keeps for watches to resume from (older: COMPACTED). Default 16 MiB. */
  readonly watchHistoryBytesMax?: number;
  /** Bytes of each ring (a power of two), large enough for the largest request (a cas with two 1 MiB values). Default 8 MiB. */
  readonly ringBytes?: number;
  /** Default timeout of a client call. Default 5,000 ms. */
  readonly requestTimeoutMs?: number;
  /** Client requests in flight at once from this process's clients; more wait for a slot. Default and most 65,536. */
  readonly requestsInFlightMax?: number;
  /** Seeds the nodes' election timers. Default: random. */
  readonly seed?: number;
}

export const CLUSTER_NODES_MAX = 15;

/**
 * The most client requests one process (one endpoint) has in flight. Each write in flight
 * has a client session of its own, and the state machine keeps 100,000 sessions (evicting the
 * least recently used): this bound stays well below it, leaving room for the sessions failed
 * writes leave behind and for a smaller second endpoint.
 */
export const REQUESTS_IN_FLIGHT_MAX = 65_536;

/** Every option with its value: the nodes' own settings, and the cluster's. */
export interface ResolvedOptions extends Omit<NodeSettings, 'dataDir' | 'peerQueueMax' | 'watchHistoryMax'> {
  readonly nodes: number;
  /** The cluster's directory (each node has a subdirectory). */
  readonly dataDir: string | undefined;
  readonly ringBytes: number;
  readonly requestTimeoutMs: number;
  readonly requestsInFlightMax: number;
  readonly seed: number;
}

/** Room in a frame beyond the payload bytes it carries: message header, entry headers. */
const FRAME_OVERHEAD_BYTES = 64 << 10;

export function resolveOptions(o: ClusterOptions = {}): ResolvedOptions {
  if (typeof o !== 'object' || o === null) throw invalid('options must be an object');
  const r: ResolvedOptions = {
    nodes: integer(o.nodes ?? 3, 'nodes', 1, CLUSTER_NODES_MAX),
    dataDir: o.dataDir,
    fsync: o.fsync ?? 'always',
    tickMs: integer(o.tickMs ?? 10, 'tickMs', 1, 60_000),
    electionTicks: integer(o.electionTicks ?? 30, 'electionTicks', 2, 10_000),
    heartbeatTicks: integer(o.heartbeatTicks ?? 5, 'heartbeatTicks', 1, 10_000),
    preVote: o.preVote ?? true,
    checkQuorum: o.checkQuorum ?? true,
    maxInflight: integer(o.maxInflight ?? 256, 'maxInflight', 1, 1 << 16),
    maxBatchBytes: integer(o.maxBatchBytes ?? 256 << 10, 'maxBatchBytes', 1, 64 << 20),
    snapshotChunkBytes: integer(o.snapshotChunkBytes ?? 256 << 10, 'snapshotChunkBytes', 1, 64 << 20),
    snapshotEveryEntries: integer(o.snapshotEveryEntries ?? 50_000, 'snapshotEveryEntries', 1, Number.MAX_SAFE_INTEGER),
    snapshotEveryBytes: integer(o.snapshotEveryBytes ?? 64 << 20, 'snapshotEveryBytes', 1, Number.MAX_SAFE_INTEGER),
    snapshotRetainEntries: integer(o.snapshotRetainEntries ?? 1_000, 'snapshotRetainEntries', 0, SNAPSHOT_RETAIN_ENTRIES_MAX),
    // Byte bounds left undefined take the node's own default.
    snapshotRetainBytes: optionalInteger(o.snapshotRetainBytes, 'snapshotRetainBytes', 0, Number.MAX_SAFE_INTEGER),
    inflightBytesMax: optionalInteger(o.inflightBytesMax, 'inflightBytesMax', 1, Number.MAX_SAFE_INTEGER),
    peerQueueBytesMax: optionalInteger(o.peerQueueBytesMax, 'peerQueueBytesMax', 1, Number.MAX_SAFE_INTEGER),
    replyQueueBytesMax: optionalInteger(o.replyQueueBytesMax, 'replyQueueBytesMax', 1, Number.MAX_SAFE_INTEGER),
    watchHistoryBytesMax: optionalInteger(o.watchHistoryBytesMax, 'watchHistoryBytesMax', 0, Number.MAX_SAFE_INTEGER),
    ringBytes: integer(o.ringBytes ?? 8 << 20, 'ringBytes', 64 << 10, RING_CAPACITY_BYTES_MAX),
    requestTimeoutMs: integer(o.requestTimeoutMs ?? 5_000, 'requestTimeoutMs', 1, 2 ** 31 - 1),
    // At most the sessions an endpoint keeps (each write in flight has its own session, and the
    // state machine keeps 100,000): more would make sessions evict each other.
    requestsInFlightMax: integer(o.requestsInFlightMax ?? REQUESTS_IN_FLIGHT_MAX, 'requestsInFlightMax', 1, REQUESTS_IN_FLIGHT_MAX),
    seed: integer(o.seed ?? Math.floor(Math.random() * 2 ** 32), 'seed', 0, 2 ** 32 - 1),
  };
  if (r.dataDir !== undefined && (typeof r.dataDir !== 'string' || r.dataDir.length === 0)) throw invalid('dataDir must be a non-empty string');
  if (r.fsync !== 'always' && r.fsync !== 'none') throw invalid(`fsync must be 'always' or 'none', got ${String(r.fsync)}`);
  if (r.heartbeatTicks >= r.electionTicks) throw invalid('heartbeatTicks must be less than electionTicks');
  if ((r.ringBytes & (r.ringBytes - 1)) !== 0) throw invalid(`ringBytes ${r.ringBytes} is not a power of two`);
  // Every frame must fit a ring: the largest batch or chunk (a batch always carries at least
  // one entry, so the largest request too), plus headers.
  const payloadMax = Math.max(r.maxBatchBytes, r.snapshotChunkBytes, KV_KEY_BYTES_MAX + 2 * KV_VALUE_BYTES_MAX);
  if (payloadMax + FRAME_OVERHEAD_BYTES > ringFrameBytesMax(r.ringBytes)) {
    throw invalid(`ringBytes ${r.ringBytes} is too small for frames of ${payloadMax} bytes; use at least ${nextPowerOfTwo(2 * (payloadMax + FRAME_OVERHEAD_BYTES + 8))}`);
  }
  return r;
}

function integer(value: number, name: string, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) throw invalid(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  return value;
}

function optionalInteger(value: number | undefined, name: string, min: number, max: number): number | undefined {
  return value === undefined ? undefined : integer(value, name, min, max);
}

function nextPowerOfTwo(n: number): number {
  return 2 ** Math.ceil(Math.log2(n));
}

export function invalid(message: string): RingraftError {
  return new RingraftError(ErrorCode.INVALID_ARGUMENT, message);
}
