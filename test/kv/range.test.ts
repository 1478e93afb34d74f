// Ordered keys, revisions and range reads of the key-value state machine, against a model:
// a plain array of the live keys sorted by their bytes, with the revisions the log gives
// them. Keys are drawn from a small alphabet with 0x00 and 0xff in it, so prefixes, prefix
// ends that carry (0x.. 0xff), and keys that are prefixes of others all occur.

import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeKvRequest, KV_RANGE_BYTES_MAX, KV_RANGE_ENTRIES_MAX, KV_RANGE_ENTRY_OVERHEAD_BYTES, KvError, KvStateMachine, prefixEnd, type KvCommand, type KvRangeQuery, type KvRangeResult } from '../../src/kv/index.ts';

interface ModelEntry {
  readonly key: Uint8Array;
  value: Uint8Array;
  readonly createIndex: number;
  modIndex: number;
  version: number;
}

/** The state machine and the model, fed the same commands at the same indexes. */
class Pair {
  readonly machine = new KvStateMachine();
  readonly model = new Map<string, ModelEntry>();
  private client = 1;

  run(command: Exclude<KvCommand, { op: 'txn' | 'lease-grant' | 'lease-revoke' | 'app' | 'redis' }>): void {
    const index = this.machine.appliedIndex + 1;
    this.machine.apply(index, encodeKvRequest({ clientId: this.client++, seq: 1, command }));
    const id = Buffer.from(command.key).toString('latin1');
    const current = this.model.get(id);
    const write = (value: Uint8Array): void => {
      if (current === undefined) this.model.set(id, { key: command.key, value, createIndex: index, modIndex: index, version: 1 });
      else Object.assign(current, { value, modIndex: index, version: current.version + 1 });
    };
    if (command.op === 'delete-range') {
      const high = command.end === undefined ? undefined : Buffer.from(command.end).toString('latin1');
      for (const k of [...this.model.keys()]) if (k >= id && (high === undefined || k < high)) this.model.delete(k);
    } else if (command.op === 'put') write(command.value);
    else if (command.op === 'delete') this.model.delete(id);
    else if (command.op === 'cas' && (command.expected === undefined ? current === undefined : current !== undefined && Buffer.from(current.value).equals(command.expected))) write(command.value);
  }

  /** The model's answer to a query. */
  expected(q: KvRangeQuery): KvRangeResult {
    const str = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : Buffer.from(b).toString('latin1'));
    const low = q.prefix !== undefined ? str(q.prefix)! : (str(q.start) ?? '');
    const high = q.prefix !== undefined ? prefixEnd(str(q.prefix)!) : str(q.end);
    const inRange = [...this.model.entries()]
      .filter(([k]) => k >= low && (high === undefined || k < high))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, e]) => e);
    if (q.reverse === true) inRange.reverse();
    const limit = q.limit ?? KV_RANGE_ENTRIES_MAX;
    const page = q.countOnly === true ? [] : inRange.slice(0, limit);
    return {
      entries: page.map((e) => ({ key: e.key, value: q.keysOnly === true ? undefined : e.value, createIndex: e.createIndex, modIndex: e.modIndex, version: e.version })),
      more: q.countOnly !== true && inRange.length > page.length,
      count: inRange.length,
      index: this.machine.appliedIndex,
    };
  }
}

const byte = fc.constantFrom(0x00, 0x01, 0x61, 0x62, 0xfe, 0xff);
const keyArb = fc.uint8Array({ minLength: 1, maxLength: 3 }).chain((a) => fc.array(byte, { minLength: a.length, maxLength: a.length }).map((b) => Uint8Array.from(b)));
const valueArb = fc.uint8Array({ maxLength: 4 });
const commandArb: fc.Arbitrary<Exclude<KvCommand, { op: 'txn' | 'lease-grant' | 'lease-revoke' | 'app' | 'redis' }>> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('put' as const), key: keyArb, value: valueArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), key: keyArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cas' as const), key: keyArb, expected: fc.option(valueArb, { nil: undefined }), value: valueArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete-range' as const), key: fc.oneof(keyArb, fc.constant(new Uint8Array())), end: fc.option(keyArb, { nil: undefined }) }) },
);
const flags = { keysOnly: fc.boolean(), reverse: fc.boolean(), limit: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }) };
const queryArb: fc.Arbitrary<KvRangeQuery> = fc.oneof(
  fc.record({ prefix: fc.array(byte, { maxLength: 2 }).map((b) => Uint8Array.from(b)), ...flags }),
  fc.record({ start: fc.option(keyArb, { nil: undefined }), end: fc.option(keyArb, { nil: undefined }), ...flags }),
  fc.record({ prefix: keyArb, countOnly: fc.constant(true) }),
);

