/**
 * Copies of small byte ranges carved from shared slabs, the way Node's `Buffer` pool serves
 * small buffers: a value read from ring memory must be copied for its caller, and a
 * `slice()` of a few hundred bytes costs an allocation outside the heap and its sweeping
 * later, which was most of a client's CPU per get (bench/micro/client.bench.ts). A copy
 * here costs a view object.
 *
 * The price: a copy keeps its whole slab (SLAB_BYTES) alive while the caller keeps it, so a
 * caller that keeps one small value of every many holds up to SLAB_BYTES / its size times
 * the bytes it keeps. Copies over COPY_POOL_ITEM_BYTES_MAX get memory of their own.
 */

const SLAB_BYTES = 8192;
/** Longest copy taken from a slab. */
export const COPY_POOL_ITEM_BYTES_MAX = 1024;

export class CopyPool {
  // The ArrayBuffer itself, not a view: reading a view's `buffer` is a call into the runtime.
  private slab = new ArrayBuffer(0);
  private offset = 0;

  /** A copy of source[start, end), which the caller owns. */
  copy(source: Uint8Array, start: number, end: number): Uint8Array {
    const length = end - start;
    if (length > COPY_POOL_ITEM_BYTES_MAX) return source.slice(start, end);
    if (this.offset + length > this.slab.byteLength) {
      this.slab = new ArrayBuffer(SLAB_BYTES);
      this.offset = 0;
    }
    const at = this.offset;
    // Aligned, so a caller may lay a wider typed array over a copy.
    this.offset = (at + length + 7) & ~7;
    const copy = new Uint8Array(this.slab, at, length);
    copy.set(source.subarray(start, end));
    return copy;
  }
}
