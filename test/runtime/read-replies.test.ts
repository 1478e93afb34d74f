// A leader answers gets through a sink with `replyRead` with the value as it was read, and
// hands out no view of its value slabs for good: a mixed load of puts and gets then writes
// its slabs again instead of making new ones (a view handed out keeps its slab from reuse;
// through `reply` alone, every slab a get touched is made anew). The same gets through
// either sink answer the same values. A read taken where its frame lies keeps its own copy of
// the key: the frame's memory written over while the read waits for its ReadIndex round
// changes nothing of what it reads.
import { describe, expect, it } from 'vitest';
import type { ByteSlabs } from '../../src/kv/byte-slabs.ts';
import { ByteWriter } from '../../src/codec/index.ts';
import { encodedRequestBytes, writeRequestTo, type ClientReply } from '../../src/runtime/index.ts';
import { bytesOf, HostNetwork, put, readReq, textOf, writeReq } from './helpers.ts';

const ROUNDS = 400;
const KEYS = 8;
/** 1,000-byte values: ROUNDS * KEYS of them are some 3 MB, a dozen slabs of 256 KiB. */
const VALUE_BYTES = 1000;

function mixedLoad(replyRead: boolean): { slabsMade: number; values: (string | undefined)[] } {
  // No watch history: a slab whose values were all replaced is free at once.
  const net = new HostNetwork([1, 2, 3], { replyRead, node: { watchHistoryChangesMax: 1, watchHistoryBytesMax: 0 } });
  net.elect(1);
  let requestId = 1;
  const reads: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < KEYS; k++) {
      const value = String.fromCharCode(97 + ((round + k) % 26)).repeat(VALUE_BYTES);
      net.request(1, writeReq(requestId, 100 + k, round + 1, put(`k${k}`, value)));
      requestId++;
    }
    net.deliverAll();
    for (let k = 0; k < KEYS; k++) {
      reads.push(requestId);
      net.request(1, readReq(requestId++, `k${k}`));
    }
    net.deliverAll();
  }
  const replies = new Map<number, ClientReply>(net.node(1).replies.map((r) => [r.requestId, r]));
  const values = reads.map((id) => {
    const r = replies.get(id);
    if (r?.kind !== 'read') throw new Error(`read ${id} answered ${JSON.stringify(r)}`);
    return textOf(r.value);
  });
  const slabs = (net.host(1).kv as unknown as { valueSlabs: ByteSlabs }).valueSlabs;
  return { slabsMade: slabs.slabsMade, values };
}

describe('read replies', () => {
  it('answer the value read, and leave the value slabs free to be written again', () => {
    const transient = mixedLoad(true);
    const shared = mixedLoad(false);
    // Each get read the value of its round.
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < KEYS; k++) expect(transient.values[round * KEYS + k]).toBe(String.fromCharCode(97 + ((round + k) % 26)).repeat(VALUE_BYTES));
    }
    expect(shared.values).toEqual(transient.values);
    // Some 3 MB written: through replyRead a few slabs do, written again and again; every
    // slab a get touched through `reply` stays out of reuse.
    expect(transient.slabsMade).toBeLessThanOrEqual(6);
    expect(shared.slabsMade).toBeGreaterThan(10);
  });

  it('of a frame taken in place keep their key while the frame is written over', () => {
    for (const replyRead of [true, false]) {
      const net = new HostNetwork([1, 2, 3], { replyRead });
      net.elect(1);
      net.request(1, writeReq(1, 100, 1, put('key-a', 'value of a')), writeReq(2, 101, 1, put('key-b', 'value of b')));
      net.deliverAll();
      const host = net.host(1);
      // Reads of key-a, each frame in one buffer that then holds key-b's frames instead.
      const frame = (requestId: number, key: string): Uint8Array => {
        const request = { kind: 'read' as const, requestId, consistency: 'linearizable' as const, key: bytesOf(key) };
        const w = new ByteWriter(encodedRequestBytes(request));
        writeRequestTo(w, request);
        return w.finish();
      };
      const memory = new Uint8Array(64);
      for (let id = 10; id < 20; id++) {
        const a = frame(id, 'key-a');
        memory.set(a);
        host.handleRequestFrame(memory, 0, a.length);
        memory.set(frame(id, 'key-b'));
      }
      // The ReadIndex round starts and completes only now, after every frame was written over.
      host.flush();
      host.processReady();
      net.deliverAll();
      const answers = net.node(1).replies.filter((r) => r.requestId >= 10 && r.requestId < 20);
      expect(answers).toHaveLength(10);
      for (const r of answers) expect(r.kind === 'read' ? textOf(r.value) : r).toBe('value of a');
    }
  });
});
