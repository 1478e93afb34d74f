/**
 * The host of one Raft node, without threads, clocks or rings: it binds a {@link RaftNode}
 * to its storage and to the key-value state machine, turns client requests into proposals
 * and read barriers, and processes each Ready in the order the core's contract requires
 * (persist, send, apply, advance). Whoever owns it supplies time (`tick()`), inbound
 * messages (`step()`, `handleRequest()`) and the two ways out ({@link HostSink}); the worker
 * loop drives it in a thread, and a test can drive it by hand.
 *
 * The host keeps the Ready loop and checks what clients send; each other job has a file of
 * its own, wired here:
 *
 * - write-batcher.ts: the writes taken between two flushes share one log entry, answered
 *   when it applies;
 * - read-queue.ts: the reads taken between two flushes share one ReadIndex round per mode,
 *   and wait for apply to reach their index;
 * - watch-set.ts: watches, their bounds, and their delivery from the watch history;
 * - snapshot-policy.ts: when to snapshot and compact, and how many entries to keep behind;
 * - lease-keeper.ts: on a leader, when each lease runs out (its expiry proposed through the log).
 *
 * Every proposal made before the next Ready goes to disk in one write and to each follower in
 * as few messages as the core's batch budget allows. The core's decisions go to the caller's
 * trace sink, if any, and to this thread's `ringraft:raft` channel (diagnostics.ts).
 */

import { ErrorCode, fail } from '../base/index.ts';
import { EntryType, isJoint, MessageType, NONE, RaftNode, type ConfChange, type ConfState, type Entry, type Message, type RaftConfig, type Ready, type Role, type Snapshot, type Storage } from '../core/index.ts';
import { checkRangeQuery, checkRedisCommand, isKvBatch, KV_REDIS_COMMANDS_MAX, type SnapshotCancel, KV_KEY_BYTES_MAX, KvError, KvStateMachine, type KvStateMachineOptions, type KvRangeQuery, type KvWriteResult, type StateMachine } from '../kv/index.ts';
import { getU32 } from '../codec/index.ts';
import type { PersistBatch } from '../storage/index.ts';
import {
  decodeRequest,
  ProtocolError,
  QUERY_BYTES_MAX,
  READ_REQUEST_KEY_AT,
  REQUEST_HEADER_BYTES,
  REQUEST_KIND_WATCH,
  REQUEST_KIND_WRITE,
  wellFormedReadFrame,
  WRITE_REQUEST_BYTES_MAX,
  type ClientReply,
  type ClientRequest,
  type WireConsistency,
} from './client-protocol.ts';
import { publishingTraceSink } from './diagnostics.ts';
import { ReadQueue } from './read-queue.ts';
import { resolveNodeSettings, type NodeSettingsInput } from './settings.ts';
import { SnapshotPolicy, snapshotPhase } from './snapshot-policy.ts';
import { WatchSet } from './watch-set.ts';
import { WriteBatcher } from './write-batcher.ts';
import { LeaseKeeper } from './lease-keeper.ts';

/** What the host needs of its storage beyond the core's read view. */
export interface HostStorage extends Storage {
  /** Makes one Ready's snapshot, entries and hard state durable (one write and one sync). */
  persist(batch: PersistBatch): void;
  /**
   * Writes one Ready's batch as `persist` does, but may leave it to become durable later:
   * returns the sequence {@link durableSequence} reaches once it is (0: durable now). With
   * these three, the host goes on taking input and Readys while a write syncs, and holds what
   * depends on it (WalStorage with a sync agent).
   */
  persistLater?(batch: PersistBatch): number;
  /** How far the batches of persistLater are durable (see there). */
  durableSequence?(): number;
  /** Makes every batch written durable now, before returning. */
  syncNow?(): void;
  createSnapshot(index: number, conf: ConfState, data: Uint8Array, retainEntries?: number): Snapshot;
  close?(): void;
  /** Closes the files and writes nothing more, as a crash would leave them (see WalStorage.abandon). */
  abandon?(): void;
}

/** The host's ways out. All must return at once (queue, never block on the peer). */
export interface HostSink {
  sendRaft(m: Message): void;
  reply(r: ClientReply): void;
  /**
   * Answers a write that applied at `index` with `result`, as `reply` would with
   * `{ kind: 'write', requestId, result, index }` but with no object made per call: for a
   * sink that encodes the reply at once. Without it, the host calls `reply`.
   */
  replyWrite?(requestId: number, result: KvWriteResult, index: number): void;
  /**
   * Answers a read of one key at `index`, as `reply` would with `{ kind: 'read', requestId,
   * index, value }`, but `value` is a view of the store's own bytes that stays as it is only
   * during the call: a sink that keeps it past the call must copy it. For a sink that encodes
   * the reply at once: the store then hands out no view for good, and its value slabs stay
   * free to be written again (kv/byte-slabs.ts). Without it, the host calls `reply` with a
   * view that stays valid.
   */
  replyRead?(requestId: number, index: number, value: Uint8Array | undefined): void;
  /**
   * Makes the Raft messages sent so far visible to their peers, for a sink that stages
   * them: called after a Ready's sends, before the host goes on to work that may take long
   * (its own write after early sends, applying entries), so peers can work meanwhile.
   */
  flushRaft?(): void;
  /**
   * The host waits for `work`: the cluster's own state machine restores, or gives its
   * snapshot, async. Once it settles, the runtime must call {@link NodeHost.processReady}
   * (which finds it settled); until then a restoring host applies nothing, drops Raft
   * messages and refuses requests. Without this, the runtime must poll processReady.
   */
  awaiting?(work: Promise<unknown>, kind: 'restore' | 'snapshot'): void;
}

