/**
 * Durable storage for one Raft node: a segmented write-ahead log with snapshot files, in one
 * directory, behind the same interface as {@link MemoryStorage}. docs/wal-format.md is the
 * format's specification.
 *
 * Writing: every write method is one batch. A batch is encoded into one `writev` and made
 * durable with one `fdatasync` (group commit); {@link WalStorage.persist} writes a whole
 * Ready's worth that way. In-memory state changes only after the batch is durable, so a
 * reader never sees what a crash could take back. A failed write or sync leaves the storage
 * refusing every later write (see StorageErrorCode.STORAGE_FAILED).
 *
 * Reading: an index of where every entry lives (20 bytes an entry) stays in memory, the
 * entries do not: reads go to the segment files, except for the newest entries, which a
 * small bounded cache holds.
 *
 * Not thread-safe, and one process at a time per directory (not enforced): a node owns its
 * storage on its own thread.
 */
import { ErrorCode, fail, RingraftError } from '../base/index.ts';
import { channel } from 'node:diagnostics_channel';
import { dirname, join } from 'node:path';
import { EMPTY_DATA, ENTRY_FRAMING_BYTES, emptyConfState, entryBytes, type ConfState, type Entry, type HardState, type InitialState, type Snapshot, type Storage } from '../core/index.ts';
import { readFully, realFileSystem, writevFully, type Fd, type FileSystem } from './fs.ts';
import { readBatch, type ReadBatch } from './wal/batch-reader.ts';
import { EntryIndex } from './wal/entry-index.ts';
import { StorageError, StorageErrorCode, corruptLog, storageErrorCodeOf } from './wal/errors.ts';
import {
  ENTRIES_PAYLOAD_BYTES_TARGET,
  ENTRY_DATA_BYTES_MAX,
  ENTRY_HEADER_BYTES,
  FRAME_HEADER_BYTES,
  ENTRIES_FIXED_BYTES,
  RecordType,
  SEGMENT_HEADER_BYTES,
  SnapshotKind,
  encodeBatch,
  BatchEncoder,
  encodeSegmentHeader,
  entryAt,
  segmentFileName,
  type SnapshotMarker,
  type WalRecord,
} from './wal/format.ts';
import { recoverLog, type TornTail } from './wal/recovery.ts';
import { readSnapshotFile, writeSnapshotFile } from './wal/snapshot-file.ts';
import { TailCache } from './wal/tail-cache.ts';

/**
 * - `always`: every batch is made durable (fdatasync, and a directory fsync where files
 *   come and go) before the write call returns. The only safe choice for Raft.
 * - `none`: nothing is synced. UNSAFE: a power loss or OS crash may lose acknowledged
 *   writes (breaking Raft's promises) and may leave a log that recovery rejects as corrupt.
 *   For benchmarks that want to measure everything but the disk's sync.
 */
export type Durability = 'always' | 'none';

/** How {@link WalStorage.open} opens a log; every option has a default. */
export interface WalOptions {
  /** Default: the real file system. */
  readonly fs?: FileSystem;
  /** Default `always`. */
  readonly durability?: Durability;
  /**
   * A new segment starts when the next batch would take the current one past this size.
   * A batch is never split, so a segment holding one batch larger than this is larger.
   * Default 64 MiB; between 4 KiB and 1 GiB.
   */
  readonly segmentSizeBytesMax?: number;
  /**
   * When a batch of at most 64 KiB (`PREALLOCATE_BATCH_BYTES_MAX`) would make a segment file
   * longer, the same `writev` appends zeros after it, up to the next multiple of this many
   * bytes (at most to segmentSizeBytesMax), so that the batches after it overwrite space the
   * file already has and their `fdatasync` has no file size to make durable. A larger batch
   * is written alone and the file grows by it. Recovery treats the zeros as unwritten space.
   * 0 turns it off. Default 1 MiB (`PREALLOCATE_BYTES_DEFAULT`).
   */
  readonly preallocateBytes?: number;
  /** Newest entries kept in memory for reads. Default 4096. */
  readonly cacheEntriesMax?: number;
  /** Bytes of cached entries, each its data plus 24 bytes of framing. Default 8 MiB. */
  readonly cacheBytesMax?: number;
  /**
   * Who syncs the batches written by {@link WalStorage.persistLater}, so that the writer need
   * not wait for its `fdatasync` (runtime/sync-thread.ts: a thread of its own; the simulator:
   * an event at a later time). Without it, persistLater syncs at once as persist does. The
   * storage closes it when it closes. Ignored with durability `none`.
   */
  readonly syncAgent?: SyncAgent;
}

/**
 * Makes a WAL's batches durable away from its writer. The WAL numbers its batches; after
 * writing one it asks for a sync of the file it wrote to, and later reads how far the syncs
 * have come. A sync asked for covers every byte written to the file before the request.
 */
