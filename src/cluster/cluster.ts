/**
 * The embedding API: {@link createCluster} starts the Raft nodes on worker threads (one each,
 * or several to a thread when the cores are fewer: `nodeThreads`), wires every directed pair
 * of nodes and every client thread with each node by a ring, and hands out key-value clients.
 *
 * The main thread must never block, so its side of the rings works like this: requests are
 * encoded straight into the request ring of their node and published once per turn of the
 * event loop (a burst of calls costs one wake-up of the node); replies are drained by a
 * pump that runs while anything is in flight and sleeps with `Atomics.waitAsync` on the
 * main doorbell, which every node rings after publishing a reply.
 *
 * Fault controls (`crash`, `restart`, `partition`, `heal`) act on the real threads: a crash
 * terminates the node's worker at once when the node has it to itself, and has the thread
 * drop the node between two turns when it shares it (node-workers.ts); a partition makes the
 * nodes drop Raft messages across it.
 *
 * `Cluster` is the facade; each job behind it has a file of its own:
 *
 * - node-workers.ts: the nodes' threads: start, handshake, restart with back-off, exits;
 * - ring-wiring.ts: the rings between nodes and to client threads, doorbells, liveness;
 * - control-channel.ts: control calls to a node's thread, with their timeouts;
 * - membership.ts: adding, removing and replacing nodes, one change at a time;
 * - data-directory.ts: the data directory, its lock and its `CLUSTER` record.
 *
 * Nodes' comings and goings are published on `ringraft:node`, and their Raft decisions on
 * `ringraft:raft`, on this thread (runtime/diagnostics.ts).
 */

import { performance } from 'node:perf_hooks';
import { ErrorCode, invalidArgument, RingraftError } from '../base/index.ts';
import { importFactory, type NodeStatus } from '../runtime/index.ts';
import { realFileSystem, type FileSystem } from '../storage/index.ts';
import { KvClient } from './client.ts';
import { ControlChannel } from './control-channel.ts';
import { DataDirectory } from './data-directory.ts';
import { ClientEndpoint, type EndpointLink } from './endpoint.ts';
import { Membership, sleep } from './membership.ts';
import { nodeFailure } from './node-failure.ts';
import { describe, NodeWorkers } from './node-workers.ts';
import { electionTimeoutMs, resolveOptions, type ClusterOptions, type ResolvedOptions } from './options.ts';
import { RingWiring } from './ring-wiring.ts';

/** One node as {@link Cluster.status} found it. */
export interface ClusterNodeStatus {
  /** The node's id. */
  readonly id: number;
  /** Its Raft role, or `down` when it is down or did not answer. */
  readonly role: NodeStatus['role'] | 'down';
  /** Its current term; 0 when down. */
  readonly term: number;
  /** The highest log index it knows committed; 0 when down. */
  readonly commitIndex: number;
  /** The highest log index it has applied; 0 when down. */
  readonly appliedIndex: number;
  /** The last index of its log; 0 when down. */
  readonly lastIndex: number;
  /** Whether it answered: false exactly when `role` is `down`. */
  readonly alive: boolean;
  /**
   * The kernel's id of the thread that runs the node (on Linux, its CPU time is in
   * /proc/<pid>/task/<osThreadId>/schedstat); undefined for a node that is down, or where it
   * is unknown. A restarted node runs on a new thread if it had its thread to itself, else on
   * the thread it shares, still running.
   */
  readonly osThreadId?: number;
  /**
   * Whether the cluster's own state machine on this node is restoring a snapshot async (the
   * node takes no message and no request meanwhile). Undefined for a node that is down.
   */
  readonly restoring?: boolean;
  /** Snapshots that state machine failed to give (the log stays uncompacted). Undefined for a node that is down. */
  readonly snapshotsFailed?: number;
  /**
   * Raft messages it took as they were sent from nodes of its own thread, with no ring and no
   * encoding (nodes that share a thread: `nodeThreads`). Undefined for a node that is down.
   */
  readonly peerMessagesDirect?: number;
  /** Why the last of those failed, while none has been taken since; absent otherwise. */
  readonly snapshotFailure?: string;
  /** For a node that is down by no one's choice (a storage error, a damaged or lost log): why. */
  readonly error?: string;
  /** The code of {@link error}: CORRUPT_LOG, NO_SPACE, IO_ERROR, STATE_LOST, CONFIG_MISMATCH, ... */
  readonly errorCode?: ErrorCode;
}