export interface NodeHostOptions {
  /**
   * The core's configuration. Its `trace` sink, if any, hears every decision, and so does
   * this thread's `ringraft:raft` channel while it has subscribers (diagnostics.ts).
   */
  readonly raft: Omit<RaftConfig, 'storage'>;
  readonly storage: HostStorage;
  /** The host's settings (runtime/settings.ts); those left out take their defaults. */
  readonly node?: NodeSettingsInput;
  /** Builds the Raft node (default `new RaftNode(config)`): the simulator plants bugs here. */
  readonly createRaft?: (config: RaftConfig) => RaftNode;
  readonly hooks?: HostHooks;
  /** Makes the cluster's own state machine, hosted beside the store (kv/app-machine.ts), each time the store is made or restored. */
  readonly app?: () => StateMachine;
  /** The key of the store's key hash (KvStateMachineOptions.keyHashSeed); random if not given. */
  readonly keyHashSeed?: readonly [number, number];
}

/**
 * Points where an observer (the simulator) watches the Ready cycle: it checks invariants
 * there, and may throw to stop the host mid-cycle, as a crash at that point would. A hook
 * that throws leaves the host unusable: the caller drops it and builds a new one from storage.
 */
export interface HostHooks {
  /** A Ready was taken, nothing of it done yet (early sends not either). */
  readonly beforePersist?: (rd: Ready) => void;
  /** The Ready's writes are durable; its messages have not left unless it allowed early sending. */
  readonly afterPersist?: (rd: Ready) => void;
  /** The Ready is applied and advanced. */
  readonly afterAdvance?: (rd: Ready) => void;
}

export interface NodeStatus {
  readonly id: number;
  readonly role: Role;
  readonly term: number;
  readonly leaderId: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  /** Voters of the current configuration (both halves when joint). */
  readonly voters: readonly number[];
  readonly learners: readonly number[];
  /** Whether the configuration is joint: a change of voters is under way (it is done when this is false again). */
  readonly joint: boolean;
  /** On the leader: each member's matched index. */
  readonly matchIndex: Readonly<Record<number, number>>;
  /** Malformed or out-of-limit client requests refused with INVALID_ARGUMENT (they had a request id to answer). */
  readonly requestsRefusedInvalid: number;
  /** Client frames dropped unanswered: too short to hold a request id, or from a client link whose ring is corrupt. */
  readonly requestFramesDropped: number;
  /** Peer messages dropped unread: they did not decode, or claimed another sender or receiver than their link's. */
  readonly peerMessagesRefused: number;
  /** Raft messages taken as they were sent from a node of the same thread: no ring, no encoding (0 for a node alone on its thread). */
  readonly peerMessagesDirect: number;
  /** Snapshots not taken because the cluster's own state machine could not give its state (it threw, or gave too much): the log stays uncompacted meanwhile. */
  readonly snapshotsFailed: number;
  /** Why the last one failed, while no snapshot has been taken since. */
  readonly snapshotFailure?: string;
  /** Whether the cluster's own state machine is restoring a snapshot async (the node takes no message and no request meanwhile). */
  readonly restoring: boolean;
  /** Raft messages dropped, and requests refused with NOT_LEADER, while the state machine restored. */
  readonly droppedWhileRestoring: number;
  /** Replies too large for their client link's frames, answered FRAME_TOO_LARGE instead (a bound set wrong: never expected). */
  readonly repliesTooLarge: number;
}

/** Work of the state machine's that the host waits for, and how it settled. */
interface AwaitedWork<T> {
  settled: boolean;
  value?: T;
  error?: unknown;
  failed: boolean;
}

/** A Ready loop that does not settle is a bug, not load: the core hands out finite work. */
const READY_ROUNDS_MAX = 100_000;

