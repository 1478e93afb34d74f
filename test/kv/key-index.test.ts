// KeyIndex against a Map of key strings: any sequence of adds and deletes over keys that
// share many home slots leaves every key found by its bytes (where they lie in a larger
// buffer, too) and by its string, no key found that is not there, and the slots holding
// exactly the entries added; the table gives memory back after deletions; a second add of a
// key is a programmer error. The hash is keyed: the
// same bytes hash alike wherever they lie, and another seed scatters the same keys anew.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hashBytes, KeyIndex } from '../../src/kv/key-index.ts';

/** An entry whose key's bytes lie a few bytes into a larger buffer, as the store's lie in its slabs. */
class Entry {
  readonly keySlab: { readonly bytes: Uint8Array };
  readonly keyAt = 3;
  readonly keyLength: number;
  constructor(readonly key: Uint8Array) {
    const bytes = new Uint8Array(this.keyAt + key.length + 2).fill(0xee);
    bytes.set(key, this.keyAt);
    this.keySlab = { bytes };
    this.keyLength = key.length;
  }
}

const latin1 = (bytes: Uint8Array): string => String.fromCharCode(...bytes);
const bytesOf = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

type Op = { readonly op: 'add' | 'delete'; readonly key: string };

// Short keys over three letters: many keys, many collisions of home slots in a small table.
const key = fc.string({ unit: fc.constantFrom('a', 'b', '\u00ff'), maxLength: 4 });
const op: fc.Arbitrary<Op> = fc.record({ op: fc.constantFrom('add' as const, 'add' as const, 'delete' as const), key });

describe('KeyIndex', () => {
  it('finds what a Map of key strings holds, and nothing else, through growth, wrap-around and deletions', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), fc.integer(), fc.integer(), (ops, k0, k1) => {
        const index = new KeyIndex<Entry>([k0, k1]);
        const model = new Map<string, Entry>();
        const probe = new Uint8Array(16);
        for (const o of ops) {
          const present = model.get(o.key);
          if (o.op === 'add' && present === undefined) {
            const e = new Entry(bytesOf(o.key));
            index.add(e);
            model.set(o.key, e);
          } else if (o.op === 'delete') {
            // A delete of an entry not in the index (a copy of the same key) removes nothing.
            expect(index.delete(new Entry(bytesOf(o.key)))).toBe(false);
            expect(index.delete(present ?? new Entry(bytesOf(o.key)))).toBe(present !== undefined);
            model.delete(o.key);
          }
          expect(index.size).toBe(model.size);
          // Every key of the alphabet that might have been touched: found iff in the model.
          for (const k of [o.key, ...model.keys()]) {
            const expected = model.get(k);
            const bytes = bytesOf(k);
            probe.fill(0x61);
            probe.set(bytes, 5);
            expect(index.findAt(probe, 5, bytes.length)).toBe(expected);
            expect(index.find(bytes)).toBe(expected);
            expect(index.findString(k)).toBe(expected);
          }
          const inSlots = [];
          for (let i = 0; i < index.slotCount; i++) {
            const e = index.at(i);
            if (e !== undefined) inSlots.push(latin1(e.key));
          }
          expect(inSlots.sort()).toEqual([...model.keys()].sort());
          expect(2 * index.size).toBeLessThanOrEqual(index.slotCount);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('gives memory back once most entries are deleted', () => {
    const index = new KeyIndex<Entry>([1, 2]);
    const entries = Array.from({ length: 10_000 }, (_, i) => new Entry(bytesOf(`key-${i}`)));
    for (const e of entries) index.add(e);
    const grown = index.slotCount;
    expect(grown).toBeGreaterThanOrEqual(20_000);
    for (const e of entries.slice(10)) expect(index.delete(e)).toBe(true);
    expect(index.slotCount).toBeLessThanOrEqual(64);
    for (const e of entries.slice(0, 10)) expect(index.find(e.key)).toBe(e);
    for (const e of entries.slice(10, 100)) expect(index.find(e.key)).toBeUndefined();
  });

  it('refuses a second entry of a key', () => {
    const index = new KeyIndex<Entry>([3, 4]);
    index.add(new Entry(bytesOf('k')));
    expect(() => index.add(new Entry(bytesOf('k')))).toThrow(/already/);
    expect(index.size).toBe(1);
  });

  it('hashes the same bytes alike wherever they lie, every byte counts, and the seed changes the hash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 40 }), fc.nat({ max: 7 }), fc.integer(), fc.integer(), (bytes, offset, k0, k1) => {
        const buffer = new Uint8Array(offset + bytes.length + 3).fill(0xee);
        buffer.set(bytes, offset);
        const h = hashBytes(k0, k1, bytes, 0, bytes.length);
        expect(hashBytes(k0, k1, buffer, offset, bytes.length)).toBe(h);
        // The length counts: the same bytes and one more zero hash otherwise (with all but a negligible chance).
        expect(hashBytes(k0, k1, Uint8Array.of(...bytes, 0), 0, bytes.length + 1)).not.toBe(h);
        for (let i = 0; i < bytes.length; i++) {
          const changed = bytes.slice();
          changed[i]! ^= 1 << (i % 8);
          expect(hashBytes(k0, k1, changed, 0, changed.length)).not.toBe(h);
        }
      }),
    );
    // Another seed, another hash: of 1,000 keys, hardly any keep theirs.
    const keys = Array.from({ length: 1000 }, (_, i) => bytesOf(`k${String(i).padStart(15, '0')}`));
    const same = keys.filter((k) => hashBytes(1, 2, k, 0, k.length) === hashBytes(1, 3, k, 0, k.length)).length;
    expect(same).toBeLessThanOrEqual(1);
  });

  it('spreads keys that differ in a few bytes: a lookup probes about one slot', () => {
    for (const seed of [[0, 0], [1, 2], [-1, 0x7fffffff]] as const) {
      const index = new KeyIndex<Entry>(seed);
      const keys = Array.from({ length: 50_000 }, (_, i) => bytesOf(`k${String(i).padStart(15, '0')}`));
      for (const k of keys) index.add(new Entry(k));
      // The mean distance of an entry from its home slot (linear probing at load <= 1/2 expects about 0.5).
      let distance = 0;
      const mask = index.slotCount - 1;
      for (let i = 0; i < index.slotCount; i++) {
        const e = index.at(i);
        if (e !== undefined) distance += (i - (hashBytes(seed[0], seed[1], e.key, 0, e.key.length) & mask) + index.slotCount) & mask;
      }
      expect(distance / keys.length).toBeLessThan(1);
    }
  });
});
