/**
 * `RawNode`: the Raft core as a library (`ringraft/core`), in the shape etcd's raft made
 * familiar. It wraps a {@link RaftNode} and exposes what a host needs and nothing it could
 * break: time (`tick`), messages in (`step`), proposals, reads, transfers and membership
 * changes, the Ready cycle (`hasReady`, `ready`, `advance`) and a read-only `status()`. The
 * node's mutable internals (its log, progress table, term) are not reachable from here.
 *
 * The host does the I/O. For each Ready, in this order (see {@link Ready}):
 * 1. persist `snapshot`, `entries` and `hardState` (`storage.persist(rd)` does it for
 *    `MemoryStorage` and `WalStorage`, from `ringraft/storage`); sync if `mustSync`;
 * 2. send `messages` (before step 1 when `messagesBeforePersist`);
 * 3. apply `snapshot`, then `committedEntries`; serve `readStates` once applied that far;
 * 4. call `advance(rd)`.
 *
 * The boundary is checked: a message that is not a well-formed {@link Message} for this node,
 * a Ready advanced twice or out of turn, a bad argument, each is a {@link RingraftError} with
 * code INVALID_ARGUMENT, and the node is unharmed. A proposal anywhere but on the leader is a
 * {@link NotLeaderError} (NOT_LEADER) with the leader's id when known. Messages that come over
 * a network should be decoded with `decodeMessage` (exported beside this class), which
 * checks every field and bounds every length.
 *
 * Stability: experimental until 1.0; the Ready contract and the message and entry shapes
 * are what ringraft's own hosts run on and change only with a major version.
 */
import { ErrorCode, RingraftError } from '../base/index.ts';
import type { ConfChange, ConfState, Entry, Message, NodeId, Ready, Role, Snapshot, SnapshotChunk } from './types.ts';
import { EntryType, MessageType, NONE } from './types.ts';
import { RaftNode, type RaftConfig, type ReadMode } from './raft-node.ts';
import type { ProgressState } from './trace.ts';

/** What a RawNode is built from: the same as the core's own `RaftNode` (identity, storage, seed, bootstrap voters, settings). */
export type RawNodeConfig = RaftConfig;

/** A follower's replication progress, as the leader sees it. */
export interface RawNodeProgress {
  /** The highest index known to match the leader's log. */
  readonly match: number;
  /** The next index the leader will send. */
  readonly next: number;
  /** How the leader replicates to it now: probing, streaming, or sending a snapshot. */
  readonly state: ProgressState;
}

/** A copy of the node's state: changing it changes nothing. */
export interface RawNodeStatus {
  /** This node's id. */
  readonly id: NodeId;
  /** Its role now. */
  readonly role: Role;
  /** Its current term: the newest it has seen. */
  readonly term: number;
  /** Whom this node voted for in `term` (NONE, 0, if nobody). */
  readonly vote: NodeId;
  /** The leader this node knows of (NONE, 0, if none). */
  readonly leaderId: NodeId;
  /** The highest log index this node knows to be committed. */
  readonly commitIndex: number;
  /** The highest log index applied, as the host's `advance()` calls reported it. */
  readonly appliedIndex: number;
  /** The first log index still held (entries before it are in the snapshot). */
  readonly firstIndex: number;
  /** The last log index, whether or not its entry is durable yet. */
  readonly lastIndex: number;
  /** The membership configuration in force on this node (a copy). */
  readonly conf: ConfState;
  /** On the leader, each member's progress (itself included); undefined elsewhere. */
  readonly progress: ReadonlyMap<NodeId, RawNodeProgress> | undefined;
  /** The node leadership is being handed to (NONE if no transfer is under way). */
  readonly leadTransferee: NodeId;
}

const MESSAGE_TYPES = new Set<number>(Object.values(MessageType));
const ENTRY_TYPES = new Set<number>(Object.values(EntryType));

/**
 * The Raft core as a library: one node that takes ticks and messages and hands out Readys.
 * For each Ready the host persists (`storage.persist(rd)`), sends `messages`, applies, then
 * calls `advance(rd)`; {@link Ready} gives the order in full.
 */
export class RawNode {
  readonly #raft: RaftNode;
  /** The Ready handed out and not yet advanced. */
  #outstanding: Ready | undefined;

