/**
 * The data the Raft core consumes and produces. Everything here is plain data: a
 * message or entry handed to or returned by the core must not be mutated afterwards,
 * by either side, because the core and the host may both keep references to it.
 */

/** A node's identity within a cluster: a positive integer (nodes are numbered 1..n). */
export type NodeId = number;

/** Node id 0 means "nobody": no leader known, no vote cast. */
export const NONE: NodeId = 0;

/** The kinds of {@link Entry}, by the number an entry's `type` holds. */
export const EntryType = {
  /** An application command (or an empty entry a new leader appends to commit its term). */
  Normal: 0,
  /** A membership change; `data` holds an encoded {@link ConfChange}. */
  ConfChange: 1,
} as const;
/** An entry's kind: `EntryType.Normal` (0) or `EntryType.ConfChange` (1). */
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** One log entry. Invariant: index >= 1, term >= 1. */
export interface Entry {
  /** The term of the leader that appended it (>= 1). */
  readonly term: number;
  /** Its position in the log (>= 1). */
  readonly index: number;
  /** A command (`Normal`) or a membership change (`ConfChange`). */
  readonly type: EntryType;
  /** The command's bytes, opaque to the core (empty for the entry a new leader appends); for a `ConfChange`, the encoded change. */
  readonly data: Uint8Array;
}

/** What must be durable before a node answers anything that depends on it. */
export interface HardState {
  /** The newest term this node has seen. */
  readonly term: number;
  /** Who this node voted for in `term` (NONE if nobody). */
  readonly vote: NodeId;
  /** Highest index known committed. May lag behind the truth; never ahead of it. */
  readonly commit: number;
}

/**
 * A membership configuration. In a joint configuration `votersOutgoing` is non-empty and
 * decisions need a majority of `voters` and a majority of `votersOutgoing`.
 * `learnersNext` holds voters being demoted to learners: they stay voters of the outgoing
 * half until the joint configuration is left, then become learners.
 */
export interface ConfState {
  /** The voters; in a joint configuration, those of the new (incoming) configuration. */
  readonly voters: readonly NodeId[];
  /** In a joint configuration, the voters of the old configuration; empty otherwise. */
  readonly votersOutgoing: readonly NodeId[];
  /** Members that receive the log but neither vote nor count toward a quorum. */
  readonly learners: readonly NodeId[];
  /** Voters being demoted: learners once the joint configuration is left; empty otherwise. */
  readonly learnersNext: readonly NodeId[];
  /** Whether the leader leaves the joint configuration by itself once it is applied. */
  readonly autoLeave: boolean;
}

/**
 * What a change does to one node: `addVoter` makes it a voter (a learner is promoted),
 * `removeNode` takes it out (voter or learner), `addLearner` makes it a learner (a voter is
 * demoted).
 */
export type ConfChangeOp = 'addVoter' | 'removeNode' | 'addLearner';

/** One change of a {@link ConfChange}. Changes apply in order: the last one naming a node decides its role. */
export interface ConfChangeItem {
  /** What happens to the node. */
  readonly op: ConfChangeOp;
  /** The node it happens to: an integer from 1 to 2^32 - 1 (a u32 in the entry). */
  readonly nodeId: NodeId;
}

/**
 * A membership change. An empty `changes` list means "leave the joint configuration".
 * Changes that touch only learners are applied directly; any change to the voters goes
 * through a joint configuration (Raft §6, joint consensus), left automatically.
 */
export interface ConfChange {
  /** The changes, applied in order: at most 64 (more is an INVALID_ARGUMENT). */
  readonly changes: readonly ConfChangeItem[];
}

/** Where a snapshot stands in the log: the last entry it covers, and the configuration there. */
export interface SnapshotMeta {
  /** The snapshot covers the log up to and including this index. */
  readonly index: number;
  /** The term of the entry at `index`. */
  readonly term: number;
  /** The membership configuration as of `index`. */
  readonly conf: ConfState;
}

/** The state machine's state at a log index, standing in for every entry up to it. */
export interface Snapshot {
  /** The index and term it covers up to, and the configuration there. */
  readonly meta: SnapshotMeta;
  /** The state machine's state at meta.index, opaque to the core. */
  readonly data: Uint8Array;
}

/**
 * One piece of a snapshot in transfer: bytes [offset, offset + data.length) of a snapshot
 * of `totalBytes` bytes. The last chunk ends at totalBytes.
 */
