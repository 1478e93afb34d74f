/**
 * When a node snapshots its state machine (and so compacts its log), and how many entries
 * it keeps behind the snapshot for followers slightly behind:
 *
 * - a snapshot is due once `snapshotEveryEntries` entries, or `snapshotEveryBytes` bytes of
 *   entry data, have applied past the last snapshot this node took or installed (counted
 *   from start, after a restart), whichever comes first;
 * - it keeps the newest applied entries while both `snapshotRetainEntries` and
 *   `snapshotRetainBytes` (data plus framing) allow;
 * - on a leader it keeps more if a live follower still needs them (`RaftNode.logIndexNeeded`:
 *   the entry after its match, or after the snapshot being sent to it), as long as they
 *   are within `snapshotRetainBytes` and SNAPSHOT_RETAIN_ENTRIES_MAX: all of them or none,
 *   since a follower missing one entry needs a snapshot as much as one missing them all.
 *   Compacting them away makes the leader send that follower a snapshot, after which the
 *   follower needs the entries written meanwhile, which were compacted too if the transfer
 *   took longer than the retained entries last: it would never catch up (seed 301167).
 *   The bounds keep memory bounded when a follower falls behind for good.
 *
 * - a node's first snapshot after it starts comes early, by a fraction of the interval that
 *   depends on its id ({@link snapshotPhase}), so that the nodes of a cluster, which apply the
 *   same entries, do not all snapshot at the same index: nodes sharing a thread would stall
 *   it together (on this machine, three nodes' snapshots in one turn held it 25 to 40 ms),
 *   and nodes on their own machines would all pause at once.
 *
 * The policy only counts and decides; the host takes the snapshot.
 */
import { fail } from '../base/index.ts';
import { ENTRY_FRAMING_BYTES, type Entry } from '../core/index.ts';
import { SNAPSHOT_RETAIN_ENTRIES_MAX, type NodeSettings } from './settings.ts';

/**
 * The phase of node `id`'s snapshots, in [0, 0.5): the fractional parts of multiples of the
 * golden ratio spread consecutive ids well (ids 1, 2, 3: 0.31, 0.12, 0.43).
 */
export function snapshotPhase(id: number): number {
  return ((id * 0.618_033_988_749_895) % 1) / 2;
}

export class SnapshotPolicy {
  private readonly everyEntries: number;
  private readonly everyBytes: number;
  private readonly retainEntries: number;
  private readonly retainBytes: number;
  /** Entry bytes applied since the last snapshot this host took or installed (since start, after a restart). */
  private appliedBytesSinceSnapshot = 0;
  /**
   * Data bytes of the last applied entries, entry i at slot i % length (length is
   * SNAPSHOT_RETAIN_ENTRIES_MAX, the most entries ever kept), for the byte bound:
   *
   * ```
   *   appliedSizes:  0            i % length                    length
   *                  ├── ... ─────┼ entry i (the newest) ─ ... ──┤   entry i - k at (i - k) % length
   * ```
   *
   * Invariant: slots of indexes in [appliedSizesFrom, appliedIndex] that are within `length`
   * of appliedIndex hold their entry's size.
   */
  private readonly appliedSizes: Uint32Array;
  private appliedSizesFrom: number;

  /** Entries counted as applied ahead of the first snapshot after start (the phase's share of the interval). */
  private entriesAhead: number;

  constructor(
    settings: Pick<NodeSettings, 'snapshotEveryEntries' | 'snapshotEveryBytes' | 'snapshotRetainEntries' | 'snapshotRetainBytes'>,
    /** The index of the snapshot the node starts from. */
    snapshotIndex: number,
    /** The fraction of the interval by which the first snapshot comes early, in [0, 1). */
    phase = 0,
  ) {
    if (!(phase >= 0 && phase < 1)) fail(`snapshot phase ${phase} in [0, 1)`);
    this.everyEntries = settings.snapshotEveryEntries;
    this.everyBytes = settings.snapshotEveryBytes;
    this.entriesAhead = Math.floor(phase * this.everyEntries);
    this.appliedBytesSinceSnapshot = Math.floor(phase * this.everyBytes);
    this.retainEntries = settings.snapshotRetainEntries;
    this.retainBytes = settings.snapshotRetainBytes;
    // An entry's data is at most ENTRY_DATA_BYTES_MAX (64 MiB): a u32 holds its size.
    this.appliedSizes = new Uint32Array(SNAPSHOT_RETAIN_ENTRIES_MAX);
    this.appliedSizesFrom = snapshotIndex + 1;
  }

  /**
   * How far behind the leader a follower may fall and still catch up from the leader's log:
   * the entries applied before a snapshot is due, plus those kept behind it.
   */
  get catchUpEntriesMax(): number {
    return this.everyEntries + this.retainEntries;
  }

  /** Counts entry `e`, just applied (or skipped). */
  noteApplied(e: Entry): void {
    this.appliedBytesSinceSnapshot += e.data.length;
    const sizes = this.appliedSizes;
    sizes[e.index % sizes.length] = e.data.length;
  }

  /** A snapshot at `index` was installed: counting starts over after it. */
  noteInstalled(index: number): void {
    this.appliedBytesSinceSnapshot = 0;
    this.entriesAhead = 0;
    this.appliedSizesFrom = index + 1;
  }

  /** Whether a snapshot at `appliedIndex` is due, the last one being at `snapshotIndex`. */
  isDue(appliedIndex: number, snapshotIndex: number): boolean {
    if (appliedIndex - snapshotIndex + this.entriesAhead < this.everyEntries && this.appliedBytesSinceSnapshot < this.everyBytes) return false;
    return appliedIndex > snapshotIndex;
  }

  /** The host took a snapshot: the byte count starts over. */
  noteTaken(): void {
    this.appliedBytesSinceSnapshot = 0;
    this.entriesAhead = 0;
  }

  /**
   * How many entries up to `index` (the applied index) to keep behind a snapshot at it: the
   * newest ones, while both snapshotRetainEntries and snapshotRetainBytes allow; or, if more
   * are needed from `neededIndex` on (RaftNode.logIndexNeeded) and all of those fit in
   * snapshotRetainBytes and SNAPSHOT_RETAIN_ENTRIES_MAX, those. Entries applied before this
   * host started (or inside an installed snapshot) are not weighed, and not kept.
   */
  entriesToRetain(index: number, neededIndex = index + 1): number {
    const retained = this.newestWithin(index, this.retainEntries);
    const needed = index - neededIndex + 1;
    if (needed <= retained) return retained;
    return this.newestWithin(index, needed) === needed ? needed : retained;
  }

  /** How many of the newest `countMax` entries up to `index` fit in snapshotRetainBytes. */
  private newestWithin(index: number, countMax: number): number {
    const sizes = this.appliedSizes;
    const from = Math.max(this.appliedSizesFrom, index - Math.min(countMax, sizes.length) + 1);
    let bytes = 0;
    let count = 0;
    for (let i = index; i >= from; i--) {
      bytes += sizes[i % sizes.length]! + ENTRY_FRAMING_BYTES;
      if (bytes > this.retainBytes) break;
      count++;
    }
    return count;
  }
}
