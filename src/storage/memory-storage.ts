/**
 * Storage kept in memory, with the same interface the durable WAL offers (`persist` among
 * it). A node in a cluster without a data directory keeps its log here, and the simulator
 * uses it as a node's "disk": what the host has written here survives a simulated crash.
 *
 * Layout: `ents[0]` is a dummy entry at the compaction point (the snapshot's index, or
 * below it when entries are retained), so that ents[i] has log index i + ents[0].index and
 * term(firstIndex - 1) is answerable. Invariant: firstIndex() - 1 <= snapshot.meta.index.
 *
 * Memory: the entries held, which {@link MemoryStorage.sizeBytes} counts, and the snapshot.
 * The storage keeps whatever it is given until a snapshot compacts it: its owner bounds it
 * (the node host snapshots every snapshotEveryBytes of applied entries and keeps at most
 * snapshotRetainBytes behind a snapshot). An entry decoded from a message is a view of that
 * message's memory (see the message codec), so the entries of a message partly compacted
 * or truncated away keep the whole message alive: the entries held are consecutive, so that
 * is at most a message at either end (appendBytesMax each, or one entry) more than
 * `sizeBytes` says.
 */
import { ErrorCode, fail, RingraftError } from '../base/index.ts';
import type { PersistBatch, WalStorage } from './wal-storage.ts';
import { EMPTY_DATA, EntryType, emptyConfState, entryBytes, type ConfState, type Entry, type HardState, type InitialState, type Snapshot, type Storage } from '../core/index.ts';

/**
 * A node's log and hard state in memory, with the interface of {@link WalStorage}: the core
 * reads it as its `Storage`, the host writes each Ready to it with `persist`.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private snap: Snapshot;
  private ents: Entry[];
  /** Invariant: the sum of entryBytes(e) over ents[1..]. */
  private bytes = 0;

  /** Empty storage, whose initial state gives configuration `conf` (default: none). */
  constructor(conf: ConfState = emptyConfState()) {
    this.snap = { meta: { index: 0, term: 0, conf }, data: EMPTY_DATA };
    this.ents = [{ index: 0, term: 0, type: EntryType.Normal, data: EMPTY_DATA }];
  }

  /** The hard state last set, and the snapshot's configuration. */
  initialState(): InitialState {
    return { hardState: this.hardState, conf: this.snap.meta.conf };
  }

  /** Keeps `hs` as the hard state (it replaces the one before). */
  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  /** The hard state last set (term, vote and commit all 0 at first). */
  getHardState(): HardState {
    return this.hardState;
  }

  /** The index of the first entry held: one past the compaction point. */
  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  /** The index of the last entry held; the compaction point when none is. */
  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  term(i: number): number {
    const offset = this.ents[0]!.index;
    if (i < offset) throw new RingraftError(ErrorCode.COMPACTED, `entry ${i} compacted (first index ${offset + 1})`);
    if (i - offset >= this.ents.length) throw new RingraftError(ErrorCode.UNAVAILABLE, `entry ${i} beyond last index ${this.lastIndex()}`);
    return this.ents[i - offset]!.term;
  }

  entries(lo: number, hi: number, bytesMax: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw new RingraftError(ErrorCode.COMPACTED, `entry ${lo} compacted (first index ${offset + 1})`);
    if (hi > this.lastIndex() + 1) throw new RingraftError(ErrorCode.UNAVAILABLE, `entry ${hi - 1} beyond last index ${this.lastIndex()}`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - offset]!;
      bytes += entryBytes(e);
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(e);
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Bytes of the entries held, each its data plus 24 bytes of framing (the snapshot apart). */
  get sizeBytes(): number {
    return this.bytes;
  }

  /** Every stored entry after the snapshot, in order (for checks and tests). */
  allEntries(): readonly Entry[] {
    return this.ents.slice(1);
  }

  /**
   * Step 1 of a Ready (see core/types.ts, Ready), as {@link WalStorage.persist} does it on
   * disk: the snapshot replaces the log, the entries are appended, the hard state kept.
   */
  persist(batch: PersistBatch): void {
    if (batch.snapshot !== undefined) this.applySnapshot(batch.snapshot);
    if (batch.entries !== undefined && batch.entries.length > 0) this.append(batch.entries);
    if (batch.hardState !== undefined) this.setHardState(batch.hardState);
  }

  /** Appends entries, truncating any stored suffix they overlap. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return; // All already compacted into the snapshot.
    const skip = Math.max(0, first - entries[0]!.index);
    const from = entries[skip]!.index;
    const offset = this.ents[0]!.index;
    if (!(from <= this.lastIndex() + 1)) fail(`append at ${from} leaves a gap after ${this.lastIndex()}`);
    for (let i = from - offset; i < this.ents.length; i++) this.bytes -= entryBytes(this.ents[i]!);
    this.ents.length = from - offset;
    for (let i = skip; i < entries.length; i++) {
      this.ents.push(entries[i]!);
      this.bytes += entryBytes(entries[i]!);
    }
  }

  /** Replaces everything with `snap` (a snapshot received from the leader). */
  applySnapshot(snap: Snapshot): void {
    if (snap.meta.index <= this.snap.meta.index) {
      throw new RingraftError(ErrorCode.SNAPSHOT_OUT_OF_DATE, `snapshot at ${snap.meta.index} not newer than ${this.snap.meta.index}`);
    }
    this.snap = snap;
    this.ents = [{ index: snap.meta.index, term: snap.meta.term, type: EntryType.Normal, data: EMPTY_DATA }];
    this.bytes = 0;
  }

  /**
   * Records a snapshot of the state machine at `index` (which must be applied, hence
   * stored) and discards the entries it covers but the last `retainEntries`, which let a
   * follower slightly behind (or just past a snapshot transfer) catch up from the log.
   */
  createSnapshot(index: number, conf: ConfState, data: Uint8Array, retainEntries = 0): Snapshot {
    if (index <= this.snap.meta.index) {
      throw new RingraftError(ErrorCode.SNAPSHOT_OUT_OF_DATE, `snapshot at ${index} not newer than ${this.snap.meta.index}`);
    }
    if (!(index <= this.lastIndex())) fail(`snapshot at ${index} beyond last index ${this.lastIndex()}`);
    const term = this.term(index);
    this.snap = { meta: { index, term, conf }, data };
    const compactTo = index - Math.max(0, Math.floor(retainEntries));
    if (compactTo > this.ents[0]!.index) this.compact(compactTo);
    return this.snap;
  }

  /** Discards entries up to and including `index`, keeping a dummy for its term. */
  private compact(index: number): void {
    const offset = this.ents[0]!.index;
    const e = this.ents[index - offset]!;
    for (let i = 1; i <= index - offset; i++) this.bytes -= entryBytes(this.ents[i]!);
    this.ents = [{ index, term: e.term, type: EntryType.Normal, data: EMPTY_DATA }, ...this.ents.slice(index - offset + 1)];
  }
}