  /** Builds the node over `config.storage`: a brand-new cluster bootstraps with `config.voters`; anything else recovers from the storage. */
  constructor(config: RawNodeConfig) {
    if (typeof config !== 'object' || config === null) throw invalid('a RawNode needs a config object');
    if (!isNodeId(config.id)) throw invalid(`config.id must be a positive integer, got ${String(config.id)}`);
    if (typeof config.storage !== 'object' || config.storage === null) throw invalid('config.storage must be a Storage (MemoryStorage or WalStorage from ringraft/storage)');
    if (!(Number.isInteger(config.seed) && config.seed >= 0 && config.seed < 2 ** 32)) throw invalid(`config.seed must be an integer in [0, 2^32), got ${String(config.seed)}`);
    for (const name of ['voters', 'learners'] as const) {
      const ids = config[name];
      if (ids !== undefined && !(Array.isArray(ids) && ids.every(isNodeId))) throw invalid(`config.${name} must be an array of positive integer node ids`);
    }
    this.#raft = new RaftNode(config);
  }

  /** This node's id, as its config gave it. */
  get id(): NodeId {
    return this.#raft.id;
  }

  /** Advances the node's clock by one tick: elections and heartbeats are counted in ticks. */
  tick(): void {
    this.#raft.tick();
  }

