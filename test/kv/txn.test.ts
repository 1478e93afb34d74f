// Transactions of the key-value state machine: against a sequential model (a plain map of
// keys to values and revisions, ranges by sorting it), their encodings both ways, their
// limits, their exactly-once sessions (the result kept, in snapshots too, bounded in bytes),
// and their atomicity as watchers see it.

import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeKvRequest,
  decodeTxnResult,
  encodeKvRequest,
  KV_RANGE_ENTRY_OVERHEAD_BYTES,
  KV_REQUEST_BYTES_MAX,
  KV_SESSION_RESULT_BYTES_MIN,
  KV_TXN_OPS_MAX,
  KV_TXN_READ_BYTES_MAX,
  KV_TXN_RESULT_BYTES_MAX,
  KV_VALUE_BYTES_MAX,
  KvError,
  KvStateMachine,
  prefixEnd,
  type KvChange,
  type KvRangeQuery,
  type KvRangeResult,
  type KvTxn,
  type KvTxnResult,
  type TxnCompare,
  type TxnOp,
  type TxnOpResult,
} from '../../src/kv/index.ts';

interface ModelEntry {
  value: Uint8Array;
  createIndex: number;
  modIndex: number;
  version: number;
}

const str = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
const bytes = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));

/** Runs transactions one after the other on a plain map, as the module comment of kv/txn.ts describes them. */
class Model {
  readonly data = new Map<string, ModelEntry>();

  txn(index: number, t: KvTxn): KvTxnResult {
    const holds = (c: TxnCompare): boolean => {
      const e = this.data.get(str(c.key));
      let order: number;
      if (c.target === 'value') {
        if (e === undefined) return false;
        order = Buffer.compare(Buffer.from(e.value), Buffer.from(c.value));
      } else {
        const actual = e === undefined ? 0 : e[c.target];
        order = Math.sign(actual - c.value);
      }
      return c.op === '=' ? order === 0 : c.op === '!=' ? order !== 0 : c.op === '<' ? order < 0 : order > 0;
    };
    const succeeded = t.compares.every(holds);
    let readBytes = 0;
    const results: TxnOpResult[] = [];
    for (const op of succeeded ? t.then : t.else) {
      if (op.op === 'put') {
        const e = this.data.get(str(op.key));
        if (e === undefined) this.data.set(str(op.key), { value: op.value, createIndex: index, modIndex: index, version: 1 });
        else Object.assign(e, { value: op.value, modIndex: index, version: e.version + 1 });
        results.push({ op: 'put' });
      } else if (op.op === 'delete') {
        results.push({ op: 'delete', existed: this.data.delete(str(op.key)) });
      } else if (op.op === 'deleteRange') {
        const keys = this.keysIn(str(op.start), op.end === undefined ? undefined : str(op.end));
        for (const k of keys) this.data.delete(k);
        results.push({ op: 'deleteRange', deleted: keys.length });
      } else if (op.op === 'get') {
        const e = this.data.get(str(op.key));
        const size = KV_RANGE_ENTRY_OVERHEAD_BYTES + (e?.value.length ?? 0);
        if (e === undefined) results.push({ op: 'get', entry: undefined, truncated: false });
        else if (readBytes > 0 && readBytes + size > KV_TXN_READ_BYTES_MAX) results.push({ op: 'get', entry: undefined, truncated: true });
        else {
          readBytes += size;
          results.push({ op: 'get', entry: { ...e }, truncated: false });
        }
      } else {
        const q = op.query;
        const low = q.prefix !== undefined ? str(q.prefix) : q.start === undefined ? '' : str(q.start);
        const high = q.prefix !== undefined ? prefixEnd(str(q.prefix)) : q.end === undefined ? undefined : str(q.end);
        const keys = this.keysIn(low, high);
        if (q.reverse === true) keys.reverse();
        const entries: KvRangeResult['entries'][number][] = [];
        if (q.countOnly !== true) {
          const firstAlways = readBytes === 0;
          let taken = 0;
          for (const k of keys) {
            const e = this.data.get(k)!;
            const size = KV_RANGE_ENTRY_OVERHEAD_BYTES + k.length + (q.keysOnly === true ? 0 : e.value.length);
            if (entries.length === (q.limit ?? 10_000)) break;
            if ((entries.length > 0 || !firstAlways) && taken + size > KV_TXN_READ_BYTES_MAX - (firstAlways ? 0 : readBytes)) break;
            taken += size;
            entries.push({ key: bytes(k), value: q.keysOnly === true ? undefined : e.value, createIndex: e.createIndex, modIndex: e.modIndex, version: e.version });
          }
          readBytes += taken;
        }
        results.push({ op: 'range', result: { entries, more: q.countOnly !== true && entries.length < keys.length, count: keys.length, index } });
      }
    }
    return { succeeded, results };
  }

