/**
 * The core's decisions, reported as they are made to an optional trace sink
 * (`RaftConfig.trace`): votes granted or refused and why, campaigns, role changes and why a
 * node stepped down, a follower's progress changing state, a follower refusing an append or
 * replacing a conflicting suffix of its log, snapshots sent, configuration changes applied. Tracing is off by default and free when off: every report is behind a
 * check of the sink, so no event object is built. The host publishes these events on
 * `node:diagnostics_channel`; the simulator keeps the last ones of each node for its failure
 * reports; the protocol scenarios print them.
 *
 * Every event names the node that decided (`node`) and its term at the time (`term`).
 */
import type { NodeId, Role } from './types.ts';

/** Why a vote was refused (or `granted`). */
export type VoteReason =
  /** The candidate's log is at least as up to date as ours (§5.4.1), and we may vote. */
  | 'granted'
  /** We voted for another candidate in this term. */
  | 'voted-for-another'
  /** We follow a leader of this term. */
  | 'have-leader'
  /** The candidate's log is behind ours (§5.4.1). */
  | 'log-behind'
  /** We heard from a leader within an election timeout (§6, leases), so we disregard the campaign. */
  | 'in-lease'
  /** The candidate's term is older than ours. */
  | 'stale-term';

/** Why a node became a follower. */
export type FollowReason =
  /** The node started (or restarted). */
  | 'start'
  /** A message of a newer term arrived. */
  | 'newer-term'
  /** A follower that knew no leader of its term (or believed another) heard from this term's leader. */
  | 'leader-found'
  /** A leader of the candidate's term exists. */
  | 'leader-exists'
  /** The candidate lost its (pre-)election. */
  | 'lost-election'
  /** A leader with check-quorum heard from no quorum for an election timeout. */
  | 'check-quorum'
  /** A removed leader gave up handing leadership over. */
  | 'removed'
  /** A test or the host asked for it. */
  | 'requested';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export type TraceEvent =
  | { readonly kind: 'campaign'; readonly node: NodeId; readonly term: number; readonly preVote: boolean; readonly transfer: boolean }
  | {
      readonly kind: 'vote';
      readonly node: NodeId;
      readonly term: number;
      readonly candidate: NodeId;
      /** The term the candidate campaigns for. */
      readonly candidateTerm: number;
      readonly preVote: boolean;
      readonly granted: boolean;
      readonly reason: VoteReason;
    }
  | { readonly kind: 'role'; readonly node: NodeId; readonly term: number; readonly role: Role; readonly leader: NodeId; readonly reason: FollowReason | 'campaign' | 'won' }
  | {
      readonly kind: 'progress';
      readonly node: NodeId;
      readonly term: number;
      readonly peer: NodeId;
      readonly from: ProgressState;
      readonly to: ProgressState;
      readonly match: number;
      readonly next: number;
      readonly reason: 'caught-up' | 'rejected' | 'stalled' | 'snapshot-needed' | 'snapshot-done' | 'snapshot-failed' | 'unreachable';
    }
  | {
      /** A follower's log does not hold the leader's previous entry (§5.3): it refuses, with a hint of where its log ends. */
      readonly kind: 'append-rejected';
      readonly node: NodeId;
      readonly term: number;
      readonly leader: NodeId;
      /** The leader's previous entry: index and term. */
      readonly index: number;
      readonly logTerm: number;
      /** The follower's last entry at or below `index` with a term at or below `logTerm`. */
      readonly hintIndex: number;
      readonly hintTerm: number;
    }
  | {
      /** A follower replaced a conflicting suffix of its log, from `fromIndex` on, with the leader's entries (§5.3). */
      readonly kind: 'truncate';
      readonly node: NodeId;
      readonly term: number;
      readonly leader: NodeId;
      readonly fromIndex: number;
      /** The follower's last index before the leader's entries replaced the suffix. */
      readonly lastIndexBefore: number;
    }
  | { readonly kind: 'snapshot-sent'; readonly node: NodeId; readonly term: number; readonly to: NodeId; readonly index: number; readonly snapshotTerm: number; readonly bytes: number }
  /** A chunk of the snapshot at `index` being sent to `to` went unanswered for an election timeout: the one at `offset` is sent again. */
  | { readonly kind: 'snapshot-resent'; readonly node: NodeId; readonly term: number; readonly to: NodeId; readonly index: number; readonly offset: number }
  | {
      readonly kind: 'conf-change';
      readonly node: NodeId;
      readonly term: number;
      readonly index: number;
      /** False when the entry no longer applies to the configuration (skipped alike everywhere). */
      readonly applied: boolean;
      readonly voters: readonly NodeId[];
      readonly votersOutgoing: readonly NodeId[];
      readonly learners: readonly NodeId[];
    };

export type TraceSink = (event: TraceEvent) => void;

/** One line for an event, the same in every report: `3 t5 vote for 1 (t6) refused: log-behind`. */
export function formatTraceEvent(e: TraceEvent): string {
  const head = `${e.node} t${e.term}`;
  switch (e.kind) {
    case 'campaign':
      return `${head} campaign${e.preVote ? ' (pre-vote)' : ''}${e.transfer ? ' (transfer)' : ''}`;
    case 'vote':
      return `${head} ${e.preVote ? 'pre-vote' : 'vote'} for ${e.candidate} (t${e.candidateTerm}) ${e.granted ? 'granted' : `refused: ${e.reason}`}`;
    case 'role':
      return `${head} becomes ${e.role}${e.leader !== 0 && e.role === 'follower' ? ` of ${e.leader}` : ''} (${e.reason})`;
    case 'progress':
      return `${head} progress of ${e.peer} ${e.from} -> ${e.to} (${e.reason}) match ${e.match} next ${e.next}`;
    case 'append-rejected':
      return `${head} append from ${e.leader} after ${e.logTerm}/${e.index} rejected, hint ${e.hintTerm}/${e.hintIndex}`;
    case 'truncate':
      return `${head} log from ${e.fromIndex} to ${e.lastIndexBefore} replaced by ${e.leader}'s entries`;
    case 'snapshot-sent':
      return `${head} snapshot ${e.snapshotTerm}/${e.index} (${e.bytes} bytes) to ${e.to}`;
    case 'snapshot-resent':
      return `${head} snapshot chunk of ${e.index} at byte ${e.offset} resent to ${e.to}`;
    case 'conf-change':
      return `${head} conf change at ${e.index} ${e.applied ? 'applied' : 'skipped'}: voters [${e.voters.join(',')}]${e.votersOutgoing.length > 0 ? ` && [${e.votersOutgoing.join(',')}]` : ''}${e.learners.length > 0 ? ` learners [${e.learners.join(',')}]` : ''}`;
  }
}
