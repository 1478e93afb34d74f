/**
 * RaftNode: the pure Raft state machine of one node. It does no I/O and reads no clock:
 * time arrives through {@link RaftNode.tick}, messages through {@link RaftNode.step}, and
 * randomness from the seeded generator made from `config.seed`. What the host must persist,
 * send and apply comes out of {@link RaftNode.ready}; see {@link Ready} for the contract.
 *
 * Roles dispatch through the `stepRole` and `tickRole` function fields set in `become*`;
 * the term checks common to every role happen once, in `step`.
 *
 * Methods marked "protected" are the seams where the bug-planting test suite substitutes a
 * broken rule to show that the simulator notices; they are not an extension API.
 */
import { assert, ErrorCode, fail, RingraftError } from '../base/index.ts';
import {
  allMembers,
  decodeConfChange,
  encodeConfChange,
  isJoint,
  isVoter,
  nextConf,
} from './conf-change.ts';
import { NotLeaderError } from './errors.ts';
import { Progress } from './progress.ts';
import { jointCommitted, jointVoteResult } from './quorum.ts';
import { RaftLog } from './raft-log.ts';
import { Rand } from './rand.ts';
import { ReadOnly } from './read-only.ts';
import { resolveRaftSettings, type RaftSettings, type RaftSettingsInput } from './settings.ts';
import { ENTRY_FRAMING_BYTES, entryBytes, type Storage } from './storage.ts';
import type { FollowReason, ProgressState, TraceEvent, TraceSink, VoteReason } from './trace.ts';
import {
  EMPTY_DATA,
  EMPTY_ENTRIES,
  EntryType,
  MessageType,
  NONE,
  emptyConfState,
  makeMessage,
  type ConfChange,
  type ConfChangeItem,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type ReadState,
  type Ready,
  type Role,
  type Snapshot,
  type SnapshotMeta,
  type SoftState,
} from './types.ts';

/** A removed leader steps down after this many failed hand-offs (one per election timeout). */
const HAND_OFF_ATTEMPTS_MAX = 3;
/** The encoded size of the conf change that leaves a joint configuration. */
const LEAVE_JOINT_BYTES = encodeConfChange({ changes: [] }).length;

/**
 * What a node is built from: its identity, its storage, its seed, the bootstrap
 * configuration, an optional trace sink, and any of the Raft settings (see settings.ts for
 * each one's meaning and default). An unknown name or a bad value is an INVALID_ARGUMENT.
 */
export interface RaftConfig extends RaftSettingsInput {
  readonly id: NodeId;
  readonly storage: Storage;
  /** Seeds the generator behind randomized election timeouts. */
  readonly seed: number;
  /**
   * The initial voters, used only to bootstrap a brand-new cluster (empty storage). A node
   * that joins an existing cluster is started with none and learns the configuration from
   * the leader.
   */
  readonly voters?: readonly NodeId[];
  /** The initial learners, used only to bootstrap a brand-new cluster. */
  readonly learners?: readonly NodeId[];
  /** Receives the node's decisions as they are made (see trace.ts); off, and free, when absent. */
  readonly trace?: TraceSink;
}

/**
 * How a read index is confirmed: `safe`, by a heartbeat round at the leader; `lease`, on the
 * leader's lease without one (it needs checkQuorum), falling back to `safe` when it does not hold.
 */
export type ReadMode = 'safe' | 'lease';

type StepFn = (m: Message) => void;
type TickFn = () => void;

interface PendingRead {
  readonly requestId: number;
  readonly mode: ReadMode;
  /** Who asked: this node, or a follower (then answered with a ReadIndexResp). */
  readonly from: NodeId;
}

export class RaftNode {
  readonly id: NodeId;
  readonly log: RaftLog;
  /** The settings this node runs with, resolved (see settings.ts). */
  readonly settings: RaftSettings;
  readonly electionTimeoutTicks: number;
  readonly heartbeatIntervalTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  private readonly inflightMessagesMax: number;
  private readonly inflightBytesMax: number;
  private readonly appendBytesMax: number;
  private readonly proposalBytesMax: number;
  private readonly uncommittedBytesMax: number;
  private readonly leaseMarginTicks: number;
  private readonly snapshotChunkBytes: number;
  private readonly snapshotBytesMax: number;
  /** The trace sink, or undefined: every report is guarded by a check of it, so none is built when off. */
  private readonly trace: TraceSink | undefined;
  private readonly rand: Rand;
  /**
   * Follower only: the snapshot being received from `from` in `term`. Invariant:
   * received <= buffer.length; it replaces the log only when complete, so a half-received
   * snapshot never touches the log.
   */
  private incomingSnapshot:
    | { readonly meta: SnapshotMeta; readonly term: number; readonly from: NodeId; readonly buffer: Uint8Array; received: number }
    | undefined;

  term = 0;
  vote: NodeId = NONE;
  leaderId: NodeId = NONE;
  role: Role = 'follower';
  conf: ConfState;
  /** Per-member replication progress; meaningful on the leader. Includes this node. */
  readonly progress = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();
  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  /** Ticks since the last election timeout reset (follower/candidate) or check-quorum round (leader). */
  electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /** This node's logical clock: ticks since it started. */
  tickCount = 0;
  leadTransferee: NodeId = NONE;
  /** The log index of the newest conf change proposed; no other may be proposed until it is applied. */
  pendingConfIndex = 0;
  /** Leader only: proposals of this term not yet committed, as (index, bytes). */
  private uncommitted: { index: number; bytes: number }[] = [];
  private uncommittedBytes = 0;
  private readonly readOnly: ReadOnly;
  /** A removed leader's hand-off attempts this term, and the last target tried. */
  private handOffAttempts = 0;
  private handOffLast: NodeId = NONE;
  /** Reads waiting for the leader's first commit in its term. */
  private pendingReads: PendingRead[] = [];
  /** Leases are off for the rest of this term once a TimeoutNow has been sent. */
  private leaseDisabled = false;
  /** Proposals or commits that have not yet been broadcast; flushed when a Ready is built. */
  private needsBroadcast = false;
  /** A read round (ReadIndex) whose heartbeats go out at the next flush: reads arriving meanwhile join it. */
  private readRoundOpen: number | undefined;
  /**
   * A follower's reads asked of its leader, by the id sent (the message's `context`): the
   * caller's request id. Ids sent count on from the node's seed, not from 1, so that an answer
   * delayed past a restart (a new incarnation, the same term and leader) matches no request of
   * the new one: a restarted follower numbering from 1 took such an answer, to a request made
   * before it crashed, as the answer to its own, and read at a stale index.
   */
  private readonly followerReads = new Map<number, number>();
  private followerReadNext: number;
  private prevHardState: HardState;
  private prevSoftState: SoftState;
  private stepRole: StepFn = this.stepFollower;
  private tickRole: TickFn = this.tickElection;

