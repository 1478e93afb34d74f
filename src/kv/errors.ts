/**
 * Typed errors of the key-value layer: {@link RingraftError}s whose codes come from the one
 * list in base/errors.ts. Compare errors by code, never by message. A broken invariant (a bug
 * in the caller, such as applying log indexes out of order) is an `AssertionError`.
 */
import { pickCodes, RingraftError } from '../base/index.ts';

/**
 * The key-value layer's codes. INVALID_ARGUMENT: a request or option the caller built is not
 * acceptable (empty key, value too long, ...). CORRUPT_COMMAND: bytes that should hold an
 * encoded request do not. CORRUPT_SNAPSHOT: bytes that should hold a state machine snapshot do
 * not (bad CRC, bad structure). UNSUPPORTED_FORMAT: a snapshot (its CRC intact) in a format
 * version this build does not read. SESSION_EXPIRED: the client's session is gone, so a retried
 * write cannot be deduplicated. LEASE_NOT_FOUND, LEASES_FULL: a write named a lease that does
 * not exist, or a grant found the lease table full (the state machine answers these as results).
 * APPLY_FAILED: a cluster's own state machine (app-machine.ts) gave a snapshot that is not bytes, or is too large.
 */
export const KvErrorCode = pickCodes('INVALID_ARGUMENT', 'CORRUPT_COMMAND', 'CORRUPT_SNAPSHOT', 'UNSUPPORTED_FORMAT', 'SESSION_EXPIRED', 'LEASE_NOT_FOUND', 'LEASES_FULL', 'APPLY_FAILED');
export type KvErrorCode = (typeof KvErrorCode)[keyof typeof KvErrorCode];

export class KvError extends RingraftError {
  declare readonly code: KvErrorCode;
  constructor(code: KvErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'KvError';
  }
}
