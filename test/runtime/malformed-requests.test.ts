// Proves that no request a client can write stops a node. First by hand, as the worker
// does it: frames are written into a real ring and drained into NodeHost.handleRequestFrame
// on the leader of a hand-driven 3-node network. The cases of the bug report (a read of a key
// over 4,096 bytes, a watch of a prefix over it) and the rest of the class (truncated frames,
// lengths that run past the frame, unknown kinds and tags, unwatch with trailing bytes,
// writes that are empty or over the limit) are each refused with INVALID_ARGUMENT to their
// request id, or dropped and counted when too short to carry one. Then a fast-check property
// writes random frames and mutations of valid ones (truncated, extended, bytes flipped,
// length fields overwritten) and checks, against the reference decoder, that every frame
// gets exactly the answer it should and that the node still serves reads and writes after
// (a read frame whose kind byte is flipped may be a valid query, range or lease request).
// Last, through a real cluster on worker threads: the same frames, encoded by hand onto the
// request rings of a client link (bypassing the client's checks), are refused by every node,
// a ring whose memory is corrupted cuts off that link only, and every node stays up and serves.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteWriter } from '../../src/codec/index.ts';
import { ErrorCode } from '../../src/base/index.ts';
import type { Cluster } from '../../src/index.ts';
import {
  decodeReply,
  decodeRequest,
  encodedRequestBytes,
  WRITE_REQUEST_BYTES_MAX,
  writeRequestTo,
  type ClientReply,
  type ClientRequest,
} from '../../src/runtime/index.ts';
import { createRing, Doorbell, RingConsumer, RingProducer } from '../../src/transport/index.ts';
import { FAST, leaderOf, start, stopAfterEach } from '../cluster/helpers.ts';
import { bytesOf, HostNetwork, put, textOf, writeReq } from './helpers.ts';

stopAfterEach();

/** The worker numbers a client link's requests from link * 2^32: these frames come from link 1. */
const LINK = 2 ** 32;
const KEY_OVER_MAX = 5000;

function encode(req: ClientRequest): Uint8Array {
  const w = new ByteWriter(encodedRequestBytes(req));
  writeRequestTo(w, req);
  return w.finish();
}

const readOf = (requestId: number, key: Uint8Array, consistency: 'linearizable' | 'stale' = 'linearizable'): Uint8Array =>
  encode({ kind: 'read', requestId, consistency, key });
const watchOf = (requestId: number, prefix: Uint8Array, afterIndex?: number): Uint8Array => encode({ kind: 'watch', requestId, prefix, afterIndex });

/** A frame of `kind` and `requestId` followed by `rest`, built byte by byte. */
function rawFrame(kind: number, requestId: number, ...rest: number[]): Uint8Array {
  return Uint8Array.of(kind, requestId & 0xff, (requestId >>> 8) & 0xff, (requestId >>> 16) & 0xff, requestId >>> 24, ...rest);
}

/** A 3-node network led by node 1, and a ring from a client into node 1 drained as the worker drains it. */
function setup(ringBytes = 1 << 16) {
  const net = new HostNetwork([1, 2, 3]);
  net.elect(1);
  const buffer = createRing(ringBytes);
  const producer = new RingProducer(buffer);
  const consumer = new RingConsumer(buffer);
  const host = net.host(1);
  /** Writes the frames into the ring, then has node 1 take them and process what follows. */
  const send = (...frames: Uint8Array[]): void => {
    for (const f of frames) {
      if (!producer.tryPush(f)) throw new Error('the ring is full');
      consumer.drainRanges((memory, offset, length) => host.handleRequestFrame(memory, offset, length, LINK));
    }
    host.flush();
    net.deliverAll();
  };
  const repliesTo = (requestId: number): ClientReply[] => net.repliesTo(1, LINK + requestId);
  return { net, host, send, repliesTo };
}

const invalidError = (requestId: number): ClientReply => ({ kind: 'error', requestId: LINK + requestId, code: ErrorCode.INVALID_ARGUMENT, leaderHint: 0, proposed: false });
const invalidWatchEnd = (requestId: number): ClientReply => ({ kind: 'watch-end', requestId: LINK + requestId, code: ErrorCode.INVALID_ARGUMENT });