/** The cluster as {@link Cluster.status} found it, node by node. */
export interface ClusterStatus {
  /** The leader with the highest term among the nodes that answered; undefined if none. */
  readonly leaderId: number | undefined;
  /** The highest term any node reported (0 if none answered). */
  readonly term: number;
  /** Every node of the cluster (removed ones apart), in the order of {@link Cluster.nodeIds}. */
  readonly nodes: readonly ClusterNodeStatus[];
}

/**
 * What a client thread needs to talk to the cluster: rings to each node (made for it by
 * {@link Cluster.connectEndpoint}), its doorbell, the nodes' liveness
 * and the timeouts. Everything in it can be posted to another thread.
 */
export interface EndpointDescriptor {
  /** The rings between the client thread and each node, one link per node. */
  readonly links: readonly EndpointLink[];
  /** The client thread's doorbell, which the nodes ring after publishing replies to it. */
  readonly doorbell: SharedArrayBuffer;
  /** Int32 per node id: 0 absent, 1 alive, 2 down. */
  readonly liveness: SharedArrayBuffer;
  /** The default timeout of a call, in ms: the cluster's `client.requestTimeoutMs`. */
  readonly requestTimeoutMs: number;
  /** The cluster's election timeout in ms (its lower end): `node.tickMs` × `raft.electionTimeoutTicks`. */
  readonly electionTimeoutMs: number;
  /** Requests the client thread may have in flight at once: the cluster's `client.requestsInFlightMax`. */
  readonly requestsInFlightMax: number;
}

/**
 * What a test may put under a cluster beyond its options: not options, because they are not
 * settings a user or a configuration file gives.
 */
export interface ClusterSeams {
  /**
   * The file system of the main thread's files in the data directory (the `CLUSTER` record,
   * node directories and their `IDENTITY`): a `FaultyFileSystem` injects faults there.
   * Default: the real one. The nodes' logs are opened in their own threads, with the real
   * file system, and the lock does without it (see data-directory.ts).
   */
  readonly fileSystem?: FileSystem;
}

/**
 * A cluster of Raft nodes on this process's worker threads, made by {@link createCluster}:
 * key-value clients, status, fault controls (crash, restart, partition) and membership changes.
 */
export class Cluster {
  /** The options it was started with, checked and with every default filled in (`nodes`: the members at start). */
  readonly options: ResolvedOptions;
  /** This thread's client side. */
  private readonly endpoint: ClientEndpoint;
  private readonly wiring: RingWiring;
  private readonly control: ControlChannel;
  private readonly workers: NodeWorkers;
  private readonly membership: Membership;
  /** The peers each node drops Raft messages from: the partition in force. */
  private cuts = new Map<number, readonly number[]>();
  private closed = false;

  private constructor(
    options: ResolvedOptions,
    /** The data directory (with a dataDir): its lock and record. */
    private readonly dataDir: DataDirectory | undefined,
  ) {
    this.options = options;
    this.endpoint = new ClientEndpoint(
      {
        requestTimeoutMs: options.client.requestTimeoutMs,
        electionTimeoutMs: electionTimeoutMs(options),
        requestsInFlightMax: options.client.requestsInFlightMax,
      },
      { nodeIds: () => this.nodeIds(), isAlive: (id) => this.isAlive(id), downReasons: () => this.workers.downReasons() },
    );
    this.wiring = new RingWiring(options.ringBytes, this.endpoint);
    this.control = new ControlChannel((id) => this.workers.slotOf(id));
    const isClosed = (): boolean => this.closed;
    this.workers = new NodeWorkers({
      options,
      wiring: this.wiring,
      control: this.control,
      endpoint: this.endpoint,
      dataDir,
      isClosed,
      cutOf: (id) => this.cuts.get(id) ?? [],
    });
    this.membership = new Membership({
      options,
      workers: this.workers,
      wiring: this.wiring,
      control: this.control,
      dataDir,
      isClosed,
      checkOpen: () => this.checkOpen(),
    });
  }

