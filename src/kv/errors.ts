/**
 * Typed errors of the key-value layer. Every refusal carries a stable `code` from this one
 * list; compare errors by code, never by message. A broken invariant (a bug in the caller,
 * such as applying log indexes out of order) is not a KvError: it throws a plain Error.
 */

export const KvErrorCode = {
  /** A request or option the caller built is not acceptable (empty key, value too long, ...). */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** Bytes that should hold an encoded request do not. */
  CORRUPT_COMMAND: 'CORRUPT_COMMAND',
  /** Bytes that should hold a state machine snapshot do not (bad CRC, bad structure). */
  CORRUPT_SNAPSHOT: 'CORRUPT_SNAPSHOT',
  /**
   * A snapshot (its CRC intact) in a format version this build does not read. The same
   * code as the core's ErrorCode.UNSUPPORTED_FORMAT.
   */
  UNSUPPORTED_FORMAT: 'UNSUPPORTED_FORMAT',
  /** The client's session is gone, so a retried write cannot be deduplicated. */
  SESSION_EXPIRED: 'SESSION_EXPIRED',
} as const;
export type KvErrorCode = (typeof KvErrorCode)[keyof typeof KvErrorCode];

export class KvError extends Error {
  readonly code: KvErrorCode;
  constructor(code: KvErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KvError';
    this.code = code;
  }
}
