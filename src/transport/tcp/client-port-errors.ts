/** The client port's refusals: its codes, picked from the one list in base/errors.ts, and its error class. */
import { pickCodes, RingraftError } from '../../base/index.ts';
import type { ClientRefusalReason } from './client-handshake.ts';

/**
 * The codes the client port and its client connections throw, log or close with.
 * INVALID_ARGUMENT: an option, an address or a frame the caller built is not acceptable.
 * CLOSED: this side, or the server, closed. FRAME_TOO_LARGE: a frame past the smaller
 * `frameBytesMax` of the two sides. CORRUPT_FRAME: bytes that are not frames, or a batch
 * holding something that is not a client-protocol frame. HANDSHAKE_REFUSED: the server refused
 * the client (another cluster, another protocol, full). CONNECTION_FAILED: the connection
 * could not be made, or broke. TIMEOUT: a silent connection, or a stalled write. QUEUE_FULL:
 * the client's send queue is full (the request is refused), or the server cut off a client
 * that left its replies unread. TOO_MANY_REQUESTS: the client passed the server's
 * `requestsInFlightMax`. The server may also cut a connection off with any code its host
 * chose (`close(error)`, PROTOCOL_ERROR say); a client reads that code from the GOAWAY.
 */
export const ClientPortErrorCode = pickCodes(
  'INVALID_ARGUMENT',
  'CLOSED',
  'FRAME_TOO_LARGE',
  'CORRUPT_FRAME',
  'HANDSHAKE_REFUSED',
  'CONNECTION_FAILED',
  'TIMEOUT',
  'QUEUE_FULL',
  'TOO_MANY_REQUESTS',
);
export type ClientPortErrorCode = (typeof ClientPortErrorCode)[keyof typeof ClientPortErrorCode];

/** An expected refusal of the client port. A broken invariant is a bug: an `AssertionError`. */
export class ClientPortError extends RingraftError {
  /** For HANDSHAKE_REFUSED: why the server refused. */
  readonly refusalReason: ClientRefusalReason | undefined;
  constructor(code: RingraftError['code'], message: string, options?: { cause?: unknown; refusalReason?: ClientRefusalReason }) {
    super(code, message, options);
    this.name = 'ClientPortError';
    this.refusalReason = options?.refusalReason;
  }
}
