/**
 * Frames: how the TCP peer transport cuts a byte stream into checked records, and the batch
 * frame that carries messages. The handshake payloads are in handshake.ts; what travels when
 * is in tcp-transport.ts.
 *
 * ## Frame
 *
 * Every byte on a peer connection belongs to a frame. All integers are little-endian.
 *
 * ```
 *  ┌──────────────────┬─────────┬───────────────┬────────────────────────┬─────────────┐
 *  │ u32 payloadBytes │ u8 type │ u8[3] zero    │ payload (payloadBytes) │ u32 crc     │
 *  └──────────────────┴─────────┴───────────────┴────────────────────────┴─────────────┘
 *   0                  4         5               8                        8 + n         12 + n
 * ```
 *
 * | offset | bytes | field          | meaning                                                          |
 * | -----: | ----: | -------------- | ---------------------------------------------------------------- |
 * | 0      | 4     | `payloadBytes` | n, the payload's length; 12 + n <= `frameBytesMax`                |
 * | 4      | 1     | `type`         | {@link FrameType}; 0 is invalid, so zeroed bytes never parse      |
 * | 5      | 3     | reserved       | zero; anything else is refused                                    |
 * | 8      | n     | payload        | as the type says (table below)                                    |
 * | 8 + n  | 4     | `crc`          | CRC-32 (IEEE, `zlib.crc32`) of bytes [0, 8 + n): header and payload |
 *
 * | type | name      | sent by       | payload                                                       |
 * | ---: | --------- | ------------- | ------------------------------------------------------------- |
 * | 0    | (invalid) |               |                                                               |
 * | 1    | HELLO     | dialler, first | handshake, 32 bytes (handshake.ts)                            |
 * | 2    | WELCOME   | acceptor      | handshake, 32 bytes: the HELLO mirrored (handshake.ts)        |
 * | 3    | REFUSAL   | acceptor      | u8 reason, u8[3] zero, UTF-8 detail of at most 256 bytes      |
 * | 4    | BATCH     | dialler       | one or more messages, each `u32 messageBytes` then its bytes  |
 * | 5    | PING      | dialler       | empty                                                         |
 * | 6    | PONG      | acceptor      | empty: the answer to a PING                                   |
 * | 7    | GOAWAY    | either        | a last frame: u16 code, u8[2] zero, UTF-8 detail of at most 256 bytes (client-handshake.ts); the client port's when it cuts a client off, the peer transport's (code CLOSED) when its node stops |
 *
 * The client port (client-port.ts) speaks the same frames with its own handshake payloads:
 * the client dials and sends HELLO and PINGs, the server answers WELCOME or REFUSAL and PONGs,
 * BATCH frames go both ways, and GOAWAY tells a client why the server cut it off, or a peer
 * that this node is stopping (so that its peers log the close, and the failed dials after it,
 * as expected rather than as faults).
 *
 * ## Decoding
 *
 * {@link FrameDecoder} takes the stream in chunks as the socket delivers them. It reads a
 * header first and checks it before it allocates or waits for anything more: the type is
 * known, the reserved bytes are zero, the payload length is one its type allows, and the
 * whole frame is within `frameBytesMax`. A frame that lies whole inside one chunk is handed
 * out as a view of that chunk (no copy); one that spans chunks is assembled in a buffer of
 * exactly its size, which the header check has bounded. The CRC is checked before a frame is
 * handed out. Any failure throws a {@link TcpTransportError} (CORRUPT_FRAME, or
 * FRAME_TOO_LARGE for a length past the limit), and the connection is closed: a stream has no
 * way to find the next frame after a bad one.
 */
import { Buffer } from 'node:buffer';
import * as zlib from 'node:zlib';
import { fail, getU32, putU32 } from '../../base/index.ts';
import { TcpTransportError } from './errors.ts';

/** The frame types. 0 is invalid. */
export const FrameType = { HELLO: 1, WELCOME: 2, REFUSAL: 3, BATCH: 4, PING: 5, PONG: 6, GOAWAY: 7 } as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];
const FRAME_TYPE_MAX = 7;
const FRAME_TYPE_NAMES = ['invalid', 'HELLO', 'WELCOME', 'REFUSAL', 'BATCH', 'PING', 'PONG', 'GOAWAY'] as const;

