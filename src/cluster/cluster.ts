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

import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { ErrorCode, RingraftError, type ConfChange } from '../core/index.ts';
import {
  NODE_WORKER_URL,
  signalControl,
  type ClientLinkData,
  type ControlReply,
  type ControlRequest,
  type NodeSettings,
  type NodeStatus,
  type NodeWorkerData,
  type PeerLink,
} from '../runtime/index.ts';
import { createRing, Doorbell } from '../transport/index.ts';
import { KvClient } from './client.ts';
import { ClientEndpoint, type EndpointLink } from './endpoint.ts';
import { CLUSTER_NODES_MAX, invalid, resolveOptions, type ClusterOptions, type ResolvedOptions } from './options.ts';

export interface ClusterNodeStatus {
  readonly id: number;
  readonly role: NodeStatus['role'] | 'down';
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly alive: boolean;
  /** For a node whose thread died by itself (a storage error, say): what it died of. */
  readonly error?: string;
}

export interface ClusterStatus {
  /** The leader with the highest term among the nodes that answered; undefined if none. */
  readonly leaderId: number | undefined;
  readonly term: number;
  readonly nodes: readonly ClusterNodeStatus[];
}

/** Time a control call (status, membership) waits for a node's answer. */
const CONTROL_TIMEOUT_MS = 2_000;
/** Client ids are reserved from the data directory in blocks of this many. */
const CLIENT_ID_BLOCK = 1 << 16;
const CLIENT_ID_FILE = 'client-ids';
/** Node ids an endpoint in another thread can see (liveness words). */
const LIVENESS_IDS_MAX = 1024;
const LIVENESS = { absent: 0, alive: 1, down: 2 } as const;

/**
 * What a client thread needs to talk to the cluster: rings to each node (made for it by
 * {@link Cluster.connectEndpoint}), its doorbell, the nodes' liveness, a block of client ids,
 * and the timeouts. Everything in it can be posted to another thread.
 */
export interface EndpointDescriptor {
  readonly links: readonly EndpointLink[];
  readonly doorbell: SharedArrayBuffer;
  /** Int32 per node id: 0 absent, 1 alive, 2 down. */
  readonly liveness: SharedArrayBuffer;
  readonly clientIdFirst: number;
  readonly clientIdCount: number;
  readonly requestTimeoutMs: number;
  readonly electionTimeoutMs: number;
  readonly requestsInFlightMax: number;
}

/** The rings between one client thread and every node. */
interface ClientLinkSet {
  readonly index: number;
  readonly doorbell: SharedArrayBuffer;
  /** By node id. */
  readonly rings: Map<number, { readonly requestRing: SharedArrayBuffer; readonly replyRing: SharedArrayBuffer }>;
}

interface NodeSlot {
  readonly id: number;
  readonly doorbell: SharedArrayBuffer;
  readonly controlWordBuffer: SharedArrayBuffer;
  readonly controlWord: Int32Array;
  worker: Worker | undefined;
  port: MessagePort | undefined;
  /** Resolves when the current worker has exited. */
  exited: Promise<void> | undefined;
  alive: boolean;
  /** Taken out of the cluster by removeNode: never restarted. */
  removed: boolean;
  /** The error a worker died of, if it died by itself. */
  failure: Error | undefined;
  /** A restart under way: a second restart, a crash or close waits for it. */
  starting: Promise<void> | undefined;
}

interface ControlCall {
  readonly nodeId: number;
  readonly resolve: (reply: ControlReply) => void;
  readonly reject: (error: RingraftError) => void;
}

export class Cluster {
  readonly options: ResolvedOptions;
  private readonly slots = new Map<number, NodeSlot>();
  /** Rings between nodes, by "from>to". */
  private readonly peerRings = new Map<string, SharedArrayBuffer>();
  /** Client threads' rings; index 0 is this thread's. */
  private readonly clientLinks: ClientLinkSet[] = [];
  private readonly liveness = new Int32Array(new SharedArrayBuffer(4 * LIVENESS_IDS_MAX));
  /** This thread's client side. */
  private readonly endpoint: ClientEndpoint;
  private readonly controlCalls = new Map<number, ControlCall>();
  private callIdNext = 1;
  private cuts = new Map<number, readonly number[]>();
  private closed = false;
  private clientIdNext = 1;
  private clientIdLimit = 0;
  private seedNext: number;

  private constructor(options: ResolvedOptions) {
    this.options = options;
    this.seedNext = options.seed;
    this.endpoint = new ClientEndpoint(
      {
        requestTimeoutMs: options.requestTimeoutMs,
        electionTimeoutMs: options.tickMs * options.electionTicks,
        requestsInFlightMax: options.requestsInFlightMax,
        allocateClientId: () => this.allocateClientId(),
      },
      { nodeIds: () => this.nodeIds(), isAlive: (id) => this.isAlive(id) },
    );
    this.clientLinks.push({ index: 0, doorbell: this.endpoint.doorbell.buffer, rings: new Map() });
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
    return new KvClient(this.endpoint);
  }