/** A result with its byte arrays as plain arrays, to compare with toEqual. */
const plain = (r: KvRangeResult) => ({ ...r, entries: r.entries.map((e) => ({ ...e, key: [...e.key], value: e.value === undefined ? undefined : [...e.value] })) });

describe('range reads', () => {
  it('answer as a sorted model does: bounds, prefixes, reverse, limits, keysOnly, countOnly, revisions', () => {
    fc.assert(
      fc.property(fc.array(commandArb, { maxLength: 60 }), fc.array(queryArb, { minLength: 1, maxLength: 8 }), (commands, queries) => {
        const p = new Pair();
        for (const c of commands) p.run(c);
        for (const q of queries) expect(plain(p.machine.range(q))).toEqual(plain(p.expected(q)));
      }),
      { numRuns: 300 },
    );
  });

  it('pages through a range without skipping or repeating a key, forwards and in reverse', () => {
    fc.assert(
      fc.property(fc.array(commandArb, { maxLength: 80 }), fc.integer({ min: 1, max: 5 }), fc.boolean(), (commands, limit, reverse) => {
        const p = new Pair();
        for (const c of commands) p.run(c);
        const all = p.machine.range({ reverse }).entries.map((e) => Buffer.from(e.key).toString('latin1'));
        const seen: string[] = [];
        let query: KvRangeQuery = { limit, reverse };
        for (let pages = 0; pages <= all.length + 1; pages++) {
          const page = p.machine.range(query);
          seen.push(...page.entries.map((e) => Buffer.from(e.key).toString('latin1')));
          if (!page.more) break;
          const last = page.entries[page.entries.length - 1]!.key;
          // Forwards: the smallest key after the last; in reverse: below the last (end is exclusive).
          query = reverse ? { limit, reverse, end: last } : { limit, start: Buffer.concat([last, Uint8Array.of(0)]) };
        }
        expect(seen).toEqual(all);
      }),
      { numRuns: 200 },
    );
  });

  it('keeps revisions: created once, changed on each write, version from 1; a deleted key starts again', () => {
    const p = new Pair();
    const k = Uint8Array.of(0x6b);
    p.run({ op: 'put', key: k, value: Uint8Array.of(1) }); // index 1
    p.run({ op: 'put', key: Uint8Array.of(0x6c), value: Uint8Array.of() }); // 2
    p.run({ op: 'put', key: k, value: Uint8Array.of(2) }); // 3
    p.run({ op: 'cas', key: k, expected: Uint8Array.of(9), value: Uint8Array.of(3) }); // 4: no swap
    p.run({ op: 'cas', key: k, expected: Uint8Array.of(2), value: Uint8Array.of(3) }); // 5
    expect(p.machine.getEntry(k)).toMatchObject({ createIndex: 1, modIndex: 5, version: 3 });
    p.run({ op: 'delete', key: k }); // 6
    expect(p.machine.getEntry(k)).toBeUndefined();
    p.run({ op: 'put', key: k, value: Uint8Array.of(4) }); // 7
    expect(p.machine.getEntry(k)).toMatchObject({ createIndex: 7, modIndex: 7, version: 1 });
    expect(p.machine.range({ prefix: k }).index).toBe(7);
  });

  it('survives a snapshot: the restored machine answers every range as the original does', () => {
    fc.assert(
      fc.property(fc.array(commandArb, { maxLength: 60 }), fc.array(queryArb, { minLength: 1, maxLength: 5 }), (commands, queries) => {
        const p = new Pair();
        for (const c of commands) p.run(c);
        const restored = KvStateMachine.restore(p.machine.snapshot());
        for (const q of queries) expect(plain(restored.range(q))).toEqual(plain(p.machine.range(q)));
        expect(restored.snapshot()).toEqual(p.machine.snapshot());
      }),
      { numRuns: 100 },
    );
  });

  it('bounds a reply in bytes: past KV_RANGE_BYTES_MAX the page ends with more, and always holds one entry', () => {
    const p = new Pair();
    const value = new Uint8Array(256 << 10);
    const keys = Math.ceil(KV_RANGE_BYTES_MAX / value.length) + 2;
    for (let i = 0; i < keys; i++) p.run({ op: 'put', key: Uint8Array.of(0x61, i), value });
    const page = p.machine.range({});
    expect(page.count).toBe(keys);
    expect(page.more).toBe(true);
    const bytes = page.entries.reduce((n, e) => n + KV_RANGE_ENTRY_OVERHEAD_BYTES + e.key.length + e.value!.length, 0);
    expect(bytes).toBeLessThanOrEqual(KV_RANGE_BYTES_MAX);
    // As many as fit: one more would pass the bound.
    expect(bytes + KV_RANGE_ENTRY_OVERHEAD_BYTES + 2 + value.length).toBeGreaterThan(KV_RANGE_BYTES_MAX);
    // Without values the same keys fit one page.
    expect(p.machine.range({ keysOnly: true }).more).toBe(false);
    // One entry over the bound on its own still comes, alone.
    p.run({ op: 'put', key: Uint8Array.of(0x62), value: new Uint8Array(1 << 20) });
    p.run({ op: 'put', key: Uint8Array.of(0x63), value: Uint8Array.of(1) });
    const alone = p.machine.range({ start: Uint8Array.of(0x62) });
    expect([alone.entries.length, alone.more, alone.count]).toEqual([1, true, 2]);
  });

  it('deletes a range of thousands of keys in slices: every key gone, each change told once in order, even when a listener throws', () => {
    const p = new Pair();
    const n = 2500; // over two slices of 1,024
    for (let i = 0; i < n; i++) p.run({ op: 'put', key: Uint8Array.of(0x61, i >> 8, i & 0xff), value: Uint8Array.of(1) });
    p.run({ op: 'put', key: Uint8Array.of(0x62), value: Uint8Array.of(2) });
    const seen: string[] = [];
    let calls = 0;
    p.machine.onChange((c) => {
      seen.push(Buffer.from(c.key).toString('hex'));
      expect(c.position).toBe(seen.length - 1);
      if (++calls === 1500) throw new Error('listener failed');
    });
    const index = p.machine.appliedIndex + 1;
    let error: unknown;
    try {
      p.machine.apply(index, encodeKvRequest({ clientId: 99_999, seq: 1, command: { op: 'delete-range', key: Uint8Array.of(0x61), end: Uint8Array.of(0x62) } }));
    } catch (e) {
      error = e;
    }
    expect((error as Error).message).toBe('listener failed');
    expect(seen).toHaveLength(n);
    expect(seen).toEqual([...seen].sort());
    expect(p.machine.range({ prefix: Uint8Array.of(0x61) }).count).toBe(0);
    expect(p.machine.range({}).count).toBe(1);
    // The session recorded the count: a retry is a duplicate with the same result.
    const again = p.machine.apply(index + 1, encodeKvRequest({ clientId: 99_999, seq: 1, command: { op: 'delete-range', key: Uint8Array.of(0x61), end: Uint8Array.of(0x62) } }));
    expect([again.status, again.result]).toEqual(['duplicate', { op: 'delete-range', deleted: n }]);
  });

  it('gives the end of a prefix: the next byte string up, none for an empty or all-0xff prefix', () => {
    expect(prefixEnd('ab')).toBe('ac');
    expect(prefixEnd('a\u00ff')).toBe('b');
    expect(prefixEnd('\u00ff\u00ff')).toBeUndefined();
    expect(prefixEnd('')).toBeUndefined();
  });

  it('refuses a bad query with INVALID_ARGUMENT naming what is wrong', () => {
    const m = new KvStateMachine();
    const cases: [KvRangeQuery, string][] = [
      [{ prefix: Uint8Array.of(1), start: Uint8Array.of(1) }, 'not both'],
      [{ limit: 0 }, 'limit 0'],
      [{ limit: KV_RANGE_ENTRIES_MAX + 1 }, `limit ${KV_RANGE_ENTRIES_MAX + 1}`],
      [{ limit: 1.5 }, 'limit 1.5'],
      [{ start: new Uint8Array(5000) }, 'start of 5000 bytes'],
      [{ keysOnly: true, countOnly: true }, 'keysOnly and countOnly'],
      [{ end: 'x' as unknown as Uint8Array }, 'end is not bytes'],
    ];
    for (const [q, words] of cases) {
      let error: unknown;
      try {
        m.range(q);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(q)).toBeInstanceOf(KvError);
      expect((error as KvError).code).toBe('INVALID_ARGUMENT');
      expect((error as KvError).message).toContain(words);
    }
    // An empty range (end at or below start) is not an error.
    expect(m.range({ start: Uint8Array.of(2), end: Uint8Array.of(1) })).toEqual({ entries: [], more: false, count: 0, index: 0 });
  });
});