export interface SyncAgent {
  /** Syncs `fd` (soon, and at most one sync at a time), then reports `sequence` as synced. */
  request(fd: Fd, sequence: number): void;
  /** The highest sequence reported synced (0 before any); throws the error of a sync that failed. */
  synced(): number;
  /**
   * Waits until no sync of the agent's runs; throws the error of one that failed. The WAL
   * calls it after a sync of its own before trusting it: the kernel reports a failed writeback
   * to one sync of the file, which may have been the agent's.
   */
  quiesce(): void;
  /**
   * Takes `fd`, a writable descriptor of a segment the WAL has deleted (its name is gone,
   * durably), to free its blocks away from the writer and then close it. Freeing a large file
   * at once (the `unlink` of a file nobody holds open, or the `close` of its last descriptor)
   * holds the calling thread for as long as the file system takes, some 12 ms for a 64 MiB
   * segment on ext4, and stalls other files' syncs meanwhile; freed a few MiB at a time
   * between syncs, it does neither. Returns false if the agent cannot take it (closed,
   * failed, or too many files waiting): the caller closes `fd` itself.
   */
  reclaim(fd: Fd): boolean;
  /** Stops the agent; no sync asked for is reported after it. Files it holds to reclaim are closed. */
  close(): void;
}

/** One Ready's worth of writes. */
export interface PersistBatch {
  /** A snapshot received from the leader: replaces the log (written first). */
  readonly snapshot?: Snapshot | undefined;
  /** Entries to append; a stored suffix they overlap is truncated first. */
  readonly entries?: readonly Entry[] | undefined;
  /** The hard state to keep, if it changed (written after the entries; see `mustSync` for when). */
  readonly hardState?: HardState | undefined;
  /**
   * Ready.mustSync. When false and the batch holds only a hard state (a new commit index),
   * the hard state is not written now but with the next batch (or at close): losing a commit
   * index in a crash is harmless, and this saves a write and a sync. Default true.
   */
  readonly mustSync?: boolean;
}

/** What recovery did when the storage was opened. */
export interface RecoveryReport {
  /** A torn write found at the end of the log and discarded, if any. */
  readonly tornTail: TornTail | undefined;
  /** Leftover files deleted: temporary files and snapshot files no longer referenced. */
  readonly deletedFiles: readonly string[];
}

/**
 * Diagnostics: when opening a WAL repairs something, a message `{ dir, tornTail, deletedFiles }`
 * (a {@link RecoveryReport} and the directory) is published here.
 */
export const walRecoveryChannel = channel('ringraft:wal:recovery');

export const SEGMENT_SIZE_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
export const PREALLOCATE_BYTES_DEFAULT = 1024 * 1024;
/**
 * Only a batch up to this size that makes a segment file longer writes zeros ahead of it
 * (preallocateBytes). Zeros save each small batch after them a file size to sync (a journal
 * commit), which is most of a small batch's sync; for a large batch its own bytes dominate,
 * and writing as many bytes again in zeros costs more than the file growth it saves.
 * Measured on this machine with 150-byte entries (docs/wal-format.md, "Preallocation"):
 * zeros ahead gain 15 to 43% at batches of 10 to 40 KiB and lose 6 to 35% at 80 to 160 KiB.
 */
export const PREALLOCATE_BATCH_BYTES_MAX = 64 * 1024;
const SEGMENT_SIZE_BYTES_MIN = 4096;
const SEGMENT_SIZE_BYTES_LIMIT = 1024 * 1024 * 1024;
/**
 * A batch takes at most this many bytes. With segments of at most 1 GiB, offsets stay
 * below 2^32, which the entry index stores as u32.
 */
export const BATCH_BYTES_MAX = 1024 * 1024 * 1024;
/** Read-only descriptors of older segments kept open for reads; the least recently used closes first. */
const READ_FDS_MAX = 16;

interface Segment {
  readonly sequence: number;
  readonly fileName: string;
}

interface ActiveSegment extends Segment {
  readonly fd: Fd;
  /** Where the next batch goes. */
  endBytes: number;
  /** The file's size: endBytes plus zeros written ahead (preallocation). */
  allocatedBytes: number;
  /** End of the segment's first batch (its preamble). */
  readonly firstBatchEndBytes: number;
}

/**
 * Durable storage for one node: a segmented, CRC-checked write-ahead log with snapshot files,
 * in one directory. {@link WalStorage.open} opens (or creates) and recovers it; each write
 * method is one batch, one `writev` and one `fdatasync`.
 */
export class WalStorage implements Storage {
  /** What recovery found and did at open. */
  readonly recovery: RecoveryReport;
  private readonly fs: FileSystem;
  private readonly sync: boolean;
  private readonly layout: SegmentLayout;
  private readonly index: EntryIndex;
  /** The newest entries, for reads: at most cacheEntriesMax, and cacheBytesMax bytes as {@link entryBytes} counts them. */
  private readonly cache: TailCache;
  /** Encodes every batch, into one scratch buffer it reuses. */
  private readonly encoder = new BatchEncoder();
  /** Segments before the active one, oldest first. */
  private readonly sealed: Segment[];
  private active: ActiveSegment;
  private readonly readFds = new Map<number, Fd>();
  /** The newest hard state; durable unless `hardStateDeferred`. */
  private hardState: HardState;
  /** Whether `hardState` still has to be written (persist with mustSync false). */
  private hardStateDeferred = false;
  private snap: Snapshot;
  /**
   * The term of the entry at the compaction point (index.base) when entries behind the
   * snapshot are retained for followers to catch up from (base < snapshot index); else the
   * snapshot's. Retained entries live until the next compaction or restart: recovery
   * compacts through the snapshot index, which only costs a lagging follower a snapshot.
   */
  private retainedBaseTerm: number | undefined;
  /** The file holding `snap`, undefined before the first snapshot. */
  private snapFileName: string | undefined;
  private failure: StorageError | undefined;
  private closed = false;
  /** The batch read back last (see readRun). */
  private lastRead: ReadBatch | undefined;
  private readonly syncAgent: SyncAgent | undefined;
  /** Batches written so far (each write numbers its batch with the next sequence). */
  private writtenSequence = 0;
  /** The highest sequence this thread synced itself (persist, a new segment, a snapshot). */
  private syncedSequence = 0;

