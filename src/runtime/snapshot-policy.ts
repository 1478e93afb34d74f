/**
 * When a node snapshots its state machine (and so compacts its log), and how many entries
 * it keeps behind the snapshot for followers slightly behind:
 *
 * - a snapshot is due once `snapshotEveryEntries` entries, or `snapshotEveryBytes` bytes of
 *   entry data, have applied past the last snapshot this node took or installed (counted
 *   from start, after a restart), whichever comes first;
 * - it keeps the newest applied entries while both `snapshotRetainEntries` and
 *   `snapshotRetainBytes` (data plus framing) allow.
 *
 * The policy only counts and decides; the host takes the snapshot.
 */
import { ENTRY_FRAMING_BYTES, type Entry } from '../core/index.ts';
import type { NodeSettings } from './settings.ts';

export class SnapshotPolicy {
  private readonly everyEntries: number;
  private readonly everyBytes: number;
  private readonly retainEntries: number;
  private readonly retainBytes: number;
  /** Entry bytes applied since the last snapshot this host took or installed (since start, after a restart). */
  private appliedBytesSinceSnapshot = 0;
  /**
   * Data bytes of the last applied entries, entry i at slot i % length (length is
   * snapshotRetainEntries), for the retain bound:
   *
   * ```
   *   appliedSizes:  0            i % length                    length
   *                  ├── ... ─────┼ entry i (the newest) ─ ... ──┤   entry i - k at (i - k) % length
   * ```
   *
   * Invariant: slots of indexes in [appliedSizesFrom, appliedIndex] that are within `length`
   * of appliedIndex hold their entry's size.
   */
  private readonly appliedSizes: Float64Array;
  private appliedSizesFrom: number;

  constructor(
    settings: Pick<NodeSettings, 'snapshotEveryEntries' | 'snapshotEveryBytes' | 'snapshotRetainEntries' | 'snapshotRetainBytes'>,
    /** The index of the snapshot the node starts from. */
    snapshotIndex: number,
  ) {
    this.everyEntries = settings.snapshotEveryEntries;
    this.everyBytes = settings.snapshotEveryBytes;
    this.retainEntries = settings.snapshotRetainEntries;
    this.retainBytes = settings.snapshotRetainBytes;
    this.appliedSizes = new Float64Array(this.retainEntries);
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
    if (sizes.length > 0) sizes[e.index % sizes.length] = e.data.length;
  }

  /** A snapshot at `index` was installed: counting starts over after it. */
  noteInstalled(index: number): void {
    this.appliedBytesSinceSnapshot = 0;
    this.appliedSizesFrom = index + 1;
  }

  /** Whether a snapshot at `appliedIndex` is due, the last one being at `snapshotIndex`. */
  isDue(appliedIndex: number, snapshotIndex: number): boolean {
    if (appliedIndex - snapshotIndex < this.everyEntries && this.appliedBytesSinceSnapshot < this.everyBytes) return false;
    return appliedIndex > snapshotIndex;
  }

  /** The host took a snapshot: the byte count starts over. */
  noteTaken(): void {
    this.appliedBytesSinceSnapshot = 0;
  }

  /**
   * How many entries up to `index` (the applied index) to keep behind a snapshot at it: the
   * newest ones, while both snapshotRetainEntries and snapshotRetainBytes allow. Entries
   * applied before this host started (or inside an installed snapshot) are not weighed, and
   * not kept.
   */
  entriesToRetain(index: number): number {
    const sizes = this.appliedSizes;
    const from = Math.max(this.appliedSizesFrom, index - sizes.length + 1);
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
