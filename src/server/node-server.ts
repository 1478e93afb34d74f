/**
 * One ringraft node as its own process: what `ringraft serve` and `createNode` run.
 *
 * ```
 *  main thread: sockets, never blocks                     node thread (runtime/node-worker.ts)
 *  +--------------------------------------------+         +-------------------------------------+
 *  | TcpTransport  --onMessage--> peer ring  ---|-- SAB ->| NodeHost: Raft, WAL writev+fdatasync |
 *  |   (per peer, lanes)   <-- send <-- peer ring <-SAB --|   the state machine, reads, watches |
 *  | ClientPortServer --onRequest--> request ring -SAB ->|                                     |
 *  |   (connections)  <-- reply <-- reply ring <--SAB --|                                     |
 *  | pump: Atomics.waitAsync on the main doorbell |         | Atomics.wait on its own doorbell    |
 *  +--------------------------------------------+         +-------------------------------------+
 * ```
 *
 * **Why two threads.** The node's thread is the very worker a `createCluster` node runs on,
 * unchanged: its loop blocks in `Atomics.wait`, and its WAL writes with one `writev` and one
 * `fdatasync` per Ready, synchronously. Here its peers and its one client link are rings whose
 * far end is this main thread, which owns every socket. So an `fdatasync` (0.2 ms to tens of
 * milliseconds, and far longer on a loaded disk) stalls no socket: heartbeats, votes and
 * client replies keep moving while the node syncs, and the leader's early appends (sent
 * before its own sync) leave at once. docs/design.md records the measurement.
 *
 * **Peers.** Each Raft message the node writes to a peer ring goes to
 * `TcpTransport.send(peer, bytes, lane)`, its lane chosen by its type (runtime/peer-lanes.ts);
 * each message the transport receives is copied into that peer's ring to the node (only
 * queued, in a bounded queue, while the ring is full; beyond it, dropped as network loss). The
 * node checks every message it decodes: one that does not decode, or that claims to come from
 * another node than its connection's, is dropped and counted, never the node's death.
 *
 * **Clients** (client-bridge.ts). Every client connection shares the node's one client link;
 * request ids are remapped per connection, requests are bounded in bytes while they wait for
 * the node's ring, and a follower forwards writes, linearizable and lease reads to its leader
 * over the peer transport, so a client connected to any node is served.
 *
 * **Shutting down** (`shutdown`, on SIGTERM or SIGINT): a leader hands leadership to its most
 * up-to-date voter and waits (up to two election timeouts) to be a follower; new requests are
 * answered NODE_DOWN (the client goes elsewhere); the requests in flight are given
 * {@link DRAIN_TIMEOUT_MS} to finish; then the node closes its WAL and its thread exits, and
 * the listeners and connections close.
 *
 * **The data directory** holds the node's `LOCK`, its `IDENTITY` (storage/node-identity.ts,
 * with the cluster id from the token), a `STARTED` record written once the node has first
 * opened its log (from then on a directory without a log is STATE_LOST, never a new node) and
 * the WAL. A node bootstraps the cluster's first configuration, every node of
 * `initialCluster` a voter, only if its directory holds no log and it was not started with
 * `join`.
 */