  keysIn(low: string, high: string | undefined): string[] {
    return [...this.data.keys()].filter((k) => k >= low && (high === undefined || k < high)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
}

/** Results with their byte arrays as plain arrays, to compare with toEqual. */
function plain(r: KvTxnResult): unknown {
  const arr = (b: Uint8Array | undefined) => (b === undefined ? undefined : [...b]);
  return {
    succeeded: r.succeeded,
    results: r.results.map((x) => {
      if (x.op === 'get') return { ...x, entry: x.entry === undefined ? undefined : { ...x.entry, value: arr(x.entry.value) } };
      if (x.op === 'range') return { ...x, result: { ...x.result, entries: x.result.entries.map((e) => ({ ...e, key: arr(e.key), value: arr(e.value) })) } };
      return x;
    }),
  };
}

const byte = fc.constantFrom(0x00, 0x61, 0x62, 0xff);
const keyArb = fc.array(byte, { minLength: 1, maxLength: 2 }).map((b) => Uint8Array.from(b));
const valueArb = fc.array(fc.constantFrom(0x00, 0x61, 0x62), { maxLength: 2 }).map((b) => Uint8Array.from(b));
const compareArb: fc.Arbitrary<TxnCompare> = fc.oneof(
  fc.record({ key: keyArb, target: fc.constant('value' as const), op: fc.constantFrom('=' as const, '!=' as const, '<' as const, '>' as const), value: valueArb }),
  fc.record({
    key: keyArb,
    target: fc.constantFrom('version' as const, 'createIndex' as const, 'modIndex' as const),
    op: fc.constantFrom('=' as const, '!=' as const, '<' as const, '>' as const),
    value: fc.integer({ min: 0, max: 6 }),
  }),
);
const queryArb: fc.Arbitrary<KvRangeQuery> = fc.oneof(
  // Flags are true or absent: the encoding has no "false" apart from absent.
  fc.record({ prefix: fc.array(byte, { maxLength: 1 }).map((b) => Uint8Array.from(b)), reverse: fc.constant(true), limit: fc.integer({ min: 1, max: 3 }) }, { requiredKeys: ['prefix'] }),
  fc.record({ start: keyArb, end: keyArb, keysOnly: fc.constant(true) }, { requiredKeys: [] }),
  fc.record({ prefix: keyArb, countOnly: fc.constant(true) }),
);
const opArb: fc.Arbitrary<TxnOp> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('put' as const), key: keyArb, value: valueArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), key: keyArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('deleteRange' as const), start: fc.oneof(keyArb, fc.constant(new Uint8Array())), end: fc.option(keyArb, { nil: undefined }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('get' as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('range' as const), query: queryArb }) },
);
const txnArb: fc.Arbitrary<KvTxn> = fc.record({
  compares: fc.array(compareArb, { maxLength: 3 }),
  then: fc.array(opArb, { maxLength: 5 }),
  else: fc.array(opArb, { maxLength: 5 }),
});

function txnRequest(clientId: number, seq: number, txn: KvTxn): Uint8Array {
  return encodeKvRequest({ clientId, seq, command: { op: 'txn', txn } });
}

function resultOf(machine: KvStateMachine, index: number, clientId: number, seq: number, txn: KvTxn): KvTxnResult {
  const outcome = machine.apply(index, txnRequest(clientId, seq, txn));
  expect(outcome.status).toBe('applied');
  if (outcome.result?.op !== 'txn') throw new Error(`a txn answered ${outcome.result?.op}`);
  return decodeTxnResult(outcome.result.encoded);
}