/** The node still serves: a write through it is answered and applied, a read sees it. */
function expectServing(net: HostNetwork, requestId: number): void {
  net.request(1, writeReq(requestId, 4242, 1, put('alive', `yes-${requestId}`)));
  net.deliverAll();
  expect(net.repliesTo(1, requestId)).toMatchObject([{ kind: 'write', result: { op: 'put' } }]);
  net.request(1, { kind: 'read', requestId: requestId + 1, consistency: 'linearizable', key: bytesOf('alive') });
  net.deliverAll();
  const [reply] = net.repliesTo(1, requestId + 1);
  expect(reply?.kind === 'read' ? textOf(reply.value) : reply).toBe(`yes-${requestId}`);
}

describe('a node takes malformed request frames from its ring without stopping', () => {
  it('a read of a key over KV_KEY_BYTES_MAX is refused with INVALID_ARGUMENT, at every consistency', () => {
    const { net, send, repliesTo } = setup();
    send(readOf(1, new Uint8Array(KEY_OVER_MAX)), readOf(2, new Uint8Array(KEY_OVER_MAX), 'stale'), readOf(3, new Uint8Array(4097)));
    for (const id of [1, 2, 3]) expect(repliesTo(id)).toEqual([invalidError(id)]);
    // At the limit, a read is served.
    send(readOf(4, new Uint8Array(4096)));
    expect(repliesTo(4)).toMatchObject([{ kind: 'read', value: undefined }]);
    expect(net.host(1).status().requestsRefusedInvalid).toBe(3);
    expectServing(net, 100);
  });

  it('a watch of a prefix over KV_KEY_BYTES_MAX is refused with a watch-end INVALID_ARGUMENT', () => {
    const { net, send, repliesTo } = setup();
    send(watchOf(1, new Uint8Array(KEY_OVER_MAX)), watchOf(2, new Uint8Array(KEY_OVER_MAX), 3));
    expect(repliesTo(1)).toEqual([invalidWatchEnd(1)]);
    expect(repliesTo(2)).toEqual([invalidWatchEnd(2)]);
    expectServing(net, 100);
  });

  it('truncated frames: refused when they carry a request id, dropped and counted when they do not', () => {
    const { net, host, send, repliesTo } = setup();
    const read = readOf(7, bytesOf('key'));
    const watch = watchOf(8, bytesOf('p'), 1);
    // Frames of 0 to 4 bytes hold no full request id.
    for (let length = 0; length < 5; length++) send(read.subarray(0, length));
    expect(host.status().requestFramesDropped).toBe(5);
    expect(net.node(1).replies).toEqual([]);
    for (let length = 5; length < read.length; length++) send(read.subarray(0, length));
    for (let length = 5; length < watch.length; length++) send(watch.subarray(0, length));
    expect(repliesTo(7)).toEqual(Array.from({ length: read.length - 5 }, () => invalidError(7)));
    expect(repliesTo(8)).toEqual(Array.from({ length: watch.length - 5 }, () => invalidWatchEnd(8)));
    expectServing(net, 100);
  });

  it('lengths that run past the frame, unknown kinds and tags, trailing bytes, bad flags: each refused', () => {
    const { net, send, repliesTo } = setup();
    send(
      // A read whose key length says 100 with 3 bytes after it; one that says 2^32 - 1.
      rawFrame(2, 1, 1, 100, 0, 0, 0, 0x61, 0x62, 0x63),
      rawFrame(2, 2, 1, 0xff, 0xff, 0xff, 0xff),
      // Unknown kinds, and the invalid kind 0.
      rawFrame(0, 3),
      rawFrame(5, 4, 1, 2, 3),
      rawFrame(255, 5),
      // An unknown read consistency.
      rawFrame(2, 6, 9, 1, 0, 0, 0, 0x61),
      // An unwatch with trailing bytes; a read with trailing bytes.
      rawFrame(4, 7, 0),
      rawFrame(2, 8, 1, 1, 0, 0, 0, 0x61, 0),
      // A watch whose start flag is 2, one whose prefix length runs past the frame, one whose afterIndex is past 2^53.
      rawFrame(3, 9, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
      rawFrame(3, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0),
      rawFrame(3, 11, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0),
    );
    for (const id of [1, 2, 3, 4, 5, 6, 7, 8]) expect(repliesTo(id)).toEqual([invalidError(id)]);
    for (const id of [9, 10, 11]) expect(repliesTo(id)).toEqual([invalidWatchEnd(id)]);
    expect(net.host(1).status().requestsRefusedInvalid).toBe(11);
    expectServing(net, 100);
  });

  it('writes straight from ring memory: an empty one and one over WRITE_REQUEST_BYTES_MAX are refused before they are proposed', () => {
    const { net, send, repliesTo } = setup(8 << 20);
    const lastIndex = net.host(1).raft.log.lastIndex();
    const over = new Uint8Array(5 + WRITE_REQUEST_BYTES_MAX + 1);
    over.set(rawFrame(1, 2));
    const good = encode(writeReq(3, 77, 1, put('k', 'v')));
    send(rawFrame(1, 1), over, good);
    expect(repliesTo(1)).toEqual([invalidError(1)]);
    expect(repliesTo(2)).toEqual([invalidError(2)]);
    expect(repliesTo(3)).toMatchObject([{ kind: 'write', result: { op: 'put' }, index: lastIndex + 1 }]);
    // A write whose bytes are not a KV request is proposed and refused when it applies, the same on every replica.
    send(rawFrame(1, 4, 9, 9, 9));
    expect(repliesTo(4)).toEqual([{ ...invalidError(4), proposed: true }]);
    expectServing(net, 100);
  });

  it('random frames and mutations of valid ones: each gets the answer the reference decoder says, and the node serves on', () => {
    const validArb: fc.Arbitrary<ClientRequest> = fc.oneof(
      fc.record({
        kind: fc.constant('read' as const),
        requestId: fc.constant(0),
        consistency: fc.constantFrom('linearizable' as const, 'lease' as const, 'stale' as const),
        key: fc.oneof(fc.uint8Array({ maxLength: 8 }), fc.integer({ min: 4090, max: 4200 }).map((n) => new Uint8Array(n))),
      }),
      fc.record({
        kind: fc.constant('watch' as const),
        requestId: fc.constant(0),
        afterIndex: fc.oneof(fc.constant(undefined), fc.integer({ min: 0, max: 40 }), fc.constant(2 ** 53 - 1)),
        prefix: fc.oneof(fc.uint8Array({ maxLength: 8 }), fc.integer({ min: 4090, max: 4200 }).map((n) => new Uint8Array(n))),
      }),
      fc.constant<ClientRequest>({ kind: 'unwatch', requestId: 0 }),
      fc.uint8Array({ minLength: 0, maxLength: 40 }).map((data): ClientRequest => ({ kind: 'write', requestId: 0, data })),
      // The kinds whose frames a mutated read can become (a flipped kind byte): each is answered once.
      fc.uint8Array({ maxLength: 8 }).map((data): ClientRequest => ({ kind: 'query', requestId: 0, consistency: 'linearizable', data })),
      fc.record({ kind: fc.constant('lease' as const), requestId: fc.constant(0), op: fc.constantFrom('keep-alive' as const, 'time-to-live' as const), id: fc.integer({ min: 0, max: 5 }) }),
    );
    type Mutation =
      | { op: 'truncate'; at: number }
      | { op: 'extend'; bytes: Uint8Array }
      | { op: 'flip'; at: number; value: number }
      | { op: 'length'; at: number; value: number };
    const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
      fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ op: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }) }),
      fc.record({ op: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ op: fc.constant('length' as const), at: fc.nat(), value: fc.oneof(fc.nat({ max: 64 }), fc.constant(0xffff_ffff), fc.integer({ min: 4097, max: 1 << 20 })) }),
    );
    const mutate = (frame: Uint8Array, m: Mutation): Uint8Array => {
      switch (m.op) {
        case 'truncate':
          return frame.slice(0, m.at % (frame.length + 1));
        case 'extend':
          return Uint8Array.of(...frame, ...m.bytes);
        case 'flip': {
          const out = frame.slice();
          if (out.length > 0) out[m.at % out.length] = m.value;
          return out;
        }
        case 'length': {
          const out = frame.slice();
          if (out.length >= 4) new DataView(out.buffer).setUint32(m.at % (out.length - 3), m.value, true);
          return out;
        }
      }
    };
    const frameArb = fc.oneof(
      { weight: 2, arbitrary: fc.uint8Array({ maxLength: 48 }) },
      { weight: 1, arbitrary: validArb.map(encode) },
      { weight: 4, arbitrary: fc.tuple(validArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 })).map(([req, ms]) => ms.reduce(mutate, encode(req))) },
    );
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 25 }), (frames) => {
        const { net, host, send, repliesTo } = setup();
        let dropped = 0;
        // Each frame gets its own request id (bytes 1-4), so its answers can be told apart.
        const sent = frames.map((f, i) => {
          if (f.length < 5) {
            dropped++;
            return f;
          }
          const out = f.slice();
          new DataView(out.buffer).setUint32(1, i + 1, true);
          return out;
        });
        const lastBefore = host.raft.log.lastIndex();
        send(...sent);
        net.tickAll(2);
        expect(host.status().requestFramesDropped).toBe(dropped);
        sent.forEach((f, i) => {
          if (f.length < 5) return;
          const id = i + 1;
          const replies = repliesTo(id);
          const kind = f[0];
          if (kind === 1) {
            const payload = f.length - 5;
            if (payload === 0 || payload > WRITE_REQUEST_BYTES_MAX) {
              expect(replies).toEqual([invalidError(id)]);
            } else {
              // Proposed: answered once, when it applies, whatever its bytes hold.
              expect(replies).toHaveLength(1);
              expect(['write', 'error']).toContain(replies[0]!.kind);
              if (replies[0]!.kind === 'error') expect(replies[0]).toMatchObject({ proposed: true });
            }
            return;
          }
          let req: ClientRequest | undefined;
          try {
            req = decodeRequest(f);
          } catch {
            req = undefined;
          }
          const over = req !== undefined && ((req.kind === 'read' && req.key.length > 4096) || (req.kind === 'watch' && req.prefix.length > 4096));
          if (req === undefined || over) {
            expect(replies).toEqual([kind === 3 ? invalidWatchEnd(id) : invalidError(id)]);
          } else if (req.kind === 'read') {
            expect(replies).toMatchObject([{ kind: 'read' }]);
          } else if (req.kind === 'watch') {
            if (req.afterIndex !== undefined && req.afterIndex > lastBefore) expect(replies).toEqual([invalidWatchEnd(id)]);
            else expect(replies[0]).toMatchObject({ kind: 'watch-start' });
          } else if (req.kind === 'admin') {
            // An admin command is the node server's to answer; the node's thread refuses it.
            expect(replies).toEqual([invalidError(id)]);
          } else if (req.kind === 'unwatch') {
            expect(replies).toEqual([]);
          } else {
            // A range read, a lease request, a query or a Redis read that decodes (a random
            // frame can be one: a query of no bytes is ten): answered once, by a reply of its
            // kind or a typed refusal.
            const replyKind = ({ range: 'range', lease: 'lease', query: 'read', redis: 'read' } as Record<string, string>)[req.kind];
            expect(replyKind).toBeDefined();
            expect(replies).toHaveLength(1);
            expect([replyKind, 'error']).toContain(replies[0]!.kind);
          }
        });
        // Every answer went to a request of this link.
        for (const r of net.node(1).replies) expect(r.requestId).toBeGreaterThan(LINK);
        expectServing(net, 1000);
      }),
      { numRuns: 150 },
    );
  });
});

