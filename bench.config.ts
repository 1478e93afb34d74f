/**
 * The benchmark scenarios `npm run bench` knows, as typed data. `bench/run.ts` picks them
 * by name (`--scenario NAME`); each `kind` has its own runner under `bench/`.
 *
 * Kinds so far:
 * - `core`: the Raft core alone, three RaftNode instances driven in memory with no I/O,
 *   which is the ceiling every layer above the core lives under;
 * - `crc`: the two CRC32 implementations the WAL may use, side by side, so that the choice
 *   between them is made by measurement (DESIGN.md, "Storage");
 * - `disk`: the disk's own limit, a bare `writev` + `fdatasync` loop that no WAL can beat;
 * - `codec`, `ring`: the message codec, and the SharedArrayBuffer ring against `postMessage`;
 * - `cluster`: a real cluster on worker threads (createCluster) under closed and open load,
 *   each figure next to the limit that bounds it, measured in the same run
 *   (bench/cluster/cluster.bench.ts).
 *
 * `targets` are the figures the cluster benchmark is held to: the run reports each as met
 * or missed and never adjusts what it measures to meet one.
 */
import type { RaftSettingsInput } from './src/core/index.ts';

/** Raft settings a scenario fixes (see src/core/settings.ts). */
export type BenchNodeConfig = RaftSettingsInput;

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

/**
 * CRC32 throughput: `zlib.crc32` (node:zlib, built in) against the pure-JS `crc-32`
 * package's `buf`, on one buffer of each size, measured one after the other in one run.
 * Before timing, both must agree on `verifyBuffersCount` random buffers, or the run fails.
 */
export interface CrcScenario extends ScenarioBase {
  readonly kind: 'crc';
  /** Bytes per checksummed buffer, one measured task per size and implementation. */
  readonly bufferSizesBytes: readonly number[];
  /** Random buffers (random lengths, random bytes) both implementations must agree on. */
  readonly verifyBuffersCount: number;
}

/** How the disk loop treats its file: see bench/micro/disk.bench.ts. */
export type DiskFileVariant = 'growing' | 'preallocated';

/**
 * The disk's limit: a bare loop of one `writev` (one iovec per record) and one `fdatasync`
 * per batch, appending records of `recordBytes`, on a growing and on a preallocated file.
 * Each loop stops after `timeMs` or before the file would pass `fileBytesMax`.
 */
export interface DiskScenario extends ScenarioBase {
  readonly kind: 'disk';
  /** Bytes of one record (one iovec). */
  readonly recordBytes: number;
  /** Records per `writev` + `fdatasync`, one measured loop per size and variant. */
  readonly batchSizes: readonly number[];
  readonly variants: readonly DiskFileVariant[];
  /**
   * A loop stops before its file would grow past this, so that a fast disk cannot fill
   * the temporary directory; it is also the preallocated file's size.
   */
  readonly fileBytesMax: number;
}

/** The message codec: encode and decode time of typical Raft messages, against a fixed-width layout. */
export interface CodecScenario extends ScenarioBase {
  readonly kind: 'codec';
}

/**
 * The SharedArrayBuffer ring between two worker threads, against `postMessage` of the same
 * payloads: throughput, and round-trip latency with the receiver asleep in `Atomics.wait`.
 */
export interface RingScenario extends ScenarioBase {
  readonly kind: 'ring';
  readonly messageBytes: number;
}

/** What a cluster scenario measures: committed puts, or reads at one consistency. */
export type ClusterOp = 'put' | 'get-linearizable' | 'get-lease';

/**
 * A cluster of `nodes` Raft nodes on worker threads (createCluster), driven from the main
 * thread by one client. For each level of `inFlight` and each op: a warm-up of `warmupMs`,
 * then a closed loop of `timeMs` (latency from an HdrHistogram). Then, for each op in
 * `openLoopOps`, an open loop at `openLoopRateOfPeak` × the best closed-loop rate of that op,
 * for `timeMs`, latency counted from each operation's due time.
 *
 * Keys are `keyBytes` long, drawn round-robin from `keySpace` distinct keys, all written once
 * before the first measurement; values are `valueBytes` long.
 *
 * The limits, measured in the same run with the same payloads: the ring between two worker
 * threads at the request's frame size, one thread applying the same operations to a `Map`,
 * and (durable scenarios) the bare `writev` + `fdatasync` loop at the WAL batch the cluster
 * achieved (see bench/cluster/cluster.bench.ts).
 */
export interface ClusterScenario extends ScenarioBase {
  readonly kind: 'cluster';
  readonly nodes: number;
  /** Logs in a temporary directory, synced before every acknowledgement (`fsync: 'always'`); otherwise in memory. */
  readonly durable: boolean;
  readonly keyBytes: number;
  readonly valueBytes: number;
  readonly keySpace: number;
  readonly ops: readonly ClusterOp[];
  /** Requests in flight, one closed loop each (per op). */
  readonly inFlight: readonly number[];
  /** The levels `--quick` keeps. */
  readonly quickInFlight: readonly number[];
  /** Discarded load before each measured loop, in milliseconds. */
  readonly warmupMs: number;
  /** A measured loop stops after this many operations even if time is left (every loop is bounded). */
  readonly opsMaxPerLoop: number;
  readonly openLoopOps: readonly ClusterOp[];
  readonly openLoopRateOfPeak: number;
  /**
   * The cluster's options (ClusterOptions): the replication pipeline and batch, the
   * client's requests in flight. Its timing (tick, heartbeat, election timeout) is the
   * library's default, so that the benchmark measures what an embedder gets.
   */
  readonly cluster: {
    readonly raft: { readonly inflightMessagesMax: number; readonly appendBytesMax: number };
    readonly client: { readonly requestsInFlightMax: number; readonly requestTimeoutMs: number };
    readonly seed: number;
  };
  readonly limits: {
    /** Measured time of each limit loop, in milliseconds (`--quick` shortens it). */
    readonly timeMs: number;
    /** Messages the ring limit's sender publishes at once, as a node publishes a turn's frames. */
    readonly ringPublishBatch: number;
    /** The preallocated file of the disk limit (smaller than the disk scenario's: it is written once per batch size). */
    readonly diskFileBytesMax: number;
  };
}

