/**
 * A double-ended queue of numbers in one Float64Array ring, for the hot path's FIFOs (request
 * ids waiting for their batch to apply): pushing and shifting make no object, unlike an array
 * of arrays or a Map per batch, whose short-lived objects V8 may promote or pretenure into the
 * old generation, and full collections follow.
 *
 * Memory: a power of two of 8-byte slots, doubled when full; an empty deque whose ring grew
 * past SHRINK_SLOTS goes back to its first size, so a burst does not keep its memory.
 */
import { fail } from './assert.ts';

const SHRINK_SLOTS = 1 << 16;

export class F64Deque {
  private ring: Float64Array;
  private mask: number;
  private head = 0;
  private lengthValue = 0;

  constructor(private readonly initialSlots = 64) {
    if (!(Number.isInteger(initialSlots) && initialSlots >= 1 && (initialSlots & (initialSlots - 1)) === 0)) fail(`initialSlots ${initialSlots} is not a power of two`);
    this.ring = new Float64Array(initialSlots);
    this.mask = initialSlots - 1;
  }

  get length(): number {
    return this.lengthValue;
  }

  /** Slots held (for tests of the memory bound). */
  get capacity(): number {
    return this.ring.length;
  }

  push(value: number): void {
    if (this.lengthValue === this.ring.length) this.grow();
    this.ring[(this.head + this.lengthValue) & this.mask] = value;
    this.lengthValue++;
  }

  /** The value `i` places from the front (0 is the oldest). */
  at(i: number): number {
    if (!(i >= 0 && i < this.lengthValue)) fail(`index ${i} is outside a deque of ${this.lengthValue}`);
    return this.ring[(this.head + i) & this.mask]!;
  }

  /** The values [start, end) places from the front, as an array (for paths off the hot one). */
  slice(start: number, end: number): number[] {
    if (!(start >= 0 && start <= end && end <= this.lengthValue)) fail(`[${start}, ${end}) is outside a deque of ${this.lengthValue}`);
    return Array.from({ length: end - start }, (_, i) => this.ring[(this.head + start + i) & this.mask]!);
  }

  /** Removes the oldest `n` values. */
  dropFirst(n: number): void {
    if (!(n >= 0 && n <= this.lengthValue)) fail(`cannot drop ${n} of ${this.lengthValue}`);
    this.head = (this.head + n) & this.mask;
    this.lengthValue -= n;
    if (this.lengthValue === 0) this.clear();
  }

  /** Removes the newest `n` values. */
  dropLast(n: number): void {
    if (!(n >= 0 && n <= this.lengthValue)) fail(`cannot drop ${n} of ${this.lengthValue}`);
    this.lengthValue -= n;
    if (this.lengthValue === 0) this.clear();
  }

  clear(): void {
    this.head = 0;
    this.lengthValue = 0;
    if (this.ring.length > SHRINK_SLOTS) {
      this.ring = new Float64Array(this.initialSlots);
      this.mask = this.initialSlots - 1;
    }
  }

  private grow(): void {
    const next = new Float64Array(this.ring.length * 2);
    for (let i = 0; i < this.lengthValue; i++) next[i] = this.ring[(this.head + i) & this.mask]!;
    this.ring = next;
    this.mask = next.length - 1;
    this.head = 0;
  }
}
