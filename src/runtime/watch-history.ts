/**
 * The committed changes a node keeps in memory so that a watch can resume after an index
 * it names (a client that moves its watch to another node, or reconnects), whether or not
 * anyone watches now. Bounded by a count of changes and by bytes, whichever binds first:
 * with large values the byte bound does, so the history costs at most `bytesMax` however
 * large the values are; with tiny ones the count does.
 *
 * A change counts for its key and value bytes plus {@link WATCH_CHANGE_OVERHEAD_BYTES}.
 * The key and value are the state machine's own bytes (not copies, in its slabs: see
 * kv/byte-slabs.ts): while a key still holds the value a change put there, keeping the
 * change costs only its slot. A value overwritten since keeps the slab it lies in alive, and
 * from being written over (the history holds the slab, and lets go when it forgets the
 * change), until the change is forgotten; values are written into slabs in log order, as
 * the history holds them, so what the history keeps alive is its own bytes and at most a
 * slab more at each end, beside the slabs the live data holds. A change handed out as an
 * object (a watch that resumes) exposes its value's slab: it is never written over.
 *
 * Changes [floorIndex, ...) are held in order of (index, position) in a ring: the change
 * at position k from the oldest is in slot `(head + k) % capacity`. The ring grows by
 * doubling up to `changesMax` slots and is not copied after that, so a push costs nine
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
import { Slab, type KvChange, type KvChangeSink } from '../kv/index.ts';

/**
 * What one change counts for beyond its key and value bytes: its slot in the ring (two
 * references and seven numbers, 72 bytes) and the key's view, which only the history holds
 * once its key is deleted, so that a history of tiny changes is bounded in bytes too.
 */
export const WATCH_CHANGE_OVERHEAD_BYTES = 128;
const RING_SLOTS_MIN = 64;
/**
 * Numbers per slot in `numbers`: index, position, createIndex, version, valueAt, valueLength,
 * and the bytes the change counts for (so that forgetting the oldest reads only this array,
 * which it walks in order, and not its key: a key pushed tens of thousands of changes ago is
 * out of the cache, and every apply forgets one once the history is full).
 */
const SLOT_NUMBERS = 7;

/**
 * Held as struct of arrays, not as an object per change: a push stores two references and
 * seven numbers and makes nothing, so the history costs the state machine's apply no
 * allocation (an object per change, kept, cost some 0.15 µs of CPU per put in the collector).
 */
export class WatchHistory implements KvChangeSink {
  /** Slot i: the key, and the slab its value lies in, held (undefined: a delete). */
  private keys: (Uint8Array | undefined)[] = [];
  private valueSlabs: (Slab | undefined)[] = [];
  /** Slot i's numbers at [SLOT_NUMBERS * i, SLOT_NUMBERS * (i + 1)). */
  private numbers = new Float64Array(0);
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

  /** Adds the newest change, as {@link change} does (its value in a slab of its own, never reused). */
  push(c: KvChange): void {
    if (c.value === undefined) this.change(c.index, c.position, c.key, undefined, 0, 0, c.createIndex, c.version);
    else this.change(c.index, c.position, c.key, new Slab(c.value), 0, c.value.length, c.createIndex, c.version);
  }

  /**
   * Adds the newest change (changes come in log order; the key and the value's slab are
   * kept, not copied, and the slab held until the change is forgotten), then forgets the
   * oldest while either bound is passed: a change larger than `bytesMax` on its own is not
   * kept either, and the floor moves up to its index.
   */
  change(index: number, position: number, key: Uint8Array, valueSlab: Slab | undefined, valueAt: number, valueLength: number, createIndex: number, version: number): void {
    if (this.size === this.changesMax) this.dropOldest();
    if (this.size === this.keys.length) this.grow();
    const tail = this.slot(this.size);
    this.keys[tail] = key;
    this.valueSlabs[tail] = valueSlab;
    valueSlab?.hold();
    const n = this.numbers;
    const at = tail * SLOT_NUMBERS;
    n[at] = index;
    n[at + 1] = position;
    n[at + 2] = createIndex;
    n[at + 3] = version;
    n[at + 4] = valueAt;
    n[at + 5] = valueLength;
    const bytes = key.length + valueLength + WATCH_CHANGE_OVERHEAD_BYTES;
    n[at + 6] = bytes;
    this.size++;
    this.bytes += bytes;
    while (this.size > 0 && this.bytes > this.bytesMax) this.dropOldest();
  }

