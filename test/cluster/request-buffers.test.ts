/**
 * The memory a client encodes its writes into (src/cluster/request-buffers.ts), reused from
 * call to call: exact lengths, bounded bytes, slots given back and taken again; and the two
 * ways reuse could corrupt a write: a caller's buffer changed after the call (the write was
 * copied when it started), and a request still queued behind a full ring after its call gave
 * its memory back (the queue keeps its own copy).
 */
import { describe, expect, it } from 'vitest';
import { ClientEndpoint } from '../../src/cluster/endpoint.ts';
import { REQUEST_SLOT_BYTES, REQUEST_SLOTS_MAX, RequestBuffers } from '../../src/cluster/request-buffers.ts';
import { REQUESTS_IN_FLIGHT_MAX } from '../../src/cluster/options.ts';
import { ErrorCode, RingraftError } from '../../src/index.ts';
import { decodeKvRequest, isKvRegisterClientsRequest, isKvSessionRequest } from '../../src/kv/index.ts';
import { decodeRequest, type ClientRequest } from '../../src/runtime/index.ts';
import { handNode, type HandNode } from './hand-node.ts';
import { refused, start, stopAfterEach } from './helpers.ts';

stopAfterEach();

/** A take and the writer over what it took. */
function take(pool: RequestBuffers, sizeBytes: number): { bytes: Uint8Array; writer: RequestBuffers['writer'] } {
  const bytes = pool.take(sizeBytes);
  return { bytes, writer: pool.writer };
}

describe('RequestBuffers', () => {
  it('hands out memory exactly as long as asked, from slots up to its bound and of its own beyond', () => {
    const pool = new RequestBuffers(300);
    const taken = [];
    for (let i = 0; i < 300; i++) {
      const m = take(pool, 1 + (i % REQUEST_SLOT_BYTES));
      expect(m.bytes.length).toBe(1 + (i % REQUEST_SLOT_BYTES));
      expect(m.writer.remainingBytes).toBe(m.bytes.length);
      taken.push(m);
    }
    expect(pool.slotsInUse).toBe(300);
    // Two slabs of 256 slots, the second cut at the bound.
    expect(pool.slabBytes).toBe(2 * 256 * REQUEST_SLOT_BYTES);
    // Slots never overlap: each holds its own bytes.
    taken.forEach((m, i) => m.bytes.fill(i & 0xff));
    taken.forEach((m, i) => expect(m.bytes.every((b) => b === (i & 0xff))).toBe(true));
    // At the bound, and for a request larger than a slot: memory of its own, exactly as long.
    for (const size of [10, REQUEST_SLOT_BYTES + 1, 100_000]) {
      const own = take(pool, size);
      expect(own.bytes.length).toBe(size);
      expect(own.writer.remainingBytes).toBe(size);
      pool.give(own.bytes);
      expect(pool.slotsInUse).toBe(300);
    }
    expect(pool.slabBytes).toBe(2 * 256 * REQUEST_SLOT_BYTES);
    // Given back, a slot is taken again (the last given first), with no new slab.
    pool.give(taken[7]!.bytes);
    expect(pool.slotsInUse).toBe(299);
    const again = take(pool, REQUEST_SLOT_BYTES);
    expect(again.bytes.buffer).toBe(taken[7]!.bytes.buffer);
    expect(again.bytes.byteOffset).toBe(taken[7]!.bytes.byteOffset);
    expect(again.bytes.length).toBe(REQUEST_SLOT_BYTES);
    expect(again.writer.remainingBytes).toBe(REQUEST_SLOT_BYTES);
    expect(pool.slabBytes).toBe(2 * 256 * REQUEST_SLOT_BYTES);
    // Taken again at the size it was last taken at, a slot is handed out as the same view; at another size, as a new one.
    pool.give(again.bytes);
    expect(pool.take(REQUEST_SLOT_BYTES)).toBe(again.bytes);
    pool.give(again.bytes);
    const shorter = pool.take(REQUEST_SLOT_BYTES - 1);
    expect(shorter).not.toBe(again.bytes);
    expect([shorter.byteOffset, shorter.length]).toEqual([again.bytes.byteOffset, REQUEST_SLOT_BYTES - 1]);
  });

  it('keeps no memory of its own past its give: the writer goes with it', () => {
    const pool = new RequestBuffers(4);
    const big = pool.take(4 * REQUEST_SLOT_BYTES);
    expect(pool.writer.remainingBytes).toBe(big.length);
    pool.give(big);
    expect(() => pool.writer).toThrow(/no memory taken/);
  });

  it('refuses memory given back twice once no slot is in use', () => {
    const pool = new RequestBuffers(4);
    const m = pool.take(8);
    pool.give(m);
    expect(() => pool.give(m)).toThrow(/slot in use/);
  });
});