export class NodeHost {
  readonly raft: RaftNode;
  readonly storage: HostStorage;
  private kvMachine: KvStateMachine;
  /** What every state machine of this host is made with: the cluster's own machine's maker, the key hash's key. */
  private readonly kvOptions: KvStateMachineOptions;
  private readonly sink: HostSink;
  private readonly hooks: HostHooks;
  private readonly writes: WriteBatcher;
  private readonly reads: ReadQueue;
  private readonly watches: WatchSet;
  private readonly snapshots: SnapshotPolicy;
  private readonly leases: LeaseKeeper;
  private requestsRefusedInvalid = 0;
  private requestFramesDropped = 0;
  private peerMessagesRefused = 0;
  private peerMessagesDirect = 0;
  private snapshotsFailed = 0;
  private snapshotFailure: string | undefined;
  private unsubscribe: () => void;
  private wasLeader = false;
  /**
   * The state machine's async restore, and the rest of the Ready whose snapshot it restores
   * (undefined for the one the host was built from): the host does nothing else until it
   * settles, then finishes that Ready.
   */
  private restoring: (AwaitedWork<void> & { readonly rd: Ready | undefined }) | undefined;
  /** A snapshot the state machine gives async: taken at `index` in configuration `conf`, stored once it settles. */
  private snapshotting: (AwaitedWork<Uint8Array> & { readonly index: number; readonly conf: ConfState; readonly machine: KvStateMachine; readonly cancel: SnapshotCancel }) | undefined;
  private droppedWhileRestoring = 0;
  private repliesTooLarge = 0;
  /**
   * Readys taken whose writes are not durable yet (persistLater), oldest first, from
   * `unfinishedHead` on: each is finished (its late messages sent, its entries applied, then
   * advanced) once its sequence is durable and every one before it is finished.
   */
  private readonly unfinished: { readonly rd: Ready; readonly early: boolean; readonly durableAt: number; readonly changesTermVote: boolean }[] = [];
  /** Of those, the ones whose hard state changes the term or the vote: no message leaves early while any does. */
  private termVoteChangesUnsynced = 0;
  /** The term and vote of the newest hard state taken (durable once no Ready changing them is unfinished). */
  private termTaken: number;
  private voteTaken: number;
  private unfinishedHead = 0;
  /** The index of the last configuration change applied (0: none). */
  private confChangeAppliedAt = 0;

  constructor(options: NodeHostOptions, sink: HostSink) {
    this.storage = options.storage;
    this.kvOptions = { ...(options.app === undefined ? {} : { app: options.app }), ...(options.keyHashSeed === undefined ? {} : { keyHashSeed: options.keyHashSeed }) };
    this.sink = sink;
    const settings = resolveNodeSettings(options.node);
    const config: RaftConfig = { ...options.raft, storage: this.storage, trace: publishingTraceSink(options.raft.trace) };
    this.raft = options.createRaft !== undefined ? options.createRaft(config) : new RaftNode(config);
    this.hooks = options.hooks ?? {};
    const snap = this.storage.snapshot();
    this.kvMachine = this.newStateMachine(snap.meta.index > 0 ? snap.data : undefined);
    this.snapshots = new SnapshotPolicy(settings, snap.meta.index, snapshotPhase(this.raft.id));
    this.writes = new WriteBatcher(this.raft, sink, settings.writeBatchBytesMax);
    this.leases = this.newLeaseKeeper(settings.tickMs, () => this.kvMachine, (data) => this.raft.propose(data));
    this.reads = new ReadQueue(this.raft, sink, () => this.kvMachine, (op, id) => (op === 'keep-alive' ? this.leases.keepAlive(id) : this.leases.timeToLive(id)), {
      rangeReadsLocal: this.rangeReadsServedLocally(),
      followerReadsUnapplied: !this.followerReadsWaitForApply(),
      followerRoundTicksMax: 2 * this.raft.electionTimeoutTicks,
    });
    this.watches = new WatchSet(this.raft, sink, snap.meta.index, settings.watchHistoryChangesMax, settings.watchHistoryBytesMax, this.snapshots.catchUpEntriesMax);
    this.unsubscribe = this.listen();
    const hs = this.storage.initialState().hardState;
    this.termTaken = hs.term;
    this.voteTaken = hs.vote;
    this.awaitRestore(undefined);
  }

  /** Whether the host waits for work of the state machine's that has settled: call {@link processReady}. */
  get hasSettledWork(): boolean {
    return this.restoring?.settled === true || this.snapshotting?.settled === true || this.hasDurableReady;
  }

  /** Readys taken whose writes are not durable yet (with a storage that syncs later). */
  get readysWaitingForSync(): number {
    return this.unfinished.length - this.unfinishedHead;
  }

  /** Whether the oldest Ready waiting for its write to be durable may now be finished. */
  private get hasDurableReady(): boolean {
    const next = this.unfinished[this.unfinishedHead];
    if (next === undefined) return false;
    try {
      return next.durableAt <= this.storage.durableSequence!();
    } catch {
      // A sync failed: processReady meets the same error and fails the node. This is asked
      // where a node's error must not escape (a thread's wait for input, shared with others).
      return true;
    }
  }

  /** Whether the host waits for work of the state machine's (settled or not). */
  get isAwaiting(): boolean {
    return this.restoring !== undefined || this.snapshotting !== undefined;
  }

  /** Waits for `work`, noting how it settles in `into` (and tells the runtime). */
  private await<T>(work: Promise<T>, into: AwaitedWork<T>, kind: 'restore' | 'snapshot'): void {
    const settled = work.then(
      (value) => {
        into.value = value;
        into.settled = true;
      },
      (error: unknown) => {
        into.error = error;
        into.failed = true;
        into.settled = true;
      },
    );
    this.sink.awaiting?.(settled, kind);
  }

