// Proves that the store's slabs (kv/byte-slabs.ts) keep their memory bounded and their bytes
// intact: under a workload that leaves one long-lived value in every slab, which without
// compaction would keep nearly every slab alive for 1% of its bytes, the waste stays within
// the live bytes (plus a bounded slack); every key reads back what a model holds, through a
// snapshot too; and a view handed out before a value moved or was overwritten still holds
// the bytes it held. Slabs are written again only once nothing live, held or exposed is in
// them: under random puts, deletes, reads, watch events and resumed watches, every view
// anybody was given, and every change the watch history holds, keeps its bytes, while the
// store does reuse its slabs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WORD_COPY_BYTES_MAX } from '../../src/codec/index.ts';
import { ByteSlabs, SLAB_BYTES, SLAB_OWN_BYTES_MIN, SPARE_SLABS_MAX, type Slab } from '../../src/kv/byte-slabs.ts';
import { encodeKvRequest, KvStateMachine, type KvCommand } from '../../src/kv/index.ts';
import { heldChanges, storedValue, watchSetKeeping, type HeldView } from './helpers.ts';

const encoder = new TextEncoder();

function valueOf(i: number, bytes: number): Uint8Array {
  const v = new Uint8Array(bytes);
  for (let j = 0; j < bytes; j++) v[j] = (i * 31 + j) & 0xff;
  return v;
}

describe('ByteSlabs', () => {
  it('copies from a view over a resizable buffer after the buffer grew, past its length when first copied from', () => {
    // Resizable buffers are ES2024, beyond the library the project compiles against.
    const Resizable = ArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => ArrayBuffer & { resize(length: number): void };
    const buffer = new Resizable(16, { maxByteLength: 256 });
    const src = new Uint8Array(buffer);
    src.fill(1);
    const slabs = new ByteSlabs();
    expect(slabs.lastSlab.bytes.subarray(slabs.copy(src, 0, 16), 16)).toEqual(new Uint8Array(16).fill(1));
    buffer.resize(128);
    src.fill(2);
    const at = slabs.copy(src, 100, 24);
    expect(slabs.lastSlab.bytes.subarray(at, at + 24)).toEqual(new Uint8Array(24).fill(2));
  });

  it('copies every byte at any offset and length, word by word and by set alike, from the same source or another', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ source: fc.nat(2), from: fc.nat(64), length: fc.nat(WORD_COPY_BYTES_MAX + 40) }), { minLength: 1, maxLength: 40 }),
        (copies) => {
          const slabs = new ByteSlabs();
          // Sources at odd offsets of their buffers: views that are not word aligned.
          const sources = [0, 1, 2].map((s) => valueOf(s + 7, 512).subarray(s + 1));
          for (const c of copies) {
            const src = sources[c.source]!;
            const at = slabs.copy(src, c.from, c.length);
            expect(slabs.lastSlab.bytes.subarray(at, at + c.length)).toEqual(src.subarray(c.from, c.from + c.length));
            if (c.source === 2) slabs.forgetSource();
          }
        },
      ),
    );
  });

  it('accounts live bytes and the waste of retired slabs, and gives large contents a slab of their own', () => {
    const slabs = new ByteSlabs();
    const src = valueOf(1, 4096);
    const held: { slab: ReturnType<() => typeof slabs.lastSlab>; length: number }[] = [];
    // Fill past three slabs with 4 KiB pieces.
    for (let i = 0; i < (3 * SLAB_BYTES) / 4096 + 1; i++) {
      slabs.copy(src, 0, 4096);
      held.push({ slab: slabs.lastSlab, length: 4096 });
    }
    expect(slabs.liveBytes).toBe(held.length * 4096);
    expect(slabs.wasteBytes).toBe(0); // full slabs, all live
    // Release every other piece of the first slab: half of it is waste now.
    const first = held[0]!.slab;
    let released = 0;
    held.forEach((h, i) => {
      if (h.slab === first && i % 2 === 0) {
        slabs.release(h.slab, h.length);
        released += h.length;
      }
    });
    expect(slabs.wasteBytes).toBe(released);
    expect(slabs.isSparse(first)).toBe(false); // exactly half live
    // Release the rest of it: nothing live, so the collector frees it and it is no waste.
    held.forEach((h, i) => {
      if (h.slab === first && i % 2 === 1) slabs.release(h.slab, h.length);
    });
    expect(slabs.wasteBytes).toBe(0);
    const big = valueOf(2, SLAB_OWN_BYTES_MIN);
    const at = slabs.copy(big, 0, big.length);
    expect(at).toBe(0);
    expect(slabs.lastSlab.bytes).toEqual(big);
    expect(slabs.isSparse(slabs.lastSlab)).toBe(false);
  });
});

