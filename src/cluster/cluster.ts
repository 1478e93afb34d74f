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

import { CLUSTER_NODES_MAX, ErrorCode, fail, parseErrorCode, RingraftError } from '../base/index.ts';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { type ConfChange } from '../core/index.ts';
import {
  NODE_WORKER_URL,
  signalControl,
  type ClientLinkData,
  type ControlReply,
  type ControlRequest,
  type WorkerSettings,
  type NodeStatus,
  type NodeWorkerData,
  type PeerLink,
} from '../runtime/index.ts';
import {
  bootstrapVotersOf,
  checkNodeDirectory,
  expectationOf,
  MANIFEST_FILE,
  newManifest,
  nodeDirectoryHasLog,
  readManifest,
  realFileSystem,
  writeManifest,
  type ClusterManifest,
} from '../storage/index.ts';
import { createRing, Doorbell } from '../transport/index.ts';
import { KvClient } from './client.ts';
import { DataDirLock } from './data-dir-lock.ts';
import { isTransientFailure, nodeFailure, storageSetupError } from './node-failure.ts';
import { ClientEndpoint, type EndpointLink } from './endpoint.ts';
import { electionTimeoutMs, invalid, resolveOptions, type ClusterOptions, type ResolvedOptions } from './options.ts';

export interface ClusterNodeStatus {
  readonly id: number;
  readonly role: NodeStatus['role'] | 'down';
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly alive: boolean;
  /** For a node that is down by no one's choice (a storage error, a damaged or lost log): why. */
  readonly error?: string;
  /** The code of {@link error}: CORRUPT_LOG, NO_SPACE, IO_ERROR, STATE_LOST, CONFIG_MISMATCH, ... */
  readonly errorCode?: ErrorCode;
}

export interface ClusterStatus {
  /** The leader with the highest term among the nodes that answered; undefined if none. */
  readonly leaderId: number | undefined;
  readonly term: number;
  readonly nodes: readonly ClusterNodeStatus[];
}

/** Time a control call (status, membership) waits for a node's answer. */
const CONTROL_TIMEOUT_MS = 2_000;
/** Node ids an endpoint in another thread can see (liveness words). */
const LIVENESS_IDS_MAX = 1024;
const LIVENESS = { absent: 0, alive: 1, down: 2 } as const;

/**
 * What a client thread needs to talk to the cluster: rings to each node (made for it by
 * {@link Cluster.connectEndpoint}), its doorbell, the nodes' liveness
 * and the timeouts. Everything in it can be posted to another thread.
 */
export interface EndpointDescriptor {
  readonly links: readonly EndpointLink[];
  readonly doorbell: SharedArrayBuffer;
  /** Int32 per node id: 0 absent, 1 alive, 2 down. */
  readonly liveness: SharedArrayBuffer;
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
  /** Why the node is down, if it did not stop by request: it died, or could not start. */
  failure: RingraftError | undefined;
  /** A restart scheduled after a storage failure that may pass (a full disk). */
  recovery: { timer: NodeJS.Timeout } | undefined;
  /** The delay of the last automatic restart: doubled at each failed try. */
  recoveryDelayMs: number;
  /** When the current thread reported started (performance.now()). */
  startedAt: number | undefined;
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
  private seedNext: number;
  /** The membership change under way, if any: the next one starts after it (see oneMembershipChange). */
  private membershipQueue: Promise<void> = Promise.resolve();
  /** Workers do not hold the process open (see {@link unref}). */
  private unrefed = false;

  private constructor(
    options: ResolvedOptions,
    /** The lock on the data directory (with a dataDir). */
    private readonly lock: DataDirLock | undefined,
    /** The cluster's record in its data directory (with a dataDir). */
    private readonly manifest: ClusterManifest | undefined,
  ) {
    this.options = options;
    this.seedNext = options.seed;
    this.endpoint = new ClientEndpoint(
      {
        requestTimeoutMs: options.client.requestTimeoutMs,
        electionTimeoutMs: electionTimeoutMs(options),
        requestsInFlightMax: options.client.requestsInFlightMax,
      },
      { nodeIds: () => this.nodeIds(), isAlive: (id) => this.isAlive(id), downReasons: () => this.downReasons() },
    );
    this.clientLinks.push({ index: 0, doorbell: this.endpoint.doorbell.buffer, rings: new Map() });
  }