  /**
   * Hands the node a message from a peer. A message for another node is ignored, as the
   * core does; one that is not a well-formed message is refused with INVALID_ARGUMENT.
   */
  step(message: Message): void {
    checkMessage(message, this.#raft.id);
    this.#raft.step(message);
  }

  /**
   * Proposes `data` as a new log entry; returns its index. Leader only (else NotLeaderError);
   * PROPOSALS_FULL past the uncommitted bound, PROPOSAL_TOO_LARGE past `proposalBytesMax`,
   * TRANSFER_IN_PROGRESS while leadership is being handed over. The node keeps a copy: the
   * caller may reuse `data`.
   */
  propose(data: Uint8Array): number {
    if (!(data instanceof Uint8Array)) throw invalid('a proposal is a Uint8Array');
    return this.#raft.propose(data.slice());
  }

  /**
   * Asks for a linearizable read: a ReadState with `requestId` comes in a later Ready, and the
   * read may be served once the state machine has applied its index. 'lease' answers from the
   * leader's lease without a round of heartbeats (it needs checkQuorum).
   */
  readIndex(requestId: number, mode: ReadMode = 'safe'): void {
    if (!(Number.isSafeInteger(requestId) && requestId >= 0)) throw invalid(`requestId must be a non-negative integer, got ${String(requestId)}`);
    if (mode !== 'safe' && mode !== 'lease') throw invalid(`a read mode is 'safe' or 'lease', got ${String(mode)}`);
    this.#raft.readIndex(requestId, mode);
  }

  /** Hands leadership to voter `target` (leader only). */
  transferLeadership(target: NodeId): void {
    if (!isNodeId(target)) throw invalid(`target must be a positive integer node id, got ${String(target)}`);
    this.#raft.transferLeadership(target);
  }

  /** Proposes a membership change (leader only; one at a time); returns its log index. */
  proposeConfChange(change: ConfChange): number {
    if (typeof change !== 'object' || change === null || !Array.isArray(change.changes)) throw invalid('a conf change is { changes: [{ op, nodeId }, ...] }');
    for (const c of change.changes) {
      if (typeof c !== 'object' || c === null || !(c.op === 'addVoter' || c.op === 'removeNode' || c.op === 'addLearner') || !isNodeId(c.nodeId)) {
        throw invalid(`a change is { op: 'addVoter' | 'removeNode' | 'addLearner', nodeId }, got ${JSON.stringify(c)}`);
      }
    }
    return this.#raft.proposeConfChange(change);
  }

  /** Ticks until the node acts by itself (at least 1): a host with nothing to do may sleep that long, then tick that many times. */
  ticksUntilDue(): number {
    return this.#raft.ticksUntilDue();
  }

  /** Whether a Ready waits; false while the last one handed out has not been advanced. */
  hasReady(): boolean {
    return this.#outstanding === undefined && this.#raft.hasReady();
  }

  /** The next Ready, to process in order and then {@link advance}; INVALID_ARGUMENT while the last one is not advanced. */
  ready(): Ready {
    if (this.#outstanding !== undefined) throw invalid('advance() the last Ready before asking for the next');
    const rd = this.#raft.ready();
    this.#outstanding = rd;
    return rd;
  }

  /** Says that `rd`, the last Ready handed out, has been persisted, sent and applied. */
  advance(rd: Ready): void {
    if (rd === undefined || rd !== this.#outstanding) throw invalid('advance() takes the last Ready that ready() returned, once');
    this.#outstanding = undefined;
    this.#raft.advance(rd);
  }

  /** A copy of the node's state. */
  status(): RawNodeStatus {
    const r = this.#raft;
    let progress: Map<NodeId, RawNodeProgress> | undefined;
    if (r.role === 'leader') {
      progress = new Map();
      for (const [id, pr] of r.progress) progress.set(id, { match: pr.match, next: pr.next, state: pr.state });
    }
    return {
      id: r.id,
      role: r.role,
      term: r.term,
      vote: r.vote,
      leaderId: r.leaderId,
      commitIndex: r.log.committed,
      appliedIndex: r.log.applied,
      firstIndex: r.log.firstIndex(),
      lastIndex: r.log.lastIndex(),
      conf: copyConf(r.conf),
      progress,
      leadTransferee: r.leadTransferee,
    };
  }
}

function invalid(message: string): RingraftError {
  return new RingraftError(ErrorCode.INVALID_ARGUMENT, message);
}

function isNodeId(x: unknown): x is NodeId {
  return typeof x === 'number' && Number.isSafeInteger(x) && x > NONE;
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function copyConf(c: ConfState): ConfState {
  return { voters: [...c.voters], votersOutgoing: [...c.votersOutgoing], learners: [...c.learners], learnersNext: [...c.learnersNext], autoLeave: c.autoLeave };
}

/** INVALID_ARGUMENT unless `m` is a well-formed message to node `self`'s cluster (its fields as {@link Message} documents). */
function checkMessage(m: Message, self: NodeId): void {
  if (typeof m !== 'object' || m === null) throw invalid('a message is an object (decodeMessage makes one from bytes)');
  if (!MESSAGE_TYPES.has(m.type)) throw invalid(`unknown message type ${String(m.type)}`);
  if (!isNodeId(m.from) || !isNodeId(m.to)) throw invalid('a message names its sender and receiver by positive integer ids');
  if (m.from === self && m.to === self) throw invalid('a message from this node to itself');
  for (const name of ['term', 'logTerm', 'index', 'commit', 'rejectHint', 'context', 'sentTick'] as const) {
    if (!isCount(m[name])) throw invalid(`message field ${name} must be a non-negative integer, got ${String(m[name])}`);
  }
  if (typeof m.reject !== 'boolean') throw invalid('message field reject must be a boolean');
  if (!Array.isArray(m.entries)) throw invalid('message field entries must be an array');
  let expected = m.index + 1;
  for (const e of m.entries as readonly Entry[]) {
    if (typeof e !== 'object' || e === null || !ENTRY_TYPES.has(e.type) || !(e.data instanceof Uint8Array) || !isCount(e.term) || e.term < 1 || e.index !== expected) {
      throw invalid(`entries must be consecutive from index ${m.index + 1}, each { index, term >= 1, type, data: Uint8Array }`);
    }
    expected++;
  }
  if (m.entries.length > 0 && m.type !== MessageType.App) throw invalid('only an App message carries entries');
  if (m.type === MessageType.Snap) checkChunk(m.snapshot);
  else if (m.snapshot !== undefined) throw invalid('only a Snap message carries a snapshot');
}

function checkChunk(c: SnapshotChunk | undefined): void {
  if (typeof c !== 'object' || c === null) throw invalid('a Snap message carries a snapshot chunk');
  const meta = c.meta as Snapshot['meta'] | undefined;
  if (typeof meta !== 'object' || meta === null || !isCount(meta.index) || !isCount(meta.term) || typeof meta.conf !== 'object' || meta.conf === null) {
    throw invalid('a snapshot chunk carries meta { index, term, conf }');
  }
  for (const name of ['voters', 'votersOutgoing', 'learners', 'learnersNext'] as const) {
    const ids = meta.conf[name];
    if (!(Array.isArray(ids) && ids.every(isNodeId))) throw invalid(`snapshot conf.${name} must be an array of node ids`);
  }
  if (!(c.data instanceof Uint8Array) || !isCount(c.offset) || !isCount(c.totalBytes) || c.offset + c.data.length > c.totalBytes) {
    throw invalid('a snapshot chunk is bytes [offset, offset + data.length) of totalBytes');
  }
}