describe('KvStateMachine slabs', () => {
  it('keep the waste within the live bytes when one long-lived value sits in every slab, and lose no byte', () => {
    const machine = new KvStateMachine();
    const model = new Map<string, Uint8Array>();
    const views: { view: Uint8Array; bytes: Uint8Array }[] = [];
    let index = 0;
    let seq = 0;
    const put = (key: string, value: Uint8Array): void => {
      machine.apply(++index, encodeKvRequest({ clientId: 1, seq: ++seq, command: { op: 'put', key: encoder.encode(key), value } }));
      model.set(key, value);
    };
    let wasteMax = 0;
    const writes = 60_000;
    for (let i = 0; i < writes; i++) {
      // One write in 100 makes a key that is never written again; the rest overwrite one hot key.
      if (i % 100 === 0) put(`pinned/${i}`, valueOf(i, 1024));
      else put('hot', valueOf(i, 1024));
      if (i % 997 === 1) {
        const view = machine.getShared(encoder.encode('hot'))!;
        views.push({ view, bytes: view.slice() });
      }
      const { liveBytes, wasteBytes } = machine.slabBytes;
      // Within the live bytes (or the floor of a few slabs), plus what one pass of
      // compaction lets pile up while it runs (some live / 4 entries' worth of writes).
      const bound = Math.max(liveBytes, 4 * SLAB_BYTES) * 1.5 + 2 * SLAB_BYTES;
      if (wasteBytes > bound) expect.fail(`after write ${i}: ${wasteBytes} bytes of waste for ${liveBytes} live, over ${bound}`);
      wasteMax = Math.max(wasteMax, wasteBytes);
    }
    // The workload did make waste worth compacting (else this test proves nothing).
    expect(wasteMax).toBeGreaterThan(4 * SLAB_BYTES);
    for (const [key, value] of model) expect(machine.getShared(encoder.encode(key))).toEqual(value);
    for (const { view, bytes } of views) expect(view).toEqual(bytes);
    const restored = KvStateMachine.restore(machine.snapshot());
    for (const [key, value] of model) expect(restored.getShared(encoder.encode(key))).toEqual(value);
    expect(restored.snapshot()).toEqual(machine.snapshot());
  });

  it('move keys when they compact, and every key is found by its bytes after (and a deleted one is not)', () => {
    const machine = new KvStateMachine();
    const keySlabs = (machine as unknown as { keySlabs: ByteSlabs }).keySlabs;
    let index = 0;
    const apply = (command: KvCommand): void => void machine.apply(++index, encodeKvRequest({ clientId: 1, seq: index, command }));
    // Keys of 2,000 bytes, some 130 to a slab; keeping one in ten leaves every key slab sparse.
    const keyOf = (i: number): Uint8Array => encoder.encode(`${i}/`.padEnd(2000, String.fromCharCode(97 + (i % 26))));
    const keys = 3000;
    for (let i = 0; i < keys; i++) apply({ op: 'put', key: keyOf(i), value: valueOf(i, 16) });
    for (let i = 0; i < keys; i++) if (i % 10 !== 0) apply({ op: 'delete', key: keyOf(i) });
    const wasteBefore = keySlabs.wasteBytes;
    expect(wasteBefore).toBeGreaterThan(4 * SLAB_BYTES);
    // Writes drive the compaction a few entries at a time: enough of them for whole passes.
    for (let round = 0; round < 20; round++) for (let i = 0; i < keys; i += 10) apply({ op: 'put', key: keyOf(i), value: valueOf(round * keys + i, 16) });
    expect(keySlabs.wasteBytes).toBeLessThan(wasteBefore / 4);
    for (let i = 0; i < keys; i++) expect(storedValue(machine, keyOf(i))).toEqual(i % 10 === 0 ? valueOf(19 * keys + i, 16) : undefined);
    // Each write found its key where compaction had moved it: none made a second entry.
    expect(machine.size).toBe(keys / 10);
  });
});