import { performance } from 'node:perf_hooks';
import { Worker, MessageChannel, type MessagePort } from 'node:worker_threads';
import { join } from 'node:path';
import { ErrorCode, RingraftError } from '../base/index.ts';
import { CLIENT_SETTINGS, ControlChannel, DataDirLock, KvClient, type ControlTarget } from '../cluster/index.ts';
import { formatTraceEvent, type ConfChange, type MessageType } from '../core/index.ts';
import {
  importFactory,
  NODE_WORKER_URL,
  Outbox,
  peerLaneOf,
  publishForwarded,
  REQUEST_HEADER_BYTES,
  WRITE_REQUEST_BYTES_MAX,
  type ControlReply,
  type ForwardedDiagnostic,
  type NodeStatus,
  type NodeWorkerData,
} from '../runtime/index.ts';
import { checkNodeDirectory, readCheckedRecord, realFileSystem, writeCheckedRecord } from '../storage/index.ts';
import {
  ClientPortServer,
  createRing,
  Doorbell,
  RingConsumer,
  ringFrameBytesMax,
  RingProducer,
  TcpTransport,
  type ClientPortLogEntry,
  type TcpLane,
  type TcpLogEntry,
} from '../transport/index.ts';
import { PEER_MESSAGE_HEADROOM_BYTES, type LogLevel, type ServeConfig } from './config.ts';
import { formatHostPort, type HostPort } from './host-port.ts';
import type { Logger } from './log.ts';
import { runAdmin, type AdminTarget } from './admin.ts';
import { ClientBridge } from './client-bridge.ts';
import { RespPort } from './resp-port.ts';
import { LocalEndpoint } from './local-endpoint.ts';
import { bytesCodec, keepCopy } from './frames.ts';
import { decodeMemberTable, encodeMemberTable, MEMBER_TABLE, PeerTable, type MemberUpdate } from './members.ts';
import { MetricsServer, type MetricsSnapshot, type MetricsSource } from './metrics.ts';

/** Time the requests in flight are given to finish when the node shuts down. */
export const DRAIN_TIMEOUT_MS = 5_000;
/** Time the node's thread is given to close its WAL and exit before it is terminated. */
const WORKER_EXIT_TIMEOUT_MS = 10_000;
/** Frames taken from one ring per pump turn, so that sockets get their turn. */
const FRAMES_PER_TURN_MAX = 1024;
/** Milliseconds the pump sleeps at most between looks at the rings. */
const PUMP_IDLE_MS = 50;
/** The smallest ring: large enough that bursts of small frames never wait. */
const RING_BYTES_MIN = 8 << 20;
/** Messages from one peer queued while its ring to the node is full, and their bytes. */
const PEER_QUEUE_MESSAGES_MAX = 65_536;
const PEER_QUEUE_BYTES_MAX = 64 << 20;
const STARTED_FILE = 'STARTED';
const STARTED_FORMAT = 1;

interface PeerRings {
  /** Messages from the peer, to the node. */
  readonly toNode: Outbox<Uint8Array>;
  /** Messages from the node, to the peer. */
  readonly fromNode: RingConsumer;
}

export interface NodeServerStats {
  /** Messages from peers dropped because the node's ring and its queue were full, or too large for the ring. */
  readonly peerMessagesDropped: number;
  /** Client requests answered UNAVAILABLE because the requests waiting for the node passed their bound. */
  readonly requestsShed: number;
  readonly clientConnections: number;
  readonly requestsInFlight: number;
  /** Leaders this node has seen take over since it started. */
  readonly leaderChanges: number;
  /** Client requests this node forwarded to its leader. */
  readonly requestsForwarded: number;
  /** Error replies sent to clients, by code. */
  readonly errorReplies: Readonly<Record<string, number>>;
}

export class NodeServer implements AdminTarget, MetricsSource {
  readonly config: ServeConfig;
  private readonly log: Logger;
  private readonly bell = Doorbell.create();
  private readonly nodeBell = Doorbell.create();
  private readonly peers = new Map<number, PeerRings>();
  private readonly requests: Outbox<Uint8Array>;
  private readonly clients: ClientBridge;
  private readonly controlWordBuffer = new SharedArrayBuffer(4);
  private readonly control: ControlChannel;
  private readonly target: ControlTarget & { alive: boolean; port: MessagePort | undefined };
  private worker: Worker | undefined;
  private workerExited: Promise<void> = Promise.resolve();
  private transport: TcpTransport | undefined;
  private clientPort: ClientPortServer | undefined;
  /** The RESP port, and the in-process endpoint of the client bridge its commands go through. */
  private resp: { port: RespPort | undefined; endpoint: LocalEndpoint } | undefined;
  private pumping = false;
  private flushQueued = false;
  private readonly flushTask = (): void => {
    this.flushQueued = false;
    this.flushToNode();
  };
  private draining = false;
  private closed = false;
  private shutdownPromise: Promise<void> | undefined;
  private peerMessagesDropped = 0;
  private leaderChanges = 0;
  private lastLeader = 0;
  private metrics: MetricsServer | undefined;
  /** Peer lanes whose last dial failed and was logged (see logTransport). */
  private readonly peersFailing = new Set<string>();
  private readonly peerRingFrameMax: number;
  /** Resolves when the node's thread stops, whatever the reason: `ringraft serve` exits then. */
  readonly stopped: Promise<RingraftError | undefined>;
  private resolveStopped!: (error: RingraftError | undefined) => void;