  private constructor(
    /** The log's directory, as given to {@link WalStorage.open}. */
    readonly dir: string,
    fs: FileSystem,
    options: WalOptions,
    state: {
      index: EntryIndex;
      hardState: HardState;
      snap: Snapshot;
      snapFileName: string | undefined;
      sealed: Segment[];
      active: ActiveSegment;
      recovery: RecoveryReport;
    },
  ) {
    this.fs = fs;
    this.sync = (options.durability ?? 'always') === 'always';
    this.syncAgent = this.sync ? options.syncAgent : undefined;
    this.layout = layoutOf(options);
    this.cache = new TailCache(options.cacheEntriesMax ?? 4096, options.cacheBytesMax ?? 8 * 1024 * 1024);
    this.index = state.index;
    this.hardState = state.hardState;
    this.snap = state.snap;
    this.snapFileName = state.snapFileName;
    this.sealed = state.sealed;
    this.active = state.active;
    this.recovery = state.recovery;
  }

  /**
   * Opens (creating if needed) the WAL in `dir` and recovers it: verifies every record, cuts
   * a torn tail, deletes leftover files. Throws a CORRUPT_LOG error that names the file and
   * byte offset if the log is damaged anywhere but at its torn tail.
   */
  static open(dir: string, options: WalOptions = {}): WalStorage {
    const fs = options.fs ?? realFileSystem;
    const sync = (options.durability ?? 'always') === 'always';
    checkOptions(options);
    fs.mkdirp(dir);
    const log = recoverLog(fs, dir);
    // The snapshot file is checked too before anything is repaired: a corrupt log is left as it is.
    const snap =
      log.marker === undefined
        ? { meta: { index: 0, term: 0, conf: emptyConfState() }, data: EMPTY_DATA }
        : readSnapshotFile(fs, dir, log.marker.fileName, log.marker.index, log.marker.term);

    // Repairs, each made durable before the log is used.
    const torn = log.tornTail;
    if (torn?.action === 'remove') fs.unlink(join(dir, torn.fileName));
    if (torn?.action === 'cut') {
      const fd = fs.open(join(dir, torn.fileName), 'readWrite');
      try {
        fs.ftruncate(fd, torn.cutOffsetBytes);
        fs.fdatasync(fd);
      } finally {
        fs.close(fd);
      }
    }
    for (const name of log.obsoleteFiles) fs.unlink(join(dir, name));
    if (torn?.action === 'remove' || log.obsoleteFiles.length > 0) fs.syncDir(dir);

    const recovery: RecoveryReport = { tornTail: torn, deletedFiles: log.obsoleteFiles };
    if ((torn !== undefined || log.obsoleteFiles.length > 0) && walRecoveryChannel.hasSubscribers) walRecoveryChannel.publish({ dir, ...recovery });
    const sealed = log.segments.slice(0, -1).map((s) => ({ sequence: s.sequence, fileName: s.fileName }));
    const last = log.segments.at(-1);
    let active: ActiveSegment;
    if (last === undefined) {
      // A new log: its directory entry must be durable too.
      if (sync) fs.syncDir(dirname(dir));
      active = createSegment(fs, dir, 1, log.index.lastIndex + 1, preambleRecords(log.hardState, undefined), [], layoutOf(options), sync);
    } else {
      const fd = fs.open(join(dir, last.fileName), 'readWrite');
      const allocatedBytes = torn?.action === 'cut' && torn.fileName === last.fileName ? torn.cutOffsetBytes : last.fileBytes;
      active = { sequence: last.sequence, fileName: last.fileName, fd, endBytes: last.endBytes, allocatedBytes, firstBatchEndBytes: last.firstBatchEndBytes };
    }
    return new WalStorage(dir, fs, options, {
      index: log.index,
      hardState: log.hardState,
      snap,
      snapFileName: log.marker?.fileName,
      sealed,
      active,
      recovery,
    });
  }

  // ─── Storage (the core's read view) ───────────────────────────────────────────────

  /** The newest hard state and the snapshot's configuration; CLOSED once the storage is closed. */
  initialState(): InitialState {
    this.checkOpen();
    return { hardState: this.hardState, conf: this.snap.meta.conf };
  }

  /** The newest hard state, including one a `persist` with `mustSync` false deferred (not durable yet). */
  getHardState(): HardState {
    this.checkOpen();
    return this.hardState;
  }

  /** The index of the first entry held: one past the compaction point. */
  firstIndex(): number {
    this.checkOpen();
    return Math.min(this.snap.meta.index, this.index.base) + 1;
  }

  /** The compaction point: entries up to it are gone; its term is still known. */
  private compactedIndex(): number {
    return Math.min(this.snap.meta.index, this.index.base);
  }

  /** The index of the last entry held; the compaction point when none is. */
  lastIndex(): number {
    this.checkOpen();
    return this.index.lastIndex;
  }

