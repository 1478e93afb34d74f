/**
 * The store's entries found by the bytes of their keys, with no string made to look one up.
 *
 * A `Map` keyed by the key's latin1 string needs a new string for every put a replica
 * applies (the request's key bytes sit in the log entry), and V8 then hashes it and compares
 * it with the key strings along its chain: in the in-memory 3-node cluster that lookup was
 * the largest single cost of the node thread (a fifth of all CPU samples in
 * `Builtins_FindOrderedHashMapEntry`, most of them waiting for the stored key strings to come
 * in from memory). Here a lookup hashes the bytes where they lie and probes a table of
 * 32-bit hashes: a key's bytes are compared only when its whole hash matches.
 *
 * Open addressing with linear probing, at most half full; a deletion shifts the entries
 * after it back (no tombstones). Slot i holds `entries[i]` (undefined: empty) and the hash
 * of its key in `hashes[i]`:
 *
 * ```
 *   hashes:  [ h(a) |  -   | h(b) | h(c) |  -   | ... ]   capacity = mask + 1, a power of 2
 *   entries: [  a   | ---  |  b   |  c   | ---  | ... ]   c's home slot may be 2: it moved on
 * ```
 *
 * Keys come from users, so the hash is keyed (HalfSipHash-1-3, with 64 random bits per
 * index unless a seed is given): whoever chooses keys cannot make them collide without the
 * key of the hash, and so cannot turn lookups into scans of the table.
 *
 * An entry's key bytes must not change while it is in the index (a copy of the same bytes
 * elsewhere may replace them: the slabs move keys when compacting).
 */
import { Buffer } from 'node:buffer';
import { fail } from '../base/index.ts';

/**
 * What the index holds: anything whose key's bytes are keySlab.bytes[keyAt, keyAt + keyLength).
 * A lookup reads them there, through an object many entries share (the store's slab), rather
 * than through a view of each key: that view was one more load missing the cache per lookup
 * (a tenth of a lookup's time by `perf annotate`).
 */
export interface KeyIndexed {
  readonly keySlab: { readonly bytes: Uint8Array };
  readonly keyAt: number;
  readonly keyLength: number;
}

/** Slots of an empty index. */
const CAPACITY_MIN = 16;

export class KeyIndex<E extends KeyIndexed> {
  private hashes: Int32Array;
  private entries: (E | undefined)[];
  /** Invariant: mask + 1 === hashes.length === entries.length, a power of 2 >= CAPACITY_MIN. */
  private mask: number;
  /** Invariant: 2 * count <= mask + 1. */
  private count = 0;
  private readonly k0: number;
  private readonly k1: number;

  /** `seed`: the hash's 64-bit key as two 32-bit halves; random when not given. */
  constructor(seed?: readonly [number, number]) {
    const [k0, k1] = seed ?? crypto.getRandomValues(new Int32Array(2));
    this.k0 = k0! | 0;
    this.k1 = k1! | 0;
    this.hashes = new Int32Array(CAPACITY_MIN);
    this.entries = new Array<E | undefined>(CAPACITY_MIN).fill(undefined);
    this.mask = CAPACITY_MIN - 1;
  }

  /** The number of entries. */
  get size(): number {
    return this.count;
  }

  /** The number of slots: entries are at slots [0, slotCount), see {@link at}. */
  get slotCount(): number {
    return this.mask + 1;
  }

  /**
   * The entry at a slot (undefined: empty). A walk of the slots in order, with entries added
   * or deleted between steps, may miss an entry or meet one twice (a deletion moves entries
   * back, a growth rehashes them all); use it only where that does no harm.
   */
  at(slot: number): E | undefined {
    return this.entries[slot];
  }

