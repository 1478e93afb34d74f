// A client endpoint linked by rings to a node played by hand: the test reads the requests
// from one ring and writes the replies it chooses into the other.
import { expect } from 'vitest';
import { ClientEndpoint } from '../../src/cluster/endpoint.ts';
import { KvClient } from '../../src/index.ts';
import { encodedReplyBytes, writeReply, type ClientReply } from '../../src/runtime/index.ts';
import { createRing, Doorbell, RingConsumer, RingProducer } from '../../src/transport/index.ts';

export interface HandNode {
  readonly endpoint: ClientEndpoint;
  readonly kv: KvClient;
  /** The client's requests, as the node would read them. */
  readonly requests: RingConsumer;
  /** Writes raw reply bytes into the reply ring (it must have room). */
  push(frame: Uint8Array): void;
  /** Encodes `r` and pushes it. */
  reply(r: ClientReply): void;
}

export function handNode(options: { requestRingBytes?: number; requestTimeoutMs?: number; requestsInFlightMax?: number } = {}): HandNode {
  const requestRing = createRing(options.requestRingBytes ?? 1 << 16);
  const replyRing = createRing(1 << 16);
  const endpoint = new ClientEndpoint(
    { requestTimeoutMs: options.requestTimeoutMs ?? 5_000, electionTimeoutMs: 10, requestsInFlightMax: options.requestsInFlightMax ?? 64 },
    { nodeIds: () => [1], isAlive: () => true },
  );
  endpoint.addLink({ nodeId: 1, requestRing, replyRing, nodeDoorbell: Doorbell.create().buffer });
  const replies = new RingProducer(replyRing, { doorbell: endpoint.doorbell });
  const push = (frame: Uint8Array): void => void expect(replies.tryPush(frame)).toBe(true);
  return {
    endpoint,
    kv: new KvClient(endpoint),
    requests: new RingConsumer(requestRing),
    push,
    reply: (r) => {
      const frame = new Uint8Array(encodedReplyBytes(r));
      writeReply(r, frame);
      push(frame);
    },
  };
}
