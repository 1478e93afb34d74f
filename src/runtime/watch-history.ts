/**
 * The committed changes a node keeps in memory so that a watch can resume after an index
 * it names (a client that moves its watch to another node, or reconnects), whether or not
 * anyone watches now. Bounded by a count of changes and by bytes, whichever binds first:
 * with large values the byte bound does, so the history costs at most `bytesMax` however
 * large the values are; with tiny ones the count does.
 *
 * A change counts for its key and value bytes plus {@link WATCH_CHANGE_OVERHEAD_BYTES}.
 * The key and value are the state machine's own arrays (not copies): while a key still
 * holds the value a change put there, keeping the change costs only its object, so the
 * count is an upper bound on what the history keeps alive beyond the live data.
 *
 * Changes [floorIndex, ...) are held in order of (index, position) in a ring: the change
 * at position k from the oldest is at `ring[(head + k) % ring.length]`. The ring grows by
 * doubling up to `changesMax` slots and is not copied after that, so a push costs two
 * stores and no allocation.
 *
 * ```
 *   ring:  0          head                       ring.length
 *          ├ ...held ──┼──────── held ... ────────┤   (wrapping around)
 *   change:            oldest
 * ```
 *
 * Invariant: every change with an index above `floorIndex` that the node applied since the
 * floor was set is held; `size <= changesMax`; `bytes <= bytesMax` after every push.
 */
import { fail } from '../base/index.ts';
import type { KvChange } from '../kv/index.ts';

/**
 * What one change counts for beyond its key and value bytes: the KvChange object and the
 * two array views it holds (some 50 bytes each in V8), so that a history of tiny changes
 * is bounded in bytes too.
 */
export const WATCH_CHANGE_OVERHEAD_BYTES = 128;
const RING_SLOTS_MIN = 64;

export class WatchHistory {
  private ring: (KvChange | undefined)[] = [];
  private head = 0;
  private size = 0;
  private bytes = 0;
  private floor: number;

  constructor(
    floorIndex: number,
    private readonly changesMax: number,
    private readonly bytesMax: number,
  ) {
    if (!(Number.isSafeInteger(changesMax) && changesMax >= 1)) fail(`changesMax ${changesMax} is a positive integer`);
    if (!(bytesMax >= 0)) fail(`bytesMax ${bytesMax} is not negative`);
    this.floor = floorIndex;
  }

  /** Every change with a higher index is held: a watch may resume after any index >= this. */
  get floorIndex(): number {
    return this.floor;
  }

  /** Changes held. */
  get count(): number {
    return this.size;
  }

  /** Bytes the held changes count for (see {@link WATCH_CHANGE_OVERHEAD_BYTES}). */
  get sizeBytes(): number {
    return this.bytes;
  }

  /**
   * Adds the newest change (changes come in log order), then forgets the oldest while
   * either bound is passed: a change larger than `bytesMax` on its own is not kept either,
   * and the floor moves up to its index.
   */
  push(change: KvChange): void {
    if (this.size === this.changesMax) this.dropOldest();
    if (this.size === this.ring.length) this.grow();
    let tail = this.head + this.size;
    if (tail >= this.ring.length) tail -= this.ring.length;
    this.ring[tail] = change;
    this.size++;
    this.bytes += changeBytes(change);
    while (this.size > 0 && this.bytes > this.bytesMax) this.dropOldest();
  }

  /** Calls `visit` with every held change whose index is above `index`, oldest first. */
  forEachAfter(index: number, visit: (change: KvChange) => void): void {
    const ring = this.ring;
    for (let k = 0; k < this.size; k++) {
      let p = this.head + k;
      if (p >= ring.length) p -= ring.length;
      const c = ring[p]!;
      if (c.index > index) visit(c);
    }
  }

  /** Forgets everything: no watch can resume before `floorIndex` (a snapshot was installed). */
  reset(floorIndex: number): void {
    this.ring = [];
    this.head = 0;
    this.size = 0;
    this.bytes = 0;
    this.floor = floorIndex;
  }

  /**
   * Forgets the oldest change. Changes of one entry share its index, so the floor becomes
   * that index (not the one before it): the rest of the entry's changes may still be held,
   * but a watch after index - 1 would miss this one.
   */
  private dropOldest(): void {
    const c = this.ring[this.head]!;
    this.ring[this.head] = undefined; // Let the change (and its value, if overwritten since) be collected.
    if (++this.head === this.ring.length) this.head = 0;
    this.size--;
    this.bytes -= changeBytes(c);
    this.floor = c.index;
    if (this.size === 0) {
      this.head = 0;
      this.bytes = 0;
    }
  }

  /** Doubles the ring (at most to changesMax slots), the held changes moved to its start. */
  private grow(): void {
    const capacity = Math.min(this.changesMax, Math.max(RING_SLOTS_MIN, this.ring.length * 2));
    const ring: (KvChange | undefined)[] = new Array(capacity).fill(undefined);
    for (let k = 0; k < this.size; k++) {
      let p = this.head + k;
      if (p >= this.ring.length) p -= this.ring.length;
      ring[k] = this.ring[p];
    }
    this.ring = ring;
    this.head = 0;
  }
}

/** What one change counts for in the byte bound. */
export function changeBytes(c: KvChange): number {
  return c.key.length + (c.value === undefined ? 0 : c.value.length) + WATCH_CHANGE_OVERHEAD_BYTES;
}
