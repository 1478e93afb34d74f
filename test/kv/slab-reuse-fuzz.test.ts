// A broader fuzz of value-slab reuse than test/kv/byte-slabs.test.ts: transactions (reads then
// writes), Redis commands, range reads, delete-range, listeners, watches, resumed watches, many
// keys (so compaction runs), empty values, and snapshot installs that reset the history. Checks
// after every op: every view anybody was handed keeps its bytes, the history reads what each
// change put, the store reads what its changes put, and the spares are sound.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { ByteSlabs, Slab } from '../../src/kv/byte-slabs.ts';
import type { KeyIndex } from '../../src/kv/key-index.ts';
import { encodeKvRequest, KvStateMachine, type KvChangeSink, type KvCommand } from '../../src/kv/index.ts';
import { heldChanges, watchSetKeeping, type HeldView } from './helpers.ts';

const enc = new TextEncoder();

/** Copies each change's value at once (as a copy made before the store changes may) and forwards it. */
class Recorder implements KvChangeSink {
  readonly changes = new Map<string, Uint8Array | undefined>();
  readonly shadow = new Map<string, Uint8Array>();
  constructor(public next: KvChangeSink) {}
  change(index: number, position: number, key: Uint8Array, valueSlab: Slab | undefined, valueAt: number, valueLength: number, createIndex: number, version: number): void {
    const value = valueSlab?.bytes.slice(valueAt, valueAt + valueLength);
    this.changes.set(`${index}/${position}`, value);
    const k = Buffer.from(key).toString('latin1');
    if (value === undefined) this.shadow.delete(k);
    else this.shadow.set(k, value);
    this.next.change(index, position, key, valueSlab, valueAt, valueLength, createIndex, version);
  }
}

type Op =
  | { kind: 'put'; key: number; bytes: number }
  | { kind: 'delete'; key: number }
  | { kind: 'txn'; ops: { get: boolean; key: number; bytes: number }[]; range: boolean }
  | { kind: 'redis'; cmd: number; key: number; key2: number; bytes: number }
  | { kind: 'delete-range'; from: number; to: number }
  | { kind: 'get'; key: number }
  | { kind: 'range'; from: number }
  | { kind: 'watch'; key: number }
  | { kind: 'resume'; back: number }
  | { kind: 'listen'; applies: number }
  | { kind: 'install' };

const KEYS = 200;
const size = fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 12, arbitrary: fc.integer({ min: 1, max: 3000 }) });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 600, arbitrary: fc.record({ kind: fc.constant('put' as const), key: fc.oneof({ weight: 20, arbitrary: fc.nat(7) }, { weight: 1, arbitrary: fc.nat(KEYS - 1) }), bytes: size }) },
  { weight: 66, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.nat(KEYS - 1) }) },
  { weight: 44, arbitrary: fc.record({ kind: fc.constant('txn' as const), ops: fc.array(fc.record({ get: fc.boolean(), key: fc.nat(KEYS - 1), bytes: size }), { minLength: 1, maxLength: 30 }), range: fc.boolean() }) },
  { weight: 44, arbitrary: fc.record({ kind: fc.constant('redis' as const), cmd: fc.nat(7), key: fc.nat(KEYS - 1), key2: fc.nat(KEYS - 1), bytes: size }) },
  { weight: 11, arbitrary: fc.record({ kind: fc.constant('delete-range' as const), from: fc.nat(KEYS - 1), to: fc.nat(KEYS - 1) }) },
  { weight: 11, arbitrary: fc.record({ kind: fc.constant('get' as const), key: fc.nat(KEYS - 1) }) },
  { weight: 11, arbitrary: fc.record({ kind: fc.constant('range' as const), from: fc.nat(KEYS - 1) }) },
  { weight: 11, arbitrary: fc.record({ kind: fc.constant('watch' as const), key: fc.nat(KEYS - 1) }) },
  { weight: 11, arbitrary: fc.record({ kind: fc.constant('resume' as const), back: fc.integer({ min: 1, max: 60 }) }) },
  { weight: 11, arbitrary: fc.record({ kind: fc.constant('listen' as const), applies: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('install' as const) }) },
);

