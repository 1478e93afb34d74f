/**
 * The embedding API: {@link createCluster} starts one Raft node per worker thread, wires
 * every directed pair of threads with a ring, and hands out key-value clients.
 *
 * The main thread must never block, so its side of the rings works like this: requests are
 * encoded straight into the request ring of their node and published once per turn of the
 * event loop (a burst of calls costs one wake-up of the node); replies are drained by a
 * pump that runs while anything is in flight and sleeps with `Atomics.waitAsync` on the
 * main doorbell, which every node rings after publishing a reply.
 *
 * Fault controls (`crash`, `restart`, `partition`, `heal`) act on the real threads: a crash
 * terminates the worker at once; a partition makes the nodes drop Raft messages across it.
 */

import { mkdirSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { ErrorCode, RingraftError, type ConfChange } from '../core/index.ts';
import {
  decodeReplyAt,
  encodedRequestBytes,
  NODE_WORKER_URL,
  Outbox,
  signalControl,
  writeRequestTo,
  type ClientReply,
  type ClientRequest,
  type ControlReply,
  type ControlRequest,
  type FrameCodec,
  type NodeSettings,
  type NodeStatus,
  type NodeWorkerData,
  type PeerLink,
} from '../runtime/index.ts';
import { createRing, Doorbell, RingConsumer, RingProducer } from '../transport/index.ts';
import { KvClient, type KvClientHost } from './client.ts';
import { invalid, resolveOptions, type ClusterOptions, type ResolvedOptions } from './options.ts';

export interface ClusterNodeStatus {
  readonly id: number;
  readonly role: NodeStatus['role'] | 'down';
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly alive: boolean;
}

export interface ClusterStatus {
  /** The leader with the highest term among the nodes that answered; undefined if none. */
  readonly leaderId: number | undefined;
  readonly term: number;
  readonly nodes: readonly ClusterNodeStatus[];
}

/** Milliseconds the pump sleeps at most between looks at the reply rings. */
const PUMP_IDLE_MS = 50;
/**
 * For this long after the last reply the pump polls the rings once per turn of the event
 * loop instead of sleeping: under load the next reply is due within microseconds, and
 * waking from `Atomics.waitAsync` costs far more than that on a busy machine.
 */
const PUMP_POLL_MS = 0.5;
/** How often in-flight attempts are checked against their deadlines. */
const SWEEP_INTERVAL_MS = 20;
/** Time a control call (status, membership) waits for a node's answer. */
const CONTROL_TIMEOUT_MS = 2_000;
/** Client ids are reserved from the data directory in blocks of this many. */
const CLIENT_ID_BLOCK = 1 << 16;
const CLIENT_ID_FILE = 'client-ids';
/** Replies taken from one ring per pump turn. */
const REPLIES_PER_TURN_MAX = 8192;

const requestCodec: FrameCodec<ClientRequest> = {
  encodedBytes: encodedRequestBytes,
  write: (r, writer) => writeRequestTo(writer, r),
};

interface NodeSlot {
  readonly id: number;
  readonly doorbell: SharedArrayBuffer;
  readonly requestRing: SharedArrayBuffer;
  readonly replyRing: SharedArrayBuffer;
  readonly controlWordBuffer: SharedArrayBuffer;
  readonly controlWord: Int32Array;
  readonly requests: Outbox<ClientRequest>;
  readonly replies: RingConsumer;
  readonly replyView: DataView;
  worker: Worker | undefined;
  port: MessagePort | undefined;
  /** Resolves when the current worker has exited. */
  exited: Promise<void> | undefined;
  alive: boolean;
  /** Taken out of the cluster by removeNode: never restarted. */
  removed: boolean;
  /** The error a worker died of, if it died by itself. */
  failure: Error | undefined;
}

interface Attempt {
  readonly nodeId: number;
  readonly deadline: number;
  readonly resolve: (reply: ClientReply) => void;
}

interface ControlCall {
  readonly resolve: (reply: ControlReply) => void;
}

export class Cluster implements KvClientHost {
  readonly options: ResolvedOptions;
  private readonly slots = new Map<number, NodeSlot>();
  /** Rings between nodes, by "from>to". */
  private readonly peerRings = new Map<string, SharedArrayBuffer>();
  private readonly mainDoorbell = Doorbell.create();
  private readonly attempts = new Map<number, Attempt>();
  private readonly watchHandlers = new Map<number, { nodeId: number; onReply: (r: ClientReply) => void }>();
  private readonly controlCalls = new Map<number, ControlCall>();
  private requestIdNext = 1;
  private callIdNext = 1;
  private cuts = new Map<number, readonly number[]>();
  private pumping = false;
  private flushScheduled = false;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;
  private leaderGuessValue: number | undefined;
  private clientIdNext = 1;
  private clientIdLimit = 0;
  private inFlight = 0;
  private readonly slotWaiters: (() => void)[] = [];
  private seedNext: number;

  private constructor(options: ResolvedOptions) {
    this.options = options;
    this.seedNext = options.seed;
  }

  /** Starts the cluster; resolves once every node's thread runs. */
  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    const cluster = new Cluster(resolveOptions(options));
    const ids = Array.from({ length: cluster.options.nodes }, (_, i) => i + 1);
    if (cluster.options.dataDir !== undefined) mkdirSync(cluster.options.dataDir, { recursive: true });
    for (const id of ids) cluster.makeSlot(id);
    try {
      await Promise.all(ids.map((id) => cluster.startWorker(id, ids)));
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  /** A key-value client. Clients are cheap; each has its own sessions. */
  client(): KvClient {
    this.checkOpen();
    return new KvClient(this);
  }

  /** Node ids of the cluster (alive or not, not removed). */
  nodeIds(): number[] {
    return [...this.slots.values()].filter((s) => !s.removed).map((s) => s.id);
  }

  async status(): Promise<ClusterStatus> {
    this.checkOpen();
    const nodes = await Promise.all(
      this.nodeIds().map(async (id): Promise<ClusterNodeStatus> => {
        const s = await this.nodeStatus(id).catch(() => undefined);
        if (s === undefined) return { id, role: 'down', term: 0, commitIndex: 0, appliedIndex: 0, lastIndex: 0, alive: false };
        return { id, role: s.role, term: s.term, commitIndex: s.commitIndex, appliedIndex: s.appliedIndex, lastIndex: s.lastIndex, alive: true };
      }),
    );
    let leader: ClusterNodeStatus | undefined;
    for (const n of nodes) if (n.role === 'leader' && (leader === undefined || n.term > leader.term)) leader = n;
    const term = Math.max(0, ...nodes.map((n) => n.term));
    if (leader !== undefined) this.leaderGuessValue = leader.id;
    return { leaderId: leader?.id, term, nodes };
  }

  /** Terminates node `id`'s thread at once: what it had not synced is not written later. */
  async crash(id: number): Promise<void> {
    this.checkOpen();
    const slot = this.slotOf(id);
    if (!slot.alive) return;
    const exited = slot.exited;
    this.markDown(slot, undefined);
    await slot.worker?.terminate();
    await exited;
  }

  /** Starts node `id` again from its data directory (a node with logs in memory cannot restart). */
  async restart(id: number): Promise<void> {
    this.checkOpen();
    const slot = this.slotOf(id);
    if (this.options.dataDir === undefined) {
      throw invalid(`node ${id} cannot restart: its log was in memory, and a node that forgot its log and votes would break Raft's safety; use a dataDir`);
    }
    if (slot.alive) return;
    await slot.exited;
    await this.startWorker(id, []);
    const cut = this.cuts.get(id);
    if (cut !== undefined && cut.length > 0) await this.control(id, { type: 'partition', callId: 0, cut });
  }

  /**
   * Splits the nodes into groups that cannot reach each other (nodes named in no group
   * form one more group). Clients still reach every node.
   */
  async partition(...groups: number[][]): Promise<void> {
    this.checkOpen();
    const ids = this.nodeIds();
    const named = new Set(groups.flat());
    for (const id of named) this.slotOf(id);
    const all = [...groups, ids.filter((id) => !named.has(id))].filter((g) => g.length > 0);
    for (const id of ids) {
      const own = all.find((g) => g.includes(id))!;
      this.cuts.set(id, ids.filter((x) => !own.includes(x)));
    }
    await this.broadcastCuts();
  }

  /** Ends every partition. */
  async heal(): Promise<void> {
    this.checkOpen();
    this.cuts = new Map();
    await this.broadcastCuts();
  }

  /** Makes `id` the leader; resolves once it leads. */
  async transferLeadership(id: number, options: { timeoutMs?: number } = {}): Promise<void> {
    this.checkOpen();
    this.slotOf(id);
    const deadline = performance.now() + (options.timeoutMs ?? this.electionTimeoutMs() * 10);
    while (performance.now() < deadline) {
      const st = await this.status();
      if (st.leaderId === id) return;
      if (st.leaderId !== undefined) {
        await this.control(st.leaderId, { type: 'transfer-leadership', callId: 0, target: id }).catch((error: unknown) => {
          if (!(error instanceof RingraftError)) throw error;
        });
      }
      await sleep(this.options.tickMs * 2);
    }
    throw new RingraftError(ErrorCode.TIMEOUT, `node ${id} did not become leader in time`);
  }

  /**
   * Adds a node: starts it empty, adds it as a learner, waits until it has caught up with
   * the leader, then makes it a voter. Resolves to its id.
   */
  async addNode(options: { timeoutMs?: number } = {}): Promise<number> {
    this.checkOpen();
    const deadline = performance.now() + (options.timeoutMs ?? 30_000);
    const id = Math.max(...this.slots.keys()) + 1;
    this.makeSlot(id);
    for (const other of this.slots.values()) {
      if (other.id === id || !other.alive) continue;
      await this.control(other.id, { type: 'add-peer', callId: 0, link: this.linkFor(other.id, id) });
    }
    await this.startWorker(id, []);
    await this.changeMembership({ changes: [{ op: 'addLearner', nodeId: id }] }, deadline);
    for (;;) {
      const leader = await this.leaderStatus(deadline);
      const match = leader.matchIndex[id] ?? 0;
      if (match >= leader.commitIndex) break;
      await sleep(this.options.tickMs);
    }
    await this.changeMembership({ changes: [{ op: 'addVoter', nodeId: id }] }, deadline);
    return id;
  }

  /** Removes node `id` from the configuration, then stops its thread. */
  async removeNode(id: number, options: { timeoutMs?: number } = {}): Promise<void> {
    this.checkOpen();
    const slot = this.slotOf(id);
    const deadline = performance.now() + (options.timeoutMs ?? 30_000);
    await this.changeMembership({ changes: [{ op: 'removeNode', nodeId: id }] }, deadline);
    // A removed leader hands leadership off; wait until someone else leads.
    for (;;) {
      const leader = await this.leaderStatus(deadline);
      if (leader.id !== id && !leader.voters.includes(id) && !leader.learners.includes(id)) break;
      await sleep(this.options.tickMs);
    }
    slot.removed = true;
    if (slot.alive) {
      const exited = slot.exited;
      this.markDown(slot, undefined);
      await slot.worker?.terminate();
      await exited;
    }
  }

  /** Stops every node (each closes its log) and fails what is still in flight with CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
    const exits: Promise<void>[] = [];
    for (const slot of this.slots.values()) {
      if (!slot.alive || slot.worker === undefined) continue;
      const worker = slot.worker;
      const exited = slot.exited!;
      this.sendControl(slot, { type: 'close', callId: 0 });
      // A node that does not stop in time (stuck in a long write) is terminated.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), CONTROL_TIMEOUT_MS)));
      exits.push(
        Promise.race([exited, late]).then(async (r) => {
          clearTimeout(timer);
          if (r === 'late') await worker.terminate();
        }),
      );
    }
    await Promise.all(exits);
    for (const slot of this.slots.values()) this.markDown(slot, undefined);
    for (const [requestId, a] of this.attempts) {
      this.attempts.delete(requestId);
      a.resolve({ kind: 'error', requestId, code: ErrorCode.CLOSED, leaderHint: 0, proposed: true });
    }
    for (const w of this.slotWaiters.splice(0)) w();
  }

  // ─── KvClientHost: what clients use ─────────────────────────────────────────────

  get isClosed(): boolean {
    return this.closed;
  }

  get leaderGuess(): number | undefined {
    return this.leaderGuessValue;
  }

  set leaderGuess(id: number | undefined) {
    this.leaderGuessValue = id;
  }

  get defaultTimeoutMs(): number {
    return this.options.requestTimeoutMs;
  }

  electionTimeoutMs(): number {
    return this.options.tickMs * this.options.electionTicks;
  }

  isAlive(id: number): boolean {
    const s = this.slots.get(id);
    return s !== undefined && s.alive && !s.removed;
  }

  /** A fresh client id, unique across restarts of a cluster with a dataDir. */
  allocateClientId(): number {
    if (this.clientIdNext >= this.clientIdLimit) this.reserveClientIds();
    return this.clientIdNext++;
  }

  /** Takes one of the cluster's in-flight request slots if one is free. */
  tryAcquireSlot(): boolean {
    if (this.inFlight >= this.options.requestsInFlightMax || this.slotWaiters.length > 0) return false;
    this.inFlight++;
    return true;
  }

  /** Waits for one of the cluster's in-flight request slots. */
  async acquireSlot(): Promise<void> {
    while (this.inFlight >= this.options.requestsInFlightMax) {
      if (this.closed) return;
      await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    }
    this.inFlight++;
  }

  releaseSlot(): void {
    this.inFlight--;
    this.slotWaiters.shift()?.();
  }

  /**
   * Sends one attempt of a request to node `nodeId`; resolves with its reply, or with a
   * synthetic error reply: TIMEOUT when `deadline` (a performance.now() time) passes first,
   * NODE_DOWN when the node is or goes down, CLOSED when the cluster closes.
   */
  attempt(nodeId: number, build: (requestId: number) => ClientRequest, deadline: number): Promise<ClientReply> {
    const requestId = this.nextRequestId();
    const slot = this.slots.get(nodeId);
    if (this.closed) return Promise.resolve(synthetic(requestId, ErrorCode.CLOSED));
    if (slot === undefined || !slot.alive) return Promise.resolve(synthetic(requestId, ErrorCode.NODE_DOWN));
    return new Promise<ClientReply>((resolve) => {
      this.attempts.set(requestId, { nodeId, deadline, resolve });
      slot.requests.send(build(requestId));
      this.afterSend();
    });
  }

  /** Registers a watch on node `nodeId`; every reply for it goes to `onReply`. Returns its request id. */
  openWatch(nodeId: number, prefix: Uint8Array, afterIndex: number | undefined, onReply: (r: ClientReply) => void): number {
    const requestId = this.nextRequestId();
    const slot = this.slots.get(nodeId);
    if (this.closed || slot === undefined || !slot.alive) {
      queueMicrotask(() => onReply({ kind: 'watch-end', requestId, code: this.closed ? ErrorCode.CLOSED : ErrorCode.NODE_DOWN }));
      return requestId;
    }
    this.watchHandlers.set(requestId, { nodeId, onReply });
    slot.requests.send({ kind: 'watch', requestId, prefix, afterIndex });
    this.afterSend();
    return requestId;
  }

  closeWatch(requestId: number): void {
    const w = this.watchHandlers.get(requestId);
    if (w === undefined) return;
    this.watchHandlers.delete(requestId);
    const slot = this.slots.get(w.nodeId);
    if (slot !== undefined && slot.alive) {
      slot.requests.send({ kind: 'unwatch', requestId });
      this.afterSend();
    }
  }

  // ─── Threads ────────────────────────────────────────────────────────────────────

  private makeSlot(id: number): NodeSlot {
    const ringBytes = this.options.ringBytes;
    const requestRing = createRing(ringBytes);
    const doorbell = Doorbell.create();
    const controlWordBuffer = new SharedArrayBuffer(4);
    const replyRing = createRing(ringBytes);
    const slot: NodeSlot = {
      id,
      doorbell: doorbell.buffer,
      requestRing,
      replyRing,
      controlWordBuffer,
      controlWord: new Int32Array(controlWordBuffer),
      // Requests are never discarded: the in-flight bound keeps the queue finite.
      requests: new Outbox(new RingProducer(requestRing, { doorbell }), requestCodec, Number.POSITIVE_INFINITY),
      replies: new RingConsumer(replyRing),
      replyView: new DataView(replyRing),
      worker: undefined,
      port: undefined,
      exited: undefined,
      alive: false,
      removed: false,
      failure: undefined,
    };
    for (const other of this.slots.keys()) {
      this.peerRings.set(`${other}>${id}`, createRing(ringBytes));
      this.peerRings.set(`${id}>${other}`, createRing(ringBytes));
    }
    this.slots.set(id, slot);
    return slot;
  }

  /** The rings node `self` uses to talk with `peer`. */
  private linkFor(self: number, peer: number): PeerLink {
    return {
      id: peer,
      inRing: this.peerRings.get(`${peer}>${self}`)!,
      outRing: this.peerRings.get(`${self}>${peer}`)!,
      peerDoorbell: this.slots.get(peer)!.doorbell,
    };
  }

  private settingsFor(id: number): NodeSettings {
    const o = this.options;
    return {
      tickMs: o.tickMs,
      electionTicks: o.electionTicks,
      heartbeatTicks: o.heartbeatTicks,
      preVote: o.preVote,
      checkQuorum: o.checkQuorum,
      maxInflight: o.maxInflight,
      maxBatchBytes: o.maxBatchBytes,
      snapshotChunkBytes: o.snapshotChunkBytes,
      snapshotEveryEntries: o.snapshotEveryEntries,
      snapshotRetainEntries: o.snapshotRetainEntries,
      dataDir: o.dataDir === undefined ? undefined : join(o.dataDir, `node-${id}`),
      fsync: o.fsync,
      peerQueueMax: Math.max(1024, o.maxInflight * 4),
    };
  }

  private startWorker(id: number, voters: readonly number[]): Promise<void> {
    const slot = this.slots.get(id)!;
    const { port1, port2 } = new MessageChannel();
    const peers = [...this.slots.keys()].filter((p) => p !== id).map((p) => this.linkFor(id, p));
    const data: NodeWorkerData = {
      id,
      voters,
      seed: this.nextSeed(),
      settings: this.settingsFor(id),
      doorbell: slot.doorbell,
      peers,
      requestRing: slot.requestRing,
      replyRing: slot.replyRing,
      mainDoorbell: this.mainDoorbell.buffer,
      controlWord: slot.controlWordBuffer,
      controlPort: port2,
    };
    const worker = new Worker(NODE_WORKER_URL, { workerData: data, transferList: [port2] });
    slot.worker = worker;
    slot.port = port1;
    slot.failure = undefined;
    slot.exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    return new Promise<void>((resolve, reject) => {
      let started = false;
      worker.on('message', (msg: ControlReply) => {
        if (msg.type === 'started') {
          started = true;
          slot.alive = true;
          resolve();
          return;
        }
        const call = this.controlCalls.get(msg.callId);
        if (call === undefined) return;
        this.controlCalls.delete(msg.callId);
        call.resolve(msg);
      });
      worker.once('error', (error) => {
        if (!started) reject(error);
        if (slot.worker === worker) this.markDown(slot, error);
      });
      worker.once('exit', (code) => {
        if (!started) reject(new RingraftError(ErrorCode.NODE_DOWN, `node ${id} exited with code ${code} before it started`));
        if (slot.worker === worker && slot.alive) this.markDown(slot, undefined);
      });
    });
  }

  /** Marks a node down and fails what waits on it, so callers retry elsewhere at once. */
  private markDown(slot: NodeSlot, failure: Error | undefined): void {
    slot.alive = false;
    if (failure !== undefined) slot.failure = failure;
    slot.requests.clear();
    slot.port?.close();
    slot.port = undefined;
    for (const [requestId, a] of this.attempts) {
      if (a.nodeId !== slot.id) continue;
      this.attempts.delete(requestId);
      a.resolve(synthetic(requestId, ErrorCode.NODE_DOWN));
    }
    for (const [requestId, w] of this.watchHandlers) {
      if (w.nodeId !== slot.id) continue;
      this.watchHandlers.delete(requestId);
      w.onReply({ kind: 'watch-end', requestId, code: ErrorCode.NODE_DOWN });
    }
    if (this.leaderGuessValue === slot.id) this.leaderGuessValue = undefined;
  }

  // ─── Control ────────────────────────────────────────────────────────────────────

  private sendControl(slot: NodeSlot, req: ControlRequest): void {
    slot.port!.postMessage(req);
    signalControl(slot.controlWord);
    new Doorbell(slot.doorbell).ring();
  }

  private control(id: number, req: ControlRequest): Promise<ControlReply & { type: 'reply' }> {
    const slot = this.slotOf(id);
    if (!slot.alive || slot.port === undefined) return Promise.reject(new RingraftError(ErrorCode.NODE_DOWN, `node ${id} is down`));
    const callId = this.callIdNext++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.controlCalls.delete(callId);
        reject(new RingraftError(ErrorCode.TIMEOUT, `node ${id} did not answer ${req.type}`));
      }, CONTROL_TIMEOUT_MS);
      this.controlCalls.set(callId, {
        resolve: (reply) => {
          clearTimeout(timer);
          if (reply.type === 'reply') resolve(reply);
          else if (reply.type === 'error') reject(new RingraftError(reply.code as ErrorCode, reply.message));
        },
      });
      this.sendControl(slot, { ...req, callId } as ControlRequest);
    });
  }

  private async nodeStatus(id: number): Promise<NodeStatus> {
    const reply = await this.control(id, { type: 'status', callId: 0 });
    return reply.status!;
  }

  private async leaderStatus(deadline: number): Promise<NodeStatus> {
    for (;;) {
      this.checkOpen();
      const statuses = await Promise.all(this.nodeIds().filter((id) => this.isAlive(id)).map((id) => this.nodeStatus(id).catch(() => undefined)));
      let leader: NodeStatus | undefined;
      for (const s of statuses) if (s !== undefined && s.role === 'leader' && (leader === undefined || s.term > leader.term)) leader = s;
      if (leader !== undefined) return leader;
      if (performance.now() > deadline) throw new RingraftError(ErrorCode.TIMEOUT, 'no leader');
      await sleep(this.options.tickMs);
    }
  }

  /** Proposes `change` at the leader (retrying while another change is pending) and waits until it is applied. */
  private async changeMembership(change: ConfChange, deadline: number): Promise<void> {
    for (;;) {
      if (performance.now() > deadline) throw new RingraftError(ErrorCode.TIMEOUT, 'membership change did not complete in time');
      const leader = await this.leaderStatus(deadline);
      let index: number;
      try {
        index = (await this.control(leader.id, { type: 'conf-change', callId: 0, change })).index!;
      } catch (error) {
        if (error instanceof RingraftError && error.code !== ErrorCode.INVALID_ARGUMENT) {
          await sleep(this.options.tickMs);
          continue;
        }
        throw error;
      }
      // Applied on the leader and not joint any more: the change is in force.
      for (;;) {
        const st = await this.leaderStatus(deadline);
        if (st.appliedIndex >= index && st.term >= leader.term) {
          const s2 = await this.nodeStatus(st.id).catch(() => undefined);
          if (s2 !== undefined && s2.appliedIndex >= index) return;
        }
        if (performance.now() > deadline) throw new RingraftError(ErrorCode.TIMEOUT, 'membership change did not complete in time');
        await sleep(this.options.tickMs);
      }
    }
  }

  private async broadcastCuts(): Promise<void> {
    await Promise.all(
      this.nodeIds()
        .filter((id) => this.isAlive(id))
        .map((id) => this.control(id, { type: 'partition', callId: 0, cut: this.cuts.get(id) ?? [] })),
    );
  }

  // ─── The reply pump ─────────────────────────────────────────────────────────────

  private afterSend(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        this.flushRequests();
      });
    }
    if (!this.pumping) void this.pump();
    if (this.sweeper === undefined) this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
  }

  private flushRequests(): void {
    for (const slot of this.slots.values()) if (slot.alive) slot.requests.flush();
  }

  private queuedRequests(): boolean {
    for (const slot of this.slots.values()) if (slot.requests.queuedCount > 0) return true;
    return false;
  }

  private hasReplies(): boolean {
    for (const slot of this.slots.values()) if (slot.replies.hasData()) return true;
    return false;
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    let lastReplyAt = performance.now();
    try {
      while (!this.closed && (this.attempts.size > 0 || this.watchHandlers.size > 0)) {
        const got = this.drainReplies();
        this.flushRequests();
        if (got > 0) lastReplyAt = performance.now();
        if (got > 0 || performance.now() - lastReplyAt < PUMP_POLL_MS) {
          // Let the callers whose replies came run (and send more) before the next look.
          await new Promise<void>((resolve) => setImmediate(resolve));
        } else {
          await this.mainDoorbell.waitAsync(this.queuedRequests() ? 1 : PUMP_IDLE_MS, () => this.hasReplies() || this.closed);
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private drainReplies(): number {
    let frames = 0;
    for (const slot of this.slots.values()) {
      const view = slot.replyView;
      frames += slot.replies.drainRanges((memory, offset, length) => {
        this.dispatch(decodeReplyAt(memory, view, offset, length));
      }, REPLIES_PER_TURN_MAX);
    }
    return frames;
  }

  private dispatch(reply: ClientReply): void {
    const a = this.attempts.get(reply.requestId);
    if (a !== undefined) {
      this.attempts.delete(reply.requestId);
      a.resolve(reply);
      return;
    }
    const w = this.watchHandlers.get(reply.requestId);
    if (w === undefined) return; // A late reply to an attempt given up on.
    if (reply.kind === 'watch-end') this.watchHandlers.delete(reply.requestId);
    w.onReply(reply);
  }

  /** Fails attempts past their deadline with TIMEOUT; stops itself when nothing is in flight. */
  private sweep(): void {
    const now = performance.now();
    for (const [requestId, a] of this.attempts) {
      if (a.deadline > now) continue;
      this.attempts.delete(requestId);
      a.resolve(synthetic(requestId, ErrorCode.TIMEOUT));
    }
    if (this.attempts.size === 0 && this.sweeper !== undefined) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  // ─── Helpers ────────────────────────────────────────────────────────────────────

  private nextRequestId(): number {
    const id = this.requestIdNext;
    this.requestIdNext = id >= 0xffff_ffff ? 1 : id + 1;
    return id;
  }

  private nextSeed(): number {
    this.seedNext = (Math.imul(this.seedNext ^ (this.seedNext >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    return this.seedNext;
  }

  private slotOf(id: number): NodeSlot {
    const slot = this.slots.get(id);
    if (slot === undefined || slot.removed) throw invalid(`no node ${id} in the cluster`);
    return slot;
  }

  private checkOpen(): void {
    if (this.closed) throw new RingraftError(ErrorCode.CLOSED, 'the cluster is closed');
  }

  /**
   * Reserves a block of client ids. With a dataDir the next free block is recorded there
   * (written to a temporary file, synced, renamed) before any id of it is used, so that a
   * client of a later process never reuses a session id the state machine still holds.
   */
  private reserveClientIds(): void {
    const dir = this.options.dataDir;
    if (dir === undefined) {
      this.clientIdLimit = this.clientIdNext + CLIENT_ID_BLOCK;
      return;
    }
    const path = join(dir, CLIENT_ID_FILE);
    let start = 1;
    try {
      start = Number(readFileSync(path, 'utf8').trim());
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (!Number.isSafeInteger(start) || start < 1) throw new RingraftError(ErrorCode.CORRUPT_LOG, `${path} does not hold a client id`);
    const limit = start + CLIENT_ID_BLOCK;
    if (limit > 0xffff_ffff) throw new RingraftError(ErrorCode.UNAVAILABLE, 'client ids are exhausted');
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, `${limit}\n`);
    const fd = openSync(tmp, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
    const dirFd = openSync(dir, 'r');
    fsyncSync(dirFd);
    closeSync(dirFd);
    this.clientIdNext = Math.max(this.clientIdNext, start);
    this.clientIdLimit = limit;
  }
}

function synthetic(requestId: number, code: string): ClientReply {
  return { kind: 'error', requestId, code, leaderHint: 0, proposed: true };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts a cluster of Raft nodes on worker threads (see {@link ClusterOptions}). */
export function createCluster(options: ClusterOptions = {}): Promise<Cluster> {
  return Cluster.start(options);
}