/** Fills a slab with 4 KiB pieces (the current one if empty, else the next) and returns it: full, not yet retired. */
function fillSlab(slabs: ByteSlabs, src: Uint8Array): Slab {
  slabs.copy(src, 0, 4096);
  const slab = slabs.lastSlab;
  for (let i = 1; i < SLAB_BYTES / 4096; i++) {
    slabs.copy(src, 0, 4096);
    if (slabs.lastSlab !== slab) throw new Error('a piece went to another slab');
  }
  return slab;
}

/** Releases every piece of a slab filled by fillSlab. */
function emptySlab(slabs: ByteSlabs, slab: Slab): void {
  for (let i = 0; i < SLAB_BYTES / 4096; i++) slabs.release(slab, 4096);
}

describe('ByteSlabs reuse', () => {
  const src = valueOf(3, 4096);

  it('writes a retired slab again once nothing live or held is in it, and not while a holder keeps it', () => {
    const slabs = new ByteSlabs(true);
    const first = fillSlab(slabs, src);
    first.hold();
    emptySlab(slabs, first);
    const second = fillSlab(slabs, src); // retires the first: held, so a new slab
    expect(second).not.toBe(first);
    first.letGo();
    const third = fillSlab(slabs, src); // retires the second, still live: the first is free
    expect(third).toBe(first);
    expect(slabs.slabsMade).toBe(2);
    expect(() => first.letGo()).toThrow(/let go of more often than held/);
  });

  it('never writes again a slab exposed to an uncounted holder, nor any slab of owners that do not reuse', () => {
    for (const [reuse, expose] of [
      [true, true],
      [false, false],
    ] as const) {
      const slabs = new ByteSlabs(reuse);
      const first = fillSlab(slabs, src);
      const before = first.bytes.slice(0, 4096);
      if (expose) first.expose(0, 1);
      emptySlab(slabs, first);
      fillSlab(slabs, src);
      const third = fillSlab(slabs, valueOf(4, 4096));
      expect(third).not.toBe(first);
      expect(slabs.slabsMade).toBe(3);
      expect(first.bytes.subarray(0, 4096)).toEqual(before);
    }
  });

  it('counts no waste for an empty value released from a retired slab with nothing live (the waste never goes negative)', () => {
    for (const reuse of [true, false]) {
      const slabs = new ByteSlabs(reuse);
      slabs.copy(src, 0, 0);
      const first = slabs.lastSlab;
      fillSlab(slabs, src); // fills the rest of the first slab but one piece's room: the last piece retires it
      emptySlab(slabs, first);
      fillSlab(slabs, src);
      expect(slabs.wasteBytes).toBeGreaterThanOrEqual(0);
      slabs.release(first, 0); // the empty value is overwritten
      expect(slabs.wasteBytes).toBe(0);
      expect(slabs.liveBytes).toBe(SLAB_BYTES);
    }
  });

  it('keeps a free slab among the spares once, however often it is found free again (an empty value released, a holder letting go)', () => {
    const slabs = new ByteSlabs(true);
    slabs.copy(src, 0, 0);
    const first = fillSlab(slabs, src);
    emptySlab(slabs, first);
    fillSlab(slabs, src); // retires the first, free: a spare
    slabs.release(first, 0); // its empty value is overwritten
    first.hold();
    first.letGo();
    const next = [fillSlab(slabs, src), fillSlab(slabs, src)];
    expect(next[0]).toBe(first);
    expect(next[1]).not.toBe(first);
  });

  it(`keeps at most ${SPARE_SLABS_MAX} free slabs, and reuses them before it makes new ones`, () => {
    const slabs = new ByteSlabs(true);
    const filled: Slab[] = [];
    for (let i = 0; i < SPARE_SLABS_MAX + 3; i++) filled.push(fillSlab(slabs, src));
    // All but the last are retired; free them all.
    for (const slab of filled.slice(0, -1)) emptySlab(slabs, slab);
    const made = slabs.slabsMade;
    const next: Slab[] = [];
    for (let i = 0; i < SPARE_SLABS_MAX + 1; i++) next.push(fillSlab(slabs, src));
    // The first slab after the last filled one comes from the spares, as do the next; then one is made.
    expect(next.filter((s) => filled.includes(s))).toHaveLength(SPARE_SLABS_MAX);
    expect(slabs.slabsMade).toBe(made + 1);
    expect(new Set(next).size).toBe(next.length);
  });
});