  constructor(config: RaftConfig) {
    if (!(Number.isInteger(config.id) && config.id > 0)) fail(`node id must be a positive integer, got ${config.id}`);
    this.id = config.id;
    const { id: _id, storage: _storage, seed: _seed, voters: _voters, learners: _learners, trace, ...settings } = config;
    const r = resolveRaftSettings(settings);
    this.settings = r;
    this.electionTimeoutTicks = r.electionTimeoutTicks;
    this.heartbeatIntervalTicks = r.heartbeatIntervalTicks;
    this.preVote = r.preVote;
    this.checkQuorum = r.checkQuorum;
    this.inflightMessagesMax = r.inflightMessagesMax;
    this.inflightBytesMax = r.inflightBytesMax;
    this.appendBytesMax = r.appendBytesMax;
    this.proposalBytesMax = r.proposalBytesMax;
    this.uncommittedBytesMax = r.uncommittedBytesMax;
    this.leaseMarginTicks = r.leaseMarginTicks;
    this.snapshotChunkBytes = r.snapshotChunkBytes;
    this.snapshotBytesMax = r.snapshotBytesMax;
    this.trace = trace;
    this.rand = new Rand(config.seed);
    this.followerReadNext = config.seed >>> 0 || 1;
    this.readOnly = new ReadOnly(r.readsPendingMax);
    this.log = new RaftLog(config.storage, r.applyBytesMax);

    let { hardState, conf } = config.storage.initialState();
    this.conf = conf;
    const pristine = hardState.term === 0 && config.storage.lastIndex() === 0;
    if (pristine && (config.voters?.length ?? 0) > 0) {
      // Bootstrap: the initial configuration becomes entry 1 (term 1, committed), so that
      // the log alone tells any node, including one that joins later and replays it from
      // index 1, every configuration the cluster has had.
      const changes: ConfChangeItem[] = [
        ...[...config.voters!].sort((a, b) => a - b).map((nodeId) => ({ op: 'addVoter' as const, nodeId })),
        ...[...(config.learners ?? [])].sort((a, b) => a - b).map((nodeId) => ({ op: 'addLearner' as const, nodeId })),
      ];
      this.log.append([{ term: 1, index: 1, type: EntryType.ConfChange, data: encodeConfChange({ changes }) }]);
      this.conf = nextConf(emptyConfState(), { changes });
      hardState = { term: 1, vote: NONE, commit: 1 };
    }
    // A node that restarts, or joins with no configuration, learns its configuration by
    // applying the log (or a snapshot) in the first Readys; until then it cannot campaign.
    this.resetProgress();
    if (hardState.commit > 0) {
      if (!(hardState.commit <= this.log.lastIndex())) fail(`stored commit ${hardState.commit} beyond last index ${this.log.lastIndex()}`);
      this.log.commitTo(hardState.commit);
    }
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.prevHardState = pristine ? { term: 0, vote: NONE, commit: 0 } : hardState;
    this.becomeFollower(this.term, NONE, 'start');
    this.prevSoftState = { leaderId: NONE, role: 'follower' };
  }

  // ─── Public API ─────────────────────────────────────────────────────────────

  /** One logical clock tick. */
  tick(): void {
    this.tickCount++;
    this.tickRole();
  }

  /** Processes one message from another node. */
  step(m: Message): void {
    if (m.to !== this.id) return;
    if (m.term > this.term) {
      if (!this.handleHigherTerm(m)) return;
    } else if (m.term < this.term) {
      this.handleLowerTerm(m);
      return;
    }
    switch (m.type) {
      case MessageType.PreVote:
      case MessageType.Vote:
        this.handleVoteRequest(m);
        return;
      default:
        this.stepRole(m);
    }
  }

  /** Appends `data` to the log. Leader only. Returns the index the entry will have. */
  propose(data: Uint8Array): number {
    return this.proposeEntry(EntryType.Normal, data);
  }

  /**
   * Asks for a linearizable read. When it is safe to read at some index, a ReadState with
   * `requestId` appears in a later Ready. 'lease' answers without a heartbeat round while the
   * leader's lease holds (requires checkQuorum), and falls back to 'safe' otherwise.
   *
   * On a follower that knows its leader, the request goes to the leader (a ReadIndex message),
   * which confirms its leadership as for its own reads and answers with the index; the
   * ReadState appears when that answer arrives. It may never arrive (a lost message, a leader
   * change): the caller gives up after a while. Anywhere else this throws NotLeaderError.
   */
  readIndex(requestId: number, mode: ReadMode = 'safe'): void {
    if (this.role === 'follower' && this.leaderId !== NONE) {
      const sent = this.followerReadNext;
      this.followerReadNext = (sent % 0xffff_ffff) + 1;
      this.followerReads.set(sent, requestId);
      // Bounded: the oldest unanswered one (its answer lost) is forgotten; its caller times out.
      if (this.followerReads.size > this.readOnly.pendingMax) this.followerReads.delete(this.followerReads.keys().next().value!);
      this.send(this.message(MessageType.ReadIndex, this.leaderId, { context: sent, index: mode === 'lease' ? 1 : 0 }));
      return;
    }
    this.requireLeader();
    this.takeRead(requestId, mode, this.id);
  }

  /** A read asked of this leader, by itself or a follower (`from`). */
  private takeRead(requestId: number, mode: ReadMode, from: NodeId): void {
    if (!this.promotable()) {
      if (from === this.id) throw new NotLeaderError(this.leadTransferee);
      return;
    }
    if (this.readOnly.size + this.pendingReads.length >= this.readOnly.pendingMax) {
      if (from === this.id) throw new RingraftError(ErrorCode.PROPOSALS_FULL, 'too many reads pending');
      return;
    }
    if (!this.committedInCurrentTerm()) {
      // The commit index is not known to be current until an entry of this term commits.
      this.pendingReads.push({ requestId, mode, from });
      return;
    }
    this.serveRead(requestId, mode, from);
  }

