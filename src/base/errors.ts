/**
 * The one list of error codes, and the one error base class. Every expected refusal in
 * ringraft is a {@link RingraftError} whose `code` comes from {@link ErrorCode}; compare errors
 * by code, never by message. Each layer names the subset it throws (the core's
 * `CoreErrorCode`, the key-value layer's `KvErrorCode`, ...), taking the values from here, so
 * one code means one thing everywhere. A broken invariant is not an error to handle: it is an
 * `AssertionError` (assert.ts).
 *
 * Codes cross threads and, later, machines as numbers: {@link errorCodeWire} gives a code's
 * number, {@link errorCodeFromWire} and {@link parseErrorCode} turn a number or a string back
 * into a code, and refuse (undefined) anything that is not one. A number, once given, never
 * changes meaning; a retired code keeps its number reserved.
 */

/** Every error code, with its number on the wire. Append only. */
const CODES = {
  // ── The Raft core ──
  /** Only the leader serves this request; `NotLeaderError.leaderId` is a hint (0: none known). */
  NOT_LEADER: 1,
  /** A leadership transfer is under way; proposals wait until it ends. */
  TRANSFER_IN_PROGRESS: 2,
  /** A configuration change is already pending; one at a time. */
  CONF_CHANGE_PENDING: 3,
  /** A request or option the caller built is not acceptable; the message names it. */
  INVALID_ARGUMENT: 4,
  /** A proposal is larger than `proposalBytesMax`. */
  PROPOSAL_TOO_LARGE: 5,
  /** The leader holds `uncommittedBytesMax` of uncommitted proposals (or too many reads). */
  PROPOSALS_FULL: 6,
  /** The entries asked for were compacted into a snapshot. */
  COMPACTED: 7,
  /** The entries or state asked for are not available (yet). */
  UNAVAILABLE: 8,
  /** A snapshot older than what the receiver already has. */
  SNAPSHOT_OUT_OF_DATE: 9,
  // ── Calls and clients ──
  /** The call did not complete in time; it may still take effect. */
  TIMEOUT: 10,
  /** The cluster, client, storage or watch was closed. */
  CLOSED: 11,
  /** A client's session is gone from the state machine, so its write cannot be deduplicated. */
  SESSION_EXPIRED: 12,
  /** The caller's AbortSignal fired before the request completed. */
  ABORTED: 13,
  /** A node (its thread) is down or stopped. */
  NODE_DOWN: 14,
  /** A watcher fell too far behind the changes it watches and was cut off. */
  WATCH_LAGGING: 15,
  // ── Storage ──
  /** Stored bytes are damaged; `CorruptLogError` names the file and the byte offset. */
  CORRUPT_LOG: 16,
  /** Stored data in a format version this build does not read (nothing was changed). */
  UNSUPPORTED_FORMAT: 17,
  /** A write, sync, rename or unlink of the storage failed (EIO, ...); `cause` is the system error. */
  IO_ERROR: 18,
  /** The storage refuses writes after an earlier I/O error; reopen it to recover. */
  STORAGE_FAILED: 19,
  /** The storage has no space left (ENOSPC, EDQUOT). */
  NO_SPACE: 20,
  // ── The cluster and its data directory ──
  /** A data directory is in use by another cluster (in this process or another). */
  DATA_DIR_LOCKED: 21,
  /** A node that the cluster knows had state has none: it must not vote under its old identity. */
  STATE_LOST: 22,
  /** The options or a node's directory disagree with the cluster's stored configuration. */
  CONFIG_MISMATCH: 23,
  /** Too few live nodes for what was asked: a quorum cannot form or would be lost. */
  NO_QUORUM: 24,
  // ── Encodings ──
  /** Bytes that should hold an encoding do not; `DecodeError.reason` and `offset` say where and why. */
  DECODE_ERROR: 25,
  /** Bytes that should hold an encoded key-value command do not. */
  CORRUPT_COMMAND: 26,
  /** Bytes that should hold a state machine snapshot do not (bad CRC, bad structure). */
  CORRUPT_SNAPSHOT: 27,
  /** A frame between a client and a node is malformed. */
  PROTOCOL_ERROR: 28,
  // ── Rings ──
  /** A frame's payload exceeds the ring's largest frame; nothing was written. */
  FRAME_TOO_LARGE: 29,
  /** Shared memory does not hold what the ring protocol allows (a bad header or index). */
  CORRUPT_RING: 30,
  /** A buffer handed to a ring constructor is not a ring (or doorbell) of this version. */
  INVALID_BUFFER: 31,
  // ── Peer connections (TCP) ──
  /** A peer connection's handshake was refused (another cluster, another node, an unknown or removed peer, another protocol version); the refused side backs off and redials. */
  HANDSHAKE_REFUSED: 32,
  /** Bytes on a peer connection do not hold a frame (bad header, bad CRC, an unexpected type, a frame cut short); that connection is closed. */
  CORRUPT_FRAME: 33,
  /** A TCP connection to a peer could not be made, or broke (refused, reset, closed by the far side); `cause` is the system error, if any. */
  CONNECTION_FAILED: 34,
  // ── Client connections (TCP) ──
  /** A bounded queue of a client connection is full: a client's send queue (the request is refused, nothing sent), or a server's replies to a client that does not read them (that connection is cut off). */
  QUEUE_FULL: 35,
  /** A client connection had more requests unanswered than `requestsInFlightMax`, the bound its server announced in the handshake; that connection is cut off. */
  TOO_MANY_REQUESTS: 36,
  // ── The store ──
  /** The lease named does not exist: never granted, revoked, or expired (its keys deleted). */
  LEASE_NOT_FOUND: 37,
  /** The store holds KV_LEASES_MAX leases: revoke some before granting more. */
  LEASES_FULL: 38,
  // ── A cluster's own state machine ──
  /** The cluster's own state machine threw on the command or query (the error's message is its), or returned what is not bytes; on every replica alike. */
  APPLY_FAILED: 39,
} as const;