  /**
   * Makes rings for a client in another thread (a load generator, say) and tells every
   * node about them. Post the descriptor to that thread and call {@link connectEndpoint}
   * there. Nodes added later are not visible to it.
   */
  async connectEndpoint(options: { clientIdCount?: number } = {}): Promise<EndpointDescriptor> {
    this.checkOpen();
    const clientIdCount = options.clientIdCount ?? CLIENT_ID_BLOCK;
    const clientIdFirst = this.allocateClientIds(clientIdCount);
    const set: ClientLinkSet = { index: this.clientLinks.length, doorbell: Doorbell.create().buffer, rings: new Map() };
    this.clientLinks.push(set);
    for (const id of this.slots.keys()) this.makeClientRings(set, id);
    await Promise.all(
      this.nodeIds()
        .filter((id) => this.isAlive(id))
        .map((id) => this.control(id, { type: 'add-client', callId: 0, link: this.clientLinkData(set, id) })),
    );
    return {
      links: [...set.rings].map(([nodeId, r]) => ({ nodeId, requestRing: r.requestRing, replyRing: r.replyRing, nodeDoorbell: this.slots.get(nodeId)!.doorbell })),
      doorbell: set.doorbell,
      liveness: this.liveness.buffer as SharedArrayBuffer,
      clientIdFirst,
      clientIdCount,
      requestTimeoutMs: this.options.requestTimeoutMs,
      electionTimeoutMs: this.options.tickMs * this.options.electionTicks,
      requestsInFlightMax: this.options.requestsInFlightMax,
    };
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
        if (s === undefined) {
          const failure = this.slots.get(id)?.failure;
          const down: ClusterNodeStatus = { id, role: 'down', term: 0, commitIndex: 0, appliedIndex: 0, lastIndex: 0, alive: false };
          return failure === undefined ? down : { ...down, error: failure.message };
        }
        return { id, role: s.role, term: s.term, commitIndex: s.commitIndex, appliedIndex: s.appliedIndex, lastIndex: s.lastIndex, alive: true };
      }),
    );
    let leader: ClusterNodeStatus | undefined;
    for (const n of nodes) if (n.role === 'leader' && (leader === undefined || n.term > leader.term)) leader = n;
    const term = Math.max(0, ...nodes.map((n) => n.term));
    if (leader !== undefined) this.endpoint.leaderGuess = leader.id;
    return { leaderId: leader?.id, term, nodes };
  }

  /** Terminates node `id`'s thread at once: what it had not synced is not written later. */
  async crash(id: number): Promise<void> {
    this.checkOpen();
    const slot = this.slotOf(id);
    await slot.starting?.catch(() => {});
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
    if (slot.starting !== undefined) return slot.starting;
    if (slot.alive) return;
    const starting = (async () => {
      await slot.exited;
      // close() may have come meanwhile: then nothing starts.
      this.checkOpen();
      await this.startWorker(id, []);
    })();
    slot.starting = starting;
    try {
      await starting;
    } finally {
      slot.starting = undefined;
    }
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
    const deadline = performance.now() + (options.timeoutMs ?? this.options.tickMs * this.options.electionTicks * 10);
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
    if (this.nodeIds().length >= CLUSTER_NODES_MAX) throw invalid(`the cluster has ${CLUSTER_NODES_MAX} nodes, the most it may have`);
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
    this.freeRings(id);
  }

  /** Drops every ring of a removed node, so replacing nodes does not pile up memory. */
  private freeRings(id: number): void {
    for (const key of [...this.peerRings.keys()]) {
      if (key.split('>').includes(String(id))) this.peerRings.delete(key);
    }
    for (const set of this.clientLinks) set.rings.delete(id);
    this.endpoint.removeLink(id);
    Atomics.store(this.liveness, id, LIVENESS.absent);
  }

  /** Stops every node (each closes its log) and fails what is still in flight with CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A restart under way finishes first (or fails on the closed cluster), then stops below.
    await Promise.all([...this.slots.values()].map((s) => s.starting?.catch(() => {})));
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
    this.endpoint.close();
  }

  // ─── Nodes and client ids ───────────────────────────────────────────────────────

  isAlive(id: number): boolean {
    const s = this.slots.get(id);
    return s !== undefined && s.alive && !s.removed;
  }

  /** A fresh client id, unique across restarts of a cluster with a dataDir. */
  private allocateClientId(): number {
    if (this.clientIdNext >= this.clientIdLimit) this.reserveClientIds(CLIENT_ID_BLOCK);
    return this.clientIdNext++;
  }

  /** `count` consecutive fresh client ids; returns the first. */
  private allocateClientIds(count: number): number {
    if (!(Number.isSafeInteger(count) && count >= 1 && count <= CLIENT_ID_BLOCK * 16)) throw invalid(`clientIdCount ${count} is out of range`);
    if (this.clientIdNext + count > this.clientIdLimit) this.reserveClientIds(count);
    const first = this.clientIdNext;
    this.clientIdNext += count;
    return first;
  }

  // ─── Threads ────────────────────────────────────────────────────────────────────

  private makeSlot(id: number): NodeSlot {
    const ringBytes = this.options.ringBytes;
    const controlWordBuffer = new SharedArrayBuffer(4);
    const slot: NodeSlot = {
      id,
      doorbell: Doorbell.create().buffer,
      controlWordBuffer,
      controlWord: new Int32Array(controlWordBuffer),
      worker: undefined,
      port: undefined,
      exited: undefined,
      alive: false,
      removed: false,
      failure: undefined,
      starting: undefined,
    };
    for (const other of this.nodeIds()) {
      this.peerRings.set(`${other}>${id}`, createRing(ringBytes));
      this.peerRings.set(`${id}>${other}`, createRing(ringBytes));
    }
    this.slots.set(id, slot);
    if (id >= LIVENESS_IDS_MAX) throw invalid(`node id ${id} is past ${LIVENESS_IDS_MAX - 1}`);
    Atomics.store(this.liveness, id, LIVENESS.down);
    for (const set of this.clientLinks) this.makeClientRings(set, id);
    const main = this.clientLinks[0]!.rings.get(id)!;
    this.endpoint.addLink({ nodeId: id, requestRing: main.requestRing, replyRing: main.replyRing, nodeDoorbell: slot.doorbell });
    return slot;
  }

  private makeClientRings(set: ClientLinkSet, nodeId: number): void {
    set.rings.set(nodeId, { requestRing: createRing(this.options.ringBytes), replyRing: createRing(this.options.ringBytes) });
  }

  private clientLinkData(set: ClientLinkSet, nodeId: number): ClientLinkData {
    const r = set.rings.get(nodeId)!;
    return { index: set.index, requestRing: r.requestRing, replyRing: r.replyRing, clientDoorbell: set.doorbell };
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
      snapshotEveryBytes: o.snapshotEveryBytes,
      dataDir: o.dataDir === undefined ? undefined : join(o.dataDir, `node-${id}`),
      fsync: o.fsync,
      peerQueueMax: Math.max(1024, o.maxInflight * 4),
    };
  }

  private startWorker(id: number, voters: readonly number[]): Promise<void> {
    const slot = this.slots.get(id)!;
    const { port1, port2 } = new MessageChannel();
    const peers = this.nodeIds()
      .filter((p) => p !== id)
      .map((p) => this.linkFor(id, p));
    const data: NodeWorkerData = {
      id,
      voters,
      seed: this.nextSeed(),
      settings: this.settingsFor(id),
      doorbell: slot.doorbell,
      peers,
      clients: this.clientLinks.map((set) => this.clientLinkData(set, id)),
      // A node that restarts during a partition starts inside it.
      cut: this.cuts.get(id) ?? [],
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
          Atomics.store(this.liveness, id, LIVENESS.alive);
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
    Atomics.store(this.liveness, slot.id, LIVENESS.down);
    if (failure !== undefined) slot.failure = failure;
    slot.port?.close();
    slot.port = undefined;
    this.endpoint.nodeDown(slot.id);
    for (const [callId, call] of this.controlCalls) {
      if (call.nodeId !== slot.id) continue;
      this.controlCalls.delete(callId);
      call.reject(new RingraftError(ErrorCode.NODE_DOWN, `node ${slot.id} went down`));
    }
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
        nodeId: id,
        resolve: (reply) => {
          clearTimeout(timer);
          if (reply.type === 'reply') resolve(reply);
          else if (reply.type === 'error') reject(new RingraftError(reply.code as ErrorCode, reply.message));
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
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

  // ─── Helpers ────────────────────────────────────────────────────────────────────

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
  private reserveClientIds(count: number): void {
    const dir = this.options.dataDir;
    const block = Math.max(count, CLIENT_ID_BLOCK);
    if (dir === undefined) {
      this.clientIdLimit = this.clientIdNext + block;
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
    start = Math.max(start, this.clientIdNext);
    const limit = start + block;
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
    this.clientIdNext = start;
    this.clientIdLimit = limit;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts a cluster of Raft nodes on worker threads (see {@link ClusterOptions}). */
export function createCluster(options: ClusterOptions = {}): Promise<Cluster> {
  return Cluster.start(options);
}