describe('KvStateMachine value slabs', () => {
  const valueSlabsOf = (m: KvStateMachine): ByteSlabs => (m as unknown as { valueSlabs: ByteSlabs }).valueSlabs;

  type Op = { kind: 'put'; key: number; bytes: number } | { kind: 'delete'; key: number } | { kind: 'get'; key: number } | { kind: 'watch'; key: number } | { kind: 'resume'; back: number };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    // Reads and watches are rare, so that most slabs are never exposed and do get reused.
    { weight: 100, arbitrary: fc.record({ kind: fc.constant('put' as const), key: fc.nat(15), bytes: fc.integer({ min: 0, max: 6000 }) }) },
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.nat(15) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('get' as const), key: fc.nat(15) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('watch' as const), key: fc.nat(15) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('resume' as const), back: fc.integer({ min: 1, max: 40 }) }) },
  );

  /** Runs `ops` on a store whose changes go to a watch set (a small history), checking that no byte anybody holds changes. */
  function run(ops: readonly Op[]): KvStateMachine {
    const machine = new KvStateMachine();
    /** Views handed out by reads, watch events and resumed watches, with their bytes when handed out. */
    const views: HeldView[] = [];
    // A history of a few slabs' worth of changes: a slab is often freed by the store while the history still holds it.
    const watches = watchSetKeeping(views, 4096, 1 << 20);
    machine.setChangeSink(watches);
    const model = new Map<number, Uint8Array>();
    /** What each change put, by (index, position): what the history must still read. */
    const changes = new Map<string, Uint8Array | undefined>();
    const keyOf = (k: number): Uint8Array => encoder.encode(`key/${k}`);
    let index = 0;
    let seq = 0;
    let watchId = 0;
    const ending: { requestId: number; at: number }[] = [];
    const check = (): void => {
      for (const c of heldChanges(watches)) {
        const expected = changes.get(`${c.index}/${c.position}`);
        if (expected === undefined ? c.value !== undefined : c.value === undefined || !Buffer.from(c.value).equals(Buffer.from(expected))) {
          expect.fail(`the history's change at ${c.index}/${c.position} no longer reads what was put`);
        }
      }
      for (const { view, bytes, what } of views) {
        if (!Buffer.from(view).equals(Buffer.from(bytes))) expect.fail(`a view handed out was written over: ${what}`);
      }
      for (const [k, value] of model) {
        const stored = storedValue(machine, keyOf(k));
        if (stored === undefined || !Buffer.from(stored).equals(Buffer.from(value))) expect.fail(`key ${k} no longer reads what was put`);
      }
    };
    for (const op of ops) {
      if (op.kind === 'put' || op.kind === 'delete') {
        const value = op.kind === 'put' ? valueOf(index * 7 + op.key, op.bytes) : undefined;
        const command = value === undefined ? { op: 'delete' as const, key: keyOf(op.key) } : { op: 'put' as const, key: keyOf(op.key), value };
        machine.apply(++index, encodeKvRequest({ clientId: 1, seq: ++seq, command }));
        if (value === undefined) {
          if (model.delete(op.key)) changes.set(`${index}/0`, undefined);
        } else {
          model.set(op.key, value);
          changes.set(`${index}/0`, value);
        }
      } else if (op.kind === 'get') {
        const view = machine.getShared(keyOf(op.key));
        if (view !== undefined) views.push({ view, bytes: view.slice(), what: `get at ${index}` });
      } else if (op.kind === 'watch') {
        // A watch of one key for the next few changes.
        watches.start(++watchId, keyOf(op.key), index);
        ending.push({ requestId: watchId, at: index + 8 });
      } else {
        watches.start(++watchId, encoder.encode('key/'), Math.max(0, index - op.back));
        watches.unwatch(watchId);
      }
      while (ending.length > 0 && ending[0]!.at <= index) watches.unwatch(ending.shift()!.requestId);
      if (index % 16 === 0) check();
    }
    check();
    return machine;
  }

  it('never write over bytes that an entry, the history, a read, a watch event or a resumed watch still holds', () => {
    fc.assert(fc.property(fc.array(opArb, { minLength: 500, maxLength: 3000 }), (ops) => void run(ops)), { numRuns: 40, endOnFailure: true }); // runs of thousands of operations: no shrinking
  });

  it('are reused under puts alone: slabs made stay a fraction of the bytes written', () => {
    const puts = 20_000;
    const ops: Op[] = Array.from({ length: puts }, (_, i) => ({ kind: 'put', key: i % 16, bytes: 1000 }));
    const made = valueSlabsOf(run(ops)).slabsMade;
    // Without reuse a slab per SLAB_BYTES written (76); the history (1 MiB: 4 slabs), the live
    // values, the current slab and one on either side of the history hold some 7.
    expect((puts * 1000) / SLAB_BYTES).toBeGreaterThan(70);
    expect(made).toBeLessThanOrEqual(8);
  });
});


