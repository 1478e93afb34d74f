/**
 * A map from safe integers to values, for lookups on the hot path: a `Map` lookup is a call
 * into V8's `FindOrderedHashMapEntry` that the optimizing compiler does not inline (the
 * state machine's session lookup, once per put on every replica, was 6% of the node thread's
 * time in the in-memory cluster), where this one is a few inlined loads.
 *
 * Open addressing with linear probing, at most half full; a deletion shifts the entries
 * after it back (no tombstones). Slot i holds `values[i]` (undefined: empty) under key
 * `keys[i]`. A key's home slot is its multiplicative hash (the top bits of key × an odd
 * multiplier), the multiplier random per map unless given: keys that clients choose cannot
 * be made to pile up in one run of slots without knowing it. No order is kept: a caller who
 * needs one keeps it itself (kv/session-table.ts keeps a list).
 */
import { fail } from './assert.ts';

/** Slots of an empty map. */
const CAPACITY_MIN = 16;

export class IntKeyMap<V> {
  private keys: Float64Array;
  private values: (V | undefined)[];
  /** log2 of the number of slots. Invariant: slots = 2^bits = keys.length = values.length, at least CAPACITY_MIN. */
  private bits: number;
  /** Invariant: 2 * count <= slots. */
  private count = 0;
  private readonly multiplier: number;

  /** `multiplier`: the hash's multiplier (made odd); random when not given. */
  constructor(multiplier?: number) {
    const m = multiplier ?? crypto.getRandomValues(new Int32Array(1))[0]!;
    this.multiplier = m | 1;
    this.bits = Math.log2(CAPACITY_MIN);
    this.keys = new Float64Array(CAPACITY_MIN);
    this.values = new Array<V | undefined>(CAPACITY_MIN).fill(undefined);
  }

  get size(): number {
    return this.count;
  }

  get(key: number): V | undefined {
    const keys = this.keys;
    const values = this.values;
    const mask = keys.length - 1;
    for (let i = this.home(key); ; i = (i + 1) & mask) {
      const v = values[i];
      if (v === undefined || keys[i] === key) return v;
    }
  }

  has(key: number): boolean {
    return this.get(key) !== undefined;
  }

  /** Sets the value of `key` (a safe integer; `value` must not be undefined). */
  set(key: number, value: V): void {
    if (!Number.isSafeInteger(key)) fail(`IntKeyMap key ${key} is a safe integer`);
    if (value === undefined) fail('IntKeyMap value is not undefined');
    const mask = this.keys.length - 1;
    let i = this.home(key);
    for (let v = this.values[i]; v !== undefined; v = this.values[i]) {
      if (this.keys[i] === key) {
        this.values[i] = value;
        return;
      }
      i = (i + 1) & mask;
    }
    if (2 * (this.count + 1) > this.keys.length) {
      this.resize(this.bits + 1);
      this.set(key, value);
      return;
    }
    this.keys[i] = key;
    this.values[i] = value;
    this.count++;
  }

  /** Removes `key`; false if it was not there. */
  delete(key: number): boolean {
    const mask = this.keys.length - 1;
    let i = this.home(key);
    for (let v = this.values[i]; ; v = this.values[i]) {
      if (v === undefined) return false;
      if (this.keys[i] === key) break;
      i = (i + 1) & mask;
    }
    this.removeAt(i);
    this.count--;
    // Gives memory back after many deletions (an eighth full at most, it halves).
    if (8 * this.count < this.keys.length && this.keys.length > CAPACITY_MIN) this.resize(this.bits - 1);
    return true;
  }

  /** The home slot of `key`: the top `bits` bits of its 32-bit fold times the multiplier. */
  private home(key: number): number {
    // A key in int32 range folds to itself; a larger one mixes in its high half.
    const low = key | 0;
    const folded = low === key ? low : low ^ Math.imul(Math.floor(key / 0x1_0000_0000) | 0, 0x27d4_eb2d);
    return Math.imul(folded, this.multiplier) >>> (32 - this.bits);
  }

  /** Empties slot `hole`, moving back each entry after it that would be cut off from its home slot. */
  private removeAt(hole: number): void {
    const keys = this.keys;
    const values = this.values;
    const mask = keys.length - 1;
    for (let j = (hole + 1) & mask; ; j = (j + 1) & mask) {
      const v = values[j];
      if (v === undefined) break;
      const home = this.home(keys[j]!);
      // Entry j may move to the hole unless its home lies cyclically in (hole, j].
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        keys[hole] = keys[j]!;
        values[hole] = v;
        hole = j;
      }
    }
    values[hole] = undefined;
    keys[hole] = 0;
  }

  private resize(bits: number): void {
    const oldKeys = this.keys;
    const oldValues = this.values;
    const slots = 2 ** bits;
    this.bits = bits;
    this.keys = new Float64Array(slots);
    this.values = new Array<V | undefined>(slots).fill(undefined);
    const mask = slots - 1;
    for (let j = 0; j < oldValues.length; j++) {
      const v = oldValues[j];
      if (v === undefined) continue;
      const key = oldKeys[j]!;
      let i = this.home(key);
      while (this.values[i] !== undefined) i = (i + 1) & mask;
      this.keys[i] = key;
      this.values[i] = v;
    }
  }
}