describe('transactions', () => {
  it('run as a sequential model does: compares, branches, reads after writes, revisions, read budget', () => {
    fc.assert(
      fc.property(fc.array(txnArb, { minLength: 1, maxLength: 25 }), (txns) => {
        const machine = new KvStateMachine();
        const model = new Model();
        txns.forEach((t, i) => {
          const index = i + 1;
          expect(plain(resultOf(machine, index, 1, index, t))).toEqual(plain(model.txn(index, t)));
        });
        const all = machine.range({});
        expect(all.entries.map((e) => [str(e.key), [...e.value!], e.createIndex, e.modIndex, e.version])).toEqual(
          model.keysIn('', undefined).map((k) => {
            const e = model.data.get(k)!;
            return [k, [...e.value], e.createIndex, e.modIndex, e.version];
          }),
        );
      }),
      { numRuns: 400 },
    );
  });

  it('encode and decode both ways: requests, and results', () => {
    fc.assert(
      fc.property(txnArb, fc.integer({ min: 1, max: 2 ** 53 - 1 }), (txn, clientId) => {
        const decoded = decodeKvRequest(txnRequest(clientId, 7, txn));
        expect(decoded).toEqual({ clientId, seq: 7, command: { op: 'txn', txn } });
        const result = new Model().txn(3, txn);
        const machine = new KvStateMachine();
        const r = machine.apply(1, txnRequest(clientId, 1, txn)).result;
        if (r?.op !== 'txn') throw new Error('not a txn result');
        expect(plain(decodeTxnResult(r.encoded))).toEqual(plain(new Model().txn(1, txn)));
        expect(result.results.length).toBe((result.succeeded ? txn.then : txn.else).length);
      }),
      { numRuns: 300 },
    );
  });

  it('refuse malformed bytes with CORRUPT_COMMAND, never another error', () => {
    const txn: KvTxn = {
      compares: [{ key: bytes('a'), target: 'value', op: '=', value: bytes('x') }, { key: bytes('b'), target: 'version', op: '>', value: 2 }],
      then: [{ op: 'put', key: bytes('a'), value: bytes('y') }, { op: 'range', query: { prefix: bytes('a'), limit: 2 } }],
      else: [{ op: 'deleteRange', start: new Uint8Array(), end: bytes('z') }, { op: 'get', key: bytes('a') }],
    };
    const good = txnRequest(9, 1, txn);
    fc.assert(
      fc.property(fc.integer({ min: 18, max: good.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.boolean(), (at, value, cut) => {
        const bad = cut ? good.slice(0, at) : Uint8Array.from(good, (b, i) => (i === at ? value : b));
        try {
          decodeKvRequest(bad);
        } catch (error) {
          expect(error).toBeInstanceOf(KvError);
          expect((error as KvError).code).toBe('CORRUPT_COMMAND');
        }
      }),
      { numRuns: 1000 },
    );
    expect(() => decodeKvRequest(good.slice(0, good.length - 1))).toThrow(KvError);
  });

  it('refuse a transaction past a limit with INVALID_ARGUMENT, naming it', () => {
    const put: TxnOp = { op: 'put', key: bytes('k'), value: new Uint8Array() };
    const bad = (txn: KvTxn, pattern: RegExp) => {
      try {
        txnRequest(1, 1, txn);
        throw new Error('accepted');
      } catch (error) {
        expect(error).toBeInstanceOf(KvError);
        expect((error as KvError).code).toBe('INVALID_ARGUMENT');
        expect((error as Error).message).toMatch(pattern);
      }
    };
    bad({ compares: [], then: Array.from({ length: KV_TXN_OPS_MAX + 1 }, () => put), else: [] }, /then holds 129/);
    bad({ compares: [], then: [], else: [{ op: 'put', key: new Uint8Array(), value: new Uint8Array() }] }, /else\[0\]\.key is empty/);
    bad({ compares: [{ key: bytes('k'), target: 'version', op: '=', value: -1 }], then: [], else: [] }, /compares\[0\]\.value -1/);
    bad({ compares: [{ key: bytes('k'), target: 'size' as 'version', op: '=', value: 1 }], then: [], else: [] }, /compares\[0\]\.target size/);
    bad({ compares: [], then: [{ op: 'range', query: { prefix: bytes('a'), start: bytes('b') } }], else: [] }, /then\[0\]: range: give a prefix/);
    const big = new Uint8Array(KV_VALUE_BYTES_MAX);
    bad({ compares: [], then: [{ op: 'put', key: bytes('a'), value: big }, { op: 'put', key: bytes('b'), value: big }, { op: 'put', key: bytes('c'), value: big }], else: [] }, /over KV_REQUEST_BYTES_MAX/);
    expect(KV_TXN_RESULT_BYTES_MAX).toBeLessThanOrEqual(KV_REQUEST_BYTES_MAX);
  });

  it('share one read budget: the first read is whole, a later range ends with more, a later get is truncated', () => {
    const machine = new KvStateMachine();
    const big = new Uint8Array(200 << 10).fill(7);
    for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) resultOf(machine, i + 1, 1, i + 1, { compares: [], then: [{ op: 'put', key: bytes(k), value: big }], else: [] });
    const r = resultOf(machine, 5, 1, 5, {
      compares: [],
      then: [
        { op: 'get', key: bytes('a') },
        { op: 'range', query: { prefix: bytes('') } },
        { op: 'get', key: bytes('d') },
        { op: 'get', key: bytes('zz') },
      ],
      else: [],
    });
    const [getA, range, getD, getAbsent] = r.results;
    expect(getA).toMatchObject({ op: 'get', truncated: false });
    expect(getA?.op === 'get' && getA.entry?.value.length).toBe(big.length);
    // 200 KiB taken of 512: one more entry fits, the second does not.
    expect(range?.op === 'range' && [range.result.entries.length, range.result.more, range.result.count]).toEqual([1, true, 4]);
    expect(getD).toEqual({ op: 'get', entry: undefined, truncated: true });
    expect(getAbsent).toEqual({ op: 'get', entry: undefined, truncated: false });
    // The first read is whole whatever its size: a value of the largest size.
    resultOf(machine, 6, 1, 6, { compares: [], then: [{ op: 'put', key: bytes('e'), value: new Uint8Array(KV_VALUE_BYTES_MAX) }], else: [] });
    const whole = resultOf(machine, 7, 1, 7, { compares: [], then: [{ op: 'range', query: { start: bytes('e') } }], else: [] });
    expect(whole.results[0]?.op === 'range' && whole.results[0].result.entries[0]?.value?.length).toBe(KV_VALUE_BYTES_MAX);
  });

  it('apply exactly once: a retry gets the kept result, even after the keys changed, and so does a restored snapshot', () => {
    const machine = new KvStateMachine();
    const txn: KvTxn = { compares: [{ key: bytes('n'), target: 'version', op: '=', value: 0 }], then: [{ op: 'put', key: bytes('n'), value: bytes('1') }, { op: 'get', key: bytes('n') }], else: [{ op: 'get', key: bytes('n') }] };
    const first = machine.apply(1, txnRequest(5, 1, txn));
    machine.apply(2, encodeKvRequest({ clientId: 6, seq: 1, command: { op: 'put', key: bytes('n'), value: bytes('2') } }));
    const retry = machine.apply(3, txnRequest(5, 1, txn));
    expect(retry.status).toBe('duplicate');
    expect(retry.result).toEqual(first.result);
    expect(machine.get(bytes('n'))).toEqual(bytes('2'));
    const restored = KvStateMachine.restore(machine.snapshot());
    expect(restored.snapshot()).toEqual(machine.snapshot());
    const again = restored.apply(4, txnRequest(5, 1, txn));
    expect(again).toEqual({ ...retry });
    if (first.result?.op !== 'txn') throw new Error('not a txn');
    expect(plain(decodeTxnResult(first.result.encoded))).toEqual(
      plain({ succeeded: true, results: [{ op: 'put' }, { op: 'get', entry: { value: bytes('1'), createIndex: 1, modIndex: 1, version: 1 }, truncated: false }] }),
    );
  });

  it('keep results within sessionResultBytesMax by evicting the oldest sessions, the same way on every replica and after a restore', () => {
    const options = { sessionResultBytesMax: KV_SESSION_RESULT_BYTES_MIN };
    const a = new KvStateMachine(options);
    const big = new Uint8Array(400 << 10);
    a.apply(1, txnRequest(100, 1, { compares: [], then: [{ op: 'put', key: bytes('v'), value: big }], else: [] }));
    // Each read result keeps some 400 KiB; the bound holds two of the largest results (some 3 MiB).
    const readers = 12;
    for (let c = 1; c <= readers; c++) a.apply(1 + c, txnRequest(c, 1, { compares: [], then: [{ op: 'get', key: bytes('v') }], else: [] }));
    const b = KvStateMachine.restore(a.snapshot(), options);
    for (const m of [a, b]) {
      // The newest readers' results are kept; the oldest's are gone, so a retry of theirs cannot be told apart from a new request.
      expect(m.apply(m.appliedIndex + 1, txnRequest(readers, 1, { compares: [], then: [{ op: 'get', key: bytes('v') }], else: [] })).status).toBe('duplicate');
      expect(m.apply(m.appliedIndex + 1, txnRequest(1, 2, { compares: [], then: [], else: [] })).status).toBe('expired');
    }
    // Compared as buffers: toEqual walks megabytes element by element.
    expect(Buffer.from(a.snapshot()).equals(b.snapshot())).toBe(true);
    expect(() => new KvStateMachine({ sessionResultBytesMax: KV_SESSION_RESULT_BYTES_MIN - 1 })).toThrow(/sessionResultBytesMax/);
  });

  it('are atomic to watchers: every change at the entry index, positions in order, a delete-range inside counted', () => {
    const machine = new KvStateMachine();
    const changes: KvChange[] = [];
    machine.onChange((c) => changes.push(c));
    for (const [i, k] of ['p1', 'p2', 'p3'].entries()) machine.apply(i + 1, encodeKvRequest({ clientId: 1, seq: i + 1, command: { op: 'put', key: bytes(k), value: bytes('v') } }));
    changes.length = 0;
    const r = resultOf(machine, 4, 2, 1, {
      compares: [{ key: bytes('p1'), target: 'value', op: '=', value: bytes('v') }],
      then: [{ op: 'put', key: bytes('q'), value: bytes('w') }, { op: 'deleteRange', start: bytes('p'), end: bytes('q') }, { op: 'delete', key: bytes('absent') }, { op: 'delete', key: bytes('q') }],
      else: [],
    });
    expect(r.results).toEqual([{ op: 'put' }, { op: 'deleteRange', deleted: 3 }, { op: 'delete', existed: false }, { op: 'delete', existed: true }]);
    expect(changes.map((c) => [c.index, c.position, str(c.key), c.value === undefined ? null : str(c.value)])).toEqual([
      [4, 0, 'q', 'w'],
      [4, 1, 'p1', null],
      [4, 2, 'p2', null],
      [4, 3, 'p3', null],
      [4, 4, 'q', null],
    ]);
  });

  it('make cas one case of them: the same states and answers', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ key: keyArb, expected: fc.option(valueArb, { nil: undefined }), value: valueArb }), { maxLength: 30 }), (cases) => {
        const viaCas = new KvStateMachine();
        const viaTxn = new KvStateMachine();
        cases.forEach(({ key, expected, value }, i) => {
          const index = i + 1;
          const cas = viaCas.apply(index, encodeKvRequest({ clientId: 1, seq: index, command: { op: 'cas', key, expected, value } })).result;
          const compare: TxnCompare = expected === undefined ? { key, target: 'version', op: '=', value: 0 } : { key, target: 'value', op: '=', value: expected };
          const t = resultOf(viaTxn, index, 1, index, { compares: [compare], then: [{ op: 'put', key, value }], else: [] });
          expect(cas).toEqual({ op: 'cas', swapped: t.succeeded });
        });
        expect(viaTxn.range({})).toEqual(viaCas.range({}));
      }),
      { numRuns: 200 },
    );
  });
});
