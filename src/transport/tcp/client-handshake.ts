/**
 * The wire of the client port: the handshake payloads, the REFUSAL reasons, the GOAWAY, and
 * the check of the client-protocol frames a BATCH carries. Frames and their CRC are frame.ts's;
 * the client protocol itself (runtime/client-protocol.ts) is opaque here but for its first
 * five bytes.
 *
 * ## A connection
 *
 * ```
 *  client                                   server
 *  HELLO (magic RGRC, version, cluster) ──►
 *                                       ◄── WELCOME (its bounds) | REFUSAL (reason) and close
 *  BATCH (requests), PING            ──►
 *                                       ◄── BATCH (replies), PONG
 *                                       ◄── GOAWAY (code) and close, when the server cuts it off
 * ```
 *
 * ## HELLO payload (32 bytes, little-endian)
 *
 * | offset | bytes | field           | meaning                                                      |
 * | -----: | ----: | --------------- | ------------------------------------------------------------ |
 * | 0      | 4     | `magic`         | 0x43524752, the bytes "RGRC" (ringraft client)               |
 * | 4      | 2     | `version`       | {@link CLIENT_PROTOCOL_VERSION}                              |
 * | 6      | 2     | reserved        | zero                                                         |
 * | 8      | 8     | `clusterId`     | u64, `clusterIdOf(token)`, as the peer transport's           |
 * | 16     | 4     | `frameBytesMax` | the largest frame the client accepts (>= 1,024)              |
 * | 20     | 12    | reserved        | zero                                                         |
 *
 * ## WELCOME payload (32 bytes)
 *
 * | offset | bytes | field                 | meaning                                          |
 * | -----: | ----: | --------------------- | ------------------------------------------------ |
 * | 0      | 4     | `magic`               | "RGRC"                                           |
 * | 4      | 2     | `version`             | {@link CLIENT_PROTOCOL_VERSION}                  |
 * | 6      | 2     | reserved              | zero                                             |
 * | 8      | 8     | `clusterId`           | the server's cluster id                          |
 * | 16     | 4     | `frameBytesMax`       | the largest frame the server accepts             |
 * | 20     | 4     | `requestsInFlightMax` | the server's bound on unanswered requests        |
 * | 24     | 4     | `nodeId`              | the node that answers (u32, >= 1): a client maps a NOT_LEADER's leader hint to the endpoint to try |
 * | 28     | 4     | reserved              | zero                                             |
 *
 * Reserved bytes are written as zero and not read, so a later version may use them. The
 * server refuses a HELLO whose magic or version it does not speak (a peer's "RGRP" HELLO
 * included) with reason `version`, one for another cluster with `cluster`, and any connection
 * past `connectionsMax` with `full` (sent at once, before the HELLO); the client checks the
 * WELCOME's magic, version and cluster the same way.
 *
 * ## REFUSAL and GOAWAY payloads
 *
 * | offset | bytes   | field    | meaning                                                              |
 * | -----: | ------: | -------- | -------------------------------------------------------------------- |
 * | 0      | 1 / 2   | `reason` / `code` | REFUSAL: u8 1 version, 2 cluster, 3 full, then 3 zero bytes; GOAWAY: u16 error code (base/errors.ts wire number), then 2 zero bytes |
 * | 4      | 0 – 256 | `detail` | UTF-8 text for the other side's log                                  |
 *
 * ## BATCH contents
 *
 * A BATCH payload is one or more client-protocol frames, each `u32 frameBytes` then its bytes
 * (frame.ts). Each must be at least {@link CLIENT_FRAME_HEADER_BYTES} long (a kind byte and
 * the u32 requestId at byte 1) with a kind other than 0 (0 is invalid in requests and replies
 * alike), and within the receiver's announced frame limit; anything else makes the whole
 * frame CORRUPT_FRAME and closes the connection, before any of it is delivered. Whether the
 * bytes after the header hold a request or a reply the node or the client decodes.
 */
import { Buffer } from 'node:buffer';
import { errorCodeFromWire, errorCodeWire, getU32, type ErrorCode } from '../../base/index.ts';
import { batchProblem, encodeFrame, FrameType, HANDSHAKE_PAYLOAD_BYTES, MESSAGE_PREFIX_BYTES, REFUSAL_DETAIL_BYTES_MAX, REFUSAL_FIXED_BYTES } from './frame.ts';

/** "RGRC" read as a little-endian u32. */
export const CLIENT_HANDSHAKE_MAGIC = 0x43_52_47_52;
/**
 * The client protocol version this build speaks over TCP. 2: a read reply's value starts
 * 8-aligned in its frame, after six zero bytes (runtime/client-protocol.ts).
 */
export const CLIENT_PROTOCOL_VERSION = 2;
/**
 * The shortest client-protocol frame: a kind byte and a u32 requestId. The same number as
 * runtime/client-protocol.ts's REQUEST_HEADER_BYTES, which this layer may not import (a test
 * checks they agree).
 */
export const CLIENT_FRAME_HEADER_BYTES = 5;

/** Why a server refused a client. `unknown`: a reason number this build does not know. */
export type ClientRefusalReason = 'version' | 'cluster' | 'full' | 'unknown';
const REFUSAL_REASONS: readonly ClientRefusalReason[] = ['unknown', 'version', 'cluster', 'full'];