  /** If the store just made restores its state machine async, waits for it before `rd`'s rest (or anything): true. */
  private awaitRestore(rd: Ready | undefined): boolean {
    const work = this.kvMachine.restoring;
    if (work === undefined) return false;
    const restoring = { rd, settled: false, failed: false };
    this.restoring = restoring;
    this.await(work, restoring, 'restore');
    return true;
  }

  /** Subscribes the watches and the lease clock to the state machine; returns how to undo it. */
  private listen(): () => void {
    const kv = this.kvMachine;
    kv.setChangeSink(this.watches);
    kv.onLeaseChange((id, ttlMs) => this.leases.onLeaseChange(id, ttlMs));
    return () => {
      kv.setChangeSink(undefined);
      kv.onLeaseChange(undefined);
    };
  }

  get kv(): KvStateMachine {
    return this.kvMachine;
  }

  /** The last log index applied (or skipped) by the state machine. */
  get appliedIndex(): number {
    return this.kvMachine.appliedIndex;
  }

  tick(): void {
    // A node restoring its state machine is held, as a paused process is: time resumes after.
    if (this.restoring !== undefined) return;
    this.raft.tick();
    this.leases.tick();
    this.reads.tick();
  }

  step(m: Message): void {
    if (this.restoring !== undefined) {
      // Lost as on the network: Raft sends again what matters.
      this.droppedWhileRestoring++;
      return;
    }
    // A snapshot installed in the core takes its configuration at once: every Ready taken
    // before it must be finished first, or their advance would apply configuration changes
    // the snapshot already holds on top of it.
    if (m.type === MessageType.Snap && this.unfinished.length > 0) this.finishAllNow();
    this.raft.step(m);
  }

  /** Makes every write durable now and finishes every Ready waiting for one. */
  private finishAllNow(): void {
    this.storage.syncNow!();
    this.finishDurable();
  }

  /**
   * Takes one request frame, memory[offset, offset + length), as a client wrote it into its
   * ring (format in client-protocol.ts); `requestIdBase` is added to the frame's request id
   * (the worker numbers the requests of all its client links in one space). Writes go
   * straight from `memory` into the batch entry, with no decoded copy; other kinds are
   * decoded and handed to {@link handleRequest}.
   *
   * Client bytes are not trusted: whatever `memory` holds, this never throws for it. A frame
   * that is malformed or breaks a limit (a key or prefix over KV_KEY_BYTES_MAX, a length
   * that runs past the frame, an unknown kind, trailing bytes, a write over
   * WRITE_REQUEST_BYTES_MAX) is refused with INVALID_ARGUMENT to the request id it carries
   * (a watch with a watch-end, anything else with an error), and counted in
   * `requestsRefusedInvalid`; a frame too short to hold a request id is dropped and counted
   * in `requestFramesDropped`. The check costs a comparison or two on the write path; other
   * kinds were decoded (and checked) before too.
   */
  handleRequestFrame(memory: Uint8Array, offset: number, length: number, requestIdBase = 0): void {
    if (length < REQUEST_HEADER_BYTES) {
      this.requestFramesDropped++;
      return;
    }
    const kind = memory[offset]!;
    const requestId = requestIdBase + getU32(memory, offset + 1);
    if (kind === REQUEST_KIND_WRITE) {
      this.addWrite(requestId, memory, offset + REQUEST_HEADER_BYTES, length - REQUEST_HEADER_BYTES);
      return;
    }
    // A read of a key, the commonest request after a write: taken in place, its key's bytes
    // copied into the read queue's pool (no decoded request, no string).
    const consistency = this.restoring === undefined ? wellFormedReadFrame(memory, offset, length) : undefined;
    if (consistency !== undefined) {
      this.reads.queueKeyAt(requestId, consistency, memory, offset + READ_REQUEST_KEY_AT, length - READ_REQUEST_KEY_AT);
      return;
    }
    let req: ClientRequest;
    try {
      req = decodeRequest(memory.subarray(offset, offset + length));
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.refuseMalformed(requestId, kind === REQUEST_KIND_WATCH);
      return;
    }
    this.handleRequest(requestIdBase === 0 ? req : { ...req, requestId });
  }