  /** Hands leadership to `target`: catches it up, then tells it to campaign at once. */
  transferLeadership(target: NodeId): void {
    this.requireLeader();
    if (target === this.id) return;
    if (!this.conf.voters.includes(target)) {
      throw new RingraftError(ErrorCode.INVALID_ARGUMENT, `node ${target} is not a voter`);
    }
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === target) return;
      throw new RingraftError(ErrorCode.TRANSFER_IN_PROGRESS, `transfer to ${this.leadTransferee} in progress`);
    }
    this.leadTransferee = target;
    // The transfer must finish within an election timeout or it is abandoned.
    this.electionElapsed = 0;
    const pr = this.progress.get(target)!;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.maybeSendAppend(target, true);
  }

  /** Proposes a membership change. Voter changes go through a joint configuration. */
  proposeConfChange(cc: ConfChange): number {
    this.requireLeader();
    if (this.pendingConfIndex > this.log.applied) {
      throw new RingraftError(ErrorCode.CONF_CHANGE_PENDING, `conf change at ${this.pendingConfIndex} not yet applied`);
    }
    if (cc.changes.length === 0) throw new RingraftError(ErrorCode.INVALID_ARGUMENT, 'empty conf change');
    nextConf(this.conf, cc); // Validates: throws on a change that cannot apply.
    const index = this.proposeEntry(EntryType.ConfChange, encodeConfChange(cc));
    this.pendingConfIndex = index;
    return index;
  }

  get softState(): SoftState {
    return { leaderId: this.leaderId, role: this.role };
  }

  get hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  /**
   * On a leader, the lowest log index a live follower still needs from the log: the entry
   * after its match, or, while a snapshot is being sent to it, the entry after that
   * snapshot. A host compacting its log keeps the entries from here on if it can afford to
   * (see SnapshotPolicy): one that compacts them away sends that follower another snapshot,
   * and a follower whose transfers take longer than the leader keeps entries for writes
   * never catches up (seed 301167). Live means it acknowledged a heartbeat sent within the
   * last election timeout, so that a follower down or cut off holds nothing back. Anywhere
   * else, or with no such follower, `lastIndex() + 1`: nothing is needed.
   */
  logIndexNeeded(): number {
    let needed = this.log.lastIndex() + 1;
    if (this.role !== 'leader') return needed;
    for (const [id, pr] of this.progress) {
      if (id === this.id || this.tickCount - pr.ackedSentTick >= this.electionTimeoutTicks) continue;
      const held = pr.state === 'snapshot' ? Math.max(pr.match, pr.pendingSnapshot) : pr.match;
      needed = Math.min(needed, held + 1);
    }
    return needed;
  }

  /**
   * Ticks until `tick()` next acts by itself (a campaign, a heartbeat, a check-quorum
   * round), at least 1. A host with nothing else to do may sleep that long and then call
   * `tick()` that many times: the node sees the same clock as with a tick every interval.
   */
  ticksUntilDue(): number {
    if (this.role === 'leader') {
      return Math.max(1, Math.min(this.heartbeatIntervalTicks - this.heartbeatElapsed, this.electionTimeoutTicks - this.electionElapsed));
    }
    if (!this.promotable()) return this.electionTimeoutTicks;
    return Math.max(1, this.randomizedElectionTimeout - this.electionElapsed);
  }

  /** Whether a Ready with something in it is waiting. */
  hasReady(): boolean {
    this.flushBroadcast();
    if (this.msgs.length > 0 || this.readStates.length > 0) return true;
    const ss = this.prevSoftState;
    if (ss.leaderId !== this.leaderId || ss.role !== this.role) return true;
    const hs = this.prevHardState;
    if (hs.term !== this.term || hs.vote !== this.vote || hs.commit !== this.log.committed) return true;
    const u = this.log.unstable;
    if (u.entries.length > u.inProgress) return true;
    if (u.snapshot !== undefined && !u.snapshotInProgress) return true;
    return u.snapshot === undefined && this.log.hasCommittedToApply();
  }

  /** Everything the host must do next; see {@link Ready}. Call advance() when done. */
  ready(): Ready {
    this.flushBroadcast();
    const u = this.log.unstable;
    const soft = this.softState;
    const hard = this.hardState;
    const softChanged = soft.leaderId !== this.prevSoftState.leaderId || soft.role !== this.prevSoftState.role;
    const hardChanged = !sameHardState(this.prevHardState, hard);
    const entries = this.log.unstableToPersist();
    const snapshot = u.snapshot !== undefined && !u.snapshotInProgress ? u.snapshot : undefined;
    const committedEntries = u.snapshot === undefined ? this.log.committedToApply() : [];
    const rd: Ready = {
      softState: softChanged ? soft : undefined,
      hardState: hardChanged ? hard : undefined,
      entries,
      snapshot,
      committedEntries,
      messages: this.msgs,
      readStates: this.readStates,
      mustSync: entries.length > 0 || hard.term !== this.prevHardState.term || hard.vote !== this.prevHardState.vote,
      messagesBeforePersist: this.role === 'leader' && hard.term === this.prevHardState.term && hard.vote === this.prevHardState.vote,
    };
    this.msgs = [];
    this.readStates = [];
    this.prevSoftState = soft;
    this.prevHardState = hard;
    u.inProgress = u.entries.length;
    if (snapshot !== undefined) u.snapshotInProgress = true;
    if (committedEntries.length > 0) this.log.applying = committedEntries[committedEntries.length - 1]!.index;
    return rd;
  }

  /** Tells the node that `rd` has been persisted, sent and applied. */
  advance(rd: Ready): void {
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!;
      this.log.unstable.stableTo(last.index, last.term);
      if (this.role === 'leader') {
        // The leader's own entries are durable now: they count toward commit from here.
        const self = this.progress.get(this.id);
        if (self !== undefined && self.maybeUpdate(this.durableLastIndex()) && this.maybeCommit()) {
          this.needsBroadcast = true;
        }
      }
    }
    if (rd.snapshot !== undefined) {
      this.log.unstable.stableSnapTo(rd.snapshot.meta.index);
      this.log.applied = Math.max(this.log.applied, rd.snapshot.meta.index);
      this.log.applying = Math.max(this.log.applying, rd.snapshot.meta.index);
    }
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) this.applyConfChange(e);
    }
    if (rd.committedEntries.length > 0) {
      this.log.appliedTo(rd.committedEntries[rd.committedEntries.length - 1]!.index);
    }
    this.maybeAutoLeaveJoint();
  }

  /** Whether this node may become leader: it is a voter in the current configuration. */
  promotable(): boolean {
    return isVoter(this.conf, this.id);
  }

  // ─── Term handling (common to all roles) ──────────────────────────────────────

  /** Returns whether to go on processing `m` after its higher term was handled. */
  private handleHigherTerm(m: Message): boolean {
    if (m.type === MessageType.PreVote || m.type === MessageType.Vote) {
      // Campaigns are disregarded while a live leader is believed to exist, unless
      // leadership is being handed over (see inLease).
      if (this.inLease() && m.context !== 1) {
        if (this.trace !== undefined) this.traceVote(m, false, 'in-lease');
        return false;
      }
      if (m.type === MessageType.PreVote) return true; // Pre-votes change no term.
    } else if (m.type === MessageType.PreVoteResp && !m.reject) {
      // A granted pre-vote carries the term we would campaign for, not a newer leader's.
      return true;
    }
    const leader = m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap ? m.from : NONE;
    this.becomeFollower(m.term, leader, 'newer-term');
    return true;
  }

  private handleLowerTerm(m: Message): void {
    if (this.acceptsStaleTerm(m)) {
      this.stepRole(m);
      return;
    }
    if (this.trace !== undefined && (m.type === MessageType.PreVote || m.type === MessageType.Vote)) this.traceVote(m, false, 'stale-term');
    if (m.type === MessageType.App || m.type === MessageType.Heartbeat) {
      // A stale leader learns our term from this answer and steps down. It must: a leader
      // disregards campaigns while it leads (inLease), so a node whose term ran ahead (its
      // pre-votes failed, or it campaigned alone in a partition) can rejoin only this way.
      this.send(this.message(MessageType.AppResp, m.from, {}));
    } else if (m.type === MessageType.PreVote) {
      this.send(this.message(MessageType.PreVoteResp, m.from, { reject: true }));
    }
  }

  /** Seam for the bug-planting suite: whether to process a message of an older term. */
  protected acceptsStaleTerm(_m: Message): boolean {
    return false;
  }

  /**
   * Whether this node believes a live leader exists (it heard from one within an election
   * timeout, or started less than one ago): it then disregards campaigns (Raft §6), so a
   * removed or partitioned server cannot disrupt the cluster, with or without pre-vote and
   * check-quorum. With check-quorum this is also what makes leader leases sound.
   */
  private inLease(): boolean {
    if (this.leaderId !== NONE && this.electionElapsed < this.electionTimeoutTicks) return true;
    // A node that just started may have promised a leader its lease before it crashed; only
    // leases need this, and leases need check-quorum.
    return this.checkQuorum && this.tickCount < this.electionTimeoutTicks;
  }

  private handleVoteRequest(m: Message): void {
    const isPre = m.type === MessageType.PreVote;
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.leaderId === NONE) ||
      (isPre && m.term > this.term);
    const respType = isPre ? MessageType.PreVoteResp : MessageType.VoteResp;
    const upToDate = canVote && this.voteUpToDate(m.index, m.logTerm);
    if (this.trace !== undefined) {
      const reason = upToDate ? 'granted' : !canVote ? (this.vote !== NONE ? 'voted-for-another' : 'have-leader') : 'log-behind';
      this.traceVote(m, upToDate, reason);
    }
    if (upToDate) {
      // A granted pre-vote answers with the term campaigned for, so the candidate counts it.
      this.send(this.message(respType, m.from, { term: m.term }));
      if (!isPre) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(this.message(respType, m.from, { reject: true }));
    }
  }

  private traceVote(m: Message, granted: boolean, reason: VoteReason): void {
    this.trace?.({
      kind: 'vote',
      node: this.id,
      term: this.term,
      candidate: m.from,
      candidateTerm: m.term,
      preVote: m.type === MessageType.PreVote,
      granted,
      reason,
    });
  }

  /** §5.4.1: grant a vote only to a candidate whose log is at least as up to date as ours. */
  protected voteUpToDate(index: number, term: number): boolean {
    return this.log.isUpToDate(index, term);
  }

  // ─── Role transitions ─────────────────────────────────────────────────────────

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.leaderId = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTimeoutTicks + this.rand.int(0, this.electionTimeoutTicks);
    this.leadTransferee = NONE;
    this.votes.clear();
    this.resetProgress();
    this.pendingConfIndex = 0;
    this.uncommitted = [];
    this.uncommittedBytes = 0;
    this.readOnly.reset();
    this.pendingReads = [];
    this.leaseDisabled = false;
    this.needsBroadcast = false;
    this.readRoundOpen = undefined;
    this.followerReads.clear();
    this.incomingSnapshot = undefined;
    this.handOffAttempts = 0;
    this.handOffLast = NONE;
  }

  private resetProgress(): void {
    const members = allMembers(this.conf);
    const learners = new Set([...this.conf.learners]);
    const last = this.log.lastIndex();
    this.progress.clear();
    for (const id of members) {
      const pr = new Progress(last + 1, this.inflightMessagesMax, this.inflightBytesMax, learners.has(id));
      if (id === this.id) pr.match = this.durableLastIndex();
      this.progress.set(id, pr);
    }
  }

  /** Becomes a follower of `leaderId` (NONE: no leader known) in `term`; `reason` is for the trace. */
  becomeFollower(term: number, leaderId: NodeId, reason: FollowReason = 'requested'): void {
    this.reset(term);
    this.leaderId = leaderId;
    this.role = 'follower';
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
    this.trace?.({ kind: 'role', node: this.id, term, role: 'follower', leader: leaderId, reason });
  }

  /**
   * A follower hears from its term's leader: remembered, and traced when it is news (the
   * host learns where to send clients from the trace, as it does from role changes).
   */
  private followLeader(leaderId: NodeId): void {
    if (this.leaderId === leaderId) return;
    this.leaderId = leaderId;
    this.trace?.({ kind: 'role', node: this.id, term: this.term, role: 'follower', leader: leaderId, reason: 'leader-found' });
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become pre-candidate');
    // A pre-candidate changes neither term nor vote: it only asks whether it could win.
    this.votes.clear();
    this.leaderId = NONE;
    this.role = 'pre-candidate';
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
    this.trace?.({ kind: 'role', node: this.id, term: this.term, role: 'pre-candidate', leader: NONE, reason: 'campaign' });
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
    this.trace?.({ kind: 'role', node: this.id, term: this.term, role: 'candidate', leader: NONE, reason: 'campaign' });
  }

  private becomeLeader(): void {
    if (!(this.role === 'candidate')) fail(`only a candidate becomes leader, not a ${this.role}`);
    this.reset(this.term);
    this.leaderId = this.id;
    this.role = 'leader';
    this.stepRole = this.stepLeader;
    this.tickRole = this.tickHeartbeat;
    this.trace?.({ kind: 'role', node: this.id, term: this.term, role: 'leader', leader: this.id, reason: 'won' });
    for (const [id, pr] of this.progress) {
      if (id === this.id) pr.becomeReplicate();
      pr.recentActive = true;
    }
    // Conservatively, no conf change until everything in the log so far is applied: an
    // unapplied one may be in there.
    this.pendingConfIndex = this.log.lastIndex();
    // An empty entry of this term: committing it commits everything before it (§5.4.2) and
    // makes the commit index current for reads.
    this.appendEntries([{ term: this.term, index: this.log.lastIndex() + 1, type: EntryType.Normal, data: EMPTY_DATA }]);
  }

  private campaign(kind: 'pre' | 'real', transfer: boolean): void {
    if (!this.promotable()) return;
    this.trace?.({ kind: 'campaign', node: this.id, term: this.term, preVote: kind === 'pre', transfer });
    let voteTerm: number;
    if (kind === 'pre') {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
    }
    if (this.poll(this.id, true) === 'won') {
      // A single-voter cluster wins at once.
      if (kind === 'pre') this.campaign('real', transfer);
      else this.becomeLeader();
      return;
    }
    const type = kind === 'pre' ? MessageType.PreVote : MessageType.Vote;
    const voters = new Set([...this.conf.voters, ...this.conf.votersOutgoing]);
    for (const id of [...voters].sort((a, b) => a - b)) {
      if (id === this.id) continue;
      this.send(
        this.message(type, id, {
          term: voteTerm,
          index: this.log.lastIndex(),
          logTerm: this.log.lastTerm(),
          context: transfer ? 1 : 0,
        }),
      );
    }
  }

  private poll(id: NodeId, granted: boolean) {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return jointVoteResult(this.conf.voters, this.conf.votersOutgoing, this.votes);
  }

  // ─── Ticks ─────────────────────────────────────────────────────────────────────

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.campaign(this.preVote ? 'pre' : 'real', false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.term, NONE, 'check-quorum');
        return;
      }
      if (this.leadTransferee !== NONE) this.leadTransferee = NONE;
      // A removed leader tries again, perhaps with another voter.
      if (!this.promotable()) this.handOffLeadership();
    }
    for (const [id, pr] of this.progress) {
      if (id === this.id || pr.state !== 'snapshot' || pr.snapshot === undefined) continue;
      // No chunk acknowledged for an election timeout: the chunk or its answer was lost or is
      // late. Send the same chunk of the same snapshot again. Starting over (from offset 0,
      // with the newest snapshot, which the follower takes for another transfer) would throw
      // away every chunk the follower holds: with chunks late often enough, no transfer
      // would ever finish (seed 301167).
      if (++pr.snapshotElapsedTicks >= this.electionTimeoutTicks) {
        pr.snapshotElapsedTicks = 0;
        if (this.trace !== undefined) {
          this.trace({ kind: 'snapshot-resent', node: this.id, term: this.term, to: id, index: pr.pendingSnapshot, offset: pr.snapshotOffset });
        }
        this.sendSnapshotChunk(id, pr, pr.snapshot);
      }
    }
    if (this.heartbeatElapsed >= this.heartbeatIntervalTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(0);
    }
  }

  /** Whether a quorum was heard from since the last round; resets the round. */
  private quorumActive(): boolean {
    const active = new Map<NodeId, boolean>();
    for (const [id, pr] of this.progress) {
      if (id === this.id) active.set(id, true);
      else active.set(id, pr.recentActive);
      pr.recentActive = false;
    }
    return jointVoteResult(this.conf.voters, this.conf.votersOutgoing, active) === 'won';
  }

  // ─── Role step functions ───────────────────────────────────────────────────────

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.electionElapsed = 0;
        this.followLeader(m.from);
        this.handleAppendEntries(m);
        break;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.followLeader(m.from);
        this.handleHeartbeat(m);
        break;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.followLeader(m.from);
        this.handleSnapshot(m);
        break;
      case MessageType.TimeoutNow:
        // Leadership transfer: campaign at once, skipping pre-vote and leases.
        this.campaign('real', true);
        break;
      case MessageType.ReadIndexResp: {
        // The leader of this term confirmed a follower read (a stale answer has an older term and never gets here).
        const requestId = this.followerReads.get(m.context);
        if (m.from !== this.leaderId || requestId === undefined) break;
        this.followerReads.delete(m.context);
        this.readStates.push({ requestId, index: m.index });
        break;
      }
      default:
        break;
    }
  }

  private stepCandidate(m: Message): void {
    const myResp = this.role === 'pre-candidate' ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.App:
      case MessageType.Heartbeat:
      case MessageType.Snap:
        // A leader of this term exists.
        this.becomeFollower(m.term, m.from, 'leader-exists');
        this.stepFollower(m);
        return;
      case myResp: {
        const result = this.poll(m.from, !m.reject);
        if (result === 'won') {
          if (this.role === 'pre-candidate') this.campaign('real', false);
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === 'lost') {
          this.becomeFollower(this.term, NONE, 'lost-election');
        }
        return;
      }
      default:
        return;
    }
  }

  private stepLeader(m: Message): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case MessageType.AppResp:
        pr.recentActive = true;
        if (m.reject) this.handleAppendReject(m, pr);
        else this.handleAppendAck(m, pr);
        return;
      case MessageType.HeartbeatResp:
        this.handleHeartbeatResp(m, pr);
        return;
      case MessageType.SnapResp:
        this.handleSnapshotResp(m, pr);
        return;
      case MessageType.ReadIndex:
        this.takeRead(m.context, m.index === 1 ? 'lease' : 'safe', m.from);
        return;
      default:
        return;
    }
  }

  // ─── Follower handlers ─────────────────────────────────────────────────────────

  private handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      // Everything up to our commit index matches already; tell the leader where we are.
      this.send(this.message(MessageType.AppResp, m.from, { index: this.log.committed }));
      return;
    }
    // With a trace sink only: the suffix the append will replace, if it replaces one.
    const replaced = this.trace === undefined ? undefined : this.suffixReplacedBy(m);
    const lastNew = this.followerAppend(m);
    if (lastNew !== undefined) {
      if (replaced !== undefined) this.trace?.({ kind: 'truncate', node: this.id, term: this.term, leader: m.from, ...replaced });
      this.send(this.message(MessageType.AppResp, m.from, { index: lastNew }));
      return;
    }
    // Reject with a hint: the largest index <= m.index whose term is <= m.logTerm, so the
    // leader can skip every entry of a conflicting term at once.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.trace?.({ kind: 'append-rejected', node: this.id, term: this.term, leader: m.from, index: m.index, logTerm: m.logTerm, hintIndex: hint.index, hintTerm: hint.term });
    this.send(
      this.message(MessageType.AppResp, m.from, { index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term }),
    );
  }

  /** For the trace: the part of our log that appending `m` replaces (a conflicting suffix), if any. */
  private suffixReplacedBy(m: Message): { fromIndex: number; lastIndexBefore: number } | undefined {
    if (!this.log.matchTerm(m.index, m.logTerm)) return undefined;
    const conflict = this.log.findConflict(m.entries);
    const last = this.log.lastIndex();
    return conflict !== 0 && conflict <= last ? { fromIndex: conflict, lastIndexBefore: last } : undefined;
  }

  /** Seam for the bug-planting suite: the log append of AppendEntries. */
  protected followerAppend(m: Message): number | undefined {
    return this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send(this.message(MessageType.HeartbeatResp, m.from, { context: m.context, sentTick: m.sentTick }));
  }

  /**
   * One chunk of a snapshot. Chunks are assembled in order; an out-of-order chunk (one was
   * lost, or this node restarted and forgot what it had) is answered with the offset
   * expected, from which the leader resumes. The complete snapshot replaces the log at once.
   *
   * What has been assembled is given up only for a newer snapshot: one of a higher index
   * from the leader of this term (each transfer of a term sends a newer snapshot than the
   * one before), or a new term's (`reset` drops it). A chunk of an older snapshot is late,
   * from a transfer the leader has finished or given up: it is ignored, and the copy in
   * progress kept (seed 301167: late chunks restarted every transfer).
   */
  private handleSnapshot(m: Message): void {
    const chunk = m.snapshot;
    assert(chunk !== undefined, 'snapshot message without a snapshot');
    const meta = chunk.meta;
    let inc = this.incomingSnapshot;
    if (inc !== undefined && inc.meta.index <= this.log.committed) {
      // Nothing new in the copy in progress any more.
      inc = undefined;
      this.incomingSnapshot = undefined;
    }
    if (meta.index <= this.log.committed) {
      // Nothing new in it: say where we are, as for a completed transfer.
      this.send(this.message(MessageType.AppResp, m.from, { index: this.log.committed }));
      return;
    }
    if (inc !== undefined && inc.term === this.term && inc.from === m.from && meta.index < inc.meta.index) return;
    const same =
      inc !== undefined &&
      inc.from === m.from &&
      inc.term === this.term &&
      inc.meta.index === meta.index &&
      inc.meta.term === meta.term &&
      inc.buffer.length === chunk.totalBytes;
    if (!same) {
      inc = undefined;
      this.incomingSnapshot = undefined;
      if (chunk.totalBytes > this.snapshotBytesMax) {
        // Refuse rather than allocate without bound; the leader retries later.
        this.send(this.message(MessageType.SnapResp, m.from, { index: meta.index, rejectHint: 0, reject: true }));
        return;
      }
      if (chunk.offset === 0) {
        inc = { meta, term: this.term, from: m.from, buffer: new Uint8Array(chunk.totalBytes), received: 0 };
        this.incomingSnapshot = inc;
      }
    }
    if (inc === undefined || chunk.offset !== inc.received) {
      this.send(this.message(MessageType.SnapResp, m.from, { index: meta.index, rejectHint: inc?.received ?? 0 }));
      return;
    }
    assert(chunk.offset + chunk.data.length <= inc.buffer.length, 'snapshot chunk beyond the snapshot size');
    inc.buffer.set(chunk.data, chunk.offset);
    inc.received += chunk.data.length;
    if (inc.received < inc.buffer.length) {
      this.send(this.message(MessageType.SnapResp, m.from, { index: meta.index, rejectHint: inc.received }));
      return;
    }
    this.incomingSnapshot = undefined;
    const snap: Snapshot = { meta, data: inc.buffer };
    if (this.restore(snap)) {
      this.send(this.message(MessageType.AppResp, m.from, { index: this.log.lastIndex() }));
    } else {
      this.send(this.message(MessageType.AppResp, m.from, { index: this.log.committed }));
    }
  }

  /** Replaces the log with `snap` if it tells us something new. */
  private restore(snap: Snapshot): boolean {
    if (snap.meta.index <= this.log.committed) return false;
    if (this.log.matchTerm(snap.meta.index, snap.meta.term)) {
      // We hold the entry the snapshot ends at, so the snapshot's prefix is ours: just commit.
      this.log.commitTo(snap.meta.index);
      return false;
    }
    this.log.restore(snap);
    this.switchToConf(snap.meta.conf);
    return true;
  }

  // ─── Leader handlers ───────────────────────────────────────────────────────────

  private handleAppendReject(m: Message, pr: Progress): void {
    // The hint is (index, term) of the follower's last entry with term <= ours at the
    // rejected index; find our own last index with term <= that term, to probe there.
    let probe = m.rejectHint;
    if (m.logTerm > 0) probe = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
    if (pr.maybeDecrTo(m.index, probe)) {
      if (pr.state === 'replicate') {
        pr.becomeProbe();
        if (this.trace !== undefined) this.traceProgress(m.from, pr, 'replicate', 'rejected');
      }
      this.maybeSendAppend(m.from, false);
    }
  }

  private handleAppendAck(m: Message, pr: Progress): void {
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    pr.stalledHeartbeats = 0;
    if (pr.state === 'probe') {
      pr.becomeReplicate();
      if (this.trace !== undefined) this.traceProgress(m.from, pr, 'probe', 'caught-up');
    } else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
      if (this.trace !== undefined) this.traceProgress(m.from, pr, 'snapshot', 'snapshot-done');
    } else if (pr.state === 'replicate') pr.inflights.freeLE(m.index);

    if (this.maybeCommit()) {
      this.needsBroadcast = true;
    } else if (wasPaused || m.from === this.leadTransferee) {
      this.maybeSendAppend(m.from, false);
    }
    // Pipelining: keep sending while the window allows.
    while (this.maybeSendAppend(m.from, false)) {
      /* each call sends one message */
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.sendTimeoutNow(m.from);
    }
  }

  private handleHeartbeatResp(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    if (m.sentTick > pr.ackedSentTick) pr.ackedSentTick = m.sentTick;
    if (pr.state === 'replicate' && pr.inflights.count > 0) {
      // Acknowledgements stopped while messages are in flight: they were probably lost.
      if (++pr.stalledHeartbeats >= 2) {
        pr.stalledHeartbeats = 0;
        pr.becomeProbe();
        if (this.trace !== undefined) this.traceProgress(m.from, pr, 'replicate', 'stalled');
      }
    }
    // A follower that is behind gets entries; in probe state it gets a message even with no
    // new entries, so that a wrong guess of where its log ends is corrected by its reject.
    if (pr.match < this.log.lastIndex()) this.maybeSendAppend(m.from, pr.state === 'probe');
    if (m.context === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === undefined) return;
    if (jointVoteResult(this.conf.voters, this.conf.votersOutgoing, acks) === 'won') {
      for (const rs of this.readOnly.release(m.context)) this.releaseRead(rs.requestId, rs.index, rs.from);
    }
  }

  // ─── Replication ───────────────────────────────────────────────────────────────

  private proposeEntry(type: EntryType, data: Uint8Array): number {
    this.requireLeader();
    // A leader that is no longer a voter only hands over; the hint names its successor.
    if (!this.promotable()) throw new NotLeaderError(this.leadTransferee);
    if (this.leadTransferee !== NONE) {
      throw new RingraftError(ErrorCode.TRANSFER_IN_PROGRESS, `leadership is moving to ${this.leadTransferee}`);
    }
    if (data.length > this.proposalBytesMax) {
      throw new RingraftError(ErrorCode.PROPOSAL_TOO_LARGE, `proposal of ${data.length} bytes over ${this.proposalBytesMax}`);
    }
    if (this.proposalsFull(data.length)) {
      throw new RingraftError(ErrorCode.PROPOSALS_FULL, `${this.uncommittedBytes} bytes proposed and not yet committed`);
    }
    const index = this.log.lastIndex() + 1;
    const entry: Entry = { term: this.term, index, type, data };
    this.appendEntries([entry]);
    // Counted with their framing, so that even empty proposals fill the budget.
    const bytes = entryBytes(entry);
    this.uncommitted.push({ index, bytes });
    this.uncommittedBytes += bytes;
    this.needsBroadcast = true;
    return index;
  }

  /** Whether a proposal of `dataBytes` would pass the uncommitted budget (one always fits). */
  private proposalsFull(dataBytes: number): boolean {
    return this.uncommitted.length > 0 && this.uncommittedBytes + dataBytes + ENTRY_FRAMING_BYTES > this.uncommittedBytesMax;
  }

  /**
   * Appends to the leader's own log. The leader's own progress does not move here: it
   * counts itself toward commit only once advance() reports the entries durable (thesis
   * §10.2.1), so the host may send AppendEntries while its own write is in flight.
   */
  private appendEntries(entries: Entry[]): void {
    this.log.append(entries);
  }

  /** The last index of the log known durable: everything the host has persisted and advanced. */
  private durableLastIndex(): number {
    return Math.min(this.log.lastIndex(), this.log.unstable.offset - 1);
  }

  /**
   * Advances the commit index to what a quorum has matched, but only by counting replicas
   * of an entry of the current term (§5.4.2, Figure 8). Returns whether it advanced.
   */
  protected maybeCommit(): boolean {
    const index = jointCommitted(this.conf.voters, this.conf.votersOutgoing, (id) => this.progress.get(id)?.match);
    if (!this.log.maybeCommit(index, this.term)) return false;
    this.afterCommit();
    return true;
  }

  /** Bookkeeping after the leader's commit index advanced. */
  protected afterCommit(): void {
    let i = 0;
    while (i < this.uncommitted.length && this.uncommitted[i]!.index <= this.log.committed) {
      this.uncommittedBytes -= this.uncommitted[i]!.bytes;
      i++;
    }
    if (i > 0) this.uncommitted.splice(0, i);
    if (this.pendingReads.length > 0 && this.committedInCurrentTerm()) {
      const reads = this.pendingReads;
      this.pendingReads = [];
      for (const r of reads) this.serveRead(r.requestId, r.mode, r.from);
    }
  }

  private flushBroadcast(): void {
    const round = this.readRoundOpen;
    if (round !== undefined) {
      this.readRoundOpen = undefined;
      if (this.role === 'leader') this.bcastHeartbeat(round);
    }
    if (!this.needsBroadcast) return;
    this.needsBroadcast = false;
    if (this.role === 'leader') this.bcastAppend();
  }

  private bcastAppend(): void {
    for (const id of this.progress.keys()) {
      if (id === this.id) continue;
      // Send at least one message (it carries the commit index), then as many as the window allows.
      if (!this.maybeSendAppend(id, true)) continue;
      while (this.maybeSendAppend(id, false)) {
        /* each call sends one message */
      }
    }
  }

  private bcastHeartbeat(context: number): void {
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      this.send(
        this.message(MessageType.Heartbeat, id, {
          commit: Math.min(pr.match, this.log.committed),
          context,
          sentTick: this.tickCount,
        }),
      );
    }
  }

  /**
   * Sends an AppendEntries (or a snapshot) to `to` if its progress allows. With
   * `sendIfEmpty` a message goes out even with no new entries (to carry the commit index).
   * Returns whether a message was sent.
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    if (pr.next < this.log.firstIndex()) {
      this.sendSnapshot(to, pr);
      return true;
    }
    const prevTerm = this.log.term(prevIndex);
    if (!(prevTerm !== 0 || prevIndex === 0)) fail(`no term for ${prevIndex} though it is not compacted`);
    const last = this.log.lastIndex();
    const entries = pr.next <= last ? this.log.slice(pr.next, last + 1, this.appendBytesMax) : [];
    if (entries.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const e of entries) bytes += entryBytes(e);
    this.send(
      this.message(MessageType.App, to, {
        index: prevIndex,
        logTerm: prevTerm,
        entries: entries.length === 0 ? EMPTY_ENTRIES : entries,
        commit: this.log.committed,
      }),
    );
    if (entries.length > 0) pr.sentEntries(entries[entries.length - 1]!.index, bytes);
    else if (pr.state === 'probe') pr.probeSent = true;
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): void {
    const snapshot = this.log.storage.snapshot();
    assert(snapshot.meta.index >= this.log.firstIndex() - 1, 'storage snapshot older than the log start');
    const before = pr.state;
    pr.becomeSnapshot(snapshot);
    if (this.trace !== undefined) {
      this.traceProgress(to, pr, before, 'snapshot-needed');
      this.trace({ kind: 'snapshot-sent', node: this.id, term: this.term, to, index: snapshot.meta.index, snapshotTerm: snapshot.meta.term, bytes: snapshot.data.length });
    }
    this.sendSnapshotChunk(to, pr, snapshot);
  }

  private traceProgress(peer: NodeId, pr: Progress, from: ProgressState, reason: Extract<TraceEvent, { kind: 'progress' }>['reason']): void {
    this.trace?.({ kind: 'progress', node: this.id, term: this.term, peer, from, to: pr.state, match: pr.match, next: pr.next, reason });
  }

  /** Sends the chunk at pr.snapshotOffset; one chunk is in flight per follower. */
  private sendSnapshotChunk(to: NodeId, pr: Progress, snapshot: Snapshot): void {
    const total = snapshot.data.length;
    const offset = Math.min(pr.snapshotOffset, total);
    const data = snapshot.data.subarray(offset, Math.min(total, offset + this.snapshotChunkBytes));
    this.send(this.message(MessageType.Snap, to, { snapshot: { meta: snapshot.meta, totalBytes: total, offset, data } }));
  }

  /** A follower acknowledged snapshot bytes up to m.rejectHint, or refused the snapshot. */
  private handleSnapshotResp(m: Message, pr: Progress): void {
    pr.recentActive = true;
    const snapshot = pr.snapshot;
    if (pr.state !== 'snapshot' || snapshot === undefined || m.index !== pr.pendingSnapshot) return;
    if (m.reject) {
      pr.snapshotFailed();
      if (this.trace !== undefined) this.traceProgress(m.from, pr, 'snapshot', 'snapshot-failed');
      return;
    }
    if (pr.maybeUpdateSnapshotOffset(m.rejectHint)) this.sendSnapshotChunk(m.from, pr, snapshot);
  }

  private sendTimeoutNow(to: NodeId): void {
    // From now until the term ends, the target may win without waiting out anyone's lease.
    this.leaseDisabled = true;
    this.send(this.message(MessageType.TimeoutNow, to, {}));
  }

  // ─── Reads ─────────────────────────────────────────────────────────────────────

  private committedInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private serveRead(requestId: number, mode: ReadMode, from: NodeId): void {
    const voters = new Set([...this.conf.voters, ...this.conf.votersOutgoing]);
    if (voters.size === 1 && voters.has(this.id)) {
      this.releaseRead(requestId, this.log.committed, from);
      return;
    }
    if (mode === 'lease' && this.leaseValid()) {
      this.releaseRead(requestId, this.log.committed, from);
      return;
    }
    this.confirmRead(requestId, from);
  }

  /**
   * Makes a read answerable at `index` (the host serves it once applied that far): this node's
   * own, as a ReadState; a follower's, as a ReadIndexResp to it.
   */
  protected releaseRead(requestId: number, index: number, from: NodeId = this.id): void {
    if (from === this.id) this.readStates.push({ requestId, index });
    else this.send(this.message(MessageType.ReadIndexResp, from, { context: requestId, index }));
  }

  /**
   * Seam for the bug-planting suite: confirm leadership with a heartbeat round before
   * answering. The round's heartbeats go out at the next flush (hasReady, ready), so the reads
   * taken before it, the leader's own and its followers', share one round.
   */
  protected confirmRead(requestId: number, from: NodeId = this.id): void {
    this.readRoundOpen = this.readOnly.add(requestId, this.log.committed, this.id, from, this.readRoundOpen);
  }

  /**
   * Whether the leader's lease holds: a quorum acknowledged a heartbeat sent at tick s, and
   * each of them ignores campaigns for electionTimeoutTicks ticks after receiving it, so no other
   * leader can exist before s + electionTimeoutTicks (less a margin for tick phase and drift).
   */
  protected leaseValid(): boolean {
    if (!this.checkQuorum || this.role !== 'leader' || this.leaseDisabled || this.leadTransferee !== NONE) return false;
    const acked = jointCommitted(this.conf.voters, this.conf.votersOutgoing, (id) =>
      id === this.id ? this.tickCount : (this.progress.get(id)?.ackedSentTick ?? -Infinity),
    );
    return this.tickCount < acked + this.electionTimeoutTicks - this.leaseMarginTicks;
  }

  // ─── Membership ────────────────────────────────────────────────────────────────

  /** Applies a committed conf change entry (protected: a seam for the simulator's planted bug). */
  protected applyConfChange(e: Entry): void {
    const cc = decodeConfChange(e.data);
    let next: ConfState;
    try {
      next = nextConf(this.conf, cc);
    } catch (error) {
      // The leader validated it against the configuration it would follow; an entry that
      // no longer applies (a superseded proposal from an old term) is skipped everywhere alike.
      if (error instanceof RingraftError) {
        if (this.trace !== undefined) this.traceConf(e.index, false, this.conf);
        return;
      }
      throw error;
    }
    this.switchToConf(next);
    if (this.trace !== undefined) this.traceConf(e.index, true, next);
  }

  private traceConf(index: number, applied: boolean, conf: ConfState): void {
    this.trace?.({
      kind: 'conf-change',
      node: this.id,
      term: this.term,
      index,
      applied,
      voters: [...conf.voters],
      votersOutgoing: [...conf.votersOutgoing],
      learners: [...conf.learners],
    });
  }

  private switchToConf(conf: ConfState): void {
    this.conf = conf;
    const members = new Set(allMembers(conf));
    const learners = new Set([...conf.learners]);
    for (const id of [...this.progress.keys()]) {
      if (!members.has(id)) this.progress.delete(id);
    }
    const last = this.log.lastIndex();
    for (const id of members) {
      let pr = this.progress.get(id);
      if (pr === undefined) {
        pr = new Progress(last + 1, this.inflightMessagesMax, this.inflightBytesMax, learners.has(id));
        // A new member is assumed active so that adding it does not fail check-quorum.
        pr.recentActive = true;
        if (id === this.id) pr.match = this.durableLastIndex();
        this.progress.set(id, pr);
      }
      pr.isLearner = learners.has(id);
    }
    if (this.role !== 'leader') return;
    if (this.leadTransferee !== NONE && !conf.voters.includes(this.leadTransferee)) this.leadTransferee = NONE;
    if (!isVoter(conf, this.id)) {
      // This leader was removed or demoted. Stepping down at once could strand the cluster:
      // a voter that has not yet learned that the change committed still needs this node's
      // vote under the old configuration, and this node, no longer a voter, never
      // campaigns. So it keeps leading (replicating, not counted in any quorum, taking no
      // proposals) and hands leadership to a caught-up voter of the new configuration.
      this.handOffLeadership();
    }
    // The quorum changed: commit may advance, and new members need the log.
    this.maybeCommit();
    this.needsBroadcast = true;
  }

  /**
   * A removed leader hands leadership to a voter of the new configuration: one heard from
   * recently, with the longest matching log, and not the one the previous attempt failed
   * with (it may be down). After HAND_OFF_ATTEMPTS_MAX failed attempts it steps down: its
   * heartbeats would otherwise keep the voters from electing anyone, and by then they have
   * long learned the configuration change, so none needs its vote.
   */
  private handOffLeadership(): void {
    if (this.leadTransferee !== NONE) return;
    if (this.handOffAttempts >= HAND_OFF_ATTEMPTS_MAX) {
      this.becomeFollower(this.term, NONE, 'removed');
      return;
    }
    let target = NONE;
    let bestScore = -Infinity;
    for (const id of this.conf.voters) {
      const pr = this.progress.get(id);
      if (pr === undefined) continue;
      // Heard from recently first, then the longest match; the last failed target last.
      const score = (id === this.handOffLast ? 0 : 2) + (pr.recentActive ? 1 : 0) + pr.match / (this.log.lastIndex() + 1);
      if (score > bestScore) {
        bestScore = score;
        target = id;
      }
    }
    if (target === NONE) return;
    this.handOffAttempts++;
    this.handOffLast = target;
    this.leadTransferee = target;
    this.electionElapsed = 0;
    if (this.progress.get(target)!.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.maybeSendAppend(target, true);
  }

  /** A leader in a joint configuration it entered automatically proposes to leave it once applied. */
  private maybeAutoLeaveJoint(): void {
    if (this.role !== 'leader' || !isJoint(this.conf) || !this.conf.autoLeave) return;
    if (this.pendingConfIndex > this.log.applied || this.leadTransferee !== NONE) return;
    // Retried after the next apply if proposals are full right now.
    if (this.proposalsFull(LEAVE_JOINT_BYTES)) return;
    const index = this.proposeEntry(EntryType.ConfChange, encodeConfChange({ changes: [] }));
    this.pendingConfIndex = index;
  }

  // ─── Helpers ───────────────────────────────────────────────────────────────────

  private requireLeader(): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.leaderId);
  }

  private send(m: Message): void {
    this.msgs.push(m);
  }

  private message(type: MessageType, to: NodeId, fields: Partial<Message>): Message {
    return makeMessage({ type, from: this.id, to, term: this.term, ...fields });
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