/** A HELLO or WELCOME, as read (only its length is checked by the frame decoder). */
export interface ClientHandshake {
  readonly magic: number;
  readonly version: number;
  readonly clusterId: bigint;
  readonly frameBytesMax: number;
  /** In a WELCOME only; 0 in a HELLO. */
  readonly requestsInFlightMax: number;
  /** In a WELCOME only: the answering node's id; 0 in a HELLO. */
  readonly nodeId: number;
}

/** A whole HELLO (the client's; `requestsInFlightMax` and `nodeId` 0) or WELCOME (the server's) frame. */
export function encodeClientHandshake(type: typeof FrameType.HELLO | typeof FrameType.WELCOME, clusterId: bigint, frameBytesMax: number, requestsInFlightMax: number, nodeId = 0): Buffer {
  const payload = Buffer.alloc(HANDSHAKE_PAYLOAD_BYTES);
  payload.writeUInt32LE(CLIENT_HANDSHAKE_MAGIC, 0);
  payload.writeUInt16LE(CLIENT_PROTOCOL_VERSION, 4);
  payload.writeBigUInt64LE(clusterId, 8);
  payload.writeUInt32LE(frameBytesMax, 16);
  payload.writeUInt32LE(requestsInFlightMax, 20);
  payload.writeUInt32LE(nodeId, 24);
  return encodeFrame(type, payload);
}

export function decodeClientHandshake(payload: Uint8Array): ClientHandshake {
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
  return { magic: b.readUInt32LE(0), version: b.readUInt16LE(4), clusterId: b.readBigUInt64LE(8), frameBytesMax: b.readUInt32LE(16), requestsInFlightMax: b.readUInt32LE(20), nodeId: b.readUInt32LE(24) };
}

/** Why `h` is not a handshake of this protocol for `clusterId` (with a line for people), or undefined if it is. */
export function clientHandshakeMismatch(h: ClientHandshake, clusterId: bigint, frameBytesMin: number): { reason: ClientRefusalReason; detail: string } | undefined {
  if (h.magic !== CLIENT_HANDSHAKE_MAGIC || h.version !== CLIENT_PROTOCOL_VERSION || h.frameBytesMax < frameBytesMin) {
    return { reason: 'version', detail: `magic 0x${h.magic.toString(16)} version ${h.version} frameBytesMax ${h.frameBytesMax}; this side speaks magic 0x${CLIENT_HANDSHAKE_MAGIC.toString(16)} version ${CLIENT_PROTOCOL_VERSION}` };
  }
  if (h.clusterId !== clusterId) return { reason: 'cluster', detail: `cluster id ${h.clusterId.toString(16)}; this side is in cluster ${clusterId.toString(16)}` };
  return undefined;
}

/** The detail text of a REFUSAL or GOAWAY, cut to 256 bytes of UTF-8, after `fixed` bytes. */
function withDetail(type: FrameType, fixed: Buffer, detail: string): Buffer {
  const text = Buffer.from(detail, 'utf8').subarray(0, REFUSAL_DETAIL_BYTES_MAX);
  return encodeFrame(type, Buffer.concat([fixed, text]));
}

function detailOf(payload: Uint8Array): string {
  return Buffer.from(payload.buffer, payload.byteOffset + REFUSAL_FIXED_BYTES, payload.length - REFUSAL_FIXED_BYTES).toString('utf8');
}

export function encodeClientRefusal(reason: ClientRefusalReason, detail: string): Buffer {
  const fixed = Buffer.alloc(REFUSAL_FIXED_BYTES);
  fixed[0] = Math.max(0, REFUSAL_REASONS.indexOf(reason));
  return withDetail(FrameType.REFUSAL, fixed, detail);
}

export function decodeClientRefusal(payload: Uint8Array): { readonly reason: ClientRefusalReason; readonly detail: string } {
  return { reason: REFUSAL_REASONS[payload[0]!] ?? 'unknown', detail: detailOf(payload) };
}

/** The GOAWAY frame that tells a client why its connection is cut off. */
export function encodeGoaway(code: ErrorCode, detail: string): Buffer {
  const fixed = Buffer.alloc(REFUSAL_FIXED_BYTES);
  fixed.writeUInt16LE(errorCodeWire(code), 0);
  return withDetail(FrameType.GOAWAY, fixed, detail);
}

/** A GOAWAY's code (undefined for a number this build does not know) and detail. */
export function decodeGoaway(payload: Uint8Array): { readonly code: ErrorCode | undefined; readonly detail: string } {
  return { code: errorCodeFromWire(payload[0]! | (payload[1]! << 8)), detail: detailOf(payload) };
}

/** Why a BATCH payload is not a run of client-protocol frames of at most `frameBytesMax` each (module comment), or undefined if it is. */
export function clientBatchProblem(payload: Uint8Array, frameBytesMax: number): string | undefined {
  const problem = batchProblem(payload);
  if (problem !== undefined) return problem;
  for (let at = 0; at < payload.length; ) {
    const frameBytes = getU32(payload, at);
    if (frameBytes < CLIENT_FRAME_HEADER_BYTES) return `client frame of ${frameBytes} bytes at byte ${at} is shorter than its ${CLIENT_FRAME_HEADER_BYTES}-byte header`;
    if (frameBytes > frameBytesMax) return `client frame of ${frameBytes} bytes at byte ${at} exceeds the ${frameBytesMax} announced`;
    if (payload[at + MESSAGE_PREFIX_BYTES] === 0) return `client frame at byte ${at} has kind 0`;
    at += MESSAGE_PREFIX_BYTES + frameBytes;
  }
  return undefined;
}
