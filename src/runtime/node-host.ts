/**
 * The host of one Raft node, without threads, clocks or rings: it binds a {@link RaftNode}
 * to its storage and to the key-value state machine, turns client requests into proposals
 * and read barriers, and processes each Ready in the order the core's contract requires
 * (persist, send, apply, advance). Whoever owns it supplies time (`tick()`), inbound
 * messages (`step()`, `handleRequest()`) and the two ways out ({@link HostSink}); the worker
 * loop drives it in a thread, and a test can drive it by hand.
 *
 * Batching happens here: every read request that arrives between two calls to
 * `flushReads()` shares one ReadIndex round, and every proposal made before the next Ready
 * goes to disk in one write and to each follower in as few messages as the core's batch
 * budget allows.
 */

import { ErrorCode, fail, RingraftError } from '../base/index.ts';
import { ENTRY_FRAMING_BYTES, EntryType, NONE, NotLeaderError, RaftNode, type ConfChange, type ConfState, type Entry, type Message, type RaftConfig, type Ready, type Role, type Snapshot, type Storage } from '../core/index.ts';
import {
  isKvBatch,
  KV_KEY_BYTES_MAX,
  KvBatchBuilder,
  KvError,
  KvStateMachine,
  type KvApplyOutcome,
  type KvChange,
} from '../kv/index.ts';
import type { PersistBatch } from '../storage/index.ts';
import {
  decodeRequest,
  ProtocolError,
  REQUEST_HEADER_BYTES,
  REQUEST_KIND_WRITE,
  WRITE_REQUEST_BYTES_MAX,
  type ClientReply,
  type ClientRequest,
  type ReadConsistency,
} from './client-protocol.ts';
import { resolveNodeSettings, type NodeSettingsInput } from './settings.ts';
import { WatchHistory } from './watch-history.ts';

/** What the host needs of its storage beyond the core's read view. */
export interface HostStorage extends Storage {
  /** Makes one Ready's snapshot, entries and hard state durable (one write and one sync). */
  persist(batch: PersistBatch): void;
  createSnapshot(index: number, conf: ConfState, data: Uint8Array, retainEntries?: number): Snapshot;
  close?(): void;
}

/** The host's ways out. All must return at once (queue, never block on the peer). */
export interface HostSink {
  sendRaft(m: Message): void;
  reply(r: ClientReply): void;
  /**
   * Makes the Raft messages sent so far visible to their peers, for a sink that stages
   * them: called after a Ready's sends, before the host goes on to work that may take long
   * (its own write after early sends, applying entries), so peers can work meanwhile.
   */
  flushRaft?(): void;
}

export interface NodeHostOptions {
  readonly raft: Omit<RaftConfig, 'storage'>;
  readonly storage: HostStorage;
  /** The host's settings (runtime/settings.ts); those left out take their defaults. */
  readonly node?: NodeSettingsInput;
  /** Builds the Raft node (default `new RaftNode(config)`): the simulator plants bugs here. */
  readonly createRaft?: (config: RaftConfig) => RaftNode;
  readonly hooks?: HostHooks;
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
  /** On the leader: each member's matched index. */
  readonly matchIndex: Readonly<Record<number, number>>;
  /** Malformed or out-of-limit client requests refused with INVALID_ARGUMENT (they had a request id to answer). */
  readonly requestsRefusedInvalid: number;
  /** Client frames dropped unanswered: too short to hold a request id, or from a client link whose ring is corrupt. */
  readonly requestFramesDropped: number;
}

interface PendingRead {
  readonly requestId: number;
  readonly key: Uint8Array;
}

interface Watch {
  readonly prefix: Uint8Array;
  /** Changes at or below this index are before the watch (it may be ahead of this node). */
  readonly afterIndex: number;
}

/** The kind byte of a watch request frame (client-protocol.ts), answered with watch-end when malformed. */
const REQUEST_KIND_WATCH = 3;
/** A Ready loop that does not settle is a bug, not load: the core hands out finite work. */
const READY_ROUNDS_MAX = 100_000;

