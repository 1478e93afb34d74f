/**
 * Where each entry of the log lives on disk: segment, byte offset, payload length and term,
 * in typed arrays (20 bytes an entry), never the payloads. Memory stays proportional to the
 * number of entries kept (those after the snapshot), and the entries themselves are read
 * back from their segment on demand.
 *
 * The arrays are a sliding window: slots [head, head + count) are in use, slot head + k
 * holds entry base + 1 + k. Compaction moves `head` forward; appending past the end first
 * slides the used slots back to 0 (if at least half the capacity is free) or doubles it.
 *
 * ```
 *   slot:   0        head                  head+count        capacity
 *           ├─ free ──┼──────── used ───────┼────── free ───────┤
 *   entry:            base+1                base+count (= lastIndex)
 * ```
 */
import { assert, type Entry } from '../../core/index.ts';
import { ENTRY_FIXED_BYTES, FRAME_HEADER_BYTES } from './format.ts';

const CAPACITY_MIN = 1024;
/** Segment sequence numbers and offsets are stored as u32. */
const U32_MAX = 0xffff_ffff;

export class EntryIndex {
  /** The index before the first entry held. Invariant: base >= 0. */
  base = 0;
  /** Entries held: base + 1 .. base + count. Invariant: 0 <= count. */
  count = 0;
  private head = 0;
  private segments = new Uint32Array(CAPACITY_MIN);
  private offsets = new Uint32Array(CAPACITY_MIN);
  private lengths = new Uint32Array(CAPACITY_MIN);
  private terms = new Float64Array(CAPACITY_MIN);

  get lastIndex(): number {
    return this.base + this.count;
  }

  /** Whether entry `i` is held. */
  has(i: number): boolean {
    return i > this.base && i <= this.base + this.count;
  }

  /** Appends entry `index`, which must follow the last one. */
  push(index: number, term: number, segment: number, offsetBytes: number, payloadBytes: number): void {
    assert(index === this.lastIndex + 1, `index entry ${index} does not follow ${this.lastIndex}`);
    assert(segment <= U32_MAX, `segment ${segment} over u32`);
    assert(offsetBytes <= U32_MAX, `offset ${offsetBytes} over u32`);
    if (this.head + this.count === this.terms.length) this.makeRoom();
    const slot = this.head + this.count;
    this.segments[slot] = segment;
    this.offsets[slot] = offsetBytes;
    this.lengths[slot] = payloadBytes;
    this.terms[slot] = term;
    this.count++;
  }

  /**
   * Appends `entries[from..]`, which must follow the last entry and be consecutive (the
   * caller has checked), all in `segment`, their frames back to back from `offsetBytes`.
   * The same as {@link push} for each, with one capacity check and one set of assertions.
   */
  pushRun(entries: readonly Entry[], from: number, segment: number, offsetBytes: number): void {
    const n = entries.length - from;
    if (n <= 0) return;
    const first = entries[from]!.index;
    if (first !== this.lastIndex + 1) assert(false, `index entry ${first} does not follow ${this.lastIndex}`);
    if (segment > U32_MAX) assert(false, `segment ${segment} over u32`);
    while (this.head + this.count + n > this.terms.length) this.makeRoom(n);
    const segments = this.segments;
    const offsets = this.offsets;
    const lengths = this.lengths;
    const terms = this.terms;
    let slot = this.head + this.count;
    let offset = offsetBytes;
    let lastStart = offsetBytes;
    for (let k = from; k < entries.length; k++, slot++) {
      const e = entries[k]!;
      const payload = ENTRY_FIXED_BYTES + e.data.length;
      segments[slot] = segment;
      offsets[slot] = offset;
      lengths[slot] = payload;
      terms[slot] = e.term;
      lastStart = offset;
      offset += (FRAME_HEADER_BYTES + payload + 7) & ~7;
    }
    // Offsets only grow: checking the last checks them all.
    if (lastStart > U32_MAX) assert(false, `offset ${lastStart} over u32`);
    this.count += n;
  }

  /** Discards entries >= index. An index at or below `base` empties the index and moves base back. */
  truncateFrom(index: number): void {
    if (index <= this.base) {
      this.reset(index - 1);
      return;
    }
    this.count = Math.min(this.count, index - 1 - this.base);
  }

  /** Discards entries <= index. Invariant kept: index >= base. */
  compactThrough(index: number): void {
    assert(index >= this.base, `compact through ${index} below base ${this.base}`);
    if (index >= this.lastIndex) {
      this.reset(index);
      return;
    }
    const drop = index - this.base;
    this.head += drop;
    this.count -= drop;
    this.base = index;
    this.maybeShrink();
  }

  /** Empties the index; the next entry pushed must be base + 1. */
  reset(base: number): void {
    assert(base >= 0, `negative base ${base}`);
    this.base = base;
    this.count = 0;
    this.head = 0;
    this.maybeShrink();
  }

  term(i: number): number {
    return this.terms[this.slot(i)]!;
  }

  segment(i: number): number {
    return this.segments[this.slot(i)]!;
  }

  offset(i: number): number {
    return this.offsets[this.slot(i)]!;
  }

  /** Payload bytes of entry i's frame. */
  length(i: number): number {
    return this.lengths[this.slot(i)]!;
  }

  private slot(i: number): number {
    assert(this.has(i), `entry ${i} not in index (${this.base + 1}..${this.lastIndex})`);
    return this.head + (i - this.base - 1);
  }

  /** Makes room for `n` more slots after the used ones (at least one). */
  private makeRoom(n = 1): void {
    const capacity = this.terms.length;
    if (this.head >= capacity / 2 && this.count + n <= capacity) {
      this.move(capacity);
      return;
    }
    let grown = capacity * 2;
    while (grown < this.count + n) grown *= 2;
    this.move(grown);
  }

  /** Returns memory once most of it is unused (after compaction or truncation). */
  private maybeShrink(): void {
    const capacity = this.terms.length;
    if (capacity > CAPACITY_MIN && this.count < capacity / 4) this.move(Math.max(CAPACITY_MIN, capacity / 2));
  }

  /** Moves the used slots to the start of arrays of `capacity` slots. */
  private move(capacity: number): void {
    const from = this.head;
    const to = this.head + this.count;
    if (capacity === this.terms.length) {
      this.segments.copyWithin(0, from, to);
      this.offsets.copyWithin(0, from, to);
      this.lengths.copyWithin(0, from, to);
      this.terms.copyWithin(0, from, to);
    } else {
      const segments = new Uint32Array(capacity);
      const offsets = new Uint32Array(capacity);
      const lengths = new Uint32Array(capacity);
      const terms = new Float64Array(capacity);
      segments.set(this.segments.subarray(from, to));
      offsets.set(this.offsets.subarray(from, to));
      lengths.set(this.lengths.subarray(from, to));
      terms.set(this.terms.subarray(from, to));
      this.segments = segments;
      this.offsets = offsets;
      this.lengths = lengths;
      this.terms = terms;
    }
    this.head = 0;
  }
}