/** A client link to every node of `cluster`, driven by hand: raw frames in, decoded replies out. */
async function rawLink(cluster: Cluster) {
  const descriptor = await cluster.connectEndpoint();
  const links = new Map(
    descriptor.links.map((l) => [
      l.nodeId,
      {
        buffer: l.requestRing,
        producer: new RingProducer(l.requestRing, { doorbell: new Doorbell(l.nodeDoorbell) }),
        consumer: new RingConsumer(l.replyRing),
        replies: [] as ClientReply[],
      },
    ]),
  );
  const send = (nodeId: number, frame: Uint8Array): void => {
    if (!links.get(nodeId)!.producer.tryPush(frame)) throw new Error('the request ring is full');
  };
  /** Waits until node `nodeId` has answered every id in `ids` (replies keep their order). */
  const replies = async (nodeId: number, ids: readonly number[], timeoutMs = 5_000): Promise<ClientReply[]> => {
    const link = links.get(nodeId)!;
    const deadline = Date.now() + timeoutMs;
    while (!ids.every((id) => link.replies.some((r) => r.requestId === id))) {
      if (Date.now() > deadline) throw new Error(`node ${nodeId} answered only ${JSON.stringify(link.replies.map((r) => [r.requestId, r.kind]))}`);
      for (let f = link.consumer.tryPop(); f !== undefined; f = link.consumer.tryPop()) link.replies.push(decodeReply(f));
      await new Promise((r) => setTimeout(r, 5));
    }
    return ids.map((id) => link.replies.find((r) => r.requestId === id)!);
  };
  return { links, send, replies };
}