/** Bytes of a frame header: payload length, type, three reserved bytes. */
export const FRAME_HEADER_BYTES = 8;
/** Bytes of a frame's trailing CRC. */
export const FRAME_CRC_BYTES = 4;
/** What a frame costs beyond its payload. */
export const FRAME_OVERHEAD_BYTES = FRAME_HEADER_BYTES + FRAME_CRC_BYTES;
/** Bytes of the length in front of each message in a batch. */
export const MESSAGE_PREFIX_BYTES = 4;
/** Bytes of a HELLO or WELCOME payload. */
export const HANDSHAKE_PAYLOAD_BYTES = 32;
/** Bytes of a REFUSAL or GOAWAY payload before its detail text. */
export const REFUSAL_FIXED_BYTES = 4;
/** Longest detail text of a REFUSAL or GOAWAY, in UTF-8 bytes. */
export const REFUSAL_DETAIL_BYTES_MAX = 256;
/** Smallest value of `frameBytesMax`: every control frame fits, with room for small batches. */
export const FRAME_BYTES_MIN = 1024;
/** Largest value of `frameBytesMax` (1 GiB): a payload length fits a u32 with room to spare. */
export const FRAME_BYTES_LIMIT = 1 << 30;

const crc32: (data: Uint8Array, value?: number) => number = checkedCrc32();

/** node:zlib's crc32 (Node.js 20.15 and later), or a clear refusal when this Node.js lacks it. */
function checkedCrc32(): (data: Uint8Array, value?: number) => number {
  const fn: unknown = (zlib as { crc32?: unknown }).crc32;
  if (typeof fn !== 'function') {
    throw new TcpTransportError('UNAVAILABLE', `node:zlib has no crc32 in Node.js ${process.version}: ringraft's TCP transport needs Node.js 20.15 or later`);
  }
  return fn as (data: Uint8Array, value?: number) => number;
}

/** The name of a frame type for messages ('type 9' if it has none). */
export function frameTypeName(type: number): string {
  return type >= 0 && type <= FRAME_TYPE_MAX ? FRAME_TYPE_NAMES[type]! : `type ${type}`;
}

function corrupt(message: string): TcpTransportError {
  return new TcpTransportError('CORRUPT_FRAME', message);
}

/**
 * A frame of `type` around a payload already written at [8, 8 + payloadBytes) of `out`:
 * writes the header in front and the CRC behind. `out` is exactly the frame.
 */
function sealFrame(out: Buffer, type: FrameType, payloadBytes: number): Buffer {
  if (out.length !== FRAME_OVERHEAD_BYTES + payloadBytes) fail('a sealed frame is exactly its header, payload and CRC');
  putU32(out, 0, payloadBytes);
  out[4] = type;
  out[5] = 0;
  out[6] = 0;
  out[7] = 0;
  const crcAt = FRAME_HEADER_BYTES + payloadBytes;
  putU32(out, crcAt, crc32(out.subarray(0, crcAt)));
  return out;
}

/** One frame of `type` carrying `payload` (a copy). */
export function encodeFrame(type: FrameType, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const out = Buffer.allocUnsafe(FRAME_OVERHEAD_BYTES + payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  return sealFrame(out, type, payload.length);
}

/**
 * One BATCH frame carrying `messages[start..end)`, whose payload (each message with its
 * length prefix) is `payloadBytes`: one buffer, written with one call (bench/micro/
 * tcp-write.bench.ts measured this against corked writes of the pieces).
 */
export function encodeBatchFrame(messages: readonly Uint8Array[], start: number, end: number, payloadBytes: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_OVERHEAD_BYTES + payloadBytes);
  let at = FRAME_HEADER_BYTES;
  for (let i = start; i < end; i++) {
    const m = messages[i]!;
    putU32(out, at, m.length);
    out.set(m, at + MESSAGE_PREFIX_BYTES);
    at += MESSAGE_PREFIX_BYTES + m.length;
  }
  if (at !== FRAME_HEADER_BYTES + payloadBytes) fail(`batch payload of ${at - FRAME_HEADER_BYTES} bytes is the ${payloadBytes} computed`);
  return sealFrame(out, FrameType.BATCH, payloadBytes);
}

