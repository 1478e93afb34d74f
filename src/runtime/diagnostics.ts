/**
 * What ringraft publishes on `node:diagnostics_channel`, for whoever wants to watch a
 * cluster work (a log, a metrics exporter, a test) without a logger passed in. Subscribe
 * with `diagnostics_channel.subscribe(name, fn)`; nothing is sent while a channel has no
 * subscribers, and checking costs one read of `hasSubscribers`. Three channels, each with
 * its own message shape:
 *
 * **`ringraft:raft`** ({@link RAFT_CHANNEL}): the Raft core's decisions, each a
 * {@link TraceEvent} of `core/trace.ts` exactly as the core reported it (`formatTraceEvent`
 * prints one as a line; trace.ts documents each field). Every event names the deciding node
 * (`node`) and its term (`term`); `kind` is one of:
 *
 * | kind | fields beyond node and term |
 * | --- | --- |
 * | `campaign` | `preVote`, `transfer` |
 * | `vote` | `candidate`, `candidateTerm`, `preVote`, `granted`, `reason` (`granted`, `voted-for-another`, `have-leader`, `log-behind`, `in-lease`, `stale-term`) |
 * | `role` | `role` (`follower`, `pre-candidate`, `candidate`, `leader`), `leader`, `reason` (`start`, `newer-term`, `campaign`, `won`, `check-quorum`, ...) |
 * | `progress` | `peer`, `from`, `to` (`probe`, `replicate`, `snapshot`), `match`, `next`, `reason` |
 * | `append-rejected` | `leader`, `index`, `logTerm` (the leader's previous entry), `hintIndex`, `hintTerm` |
 * | `truncate` | `leader`, `fromIndex`, `lastIndexBefore` |
 * | `snapshot-sent` | `to`, `index`, `snapshotTerm`, `bytes` |
 * | `snapshot-resent` | `to`, `index`, `offset` (a chunk unanswered for an election timeout, sent again) |
 * | `conf-change` | `index`, `applied`, `voters`, `votersOutgoing`, `learners` |
 *
 * Decisions are rare (elections, a follower's progress changing state, a follower's log
 * disagreeing with its leader's, configuration changes, snapshots), never one per entry:
 * measured twice on a 3-node cluster, its start made 19 and 27, a crash and restart of its
 * leader 19, of a follower 2, and 5 s idle or 3 s of writes (14,592 and 43,712) none. Every `NodeHost` publishes its node's on the channel of its own thread. A
 * channel is per thread, so a cluster's node threads post their events to the main thread,
 * where the `Cluster` publishes them on the main thread's `ringraft:raft`: subscribe there.
 * They post them always, whether or not anyone listens on the main thread: Node.js says
 * nothing when a channel gains a subscriber, so workers told to forward only while someone
 * listens would miss what happens between a subscription and the next look, and looking
 * takes a timer or a call; a few messages per election cost less than either (see
 * `ForwardedDiagnostic` in worker-protocol.ts).
 *
 * **`ringraft:node`** ({@link NODE_CHANNEL}): a cluster's nodes coming and going, published
 * by the `Cluster` on the main thread, each a {@link NodeEvent}.
 *
 * **`ringraft:wal:recovery`** (`walRecoveryChannel` of storage/wal-storage.ts): what opening
 * a WAL repaired, `{ dir, tornTail, deletedFiles }`. A cluster's nodes open their WALs in
 * their threads, which forward these to the main thread like the Raft events.
 *
 * Several clusters in one process publish on the same channels; the events name nodes by
 * id only.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import type { ErrorCode } from '../base/index.ts';
import type { TraceEvent, TraceSink } from '../core/index.ts';
import { walRecoveryChannel } from '../storage/index.ts';
import type { ForwardedDiagnostic } from './worker-protocol.ts';

/** The name of the channel of the Raft core's decisions: each message a {@link TraceEvent}. */
export const RAFT_CHANNEL = 'ringraft:raft';
/** The name of the channel of a cluster's node lifecycle: each message a {@link NodeEvent}. */
export const NODE_CHANNEL = 'ringraft:node';

/** A node of a cluster came or went, as the main thread saw it. */
export type NodeEvent =
  | {
      /** Node `node` runs, for the first time since the cluster was created or opened. */
      readonly kind: 'started';
      /** The node's id. */
      readonly node: number
    }
  | {
      /** Node `node` runs again after it was down: by `restart()`, or by itself (`automatic`) after a full disk. */
      readonly kind: 'restarted';
      /** The node's id. */
      readonly node: number;
      /** Whether it came back by itself (after a full disk) rather than by `restart()`. */
      readonly automatic: boolean
    }
  | {
      /**
       * Node `node`, which ran, is down. With `code` and `message` when by no one's choice (the
       * reason `status()` gives: NO_SPACE, IO_ERROR, CORRUPT_LOG, NODE_DOWN, ...); without, when
       * it was asked to stop (`crash()`, `removeNode()`, `close()`).
       */
      readonly kind: 'down';
      /** The node's id. */
      readonly node: number;
      /** Why it went down, when by no one's choice; absent when it was asked to stop. */
      readonly code?: ErrorCode;
      /** That failure's message, with `code`. */
      readonly message?: string
    }
  | {
      /** A start (or restart) of node `node` failed before it ran: it is down with this reason. */
      readonly kind: 'start-failed';
      /** The node's id. */
      readonly node: number;
      /** Why the start failed (STATE_LOST, CONFIG_MISMATCH, CORRUPT_LOG, NO_SPACE, ...). */
      readonly code: ErrorCode;
      /** That failure's message. */
      readonly message: string
    }
  | {
      /** Node `node` was added by `addNode()` (or `replaceNode()`) and is a voter now. */
      readonly kind: 'added';
      /** The node's id. */
      readonly node: number
    }
  | {
      /** Node `node` was removed by `removeNode()` (or `replaceNode()`) and its thread stopped. */
      readonly kind: 'removed';
      /** The node's id. */
      readonly node: number
    };

// Held here for the life of the module: a channel nobody holds may be collected along with
// its subscribers on some Node.js versions.
const raftChannel = diagnostics_channel.channel(RAFT_CHANNEL);
const nodeChannel = diagnostics_channel.channel(NODE_CHANNEL);

/** Whether anyone on this thread listens to `ringraft:raft`. */
export function hasRaftSubscribers(): boolean {
  return raftChannel.hasSubscribers;
}

/** Publishes a Raft decision on this thread's `ringraft:raft`, if anyone listens. */
export function publishRaftEvent(event: TraceEvent): void {
  if (raftChannel.hasSubscribers) raftChannel.publish(event);
}

/** Publishes a node's coming or going on this thread's `ringraft:node`, if anyone listens. */
export function publishNodeEvent(event: NodeEvent): void {
  if (nodeChannel.hasSubscribers) nodeChannel.publish(event);
}

/**
 * Publishes again, on this thread's channel of the same name, a diagnostics message a
 * node's thread forwarded (see {@link ForwardedDiagnostic}), if anyone listens here.
 */
export function publishForwarded(d: ForwardedDiagnostic): void {
  if (d.channel === RAFT_CHANNEL) publishRaftEvent(d.message);
  else if (walRecoveryChannel.hasSubscribers) walRecoveryChannel.publish(d.message);
}

/**
 * The trace sink a host gives its core: `caller`'s sink, if any, then this thread's
 * `ringraft:raft`. Costs one property read per decision when no one listens.
 */
export function publishingTraceSink(caller: TraceSink | undefined): TraceSink {
  if (caller === undefined) return publishRaftEvent;
  return (event) => {
    caller(event);
    publishRaftEvent(event);
  };
}
