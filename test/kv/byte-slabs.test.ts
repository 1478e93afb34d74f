// Proves that the store's slabs (kv/byte-slabs.ts) keep their memory bounded and their bytes
// intact: under a workload that leaves one long-lived value in every slab, which without
// compaction would keep nearly every slab alive for 1% of its bytes, the waste stays within
// the live bytes (plus a bounded slack); every key reads back what a model holds, through a
// snapshot too; and a view handed out before a value moved or was overwritten still holds
// the bytes it held.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WORD_COPY_BYTES_MAX } from '../../src/codec/index.ts';
import { ByteSlabs, SLAB_BYTES, SLAB_OWN_BYTES_MIN } from '../../src/kv/byte-slabs.ts';
import { encodeKvRequest, KvStateMachine } from '../../src/kv/index.ts';

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
});