async function expectAllAliveAndServing(cluster: Cluster): Promise<void> {
  const status = await cluster.status();
  expect(status.nodes.map((n) => [n.id, n.alive, n.error])).toEqual([
    [1, true, undefined],
    [2, true, undefined],
    [3, true, undefined],
  ]);
  const kv = cluster.client();
  await kv.put('after', 'still here', { timeoutMs: 10_000 });
  expect(textOf(await kv.get('after'))).toBe('still here');
  for (const nodeId of [1, 2, 3]) {
    for (let tries = 0; ; tries++) {
      const value = await kv.get('after', { consistency: 'stale', nodeId });
      if (textOf(value) === 'still here') break;
      if (tries > 200) throw new Error(`node ${nodeId} does not catch up`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

describe('a real cluster, with frames encoded by hand past the client\'s checks', () => {
  it('every node refuses an over-long key, prefix and the rest with INVALID_ARGUMENT, and stays up', async () => {
    const cluster = await start({ ...FAST });
    await cluster.client().put('before', 'x');
    const { send, replies } = await rawLink(cluster);
    for (const nodeId of [1, 2, 3]) {
      send(nodeId, readOf(1, new Uint8Array(KEY_OVER_MAX)));
      send(nodeId, readOf(2, new Uint8Array(KEY_OVER_MAX), 'stale'));
      send(nodeId, watchOf(3, new Uint8Array(KEY_OVER_MAX)));
      send(nodeId, watchOf(4, bytesOf(''), 2 ** 40));
      send(nodeId, rawFrame(2, 5, 1, 100, 0, 0, 0, 0x61));
      send(nodeId, rawFrame(9, 6));
      send(nodeId, Uint8Array.of(2, 1, 0));
      send(nodeId, rawFrame(1, 7));
      send(nodeId, readOf(8, bytesOf('before'), 'stale'));
    }
    for (const nodeId of [1, 2, 3]) {
      const [r1, r2, r3, r4, r5, r6, r7, r8] = await replies(nodeId, [1, 2, 3, 4, 5, 6, 7, 8]);
      for (const r of [r1, r2, r5, r6, r7]) expect(r).toMatchObject({ kind: 'error', code: ErrorCode.INVALID_ARGUMENT, proposed: false });
      // A watch after an index far in the future is refused at once, not left waiting.
      for (const r of [r3, r4]) expect(r).toMatchObject({ kind: 'watch-end', code: ErrorCode.INVALID_ARGUMENT });
      // The frame after the bad ones was served.
      expect(r8).toMatchObject({ kind: 'read' });
    }
    await expectAllAliveAndServing(cluster);
  });

  it('a request ring whose memory is corrupted cuts off that client link only; the node stays up', async () => {
    const cluster = await start({ ...FAST });
    const leader = await leaderOf(cluster);
    const { links, send, replies } = await rawLink(cluster);
    // A frame whose header is overwritten after it was staged, then published: not a frame.
    const link = links.get(leader)!;
    const r = link.producer.tryReserve(16)!;
    r.stage();
    new Int32Array(link.buffer)[(r.offsetBytes - 8) >> 2] = 0x1234_5678;
    link.producer.publish();
    await new Promise((resolve) => setTimeout(resolve, 200));
    await expectAllAliveAndServing(cluster);
    // The other nodes still serve this link.
    const other = [1, 2, 3].find((id) => id !== leader)!;
    send(other, readOf(1, bytesOf('after'), 'stale'));
    const [reply] = await replies(other, [1]);
    expect(reply).toMatchObject({ kind: 'read' });
  });
});