/** Why a BATCH payload is malformed (a message length that overruns it, no message at all), or undefined if it is not. */
export function batchProblem(payload: Uint8Array): string | undefined {
  let count = 0;
  for (let at = 0; at < payload.length; count++) {
    if (payload.length - at < MESSAGE_PREFIX_BYTES) return `batch ends inside a message length at byte ${at} of ${payload.length}`;
    const messageBytes = getU32(payload, at);
    if (messageBytes > payload.length - at - MESSAGE_PREFIX_BYTES) return `batch message of ${messageBytes} bytes at byte ${at} overruns the ${payload.length}-byte payload`;
    at += MESSAGE_PREFIX_BYTES + messageBytes;
  }
  return count === 0 ? 'empty batch' : undefined;
}

/**
 * Calls `onMessage` with each message of a BATCH payload, in order, as views of it. The
 * whole payload is checked first ({@link batchProblem}), so a malformed batch delivers nothing
 * and throws CORRUPT_FRAME; `onMessage` returns false to stop (its connection was closed
 * meanwhile). Returns the number delivered.
 */
export function forEachBatchMessage(payload: Uint8Array, onMessage: (message: Uint8Array) => boolean): number {
  const problem = batchProblem(payload);
  if (problem !== undefined) throw corrupt(problem);
  let delivered = 0;
  for (let at = 0; at < payload.length; ) {
    const messageBytes = getU32(payload, at);
    const message = payload.subarray(at + MESSAGE_PREFIX_BYTES, at + MESSAGE_PREFIX_BYTES + messageBytes);
    at += MESSAGE_PREFIX_BYTES + messageBytes;
    delivered++;
    if (!onMessage(message)) break;
  }
  return delivered;
}

/** The payload lengths a type allows, [min, max]; the frame limit applies on top. */
function payloadBytesRange(type: FrameType): readonly [number, number] {
  switch (type) {
    case FrameType.HELLO:
    case FrameType.WELCOME:
      return [HANDSHAKE_PAYLOAD_BYTES, HANDSHAKE_PAYLOAD_BYTES];
    case FrameType.REFUSAL:
    case FrameType.GOAWAY:
      return [REFUSAL_FIXED_BYTES, REFUSAL_FIXED_BYTES + REFUSAL_DETAIL_BYTES_MAX];
    case FrameType.BATCH:
      return [MESSAGE_PREFIX_BYTES, FRAME_BYTES_LIMIT];
    case FrameType.PING:
    case FrameType.PONG:
      return [0, 0];
  }
}

/**
 * Called with each frame, in order. `payload` is valid only during the call (it may be a view
 * of the socket's chunk). Return false to stop: the decoder then drops the rest of the stream.
 */
export type FrameHandler = (type: FrameType, payload: Uint8Array) => boolean;

/**
 * Cuts a byte stream, fed in chunks of any size, into checked frames (module comment,
 * "Decoding"). After it throws, or after a handler returns false, it takes no more input.
 *
 * State: `headerFill` bytes of the next header are in `header`; once a header is whole and
 * checked, `body` (payload and CRC, `type` from the header) is being filled up to `bodyFill`.
 * Invariant: body === undefined or headerFill === FRAME_HEADER_BYTES.
 */
export class FrameDecoder {
  /** Bytes of the largest buffer this decoder allocated: never more than frameBytesMax - 8. */
  allocatedBytesMax = 0;
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFill = 0;
  private type: FrameType = FrameType.BATCH;
  private body: Buffer | undefined;
  private bodyFill = 0;
  private done = false;

  constructor(readonly frameBytesMax: number) {
    if (!(Number.isSafeInteger(frameBytesMax) && frameBytesMax >= FRAME_BYTES_MIN && frameBytesMax <= FRAME_BYTES_LIMIT)) {
      fail(`frameBytesMax ${frameBytesMax} is in [${FRAME_BYTES_MIN}, ${FRAME_BYTES_LIMIT}]`);
    }
  }

  /** Bytes taken of a frame not yet complete: 0 between frames. */
  get partialBytes(): number {
    return this.headerFill + this.bodyFill;
  }

  /** Feeds the next chunk; calls `onFrame` for each frame it completes. Throws CORRUPT_FRAME or FRAME_TOO_LARGE. */
  push(chunk: Uint8Array, onFrame: FrameHandler): void {
    if (this.done) return;
    try {
      this.consume(chunk, onFrame);
    } catch (error) {
      this.done = true;
      throw error;
    }
  }