export interface SnapshotChunk {
  /** The whole snapshot's meta, the same in every chunk of it. */
  readonly meta: SnapshotMeta;
  /** The size of the whole snapshot's data, in bytes. */
  readonly totalBytes: number;
  /** Where `data` starts within the snapshot's data, in bytes. */
  readonly offset: number;
  /** This chunk's bytes: at most the `snapshotChunkBytes` setting of them. */
  readonly data: Uint8Array;
}

/** The kinds of {@link Message}, by the number a message's `type` holds (one byte on the wire, where 0 is invalid). */
export const MessageType = {
  /** A pre-candidate asks whether it could win an election in `term` (thesis §9.6); no term or vote changes. */
  PreVote: 1,
  /** The answer to a PreVote: granted unless `reject`. */
  PreVoteResp: 2,
  /** A candidate asks for a vote in `term` (RequestVote, §5.2). */
  Vote: 3,
  /** The answer to a Vote: granted unless `reject`. */
  VoteResp: 4,
  /** The leader's entries for a follower (AppendEntries, §5.3), with its commit index. */
  App: 5,
  /** A follower's answer to an App (or to the last chunk of a snapshot): how far its log matches, or a refusal with a hint. */
  AppResp: 6,
  /** The leader's heartbeat: its commit index, a read round in `context`, and its tick in `sentTick`. */
  Heartbeat: 7,
  /** A follower's answer to a Heartbeat, echoing its `context` and `sentTick`. */
  HeartbeatResp: 8,
  /** One chunk of the leader's snapshot (InstallSnapshot). */
  Snap: 9,
  /** The leader tells the target of a leadership transfer to campaign at once, skipping pre-vote and leases. */
  TimeoutNow: 10,
  /** A follower's answer to a Snap chunk: the byte offset it expects next, or `reject` when it refuses the snapshot (too large). */
  SnapResp: 11,
  /** A follower asks its leader for a read index (a follower read). */
  ReadIndex: 12,
  /** The leader's answer to a ReadIndex, once its leadership is confirmed. */
  ReadIndexResp: 13,
} as const;
/** A message's kind: one of the {@link MessageType} numbers, 1 to 13. */
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/**
 * One message between nodes. Fields not meaningful for a type are 0 / empty.
 *
 * - PreVote/Vote: `term` is the term campaigned for, `logTerm`/`index` the candidate's last
 *   entry; `context` is 1 for a campaign caused by leadership transfer (it may bypass leases).
 * - PreVoteResp/VoteResp: `reject`.
 * - App: `index`/`logTerm` is the entry preceding `entries`; `commit` the leader's commit.
 * - AppResp: on success `index` is the last index now known to match; on reject `index` is
 *   the rejected prevIndex and `rejectHint`/`logTerm` the follower's hint (its last index, or
 *   the first index of its conflicting term and that term) for fast backtracking.
 * - Heartbeat: `commit`, and `context` (a read-index round number or 0); `sentTick` the
 *   leader's tick when sent, echoed in the response to establish leases.
 * - Snap: `snapshot`, one chunk of the leader's snapshot.
 * - SnapResp: `index` the snapshot's index, `rejectHint` the byte offset the follower
 *   expects next (resuming a transfer after a lost chunk, or restarting it at 0).
 * - ReadIndex: a follower asks its leader for a read index (a follower read): `context` the
 *   follower's request id, `index` 1 for a lease read (else 0).
 * - ReadIndexResp: the leader's answer, once its leadership is confirmed: `context` the
 *   request id, `index` the index the follower must apply before it reads.
 */