/** Watches one node serves at once; more are refused with UNAVAILABLE. */
export const WATCHES_MAX = 65_536;
/** Bytes those watches may hold (prefixes and bookkeeping): watches of 4 KiB prefixes reach it at some 3,970. */
export const WATCH_BYTES_MAX = 16 << 20;
/** Bookkeeping bytes counted per watch beside its prefix (map entry, record). */
const WATCH_OVERHEAD_BYTES = 128;

/** Writes proposed in one batch entry, answered when the entry at `index` and `term` applies. */
interface PendingBatch {
  readonly term: number;
  readonly requestIds: readonly number[];
}

export class NodeHost {
  readonly raft: RaftNode;
  readonly storage: HostStorage;
  private kvMachine: KvStateMachine;
  private readonly sink: HostSink;
  private readonly hooks: HostHooks;
  private readonly snapshotEveryEntries: number;
  private readonly snapshotRetainEntries: number;
  private readonly snapshotEveryBytes: number;
  /** Entry bytes applied since the last snapshot this host took or installed (since start, after a restart). */
  private appliedBytesSinceSnapshot = 0;
  private readonly snapshotRetainBytes: number;
  /**
   * Data bytes of the last applied entries, entry i at slot i % length, for the retain
   * policy. Invariant: slots of indexes in [appliedSizesFrom, appliedIndex] that are within
   * `length` of appliedIndex hold their entry's size.
   */
  private readonly appliedSizes: Float64Array;
  private appliedSizesFrom: number;
  private readonly writeBatchBytesMax: number;
  private requestsRefusedInvalid = 0;
  private requestFramesDropped = 0;
  /** Writes that arrived since the last flush, and their request ids in batch order. */
  private readonly batch = new KvBatchBuilder();
  private batchRequestIds: number[] = [];
  /** Batches this node proposed as leader, by log index, waiting to be applied. */
  private readonly pendingBatches = new Map<number, PendingBatch>();
  /** Reads that arrived since the last flushReads(), by mode. */
  private readBatchSafe: PendingRead[] = [];
  private readBatchLease: PendingRead[] = [];
  /** Read batches waiting for their ReadState, by the batch's read request id. */
  private readonly readBatches = new Map<number, PendingRead[]>();
  /** Read batches whose ReadState arrived, waiting for apply to reach `index`, oldest first. */
  private readsWaiting: { index: number; reads: PendingRead[] }[] = [];
  private readBatchNext = 1;
  private readonly watches = new Map<number, Watch>();
  /** Bytes the watches hold: their prefixes plus WATCH_OVERHEAD_BYTES each. */
  private watchPrefixBytes = 0;
  private readonly history: WatchHistory;
  private unsubscribe: () => void;
  private wasLeader = false;

  constructor(options: NodeHostOptions, sink: HostSink) {
    this.storage = options.storage;
    this.sink = sink;
    const settings = resolveNodeSettings(options.node);
    this.snapshotEveryEntries = settings.snapshotEveryEntries;
    this.snapshotRetainEntries = settings.snapshotRetainEntries;
    this.snapshotRetainBytes = settings.snapshotRetainBytes;
    this.appliedSizes = new Float64Array(this.snapshotRetainEntries);
    this.snapshotEveryBytes = settings.snapshotEveryBytes;
    this.writeBatchBytesMax = settings.writeBatchBytesMax;
    const config: RaftConfig = { ...options.raft, storage: this.storage };
    this.raft = options.createRaft !== undefined ? options.createRaft(config) : new RaftNode(config);
    this.hooks = options.hooks ?? {};
    const snap = this.storage.snapshot();
    this.kvMachine = snap.meta.index > 0 ? KvStateMachine.restore(snap.data) : new KvStateMachine();
    this.history = new WatchHistory(snap.meta.index, settings.watchHistoryChangesMax, settings.watchHistoryBytesMax);
    this.appliedSizesFrom = snap.meta.index + 1;
    this.unsubscribe = this.kvMachine.onChange((c) => this.onChange(c));
  }

  get kv(): KvStateMachine {
    return this.kvMachine;
  }

  /** The last log index applied (or skipped) by the state machine. */
  get appliedIndex(): number {
    return this.kvMachine.appliedIndex;
  }

  tick(): void {
    this.raft.tick();
  }