  term(i: number): number {
    this.checkOpen();
    const snapIndex = this.snap.meta.index;
    const compacted = this.compactedIndex();
    if (i < compacted) throw new RingraftError(ErrorCode.COMPACTED, `entry ${i} compacted (first index ${compacted + 1})`);
    if (i > this.lastIndex()) throw new RingraftError(ErrorCode.UNAVAILABLE, `entry ${i} beyond last index ${this.lastIndex()}`);
    if (i === compacted) return compacted === snapIndex ? this.snap.meta.term : this.retainedBaseTerm!;
    return this.index.term(i);
  }

  entries(lo: number, hi: number, bytesMax: number): Entry[] {
    this.checkOpen();
    if (lo <= this.compactedIndex()) throw new RingraftError(ErrorCode.COMPACTED, `entry ${lo} compacted (first index ${this.firstIndex()})`);
    if (hi > this.lastIndex() + 1) throw new RingraftError(ErrorCode.UNAVAILABLE, `entry ${hi - 1} beyond last index ${this.lastIndex()}`);
    // How many fit in bytesMax, from the index alone (always at least one).
    let end = lo;
    let bytes = 0;
    while (end < hi) {
      bytes += this.index.length(end) + ENTRY_FRAMING_BYTES;
      if (end > lo && bytes > bytesMax) break;
      end++;
    }
    const out: Entry[] = [];
    let i = lo;
    while (i < end) {
      const cached = this.cache.get(i);
      if (cached !== undefined) {
        out.push(cached);
        i++;
        continue;
      }
      i = this.readRun(i, end, out);
    }
    return out;
  }

  snapshot(): Snapshot {
    this.checkOpen();
    return this.snap;
  }

  // ─── Writes ───────────────────────────────────────────────────────────────────────

  /** Appends entries, truncating any stored suffix they overlap (durably). */
  append(entries: readonly Entry[]): void {
    this.persist({ entries });
  }

  /** Writes `hs` as a batch of its own (synced, unless `durability` is `none`). */
  setHardState(hs: HardState): void {
    this.persist({ hardState: hs });
  }

  /** Replaces everything with `snap` (a snapshot received from the leader). */
  applySnapshot(snap: Snapshot): void {
    this.persist({ snapshot: snap });
  }

  /**
   * Records a snapshot of the state machine at `index` (which must be stored) and compacts
   * the log through it: deletes the segments only compacted entries were in, and the older
   * snapshot file. It keeps the last `retainEntries` entries behind it (until the next
   * compaction or restart) for followers slightly behind to catch up from without a snapshot.
   */
  createSnapshot(index: number, conf: ConfState, data: Uint8Array, retainEntries = 0): Snapshot {
    this.checkWritable();
    if (index <= this.snap.meta.index) {
      throw new RingraftError(ErrorCode.SNAPSHOT_OUT_OF_DATE, `snapshot at ${index} not newer than ${this.snap.meta.index}`);
    }
    if (!(index <= this.lastIndex())) fail(`snapshot at ${index} beyond last index ${this.lastIndex()}`);
    const snap: Snapshot = { meta: { index, term: this.term(index), conf }, data };
    const fileName = this.io(() => writeSnapshotFile(this.fs, this.dir, snap, this.sync));
    const marker: SnapshotMarker = { index, term: snap.meta.term, kind: SnapshotKind.Compact, fileName };
    this.write([{ type: RecordType.SnapshotMarker, marker }], [], 0, this.deferredHardState(), true);
    this.hardStateDeferred = false;
    const compactTo = Math.max(this.compactedIndex(), index - Math.max(0, Math.floor(retainEntries)));
    // Read before anything moves: compactTo is within [compacted point, index].
    const baseTerm = this.term(compactTo);
    if (compactTo > this.index.base) {
      this.index.compactThrough(compactTo);
      this.cache.compactThrough(compactTo);
    }
    this.retainedBaseTerm = compactTo < index ? baseTerm : undefined;
    this.installSnapshot(snap, fileName);
    return snap;
  }

  /**
   * Writes one Ready's worth (snapshot, entries, hard state) as one batch: one `writev` and
   * one `fdatasync`. A snapshot's data goes to its own file first (with its own syncs).
   */
  persist(batch: PersistBatch): void {
    this.persistBatch(batch, true);
  }

  /**
   * Writes one Ready's worth as {@link persist} does, but leaves its sync to the sync agent
   * (WalOptions.syncAgent): returns the sequence {@link durableSequence} reaches once the
   * batch is durable, or 0 when there is nothing to wait for (nothing written, or durability
   * `none`). A batch that starts a new segment, or holds a snapshot, is synced at once. What
   * reads see (entries, last index, hard state) follows the batch at once, durable or not: a
   * caller that must not act on it before it is durable waits for the sequence.
   */
  persistLater(batch: PersistBatch): number {
    const written = this.writtenSequence;
    this.persistBatch(batch, this.syncAgent === undefined);
    if (this.writtenSequence === written || !this.sync) return 0;
    return this.writtenSequence;
  }

  /** How far the batches are durable: every batch numbered up to this is (see persistLater). */
  durableSequence(): number {
    this.checkOpen();
    const agent = this.syncAgent;
    if (agent === undefined) return this.syncedSequence;
    // Asked even when every batch is synced here: a failure the agent met must not go unseen.
    const synced = this.io(() => agent.synced());
    return synced > this.syncedSequence ? synced : this.syncedSequence;
  }