  /** The entry whose key is src[at, at + length). */
  findAt(src: Uint8Array, at: number, length: number): E | undefined {
    const hash = hashBytes(this.k0, this.k1, src, at, length);
    const hashes = this.hashes;
    const entries = this.entries;
    const mask = this.mask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const e = entries[i];
      if (e === undefined) return undefined;
      if (hashes[i] === hash && e.keyLength === length && rangesEqual(e.keySlab.bytes, e.keyAt, src, at, length)) return e;
    }
  }

  /** The entry whose key is `key`. */
  find(key: Uint8Array): E | undefined {
    return this.findAt(key, 0, key.length);
  }

  /** The entry whose key's latin1 string (one char per byte, as kv keyString makes it) is `id`. */
  findString(id: string): E | undefined {
    return this.find(Buffer.from(id, 'latin1'));
  }

  /** Adds an entry whose key is not in the index (a programmer error if it is). */
  add(entry: E): void {
    if (2 * (this.count + 1) > this.mask + 1) this.resize(2 * (this.mask + 1));
    const key = entry.keySlab.bytes;
    const hash = hashBytes(this.k0, this.k1, key, entry.keyAt, entry.keyLength);
    const mask = this.mask;
    let i = hash & mask;
    for (let e = this.entries[i]; e !== undefined; e = this.entries[i]) {
      if (this.hashes[i] === hash && e.keyLength === entry.keyLength && rangesEqual(e.keySlab.bytes, e.keyAt, key, entry.keyAt, entry.keyLength)) fail('KeyIndex.add: the key is in the index already');
      i = (i + 1) & mask;
    }
    this.entries[i] = entry;
    this.hashes[i] = hash;
    this.count++;
  }

  /** Removes `entry` (this very object); false if it is not in the index. */
  delete(entry: E): boolean {
    const mask = this.mask;
    let i = hashBytes(this.k0, this.k1, entry.keySlab.bytes, entry.keyAt, entry.keyLength) & mask;
    for (let e = this.entries[i]; e !== entry; e = this.entries[i]) {
      if (e === undefined) return false;
      i = (i + 1) & mask;
    }
    this.removeAt(i);
    this.count--;
    // Gives memory back after many deletions (a quarter full at most, it halves).
    if (8 * this.count < this.mask + 1 && this.mask + 1 > CAPACITY_MIN) this.resize((this.mask + 1) >> 1);
    return true;
  }

  /** Empties slot `hole`, moving back each entry after it that would be cut off from its home slot. */
  private removeAt(hole: number): void {
    const hashes = this.hashes;
    const entries = this.entries;
    const mask = this.mask;
    for (let j = (hole + 1) & mask; ; j = (j + 1) & mask) {
      const e = entries[j];
      if (e === undefined) break;
      const home = hashes[j]! & mask;
      // The entry at j stays if its home lies cyclically in (hole, j]: it is still reachable.
      const reachable = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (reachable) continue;
      entries[hole] = e;
      hashes[hole] = hashes[j]!;
      hole = j;
    }
    entries[hole] = undefined;
    hashes[hole] = 0;
  }

  private resize(capacity: number): void {
    const oldHashes = this.hashes;
    const oldEntries = this.entries;
    this.hashes = new Int32Array(capacity);
    this.entries = new Array<E | undefined>(capacity).fill(undefined);
    this.mask = capacity - 1;
    const mask = this.mask;
    for (let j = 0; j < oldEntries.length; j++) {
      const e = oldEntries[j];
      if (e === undefined) continue;
      const hash = oldHashes[j]!;
      let i = hash & mask;
      while (this.entries[i] !== undefined) i = (i + 1) & mask;
      this.entries[i] = e;
      this.hashes[i] = hash;
    }
  }
}

/** a[aAt, aAt + length) equals b[bAt, bAt + length). */
function rangesEqual(a: Uint8Array, aAt: number, b: Uint8Array, bAt: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[aAt + i] !== b[bAt + i]) return false;
  return true;
}

/**
 * HalfSipHash-1-3 (32-bit words, one round per word, three to finish) of src[at, at + length)
 * under the key (k0, k1): 32 bits, as a signed int.
 */
export function hashBytes(k0: number, k1: number, src: Uint8Array, at: number, length: number): number {
  let v0 = k0 | 0;
  let v1 = k1 | 0;
  let v2 = 0x6c796765 ^ k0;
  let v3 = 0x74656462 ^ k1;
  // One round for each word of the bytes, and for a last word of the bytes left with the
  // length's low byte on top; then three rounds to finish.
  const blocks = (length >> 2) + 1;
  for (let step = 0, i = at; step < blocks + 3; step++) {
    let m = 0;
    if (step < blocks - 1) {
      m = src[i]! | (src[i + 1]! << 8) | (src[i + 2]! << 16) | (src[i + 3]! << 24);
      i += 4;
    } else if (step === blocks - 1) {
      m = (length & 0xff) << 24;
      const left = at + length - i;
      if (left >= 3) m |= src[i + 2]! << 16;
      if (left >= 2) m |= src[i + 1]! << 8;
      if (left >= 1) m |= src[i]!;
    } else if (step === blocks) {
      v2 ^= 0xff;
    }
    v3 ^= m;
    v0 = (v0 + v1) | 0;
    v1 = (v1 << 5) | (v1 >>> 27);
    v1 ^= v0;
    v0 = (v0 << 16) | (v0 >>> 16);
    v2 = (v2 + v3) | 0;
    v3 = (v3 << 8) | (v3 >>> 24);
    v3 ^= v2;
    v0 = (v0 + v3) | 0;
    v3 = (v3 << 7) | (v3 >>> 25);
    v3 ^= v0;
    v2 = (v2 + v1) | 0;
    v1 = (v1 << 13) | (v1 >>> 19);
    v1 ^= v2;
    v2 = (v2 << 16) | (v2 >>> 16);
    v0 ^= m;
  }
  return v1 ^ v3;
}
