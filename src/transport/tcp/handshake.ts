/**
 * The handshake of a peer connection: the HELLO a dialler sends first, the WELCOME that
 * accepts it, and the REFUSAL that turns it away (frames: frame.ts).
 *
 * ## HELLO and WELCOME payload (32 bytes, little-endian)
 *
 * | offset | bytes | field        | meaning                                                       |
 * | -----: | ----: | ------------ | ------------------------------------------------------------- |
 * | 0      | 4     | `magic`      | 0x50524752, the bytes "RGRP" (ringraft peer)                  |
 * | 4      | 2     | `version`    | protocol version, {@link PROTOCOL_VERSION}                    |
 * | 6      | 1     | `lane`       | 1 control, 2 append, 3 snapshot                               |
 * | 7      | 1     | reserved     | zero                                                          |
 * | 8      | 8     | `clusterId`  | u64, from the cluster's name or token ({@link clusterIdOf})   |
 * | 16     | 8     | `senderId`   | u64, the node id of the side that sends this frame (a safe integer) |
 * | 24     | 8     | `receiverId` | u64, the node id it means to reach                            |
 *
 * The acceptor checks a HELLO against itself: magic and version, its cluster id, its own node
 * id as `receiverId`, a lane it knows, and `senderId` through the caller's predicate of
 * accepted peers (so a removed member is turned away). It answers with the WELCOME, the same
 * fields seen from its side (sender and receiver swapped), or with a REFUSAL and closes. The
 * dialler checks the WELCOME the same way, so a listener that is not the peer it dialled (a
 * port reused by another node) is refused too.
 *
 * ## REFUSAL payload
 *
 * | offset | bytes   | field    | meaning                                                        |
 * | -----: | ------: | -------- | -------------------------------------------------------------- |
 * | 0      | 1       | `reason` | 1 version, 2 cluster, 3 receiver, 4 sender, 5 lane, 6 identity (over TLS, a certificate that does not name the sender) ({@link RefusalReason}) |
 * | 1      | 3       | reserved | zero                                                           |
 * | 4      | 0 – 256 | `detail` | UTF-8 text for the refused side's log                          |
 */
import { createHash } from 'node:crypto';
import { Buffer } from 'node:buffer';
import { ErrorCode, invalidArgument } from '../../base/index.ts';
import { encodeGoaway } from './client-handshake.ts';
import { encodeFrame, FrameType, HANDSHAKE_PAYLOAD_BYTES, REFUSAL_DETAIL_BYTES_MAX, REFUSAL_FIXED_BYTES } from './frame.ts';

/** "RGRP" read as a little-endian u32. */
export const HANDSHAKE_MAGIC = 0x50_52_47_52;
/** The protocol version this build speaks; a peer speaking another is refused ('version'). */
export const PROTOCOL_VERSION = 1;

/** A connection's lane: each is its own connection, so that no lane waits behind another. */
export type TcpLane = 'control' | 'append' | 'snapshot';
/**
 * The lanes, in wire order (lane i is number i + 1 on the wire). `control`: heartbeats and
 * votes, which must never wait behind bulk appends. `append`: log replication. `snapshot`:
 * snapshot chunks, so that a large snapshot never delays a heartbeat.
 */
export const TCP_LANES: readonly TcpLane[] = Object.freeze(['control', 'append', 'snapshot']);

/** Why a handshake was refused. `unknown`: a reason number this build does not know. */
export type RefusalReason = 'version' | 'cluster' | 'receiver' | 'sender' | 'lane' | 'identity' | 'unknown';
const REFUSAL_REASONS: readonly RefusalReason[] = ['unknown', 'version', 'cluster', 'receiver', 'sender', 'lane', 'identity'];

/** The fields of a HELLO or WELCOME, as read: nothing is checked but the length. */
export interface Handshake {
  readonly magic: number;
  readonly version: number;
  /** The lane number on the wire (1 to 3 are lanes). */
  readonly laneWire: number;
  readonly clusterId: bigint;
  /** Node ids; a u64 past the safe integers reads as -1, which matches no node. */
  readonly senderId: number;
  readonly receiverId: number;
}

/** What a handshake must say to be accepted. */
export interface HandshakeExpectation {
  readonly clusterId: bigint;
  readonly receiverId: number;
  /** The lane the handshake must name; undefined: any lane. */
  readonly lane: TcpLane | undefined;
  /** Whether the sender is one this side talks to. */
  readonly acceptSender: (senderId: number) => boolean;
}

/**
 * The cluster id of a cluster name or token: the first 8 bytes of its SHA-256, read as a
 * little-endian u64 (never 0). Every node of a cluster derives it from the same string, so
 * nodes of two clusters that share hosts and ports refuse each other.
 */
export function clusterIdOf(token: string): bigint {
  if (typeof token !== 'string' || token.length === 0) throw invalidArgument('a cluster token is a non-empty string');
  const id = createHash('sha256').update(token, 'utf8').digest().readBigUInt64LE(0);
  return id === 0n ? 1n : id;
}

