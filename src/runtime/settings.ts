/**
 * The settings of a node's host, each defined once with its default, range and doc comment:
 * its clock, its disk, its snapshots, its watch history, its write batches and its queues. The
 * embedding API takes them as `createCluster({ node })`, the worker and the simulator pass
 * them on as they are, and the coming `serve` command reads them from its configuration file.
 * The Raft settings are the core's (core/settings.ts).
 */
import { boolean, choice, integer, resolveSettings, type Settings, type SettingsInput } from '../base/index.ts';

/**
 * Entries kept behind a snapshot at most, whatever snapshotRetainEntries says or a leader's
 * followers need: the host keeps one number per entry it may keep, for the byte bound.
 */
export const SNAPSHOT_RETAIN_ENTRIES_MAX = 65_536;

/** The settings of a node's host by name, each with its default and range; a cluster takes them as `createCluster({ node })`. */
export const NODE_SETTINGS = {
  /** Milliseconds per Raft tick: with the default Raft settings, elections after 500 to 1,000 ms of silence and a heartbeat every 50 ms. Default 50. */
  tickMs: integer(50, 1, 60_000),
  /** `always`: every write is synced before it is acknowledged. `none` is unsafe (a crash loses acknowledged writes): for benchmarks only. Default `always`. */
  fsync: choice(['always', 'none'], 'always'),
  /** With fsync `always`: a thread of its own runs each node's `fdatasync`s while the node goes on working (what must wait for a write, its acknowledgements and its own count toward commit, still waits); some 10 MiB of memory a node. False: the node syncs on its own thread. Default true. */
  syncThread: boolean(true),
  /** Take a snapshot (and compact the log) once this many entries are applied past the last one. Default 50,000. */
  snapshotEveryEntries: integer(50_000, 1, Number.MAX_SAFE_INTEGER),
  /** Take a snapshot once this many bytes of entries are applied past the last one, whatever their count (an entry may carry a batch of writes). Default 64 MiB. */
  snapshotEveryBytes: integer(64 << 20, 1, Number.MAX_SAFE_INTEGER),
  /** Entries kept behind a snapshot for followers slightly behind. Default 1,000. A leader keeps more if a live follower needs them, within snapshotRetainBytes. */
  snapshotRetainEntries: integer(1_000, 0, SNAPSHOT_RETAIN_ENTRIES_MAX),
  /** Bytes of those entries (data and framing), at most: whichever bound comes first. Default 16 MiB. */
  snapshotRetainBytes: integer(16 << 20, 0, Number.MAX_SAFE_INTEGER),
  /** Committed changes kept in memory so that a watch can resume after an index (older: COMPACTED). Default 65,536. */
  watchHistoryChangesMax: integer(65_536, 1, 1 << 24),
  /** Bytes of those changes (keys, values and a fixed overhead each). Default 16 MiB. */
  watchHistoryBytesMax: integer(16 << 20, 0, Number.MAX_SAFE_INTEGER),
  /** A batch of client writes becomes one log entry once it holds this many bytes. Default 128 KiB. */
  writeBatchBytesMax: integer(128 << 10, 1, 64 << 20),
  /** Raft messages queued for a peer whose ring is full, before the oldest are dropped as lost. Default 1,024. */
  peerQueueMessagesMax: integer(1_024, 1, 1 << 20),
  /** Bytes of those messages, at most. Default 32 MiB: twice the default in-flight bytes, so that AppendEntries within the window are never dropped. */
  peerQueueBytesMax: integer(32 << 20, 1, Number.MAX_SAFE_INTEGER),
  /** Bytes of replies queued for one client link whose ring is full: past half, its watches end (WATCH_LAGGING); past all, the oldest replies are dropped. Default 64 MiB. */
  replyQueueBytesMax: integer(64 << 20, 1, Number.MAX_SAFE_INTEGER),
} as const;

/** Every host setting, resolved. */
export type NodeSettings = Settings<typeof NODE_SETTINGS>;
/** The host settings a caller may give; the rest take their defaults. */
export type NodeSettingsInput = SettingsInput<typeof NODE_SETTINGS>;

/** Resolves host settings; `path` prefixes names in errors (`node.`). */
export function resolveNodeSettings(input: unknown, path = ''): NodeSettings {
  return resolveSettings(NODE_SETTINGS, input, path);
}
