// The node server's client bridge on its own, with a fake node and fake connections: request
// ids remapped per connection and back, forwarding to a known leader and the replies coming
// back, and the bound on requests waiting for the node, which a request forwarded from a
// follower meets as a client's does.

import { describe, expect, it } from 'vitest';
import { ErrorCode, type RingraftError } from '../../src/base/index.ts';
import { decodeReply, encodedReplyBytes, encodedRequestBytes, Outbox, writeReply, writeRequest, type ClientReply, type ClientRequest } from '../../src/runtime/index.ts';
import { ClientBridge, REQUEST_QUEUE_BYTES_MAX, type ClientBridgeHost } from '../../src/server/client-bridge.ts';
import { bytesCodec, FORWARD_HEADER_BYTES, FORWARD_REPLY, FORWARD_REQUEST, forwardFrame } from '../../src/server/frames.ts';
import { createLogger } from '../../src/server/log.ts';
import { createRing, RingConsumer, RingProducer, type ClientConnectionHandle, type TcpLane } from '../../src/transport/index.ts';

function request(req: ClientRequest): Uint8Array {
  const frame = new Uint8Array(encodedRequestBytes(req));
  writeRequest(req, frame);
  return frame;
}

function reply(r: ClientReply): Uint8Array {
  const frame = new Uint8Array(encodedReplyBytes(r));
  writeReply(r, frame);
  return frame;
}

class FakeConnection implements ClientConnectionHandle {
  static next = 1;
  readonly id = FakeConnection.next++;
  readonly remote = '127.0.0.1:1';
  isClosed = false;
  requestsInFlight = 0;
  readonly replies: ClientReply[] = [];
  closedWith: RingraftError | undefined;
  reply(frame: Uint8Array, endsRequest = true): boolean {
    if (endsRequest) this.requestsInFlight--;
    this.replies.push(decodeReply(new Uint8Array(frame)));
    return true;
  }
  endRequest(): void {
    this.requestsInFlight--;
  }
  close(error?: RingraftError): void {
    this.isClosed = true;
    this.closedWith = error;
  }
}

function bridge(options: { readonly nodeId?: number; readonly queued?: () => number } = {}) {
  const toNode: Uint8Array[] = [];
  const toPeers: { id: number; bytes: Uint8Array; lane: TcpLane }[] = [];
  const ring = createRing(1 << 16);
  const node = new Outbox(new RingProducer(ring), bytesCodec, Number.POSITIVE_INFINITY);
  const host: ClientBridgeHost = {
    nodeId: options.nodeId ?? 1,
    log: createLogger(1, 'error', () => undefined),
    isDraining: () => false,
    queuedToNodeBytes: options.queued ?? (() => 0),
    toNode: (frame) => toNode.push(new Uint8Array(frame)),
    isPeer: (id) => id === 2 || id === 3,
    sendToPeer: (id, bytes, lane) => (toPeers.push({ id, bytes: new Uint8Array(bytes), lane }), true),
    admin: async () => '{}',
  };
  const b = new ClientBridge(host, new RingConsumer(ring), ring);
  /** The node answers: a reply frame into its ring, then the bridge drains it. */
  const answer = (r: ClientReply): number => {
    node.send(reply(r));
    node.flush();
    return b.drainReplies(1024);
  };
  return { b, toNode, toPeers, answer };
}

const idOf = (frame: Uint8Array): number => new DataView(frame.buffer, frame.byteOffset).getUint32(1, true);