describe('KvStateMachine value slabs under Redis writes', () => {
  const slabsMade = (m: KvStateMachine): number => (m as unknown as { valueSlabs: ByteSlabs }).valueSlabs.slabsMade;
  const bulk = (v: Uint8Array | undefined): Buffer => (v === undefined ? Buffer.from('$-1\r\n') : Buffer.concat([Buffer.from(`$${v.length}\r\n`), v, Buffer.from('\r\n')]));

  it('are reused, and SET ... GET and GETDEL answer the old value though its slab may be written again', () => {
    const machine = new KvStateMachine();
    const model = new Map<number, Uint8Array>();
    const writes = 20_000;
    const run = (i: number, words: string[], value?: Uint8Array): Buffer => {
      const command: Uint8Array[] = words.map((w) => encoder.encode(w));
      if (value !== undefined) command.splice(2, 0, value);
      const outcome = machine.apply(i, encodeKvRequest({ clientId: 1, seq: i, command: { op: 'redis', commands: [command], transaction: false } }));
      const result = outcome.result as { op: string; encoded?: Uint8Array };
      if (result.op !== 'redis' || result.encoded === undefined) expect.fail(`command ${i} gave ${JSON.stringify(result)}`);
      return Buffer.from(result.encoded);
    };
    for (let i = 1; i <= writes; i++) {
      const k = i % 16;
      const value = valueOf(i, 1000);
      if (i % 50 === 0) {
        expect(run(i, ['GETDEL', `k${k}`])).toEqual(bulk(model.get(k)));
        model.delete(k);
      } else if (i % 10 === 0) {
        expect(run(i, ['SET', `k${k}`, 'GET'], value)).toEqual(bulk(model.get(k)));
        model.set(k, value);
      } else {
        expect(run(i, ['SET', `k${k}`], value)).toEqual(Buffer.from('+OK\r\n'));
        model.set(k, value);
      }
    }
    for (const [k, value] of model) expect(machine.get(encoder.encode(`k${k}`))).toEqual(value);
    // Without reuse a slab per SLAB_BYTES written (76); the live values and the current slab hold a few.
    expect((writes * 1000) / SLAB_BYTES).toBeGreaterThan(70);
    expect(slabsMade(machine)).toBeLessThanOrEqual(4);
  });

  it('answer SET ... GET and GETSET with the old value when the write takes the very slab it lay in', () => {
    for (const words of [['SET', 'x', 'GET'], ['GETSET', 'x']]) {
      const machine = new KvStateMachine();
      let i = 0;
      const run = (command: Uint8Array[]): Buffer => {
        i++;
        const result = machine.apply(i, encodeKvRequest({ clientId: 1, seq: i, command: { op: 'redis', commands: [command], transaction: false } })).result as { encoded: Uint8Array };
        return Buffer.from(result.encoded);
      };
      // 16 KiB values: 16 fill a slab. x's value first in slab A, then y's until A is full.
      const piece = SLAB_BYTES / 16;
      const old = valueOf(1, piece);
      run([encoder.encode('SET'), encoder.encode('x'), old]);
      for (let n = 0; n < 15; n++) run([encoder.encode('SET'), encoder.encode('y'), valueOf(2 + n, piece)]);
      // y's next values fill slab B, retiring A with only x's value live in it.
      for (let n = 0; n < 16; n++) run([encoder.encode('SET'), encoder.encode('y'), valueOf(20 + n, piece)]);
      // Writing x frees A, and B is full: the new value goes into A, where the old one lies.
      const command: Uint8Array[] = words.map((w) => encoder.encode(w));
      command.splice(2, 0, valueOf(99, piece));
      expect(run(command)).toEqual(bulk(old));
      expect(machine.get(encoder.encode('x'))).toEqual(valueOf(99, piece));
      expect(slabsMade(machine)).toBe(2);
    }
  });
});