export type ErrorCode = keyof typeof CODES;

/** The codes by name: `ErrorCode.NOT_LEADER === 'NOT_LEADER'`. */
export const ErrorCode: { readonly [C in keyof typeof CODES]: C } = Object.freeze(
  Object.fromEntries(Object.keys(CODES).map((c) => [c, c])) as { [C in keyof typeof CODES]: C },
);

const CODE_BY_WIRE: readonly (ErrorCode | undefined)[] = (() => {
  const byWire: (ErrorCode | undefined)[] = [];
  for (const [code, wire] of Object.entries(CODES) as [ErrorCode, number][]) {
    if (byWire[wire] !== undefined) throw new Error(`error codes ${byWire[wire]} and ${code} share wire number ${wire}`);
    byWire[wire] = code;
  }
  return byWire;
})();

/** The largest wire number in use (wire numbers fit a u16). */
export const ERROR_CODE_WIRE_MAX = CODE_BY_WIRE.length - 1;

/** A code's number on the wire. */
export function errorCodeWire(code: ErrorCode): number {
  return CODES[code];
}

/** The code a wire number stands for, or undefined if none does. */
export function errorCodeFromWire(wire: number): ErrorCode | undefined {
  return Number.isInteger(wire) && wire > 0 ? CODE_BY_WIRE[wire] : undefined;
}

/** `value` as an error code, or undefined if it is not one (for codes that crossed a thread as strings). */
export function parseErrorCode(value: unknown): ErrorCode | undefined {
  return typeof value === 'string' && Object.hasOwn(CODES, value) ? (value as ErrorCode) : undefined;
}

/**
 * Picks a layer's codes from the one list: `pickCodes('NOT_LEADER', 'COMPACTED')` gives
 * `{ NOT_LEADER: 'NOT_LEADER', COMPACTED: 'COMPACTED' }`, typed as that subset.
 */
export function pickCodes<const C extends ErrorCode>(...codes: readonly C[]): { readonly [K in C]: K } {
  return Object.freeze(Object.fromEntries(codes.map((c) => [c, c])) as { [K in C]: K });
}

/** Every expected refusal. `code` is stable; the message is for people and may change. */
export class RingraftError extends Error {
  /** The error's code, from {@link ErrorCode}: stable, so compare errors by it, never by message. */
  readonly code: ErrorCode;
  /** An error with `code`, a message for people, and optionally the `cause` it wraps. */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RingraftError';
    this.code = code;
  }
}

/** A RingraftError with code INVALID_ARGUMENT. */
export function invalidArgument(message: string, options?: { cause?: unknown }): RingraftError {
  return new RingraftError(ErrorCode.INVALID_ARGUMENT, message, options);
}