/** Every scenario kind. */
export type Scenario = CoreScenario | CrcScenario | DiskScenario | CodecScenario | RingScenario | ClusterScenario;
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
      electionTimeoutTicks: 10,
      heartbeatIntervalTicks: 1,
      preVote: true,
      checkQuorum: true,
      inflightMessagesMax: 256,
      appendBytesMax: 1 << 20,
    },
  },
  {
    name: 'crc',
    kind: 'crc',
    description: 'CRC32 throughput: zlib.crc32 against crc-32 (pure JS), per buffer size',
    timeMs: 1000,
    bufferSizesBytes: [150, 1024, 64 * 1024, 1024 * 1024],
    verifyBuffersCount: 256,
  },
  {
    name: 'disk',
    kind: 'disk',
    description: 'the disk limit: bare writev + fdatasync loop of 150 B records, growing vs preallocated file',
    timeMs: 1000,
    recordBytes: 150,
    batchSizes: [1, 64, 1024],
    variants: ['growing', 'preallocated'],
    fileBytesMax: 256 * 1024 * 1024,
  },
  {
    name: 'codec',
    kind: 'codec',
    description: 'message codec: encode and decode of typical Raft messages, bitmap+varint against fixed-width',
    timeMs: 500,
  },
  {
    name: 'ring',
    kind: 'ring',
    description: 'SharedArrayBuffer ring between two worker threads against postMessage, 150 B messages',
    timeMs: 1000,
    messageBytes: 150,
  },
  clusterScenario('cluster-memory', false, 'a 3-node cluster on worker threads, logs in memory: puts and reads, closed loops at 1 to 4096 in flight, an open loop at half the peak'),
  clusterScenario('cluster-durable', true, "a 3-node cluster on worker threads, WAL with fsync 'always' in a temporary directory: puts and reads, closed and open loops"),
];

function clusterScenario(name: string, durable: boolean, description: string): ClusterScenario {
  return {
    name,
    kind: 'cluster',
    description,
    timeMs: 3000,
    nodes: 3,
    durable,
    keyBytes: 16,
    valueBytes: 128,
    keySpace: 16_384,
    ops: ['put', 'get-linearizable', 'get-lease'],
    inFlight: [1, 16, 256, 512, 1024, 4096],
    quickInFlight: [1, 256],
    warmupMs: 500,
    opsMaxPerLoop: 50_000_000,
    openLoopOps: ['put'],
    openLoopRateOfPeak: 0.5,
    cluster: {
      raft: { inflightMessagesMax: 256, appendBytesMax: 256 * 1024 },
      client: { requestsInFlightMax: 65_536, requestTimeoutMs: 5_000 },
      seed: 1,
    },
    limits: { timeMs: 1000, ringPublishBatch: 64, diskFileBytesMax: 64 * 1024 * 1024 },
  };
}

/** Time budget per task under `--quick`, in milliseconds. */
export const quickTimeMs = 200;
/** Under `--quick`, a cluster loop's measured time, its warm-up and each limit loop, in milliseconds. */
export const quickCluster = { timeMs: 750, warmupMs: 150, limitTimeMs: 250 } as const;

/**
 * A figure the cluster benchmark is held to. It is met when one closed-loop row of `op`
 * that matches the filters (`durable`, `inFlightMin`, `inFlightExact`) meets every bound.
 */
export interface Target {
  readonly name: string;
  readonly op: ClusterOp;
  /** Only rows of durable (true) or in-memory (false) scenarios; absent: either. */
  readonly durable?: boolean;
  readonly inFlightMin?: number;
  readonly inFlightExact?: number;
  readonly opsPerSecMin?: number;
  readonly p50MaxMs?: number;
  readonly p99MaxMs?: number;
}

export const targets: readonly Target[] = [
  { name: 'in-memory: >= 500,000 committed writes/s at >= 256 in flight', op: 'put', durable: false, inFlightMin: 256, opsPerSecMin: 500_000 },
  { name: 'durable: >= 250,000 writes/s at >= 256 in flight with p99 < 10 ms', op: 'put', durable: true, inFlightMin: 256, opsPerSecMin: 250_000, p99MaxMs: 10 },
  { name: 'durable: p50 < 0.5 ms at 1 in flight', op: 'put', durable: true, inFlightExact: 1, p50MaxMs: 0.5 },
  { name: 'linearizable reads >= 1,000,000/s', op: 'get-linearizable', opsPerSecMin: 1_000_000 },
];
