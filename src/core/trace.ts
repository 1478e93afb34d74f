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

/**
 * How a leader replicates to one follower: `probe`, one append at a time until it learns where
 * their logs match; `replicate`, appends streamed within the in-flight window; `snapshot`, a
 * snapshot being sent, and nothing else meanwhile.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** One decision of the core, as its trace sink receives it; `kind` says which. */
export type TraceEvent =
  | {
      /** The node campaigns: a pre-vote round, or an election. */
      readonly kind: 'campaign';
      /** The node that decided. */
      readonly node: NodeId;
      /** Its term before the campaign (an election runs in the next one). */
      readonly term: number;
      /** Whether it is a pre-vote round, which changes no term. */
      readonly preVote: boolean;
      /** Whether a leadership transfer (TimeoutNow) started it. */
      readonly transfer: boolean
    }
  | {
      /** The node granted or refused a request for its vote or pre-vote. */
      readonly kind: 'vote';
      /** The node that decided. */
      readonly node: NodeId;
      /** Its term at the time. */
      readonly term: number;
      /** The node that asked for the vote. */
      readonly candidate: NodeId;
      /** The term the candidate campaigns for. */
      readonly candidateTerm: number;
      /** Whether it was a pre-vote. */
      readonly preVote: boolean;
      /** Whether the vote was granted. */
      readonly granted: boolean;
      /** Why it was granted or refused. */
      readonly reason: VoteReason;
    }
  | {
      /** The node's role changed, or a follower learned who leads its term. */
      readonly kind: 'role';
      /** The node that decided. */
      readonly node: NodeId;
      /** Its term in that role. */
      readonly term: number;
      /** The role it has now. */
      readonly role: Role;
      /** The leader it knows of now (NONE, 0, if none). */
      readonly leader: NodeId;
      /**
       * Why: for a follower, `start`, `newer-term`, `leader-found`, `leader-exists`,
       * `lost-election`, `check-quorum`, `removed` or `requested`; `campaign` for a
       * (pre-)candidate; `won` for a leader.
       */
      readonly reason: FollowReason | 'campaign' | 'won'
    }
  | {
      /** A leader changed how it replicates to a follower. */
      readonly kind: 'progress';
      /** The leader. */
      readonly node: NodeId;
      /** Its term at the time. */
      readonly term: number;
      /** The follower. */
      readonly peer: NodeId;
      /** The follower's state before. */
      readonly from: ProgressState;
      /** Its state now. */
      readonly to: ProgressState;
      /** The log index the follower is known to match up to, after the change. */
      readonly match: number;
      /** The log index the leader sends the follower next, after the change. */
      readonly next: number;
      /**
       * Why: `caught-up` (its log found to match), `rejected` (it refused an append), `stalled`
       * (heartbeats answered, appends not), `snapshot-needed` (its next entry is compacted),
       * `snapshot-done`, `snapshot-failed` (it refused the snapshot). The core does not report
       * `unreachable`.
       */
      readonly reason: 'caught-up' | 'rejected' | 'stalled' | 'snapshot-needed' | 'snapshot-done' | 'snapshot-failed' | 'unreachable';
    }
  | {
      /** A follower's log does not hold the leader's previous entry (§5.3): it refuses, with a hint of where its log ends. */
      readonly kind: 'append-rejected';
      /** The follower. */
      readonly node: NodeId;
      /** Its term at the time. */
      readonly term: number;
      /** The leader whose append it refused. */
      readonly leader: NodeId;
      /** The leader's previous entry: its index. */
      readonly index: number;
      /** The leader's previous entry: its term. */
      readonly logTerm: number;
      /** The follower's last entry at or below `index` with a term at or below `logTerm`: its index. */
      readonly hintIndex: number;
      /** That entry's term. */
      readonly hintTerm: number;
    }
  | {
      /** A follower replaced a conflicting suffix of its log, from `fromIndex` on, with the leader's entries (§5.3). */
      readonly kind: 'truncate';
      /** The follower. */
      readonly node: NodeId;
      /** Its term at the time. */
      readonly term: number;
      /** The leader whose entries replaced the suffix. */
      readonly leader: NodeId;
      /** The first log index replaced. */
      readonly fromIndex: number;
      /** The follower's last index before the leader's entries replaced the suffix. */
      readonly lastIndexBefore: number;
    }
  | {
      /** A leader starts sending its snapshot to a follower whose next entry its log no longer holds. */
      readonly kind: 'snapshot-sent';
      /** The leader. */
      readonly node: NodeId;
      /** Its term at the time. */
      readonly term: number;
      /** The follower. */
      readonly to: NodeId;
      /** The last log index the snapshot covers. */
      readonly index: number;
      /** The term of the entry at `index`. */
      readonly snapshotTerm: number;
      /** The snapshot's size in bytes. */
      readonly bytes: number
    }
  | {
      /** A chunk of the snapshot at `index` being sent to `to` went unanswered for an election timeout: the one at `offset` is sent again. */
      readonly kind: 'snapshot-resent';
      /** The leader. */
      readonly node: NodeId;
      /** Its term at the time. */
      readonly term: number;
      /** The follower. */
      readonly to: NodeId;
      /** The last log index the snapshot covers. */
      readonly index: number;
      /** Where the chunk sent again starts in the snapshot, in bytes. */
      readonly offset: number
    }
  | {
      /** The node applied a committed membership change, or skipped one that no longer applies. */
      readonly kind: 'conf-change';
      /** The node that applied it. */
      readonly node: NodeId;
      /** Its term at the time. */
      readonly term: number;
      /** The log index of the change's entry. */
      readonly index: number;
      /** False when the entry no longer applies to the configuration (skipped alike everywhere). */
      readonly applied: boolean;
      /** The voters now (of the new configuration, when joint). */
      readonly voters: readonly NodeId[];
      /** The old configuration's voters while joint; empty otherwise. */
      readonly votersOutgoing: readonly NodeId[];
      /** The learners now. */
      readonly learners: readonly NodeId[];
    };

/** Receives each {@link TraceEvent}, synchronously, as the core makes the decision. */
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