  /**
   * Takes one client request. Writes and reads join the current batch until {@link flush}
   * (writes are answered when their entry applies); stale reads are answered now. A request
   * that breaks a limit of the protocol is refused with INVALID_ARGUMENT (see
   * {@link handleRequestFrame}): a caller that builds requests by hand cannot stop the node.
   */
  handleRequest(req: ClientRequest): void {
    // An unwatch touches no state: it is taken even while the state machine restores.
    if (this.restoring !== undefined && req.kind !== 'unwatch') {
      this.refuseWhileRestoring(req);
      return;
    }
    switch (req.kind) {
      case 'write':
        this.addWrite(req.requestId, req.data, 0, req.data.length);
        return;
      case 'read':
        if (!(req.key.length <= KV_KEY_BYTES_MAX && isConsistency(req.consistency))) {
          this.refuseMalformed(req.requestId, false);
          return;
        }
        this.reads.queue(req.requestId, req.consistency, req.key);
        return;
      case 'watch':
        if (!(req.prefix.length <= KV_KEY_BYTES_MAX && (req.afterIndex === undefined || (Number.isSafeInteger(req.afterIndex) && req.afterIndex >= 0)))) {
          this.refuseMalformed(req.requestId, true);
          return;
        }
        if (this.watches.start(req.requestId, req.prefix, req.afterIndex ?? this.appliedIndex) === 'invalid') this.requestsRefusedInvalid++;
        return;
      case 'unwatch':
        this.watches.unwatch(req.requestId);
        return;
      case 'range':
        if (!(isConsistency(req.consistency) && isRangeQuery(req.query))) {
          this.refuseMalformed(req.requestId, false);
          return;
        }
        this.reads.queueRange(req.requestId, req.consistency, req.query);
        return;
      case 'lease':
        if (!((req.op === 'keep-alive' || req.op === 'time-to-live') && Number.isSafeInteger(req.id) && req.id >= 1)) {
          this.refuseMalformed(req.requestId, false);
          return;
        }
        this.reads.queueLease(req.requestId, req.op, req.id);
        return;
      case 'query':
        if (!(req.data.length <= QUERY_BYTES_MAX && isConsistency(req.consistency))) {
          this.refuseMalformed(req.requestId, false);
          return;
        }
        this.reads.queueQuery(req.requestId, req.consistency, req.data);
        return;
      case 'redis': {
        const readsOnly = req.commands.every((c) => {
          const checked = checkRedisCommand(c);
          return 'kind' in checked && checked.kind === 'read';
        });
        if (!(isConsistency(req.consistency) && readsOnly && req.commands.length <= KV_REDIS_COMMANDS_MAX)) {
          this.refuseMalformed(req.requestId, false);
          return;
        }
        this.reads.queueRedis(req.requestId, req.consistency, req.commands);
        return;
      }
      default:
        this.refuseMalformed((req as { requestId: number }).requestId, false);
        return;
    }
  }

  /**
   * Adds the encoded KV request memory[offset, offset + length) to the current write batch
   * (copying it: `memory` may be ring memory about to be reused). An empty request, or one
   * longer than WRITE_REQUEST_BYTES_MAX, is refused with INVALID_ARGUMENT before it is
   * proposed: an over-long one would make the whole batch too large to propose, failing the
   * other clients' writes in it. Anything else malformed inside is refused when its entry
   * applies, the same on every replica (the KV layer decodes it there, and only there).
   */
  addWrite(requestId: number, memory: Uint8Array, offset: number, length: number): void {
    if (this.restoring !== undefined) {
      this.refuseWhileRestoring({ kind: 'write', requestId });
      return;
    }
    if (length === 0 || length > WRITE_REQUEST_BYTES_MAX) {
      this.refuseMalformed(requestId, false);
      return;
    }
    this.writes.add(requestId, memory, offset, length);
  }

  /** Proposes the writes and starts the read rounds batched since the last call. */
  flush(): void {
    if (this.restoring !== undefined) return;
    this.writes.flush();
    this.reads.flush();
  }

  transferLeadership(target: number): void {
    this.raft.transferLeadership(target);
  }

  proposeConfChange(cc: ConfChange): number {
    return this.raft.proposeConfChange(cc);
  }

  status(): NodeStatus {
    const raft = this.raft;
    const matchIndex: Record<number, number> = {};
    if (raft.role === 'leader') for (const [id, pr] of raft.progress) matchIndex[id] = pr.match;
    return {
      id: raft.id,
      role: raft.role,
      term: raft.term,
      leaderId: raft.leaderId,
      commitIndex: raft.log.committed,
      appliedIndex: this.appliedIndex,
      lastIndex: raft.log.lastIndex(),
      voters: [...new Set([...raft.conf.voters, ...raft.conf.votersOutgoing])],
      learners: [...raft.conf.learners, ...raft.conf.learnersNext],
      joint: isJoint(raft.conf),
      matchIndex,
      requestsRefusedInvalid: this.requestsRefusedInvalid,
      requestFramesDropped: this.requestFramesDropped,
      peerMessagesRefused: this.peerMessagesRefused,
      peerMessagesDirect: this.peerMessagesDirect,
      snapshotsFailed: this.snapshotsFailed,
      ...(this.snapshotFailure === undefined ? {} : { snapshotFailure: this.snapshotFailure }),
      restoring: this.restoring !== undefined,
      droppedWhileRestoring: this.droppedWhileRestoring,
      repliesTooLarge: this.repliesTooLarge,
    };
  }

  /** Counts peer messages the caller dropped unread (they did not decode, or came from the wrong sender). */
  notePeerMessageRefused(): void {
    this.peerMessagesRefused++;
  }

  /** Counts `n` Raft messages stepped as they were sent by a node of the same thread. */
  notePeerMessagesDirect(n: number): void {
    this.peerMessagesDirect += n;
  }