  private readonly clientRings: { readonly requestRing: SharedArrayBuffer; readonly replyRing: SharedArrayBuffer };
  private readonly peerRingBytes: number;
  /** Every member's peer address, this node's own included, kept in the data directory. */
  readonly members: PeerTable;
  /** The rings with each peer, in the node's shape (its PeerLink). */
  private readonly peerLinks: { readonly id: number; readonly inRing: SharedArrayBuffer; readonly outRing: SharedArrayBuffer; readonly peerDoorbell: SharedArrayBuffer }[] = [];

  private constructor(
    config: ServeConfig,
    log: Logger,
    private readonly lock: DataDirLock,
  ) {
    this.config = config;
    this.log = log;
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
    // The largest message the node sends or takes: an append or a snapshot chunk (an append
    // carries at least one entry, at most the largest write), with its framing.
    const r = config.raft;
    this.peerRingBytes = ringBytesFor(Math.max(r.appendBytesMax, r.snapshotChunkBytes, WRITE_REQUEST_BYTES_MAX) + PEER_MESSAGE_HEADROOM_BYTES);
    this.peerRingFrameMax = ringFrameBytesMax(this.peerRingBytes);
    // The members: those of --initial-cluster, as changed since by membership changes (PEERS).
    this.members = new PeerTable(config.dataDir, config.initialCluster);
    for (const id of this.members.ids()) if (id !== config.id) this.addPeerRings(id);
    // A request holds at most the largest write; a reply at most the largest value.
    const clientRingBytes = ringBytesFor(REQUEST_HEADER_BYTES + WRITE_REQUEST_BYTES_MAX);
    const requestRing = createRing(clientRingBytes);
    const replyRing = createRing(clientRingBytes);
    this.clientRings = { requestRing, replyRing };
    this.requests = new Outbox(new RingProducer(requestRing, { doorbell: this.nodeBell }), bytesCodec, Number.POSITIVE_INFINITY);
    this.clients = new ClientBridge(
      {
        nodeId: config.id,
        log,
        isDraining: () => this.draining,
        queuedToNodeBytes: () => this.requests.queuedBytes,
        toNode: (frame) => this.toNode(frame),
        isPeer: (id) => this.peers.has(id),
        sendToPeer: (id, bytes, lane) => this.sendToPeer(id, bytes, lane),
        admin: (body) => runAdmin(this, body),
      },
      new RingConsumer(replyRing),
      replyRing,
    );
    this.target = {
      id: config.id,
      alive: false,
      port: undefined,
      controlWord: new Int32Array(this.controlWordBuffer),
      doorbell: this.nodeBell.buffer,
    };
    this.control = new ControlChannel(() => this.target);
  }

  /**
   * Opens the data directory (locked; its identity checked), starts the node's thread on its
   * log, then listens for peers and clients. Rejects with a typed error, having released
   * everything it took: DATA_DIR_LOCKED, CONFIG_MISMATCH, STATE_LOST, CORRUPT_LOG,
   * CONNECTION_FAILED (an address it cannot bind), or the node's own failure to start.
   */
  static async start(config: ServeConfig, log: Logger): Promise<NodeServer> {
    // The module loads here first, so one that cannot fails the start with an error naming it, before anything is opened.
    if (config.stateMachine !== undefined) await importFactory(config.stateMachine.module);
    realFileSystem.mkdirp(config.dataDir);
    const lock = DataDirLock.acquire(config.dataDir);
    const server = new NodeServer(config, log, lock);
    try {
      await server.startNode();
      await server.listen();
    } catch (error) {
      await server.close();
      throw error;
    }
    return server;
  }

  get peerAddress(): HostPort {
    return this.transport!.address;
  }

  get clientAddress(): HostPort {
    return this.clientPort!.address;
  }

