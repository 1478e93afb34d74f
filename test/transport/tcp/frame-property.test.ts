// Proves the frame decoder against random input with fast-check. (1) A valid stream of random
// frames (batches of random messages, pings, pongs, handshakes, refusals), cut into chunks at
// random points, decodes to exactly the frames and messages encoded, whatever the cuts. (2) The
// same stream with a random mutation (a byte changed, bytes inserted or cut out, a length
// rewritten, the stream truncated) is refused: the decoder throws a TcpTransportError
// (CORRUPT_FRAME or FRAME_TOO_LARGE) and nothing else, or is left inside a frame at the end of
// the stream (which the connection reports as CORRUPT_FRAME); and it never allocates more
// than the frame limit allows. (3) Random bytes behave the same.
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../src/base/index.ts';
import {
  FRAME_OVERHEAD_BYTES,
  FrameDecoder,
  FrameType,
  TcpTransportError,
  encodeBatchFrame,
  encodeFrame,
  encodeHandshake,
  encodeRefusal,
  forEachBatchMessage,
} from '../../../src/transport/tcp/index.ts';

const FRAME_BYTES_MAX = 2048;

interface Frame {
  readonly type: number;
  readonly payload: Uint8Array;
  /** For a batch: its messages. */
  readonly messages?: readonly Uint8Array[];
}

const messagesArb = fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 6 });

const frameArb: fc.Arbitrary<{ frame: Frame; bytes: Buffer }> = fc.oneof(
  {
    weight: 5,
    arbitrary: messagesArb.map((messages) => {
      const payloadBytes = messages.reduce((n, m) => n + 4 + m.length, 0);
      const bytes = encodeBatchFrame(messages, 0, messages.length, payloadBytes);
      return { frame: { type: FrameType.BATCH, payload: bytes.subarray(8, bytes.length - 4), messages }, bytes };
    }),
  },
  { weight: 1, arbitrary: fc.constantFrom(FrameType.PING, FrameType.PONG).map((type) => ({ frame: { type, payload: new Uint8Array(0) }, bytes: encodeFrame(type) })) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom('control' as const, 'append' as const, 'snapshot' as const), fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }), fc.integer({ min: 1, max: 1000 })).map(([lane, clusterId, id]) => {
      const bytes = encodeHandshake(FrameType.HELLO, lane, clusterId, id, id + 1);
      return { frame: { type: FrameType.HELLO, payload: bytes.subarray(8, 40) }, bytes };
    }),
  },
  {
    weight: 1,
    arbitrary: fc.string({ maxLength: 40 }).map((detail) => {
      const bytes = encodeRefusal('sender', detail);
      return { frame: { type: FrameType.REFUSAL, payload: bytes.subarray(8, bytes.length - 4) }, bytes };
    }),
  },
);

const streamArb = fc.array(frameArb, { minLength: 1, maxLength: 8 });

/** Cut points as fractions, turned into chunk boundaries of a stream of any length. */
const cutsArb = fc.array(fc.integer({ min: 0, max: 10_000 }), { maxLength: 12 });

function chunksOf(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.floor((c / 10_000) * bytes.length)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    if (p < from) continue;
    // Each chunk in its own memory, as a socket delivers it.
    chunks.push(Uint8Array.from(bytes.subarray(from, p)));
    from = p;
  }
  return chunks;
}

/** Decodes `chunks`; what came out, and the typed error if one was thrown (anything else fails the test). */
function decode(chunks: readonly Uint8Array[]): { frames: Frame[]; error: TcpTransportError | undefined; decoder: FrameDecoder } {
  const decoder = new FrameDecoder(FRAME_BYTES_MAX);
  const frames: Frame[] = [];
  try {
    for (const chunk of chunks) {
      decoder.push(chunk, (type, payload) => {
        frames.push({ type, payload: Uint8Array.from(payload) });
        return true;
      });
    }
  } catch (error) {
    if (!(error instanceof TcpTransportError)) throw error;
    return { frames, error, decoder };
  }
  return { frames, error: undefined, decoder };
}

