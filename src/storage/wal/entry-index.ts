/**
 * Where each entry of the log lives on disk: its segment, the byte offset of the batch that
 * holds it, its data length and its term, in typed arrays (20 bytes an entry), never the
 * payloads. Memory stays proportional to the number of entries kept (those after the
 * snapshot), and the entries themselves are read back on demand: a read verifies and decodes
 * the entry's whole batch (one CRC covers it), which tells where in it each entry is.
 *
 * The arrays are chunks of CHUNK_SLOTS slots: slots [head, head + count), counted from the
 * first chunk's first slot, are in use, and slot head + k holds entry base + 1 + k. Appending
 * adds chunks at the end and compaction drops whole chunks from the front, so nothing is ever
 * copied: a log of millions of entries grows without the copies (and the page faults on
 * fresh, ever larger arrays) that doubling one array costs.
 *
 * ```
 *   chunk:   0             1             2             3
 *   slot:    0    head                            head+count
 *            ├ free ┼──────────── used ────────────────┼ free ┤
 *   entry:          base+1                  base+count (= lastIndex)
 * ```
 */
import { fail } from '../../base/index.ts';
import { type Entry } from '../../core/index.ts';

const CHUNK_SHIFT = 12;
/** Slots per chunk: 4096, 80 KiB of arrays. */
const CHUNK_SLOTS = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK_SLOTS - 1;
/** Segment sequence numbers and offsets are stored as u32. */
const U32_MAX = 0xffff_ffff;

interface Chunk {
  readonly segments: Uint32Array;
  readonly batchOffsets: Uint32Array;
  readonly lengths: Uint32Array;
  readonly terms: Float64Array;
}

/** A chunk's four arrays, in one allocation: the terms (8-byte aligned) first, then the u32 arrays. */
function newChunk(): Chunk {
  const buffer = new ArrayBuffer(CHUNK_SLOTS * 20);
  return {
    terms: new Float64Array(buffer, 0, CHUNK_SLOTS),
    segments: new Uint32Array(buffer, CHUNK_SLOTS * 8, CHUNK_SLOTS),
    batchOffsets: new Uint32Array(buffer, CHUNK_SLOTS * 12, CHUNK_SLOTS),
    lengths: new Uint32Array(buffer, CHUNK_SLOTS * 16, CHUNK_SLOTS),
  };
}

export class EntryIndex {
  /** The index before the first entry held. Invariant: base >= 0. */
  base = 0;
  /** Entries held: base + 1 .. base + count. Invariant: 0 <= count. */
  count = 0;
  /** The slot of entry base + 1. Invariant: 0 <= head < CHUNK_SLOTS. */
  private head = 0;
  /** Invariant: chunks.length * CHUNK_SLOTS >= head + count. */
  private chunks: Chunk[] = [];

  get lastIndex(): number {
    return this.base + this.count;
  }

  /** Whether entry `i` is held. */
  has(i: number): boolean {
    return i > this.base && i <= this.base + this.count;
  }

  /** Appends entry `index`, which must follow the last one, in the batch at `batchOffsetBytes` of `segment`. */
  push(index: number, term: number, segment: number, batchOffsetBytes: number, dataBytes: number): void {
    if (!(index === this.lastIndex + 1)) fail(`index entry ${index} does not follow ${this.lastIndex}`);
    if (!(segment <= U32_MAX)) fail(`segment ${segment} over u32`);
    if (!(batchOffsetBytes <= U32_MAX)) fail(`offset ${batchOffsetBytes} over u32`);
    this.makeRoom(1);
    const slot = this.head + this.count;
    const c = this.chunks[slot >>> CHUNK_SHIFT]!;
    const w = slot & CHUNK_MASK;
    c.segments[w] = segment;
    c.batchOffsets[w] = batchOffsetBytes;
    c.lengths[w] = dataBytes;
    c.terms[w] = term;
    this.count++;
  }

