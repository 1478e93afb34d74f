/**
 * Typed errors. Every refusal a caller can expect carries a stable `code` from this one
 * list; compare errors by code, never by message. A broken invariant is not an error to
 * handle: it throws an {@link AssertionError} and the node must stop.
 */

export const ErrorCode = {
  NOT_LEADER: 'NOT_LEADER',
  TRANSFER_IN_PROGRESS: 'TRANSFER_IN_PROGRESS',
  CONF_CHANGE_PENDING: 'CONF_CHANGE_PENDING',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  PROPOSAL_TOO_LARGE: 'PROPOSAL_TOO_LARGE',
  PROPOSALS_FULL: 'PROPOSALS_FULL',
  COMPACTED: 'COMPACTED',
  UNAVAILABLE: 'UNAVAILABLE',
  SNAPSHOT_OUT_OF_DATE: 'SNAPSHOT_OUT_OF_DATE',
  TIMEOUT: 'TIMEOUT',
  CLOSED: 'CLOSED',
  CORRUPT_LOG: 'CORRUPT_LOG',
  /** Stored data in a format version this build does not read (nothing was changed). */
  UNSUPPORTED_FORMAT: 'UNSUPPORTED_FORMAT',
  /** A write, sync, rename or unlink of the storage failed (EIO, ENOSPC, ...). */
  IO_ERROR: 'IO_ERROR',
  /** The storage refuses writes after an earlier I/O error; reopen it to recover. */
  STORAGE_FAILED: 'STORAGE_FAILED',
  /** A client's session is gone from the state machine, so its write cannot be deduplicated. */
  SESSION_EXPIRED: 'SESSION_EXPIRED',
  /** The caller's AbortSignal fired before the request completed. */
  ABORTED: 'ABORTED',
  /** A node (its thread) is down or stopped. */
  NODE_DOWN: 'NODE_DOWN',
  /** A watcher fell too far behind the changes it watches and was cut off. */
  WATCH_LAGGING: 'WATCH_LAGGING',
  /** A data directory is in use by another cluster (in this process or another). */
  DATA_DIR_LOCKED: 'DATA_DIR_LOCKED',
  /** A node that the cluster knows had state has none: it must not vote under its old identity. */
  STATE_LOST: 'STATE_LOST',
  /** The options or a node's directory disagree with the cluster's stored configuration. */
  CONFIG_MISMATCH: 'CONFIG_MISMATCH',
  /** Too few live nodes for what was asked: a quorum cannot form or would be lost. */
  NO_QUORUM: 'NO_QUORUM',
  /** The storage has no space left (ENOSPC, EDQUOT). */
  NO_SPACE: 'NO_SPACE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class RingraftError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RingraftError';
    this.code = code;
  }
}

/** Refusal of a request that only the leader can serve. `leaderId` is a hint (0 if unknown). */
export class NotLeaderError extends RingraftError {
  readonly leaderId: number;
  constructor(leaderId: number) {
    super(ErrorCode.NOT_LEADER, leaderId === 0 ? 'not the leader; no leader known' : `not the leader; try node ${leaderId}`);
    this.name = 'NotLeaderError';
    this.leaderId = leaderId;
  }
}

export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssertionError';
  }
}

/** Stays on in production: a false condition here is a bug, and the node must not go on. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}
