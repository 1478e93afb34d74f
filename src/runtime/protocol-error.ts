import { ErrorCode, RingraftError } from '../base/index.ts';

/** A malformed frame between a client and a node (code PROTOCOL_ERROR). */
export class ProtocolError extends RingraftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.PROTOCOL_ERROR, message, options);
    this.name = 'ProtocolError';
  }
}
