/**
 * Where the state machine keeps its keys and values: copied once into large slabs, so that a
 * put costs a copy and no allocation of its own. A `slice()` per value made a new
 * ArrayBuffer for each (a malloc, and a sweep of it on V8's GC threads): 1.5 µs of CPU per
 * 144-byte value against some 0.08 µs for a copy into a slab (bench/micro/kv-apply.bench.ts).
 *
 * A slab is only ever appended to: bytes once written are never written again, so a view of
 * them stays valid for as long as anybody holds it (a reply being copied out, the watch
 * history). A slab is freed by the garbage collector once nothing refers to it.
 *
 * ```
 *   slab.bytes: [ key | value | (value, replaced since) | key | value | ... |    free    ]
 *                                                                           ^ at (current slab only)
 *   live: the bytes of it that keys and values still in the store occupy
 * ```
 *
 * Retention is bounded. A value replaced leaves a hole in its slab, and one live value keeps
 * a whole slab alive. `wasteBytes` counts the holes (and unused tails) of the slabs that are
 * full and still hold something live; when it passes the live bytes (and a floor of a few
 * slabs), the owner moves the live contents of sparse slabs into the current one
 * ({@link ByteSlabs.isSparse}), a few entries per write, so that the slabs hold at most some
 * twice the live bytes, and the move costs each write a bounded amount. Views held elsewhere
 * (the watch history) keep their old slabs alive until they let go; the history is bounded in
 * bytes on its own.
 *
 * A value over {@link SLAB_OWN_BYTES_MIN} gets a slab of its own (whole, so never sparse).
 *
 * Copies make no object (a {@link ByteCopier}): a view per copy was the largest share of what
 * a replica allocated per put. The copier holds the last source array (the keys and values of
 * one entry) until {@link forgetSource}.
 */

import { ByteCopier } from '../codec/index.ts';

/** Bytes of one shared slab. */
export const SLAB_BYTES = 256 << 10;
/** Contents at least this large get a slab of their own rather than a place in a shared one. */
export const SLAB_OWN_BYTES_MIN = SLAB_BYTES >> 3;
/** Waste below this many bytes never starts a compaction: it stays within a few slabs. */
const WASTE_BYTES_FLOOR = 4 * SLAB_BYTES;

export class Slab {
  /** Bytes of live keys and values in it. Invariant: 0 <= live <= bytes.length. */
  live = 0;
  /** Full: nothing more is written to it (the current slab is not retired). */
  retired = false;
  constructor(readonly bytes: Uint8Array) {}
}

export class ByteSlabs {
  private current = new Slab(new Uint8Array(SLAB_BYTES));
  private currentView = new DataView(this.current.bytes.buffer);
  /** The next free byte of the current slab. */
  private at = 0;
  private readonly copier = new ByteCopier();
  /** Where the last `copy` put its bytes. */
  lastSlab: Slab = this.current;
  /** Bytes of live contents in every slab. */
  liveBytes = 0;
  /**
   * Bytes of retired slabs that hold something live but are not live: holes and unused
   * tails. Slabs with nothing live are not counted: the collector frees them.
   */
  wasteBytes = 0;

  /**
   * Copies src[from, from + length) into a slab and returns its offset there; the slab is
   * `lastSlab`. The caller accounts it as live (it is, from now on) and calls `release` when
   * the store lets go of it.
   */
  copy(src: Uint8Array, from: number, length: number): number {
    if (length >= SLAB_OWN_BYTES_MIN) {
      const own = new Slab(src.slice(from, from + length));
      own.retired = true;
      own.live = length;
      this.liveBytes += length;
      this.lastSlab = own;
      return 0;
    }
    if (this.at + length > SLAB_BYTES) this.retireCurrent();
    const at = this.at;
    this.copier.copy(src, from, this.current.bytes, this.currentView, at, length);
    this.at = at + length;
    this.current.live += length;
    this.liveBytes += length;
    this.lastSlab = this.current;
    return at;
  }

  /** Lets go of the last source array (the caller is done copying from it). */
  forgetSource(): void {
    this.copier.forgetSource();
  }

  /** The store no longer holds `length` bytes of `slab`. */
  release(slab: Slab, length: number): void {
    const before = slab.live;
    slab.live = before - length;
    this.liveBytes -= length;
    if (!slab.retired) return;
    // A retired slab's waste is its size less its live bytes while anything in it is live.
    const size = slab.bytes.length;
    this.wasteBytes += (slab.live > 0 ? size - slab.live : 0) - (size - before);
  }

  /** Whether the slabs waste more than they hold live (and more than the floor): time to compact. */
  get isWasteful(): boolean {
    return this.wasteBytes > WASTE_BYTES_FLOOR && this.wasteBytes > this.liveBytes;
  }

  /** Whether contents in `slab` should move when compacting: a retired slab less than half live. */
  isSparse(slab: Slab): boolean {
    return slab.retired && 2 * slab.live < slab.bytes.length;
  }

  /** The current slab becomes full: its unused tail is waste while anything in it is live. */
  private retireCurrent(): void {
    const slab = this.current;
    slab.retired = true;
    if (slab.live > 0) this.wasteBytes += slab.bytes.length - slab.live;
    this.current = new Slab(new Uint8Array(SLAB_BYTES));
    this.currentView = new DataView(this.current.bytes.buffer);
    this.at = 0;
  }
}