  /**
   * Starts the cluster. With a dataDir: locks it, reads or creates its record, checks every
   * node's directory, and starts every node that may start; resolves once a quorum of them
   * runs (a node that cannot start is down, with its reason in {@link status}), and rejects
   * with NO_QUORUM, naming each node's reason, when fewer can.
   */
  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    const resolved = resolveOptions(options);
    let lock: DataDirLock | undefined;
    let manifest: ClusterManifest | undefined;
    const dir = resolved.dataDir;
    if (dir !== undefined) {
      makeDataDir(dir);
      try {
        lock = DataDirLock.acquire(dir);
      } catch (error) {
        throw storageSetupError(dir, 'locking it', error);
      }
      try {
        manifest = openManifest(dir, options.nodes, resolved.nodes);
      } catch (error) {
        lock.release();
        throw storageSetupError(dir, `reading its ${MANIFEST_FILE} record`, error);
      }
    }
    const ids = manifest?.members.map((m) => m.id) ?? Array.from({ length: resolved.nodes }, (_, i) => i + 1);
    const cluster = new Cluster({ ...resolved, nodes: ids.length }, lock, manifest);
    for (const id of ids) cluster.makeSlot(id);
    const results = await Promise.allSettled(ids.map((id) => cluster.startNode(id, ids)));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ id: ids[i]!, error: cluster.slots.get(ids[i]!)!.failure ?? nodeFailure(ids[i]!, r.reason) }] : []));
    const quorum = Math.floor(ids.length / 2) + 1;
    if (ids.length - failed.length < quorum) {
      await cluster.close();
      const reasons = failed.map((f) => `${f.error.code}: ${f.error.message}`).join('; ');
      throw new RingraftError(
        ErrorCode.NO_QUORUM,
        `only ${ids.length - failed.length} of ${ids.length} nodes could start, fewer than the ${quorum} a quorum needs: ${reasons}`,
        { cause: new AggregateError(failed.map((f) => f.error)) },
      );
    }
    // A node that could not start for want of space comes back by itself once there is some.
    for (const f of failed) cluster.scheduleRecovery(cluster.slots.get(f.id)!);
    return cluster;
  }

  /** A key-value client. Clients are cheap; the clients of this process share its sessions (one per write in flight). */
  client(): KvClient {
    this.checkOpen();
    return new KvClient(this.endpoint);
  }

  /**
   * Makes rings for a client in another thread (a load generator, say) and tells every
   * node about them. Post the descriptor to that thread and call {@link connectEndpoint}
   * there. Nodes added later are not visible to it.
   */
  async connectEndpoint(): Promise<EndpointDescriptor> {
    this.checkOpen();
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
      requestTimeoutMs: this.options.client.requestTimeoutMs,
      electionTimeoutMs: electionTimeoutMs(this.options),
      requestsInFlightMax: this.options.client.requestsInFlightMax,
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
          return failure === undefined ? down : { ...down, error: failure.message, errorCode: failure.code };
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
    this.cancelRecovery(slot);
    await slot.starting?.catch(() => {});
    if (!slot.alive) return;
    const exited = slot.exited;
    this.markDown(slot, undefined);
    await slot.worker?.terminate();
    await exited;
  }

  /**
   * Starts node `id` again from its data directory (a node with logs in memory cannot
   * restart). Its directory is checked first: a node whose state is lost (STATE_LOST) or
   * whose directory is not its own (CONFIG_MISMATCH) is refused, and stays down.
   */
  async restart(id: number): Promise<void> {
    this.checkOpen();
    const slot = this.slotOf(id);
    if (this.options.dataDir === undefined) {
      throw invalid(`node ${id} cannot restart: its log was in memory, and a node that forgot its log and votes would break Raft's safety; use a dataDir`);
    }
    this.cancelRecovery(slot);
    return this.restartNode(slot);
  }

  /** Starts a down node again (one start at a time; a start under way is joined). */
  private async restartNode(slot: NodeSlot): Promise<void> {
    const id = slot.id;
    if (slot.starting !== undefined) return slot.starting;
    if (slot.alive) return;
    const starting = (async () => {
      await slot.exited;
      // close() may have come meanwhile: then nothing starts.
      this.checkOpen();
      await this.startNode(id, []);
    })();
    slot.starting = starting;
    try {
      await starting;
    } finally {
      slot.starting = undefined;
    }
  }

  /**
   * Starts node `id`'s thread. With a dataDir its directory is checked against the cluster's
   * record first, and the node bootstraps with the cluster's first configuration only if it
   * is an original member that has never run; without one, `initialVoters` bootstrap it.
   * On failure the node is down with its typed reason in `slot.failure`.
   */
  private async startNode(id: number, initialVoters: readonly number[]): Promise<void> {
    const slot = this.slots.get(id)!;
    const manifest = this.manifest;
    let voters = initialVoters;
    if (manifest !== undefined) {
      try {
        checkNodeDirectory(realFileSystem, this.nodeDir(id)!, expectationOf(manifest, id));
      } catch (error) {
        slot.failure = nodeFailure(id, error);
        throw slot.failure;
      }
      voters = bootstrapVotersOf(manifest, id);
    }
    const member = manifest?.members.find((m) => m.id === id);
    await this.startWorker(id, voters, () => {
      if (manifest === undefined || member === undefined || member.hasRun) return;
      // Recorded before the node runs Raft (it waits for 'run'): from now on its directory
      // must hold its log, and losing it is STATE_LOST, not a new node.
      member.hasRun = true;
      writeManifest(realFileSystem, this.options.dataDir!, manifest);
    });
  }

  /**
   * Splits the nodes into groups that cannot reach each other (nodes named in no group
   * form one more group). Clients still reach every node.
   */
  async partition(...groups: number[][]): Promise<void> {
    this.checkOpen();
    const ids = this.nodeIds();
    const named = new Set<number>();
    for (const [i, group] of groups.entries()) {
      if (!Array.isArray(group) || group.length === 0) throw invalid(`partition group ${i + 1} must be a non-empty array of node ids, got ${describe(group)}`);
      for (const id of group) {
        this.slotOf(id);
        if (named.has(id)) throw invalid(`node ${id} is named in two partition groups`);
        named.add(id);
      }
    }
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
    if (!this.isAlive(id)) throw new RingraftError(ErrorCode.NODE_DOWN, `node ${id} is down: it cannot become leader${this.downReason(id)}`);
    const deadline = performance.now() + (options.timeoutMs ?? electionTimeoutMs(this.options) * 10);
    while (performance.now() < deadline) {
      const st = await this.status();
      if (st.leaderId === id) return;
      if (!this.isAlive(id)) throw new RingraftError(ErrorCode.NODE_DOWN, `node ${id} went down before it became leader${this.downReason(id)}`);
      if (st.leaderId !== undefined) {
        const leader = await this.nodeStatus(st.leaderId).catch(() => undefined);
        if (leader !== undefined && !leader.voters.includes(id)) throw invalid(`node ${id} is not a voter (voters: ${leader.voters.join(', ')}): it cannot lead`);
        await this.control(st.leaderId, { type: 'transfer-leadership', callId: 0, target: id }).catch((error: unknown) => {
          if (!(error instanceof RingraftError)) throw error;
        });
      }
      await sleep(this.options.node.tickMs * 2);
    }
    throw new RingraftError(ErrorCode.TIMEOUT, `node ${id} did not become leader in time`);
  }

  /**
   * Adds a node: starts it empty, adds it as a learner, waits until it has caught up with
   * the leader, then makes it a voter. Resolves to its id (never one used before).
   */
  addNode(options: { timeoutMs?: number } = {}): Promise<number> {
    return this.oneMembershipChange(() => this.addNodeNow(options));
  }

  /**
   * Runs membership changes one at a time: each checks the configuration it changes (a live
   * quorum left after a removal), and two at once would both check the one before either.
   */
  private oneMembershipChange<T>(change: () => Promise<T>): Promise<T> {
    const run = this.membershipQueue.then(change, change);
    this.membershipQueue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async addNodeNow(options: { timeoutMs?: number }): Promise<number> {
    this.checkOpen();
    if (this.nodeIds().length >= CLUSTER_NODES_MAX) throw invalid(`the cluster has ${CLUSTER_NODES_MAX} nodes, the most it may have`);
    const deadline = performance.now() + (options.timeoutMs ?? 30_000);
    const manifest = this.manifest;
    let id: number;
    const idNext = manifest?.nodeIdNext ?? Math.max(...this.slots.keys()) + 1;
    // Ids index the liveness words other threads read: refused before anything is recorded.
    if (idNext >= LIVENESS_IDS_MAX) throw invalid(`node ids up to ${LIVENESS_IDS_MAX - 1} are used up; a new cluster is needed for more`);
    if (manifest !== undefined) {
      // Recorded before anything of the node exists, so its id is never handed out again.
      id = manifest.nodeIdNext++;
      manifest.members.push({ id, hasRun: false });
      writeManifest(realFileSystem, this.options.dataDir!, manifest);
    } else {
      id = Math.max(...this.slots.keys()) + 1;
    }
    this.makeSlot(id);
    for (const other of this.slots.values()) {
      if (other.id === id || !other.alive) continue;
      await this.control(other.id, { type: 'add-peer', callId: 0, link: this.linkFor(other.id, id) });
    }
    await this.startNode(id, []);
    await this.changeMembership({ changes: [{ op: 'addLearner', nodeId: id }] }, deadline);
    for (;;) {
      const leader = await this.leaderStatus(deadline);
      const match = leader.matchIndex[id] ?? 0;
      if (match >= leader.commitIndex) break;
      await sleep(this.options.node.tickMs);
    }
    await this.changeMembership({ changes: [{ op: 'addVoter', nodeId: id }] }, deadline);
    return id;
  }

  /**
   * Removes node `id` from the configuration, then stops its thread. Refused with NO_QUORUM
   * when the voters left would not have a live majority (the cluster could never elect a
   * leader again). Its directory is left as it is; its id is never used again.
   */
  removeNode(id: number, options: { timeoutMs?: number } = {}): Promise<void> {
    return this.oneMembershipChange(() => this.removeNodeNow(id, options));
  }

  private async removeNodeNow(id: number, options: { timeoutMs?: number }): Promise<void> {
    this.checkOpen();
    const slot = this.slotOf(id);
    const deadline = performance.now() + (options.timeoutMs ?? 30_000);
    const before = await this.leaderStatus(deadline).catch((error: unknown) => {
      throw error instanceof RingraftError && error.code === ErrorCode.TIMEOUT ? this.noQuorum(`cannot remove node ${id}: no leader`) : error;
    });
    const remaining = before.voters.filter((v) => v !== id);
    const live = remaining.filter((v) => this.isAlive(v));
    if (before.voters.includes(id) && live.length < Math.floor(remaining.length / 2) + 1) {
      throw this.noQuorum(
        `removing node ${id} would leave voters ${remaining.join(', ')}, of which only ${live.length} ${live.length === 1 ? 'is' : 'are'} live (${live.join(', ') || 'none'}), ` +
          `fewer than the ${Math.floor(remaining.length / 2) + 1} a quorum needs: the cluster could never elect a leader; restart or replace the down nodes first`,
      );
    }
    await this.changeMembership({ changes: [{ op: 'removeNode', nodeId: id }] }, deadline);
    // A removed leader hands leadership off; wait until someone else leads.
    for (;;) {
      let leader;
      try {
        leader = await this.leaderStatus(deadline);
      } catch (error) {
        if (!(error instanceof RingraftError && error.code === ErrorCode.TIMEOUT)) throw error;
        throw new RingraftError(ErrorCode.TIMEOUT, `node ${id} was removed from the configuration, but no leader was elected after it in time`, { cause: error });
      }
      if (leader.id !== id && !leader.voters.includes(id) && !leader.learners.includes(id)) break;
      await sleep(this.options.node.tickMs);
    }
    slot.removed = true;
    this.cancelRecovery(slot);
    if (slot.alive) {
      const exited = slot.exited;
      this.markDown(slot, undefined);
      await slot.worker?.terminate();
      await exited;
    }
    this.freeRings(id);
    const manifest = this.manifest;
    // After close() the directory is no longer ours to write (its lock is released).
    if (manifest !== undefined && !this.closed) {
      manifest.members = manifest.members.filter((m) => m.id !== id);
      writeManifest(realFileSystem, this.options.dataDir!, manifest);
    }
  }

  /**
   * Brings back the service of a node that cannot come back itself (its state is lost, its
   * log is damaged, its disk is gone): removes node `id` from the configuration and adds a
   * new, empty node in its place, which catches up from the others (by snapshot if the log
   * has been compacted). Resolves to the new node's id. Node `id`'s directory is left as it
   * is, for inspection; its id is never used again.
   */
  async replaceNode(id: number, options: { timeoutMs?: number } = {}): Promise<number> {
    const deadline = performance.now() + (options.timeoutMs ?? 60_000);
    return this.oneMembershipChange(async () => {
      await this.removeNodeNow(id, { timeoutMs: deadline - performance.now() });
      return this.addNodeNow({ timeoutMs: Math.max(1, deadline - performance.now()) });
    });
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

  /** Stops every node (each closes its log), fails what is still in flight with CLOSED, and unlocks the data directory. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const slot of this.slots.values()) this.cancelRecovery(slot);
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
    this.lock?.release();
  }

  /**
   * Lets the process exit while the cluster is open, like a server's `unref()`: its threads
   * no longer hold the event loop. A process that ends without {@link close} simply stops
   * its nodes where they are (every acknowledged write is already durable with
   * `fsync: 'always'`), and the data directory's lock is broken by the next opener.
   * Without `unref()` (the default) an open cluster keeps the process running until `close()`.
   */
  unref(): void {
    this.unrefed = true;
    for (const slot of this.slots.values()) slot.worker?.unref();
  }

  /** Undoes {@link unref}: an open cluster keeps the process running again. */
  ref(): void {
    this.unrefed = false;
    for (const slot of this.slots.values()) slot.worker?.ref();
  }

  // ─── Nodes and client ids ───────────────────────────────────────────────────────

  isAlive(id: number): boolean {
    const s = this.slots.get(id);
    return s !== undefined && s.alive && !s.removed;
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
      recovery: undefined,
      recoveryDelayMs: RECOVERY_DELAY_MS_MIN / 2,
      startedAt: undefined,
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

  private settingsFor(id: number): WorkerSettings {
    return { raft: this.options.raft, node: this.options.node, dataDir: this.nodeDir(id) };
  }


  /**
   * Starts node `id`'s thread. The node opens its storage, says 'started' and waits:
   * `beforeRun` runs (a failure of it is the node's) and then the node is told to run, or to
   * close if the cluster closed meanwhile.
   */
  private startWorker(id: number, voters: readonly number[], beforeRun: () => void): Promise<void> {
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
    if (this.unrefed) worker.unref();
    slot.worker = worker;
    slot.port = port1;
    slot.exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    return new Promise<void>((resolve, reject) => {
      let started = false;
      worker.on('message', (msg: ControlReply) => {
        if (msg.type === 'started') {
          started = true;
          if (this.closed) {
            this.sendControl(slot, { type: 'close', callId: 0 });
            reject(new RingraftError(ErrorCode.CLOSED, 'the cluster is closed'));
            return;
          }
          try {
            beforeRun();
          } catch (error) {
            const failure = nodeFailure(id, error);
            this.sendControl(slot, { type: 'close', callId: 0 });
            slot.failure = failure;
            reject(failure);
            return;
          }
          this.sendControl(slot, { type: 'run', callId: 0 });
          slot.alive = true;
          // Up again: what it last died of is history (a failed start keeps it for status()).
          slot.failure = undefined;
          slot.startedAt = performance.now();
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
        const failure = nodeFailure(id, error);
        if (slot.worker === worker) this.markDown(slot, failure);
        if (!started) reject(failure);
        else if (slot.worker === worker) this.scheduleRecovery(slot);
      });
      worker.once('exit', (code) => {
        if (!started) {
          const failure = new RingraftError(ErrorCode.NODE_DOWN, `node ${id} exited with code ${code} before it started`);
          if (slot.worker === worker && slot.failure === undefined) slot.failure = failure;
          reject(failure);
        }
        if (slot.worker === worker && slot.alive) this.markDown(slot, undefined);
      });
    });
  }

  /** Marks a node down and fails what waits on it, so callers retry elsewhere at once. */
  private markDown(slot: NodeSlot, failure: RingraftError | undefined): void {
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
          else if (reply.type === 'error') reject(new RingraftError(checkedCode(reply.code), reply.message));
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
      await sleep(this.options.node.tickMs);
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
          await sleep(this.options.node.tickMs);
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
        await sleep(this.options.node.tickMs);
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

  // ─── Failures ───────────────────────────────────────────────────────────────────

  /**
   * A node that died of a storage failure that may pass (a full disk, a failed write) is
   * restarted by itself, with back-off, until it runs again, it is crashed, removed or the
   * cluster closes: freeing space is all a user has to do. Its reason stays in status()
   * meanwhile. Damage (CORRUPT_LOG), a lost state and a foreign directory do not pass.
   */
  private scheduleRecovery(slot: NodeSlot): void {
    if (this.closed || slot.removed || this.options.dataDir === undefined) return;
    if (slot.failure === undefined || !isTransientFailure(slot.failure)) return;
    if (slot.recovery !== undefined) clearTimeout(slot.recovery.timer);
    // The delay doubles with every failed try, and starts over once the node has stayed up.
    const upLongEnough = slot.startedAt !== undefined && performance.now() - slot.startedAt > 2 * RECOVERY_DELAY_MS_MAX;
    const delayMs = upLongEnough ? RECOVERY_DELAY_MS_MIN : Math.min(RECOVERY_DELAY_MS_MAX, slot.recoveryDelayMs * 2);
    slot.recoveryDelayMs = delayMs;
    const timer = setTimeout(() => {
      if (slot.recovery?.timer !== timer) return;
      slot.recovery = undefined;
      // A try that fails, before or after its thread starts, schedules the next one.
      this.restartNode(slot).catch(() => this.scheduleRecovery(slot));
    }, delayMs);
    // Recovery alone never keeps the process running.
    timer.unref();
    slot.recovery = { timer };
  }

  private cancelRecovery(slot: NodeSlot): void {
    if (slot.recovery !== undefined) clearTimeout(slot.recovery.timer);
    slot.recovery = undefined;
    slot.recoveryDelayMs = RECOVERY_DELAY_MS_MIN / 2;
  }

  /** ": <reason>" for a node down by no one's choice, else "". */
  private downReason(id: number): string {
    const failure = this.slots.get(id)?.failure;
    return failure === undefined ? '' : ` (${failure.code}: ${failure.message})`;
  }

  /** "node 2 down (NO_SPACE: ...), ..." for the nodes down by no one's choice; '' if none. */
  private downReasons(): string {
    const failed = this.nodeIds().filter((id) => !this.isAlive(id) && this.slots.get(id)?.failure !== undefined);
    return failed.map((id) => `node ${id} down${this.downReason(id)}`).join(', ');
  }

  /** A NO_QUORUM error that says which nodes are down and why. */
  private noQuorum(what: string): RingraftError {
    const down = this.nodeIds().filter((id) => !this.isAlive(id));
    const detail = down.length === 0 ? '' : `; down: ${down.map((id) => `node ${id}${this.downReason(id)}`).join(', ')}`;
    return new RingraftError(ErrorCode.NO_QUORUM, `${what}${detail}`);
  }

  private nodeDir(id: number): string | undefined {
    return this.options.dataDir === undefined ? undefined : join(this.options.dataDir, `node-${id}`);
  }

  // ─── Helpers ────────────────────────────────────────────────────────────────────

  private nextSeed(): number {
    this.seedNext = (Math.imul(this.seedNext ^ (this.seedNext >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    return this.seedNext;
  }

  private slotOf(id: number): NodeSlot {
    if (!(typeof id === 'number' && Number.isSafeInteger(id) && id >= 1)) throw invalid(`a node id is a positive integer, got ${describe(id)}`);
    const slot = this.slots.get(id);
    if (slot === undefined || slot.removed) throw invalid(`no node ${id} in the cluster`);
    return slot;
  }

  private checkOpen(): void {
    if (this.closed) throw new RingraftError(ErrorCode.CLOSED, 'the cluster is closed');
  }

}

/** Milliseconds before the first restart of a node that died of a passing storage failure; doubled each time, up to the max. */
const RECOVERY_DELAY_MS_MIN = 250;
const RECOVERY_DELAY_MS_MAX = 10_000;

/**
 * The cluster's record in `dir`, read or made. A new record is made only for a directory
 * with no node logs in it. `nodesGiven` (the caller's `nodes` option, if any) must agree with
 * the recorded membership: a count that disagrees would start nodes that bootstrap a
 * configuration of their own (two clusters in one), or leave members out.
 */
function openManifest(dir: string, nodesGiven: number | undefined, nodesDefault: number): ClusterManifest {
  const existing = readManifest(realFileSystem, dir);
  if (existing !== undefined) {
    const ids = existing.members.map((m) => m.id);
    if (nodesGiven !== undefined && nodesGiven !== ids.length) {
      throw new RingraftError(
        ErrorCode.CONFIG_MISMATCH,
        `${dir} holds a cluster of ${ids.length} node${ids.length === 1 ? '' : 's'} (${ids.join(', ')}), and nodes: ${nodesGiven} disagrees; ` +
          'change membership with addNode() and removeNode(), or omit nodes to open the cluster as it is',
      );
    }
    return existing;
  }
  const logs = readdirSync(dir).filter((name) => /^node-\d+$/.test(name) && nodeDirectoryHasLog(realFileSystem, join(dir, name)));
  if (logs.length > 0) {
    throw new RingraftError(
      ErrorCode.CONFIG_MISMATCH,
      `${dir} holds node logs (${logs.join(', ')}) but no ${MANIFEST_FILE} record, so their membership is unknown; refusing to guess (restore the record, or open an empty directory)`,
    );
  }
  const created = newManifest(nodesDefault);
  writeManifest(realFileSystem, dir, created);
  return created;
}

/** Creates `dir` (and its parents) if need be, with a typed error saying why it cannot be. */
function makeDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error(`${dir} is a file`), { code: 'ENOTDIR' });
  } catch (error) {
    let cause = error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      // A recursive mkdir under a read-only mount says ENOENT: ask the nearest existing
      // ancestor why nothing can be made below it.
      let ancestor = dirname(resolve(dir));
      while (!existsSync(ancestor) && ancestor !== dirname(ancestor)) ancestor = dirname(ancestor);
      try {
        accessSync(ancestor, constants.W_OK);
      } catch (why) {
        cause = why;
      }
    }
    throw storageSetupError(dir, 'creating it', cause);
  }
}

/** A value for an error message: its type and value. */
function describe(value: unknown): string {
  return typeof value === 'string' ? `string '${value}'` : Array.isArray(value) ? `[${value.map(describe).join(', ')}]` : `${typeof value} ${String(value)}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts a cluster of Raft nodes on worker threads (see {@link ClusterOptions}). */
export function createCluster(options: ClusterOptions = {}): Promise<Cluster> {
  return Cluster.start(options);
}

/** A code that crossed from a node's thread, checked against the one list (never cast). */
function checkedCode(code: string): ErrorCode {
  const checked = parseErrorCode(code);
  if (checked === undefined) fail(`a node answered with the unknown error code ${JSON.stringify(code)}`);
  return checked;
}
