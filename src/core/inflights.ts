/**
 * A bounded window of AppendEntries messages sent to one follower and not yet
 * acknowledged, remembered by the last index each carried and its size in bytes.
 *
 *     start              start + count
 *       │                      │
 *   ┌───┼──────────────────────┼───────────┐
 *   │   │ ▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓ │           │   ring of capacity slots
 *   └───┴──────────────────────┴───────────┘
 *        oldest           newest
 *
 * Slots wrap around: slot i lives at (start + i) % capacity. Invariant: the stored indexes
 * increase from oldest to newest; 0 <= count <= capacity.
 */
import { fail } from '../base/index.ts';
export class Inflights {
  private readonly indexes: Float64Array;
  private readonly sizes: Float64Array;
  private start = 0;
  private countValue = 0;
  private bytesValue = 0;

  constructor(
    readonly capacity: number,
    readonly bytesMax: number,
  ) {
    if (!(capacity >= 1)) fail('inflight capacity is at least 1');
    this.indexes = new Float64Array(capacity);
    this.sizes = new Float64Array(capacity);
  }

  get count(): number {
    return this.countValue;
  }

  get bytes(): number {
    return this.bytesValue;
  }

  /** Whether no more messages may be sent until some are acknowledged. */
  full(): boolean {
    return this.countValue === this.capacity || (this.bytesMax > 0 && this.bytesValue >= this.bytesMax);
  }

  add(index: number, bytes: number): void {
    if (this.countValue === this.capacity) fail('inflights: no add to a full window');
    if (this.countValue > 0) {
      const newest = this.indexes[(this.start + this.countValue - 1) % this.capacity]!;
      if (index <= newest) fail(`inflights: index ${index} above newest ${newest}`);
    }
    const slot = (this.start + this.countValue) % this.capacity;
    this.indexes[slot] = index;
    this.sizes[slot] = bytes;
    this.countValue++;
    this.bytesValue += bytes;
  }

  /** Frees every message whose last index is <= `index` (they are acknowledged). */
  freeLE(index: number): void {
    while (this.countValue > 0 && this.indexes[this.start]! <= index) {
      this.bytesValue -= this.sizes[this.start]!;
      this.start = (this.start + 1) % this.capacity;
      this.countValue--;
    }
    if (this.countValue === 0) {
      this.start = 0;
      this.bytesValue = 0;
    }
  }

  reset(): void {
    this.start = 0;
    this.countValue = 0;
    this.bytesValue = 0;
  }
}
