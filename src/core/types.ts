/**
 * The data the Raft core consumes and produces. Everything here is plain data: a
 * message or entry handed to or returned by the core must not be mutated afterwards,
 * by either side, because the core and the host may both keep references to it.
 */

/** A node's identity within a cluster: a positive integer (nodes are numbered 1..n). */
export type NodeId = number;

/** Node id 0 means "nobody": no leader known, no vote cast. */
export const NONE: NodeId = 0;

export const EntryType = {
  /** An application command (or an empty entry a new leader appends to commit its term). */
  Normal: 0,
  /** A membership change; `data` holds an encoded {@link ConfChange}. */
  ConfChange: 1,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** One log entry. Invariant: index >= 1, term >= 1. */
export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must be durable before a node answers anything that depends on it. */
export interface HardState {
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
  readonly voters: readonly NodeId[];
  readonly votersOutgoing: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly learnersNext: readonly NodeId[];
  /** Whether the leader leaves the joint configuration by itself once it is applied. */
  readonly autoLeave: boolean;
}

export type ConfChangeOp = 'addVoter' | 'removeNode' | 'addLearner';

export interface ConfChangeItem {
  readonly op: ConfChangeOp;
  readonly nodeId: NodeId;
}

/**
 * A membership change. An empty `changes` list means "leave the joint configuration".
 * Changes that touch only learners are applied directly; any change to the voters goes
 * through a joint configuration (Raft §6, joint consensus), left automatically.
 */
export interface ConfChange {
  readonly changes: readonly ConfChangeItem[];
}

export interface SnapshotMeta {
  /** The snapshot covers the log up to and including this index. */
  readonly index: number;
  readonly term: number;
  readonly conf: ConfState;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** The state machine's state at meta.index, opaque to the core. */
  readonly data: Uint8Array;
}

/**
 * One piece of a snapshot in transfer: bytes [offset, offset + data.length) of a snapshot
 * of `totalBytes` bytes. The last chunk ends at totalBytes.
 */
export interface SnapshotChunk {
  readonly meta: SnapshotMeta;
  readonly totalBytes: number;
  readonly offset: number;
  readonly data: Uint8Array;
}

export const MessageType = {
  PreVote: 1,
  PreVoteResp: 2,
  Vote: 3,
  VoteResp: 4,
  App: 5,
  AppResp: 6,
  Heartbeat: 7,
  HeartbeatResp: 8,
  Snap: 9,
  TimeoutNow: 10,
  SnapResp: 11,
  ReadIndex: 12,
  ReadIndexResp: 13,
} as const;
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
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  readonly logTerm: number;
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly reject: boolean;
  readonly rejectHint: number;
  readonly context: number;
  readonly sentTick: number;
  readonly snapshot: SnapshotChunk | undefined;
}

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** A read that may be served once the state machine has applied `index`. */
export interface ReadState {
  readonly requestId: number;
  readonly index: number;
}

/** Volatile state worth telling the host about; not persisted. */
export interface SoftState {
  readonly leaderId: NodeId;
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
  readonly softState: SoftState | undefined;
  readonly hardState: HardState | undefined;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | undefined;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
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