  /** Makes every batch written durable now, in this thread (one `fdatasync` if any is not). */
  syncNow(): void {
    this.checkWritable();
    if (!this.sync || this.durableSequence() === this.writtenSequence) return;
    this.syncOwn(this.active.fd);
    this.syncedSequence = this.writtenSequence;
  }

  /** Syncs `fd` in this thread, then trusts it only once the agent's sync running meanwhile, if any, ended well. */
  private syncOwn(fd: Fd): void {
    this.io(() => this.fs.fdatasync(fd));
    this.afterOwnSync();
  }

  /** After a sync of this thread's: the agent's sync running meanwhile, if any, must have ended well (see SyncAgent.quiesce). */
  private afterOwnSync(): void {
    const agent = this.syncAgent;
    if (agent !== undefined) this.io(() => agent.quiesce());
  }

  private persistBatch(batch: PersistBatch, syncNow: boolean): void {
    this.checkWritable();
    const { snapshot, hardState } = batch;
    const entries = batch.entries ?? [];
    if (hardState !== undefined) checkHardState(hardState);
    if (snapshot === undefined && entries.length === 0) {
      if (hardState === undefined) return;
      if (batch.mustSync === false) {
        this.hardState = hardState;
        this.hardStateDeferred = true;
        return;
      }
    }
    // Check everything before anything is written.
    const snapIndex = snapshot?.meta.index ?? this.snap.meta.index;
    const lastIndex = snapshot?.meta.index ?? this.lastIndex();
    if (snapshot !== undefined) {
      if (snapshot.meta.index <= this.snap.meta.index) {
        throw new RingraftError(ErrorCode.SNAPSHOT_OUT_OF_DATE, `snapshot at ${snapshot.meta.index} not newer than ${this.snap.meta.index}`);
      }
      checkSnapshot(snapshot);
    }
    // Entries at or below the snapshot are already covered by it: entries[skip..] are kept.
    const skip = entries.length === 0 ? 0 : Math.min(entries.length, Math.max(0, snapIndex + 1 - entries[0]!.index));
    const keptCount = entries.length - skip;
    const from = keptCount > 0 ? entries[skip]!.index : 0;
    if (keptCount > 0) {
      if (!(from <= lastIndex + 1)) fail(`append at ${from} leaves a gap after ${lastIndex}`);
      checkEntries(entries, skip, from - 1 === snapIndex ? (snapshot?.meta.term ?? this.snap.meta.term) : this.index.term(from - 1));
    }

    const head: WalRecord[] = [];
    let snapFileName: string | undefined;
    if (snapshot !== undefined) {
      const fileName = this.io(() => writeSnapshotFile(this.fs, this.dir, snapshot, this.sync));
      snapFileName = fileName;
      head.push({ type: RecordType.SnapshotMarker, marker: { index: snapshot.meta.index, term: snapshot.meta.term, kind: SnapshotKind.Replace, fileName } });
    }
    if (keptCount > 0 && from <= lastIndex) head.push({ type: RecordType.Truncation, index: from });
    const tail = hardState !== undefined ? [{ type: RecordType.HardState, hardState } as const] : this.deferredHardState();
    if (head.length === 0 && keptCount === 0 && tail.length === 0) return;
    const batchAt = this.write(head, entries, skip, tail, syncNow || snapshot !== undefined);
    this.hardStateDeferred = false;

    // The batch is durable (or, from persistLater, written and its sync asked for): now the
    // in-memory state follows it.
    if (snapshot !== undefined) {
      this.index.reset(snapshot.meta.index);
      this.cache.clear();
    }
    if (keptCount > 0) {
      if (from <= this.index.lastIndex) {
        this.index.truncateFrom(from);
        this.cache.truncateFrom(from);
      }
      this.index.pushRun(entries, skip, this.active.sequence, batchAt);
      this.cache.append(entries, skip);
    }
    if (hardState !== undefined) this.hardState = hardState;
    if (snapshot !== undefined) this.installSnapshot(snapshot, snapFileName!);
  }

  /** Every stored entry after the snapshot, in order, read from disk (for checks and tests). */
  allEntries(): readonly Entry[] {
    return this.lastIndex() < this.firstIndex() ? [] : this.entries(this.firstIndex(), this.lastIndex() + 1, Infinity);
  }

  /** Writes a deferred hard state (if the storage has not failed) and closes every file. */
  close(): void {
    if (this.closed) return;
    try {
      if (this.failure === undefined && this.hardStateDeferred) {
        this.write([], [], 0, this.deferredHardState(), true);
        this.hardStateDeferred = false;
      }
      // What persistLater wrote and its agent has not synced yet is synced here.
      if (this.failure === undefined) this.syncNow();
    } finally {
      this.abandon();
    }
  }

  /**
   * Closes every file and writes nothing more: what a crash leaves (a deferred hard state is
   * lost; what was written and not synced is the kernel's to keep or lose). For a node dropped
   * from a thread it shares with others, where the thread itself cannot be killed.
   */
  abandon(): void {
    if (this.closed) return;
    this.closed = true;
    this.syncAgent?.close();
    // Every file is closed even if closing one fails; the first failure is thrown after.
    let failure: { error: unknown } | undefined;
    for (const fd of [...this.readFds.values(), this.active.fd]) {
      try {
        this.fs.close(fd);
      } catch (error) {
        failure ??= { error };
      }
    }
    this.readFds.clear();
    if (failure !== undefined) throw failure.error;
  }

