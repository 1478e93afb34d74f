// A reply that does not decode on a client's ring (a node's bug, or memory written by another
// hand) fails its own call with PROTOCOL_ERROR and is counted; the pump, the process and the
// calls after it go on. A frame too short to name its call is dropped and counted.
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/index.ts';
import { decodeRequest, encodedReplyBytes, writeReply, type ClientReply } from '../../src/runtime/index.ts';
import { handNode } from './hand-node.ts';
import { refused } from './helpers.ts';

describe('a malformed reply', () => {
  it('fails its own call with PROTOCOL_ERROR, and the client goes on', async () => {
    const { endpoint, kv, requests, push, reply } = handNode();
    /** Answers each read: the first with `bad(requestId)`, the rest with a value. */
    let answered = 0;
    const serve = (bad: (requestId: number) => Uint8Array): number =>
      requests.drain((frame) => {
        const req = decodeRequest(frame);
        if (req.kind !== 'read') return;
        if (answered++ === 0) return push(bad(req.requestId));
        reply({ kind: 'read', requestId: req.requestId, index: 1, value: Uint8Array.of(7) });
      });
    try {
      // A read reply whose value-present flag is 9: no such thing.
      const badRead = (requestId: number): Uint8Array => {
        const r: ClientReply = { kind: 'read', requestId, index: 1, value: undefined };
        const out = new Uint8Array(encodedReplyBytes(r));
        writeReply(r, out);
        out[out.length - 1] = 9;
        return out;
      };
      const first = refused(kv.get('k'));
      while (serve(badRead) === 0) await new Promise((r) => setImmediate(r));
      expect((await first).code).toBe(ErrorCode.PROTOCOL_ERROR);
      expect(endpoint.repliesMalformed).toBe(1);
      // The next call is answered as usual.
      const second = kv.get('k');
      while (serve(badRead) === 0) await new Promise((r) => setImmediate(r));
      expect(await second).toEqual(Uint8Array.of(7));
      // A frame too short to name its call: dropped and counted, and the call times out alone.
      answered = 0;
      const third = refused(kv.get('k', { timeoutMs: 100 }));
      while (serve(() => Uint8Array.of(2, 0)) === 0) await new Promise((r) => setImmediate(r));
      expect((await third).code).toBe(ErrorCode.TIMEOUT);
      expect(endpoint.repliesMalformed).toBe(2);
    } finally {
      endpoint.close();
    }
  });
});