/** The wire number of a lane. */
export function laneWire(lane: TcpLane): number {
  return TCP_LANES.indexOf(lane) + 1;
}

/** The lane of a wire number, or undefined if it is none. */
export function laneOfWire(wire: number): TcpLane | undefined {
  return TCP_LANES[wire - 1];
}

/** A whole HELLO or WELCOME frame. */
export function encodeHandshake(type: typeof FrameType.HELLO | typeof FrameType.WELCOME, lane: TcpLane, clusterId: bigint, senderId: number, receiverId: number): Buffer {
  const payload = Buffer.alloc(HANDSHAKE_PAYLOAD_BYTES);
  payload.writeUInt32LE(HANDSHAKE_MAGIC, 0);
  payload.writeUInt16LE(PROTOCOL_VERSION, 4);
  payload[6] = laneWire(lane);
  payload.writeBigUInt64LE(clusterId, 8);
  payload.writeBigUInt64LE(BigInt(senderId), 16);
  payload.writeBigUInt64LE(BigInt(receiverId), 24);
  return encodeFrame(type, payload);
}

/** Reads a HELLO or WELCOME payload (the frame decoder has checked its length). */
export function decodeHandshake(payload: Uint8Array): Handshake {
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
  return {
    magic: b.readUInt32LE(0),
    version: b.readUInt16LE(4),
    laneWire: b[6]!,
    clusterId: b.readBigUInt64LE(8),
    senderId: safeId(b.readBigUInt64LE(16)),
    receiverId: safeId(b.readBigUInt64LE(24)),
  };
}

function safeId(id: bigint): number {
  return id <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(id) : -1;
}

/** Why `h` is not what `expected` asks for, or undefined if it is. */
export function handshakeMismatch(h: Handshake, expected: HandshakeExpectation): RefusalReason | undefined {
  if (h.magic !== HANDSHAKE_MAGIC || h.version !== PROTOCOL_VERSION) return 'version';
  if (h.clusterId !== expected.clusterId) return 'cluster';
  if (h.receiverId !== expected.receiverId) return 'receiver';
  const lane = laneOfWire(h.laneWire);
  if (lane === undefined || (expected.lane !== undefined && lane !== expected.lane)) return 'lane';
  if (h.senderId <= 0 || h.senderId === expected.receiverId || !expected.acceptSender(h.senderId)) return 'sender';
  return undefined;
}

/** A line for people on why `h` was refused. */
export function describeMismatch(reason: RefusalReason, h: Handshake, expected: HandshakeExpectation): string {
  switch (reason) {
    case 'version':
      return `magic 0x${h.magic.toString(16)} version ${h.version}; this node speaks magic 0x${HANDSHAKE_MAGIC.toString(16)} version ${PROTOCOL_VERSION}`;
    case 'cluster':
      return `cluster id ${h.clusterId.toString(16)}; this node is in cluster ${expected.clusterId.toString(16)}`;
    case 'receiver':
      return `meant for node ${h.receiverId}; this is node ${expected.receiverId}`;
    case 'lane':
      return `lane ${h.laneWire}${expected.lane === undefined ? '' : `; expected ${expected.lane}`}`;
    case 'sender':
      return `node ${h.senderId} is not an accepted peer of node ${expected.receiverId}`;
    case 'identity':
      return `the certificate does not name node ${h.senderId}`;
    case 'unknown':
      return 'unknown reason';
  }
}

/** A whole REFUSAL frame; `detail` is cut to 256 bytes of UTF-8. */
export function encodeRefusal(reason: RefusalReason, detail: string): Buffer {
  const text = Buffer.from(detail, 'utf8').subarray(0, REFUSAL_DETAIL_BYTES_MAX);
  const payload = Buffer.alloc(REFUSAL_FIXED_BYTES + text.length);
  payload[0] = Math.max(0, REFUSAL_REASONS.indexOf(reason));
  payload.set(text, REFUSAL_FIXED_BYTES);
  return encodeFrame(FrameType.REFUSAL, payload);
}

/** Reads a REFUSAL payload (the frame decoder has checked its length). */
export function decodeRefusal(payload: Uint8Array): { readonly reason: RefusalReason; readonly detail: string } {
  const reason = REFUSAL_REASONS[payload[0]!] ?? 'unknown';
  return { reason, detail: Buffer.from(payload.buffer, payload.byteOffset + REFUSAL_FIXED_BYTES, payload.length - REFUSAL_FIXED_BYTES).toString('utf8') };
}

/**
 * The last frame a node sends on each of its peer connections when it stops (GOAWAY, code
 * CLOSED, the client port's layout): its peers log the close, and their failed dials until it
 * is back, at info, not as faults. Best effort: a peer that misses it logs as for a crash.
 */
export const STOPPING_FRAME: Buffer = encodeGoaway(ErrorCode.CLOSED, 'the node is stopping');