  step(m: Message): void {
    this.raft.step(m);
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
    const requestId = requestIdBase + readU32(memory, offset + 1);
    if (kind === REQUEST_KIND_WRITE) {
      this.addWrite(requestId, memory, offset + REQUEST_HEADER_BYTES, length - REQUEST_HEADER_BYTES);
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
    switch (req.kind) {
      case 'write':
        this.addWrite(req.requestId, req.data, 0, req.data.length);
        return;
      case 'read':
        if (!(req.key.length <= KV_KEY_BYTES_MAX && isConsistency(req.consistency))) {
          this.refuseMalformed(req.requestId, false);
          return;
        }
        this.queueRead(req.requestId, req.consistency, req.key);
        return;
      case 'watch':
        if (!(req.prefix.length <= KV_KEY_BYTES_MAX && (req.afterIndex === undefined || (Number.isSafeInteger(req.afterIndex) && req.afterIndex >= 0)))) {
          this.refuseMalformed(req.requestId, true);
          return;
        }
        this.startWatch(req.requestId, req.prefix, req.afterIndex);
        return;
      case 'unwatch':
        if (this.dropWatch(req.requestId)) this.sink.reply({ kind: 'watch-end', requestId: req.requestId, code: ErrorCode.CLOSED });
        return;
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
    if (length === 0 || length > WRITE_REQUEST_BYTES_MAX) {
      this.refuseMalformed(requestId, false);
      return;
    }
    if (this.raft.role !== 'leader') {
      this.refuse(requestId, new NotLeaderError(this.raft.leaderId));
      return;
    }
    this.batch.add(memory, offset, length);
    this.batchRequestIds.push(requestId);
    if (this.batch.sizeBytes >= this.writeBatchBytesMax) this.flushWrites();
  }

  /** Proposes the writes and starts the read rounds batched since the last call. */
  flush(): void {
    this.flushWrites();
    this.flushReads();
  }

  private flushWrites(): void {
    if (this.batch.count === 0) return;
    const data = this.batch.finish();
    const requestIds = this.batchRequestIds;
    this.batchRequestIds = [];
    let index: number;
    try {
      index = this.raft.propose(data);
    } catch (error) {
      for (const requestId of requestIds) this.refuse(requestId, error);
      return;
    }
    this.pendingBatches.set(index, { term: this.raft.term, requestIds });
  }

  private flushReads(): void {
    if (this.readBatchSafe.length > 0) {
      const batch = this.readBatchSafe;
      this.readBatchSafe = [];
      this.startReadRound(batch, 'safe');
    }
    if (this.readBatchLease.length > 0) {
      const batch = this.readBatchLease;
      this.readBatchLease = [];
      this.startReadRound(batch, 'lease');
    }
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
      matchIndex,
      requestsRefusedInvalid: this.requestsRefusedInvalid,
      requestFramesDropped: this.requestFramesDropped,
    };
  }

  /** Counts client frames the caller dropped unread (a client link whose ring is corrupt, say). */
  noteRequestFramesDropped(count: number): void {
    this.requestFramesDropped += count;
  }

  /**
   * Handles every Ready the node has: persist, send, apply, advance, then maybe snapshot.
   * `sendEarly` lets a leader's messages leave before its own write (thesis §10.2.1) when
   * the Ready allows it. Returns whether there was anything to do.
   */
  processReady(sendEarly = true): boolean {
    const raft = this.raft;
    let rounds = 0;
    for (; raft.hasReady(); rounds++) {
      if (rounds >= READY_ROUNDS_MAX) fail(`node ${raft.id}: the Ready loop settles`);
      const rd = raft.ready();
      this.hooks.beforePersist?.(rd);
      const early = this.sendsEarly(rd, sendEarly);
      if (early) this.send(rd);
      this.persist(rd);
      this.noteRoleChange();
      this.hooks.afterPersist?.(rd);
      if (!early) this.send(rd);
      this.apply(rd);
      raft.advance(rd);
      this.hooks.afterAdvance?.(rd);
      this.maybeSnapshot();
    }
    return rounds > 0;
  }

  /**
   * Whether this Ready's messages may leave before its writes are durable: only a leader's
   * that changes neither term nor vote (Ready.messagesBeforePersist). A seam for the
   * simulator's planted host bug.
   */
  protected sendsEarly(rd: Ready, sendEarly: boolean): boolean {
    return sendEarly && rd.messagesBeforePersist;
  }

  private send(rd: Ready): void {
    if (rd.messages.length === 0) return;
    for (const m of rd.messages) this.sink.sendRaft(m);
    this.sink.flushRaft?.();
  }

  /**
   * Ends every watch with `code` (for instance when the client cannot keep up), or those
   * whose request id is in [requestIdFrom, requestIdTo): the watches of one client link.
   */
  endWatches(code: ErrorCode, requestIdFrom = 0, requestIdTo = Number.POSITIVE_INFINITY): void {
    for (const requestId of this.watches.keys()) {
      if (requestId < requestIdFrom || requestId >= requestIdTo) continue;
      this.dropWatch(requestId);
      this.sink.reply({ kind: 'watch-end', requestId, code });
    }
  }

  close(): void {
    this.unsubscribe();
    this.storage.close?.();
  }

  // ─── Requests ────────────────────────────────────────────────────────────────

  private queueRead(requestId: number, consistency: ReadConsistency, key: Uint8Array): void {
    if (consistency === 'stale') {
      this.sink.reply({ kind: 'read', requestId, index: this.appliedIndex, value: this.kvMachine.getShared(key) });
      return;
    }
    if (this.raft.role !== 'leader') {
      this.refuse(requestId, new NotLeaderError(this.raft.leaderId));
      return;
    }
    (consistency === 'lease' ? this.readBatchLease : this.readBatchSafe).push({ requestId, key });
  }

  private startReadRound(batch: PendingRead[], mode: 'safe' | 'lease'): void {
    const batchId = this.readBatchNext++;
    try {
      this.raft.readIndex(batchId, mode);
    } catch (error) {
      for (const r of batch) this.refuse(r.requestId, error);
      return;
    }
    this.readBatches.set(batchId, batch);
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

  /** Answers a request that could not be taken, with a typed code; anything else is a bug. */
  private refuse(requestId: number, error: unknown): void {
    if (error instanceof NotLeaderError) {
      this.sink.reply({ kind: 'error', requestId, code: error.code, leaderHint: error.leaderId, proposed: false });
      return;
    }
    if (error instanceof RingraftError || error instanceof KvError) {
      this.sink.reply({ kind: 'error', requestId, code: error.code, leaderHint: NONE, proposed: false });
      return;
    }
    throw error;
  }

  // ─── Watches ─────────────────────────────────────────────────────────────────

  /**
   * Starts a watch after `afterIndex` (default: the applied index), replaying the history
   * after it. Refused at once:
   *
   * - with COMPACTED, when `afterIndex` is below the history's floor (the changes right after
   *   it are forgotten; another node may still have them);
   * - with INVALID_ARGUMENT, when `afterIndex` is beyond any index this node can expect to
   *   reach soon (see {@link afterIndexMax}), rather than waiting silently for an index that
   *   may never come. The node's current index is its last log index, which the reply
   *   cannot carry yet (a watch-end holds only a code).
   */
  /** Forgets watch `requestId`; whether there was one. */
  private dropWatch(requestId: number): boolean {
    const w = this.watches.get(requestId);
    if (w === undefined) return false;
    this.watches.delete(requestId);
    this.watchPrefixBytes -= w.prefix.length + WATCH_OVERHEAD_BYTES;
    return true;
  }

  private startWatch(requestId: number, prefix: Uint8Array, afterIndex: number | undefined): void {
    const from = afterIndex ?? this.appliedIndex;
    if (from > this.afterIndexMax()) {
      this.requestsRefusedInvalid++;
      this.sink.reply({ kind: 'watch-end', requestId, code: ErrorCode.INVALID_ARGUMENT });
      return;
    }
    if (from < this.history.floorIndex) {
      this.sink.reply({ kind: 'watch-end', requestId, code: ErrorCode.COMPACTED });
      return;
    }
    if (this.watches.size >= WATCHES_MAX || this.watchPrefixBytes + prefix.length + WATCH_OVERHEAD_BYTES > WATCH_BYTES_MAX) {
      // Every watch costs memory and a look at each applied change: their number is bounded.
      this.sink.reply({ kind: 'watch-end', requestId, code: ErrorCode.UNAVAILABLE });
      return;
    }
    this.watches.set(requestId, { prefix, afterIndex: from });
    this.watchPrefixBytes += prefix.length + WATCH_OVERHEAD_BYTES;
    this.sink.reply({ kind: 'watch-start', requestId, index: from });
    // The sink may end the watch while it replays (a client that does not keep up).
    this.history.forEachAfter(from, (c) => {
      if (hasPrefix(c.key, prefix) && this.watches.has(requestId)) this.sendChange(requestId, c);
    });
  }

  /**
   * The highest `afterIndex` a watch may start after here. The rule:
   *
   * - A leader holds every committed entry in its log (Leader Completeness), so an index
   *   past its last log index has been committed nowhere, and no client can have seen it:
   *   the most is the last log index. (A leader deposed without knowing it yet may be
   *   behind; check-quorum makes it step down within an election timeout.)
   * - Any other node may trail the index a client saw on another node, and then a watch
   *   after it must wait for this node to catch up (a watch moved from a node that is
   *   ahead). But a node more than snapshotEveryEntries + snapshotRetainEntries behind the
   *   leader cannot catch up from the leader's log, which keeps no more than that: it will
   *   install a snapshot, which ends every watch with COMPACTED anyway. So the most is the
   *   last log index plus that many entries; a higher index is refused as one no node
   *   could be expected to serve here.
   */
  private afterIndexMax(): number {
    const last = this.raft.log.lastIndex();
    if (this.raft.role === 'leader') return last;
    return last + this.snapshotEveryEntries + this.snapshotRetainEntries;
  }

  private onChange(change: KvChange): void {
    this.history.push(change);
    for (const [requestId, w] of this.watches) {
      if (change.index > w.afterIndex && hasPrefix(change.key, w.prefix)) this.sendChange(requestId, change);
    }
  }

  private sendChange(requestId: number, c: KvChange): void {
    this.sink.reply({ kind: 'watch-event', requestId, index: c.index, position: c.position, key: c.key, value: c.value });
  }

  // ─── The Ready steps ─────────────────────────────────────────────────────────

  private persist(rd: Ready): void {
    if (rd.snapshot === undefined && rd.entries.length === 0 && rd.hardState === undefined) return;
    this.storage.persist({ snapshot: rd.snapshot, entries: rd.entries, hardState: rd.hardState, mustSync: rd.mustSync });
  }

  /** A leader that lost its role fails what it was serving, so clients retry elsewhere. */
  private noteRoleChange(): void {
    const isLeader = this.raft.role === 'leader';
    if (this.wasLeader && !isLeader) {
      const hint = this.raft.leaderId;
      for (const pending of this.pendingBatches.values()) {
        for (const requestId of pending.requestIds) {
          this.sink.reply({ kind: 'error', requestId, code: ErrorCode.NOT_LEADER, leaderHint: hint, proposed: true });
        }
      }
      this.pendingBatches.clear();
      const reads = [...this.readBatchSafe, ...this.readBatchLease];
      for (const batch of this.readBatches.values()) reads.push(...batch);
      for (const w of this.readsWaiting) reads.push(...w.reads);
      for (const r of reads) this.sink.reply({ kind: 'error', requestId: r.requestId, code: ErrorCode.NOT_LEADER, leaderHint: hint, proposed: false });
      this.readBatchSafe = [];
      this.readBatchLease = [];
      this.readBatches.clear();
      this.readsWaiting = [];
    }
    this.wasLeader = isLeader;
  }

  private apply(rd: Ready): void {
    if (rd.snapshot !== undefined) this.restoreSnapshot(rd.snapshot);
    for (const e of rd.committedEntries) this.applyEntry(e);
    for (const rs of rd.readStates) {
      const reads = this.readBatches.get(rs.requestId);
      if (reads === undefined) continue;
      this.readBatches.delete(rs.requestId);
      this.readsWaiting.push({ index: rs.index, reads });
    }
    this.serveReads();
  }

  private restoreSnapshot(snap: Snapshot): void {
    this.unsubscribe();
    this.kvMachine = KvStateMachine.restore(snap.data);
    this.unsubscribe = this.kvMachine.onChange((c) => this.onChange(c));
    this.appliedBytesSinceSnapshot = 0;
    this.appliedSizesFrom = snap.meta.index + 1;
    // The changes the snapshot jumped over are unknown here: no watch can resume before it.
    this.history.reset(snap.meta.index);
    this.endWatches(ErrorCode.COMPACTED);
  }

  private applyEntry(e: Entry): void {
    this.appliedBytesSinceSnapshot += e.data.length;
    const sizes = this.appliedSizes;
    if (sizes.length > 0) sizes[e.index % sizes.length] = e.data.length;
    if (e.type !== EntryType.Normal || e.data.length === 0) {
      this.kvMachine.skip(e.index);
      return;
    }
    if (!isKvBatch(e.data)) {
      // A single request: entries proposed by other hosts (the simulator's clients).
      this.kvMachine.apply(e.index, e.data);
      return;
    }
    const outcomes = this.kvMachine.applyBatch(e.index, e.data);
    const pending = this.pendingBatches.get(e.index);
    if (pending === undefined) return;
    this.pendingBatches.delete(e.index);
    // Ours only if the term matches: a different entry at our index means ours was replaced.
    for (let i = 0; i < pending.requestIds.length; i++) {
      const requestId = pending.requestIds[i]!;
      if (pending.term !== e.term) {
        this.sink.reply({ kind: 'error', requestId, code: ErrorCode.NOT_LEADER, leaderHint: this.raft.leaderId, proposed: true });
      } else {
        this.sink.reply(writeReply(requestId, outcomes[i]!, e.index));
      }
    }
  }

  /** Serves read batches whose index the state machine has reached (they arrive in index order). */
  private serveReads(): void {
    let served = 0;
    for (const w of this.readsWaiting) {
      if (w.index > this.appliedIndex) break;
      served++;
      for (const r of w.reads) {
        this.sink.reply({ kind: 'read', requestId: r.requestId, index: w.index, value: this.kvMachine.getShared(r.key) });
      }
    }
    if (served > 0) this.readsWaiting.splice(0, served);
  }

  private maybeSnapshot(): void {
    const snapIndex = this.storage.snapshot().meta.index;
    if (this.appliedIndex - snapIndex < this.snapshotEveryEntries && this.appliedBytesSinceSnapshot < this.snapshotEveryBytes) return;
    if (this.appliedIndex <= snapIndex) return;
    // The configuration in the snapshot must be the one at the applied index.
    if (this.raft.log.applied !== this.appliedIndex) return;
    this.storage.createSnapshot(this.appliedIndex, this.raft.conf, this.kvMachine.snapshot(), this.entriesToRetain(this.appliedIndex));
    this.appliedBytesSinceSnapshot = 0;
  }

  /**
   * How many entries up to `index` (the applied index) to keep behind a snapshot at it: the
   * newest ones, while both snapshotRetainEntries and snapshotRetainBytes allow. Entries
   * applied before this host started (or inside an installed snapshot) are not weighed, and
   * not kept.
   */
  private entriesToRetain(index: number): number {
    const sizes = this.appliedSizes;
    const from = Math.max(this.appliedSizesFrom, index - sizes.length + 1);
    let bytes = 0;
    let count = 0;
    for (let i = index; i >= from; i--) {
      bytes += sizes[i % sizes.length]! + ENTRY_FRAMING_BYTES;
      if (bytes > this.snapshotRetainBytes) break;
      count++;
    }
    return count;
  }
}

function writeReply(requestId: number, outcome: KvApplyOutcome, index: number): ClientReply {
  if (outcome.result !== undefined) return { kind: 'write', requestId, result: outcome.result, index };
  const code = outcome.status === 'invalid' ? ErrorCode.INVALID_ARGUMENT : ErrorCode.SESSION_EXPIRED;
  return { kind: 'error', requestId, code, leaderHint: NONE, proposed: true };
}

function hasPrefix(key: Uint8Array, prefix: Uint8Array): boolean {
  if (prefix.length > key.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

function isConsistency(c: string): c is ReadConsistency {
  return c === 'linearizable' || c === 'lease' || c === 'stale';
}

/** The little-endian u32 at memory[at, at + 4), with no DataView to allocate. */
function readU32(memory: Uint8Array, at: number): number {
  return (memory[at]! | (memory[at + 1]! << 8) | (memory[at + 2]! << 16)) + memory[at + 3]! * 0x100_0000;
}