  // ─── Internals ────────────────────────────────────────────────────────────────────

  private checkOpen(): void {
    if (this.closed) throw new RingraftError(ErrorCode.CLOSED, `WAL ${this.dir} is closed`);
  }

  private checkWritable(): void {
    this.checkOpen();
    if (this.failure !== undefined) {
      throw new StorageError(StorageErrorCode.STORAGE_FAILED, `WAL ${this.dir} refuses writes after an earlier I/O error: ${this.failure.message}`, {
        cause: this.failure,
      });
    }
  }

  /** Runs file system calls that change the log; any error fails the storage for good. */
  private io<T>(fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (error instanceof StorageError) {
        // Already the storage's own (a sync agent's failed sync): it fails the storage as it is.
        this.failure = error;
        throw error;
      }
      this.failure = new StorageError(storageErrorCodeOf((error as NodeJS.ErrnoException).code), `WAL ${this.dir}: ${(error as Error).message}`, { cause: error });
      throw this.failure;
    }
  }

  /** The record of a hard state not yet written (persist with mustSync false), if any. */
  private deferredHardState(): WalRecord[] {
    return this.hardStateDeferred ? [{ type: RecordType.HardState, hardState: this.hardState }] : [];
  }

  /**
   * Writes `head`, `entries[from..]` and `tail` as one batch (see {@link BatchEncoder.encode}),
   * in the active segment or, if it would take it past its size, in a new one. Returns the
   * batch's offset in the (then) active segment. With `syncNow` false the batch is left to
   * the sync agent, unless it starts a new segment: the segment it leaves is synced first
   * (the agent syncs only the file it was last asked about) and the new one is synced whole.
   */
  private write(head: readonly WalRecord[], entries: readonly Entry[], from: number, tail: readonly WalRecord[], syncNow: boolean): number {
    const batch = this.encoder.encode(head, entries, from, tail);
    if (batch.bytes > BATCH_BYTES_MAX) throw new RingraftError(ErrorCode.INVALID_ARGUMENT, `batch of ${batch.bytes} bytes over ${BATCH_BYTES_MAX}`);
    const active = this.active;
    const roll = active.endBytes + batch.bytes > this.layout.segmentSizeBytesMax && active.endBytes > active.firstBatchEndBytes;
    let start: number;
    const sequence = ++this.writtenSequence;
    if (roll) {
      if (this.sync && this.durableSequence() < sequence - 1) this.syncOwn(active.fd);
      const next = this.io(() =>
        createSegment(this.fs, this.dir, active.sequence + 1, this.index.lastIndex + 1, preambleRecords(this.hardState, this.markerOf()), batch.buffers, this.layout, this.sync),
      );
      this.sealed.push({ sequence: active.sequence, fileName: active.fileName });
      this.keepReadFd(active.sequence, active.fd);
      this.active = next;
      start = next.endBytes - batch.bytes;
    } else {
      start = active.endBytes;
      const end = start + batch.bytes;
      const zeros = zerosAfter(end, active.allocatedBytes, batch.bytes, this.layout);
      const buffers = batch.buffers;
      if (zeros > 0) buffers.push(zeroBytes(zeros));
      this.io(() => {
        writevFully(this.fs, active.fd, buffers, start);
        if (this.sync && syncNow) this.fs.fdatasync(active.fd);
      });
      active.endBytes = end;
      active.allocatedBytes = Math.max(active.allocatedBytes, end + zeros);
      if (!syncNow && this.sync) {
        this.syncAgent!.request(active.fd, sequence);
        return start;
      }
    }
    if (this.sync) {
      this.afterOwnSync();
      this.syncedSequence = sequence;
    }
    return start;
  }

  private markerOf(): SnapshotMarker | undefined {
    const s = this.snap.meta;
    return this.snapFileName === undefined ? undefined : { index: s.index, term: s.term, kind: SnapshotKind.Compact, fileName: this.snapFileName };
  }

  /**
   * After a snapshot's marker is durable: `snap` is the snapshot, the previous snapshot
   * file and the segments holding only entries it covers are deleted.
   */
  private installSnapshot(snap: Snapshot, fileName: string): void {
    const oldFile = this.snapFileName;
    this.snap = snap;
    this.snapFileName = fileName;
    // The first segment still needed holds the first entry after the snapshot; with no
    // entries after it, only the active segment is needed.
    const firstNeeded = this.index.count > 0 ? this.index.segment(this.index.base + 1) : this.active.sequence;
    this.io(() => {
      let unsynced = false;
      if (oldFile !== undefined && oldFile !== fileName) {
        this.fs.unlink(join(this.dir, oldFile));
        unsynced = true;
      }
      // Oldest first, each deletion durable before the next (a crash may keep or undo each
      // unsynced directory change on its own), so that a crash leaves a run of consecutive segments.
      while (this.sealed.length > 0 && this.sealed[0]!.sequence < firstNeeded) {
        const s = this.sealed.shift()!;
        const fd = this.readFds.get(s.sequence);
        if (fd !== undefined) {
          this.readFds.delete(s.sequence);
          this.fs.close(fd);
        }
        // Its directory sync makes the snapshot file's deletion durable too.
        this.deleteSegment(s.fileName);
        unsynced = false;
      }
      if (unsynced && this.sync) this.fs.syncDir(this.dir);
    });
  }

  /**
   * Deletes segment `fileName`, durably (with durability `always`). With a sync agent, its
   * blocks are freed by the agent later ({@link SyncAgent.reclaim}): the file is held open
   * while its name is deleted, which makes the `unlink` cheap, and handed over once the
   * deletion is durable, so that no block of a segment recovery could still find is freed.
   */
  private deleteSegment(fileName: string): void {
    const path = join(this.dir, fileName);
    const agent = this.syncAgent;
    const fd = agent === undefined ? undefined : this.fs.open(path, 'readWrite');
    try {
      this.fs.unlink(path);
      if (this.sync) this.fs.syncDir(this.dir);
    } catch (error) {
      if (fd !== undefined) {
        try {
          this.fs.close(fd);
        } catch {
          // The deletion's failure is the one to report.
        }
      }
      throw error;
    }
    if (fd !== undefined && !agent!.reclaim(fd)) this.fs.close(fd);
  }

  /**
   * Reads entries from `i` on, while they are in the same batch on disk, not cached and below
   * `end`; returns where it stopped. An entry read back is verified with its batch: the batch
   * (from its first byte to its commit record) is read and its CRC checked, so a read of one
   * entry reads the entries of its batch around it. The last batch read is kept, so that
   * reading a batch entry by entry reads it once.
   */
  private readRun(i: number, end: number, out: Entry[]): number {
    const batch = this.batchHolding(i);
    let j = i;
    while (j < end && this.cache.get(j) === undefined && this.index.segment(j) === batch.segment && this.index.batchOffset(j) === batch.start) {
      const k = j - batch.firstIndex;
      const at = batch.entryHeaderOffsets[k];
      const entry = at === undefined ? undefined : entryAt(batch.bytes, at, j, batch.entryTerms[k]!);
      if (entry === undefined || entry.term !== this.index.term(j) || entry.data.length !== this.index.length(j)) {
        throw corruptLog(segmentFileName(batch.segment), batch.start + (at ?? 0), `entry ${j} read back does not match what was written`);
      }
      out.push(entry);
      j++;
    }
    if (!(j > i)) fail(`entry ${i} not in the batch read for it`);
    return j;
  }

  /** The batch holding entry `i`, read from disk and verified (or the one read last, if it holds it). */
  private batchHolding(i: number): ReadBatch {
    const segment = this.index.segment(i);
    const start = this.index.batchOffset(i);
    const last = this.lastRead;
    if (last !== undefined && last.segment === segment && last.start === start) return last;
    const fileName = segmentFileName(segment);
    const fd = this.readFd(segment);
    const read = (offset: number, length: number): Uint8Array => {
      const bytes = new Uint8Array(length);
      return bytes.subarray(0, readFully(this.fs, fd, bytes, offset));
    };
    const batch = readBatch(read, fileName, segment, start, this.batchBytesGuess(i), `batch of entry ${i}`);
    this.lastRead = batch;
    return batch;
  }

  /**
   * About how many bytes the batch holding entry `i` takes, from the index alone: the entries
   * it indexes in that batch, with their framing. A short guess costs a second read.
   */
  private batchBytesGuess(i: number): number {
    const index = this.index;
    const segment = index.segment(i);
    const start = index.batchOffset(i);
    const sameBatch = (j: number): boolean => index.has(j) && index.segment(j) === segment && index.batchOffset(j) === start;
    let lo = i;
    while (sameBatch(lo - 1)) lo--;
    let bytes = 0;
    let frames = 1;
    for (let j = lo; sameBatch(j); j++) {
      bytes += ENTRY_HEADER_BYTES + index.length(j);
      if (j > lo && index.term(j) !== index.term(j - 1)) frames++;
    }
    frames += Math.floor(bytes / ENTRIES_PAYLOAD_BYTES_TARGET);
    return bytes + frames * (FRAME_HEADER_BYTES + ENTRIES_FIXED_BYTES + 8);
  }

  private readFd(sequence: number): Fd {
    if (sequence === this.active.sequence) return this.active.fd;
    const fd = this.readFds.get(sequence);
    if (fd !== undefined) {
      // Most recently used goes last.
      this.readFds.delete(sequence);
      this.readFds.set(sequence, fd);
      return fd;
    }
    const opened = this.fs.open(join(this.dir, segmentFileName(sequence)), 'read');
    this.keepReadFd(sequence, opened);
    return opened;
  }

  private keepReadFd(sequence: number, fd: Fd): void {
    this.readFds.set(sequence, fd);
    if (this.readFds.size > READ_FDS_MAX) {
      const [oldest, oldFd] = this.readFds.entries().next().value!;
      this.readFds.delete(oldest);
      this.fs.close(oldFd);
    }
  }
}