  private consume(chunk: Uint8Array, onFrame: FrameHandler): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.body !== undefined) {
        at = this.fillBody(chunk, at);
        if (this.bodyFill < this.body.length) return;
        if (!this.finishAssembled(onFrame)) return this.stop();
      } else if (this.headerFill === 0 && chunk.length - at >= FRAME_HEADER_BYTES) {
        const payloadBytes = this.checkHeader(chunk, at);
        const crcAt = at + FRAME_HEADER_BYTES + payloadBytes;
        if (crcAt + FRAME_CRC_BYTES <= chunk.length) {
          // The whole frame is in this chunk: check it and hand out a view, no copy.
          if (crc32(chunk.subarray(at, crcAt)) !== getU32(chunk, crcAt)) throw corrupt(`${frameTypeName(chunk[at + 4]!)} frame of ${payloadBytes} payload bytes fails its CRC`);
          const type = chunk[at + 4] as FrameType;
          at = crcAt + FRAME_CRC_BYTES;
          if (!onFrame(type, chunk.subarray(crcAt - payloadBytes, crcAt))) return this.stop();
        } else {
          this.header.set(chunk.subarray(at, at + FRAME_HEADER_BYTES));
          this.headerFill = FRAME_HEADER_BYTES;
          at += FRAME_HEADER_BYTES;
          this.beginBody(payloadBytes);
        }
      } else {
        const take = Math.min(FRAME_HEADER_BYTES - this.headerFill, chunk.length - at);
        this.header.set(chunk.subarray(at, at + take), this.headerFill);
        this.headerFill += take;
        at += take;
        if (this.headerFill < FRAME_HEADER_BYTES) return;
        this.beginBody(this.checkHeader(this.header, 0));
      }
    }
  }

  /** Checks the header at `at` of `bytes` (module comment, "Decoding"); returns its payload length. */
  private checkHeader(bytes: Uint8Array, at: number): number {
    const type = bytes[at + 4]!;
    if (type === 0 || type > FRAME_TYPE_MAX) throw corrupt(`frame ${frameTypeName(type)} is not a frame type`);
    if (bytes[at + 5] !== 0 || bytes[at + 6] !== 0 || bytes[at + 7] !== 0) throw corrupt(`${frameTypeName(type)} frame has non-zero reserved header bytes`);
    const payloadBytes = getU32(bytes, at);
    if (payloadBytes > this.frameBytesMax - FRAME_OVERHEAD_BYTES) {
      throw new TcpTransportError('FRAME_TOO_LARGE', `${frameTypeName(type)} frame of ${payloadBytes} payload bytes exceeds frameBytesMax ${this.frameBytesMax}`);
    }
    const [min, max] = payloadBytesRange(type as FrameType);
    if (payloadBytes < min || payloadBytes > max) throw corrupt(`${frameTypeName(type)} frame with ${payloadBytes} payload bytes (allowed: ${min} to ${max})`);
    return payloadBytes;
  }

  private beginBody(payloadBytes: number): void {
    const bodyBytes = payloadBytes + FRAME_CRC_BYTES;
    this.type = this.header[4] as FrameType;
    this.body = Buffer.allocUnsafe(bodyBytes);
    this.bodyFill = 0;
    if (bodyBytes > this.allocatedBytesMax) this.allocatedBytesMax = bodyBytes;
  }

  private fillBody(chunk: Uint8Array, at: number): number {
    const body = this.body!;
    const take = Math.min(body.length - this.bodyFill, chunk.length - at);
    body.set(chunk.subarray(at, at + take), this.bodyFill);
    this.bodyFill += take;
    return at + take;
  }

  /** Checks an assembled frame's CRC, resets for the next header, and hands the frame out. */
  private finishAssembled(onFrame: FrameHandler): boolean {
    const body = this.body!;
    const payloadBytes = body.length - FRAME_CRC_BYTES;
    const payload = body.subarray(0, payloadBytes);
    if (crc32(payload, crc32(this.header)) !== getU32(body, payloadBytes)) throw corrupt(`${frameTypeName(this.type)} frame of ${payloadBytes} payload bytes fails its CRC`);
    this.body = undefined;
    this.bodyFill = 0;
    this.headerFill = 0;
    return onFrame(this.type, payload);
  }

  private stop(): void {
    this.done = true;
  }
}