  /** Counts a reply the caller could not send, too large for its link's frames (it answered FRAME_TOO_LARGE instead). */
  noteReplyTooLarge(): void {
    this.repliesTooLarge++;
  }

  /** Counts client frames the caller dropped unread (a client link whose ring is corrupt, say). */
  noteRequestFramesDropped(count: number): void {
    this.requestFramesDropped += count;
  }

  /**
   * Handles every Ready the node has: persist, send, apply, advance, then maybe snapshot.
   * `sendEarly` lets a leader's messages leave before its own write (thesis §10.2.1) when
   * the Ready allows it. Returns whether there was anything to do. While the state machine
   * restores async, this does nothing; once it has, the Ready it restored for is finished
   * first (or its failure thrown: the node's state is unknown, so the node fails).
   */
  processReady(sendEarly = true): boolean {
    let worked = this.storeSnapshotTaken();
    const restoring = this.restoring;
    if (restoring !== undefined) {
      if (!restoring.settled) return worked;
      this.restoring = undefined;
      if (restoring.failed) throw restoring.error;
      if (restoring.rd !== undefined) this.finishReady(restoring.rd, false);
      worked = true;
    }
    const raft = this.raft;
    for (let rounds = 0; ; rounds++) {
      if (this.unfinished.length > 0 && this.finishDurable()) worked = true;
      if (!raft.hasReady()) break;
      if (rounds >= READY_ROUNDS_MAX) fail(`node ${raft.id}: the Ready loop settles`);
      worked = true;
      const rd = raft.ready();
      const changesTermVote = this.changesTermOrVote(rd);
      this.hooks.beforePersist?.(rd);
      // Early only if the term and vote it is sent under are durable: a Ready taken while an
      // earlier one that changed them still syncs (a single voter's election) waits too.
      const early = this.sendsEarly(rd, sendEarly) && this.termVoteChangesUnsynced === 0;
      if (early) this.send(rd);
      const durableAt = this.persist(rd);
      this.noteRoleChange();
      if (durableAt > 0 || this.unfinished.length > 0) {
        // Its committed entries are applied now: committed, they are durable on a quorum
        // whether or not they are here yet, so a leader answers its clients without waiting
        // for its own newer writes. (A Ready with a snapshot never waits: see persist.)
        const sent = early || this.sendsBeforeSync();
        if (sent && !early) this.send(rd);
        this.applyReady(rd);
        if (changesTermVote) this.termVoteChangesUnsynced++;
        this.unfinished.push({ rd, early: sent, durableAt, changesTermVote });
        continue;
      }
      if (this.finishPersisted(rd, early, false)) return true;
    }
    return worked;
  }

  /**
   * Finishes, in order, the Readys whose writes have become durable (see `unfinished`);
   * whether it finished any.
   */
  private finishDurable(): boolean {
    const durable = this.storage.durableSequence!();
    const start = this.unfinishedHead;
    while (this.unfinishedHead < this.unfinished.length) {
      const next = this.unfinished[this.unfinishedHead]!;
      if (next.durableAt > durable) break;
      this.unfinishedHead++;
      if (next.changesTermVote) this.termVoteChangesUnsynced--;
      // A Ready that waits on a write never holds a snapshot (those are written and synced at
      // once, after every earlier Ready is finished), so none of these awaits a restore.
      this.finishPersisted(next.rd, next.early, true);
    }
    const finished = this.unfinishedHead > start;
    if (this.unfinishedHead === this.unfinished.length) {
      this.unfinished.length = 0;
      this.unfinishedHead = 0;
    }
    return finished;
  }

  /**
   * The rest of a Ready whose writes are durable: late sends, its snapshot restored, then
   * finishReady (which applies its entries unless `applied`). Whether it now awaits a restore.
   */
  private finishPersisted(rd: Ready, early: boolean, applied: boolean): boolean {
    this.hooks.afterPersist?.(rd);
    if (!early) this.send(rd);
    if (rd.snapshot !== undefined) {
      this.restoreSnapshot(rd.snapshot);
      if (this.awaitRestore(rd)) return true;
    }
    this.finishReady(rd, applied);
    return false;
  }

  /** The rest of a Ready once its snapshot (if any) is restored: apply its entries and serve reads (unless `applied` already), advance, maybe snapshot. */
  private finishReady(rd: Ready, applied: boolean): void {
    if (!applied) this.applyReady(rd);
    this.raft.advance(rd);
    this.hooks.afterAdvance?.(rd);
    this.maybeSnapshot();
  }

  /** Whether `rd`'s hard state changes the term or the vote from the last one taken (and notes it). */
  private changesTermOrVote(rd: Ready): boolean {
    const hs = rd.hardState;
    if (hs === undefined || (hs.term === this.termTaken && hs.vote === this.voteTaken)) return false;
    this.termTaken = hs.term;
    this.voteTaken = hs.vote;
    return true;
  }

