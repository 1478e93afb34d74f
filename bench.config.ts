/**
 * The benchmark scenarios `npm run bench` knows, as typed data. `bench/run.ts` picks them
 * by name (`--scenario NAME`); each `kind` has its own runner under `bench/`.
 *
 * Kinds so far:
 * - `core`: the Raft core alone, three RaftNode instances driven in memory with no I/O,
 *   which is the ceiling every layer above the core lives under;
 * - `crc`: the two CRC32 implementations the WAL may use, side by side, so that the choice
 *   between them is made by measurement (DESIGN.md, "Storage");
 * - `disk`: the disk's own limit, a bare `writev` + `fdatasync` loop that no WAL can beat.
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

/** How the disk loop treats its file: see bench/disk.bench.ts. */
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

/** Every scenario kind; later kinds (e.g. `kind: 'cluster'`) are added to this union. */
export type Scenario = CoreScenario | CrcScenario | DiskScenario | CodecScenario | RingScenario;
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
];

/** Time budget per task under `--quick`, in milliseconds. */
export const quickTimeMs = 200;