  get peerAddressText(): string {
    return formatHostPort(this.peerAddress);
  }

  get clientAddressText(): string {
    return formatHostPort(this.clientAddress);
  }

  stats(): NodeServerStats {
    return {
      peerMessagesDropped: this.peerMessagesDropped,
      requestsShed: this.clients.requestsShed,
      clientConnections: this.clients.connectionCount,
      requestsInFlight: this.clients.requestsInFlight,
      leaderChanges: this.leaderChanges,
      requestsForwarded: this.clients.requestsForwarded,
      errorReplies: { ...this.clients.errorReplies },
    };
  }

  /** What the metrics read per scrape: the node's status and timings (one control call), the transport's and this server's counters. */
  async snapshot(): Promise<MetricsSnapshot> {
    let node: MetricsSnapshot['node'];
    try {
      const reply = await this.control.call(this.config.id, { type: 'status', callId: 0 });
      node = { status: reply.status!, timings: reply.timings };
    } catch (error) {
      if (!(error instanceof RingraftError)) throw error;
      node = undefined;
    }
    return { node, transport: this.transport?.stats(), server: this.stats() };
  }

  get metricsAddress(): HostPort | undefined {
    return this.metrics?.address;
  }

  /** The node's status, from its thread. */
  status(): Promise<NodeStatus> {
    return this.control.status(this.config.id);
  }

  /** Asks the leader (this node) to hand leadership to `target`. */
  async transferLeadership(target: number): Promise<void> {
    await this.control.call(this.config.id, { type: 'transfer-leadership', callId: 0, target });
  }

