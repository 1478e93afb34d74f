/** The TCP peer transport's refusals: its codes, picked from the one list in base/errors.ts, and its error class. */
import { pickCodes, RingraftError } from '../../base/index.ts';

/**
 * The codes the TCP transport throws or logs. INVALID_ARGUMENT: an option, an address or a
 * call the caller built is not acceptable. CLOSED: the transport was closed. UNAVAILABLE: this
 * Node.js lacks `zlib.crc32` (added in 20.15). FRAME_TOO_LARGE: a message or a frame exceeds
 * `frameBytesMax`. CORRUPT_FRAME: bytes on a connection are not a frame. HANDSHAKE_REFUSED: a
 * handshake was refused, by either side. CONNECTION_FAILED: a connection could not be made or
 * broke. TIMEOUT: a write stalled past `writeStallTimeoutMs`, or a connection was silent past
 * `idleTimeoutMs`.
 */
export const TcpTransportErrorCode = pickCodes(
  'INVALID_ARGUMENT',
  'CLOSED',
  'UNAVAILABLE',
  'FRAME_TOO_LARGE',
  'CORRUPT_FRAME',
  'HANDSHAKE_REFUSED',
  'CONNECTION_FAILED',
  'TIMEOUT',
);
export type TcpTransportErrorCode = (typeof TcpTransportErrorCode)[keyof typeof TcpTransportErrorCode];

/** An expected refusal of the TCP transport. A broken invariant is a bug: an `AssertionError`. */
export class TcpTransportError extends RingraftError {
  declare readonly code: TcpTransportErrorCode;
  constructor(code: TcpTransportErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'TcpTransportError';
  }
}
