/**
 * The newest entries, kept in memory so that a leader replicating what it just wrote, or a
 * follower catching up by a few entries, reads them without touching the disk. Bounded by
 * an entry count and a byte count; the oldest entries go first.
 *
 * What the bytes bound covers: each entry counts for its data plus the fixed framing
 * ({@link entryBytes}). An entry a follower received is a view of the memory of the whole
 * message it came in (the message codec copies a message's payloads once, together), so
 * the memory held can exceed `bytesMax` by the parts of messages whose other entries were
 * evicted or truncated: the held entries are consecutive, so only a message at either end
 * can be held in part. That is at most two AppendEntries (appendBytesMax each, or one entry
 * larger than that).
 *
 * Entries [first, first + size) are held, contiguous, in a ring: entry first + k is at
 * `ring[(head + k) % ring.length]`, and the bytes it counts for at the same slot of `sizes`,
 * so that evicting an old entry does not touch its object (by then long out of the CPU's
 * caches). The rings grow by doubling up to the entry bound and are never copied after
 * that, so appending costs two stores per entry and no allocation.
 *
 * ```
 *   ring:  0          head                      ring.length
 *          ├ ...held ──┼──────── held ... ───────┤   (wrapping around)
 *   entry:             first
 * ```
 */
import { EMPTY_DATA, EntryType, entryBytes, type Entry } from '../../core/index.ts';

/** What {@link entryBytes} counts for an entry beyond its data. */
const ENTRY_OVERHEAD_BYTES = entryBytes({ index: 0, term: 0, type: EntryType.Normal, data: EMPTY_DATA });
const RING_SLOTS_MIN = 64;

export class TailCache {
  private ring: (Entry | undefined)[] = [];
  /** Bytes each held entry counts for ({@link entryBytes}), slot for slot with `ring`. */
  private sizes = new Float64Array(0);
  private head = 0;
  private size = 0;
  /** The index of the entry at `head` (meaningful when size > 0). */
  private first = 0;
  private bytes = 0;

  constructor(
    private readonly entriesMax: number,
    private readonly bytesMax: number,
  ) {}

  get(i: number): Entry | undefined {
    const k = i - this.first;
    if (!(k >= 0 && k < this.size)) return undefined;
    let p = this.head + k;
    if (p >= this.ring.length) p -= this.ring.length;
    return this.ring[p];
  }

  /**
   * Adds entries that were just written (`entries[from..]`, consecutive); they start a new
   * run if they do not follow the held ones.
   */
  append(entries: readonly Entry[], from = 0): void {
    if (from >= entries.length) return;
    if (this.size > 0 && entries[from]!.index !== this.first + this.size) this.clear();
    // Only the newest entriesMax can stay.
    let start = from;
    if (entries.length - start > this.entriesMax) {
      start = entries.length - this.entriesMax;
      this.clear();
      if (start >= entries.length) return;
    }
    if (this.size === 0) {
      this.head = 0;
      this.first = entries[start]!.index;
    }
    const needed = Math.min(this.entriesMax, this.size + (entries.length - start));
    if (needed > this.ring.length) this.grow(needed);
    const ring = this.ring;
    const sizes = this.sizes;
    const capacity = ring.length;
    let head = this.head;
    let size = this.size;
    let first = this.first;
    let tail = head + size;
    if (tail >= capacity) tail -= capacity;
    let bytes = this.bytes;
    for (let k = start; k < entries.length; k++) {
      if (size === capacity) {
        // Full (capacity is entriesMax): the oldest goes, its slot takes the new one.
        bytes -= sizes[head]!;
        if (++head === capacity) head = 0;
        first++;
        size--;
      }
      const e = entries[k]!;
      const n = e.data.length + ENTRY_OVERHEAD_BYTES;
      ring[tail] = e;
      sizes[tail] = n;
      if (++tail === capacity) tail = 0;
      bytes += n;
      size++;
    }
    this.head = head;
    this.size = size;
    this.first = first;
    this.bytes = bytes;
    while (this.size > 0 && this.bytes > this.bytesMax) this.dropFirst();
    if (this.size === 0) this.clear();
  }

  /** Drops entries >= index. */
  truncateFrom(index: number): void {
    while (this.size > 0 && this.first + this.size - 1 >= index) {
      let p = this.head + this.size - 1;
      if (p >= this.ring.length) p -= this.ring.length;
      this.bytes -= this.sizes[p]!;
      this.ring[p] = undefined;
      this.size--;
    }
    if (this.size === 0) this.clear();
  }

  /** Drops entries <= index. */
  compactThrough(index: number): void {
    while (this.size > 0 && this.first <= index) this.dropFirst();
    if (this.size === 0) this.clear();
  }

  clear(): void {
    this.ring = [];
    this.sizes = new Float64Array(0);
    this.head = 0;
    this.size = 0;
    this.first = 0;
    this.bytes = 0;
  }

  private dropFirst(): void {
    this.bytes -= this.sizes[this.head]!;
    this.ring[this.head] = undefined; // Let the entry be collected.
    if (++this.head === this.ring.length) this.head = 0;
    this.first++;
    this.size--;
  }

  /** A ring of at least `needed` slots (at most entriesMax), the held entries moved to its start. */
  private grow(needed: number): void {
    let capacity = Math.max(RING_SLOTS_MIN, this.ring.length);
    while (capacity < needed) capacity *= 2;
    capacity = Math.min(capacity, this.entriesMax);
    const ring: (Entry | undefined)[] = new Array(capacity).fill(undefined);
    const sizes = new Float64Array(capacity);
    for (let k = 0; k < this.size; k++) {
      let p = this.head + k;
      if (p >= this.ring.length) p -= this.ring.length;
      ring[k] = this.ring[p];
      sizes[k] = this.sizes[p]!;
    }
    this.ring = ring;
    this.sizes = sizes;
    this.head = 0;
  }
}