export interface Message {
  /** What kind of message it is: it says which of the other fields mean something. */
  readonly type: MessageType;
  /** The sender's node id. */
  readonly from: NodeId;
  /** The receiver's node id; a node ignores a message addressed to another. */
  readonly to: NodeId;
  /** The sender's term; for a PreVote and a granted PreVoteResp, the term campaigned for. */
  readonly term: number;
  /** The term of the entry at `index` (votes, App), or of the hint in a refused AppResp. */
  readonly logTerm: number;
  /** A log index, whose meaning depends on `type` (see above). */
  readonly index: number;
  /** An App's entries, consecutive from `index + 1`; empty in every other type. */
  readonly entries: readonly Entry[];
  /** The leader's commit index (App); in a Heartbeat, no further than the follower's log matches. */
  readonly commit: number;
  /** Whether the answer refuses (PreVoteResp, VoteResp, AppResp, SnapResp). */
  readonly reject: boolean;
  /** A refused AppResp's hint index, or a SnapResp's next expected byte offset. */
  readonly rejectHint: number;
  /** Per type: 1 for a campaign a transfer caused (PreVote, Vote), a read round (Heartbeat and its answer), a read request id (ReadIndex and its answer); else 0. */
  readonly context: number;
  /** The leader's tick when it sent a Heartbeat, in ticks since it started, echoed in the answer. */
  readonly sentTick: number;
  /** A Snap's chunk; undefined in every other type. */
  readonly snapshot: SnapshotChunk | undefined;
}

/** A node's role: a `pre-candidate` runs a pre-vote round without changing its term; a `candidate` asks for votes in a new term. */
export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** A read that may be served once the state machine has applied `index`. */
export interface ReadState {
  /** The id the read was asked with (`readIndex(requestId)`). */
  readonly requestId: number;
  /** The log index to apply up to before serving the read: a commit index of the leader that confirmed it. */
  readonly index: number;
}

/** Volatile state worth telling the host about; not persisted. */
export interface SoftState {
  /** The leader this node knows of (NONE, 0, if none). */
  readonly leaderId: NodeId;
  /** This node's role. */
  readonly role: Role;
}

/**
 * What the host must do next. Process a Ready in this order:
 *
 * 1. Persist `snapshot` (if any), then append `entries` and write `hardState` (if any)
 *    to stable storage. If `mustSync`, make them durable (fdatasync) before step 2.
 * 2. Send `messages`. They may depend on the state persisted in step 1 (a vote, an append
 *    acknowledgement), which is why they leave only after it. One exception: when
 *    `messagesBeforePersist` is true (a leader whose term and vote this Ready does not
 *    change), they may leave before or during step 1, because they then depend on nothing
 *    not already durable, and the leader counts its own new entries toward commit only once
 *    advance() reports them durable (Raft thesis §10.2.1).
 * 3. Apply `snapshot` to the state machine (if any), then `committedEntries` in order.
 *    Serve `readStates` once the state machine has applied their index.
 * 4. Call `advance(ready)`. Until then the core will hand out no new Ready.
 */
export interface Ready {
  /** The leader and role, when either changed since the last Ready; undefined otherwise. */
  readonly softState: SoftState | undefined;
  /** The hard state to write in step 1, when it changed since the last Ready; undefined otherwise. */
  readonly hardState: HardState | undefined;
  /** Entries to append in step 1; they replace any stored entries from their first index on. */
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader, to persist in step 1 and apply in step 3; undefined if none. */
  readonly snapshot: Snapshot | undefined;
  /** Committed entries to apply in step 3, in log order; empty while a snapshot is pending. */
  readonly committedEntries: readonly Entry[];
  /** Messages to send in step 2. */
  readonly messages: readonly Message[];
  /** Reads that may be served once the state machine has applied their index. */
  readonly readStates: readonly ReadState[];
  /** Whether step 1 must end with a sync (a new term, vote or entries). */
  readonly mustSync: boolean;
  /**
   * Whether `messages` may be sent before step 1 completes: the node is leader and this
   * Ready changes neither term nor vote. (A single-voter leader elects itself without a vote
   * round, so the Ready that makes it leader also carries its new term: that one must wait.)
   */
  readonly messagesBeforePersist: boolean;
}

export function emptyConfState(voters: readonly NodeId[] = [], learners: readonly NodeId[] = []): ConfState {
  return { voters: [...voters], votersOutgoing: [], learners: [...learners], learnersNext: [], autoLeave: false };
}

/** Builds a message with every field not given set to its empty value. */
export function makeMessage(fields: Partial<Message> & Pick<Message, 'type' | 'from' | 'to' | 'term'>): Message {
  return {
    logTerm: 0,
    index: 0,
    entries: EMPTY_ENTRIES,
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: 0,
    sentTick: 0,
    snapshot: undefined,
    ...fields,
  };
}

export const EMPTY_ENTRIES: readonly Entry[] = Object.freeze([]) as readonly Entry[];
export const EMPTY_DATA = new Uint8Array(0);
