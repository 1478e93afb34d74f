// The client's pump drains a burst of replies in one turn of the event loop, chunk by chunk,
// letting each chunk's callers run between chunks (microtasks), rather than one chunk of 64
// per turn: a caller that starts many calls per timer turn (an open loop) then cannot starve
// the replies. A node played by hand on rings answers 150 reads at once; all 150 callers must
// have run before a macrotask queued after the first of them.
import { describe, expect, it } from 'vitest';
import { decodeRequest } from '../../src/runtime/index.ts';
import { handNode } from './hand-node.ts';

describe('the client pump', () => {
  it('dispatches a burst of replies within one turn of the event loop', async () => {
    const { endpoint, kv, requests, reply } = handNode({ requestTimeoutMs: 10_000, requestsInFlightMax: 1024 });
    try {
      const n = 150;
      let resolved = 0;
      const calls = Array.from({ length: n }, (_, i) => kv.get(`k${i}`, { consistency: 'stale', nodeId: 1 }).then((v) => {
        resolved++;
        return v;
      }));
      const ids: number[] = [];
      while (ids.length < n) {
        requests.drain((frame) => void ids.push(decodeRequest(frame).requestId));
        await new Promise((r) => setImmediate(r));
      }
      for (const requestId of ids) reply({ kind: 'read', requestId, index: 1, value: Uint8Array.of(7) });
      await calls[0];
      await new Promise((r) => setImmediate(r));
      expect(resolved).toBe(n);
      expect((await Promise.all(calls)).every((v) => v?.[0] === 7)).toBe(true);
    } finally {
      endpoint.close();
    }
  });
});