  /** Calls `visit` with every held change whose index is above `index`, oldest first (an object made for each). */
  forEachAfter(index: number, visit: (change: KvChange) => void): void {
    for (let k = 0; k < this.size; k++) {
      const p = this.slot(k);
      const at = p * SLOT_NUMBERS;
      if (this.numbers[at]! > index) visit(this.changeAt(p));
    }
  }

  /** Forgets everything: no watch can resume before `floorIndex` (a snapshot was installed). */
  reset(floorIndex: number): void {
    for (let k = 0; k < this.size; k++) this.valueSlabs[this.slot(k)]?.letGo();
    this.keys = [];
    this.valueSlabs = [];
    this.numbers = new Float64Array(0);
    this.head = 0;
    this.size = 0;
    this.bytes = 0;
    this.floor = floorIndex;
  }

  /** The change in slot `p`, as an object. */
  private changeAt(p: number): KvChange {
    const n = this.numbers;
    const at = p * SLOT_NUMBERS;
    return {
      index: n[at]!,
      position: n[at + 1]!,
      key: this.keys[p]!,
      value: this.valueSlabs[p]?.expose(n[at + 4]!, n[at + 5]!),
      createIndex: n[at + 2]!,
      version: n[at + 3]!,
    };
  }

  /**
   * Forgets the oldest change. Changes of one entry share its index, so the floor becomes
   * that index (not the one before it): the rest of the entry's changes may still be held,
   * but a watch after index - 1 would miss this one.
   */
  private dropOldest(): void {
    const p = this.head;
    const at = p * SLOT_NUMBERS;
    this.bytes -= this.numbers[at + 6]!;
    this.floor = this.numbers[at]!;
    // Let the key and the slab go (a value overwritten since, and its slab, may then be reused or collected).
    this.keys[p] = undefined;
    this.valueSlabs[p]?.letGo();
    this.valueSlabs[p] = undefined;
    if (++this.head === this.keys.length) this.head = 0;
    this.size--;
    if (this.size === 0) {
      this.head = 0;
      this.bytes = 0;
    }
  }

  /** The slot of the change at position k from the oldest (k <= size, within the ring). */
  private slot(k: number): number {
    const p = this.head + k;
    return p >= this.keys.length ? p - this.keys.length : p;
  }

  /** Doubles the ring (at most to changesMax slots), the held changes moved to its start. */
  private grow(): void {
    const capacity = Math.min(this.changesMax, Math.max(RING_SLOTS_MIN, this.keys.length * 2));
    const keys: (Uint8Array | undefined)[] = new Array(capacity).fill(undefined);
    const valueSlabs: (Slab | undefined)[] = new Array(capacity).fill(undefined);
    const numbers = new Float64Array(capacity * SLOT_NUMBERS);
    for (let k = 0; k < this.size; k++) {
      const p = this.slot(k);
      keys[k] = this.keys[p];
      valueSlabs[k] = this.valueSlabs[p];
    }
    // The held slots are at most two runs: from the head to the end, then from the start.
    const firstRun = Math.min(this.size, this.keys.length - this.head);
    numbers.set(this.numbers.subarray(this.head * SLOT_NUMBERS, (this.head + firstRun) * SLOT_NUMBERS), 0);
    numbers.set(this.numbers.subarray(0, (this.size - firstRun) * SLOT_NUMBERS), firstRun * SLOT_NUMBERS);
    this.keys = keys;
    this.valueSlabs = valueSlabs;
    this.numbers = numbers;
    this.head = 0;
  }
}

/** What one change counts for in the byte bound. */
export function changeBytes(c: KvChange): number {
  return c.key.length + (c.value === undefined ? 0 : c.value.length) + WATCH_CHANGE_OVERHEAD_BYTES;
}