  /**
   * Appends `entries[from..]`, which must follow the last entry and be consecutive (the
   * caller has checked), all in the batch at `batchOffsetBytes` of `segment`. The same as
   * {@link push} for each, with one capacity check and one set of assertions.
   */
  pushRun(entries: readonly Entry[], from: number, segment: number, batchOffsetBytes: number): void {
    const n = entries.length - from;
    if (n <= 0) return;
    const first = entries[from]!.index;
    if (first !== this.lastIndex + 1) fail(`index entry ${first} does not follow ${this.lastIndex}`);
    if (segment > U32_MAX) fail(`segment ${segment} over u32`);
    if (batchOffsetBytes > U32_MAX) fail(`offset ${batchOffsetBytes} over u32`);
    this.makeRoom(n);
    let slot = this.head + this.count;
    // Chunk by chunk: the part of the run that falls in each.
    for (let k = from; k < entries.length; ) {
      const c = this.chunks[slot >>> CHUNK_SHIFT]!;
      const w = slot & CHUNK_MASK;
      const take = Math.min(entries.length - k, CHUNK_SLOTS - w);
      c.segments.fill(segment, w, w + take);
      c.batchOffsets.fill(batchOffsetBytes, w, w + take);
      const lengths = c.lengths;
      const terms = c.terms;
      for (let j = w; j < w + take; j++, k++) {
        const e = entries[k]!;
        lengths[j] = e.data.length;
        terms[j] = e.term;
      }
      slot += take;
    }
    this.count += n;
  }

  /** Discards entries >= index. An index at or below `base` empties the index and moves base back. */
  truncateFrom(index: number): void {
    if (index <= this.base) {
      this.reset(index - 1);
      return;
    }
    this.count = Math.min(this.count, index - 1 - this.base);
    this.releaseTail();
  }

  /** Discards entries <= index. Invariant kept: index >= base. */
  compactThrough(index: number): void {
    if (!(index >= this.base)) fail(`compact through ${index} below base ${this.base}`);
    if (index >= this.lastIndex) {
      this.reset(index);
      return;
    }
    const drop = index - this.base;
    this.head += drop;
    this.count -= drop;
    this.base = index;
    // Whole chunks before the head are no longer used.
    const unused = this.head >>> CHUNK_SHIFT;
    if (unused > 0) {
      this.chunks.splice(0, unused);
      this.head &= CHUNK_MASK;
    }
  }

  /** Empties the index; the next entry pushed must be base + 1. */
  reset(base: number): void {
    if (!(base >= 0)) fail(`negative base ${base}`);
    this.base = base;
    this.count = 0;
    this.head = 0;
    this.releaseTail();
  }

  term(i: number): number {
    const s = this.slot(i);
    return this.chunks[s >>> CHUNK_SHIFT]!.terms[s & CHUNK_MASK]!;
  }

  segment(i: number): number {
    const s = this.slot(i);
    return this.chunks[s >>> CHUNK_SHIFT]!.segments[s & CHUNK_MASK]!;
  }

  /** Byte offset, in its segment, of the batch that holds entry i. */
  batchOffset(i: number): number {
    const s = this.slot(i);
    return this.chunks[s >>> CHUNK_SHIFT]!.batchOffsets[s & CHUNK_MASK]!;
  }

  /** Data bytes of entry i. */
  length(i: number): number {
    const s = this.slot(i);
    return this.chunks[s >>> CHUNK_SHIFT]!.lengths[s & CHUNK_MASK]!;
  }

  private slot(i: number): number {
    if (!(this.has(i))) fail(`entry ${i} not in index (${this.base + 1}..${this.lastIndex})`);
    return this.head + (i - this.base - 1);
  }

  /** Adds chunks until `n` more slots fit after the used ones. */
  private makeRoom(n: number): void {
    while (this.head + this.count + n > this.chunks.length * CHUNK_SLOTS) this.chunks.push(newChunk());
  }

  /**
   * Returns the chunks after the used slots to the allocator, but one: after a truncation
   * or reset the log usually grows again at once.
   */
  private releaseTail(): void {
    const used = (this.head + this.count + CHUNK_MASK) >>> CHUNK_SHIFT;
    if (this.chunks.length > used + 1) this.chunks.length = used + 1;
  }
}