const keyOf = (k: number): Uint8Array => enc.encode(`k/${String(k).padStart(4, '0')}`);
function valueOf(seed: number, bytes: number): Uint8Array {
  const v = new Uint8Array(bytes);
  for (let j = 0; j < bytes; j++) v[j] = (seed * 131 + j * 7) & 0xff;
  return v;
}

function run(ops: readonly Op[]): void {
  let machine = new KvStateMachine();
  const views: HeldView[] = [];
  const watches = watchSetKeeping(views, 2048, 512 << 10);
  const rec = new Recorder(watches);
  machine.setChangeSink(rec);
  let index = 0;
  let seq = 0;
  let watchId = 0;
  let listening = 0;
  const ending: { requestId: number; at: number }[] = [];
  // A listener exposes every value while it is registered: registered only for a few applies ('listen').
  const listener = (c: { value: Uint8Array | undefined; index: number; position: number }): void => {
    if (c.value !== undefined) views.push({ view: c.value, bytes: c.value.slice(), what: `listener ${c.index}/${c.position}` });
  };
  let unlisten: (() => void) | undefined;
  const apply = (command: KvCommand): void => {
    machine.apply(++index, encodeKvRequest({ clientId: 1, seq: ++seq, command }));
    if (listening > 0 && --listening === 0) {
      unlisten?.();
      unlisten = undefined;
    }
  };

  const check = (where: string): void => {
    for (const v of views) if (!Buffer.from(v.view).equals(Buffer.from(v.bytes))) expect.fail(`${where}: ${v.what} was written over`);
    const values = (machine as unknown as { valueSlabs: ByteSlabs }).valueSlabs as unknown as { spares: Slab[]; current: Slab };
    const spares = new Set(values.spares);
    if (spares.size !== values.spares.length) expect.fail(`${where}: a slab is among the spares twice`);
    if (spares.has(values.current)) expect.fail(`${where}: the current slab is a spare`);
    for (const s of values.spares) if (!s.spare || !s.retired || s.live !== 0 || s.holds !== 0 || s.exposed) expect.fail(`${where}: a spare that is not free (live ${s.live}, holds ${s.holds}, exposed ${s.exposed})`);
    for (const { index: i, position, slab, value: got } of heldChanges(watches)) {
      const key = `${i}/${position}`;
      const expected = rec.changes.get(key);
      if ((expected === undefined) !== (got === undefined) || (got !== undefined && !Buffer.from(got).equals(Buffer.from(expected!)))) expect.fail(`${where}: the history's change ${key} no longer reads what was put`);
      if (slab !== undefined && got!.length > 0 && spares.has(slab)) expect.fail(`${where}: the history holds a spare`);
    }
    const entries = (machine as unknown as { entries: KeyIndex<{ id: string; key: Uint8Array; keySlab: Slab; keyAt: number; keyLength: number; valueSlab: Slab; valueLength: number; valueToCopy(): Uint8Array }> }).entries;
    if (entries.size !== rec.shadow.size) expect.fail(`${where}: ${entries.size} keys, the changes say ${rec.shadow.size}`);
    for (let slot = 0; slot < entries.slotCount; slot++) {
      const e = entries.at(slot);
      if (e === undefined) continue;
      const k = e.id;
      // The bytes the index compares are the key's, wherever compaction moved them.
      if (Buffer.from(e.keySlab.bytes.subarray(e.keyAt, e.keyAt + e.keyLength)).toString('latin1') !== k || Buffer.from(e.key).toString('latin1') !== k) expect.fail(`${where}: key ${k}'s bytes read otherwise`);
      const expected = rec.shadow.get(k);
      if (expected === undefined || !Buffer.from(e.valueToCopy()).equals(Buffer.from(expected))) expect.fail(`${where}: key ${k} no longer reads what was put`);
      if (e.valueLength > 0 && spares.has(e.valueSlab)) expect.fail(`${where}: key ${k}'s value lies in a spare`);
    }
  };

  let n = 0;
  for (const op of ops) {
    n++;
    switch (op.kind) {
      case 'put':
        apply({ op: 'put', key: keyOf(op.key), value: valueOf(index, op.bytes) });
        break;
      case 'delete':
        apply({ op: 'delete', key: keyOf(op.key) });
        break;
      case 'txn': {
        const then = op.ops.map((o, i) => (o.get ? { op: 'get' as const, key: keyOf(o.key) } : { op: 'put' as const, key: keyOf(o.key), value: valueOf(index * 31 + i, o.bytes) }));
        if (op.range) then.push({ op: 'range', query: { start: keyOf(0) } } as never);
        // Its result is encoded at apply: the bytes it read are copied out then.
        apply({ op: 'txn', txn: { compares: [], then, else: [] } });
        break;
      }
      case 'redis': {
        const k = keyOf(op.key);
        const k2 = keyOf(op.key2);
        const v = valueOf(index * 17, op.bytes);
        const cmds: Uint8Array[][][] = [
          [[enc.encode('SET'), k, v]],
          [[enc.encode('GETSET'), k, v]],
          [[enc.encode('APPEND'), k, v.subarray(0, 50)]],
          [[enc.encode('MSET'), k, v, k2, v.subarray(0, 10)]],
          [[enc.encode('GETDEL'), k]],
          [[enc.encode('SET'), k, v, enc.encode('GET')], [enc.encode('GET'), k2], [enc.encode('SET'), k2, v]],
          [[enc.encode('SETNX'), k, v]],
          [[enc.encode('GET'), k], [enc.encode('SET'), k, v], [enc.encode('GET'), k]],
        ];
        const c = cmds[op.cmd]!;
        apply({ op: 'redis', commands: c, transaction: c.length > 1 });
        break;
      }
      case 'delete-range': {
        const [a, b] = op.from <= op.to ? [op.from, op.to] : [op.to, op.from];
        apply({ op: 'delete-range', key: keyOf(a), end: keyOf(b) });
        break;
      }
      case 'get': {
        const view = machine.getShared(keyOf(op.key));
        if (view !== undefined) views.push({ view, bytes: view.slice(), what: `get at ${index}` });
        break;
      }
      case 'range': {
        const r = machine.range({ start: keyOf(op.from), limit: 20 });
        for (const e of r.entries) if (e.value !== undefined) views.push({ view: e.value, bytes: e.value.slice(), what: `range at ${index}` });
        break;
      }
      case 'watch':
        watches.start(++watchId, keyOf(op.key), index);
        ending.push({ requestId: watchId, at: index + 8 });
        break;
      case 'resume':
        watches.start(++watchId, enc.encode('k/'), Math.max(0, index - op.back));
        watches.unwatch(watchId);
        break;
      case 'listen':
        if (unlisten === undefined) unlisten = machine.onChange(listener);
        listening = op.applies;
        break;
      case 'install': {
        // As NodeHost.restoreSnapshot: a new machine from a snapshot, the history reset.
        unlisten?.();
        unlisten = undefined;
        listening = 0;
        machine.setChangeSink(undefined);
        machine = KvStateMachine.restore(machine.snapshot());
        machine.setChangeSink(rec);
        watches.onSnapshotInstalled(index);
        rec.changes.clear();
        break;
      }
    }
    while (ending.length > 0 && ending[0]!.at <= index) watches.unwatch(ending.shift()!.requestId);
    if (n % 7 === 0 || op.kind === 'install') check(`after op ${n} (${op.kind}) at index ${index}`);
  }
  check('at the end');
  stats.runs++;
  stats.slabsMade += (machine as unknown as { valueSlabs: ByteSlabs }).valueSlabs.slabsMade;
}
const stats = { runs: 0, slabsMade: 0, compactions: 0 };
const proto = KvStateMachine.prototype as unknown as { compactSome(): void };
const compactSome = proto.compactSome;
proto.compactSome = function (this: unknown) {
  stats.compactions++;
  compactSome.call(this);
};

describe('value slab reuse, fuzzed widely', () => {
  afterAll(() => {
    proto.compactSome = compactSome;
  });

  it('never writes over held bytes, and keeps its spares sound', () => {
    // Runs of thousands of operations: no shrinking (the failing run is reported as it is).
    fc.assert(fc.property(fc.array(opArb, { minLength: 2000, maxLength: 5000 }), (ops) => void run(ops)), { numRuns: 10, endOnFailure: true });
    // The runs did what they are for: compaction moved values, and slabs were made (and, by the spares' checks, reused soundly).
    expect(stats.runs).toBe(10);
    expect(stats.compactions).toBeGreaterThan(0);
    expect(stats.slabsMade).toBeGreaterThan(stats.runs);
  });
});