interface SegmentLayout {
  readonly segmentSizeBytesMax: number;
  readonly preallocateBytes: number;
}

function layoutOf(options: WalOptions): SegmentLayout {
  return {
    segmentSizeBytesMax: options.segmentSizeBytesMax ?? SEGMENT_SIZE_BYTES_MAX_DEFAULT,
    preallocateBytes: options.preallocateBytes ?? PREALLOCATE_BYTES_DEFAULT,
  };
}

/**
 * How many zero bytes to write after a batch of `batchBytes` that ends at `end` in a file of
 * `allocated` bytes: none if the file is long enough already or the batch is over
 * {@link PREALLOCATE_BATCH_BYTES_MAX}, else up to the next multiple of preallocateBytes, but
 * not past segmentSizeBytesMax.
 */
function zerosAfter(end: number, allocated: number, batchBytes: number, layout: SegmentLayout): number {
  const chunk = layout.preallocateBytes;
  if (chunk === 0 || end <= allocated || batchBytes > PREALLOCATE_BATCH_BYTES_MAX) return 0;
  const target = Math.min(Math.ceil(end / chunk) * chunk, layout.segmentSizeBytesMax);
  return Math.max(0, target - end);
}

let zeroBuffer = new Uint8Array(0);
/** `n` zero bytes, from one shared buffer (never written to). */
function zeroBytes(n: number): Uint8Array {
  if (zeroBuffer.length < n) zeroBuffer = new Uint8Array(n);
  return zeroBuffer.subarray(0, n);
}

