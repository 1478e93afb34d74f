/**
 * Where the state machine keeps its keys and values: copied once into large slabs, so that a
 * put costs a copy and no allocation of its own. A `slice()` per value made a new
 * ArrayBuffer for each (a malloc, and a sweep of it on V8's GC threads): 1.5 µs of CPU per
 * 144-byte value against some 0.08 µs for a copy into a slab (bench/micro/kv-apply.bench.ts).
 *
 * A slab is appended to until full. Its bytes are not written again while anybody may hold a
 * view of them; a slab nobody can hold is written again from its start (reused) instead of
 * being left to the garbage collector, when its owner reuses slabs. The store keeps keys and
 * values in slabs of their own: a key's view goes to many places (its entry, range replies,
 * watch events, the history) and its slabs are never reused; a value's slabs are, and a view
 * of a value is held only by:
 *
 * - the store's own entries: `live` counts their bytes in it;
 * - holders that count themselves (`hold`, `letGo`): the watch history, for each change it
 *   keeps;
 * - anyone else (a read's reply, which may wait in a queue; a watch event; a listener): they
 *   get their view from `expose`, which marks the slab `exposed`, never reused.
 *
 * A retired slab with nothing live, held or exposed waits among its owner's spares (at most
 * {@link SPARE_SLABS_MAX}) for the next slab needed; beyond them, and any slab not reused, is
 * freed by the garbage collector once nothing refers to it. Reuse is what keeps writes from
 * allocating: a new slab per 256 KiB of values written, on three replicas, was the largest
 * part of what a node thread allocated outside V8's heap, and V8 answers that much outside
 * memory with a full collection every few hundred milliseconds (pauses of 5 to 10 ms, all of
 * a thread's nodes stopped).
 *
 * ```
 *   slab.bytes: [ value | (value, replaced since) | value | ... |    free    ]
 *                                                              ^ at (current slab only)
 *   live: the bytes of it that values (or keys) still in the store occupy
 * ```
 *
 * Retention is bounded. A value replaced leaves a hole in its slab, and one live value keeps
 * a whole slab alive. `wasteBytes` counts the holes (and unused tails) of the slabs that are
 * full and still hold something live; when it passes the live bytes (and a floor of a few
 * slabs), the owner moves the live contents of sparse slabs into the current one
 * ({@link ByteSlabs.isSparse}), a few entries per write, so that the slabs hold at most some
 * twice the live bytes, and the move costs each write a bounded amount. Views held elsewhere
 * (the watch history) keep their old slabs alive, and from reuse, until they let go; the
 * history is bounded in bytes on its own.
 *
 * A value over {@link SLAB_OWN_BYTES_MIN} gets a slab of its own (whole, so never sparse).
 *
 * Copies make no object (a {@link ByteCopier}): a view per copy was the largest share of what
 * a replica allocated per put. The copier holds the last source array (the keys and values of
 * one entry) until {@link forgetSource}.
 */

import { fail } from '../base/index.ts';
import { ByteCopier } from '../codec/index.ts';

/** Bytes of one slab that many contents share. */
export const SLAB_BYTES = 256 << 10;
/** Contents at least this large get a slab of their own rather than a place in a shared one. */
export const SLAB_OWN_BYTES_MIN = SLAB_BYTES >> 3;
/** Waste below this many bytes never starts a compaction: it stays within a few slabs. */
const WASTE_BYTES_FLOOR = 4 * SLAB_BYTES;
/** Free slabs kept for reuse at most (1 MiB): under a steady load one is freed as one is needed. */
export const SPARE_SLABS_MAX = 4;

export class Slab {
  /** Bytes of live keys and values in it. Invariant: 0 <= live <= bytes.length. */
  live = 0;
  /** Full: nothing more is written to it (the current slab is not retired). */
  retired = false;
  /** Views of it kept by holders that count themselves (see the module comment). Invariant: holds >= 0. */
  holds = 0;
  /** A view of it went to a holder nobody counts: it is never written again. */
  exposed = false;
  /** Among its owner's spares, waiting to be written again. */
  spare = false;

  /** `owner`: the slabs that reuse it once it is free; none for a slab never reused. */
  constructor(
    readonly bytes: Uint8Array,
    readonly owner?: ByteSlabs,
  ) {}

  /** A view of bytes [at, at + length) for a holder nobody counts: the slab is never written again. */
  expose(at: number, length: number): Uint8Array {
    this.exposed = true;
    return this.bytes.subarray(at, at + length);
  }

  /** A holder that counts itself keeps a view of it until its {@link letGo}. */
  hold(): void {
    this.holds++;
  }

  /** A holder lets go of the view it kept ({@link hold}); the slab may be reused once nobody holds it. */
  letGo(): void {
    if (--this.holds > 0) return;
    if (this.holds < 0) fail('a slab let go of more often than held');
    this.owner?.reuseIfFree(this);
  }
}

export class ByteSlabs {
  private current: Slab;
  private currentView: DataView;
  /** Free slabs to write again, newest last (see the module comment). */
  private readonly spares: Slab[] = [];
  /** Slabs of SLAB_BYTES made so far (a reused one is not counted again). */
  slabsMade = 0;
  /** The next free byte of the current slab. */
  private at = 0;
  /** Where the last `copy` put its bytes. */
  lastSlab: Slab;
  /** Bytes of live contents in every slab. */
  liveBytes = 0;
  /**
   * Bytes of retired slabs that hold something live but are not live: holes and unused
   * tails. Slabs with nothing live are not counted: the collector frees them.
   */
  wasteBytes = 0;

  /**
   * `reuse`: slabs nobody can hold any more are written again (see the module comment).
   * `copier`: the copier, which slabs that copy from the same entries may share.
   */
  constructor(
    private readonly reuse = false,
    private readonly copier = new ByteCopier(),
  ) {
    this.current = this.newSlab();
    this.currentView = new DataView(this.current.bytes.buffer);
    this.lastSlab = this.current;
  }

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
    // A retired slab's waste is its size less its live bytes while anything in it is live (an
    // empty value counts nothing: a slab may hold one with nothing live).
    const size = slab.bytes.length;
    this.wasteBytes += (slab.live > 0 ? size - slab.live : 0) - (before > 0 ? size - before : 0);
    if (slab.live === 0) this.reuseIfFree(slab);
  }

  /** Keeps `slab` among the spares if it is this owner's (only an owner that reuses owns any), retired, and nothing live, held or exposed is in it. */
  reuseIfFree(slab: Slab): void {
    if (slab.owner !== this || !slab.retired || slab.live !== 0 || slab.holds !== 0 || slab.exposed || slab.spare) return;
    if (this.spares.length >= SPARE_SLABS_MAX) return;
    slab.spare = true;
    this.spares.push(slab);
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
    const spare = this.spares.pop();
    if (spare === undefined) {
      this.current = this.newSlab();
    } else {
      spare.spare = false;
      spare.retired = false;
      this.current = spare;
    }
    this.currentView = new DataView(this.current.bytes.buffer);
    this.at = 0;
    // Everything in it may be gone already.
    this.reuseIfFree(slab);
  }

  private newSlab(): Slab {
    this.slabsMade++;
    return new Slab(new Uint8Array(SLAB_BYTES), this.reuse ? this : undefined);
  }
}