  /**
   * Starts the cluster. With a dataDir: locks it, reads or creates its record, checks every
   * node's directory, and starts every node that may start; resolves once a quorum of them
   * runs (a node that cannot start is down, with its reason in {@link status}), and rejects
   * with NO_QUORUM, naming each node's reason, when fewer can. `seams` are for tests.
   */
  static async start(options: ClusterOptions = {}, seams: ClusterSeams = {}): Promise<Cluster> {
    const resolved = resolveOptions(options);
    // The module loads here first, so one that cannot fails the start with an error naming it.
    if (resolved.stateMachine !== undefined) await importFactory(resolved.stateMachine.module);
    const dataDir = resolved.dataDir === undefined ? undefined : DataDirectory.open(resolved.dataDir, options.nodes, resolved.nodes, seams.fileSystem ?? realFileSystem);
    const ids = dataDir?.memberIds() ?? Array.from({ length: resolved.nodes }, (_, i) => i + 1);
    const cluster = new Cluster({ ...resolved, nodes: ids.length }, dataDir);
    const workers = cluster.workers;
    for (const id of ids) workers.makeSlot(id);
    const results = await Promise.allSettled(ids.map((id) => workers.startNode(id, ids)));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ id: ids[i]!, error: workers.slots.get(ids[i]!)!.failure ?? nodeFailure(ids[i]!, r.reason) }] : []));
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
    for (const f of failed) workers.scheduleRecovery(workers.slots.get(f.id)!);
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
    const thread = this.wiring.addClientThread(this.nodeIds());
    await Promise.all(
      this.nodeIds()
        .filter((id) => this.isAlive(id))
        .map((id) => this.control.call(id, { type: 'add-client', callId: 0, link: this.wiring.clientLinkOf(thread.index, id) })),
    );
    return {
      links: thread.links,
      doorbell: thread.doorbell,
      liveness: this.wiring.livenessBuffer,
      requestTimeoutMs: this.options.client.requestTimeoutMs,
      electionTimeoutMs: electionTimeoutMs(this.options),
      requestsInFlightMax: this.options.client.requestsInFlightMax,
    };
  }

  /** Node ids of the cluster (alive or not, not removed). */
  nodeIds(): number[] {
    return this.workers.nodeIds();
  }

  /** Whether node `id` runs now: false for a node that is down, removed, or not of the cluster. */
  isAlive(id: number): boolean {
    return this.workers.isAlive(id);
  }

  /**
   * Asks every node for its state; a node that is down, or does not answer, is reported
   * `down` (with its error, if it went down by no one's choice). CLOSED once closed.
   */
  async status(): Promise<ClusterStatus> {
    this.checkOpen();
    const nodes = await Promise.all(
      this.nodeIds().map(async (id): Promise<ClusterNodeStatus> => {
        const s = await this.control.status(id).catch(() => undefined);
        if (s === undefined) {
          const failure = this.workers.slots.get(id)?.failure;
          const down: ClusterNodeStatus = { id, role: 'down', term: 0, commitIndex: 0, appliedIndex: 0, lastIndex: 0, alive: false };
          return failure === undefined ? down : { ...down, error: failure.message, errorCode: failure.code };
        }
        const osThreadId = this.workers.slots.get(id)?.osThreadId;
        const up: ClusterNodeStatus = {
          id,
          role: s.role,
          term: s.term,
          commitIndex: s.commitIndex,
          appliedIndex: s.appliedIndex,
          lastIndex: s.lastIndex,
          alive: true,
          restoring: s.restoring,
          snapshotsFailed: s.snapshotsFailed,
          peerMessagesDirect: s.peerMessagesDirect,
          ...(s.snapshotFailure === undefined ? {} : { snapshotFailure: s.snapshotFailure }),
        };
        return osThreadId === undefined ? up : { ...up, osThreadId };
      }),
    );
    let leader: ClusterNodeStatus | undefined;
    for (const n of nodes) if (n.role === 'leader' && (leader === undefined || n.term > leader.term)) leader = n;
    const term = Math.max(0, ...nodes.map((n) => n.term));
    if (leader !== undefined) this.endpoint.leaderGuess = leader.id;
    return { leaderId: leader?.id, term, nodes };
  }

  /**
   * Crashes node `id` at once: its thread is terminated if the node has it to itself, else the
   * thread drops the node between two turns, its files closed and nothing more written. Either
   * way what it had not synced is not written later.
   */
  async crash(id: number): Promise<void> {
    this.checkOpen();
    const slot = this.workers.slotOf(id);
    this.workers.cancelRecovery(slot);
    await slot.starting?.catch(() => {});
    await this.workers.terminate(slot);
  }

  /**
   * Starts node `id` again from its data directory (a node with logs in memory cannot
   * restart). Its directory is checked first: a node whose state is lost (STATE_LOST) or
   * whose directory is not its own (CONFIG_MISMATCH) is refused, and stays down.
   */
  async restart(id: number): Promise<void> {
    this.checkOpen();
    const slot = this.workers.slotOf(id);
    if (this.options.dataDir === undefined) {
      throw invalidArgument(`node ${id} cannot restart: its log was in memory, and a node that forgot its log and votes would break Raft's safety; use a dataDir`);
    }
    this.workers.cancelRecovery(slot);
    return this.workers.restartNode(slot, false);
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
      if (!Array.isArray(group) || group.length === 0) throw invalidArgument(`partition group ${i + 1} must be a non-empty array of node ids, got ${describe(group)}`);
      for (const id of group) {
        this.workers.slotOf(id);
        if (named.has(id)) throw invalidArgument(`node ${id} is named in two partition groups`);
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
    this.workers.slotOf(id);
    const downReason = (): string => this.workers.downReason(id);
    if (!this.isAlive(id)) throw new RingraftError(ErrorCode.NODE_DOWN, `node ${id} is down: it cannot become leader${downReason()}`);
    const deadline = performance.now() + (options.timeoutMs ?? electionTimeoutMs(this.options) * 10);
    while (performance.now() < deadline) {
      const st = await this.status();
      if (st.leaderId === id) return;
      if (!this.isAlive(id)) throw new RingraftError(ErrorCode.NODE_DOWN, `node ${id} went down before it became leader${downReason()}`);
      if (st.leaderId !== undefined) {
        const leader = await this.control.status(st.leaderId).catch(() => undefined);
        if (leader !== undefined && !leader.voters.includes(id)) throw invalidArgument(`node ${id} is not a voter (voters: ${leader.voters.join(', ')}): it cannot lead`);
        await this.control.call(st.leaderId, { type: 'transfer-leadership', callId: 0, target: id }).catch((error: unknown) => {
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
    return this.membership.add(options);
  }

  /**
   * Removes node `id` from the configuration, then stops its thread. Refused with NO_QUORUM
   * when the voters left would not have a live majority (the cluster could never elect a
   * leader again). Its directory is left as it is; its id is never used again.
   */
  removeNode(id: number, options: { timeoutMs?: number } = {}): Promise<void> {
    return this.membership.remove(id, options);
  }

  /**
   * Brings back the service of a node that cannot come back itself (its state is lost, its
   * log is damaged, its disk is gone): removes node `id` from the configuration and adds a
   * new, empty node in its place, which catches up from the others (by snapshot if the log
   * has been compacted). Resolves to the new node's id. Node `id`'s directory is left as it
   * is, for inspection; its id is never used again.
   */
  async replaceNode(id: number, options: { timeoutMs?: number } = {}): Promise<number> {
    return this.membership.replace(id, options);
  }

  /** Stops every node (each closes its log), fails what is still in flight with CLOSED, and unlocks the data directory. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.workers.closeAll();
    this.endpoint.close();
    this.dataDir?.release();
  }

  /**
   * Lets the process exit while the cluster is open, like a server's `unref()`: its threads
   * no longer hold the event loop. A process that ends without {@link close} simply stops
   * its nodes where they are (every acknowledged write is already durable with
   * `fsync: 'always'`), and the data directory's lock is broken by the next opener.
   * Without `unref()` (the default) an open cluster keeps the process running until `close()`.
   */
  unref(): void {
    this.workers.setRef(false);
  }

  /** Undoes {@link unref}: an open cluster keeps the process running again. */
  ref(): void {
    this.workers.setRef(true);
  }

  private async broadcastCuts(): Promise<void> {
    await Promise.all(
      this.nodeIds()
        .filter((id) => this.isAlive(id))
        .map((id) => this.control.call(id, { type: 'partition', callId: 0, cut: this.cuts.get(id) ?? [] })),
    );
  }

  private checkOpen(): void {
    if (this.closed) throw new RingraftError(ErrorCode.CLOSED, 'the cluster is closed');
  }
}

/** Starts a cluster of Raft nodes on worker threads (see {@link ClusterOptions}). */
export function createCluster(options: ClusterOptions = {}): Promise<Cluster> {
  return Cluster.start(options);
}