/** A hand node's loop that answers every write (registrations with a block of ids), telling `onPut` each put's value; returns the frames it read. */
function servingWrites(requests: HandNode['requests'], reply: HandNode['reply'], onPut: (value: Uint8Array) => void = () => {}): () => number {
  return () =>
    requests.drain((frame) => {
      const req = decodeRequest(frame);
      if (req.kind !== 'write') return;
      const kvReq = decodeKvRequest(req.data);
      if (isKvRegisterClientsRequest(kvReq)) {
        reply({ kind: 'write', requestId: req.requestId, result: { op: 'register-clients', clientIdFirst: 1000 }, index: 1 });
        return;
      }
      if (isKvSessionRequest(kvReq) && kvReq.command.op === 'put') onPut(kvReq.command.value);
      reply({ kind: 'write', requestId: req.requestId, result: { op: 'put' }, index: 2 });
    });
}

/** A hand node's loop that answers every read with no value, telling `onRequest` each request it reads; returns the frames it read. */
function servingReads(requests: HandNode['requests'], reply: HandNode['reply'], onRequest: (req: ClientRequest) => void): () => number {
  return () =>
    requests.drain((frame) => {
      const req = decodeRequest(frame);
      onRequest(req);
      if (req.kind === 'read') reply({ kind: 'read', requestId: req.requestId, value: undefined, index: 1 });
    });
}