type Mutation =
  | { kind: 'set'; at: number; xor: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'cut'; at: number; length: number }
  | { kind: 'length'; frame: number; value: number }
  | { kind: 'truncate'; at: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('length' as const), frame: fc.nat(), value: fc.oneof(fc.nat({ max: 4096 }), fc.constant(0xffff_ffff), fc.nat()) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

/** `bytes` with the mutation applied; undefined if it would not change them. */
function mutate(bytes: Buffer, frameStarts: readonly number[], m: Mutation): Buffer | undefined {
  const out = Buffer.from(bytes);
  switch (m.kind) {
    case 'set':
      out[m.at % out.length] ^= m.xor;
      return out;
    case 'insert': {
      const at = m.at % (out.length + 1);
      return Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
    }
    case 'cut': {
      const at = m.at % out.length;
      const end = Math.min(out.length, at + m.length);
      // Cutting out whole frames (a PING is 12 bytes) leaves a valid, shorter stream: not a mutation.
      const boundaries = [...frameStarts, out.length];
      if (boundaries.includes(at) && boundaries.includes(end)) return undefined;
      return Buffer.concat([out.subarray(0, at), out.subarray(end)]);
    }
    case 'length': {
      const at = frameStarts[m.frame % frameStarts.length]!;
      if (out.readUInt32LE(at) === m.value >>> 0) return undefined;
      out.writeUInt32LE(m.value >>> 0, at);
      return out;
    }
    case 'truncate': {
      const at = m.at % out.length;
      // A cut exactly between frames leaves a valid, shorter stream: not a mutation.
      return frameStarts.includes(at) ? undefined : out.subarray(0, at);
    }
  }
}

describe('FrameDecoder, property', () => {
  it('reassembles any split of a valid stream exactly', () => {
    fc.assert(
      fc.property(streamArb, cutsArb, (stream, cuts) => {
        const bytes = Buffer.concat(stream.map((f) => f.bytes));
        const { frames, error, decoder } = decode(chunksOf(bytes, cuts));
        expect(error).toBeUndefined();
        expect(decoder.partialBytes).toBe(0);
        expect(frames.map((f) => f.type)).toEqual(stream.map((f) => f.frame.type));
        frames.forEach((f, i) => {
          expect(f.payload).toEqual(Uint8Array.from(stream[i]!.frame.payload));
          const messages = stream[i]!.frame.messages;
          if (messages !== undefined) {
            const out: Uint8Array[] = [];
            forEachBatchMessage(f.payload, (m) => (out.push(Uint8Array.from(m)), true));
            expect(out).toEqual(messages.map((m) => Uint8Array.from(m)));
          }
        });
        expect(decoder.allocatedBytesMax).toBeLessThanOrEqual(FRAME_BYTES_MAX - 8);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses any mutation with a typed error (or a frame cut short), never allocating past the limit', () => {
    fc.assert(
      fc.property(streamArb, mutationArb, cutsArb, (stream, mutation, cuts) => {
        const bytes = Buffer.concat(stream.map((f) => f.bytes));
        const frameStarts: number[] = [];
        stream.reduce((at, f) => (frameStarts.push(at), at + f.bytes.length), 0);
        const mutated = mutate(bytes, frameStarts, mutation);
        fc.pre(mutated !== undefined && !mutated.equals(bytes));
        const { frames, error, decoder } = decode(chunksOf(mutated!, cuts));
        const refused = error !== undefined || decoder.partialBytes > 0;
        // A cut can leave another valid stream, every frame one of the originals (a cut of one
        // frame's length whose first byte the next frame shares): not a mutation either.
        const original = (f: Frame): boolean => stream.some((o) => o.frame.type === f.type && Buffer.from(o.frame.payload).equals(f.payload));
        fc.pre(refused || !frames.every(original));
        expect(refused).toBe(true);
        if (error !== undefined) expect([ErrorCode.CORRUPT_FRAME, ErrorCode.FRAME_TOO_LARGE]).toContain(error.code);
        expect(decoder.allocatedBytesMax).toBeLessThanOrEqual(FRAME_BYTES_MAX - 8);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses random bytes the same way', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 4096 }), cutsArb, (bytes, cuts) => {
        const { frames, error, decoder } = decode(chunksOf(bytes, cuts));
        // A run of random bytes is a frame with odds of 2^-32 (its CRC); count it as refused only otherwise.
        if (frames.length === 0) expect(error !== undefined || decoder.partialBytes > 0).toBe(true);
        expect(decoder.allocatedBytesMax).toBeLessThanOrEqual(FRAME_BYTES_MAX - FRAME_OVERHEAD_BYTES + 4);
      }),
      { numRuns: 500 },
    );
  });
});
