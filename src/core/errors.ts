/**
 * The core's refusals: the codes it throws, taken from the one list in base/errors.ts, and
 * {@link NotLeaderError}. A broken invariant is not an error to handle: it throws an
 * `AssertionError` and the node must stop.
 */
import { ErrorCode, RingraftError, pickCodes } from '../base/index.ts';

/** The codes the core throws; it throws no other. */
export const CoreErrorCode = pickCodes(
  'NOT_LEADER',
  'TRANSFER_IN_PROGRESS',
  'CONF_CHANGE_PENDING',
  'INVALID_ARGUMENT',
  'PROPOSAL_TOO_LARGE',
  'PROPOSALS_FULL',
  'COMPACTED',
  'UNAVAILABLE',
  'SNAPSHOT_OUT_OF_DATE',
);
export type CoreErrorCode = (typeof CoreErrorCode)[keyof typeof CoreErrorCode];

/** Refusal of a request that only the leader can serve. `leaderId` is a hint (0 if unknown). */
export class NotLeaderError extends RingraftError {
  /** A hint: the node to try instead (the leader this node knows, or the one it hands leadership to); 0 if none. */
  readonly leaderId: number;
  /** A refusal that names `leaderId` (0: no leader known) in its message. */
  constructor(leaderId: number) {
    super(ErrorCode.NOT_LEADER, leaderId === 0 ? 'not the leader; no leader known' : `not the leader; try node ${leaderId}`);
    this.name = 'NotLeaderError';
    this.leaderId = leaderId;
  }
}