/** Runs `serve` until ten looks in a row, 5 ms apart, find nothing. */
async function serveUntilQuiet(serve: () => number): Promise<void> {
  for (let quiet = 0; quiet < 10; ) {
    quiet = serve() > 0 ? 0 : quiet + 1;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Runs `serve` until `p` settles; its outcome. */
async function whileServing<T>(serve: () => number, p: Promise<T>): Promise<T> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  while (!done) {
    serve();
    await new Promise((r) => setTimeout(r, 2));
  }
  return p;
}

describe('a write in reused memory', () => {
  it('is the caller\'s bytes as they were when the call started, whatever the caller does to its buffers afterwards', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const value = new Uint8Array(64).fill(1);
    const writes = [];
    for (let i = 0; i < 50; i++) {
      value.fill(i);
      writes.push(kv.put(`k${i}`, value));
    }
    value.fill(0xff);
    await Promise.all(writes);
    for (let i = 0; i < 50; i++) expect(await kv.get(`k${i}`)).toEqual(new Uint8Array(64).fill(i));
  });

  it('still queued behind a full ring when its call timed out is sent with its own bytes, not those of the next write that took its memory', async () => {
    // A node that reads nothing until the end: the request ring fills and requests queue.
    const { endpoint, kv, requests, reply } = handNode({ requestRingBytes: 1024, requestTimeoutMs: 60_000 });
    /** Every value the node has been sent in a put, in order; registrations are answered. */
    const sent: number[] = [];
    const serve = (): number =>
      requests.drain((frame) => {
        const req = decodeRequest(frame);
        if (req.kind !== 'write') return;
        const kvReq = decodeKvRequest(req.data);
        if (isKvRegisterClientsRequest(kvReq)) reply({ kind: 'write', requestId: req.requestId, result: { op: 'register-clients', clientIdFirst: 1000 }, index: 1 });
        else if (isKvSessionRequest(kvReq) && kvReq.command.op === 'put') sent.push(kvReq.command.value[0]!);
      });
    try {
      const value = (v: number): Uint8Array => new Uint8Array(160).fill(v);
      // The first put registers client ids; answer that, and let the put go out.
      const fillers = [kv.put('f', value(1), { timeoutMs: 10_000 })];
      while (serve() === 0) await new Promise((r) => setImmediate(r));
      for (let i = 0; i < 8; i++) fillers.push(kv.put('f', value(1), { timeoutMs: 10_000 }));
      // The ring holds some five of these: A queues, and times out.
      const a = refused(kv.put('a', value(0xaa), { timeoutMs: 60 }));
      expect((await a).code).toBe(ErrorCode.TIMEOUT);
      // B takes the memory A gave back, and queues behind A.
      const b = refused(kv.put('b', value(0xbb), { timeoutMs: 60 }));
      expect((await b).code).toBe(ErrorCode.TIMEOUT);
      // Now the node reads everything, as the queue moves into the ring.
      await serveUntilQuiet(serve);
      expect(sent.filter((v) => v === 0xaa)).toHaveLength(1);
      expect(sent.filter((v) => v === 0xbb)).toHaveLength(1);
      expect(sent.indexOf(0xaa)).toBeLessThan(sent.indexOf(0xbb));
      endpoint.close();
      for (const f of fillers) await f.catch((e: unknown) => expect((e as RingraftError).code).toBe(ErrorCode.CLOSED));
    } finally {
      endpoint.close();
    }
  });

  it('still queued behind a full ring when its call timed out, a read goes out as itself, not as the next call that took its attempt', async () => {
    const { endpoint, kv, requests, reply } = handNode({ requestRingBytes: 1024, requestTimeoutMs: 60_000 });
    /** The key of every read the node has been sent, and the request ids of all reads. */
    const keys: string[] = [];
    const ids: number[] = [];
    const serve = servingReads(requests, reply, (req) => {
      if (req.kind !== 'read') return;
      ids.push(req.requestId);
      keys.push(new TextDecoder().decode(req.key));
    });
    try {
      const key = (k: string): string => k.padEnd(150, '.');
      // Reads that fill the ring (some six of these fit), answered only once the node reads.
      const fillers = Array.from({ length: 8 }, () => kv.get(key('f'), { timeoutMs: 10_000 }));
      // A queues and times out; its attempt is ended, and B's takes its place.
      expect((await refused(kv.get(key('a'), { timeoutMs: 60 }))).code).toBe(ErrorCode.TIMEOUT);
      const b = refused(kv.get(key('b'), { timeoutMs: 60 }));
      expect((await b).code).toBe(ErrorCode.TIMEOUT);
      await serveUntilQuiet(serve);
      expect(keys.filter((k) => k === key('a'))).toHaveLength(1);
      expect(keys.filter((k) => k === key('b'))).toHaveLength(1);
      expect(new Set(ids).size).toBe(ids.length);
      endpoint.close();
      for (const f of fillers) await f.catch((e: unknown) => expect((e as RingraftError).code).toBe(ErrorCode.CLOSED));
    } finally {
      endpoint.close();
    }
  });

  it('still queued behind a full ring, goes out with the bytes its caller gave, whatever the caller does to them after the call', async () => {
    const { endpoint, kv, requests, reply } = handNode({ requestRingBytes: 1024, requestTimeoutMs: 60_000 });
    const keys: string[] = [];
    const prefixes: string[] = [];
    const serve = servingReads(requests, reply, (req) => {
      if (req.kind === 'watch') prefixes.push(new TextDecoder().decode(req.prefix));
      if (req.kind === 'read') keys.push(new TextDecoder().decode(req.key));
    });
    try {
      const filler = 'f'.padEnd(150, '.');
      const calls: Promise<unknown>[] = Array.from({ length: 8 }, () => kv.get(filler));
      // Queued behind the fillers, then changed by their callers at once.
      const key = new TextEncoder().encode('key-as-given'.padEnd(150, '.'));
      calls.push(kv.get(key));
      key.fill(0x21);
      const prefix = new TextEncoder().encode('prefix-as-given');
      const watcher = kv.watch(prefix);
      prefix.fill(0x21);
      await serveUntilQuiet(serve);
      await Promise.all(calls);
      expect(keys.filter((k) => k !== filler)).toEqual(['key-as-given'.padEnd(150, '.')]);
      expect(prefixes).toEqual(['prefix-as-given']);
      void watcher;
    } finally {
      endpoint.close();
    }
  });

  it('gives back its slot, its session and its memory when its first attempt throws', async () => {
    const { endpoint, kv, requests, reply } = handNode({ requestTimeoutMs: 200, requestsInFlightMax: 2 });
    const serve = servingWrites(requests, reply);
    const attempt = endpoint.attempt.bind(endpoint);
    let throwing = false;
    endpoint.attempt = (...args: Parameters<typeof attempt>): void => {
      if (throwing) throw new Error('the host refused');
      attempt(...args);
    };
    try {
      await whileServing(serve, kv.put('k', 'first'));
      throwing = true;
      // Twice the endpoint's two slots: if a failure kept its slot, the third would wait, then time out.
      for (let i = 0; i < 4; i++) await expect(kv.put('k', 'refused')).rejects.toThrow('the host refused');
      expect(endpoint.requestBuffers.slotsInUse).toBe(0);
      throwing = false;
      await whileServing(serve, Promise.all([kv.put('k', 'a'), kv.put('k', 'b')]));
    } finally {
      endpoint.close();
    }
  });

  it('keeps no attempt whose sending threw: the failed call is not retried later by a sweep that finds it', async () => {
    const { endpoint, kv, requests, reply } = handNode({ requestTimeoutMs: 100 });
    const serve = servingWrites(requests, reply);
    try {
      await whileServing(serve, kv.put('k', 'first'));
      const outbox = (endpoint as unknown as { nodes: Map<number, { requests: { send: (...args: unknown[]) => void } }> }).nodes.get(1)!.requests;
      const send = outbox.send.bind(outbox);
      outbox.send = () => {
        throw new Error('the ring broke');
      };
      await expect(kv.put('k', 'lost')).rejects.toThrow('the ring broke');
      outbox.send = send;
      // Another call starts the deadline sweep; past the failed attempt's deadline, a kept
      // attempt would time out and its call send the failed write again.
      const values: string[] = [];
      const watching = servingWrites(requests, reply, (value) => values.push(new TextDecoder().decode(value)));
      const slow = kv.put('k', 'next', { timeoutMs: 1_000 });
      for (const end = performance.now() + 400; performance.now() < end; ) await new Promise((r) => setTimeout(r, 5));
      await whileServing(watching, slow);
      // (The slow put itself may go twice: its first attempt, unanswered, timed out.)
      expect(values).toContain('next');
      expect(values).not.toContain('lost');
      expect(endpoint.requestBuffers.slotsInUse).toBe(0);
    } finally {
      endpoint.close();
    }
  });

  it('holds a slot for every write an endpoint lets be in flight', () => {
    const endpoint = new ClientEndpoint({ requestTimeoutMs: 1_000, electionTimeoutMs: 10, requestsInFlightMax: REQUESTS_IN_FLIGHT_MAX }, { nodeIds: () => [1], isAlive: () => true });
    try {
      expect(endpoint.requestBuffers.slotsMax).toBe(REQUEST_SLOTS_MAX);
      expect(REQUEST_SLOTS_MAX).toBeGreaterThanOrEqual(REQUESTS_IN_FLIGHT_MAX);
      expect(endpoint.requestBuffers.slabBytes).toBe(0);
    } finally {
      endpoint.close();
    }
  });
});