/** The records that open every segment, so that it can be replayed without the segments before it. */
function preambleRecords(hardState: HardState, marker: SnapshotMarker | undefined): WalRecord[] {
  const records: WalRecord[] = [{ type: RecordType.HardState, hardState }];
  if (marker !== undefined) records.push({ type: RecordType.SnapshotMarker, marker });
  return records;
}

/**
 * Creates segment `sequence` holding its header, a preamble batch and the encoded batch
 * `buffers` (if any), in one `writev`, then syncs it and the directory.
 */
function createSegment(
  fs: FileSystem,
  dir: string,
  sequence: number,
  firstIndex: number,
  preamble: readonly WalRecord[],
  buffers: readonly Uint8Array[],
  layout: SegmentLayout,
  sync: boolean,
): ActiveSegment {
  const fileName = segmentFileName(sequence);
  const header = encodeSegmentHeader({ sequence, firstIndex });
  const first = encodeBatch(preamble);
  const fd = fs.open(join(dir, fileName), 'createExclusive');
  try {
    let batchBytes = 0;
    for (const b of buffers) batchBytes += b.length;
    const bytes = header.length + first.bytes + batchBytes;
    const zeros = zerosAfter(bytes, 0, batchBytes, layout);
    writevFully(fs, fd, zeros === 0 ? [header, ...first.buffers, ...buffers] : [header, ...first.buffers, ...buffers, zeroBytes(zeros)], 0);
    if (sync) {
      fs.fdatasync(fd);
      fs.syncDir(dir);
    }
    return { sequence, fileName, fd, endBytes: bytes, allocatedBytes: bytes + zeros, firstBatchEndBytes: SEGMENT_HEADER_BYTES + first.bytes };
  } catch (error) {
    fs.close(fd);
    throw error;
  }
}

function checkOptions(options: WalOptions): void {
  const size = options.segmentSizeBytesMax;
  if (size !== undefined && !(Number.isInteger(size) && size >= SEGMENT_SIZE_BYTES_MIN && size <= SEGMENT_SIZE_BYTES_LIMIT)) {
    throw new RingraftError(ErrorCode.INVALID_ARGUMENT, `segmentSizeBytesMax must be an integer in [${SEGMENT_SIZE_BYTES_MIN}, ${SEGMENT_SIZE_BYTES_LIMIT}]`);
  }
  const d = options.durability;
  if (d !== undefined && d !== 'always' && d !== 'none') throw new RingraftError(ErrorCode.INVALID_ARGUMENT, `unknown durability "${String(d)}"`);
  for (const [name, v] of [
    ['preallocateBytes', options.preallocateBytes],
    ['cacheEntriesMax', options.cacheEntriesMax],
    ['cacheBytesMax', options.cacheBytesMax],
  ] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 0)) throw new RingraftError(ErrorCode.INVALID_ARGUMENT, `${name} must be a non-negative integer`);
  }
}

function isU64(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

function checkHardState(hs: HardState): void {
  if (!(isU64(hs.term) && isU64(hs.vote) && isU64(hs.commit))) {
    throw new RingraftError(ErrorCode.INVALID_ARGUMENT, `hard state fields must be safe non-negative integers`);
  }
}

function checkSnapshot(snap: Snapshot): void {
  if (!(isU64(snap.meta.index) && snap.meta.index >= 1 && isU64(snap.meta.term) && snap.meta.term >= 1)) {
    throw new RingraftError(ErrorCode.INVALID_ARGUMENT, 'snapshot index and term must be positive safe integers');
  }
}

/**
 * `entries[from..]` must be consecutive, with terms that never go down (from `prevTerm`, the
 * term before them).
 */
function checkEntries(entries: readonly Entry[], from: number, prevTerm: number): void {
  let term = prevTerm;
  for (let k = from; k < entries.length; k++) {
    const e = entries[k]!;
    if (!(isU64(e.term) && e.term >= 1)) throw new RingraftError(ErrorCode.INVALID_ARGUMENT, `entry ${e.index}: term must be a positive safe integer`);
    if (e.data.length > ENTRY_DATA_BYTES_MAX) {
      throw new RingraftError(ErrorCode.INVALID_ARGUMENT, `entry ${e.index}: ${e.data.length} bytes over the maximum ${ENTRY_DATA_BYTES_MAX}`);
    }
    // The messages are built only on failure: this loop runs once per entry written.
    if (k > from && e.index !== entries[k - 1]!.index + 1) fail(`entries not consecutive at ${e.index}`);
    if (e.term < term) fail(`entry ${e.index} has term ${e.term} below the term ${term} before it`);
    term = e.term;
  }
}
