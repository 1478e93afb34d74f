/**
 * The replies every part of the host gives the same way: a refusal of a request that could
 * not be taken (a typed code, a leader hint), and a write's answer once its entry applied.
 * Pure functions: each part of the host hands the reply to its sink itself.
 */
import { ErrorCode, RingraftError } from '../base/index.ts';
import { NONE, NotLeaderError } from '../core/index.ts';
import { KvError, type KvApplyOutcome } from '../kv/index.ts';
import type { ClientReply } from './client-protocol.ts';

/**
 * The reply refusing request `requestId` because of `error`, an expected refusal (not the
 * leader, proposals full, a KV limit); anything else is a bug and is thrown again.
 */
export function refusalOf(requestId: number, error: unknown): ClientReply {
  if (error instanceof NotLeaderError) return { kind: 'error', requestId, code: error.code, leaderHint: error.leaderId, proposed: false };
  if (error instanceof RingraftError || error instanceof KvError) return { kind: 'error', requestId, code: error.code, leaderHint: NONE, proposed: false };
  throw error;
}

/** The reply to a request this node took as leader and can no longer serve: the client retries at `leaderHint`. */
export function notLeaderReply(requestId: number, leaderHint: number, proposed: boolean): ClientReply {
  return { kind: 'error', requestId, code: ErrorCode.NOT_LEADER, leaderHint, proposed };
}

/** The answer to a write whose entry applied at `index` with `outcome` (a duplicate answers with the index where it first applied). */
export function writeReplyOf(requestId: number, outcome: KvApplyOutcome, index: number): ClientReply {
  // A refusal (a lease not found, say) changed nothing: an error, and no retry will help.
  if (outcome.result?.op === 'refused') return { kind: 'error', requestId, code: outcome.result.code, leaderHint: NONE, proposed: false };
  if (outcome.result !== undefined) return { kind: 'write', requestId, result: outcome.result, index: outcome.appliedAt ?? index };
  const code = outcome.status === 'invalid' ? ErrorCode.INVALID_ARGUMENT : ErrorCode.SESSION_EXPIRED;
  return { kind: 'error', requestId, code, leaderHint: NONE, proposed: true };
}
