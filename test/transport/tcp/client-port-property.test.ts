// Proves with fast-check that a client byte stream (HELLO, then batches of real request
// frames and pings), cut at any points, reassembles on a real server into exactly the
// requests sent, in order: the chunks are written to a raw socket one by one.
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeBatchFrame, encodeClientHandshake, encodeFrame, FrameType } from '../../../src/transport/tcp/index.ts';
import { rawClient, sleep, waitFor } from './helpers.ts';
import { CLIENT_CLUSTER_ID, clientPortResources, readFrame } from './client-port-helpers.ts';

const { serve } = clientPortResources();

describe('client port stream reassembly', () => {
  it('any split of a valid client stream delivers exactly its requests', async () => {
    const { server, requests } = await serve();
    let nextId = 1;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 6 }), fc.array(fc.integer({ min: 1, max: 400 }), { maxLength: 12 }), async (batches, cuts) => {
        requests.length = 0;
        const frames: Uint8Array[] = [];
        const parts: Buffer[] = [encodeClientHandshake(FrameType.HELLO, CLIENT_CLUSTER_ID, 1 << 20, 0)];
        for (const keys of batches) {
          const batch = keys.map((k) => readFrame(nextId++, k));
          frames.push(...batch);
          parts.push(encodeBatchFrame(batch, 0, batch.length, batch.reduce((n, f) => n + 4 + f.length, 0)), encodeFrame(FrameType.PING));
        }
        const stream = Buffer.concat(parts);
        const socket = await rawClient(server.address);
        let at = 0;
        for (const cut of cuts) {
          if (at >= stream.length) break;
          socket.write(stream.subarray(at, Math.min(stream.length, at + cut)));
          at += cut;
          await sleep(0);
        }
        if (at < stream.length) socket.write(stream.subarray(at));
        await waitFor(() => requests.length === frames.length, 'every request');
        expect(requests.map((r) => Buffer.from(r.frame))).toEqual(frames.map((f) => Buffer.from(f)));
        socket.destroy();
      }),
      { numRuns: 40 },
    );
  });
});