  /** Step 3 of a Ready: its committed entries applied, then the reads they let be served. */
  private applyReady(rd: Ready): void {
    for (const e of rd.committedEntries) this.applyEntry(e);
    this.reads.noteReadStates(rd.readStates);
    this.reads.serve();
  }

  /**
   * Whether this Ready's messages may leave before its writes are durable: only a leader's
   * that changes neither term nor vote (Ready.messagesBeforePersist). A seam for the
   * simulator's planted host bug.
   */
  protected sendsEarly(rd: Ready, sendEarly: boolean): boolean {
    return sendEarly && rd.messagesBeforePersist;
  }

  /**
   * Whether a Ready's messages leave once its writes are made, before they are durable: never
   * (they wait for the sync; early sends aside). A seam for the simulator's planted host bug.
   */
  protected sendsBeforeSync(): boolean {
    return false;
  }

  /**
   * Whether range reads are answered from this node's state whatever their consistency, as a
   * stale read is: never (called once, from the constructor). A seam for the simulator's
   * planted host bug.
   */
  protected rangeReadsServedLocally(): boolean {
    return false;
  }

  /**
   * Whether a follower read waits for the state machine to apply its read index (always; called
   * once, from the constructor). A seam for the simulator's planted host bug.
   */
  protected followerReadsWaitForApply(): boolean {
    return true;
  }

  /** The leader's lease clock (called once, from the constructor). A seam for the simulator's planted bug. */
  protected newLeaseKeeper(tickMs: number, kv: () => KvStateMachine, propose: (data: Uint8Array) => void): LeaseKeeper {
    return new LeaseKeeper(tickMs, kv, propose);
  }

  /** The options every state machine of this host is made with. */
  protected stateMachineOptions(): KvStateMachineOptions {
    return this.kvOptions;
  }

  /**
   * The state machine: restored from `snapshot`, or empty. Called from the constructor and on
   * each snapshot installed. A seam for the simulator's planted state-machine bug.
   */
  protected newStateMachine(snapshot: Uint8Array | undefined): KvStateMachine {
    const options = this.stateMachineOptions();
    return snapshot === undefined ? new KvStateMachine(options) : KvStateMachine.restore(snapshot, options);
  }

  /**
   * Ends every watch with `code` (for instance when the client cannot keep up), or those
   * whose request id is in [requestIdFrom, requestIdTo): the watches of one client link.
   */
  endWatches(code: ErrorCode, requestIdFrom = 0, requestIdTo = Number.POSITIVE_INFINITY): void {
    this.watches.endAll(code, requestIdFrom, requestIdTo);
  }

  close(): void {
    this.unsubscribe();
    this.storage.close?.();
  }

  /** Stops as a crash would: the storage's files are closed, nothing more is written. */
  abandon(): void {
    this.unsubscribe();
    this.storage.abandon?.();
  }

  /** Answers a malformed or out-of-limit request with INVALID_ARGUMENT (a watch with a watch-end). */
  private refuseMalformed(requestId: number, isWatch: boolean): void {
    this.requestsRefusedInvalid++;
    if (isWatch) {
      this.sink.reply({ kind: 'watch-end', requestId, code: ErrorCode.INVALID_ARGUMENT });
    } else {
      this.sink.reply({ kind: 'error', requestId, code: ErrorCode.INVALID_ARGUMENT, leaderHint: NONE, proposed: false });
    }
  }

  // ─── The Ready steps ─────────────────────────────────────────────────────────

  private send(rd: Ready): void {
    if (rd.messages.length === 0) return;
    for (const m of rd.messages) this.sink.sendRaft(m);
    this.sink.flushRaft?.();
  }

  /**
   * Step 1 of a Ready: its writes. Returns the storage's sequence to wait for before the rest
   * of the Ready, or 0 when they are durable now. A snapshot is written and synced at once,
   * after every Ready before it is finished: a restore must not pass unapplied entries.
   */
  private persist(rd: Ready): number {
    if (rd.snapshot === undefined && rd.entries.length === 0 && rd.hardState === undefined) return 0;
    const batch = { snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState, mustSync: rd.mustSync };
    const storage = this.storage;
    if (storage.persistLater === undefined) {
      storage.persist(batch);
      return 0;
    }
    if (rd.snapshot !== undefined && this.unfinished.length > 0) this.finishAllNow();
    const durableAt = storage.persistLater(batch);
    return durableAt > storage.durableSequence!() ? durableAt : 0;
  }

  /** A leader that lost its role fails what it was serving, so clients retry elsewhere. */
  private noteRoleChange(): void {
    const isLeader = this.raft.role === 'leader';
    if (this.wasLeader && !isLeader) {
      const hint = this.raft.leaderId;
      this.writes.failProposed(hint);
      this.reads.failAll(hint);
    }
    this.wasLeader = isLeader;
    this.leases.noteRole(isLeader);
  }

  private restoreSnapshot(snap: Snapshot): void {
    // A snapshot being taken is of the state replaced: it stops, and is not stored.
    if (this.snapshotting !== undefined) {
      this.snapshotting.cancel.cancelled = true;
      this.snapshotting = undefined;
    }
    this.unsubscribe();
    this.kvMachine = this.newStateMachine(snap.data);
    this.unsubscribe = this.listen();
    this.leases.noteRestored();
    this.snapshots.noteInstalled(snap.meta.index);
    this.watches.onSnapshotInstalled(snap.meta.index);
  }