describe('client bridge', () => {
  it('gives two connections\' equal request ids distinct ids on the node, and hands each reply back under its own', () => {
    const { b, toNode, answer } = bridge();
    const [c1, c2] = [new FakeConnection(), new FakeConnection()];
    for (const c of [c1, c2]) {
      c.requestsInFlight++;
      b.onRequest(c, request({ kind: 'read', requestId: 77, consistency: 'stale', key: new Uint8Array([1]) }));
    }
    expect(toNode).toHaveLength(2);
    const [n1, n2] = toNode.map(idOf);
    expect(n1).not.toBe(n2);
    expect(b.requestsInFlight).toBe(2);
    answer({ kind: 'read', requestId: n2!, index: 5, value: new Uint8Array([2]) });
    expect(c2.replies).toEqual([{ kind: 'read', requestId: 77, index: 5, value: new Uint8Array([2]) }]);
    expect(c1.replies).toEqual([]);
    // A reply for a connection that closed finds no one.
    b.onConnectionClosed(c1);
    expect(answer({ kind: 'read', requestId: n1!, index: 5, value: undefined })).toBe(1);
    expect(c1.replies).toEqual([]);
    expect(b.requestsInFlight).toBe(0);
  });

  it('forwards a write to the known leader, says which node that is, and hands its reply back; a lost leader fails it as proposed', () => {
    const { b, toNode, toPeers } = bridge();
    b.knownLeader = 2;
    const c = new FakeConnection();
    b.onRequest(c, request({ kind: 'write', requestId: 9, data: new Uint8Array([1, 2, 3]) }));
    expect(toNode).toEqual([]);
    expect(toPeers).toHaveLength(1);
    const sent = toPeers[0]!;
    expect([sent.id, sent.lane, sent.bytes[0]]).toEqual([2, 'append', FORWARD_REQUEST]);
    const forwardId = idOf(sent.bytes);
    expect(b.fromForward(2, forwardFrame(FORWARD_REPLY, forwardId, reply({ kind: 'write', requestId: forwardId, result: { op: 'put' }, index: 4 })))).toBe(true);
    // The client is told who leads first (once per leader and connection), then gets its reply.
    expect(c.replies[0]).toEqual({ kind: 'leader', requestId: 9, leaderId: 2 });
    expect(c.replies.map((r) => [r.kind, r.requestId])).toEqual([['leader', 9], ['write', 9]]);
    expect(c.requestsInFlight).toBe(-1); // one request ended: the notice ends none
    b.onRequest(c, request({ kind: 'write', requestId: 10, data: new Uint8Array([1]) }));
    b.forwardsLost(2);
    expect(c.replies).toHaveLength(3);
    expect(c.replies[2]).toEqual({ kind: 'error', requestId: 10, code: ErrorCode.NOT_LEADER, leaderHint: 0, proposed: true });
    expect(b.knownLeader).toBe(0);
    expect(b.requestsAwaited()).toBe(0);
  });

  it('answers UNAVAILABLE past the bound on requests waiting for the node: a client\'s, and one a follower forwarded', () => {
    let queued = 0;
    const { b, toNode, toPeers } = bridge({ queued: () => queued });
    const c = new FakeConnection();
    const write = request({ kind: 'write', requestId: 1, data: new Uint8Array([1]) });
    queued = REQUEST_QUEUE_BYTES_MAX + 1;
    b.onRequest(c, write);
    expect(c.replies).toEqual([{ kind: 'error', requestId: 1, code: ErrorCode.UNAVAILABLE, leaderHint: 0, proposed: false }]);
    expect(b.fromForward(3, forwardFrame(FORWARD_REQUEST, 41, write))).toBe(true);
    expect(toNode).toEqual([]);
    expect(toPeers).toHaveLength(1);
    const back = toPeers[0]!;
    expect([back.id, back.bytes[0], idOf(back.bytes)]).toEqual([3, FORWARD_REPLY, 41]);
    expect(decodeReply(back.bytes.subarray(FORWARD_HEADER_BYTES))).toMatchObject({ kind: 'error', requestId: 41, code: ErrorCode.UNAVAILABLE });
    expect(b.requestsShed).toBe(2);
    // Under the bound, the forwarded request reaches the node.
    queued = 0;
    b.fromForward(3, forwardFrame(FORWARD_REQUEST, 42, write));
    expect(toNode).toHaveLength(1);
    // Too short to carry a request: refused, for the caller to count.
    expect(b.fromForward(3, new Uint8Array([FORWARD_REQUEST, 1, 0]))).toBe(false);
  });
});