  /**
   * Stops gracefully (see the module comment); resolves once the node's thread has exited and
   * every socket is closed. Calling it again returns the same promise.
   */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= this.runShutdown();
    return this.shutdownPromise;
  }

  // ─── Members ────────────────────────────────────────────────────────────────────

  /** Rings between the node and peer `id`; handed to the node's thread now if it runs. */
  private addPeerRings(id: number): void {
    if (this.peers.has(id)) return;
    const inRing = createRing(this.peerRingBytes);
    const outRing = createRing(this.peerRingBytes);
    this.peers.set(id, {
      toNode: new Outbox(new RingProducer(inRing, { doorbell: this.nodeBell }), bytesCodec, PEER_QUEUE_MESSAGES_MAX, PEER_QUEUE_BYTES_MAX),
      fromNode: new RingConsumer(outRing),
    });
    const link = { id, inRing, outRing, peerDoorbell: this.bell.buffer };
    this.peerLinks.push(link);
    if (this.worker !== undefined && this.target.alive) this.control.post(this.target, { type: 'add-peer', callId: 0, link });
  }

  /**
   * Takes a table of member addresses (from the leader, or an admin command): new members get
   * rings and a dialler, moved ones a new address, removed ones are dropped from the transport
   * (their connections refused from then on). Written to the data directory before it is used.
   */
  applyMembers(update: MemberUpdate): void {
    const changed = this.members.apply(update, this.config.id);
    if (!changed) return;
    for (const [id, address] of this.members.entries()) {
      if (id === this.config.id) continue;
      this.addPeerRings(id);
      this.transport?.setPeer(id, address);
    }
    for (const id of update.removed ?? []) if (id !== this.config.id) this.transport?.removePeer(id);
    this.log.log('info', 'members', `members now ${this.members.describe()}`, { members: Object.fromEntries([...this.members.entries()].map(([id, a]) => [id, formatHostPort(a)])) });
  }

  /** Sends the member table to `peers` (every peer by default) on the control lane. */
  broadcastMembers(peers: Iterable<number> = this.peers.keys()): void {
    const bytes = encodeMemberTable(this.members);
    for (const id of peers) this.sendToPeer(id, bytes, 'control');
  }

  async proposeConfChange(change: ConfChange): Promise<number> {
    const reply = await this.control.call(this.config.id, { type: 'conf-change', callId: 0, change });
    return reply.index!;
  }

  reachablePeers(): readonly number[] {
    return (this.transport?.stats().peers ?? []).filter((p) => p.lanes.control.connected).map((p) => p.peerId);
  }

  memberAddresses(): ReadonlyMap<number, HostPort> {
    return new Map(this.members.entries());
  }

  // ─── Start ──────────────────────────────────────────────────────────────────────

  private async startNode(): Promise<void> {
    const c = this.config;
    const fs = realFileSystem;
    const clusterId = c.clusterId.toString(16);
    const started = readStarted(c.dataDir);
    const state = checkNodeDirectory(fs, c.dataDir, { clusterId, nodeId: c.id, hasRun: started });
    const voters = state.hasLog || c.join ? [] : [...c.initialCluster.keys()];
    this.log.log('info', 'node-starting', `node ${c.id} starting from ${c.dataDir}: ${state.hasLog ? 'recovering its log' : c.join ? 'joining a running cluster' : `bootstrapping voters ${voters.join(', ')}`}`, {
      dataDir: c.dataDir,
      hasLog: state.hasLog,
      join: c.join,
    });
    const { port1, port2 } = new MessageChannel();
    const data: NodeWorkerData = {
      id: c.id,
      voters,
      seed: Math.floor(Math.random() * 2 ** 32),
      settings: { raft: c.raft, node: c.node, dataDir: c.dataDir },
      doorbell: this.nodeBell.buffer,
      peers: this.peerLinks,
      clients: [{ index: 0, requestRing: this.clientRings.requestRing, replyRing: this.clientRings.replyRing, clientDoorbell: this.bell.buffer }],
      cut: [],
      controlWord: this.controlWordBuffer,
      controlPort: port2,
      stateMachine: c.stateMachine,
    };
    const worker = new Worker(NODE_WORKER_URL, { workerData: data, transferList: [port2] });
    this.worker = worker;
    this.target.port = port1;
    this.workerExited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      let running = false;
      worker.on('message', (msg: ControlReply) => {
        switch (msg.type) {
          case 'started':
            try {
              if (!started) writeCheckedRecord(fs, c.dataDir, STARTED_FILE, { format: STARTED_FORMAT, nodeId: c.id });
            } catch (error) {
              this.control.post(this.target, { type: 'close', callId: 0 });
              reject(error);
              return;
            }
            this.control.post(this.target, { type: 'run', callId: 0 });
            this.target.alive = true;
            running = true;
            resolve();
            return;
          case 'diagnostic':
            publishForwarded(msg);
            this.logDiagnostic(msg);
            return;
          case 'left':
            // Only a thread shared by several nodes says so; this one ends with its node.
            return;
          default:
            this.control.settle(msg);
        }
      });
      worker.once('error', (error) => {
        const failure = error instanceof RingraftError ? error : new RingraftError(ErrorCode.NODE_DOWN, `node ${c.id} failed: ${error.message}`, { cause: error });
        this.log.log('error', 'node-failed', failure.message, { error: failure });
        this.nodeStopped(failure);
        if (!running) reject(failure);
      });
      worker.once('exit', (code) => {
        const failure = running || this.closed ? undefined : new RingraftError(ErrorCode.NODE_DOWN, `node ${c.id} exited with code ${code} before it started`);
        this.nodeStopped(failure);
        if (!running) reject(failure ?? new RingraftError(ErrorCode.CLOSED, 'closed before the node started'));
      });
    });
    void this.pump();
  }

  private async listen(): Promise<void> {
    const c = this.config;
    this.transport = await TcpTransport.start({
      nodeId: c.id,
      clusterId: c.clusterId,
      listen: c.listenPeer,
      peers: [...this.members.entries()].filter(([id]) => id !== c.id),
      onMessage: (from, bytes) => this.fromPeer(from, bytes),
      onUnreachable: (peer) => this.clients.forwardsLost(peer),
      onLog: (entry) => this.logTransport(entry),
      settings: c.peerTransport,
      ...(c.tls === undefined ? {} : { tls: { certFile: c.tls.certFile, keyFile: c.tls.keyFile, caFile: c.tls.caFile } }),
    });
    this.clientPort = await ClientPortServer.start({
      clusterId: c.clusterId,
      nodeId: c.id,
      listen: c.listenClient,
      onRequest: (conn, frame) => this.clients.onRequest(conn, frame),
      onConnectionClosed: (conn) => this.clients.onConnectionClosed(conn),
      onLog: (entry) => this.logClientPort(entry),
      settings: c.clientPort,
      ...(c.tls === undefined ? {} : { tls: { certFile: c.tls.certFile, keyFile: c.tls.keyFile, caFile: c.tls.caFile, requireClientCert: c.tls.clientCertRequired } }),
    });
    if (c.listenMetrics !== undefined) this.metrics = await MetricsServer.start(c.listenMetrics, this, this.log);
    if (c.listenResp !== undefined) await this.listenResp(c.listenResp);
  }

  /**
   * Starts the RESP port (resp-port.ts): its commands go through a `KvClient` whose requests
   * the client bridge takes as those of one more connection, in this process (local-endpoint.ts):
   * sessions, retries and forwarding to the leader as for a network client, with no socket.
   */
  private async listenResp(listen: HostPort): Promise<void> {
    const c = this.config;
    const endpoint = new LocalEndpoint(
      { nodeId: c.id, request: (conn, frame) => this.clients.onRequest(conn, frame), closed: (conn) => this.clients.onConnectionClosed(conn) },
      { requestTimeoutMs: CLIENT_SETTINGS.requestTimeoutMs.default, requestsInFlightMax: CLIENT_SETTINGS.requestsInFlightMax.default, electionTimeoutMs: c.node.tickMs * c.raft.electionTimeoutTicks },
    );
    const client = new KvClient(endpoint);
    this.resp = { port: undefined, endpoint };
    this.resp.port = await RespPort.start(
      { listen, password: c.respPassword, moved: c.respMoved },
      {
        nodeId: c.id,
        log: this.log,
        client,
        isDraining: () => this.draining,
        leaderId: () => this.clients.knownLeader,
        role: async () => {
          const s = await this.status();
          return { role: s.role, leaderId: s.leaderId, term: s.term };
        },
      },
    );
  }

  /** The RESP port's address, if it listens. */
  get respAddress(): HostPort | undefined {
    return this.resp?.port?.address;
  }

  // ─── Peers ──────────────────────────────────────────────────────────────────────

  private fromPeer(from: number, bytes: Uint8Array): void {
    const peer = this.peers.get(from);
    if (peer === undefined) return;
    if (ClientBridge.isForward(bytes)) {
      if (!this.clients.fromForward(from, bytes)) this.peerMessagesDropped++;
      return;
    }
    if (bytes[0] === MEMBER_TABLE) {
      const update = decodeMemberTable(bytes);
      if (update === undefined) this.peerMessagesDropped++;
      else this.applyMembers(update);
      return;
    }
    if (bytes.length > this.peerRingFrameMax) {
      this.peerMessagesDropped++;
      this.log.log('warn', 'peer-message-too-large', `a message of ${bytes.length} bytes from node ${from} exceeds the node's ring frames of ${this.peerRingFrameMax}: dropped`, { peer: from });
      return;
    }
    const droppedBefore = peer.toNode.dropped;
    peer.toNode.send(bytes, keepCopy);
    this.peerMessagesDropped += peer.toNode.dropped - droppedBefore;
    this.wake();
  }

  /**
   * Hands bytes to the transport for a member: what goes to a node no longer in the table (a
   * removed member the node still writes to, or anything before the transport listens) is
   * dropped, as on a network that does not reach it. Returns whether it was queued.
   */
  private sendToPeer(id: number, bytes: Uint8Array, lane: TcpLane): boolean {
    if (this.transport === undefined || !this.members.has(id)) return false;
    return this.transport.send(id, bytes, lane);
  }

  private drainPeers(): number {
    let frames = 0;
    for (const [id, peer] of this.peers) {
      frames += peer.fromNode.drainRanges((memory, offset, length) => {
        this.sendToPeer(id, memory.subarray(offset, offset + length), peerLaneOf(memory[offset + 1] as MessageType));
      }, FRAMES_PER_TURN_MAX);
    }
    return frames;
  }

  private toNode(frame: Uint8Array): void {
    this.requests.send(frame, keepCopy);
    this.wake();
  }

  // ─── The pump ───────────────────────────────────────────────────────────────────

  /**
   * Publishes what was staged for the node once the current socket event is handled (a
   * microtask: one publish, one ring of the node's doorbell, per read of a socket), and keeps
   * the pump running. The pump may be asleep on the main doorbell, which only the node rings.
   */
  private wake(): void {
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushTask);
    }
    if (!this.pumping) void this.pump();
  }

  private hasData(): boolean {
    if (this.clients.hasReplies()) return true;
    for (const p of this.peers.values()) if (p.fromNode.hasData()) return true;
    return false;
  }

  private flushToNode(): void {
    for (const p of this.peers.values()) p.toNode.flush();
    this.requests.flush();
  }

  private queuedToNode(): boolean {
    if (this.requests.queuedCount > 0) return true;
    for (const p of this.peers.values()) if (p.toNode.queuedCount > 0) return true;
    return false;
  }

  /**
   * Moves frames between the rings and the sockets while the node runs: one turn takes what
   * the node wrote and publishes what arrived for it; while busy it yields to the event loop
   * between turns (sockets are read and written there), and when idle it sleeps on the main
   * doorbell, which the node rings after it publishes.
   */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.closed && this.worker !== undefined) {
        this.flushToNode();
        const got = this.drainPeers() + this.clients.drainReplies(FRAMES_PER_TURN_MAX);
        this.flushToNode();
        if (got > 0) {
          await new Promise<void>((resolve) => setImmediate(resolve));
        } else {
          await this.bell.waitAsync(this.queuedToNode() ? 1 : PUMP_IDLE_MS, () => this.hasData() || this.closed);
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  // ─── Stopping ───────────────────────────────────────────────────────────────────

  private nodeStopped(failure: RingraftError | undefined): void {
    if (!this.target.alive && this.worker === undefined) return;
    this.target.alive = false;
    this.target.port?.close();
    this.target.port = undefined;
    this.worker = undefined;
    this.control.failCalls(this.config.id);
    this.resolveStopped(failure);
    // The node is gone: nothing here serves anyone any more.
    if (!this.closed) void this.close();
  }

  private async runShutdown(): Promise<void> {
    const electionMs = this.config.node.tickMs * this.config.raft.electionTimeoutTicks;
    try {
      await this.handOffLeadership(2 * electionMs);
    } catch (error) {
      if (!(error instanceof RingraftError)) throw error;
      this.log.log('warn', 'shutdown-transfer-failed', `leadership was not handed off: ${error.message}`, { error });
    }
    this.draining = true;
    const deadline = performance.now() + DRAIN_TIMEOUT_MS;
    while (this.clients.requestsAwaited() > 0 && performance.now() < deadline && this.target.alive) await sleep(10);
    const left = this.clients.requestsAwaited();
    if (left > 0) this.log.log('warn', 'shutdown-drain-timeout', `${left} requests still in flight after ${DRAIN_TIMEOUT_MS} ms; their clients see the connection close`, { left });
    await this.close();
    this.log.log('info', 'stopped', `node ${this.config.id} stopped`);
  }

  /** A leader hands leadership to its most up-to-date voter and waits, up to `timeoutMs`, to be a follower. */
  private async handOffLeadership(timeoutMs: number): Promise<void> {
    if (!this.target.alive) return;
    const s = await this.status();
    if (s.role !== 'leader') return;
    const candidates = s.voters.filter((v) => v !== this.config.id);
    if (candidates.length === 0) return;
    const best = candidates.reduce((a, b) => ((s.matchIndex[b] ?? 0) > (s.matchIndex[a] ?? 0) ? b : a));
    this.log.log('info', 'shutdown-transfer', `handing leadership to node ${best} before stopping`, { target: best });
    await this.transferLeadership(best);
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      await sleep(20);
      const now = await this.status();
      if (now.role !== 'leader') {
        this.log.log('info', 'shutdown-transferred', `node ${now.leaderId === 0 ? 'unknown' : now.leaderId} leads now`, { leader: now.leaderId });
        return;
      }
    }
    throw new RingraftError(ErrorCode.TIMEOUT, `still the leader ${timeoutMs} ms after asking node ${best} to take over`);
  }

  /** Stops the node's thread (its WAL closed) and closes every socket; the lock is released last. */
  private async close(): Promise<void> {
    if (this.closed) return this.workerExited;
    this.closed = true;
    this.bell.ring();
    const worker = this.worker;
    if (worker !== undefined && this.target.port !== undefined) {
      this.control.post(this.target, { type: 'close', callId: 0 });
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), WORKER_EXIT_TIMEOUT_MS)));
      const r = await Promise.race([this.workerExited.then(() => 'exited' as const), late]);
      clearTimeout(timer);
      if (r === 'late') {
        this.log.log('error', 'node-exit-timeout', `the node's thread did not exit within ${WORKER_EXIT_TIMEOUT_MS} ms; terminated`);
        await worker.terminate();
      }
    }
    await Promise.all([this.resp?.port?.close(), this.resp?.endpoint.close()]);
    await Promise.all([this.transport?.close(), this.clientPort?.close(), this.metrics?.close()]);
    this.lock.release();
  }

  /** The node's role changes at info, the rest of its decisions and WAL repairs at debug. */
  private logDiagnostic(d: ForwardedDiagnostic): void {
    if (d.channel === 'ringraft:raft') {
      const e = d.message;
      if (e.kind === 'role') this.clients.knownLeader = e.leader;
      if (e.kind === 'role' && e.leader !== 0 && e.leader !== this.lastLeader) {
        this.lastLeader = e.leader;
        this.leaderChanges++;
      }
      const level = e.kind === 'role' ? 'info' : 'debug';
      if (this.log.enabled(level)) this.log.log(level, `raft-${e.kind}`, formatTraceEvent(e), { event: e });
    } else if (this.log.enabled('info')) {
      this.log.log('info', 'wal-recovery', `WAL recovery of ${d.message.dir}`, { report: d.message });
    }
  }

  /**
   * The transport's events as log lines. A peer that stays unreachable is redialled every few
   * hundred milliseconds: its first failed dial is logged at its level, the next ones at debug
   * until a dial succeeds again, so a node down for an hour is one warning, not thousands.
   */
  private logTransport(entry: TcpLogEntry): void {
    let level: LogLevel = entry.level;
    const key = `${entry.peerId}/${entry.lane}`;
    if (entry.kind === 'dial-failed') {
      if (this.peersFailing.has(key)) level = 'debug';
      this.peersFailing.add(key);
    } else if (entry.kind === 'connected') {
      this.peersFailing.delete(key);
      // A peer (re)connected: the leader tells it the members, which it may have missed.
      if (entry.lane === 'control' && entry.peerId !== undefined && this.clients.knownLeader === this.config.id) this.broadcastMembers([entry.peerId]);
    }
    this.log.log(level, `peer-${entry.kind}`, entry.message, { peer: entry.peerId, lane: entry.lane, error: entry.error, ...(entry.refusalReason === undefined ? {} : { refusalReason: entry.refusalReason }) });
  }

  private logClientPort(entry: ClientPortLogEntry): void {
    this.log.log(entry.level, `client-${entry.kind}`, entry.message, { connection: entry.connectionId, remote: entry.remote, error: entry.error });
  }
}

/** A ring that holds two frames of `frameBytes`: a power of two, at least RING_BYTES_MIN. */
function ringBytesFor(frameBytes: number): number {
  let bytes = RING_BYTES_MIN;
  while (ringFrameBytesMax(bytes) < 2 * frameBytes) bytes *= 2;
  return bytes;
}

/** Whether the node in `dir` has run before (its STARTED record). */
function readStarted(dir: string): boolean {
  const record = readCheckedRecord(realFileSystem, join(dir, STARTED_FILE)) as { format?: unknown } | undefined;
  if (record === undefined) return false;
  if (record.format !== STARTED_FORMAT) throw new RingraftError(ErrorCode.UNSUPPORTED_FORMAT, `${join(dir, STARTED_FILE)}: format ${String(record.format)}; this build reads ${STARTED_FORMAT}`);
  return true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