  private applyEntry(e: Entry): void {
    this.snapshots.noteApplied(e);
    if (e.type === EntryType.ConfChange) this.confChangeAppliedAt = e.index;
    if (e.type !== EntryType.Normal || e.data.length === 0) {
      this.kvMachine.skip(e.index);
      this.writes.skipped(e.index);
      return;
    }
    if (!isKvBatch(e.data)) {
      // A single request: entries proposed by other hosts (the simulator's clients).
      this.kvMachine.apply(e.index, e.data);
      this.writes.skipped(e.index);
      return;
    }
    // Outcomes only where writes wait for them: a follower makes none.
    this.writes.apply(e, this.kvMachine);
  }

  private maybeSnapshot(): void {
    if (this.snapshotting !== undefined) return;
    const applied = this.appliedIndex;
    if (!this.snapshots.isDue(applied, this.storage.snapshot().meta.index)) return;
    // The configuration in the snapshot must be the one at the applied index: the core's, unless
    // it has yet to take a change applied here (a Ready applied before its write was durable).
    if (this.raft.log.applied !== applied && this.confChangeAppliedAt > this.raft.log.applied) return;
    let data: Uint8Array | Promise<Uint8Array>;
    const cancel: SnapshotCancel = { cancelled: false };
    try {
      data = this.kvMachine.takeSnapshot(cancel);
    } catch (error) {
      this.noteSnapshotFailed(error);
      return;
    }
    if (data instanceof Promise) {
      const snapshotting = { index: applied, conf: this.raft.conf, machine: this.kvMachine, cancel, settled: false, failed: false };
      this.snapshotting = snapshotting;
      this.await(data, snapshotting, 'snapshot');
      return;
    }
    this.storeSnapshot(applied, this.raft.conf, data);
  }

  /** Stores the snapshot the state machine gave async, once it has (true); drops it if a restore replaced the state meanwhile. */
  private storeSnapshotTaken(): boolean {
    const taken = this.snapshotting;
    if (taken === undefined || !taken.settled) return false;
    // (One that a restore dropped is no longer `snapshotting`: its settling is ignored.)
    this.snapshotting = undefined;
    if (taken.failed) this.noteSnapshotFailed(taken.error);
    else if (taken.machine === this.kvMachine && taken.index > this.storage.snapshot().meta.index) this.storeSnapshot(taken.index, taken.conf, taken.value!);
    return true;
  }

  /** Stores a snapshot of the state at `index`, keeping what the leader's live followers still need, within bounds (snapshot-policy.ts). */
  private storeSnapshot(index: number, conf: ConfState, data: Uint8Array): void {
    const retain = this.snapshots.entriesToRetain(index, this.raft.logIndexNeeded());
    this.storage.createSnapshot(index, conf, data, retain);
    this.snapshotFailure = undefined;
    this.snapshots.noteTaken();
  }

  /**
   * The cluster's own state machine could not give its snapshot: the node goes on with its
   * log uncompacted and tries again an interval later (status says why). Every replica would
   * fail alike, so failing the node would take the whole cluster down. Anything else fails it.
   */
  private noteSnapshotFailed(error: unknown): void {
    if (!(error instanceof KvError && error.code === ErrorCode.APPLY_FAILED)) throw error;
    this.snapshotsFailed++;
    this.snapshotFailure = error.message;
    this.snapshots.noteTaken();
  }

  /**
   * Refuses a request that came while the state machine restores. What the leader can serve
   * (a write, a linearizable, lease or follower read) gets NOT_LEADER with the leader's id as a
   * hint (a restoring node is never the leader), so the client asks the leader; what asks for
   * this node's own state (a stale read, a watch) gets UNAVAILABLE, so the client asks again
   * later.
   */
  private refuseWhileRestoring(req: ClientRequest | { readonly kind: 'write'; readonly requestId: number }): void {
    this.droppedWhileRestoring++;
    const { requestId } = req;
    if (req.kind === 'watch') {
      this.sink.reply({ kind: 'watch-end', requestId, code: ErrorCode.UNAVAILABLE });
      return;
    }
    const local = 'consistency' in req && req.consistency === 'stale';
    this.sink.reply({ kind: 'error', requestId, code: local ? ErrorCode.UNAVAILABLE : ErrorCode.NOT_LEADER, leaderHint: this.raft.leaderId, proposed: false });
  }
}

function isConsistency(c: string): c is WireConsistency {
  return c === 'linearizable' || c === 'lease' || c === 'stale' || c === 'follower';
}

/** Whether a range query is one the state machine takes (kv/range.ts checks it). */
function isRangeQuery(q: KvRangeQuery): boolean {
  try {
    checkRangeQuery(q);
    return true;
  } catch (error) {
    if (error instanceof KvError) return false;
    throw error;
  }
}
