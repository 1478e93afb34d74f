/**
 * The TCP peer transport: moves opaque message bytes between node ids of one cluster, each
 * node a separate process. It knows nothing of Raft; the coming `ringraft serve` process
 * hands it encoded Raft messages and reports a peer unreachable to Raft when it says so.
 *
 * ```
 *  node 1                                                   node 2
 *  send(2, bytes, lane) ─► queue (1→2, lane) ─► dialled connection ─► listener ─► onMessage(1, bytes, lane)
 *  onMessage(2, ...)  ◄── listener ◄── dialled connection ◄── queue (2→1, lane) ◄── send(1, bytes, lane)
 * ```
 *
 * **Connections.** One long-lived TCP connection per directed pair of nodes and lane, dialled
 * by the sender: a node's connection to a peer carries only what it sends, and the peer's
 * connection back carries the peer's messages (the two directions never wait on each other).
 * Three lanes, each its own connection, so that none waits behind another: `control`
 * (heartbeats, votes), `append` (replication), `snapshot` (chunks). The design follows etcd's
 * rafthttp (a long-lived stream per peer, with separate streams for appends and for everything
 * else, and snapshots apart), dragonboat (separate connections for snapshot chunks, a CRC on
 * every frame) and hashicorp/raft's NetworkTransport (one framed stream per connection, the
 * heartbeat never behind a large append).
 *
 * **A connection's life.** The dialler writes a HELLO (cluster id, its node id, the node it
 * means, the lane; handshake.ts); the acceptor checks it against its cluster, its own id and
 * the caller's `acceptPeer`, and answers WELCOME, or REFUSAL and closes, so the refused side
 * can log why and back off. After the WELCOME the dialler sends BATCH frames (frame.ts), each
 * flush one frame with one write (bench/micro/tcp-write.bench.ts), and a PING every
 * `keepaliveIntervalMs`, which the acceptor answers with a PONG: a one-way connection's
 * dialler otherwise hears nothing, and could not tell a quiet link from a dead one. Either
 * side tears a connection down when a write waits past `writeStallTimeoutMs` or nothing has
 * arrived for `idleTimeoutMs`; on bytes that are not frames (CORRUPT_FRAME, FRAME_TOO_LARGE);
 * or when the socket fails. The dialler then redials with jittered exponential back-off
 * (outbound.ts). Each of these is logged through `onLog` with a kind and a typed error, and
 * touches no other connection.
 *
 * **Never blocking.** `send` copies the message into the lane's queue, bounded in count and
 * bytes, and returns; one turn's messages leave together at the end of the turn. A full queue
 * drops the message as network loss, counts it, and reports the peer through `onUnreachable`
 * (at most once per peer per turn, after the turn, never from inside `send`), as it does when
 * a connection that was up ends (what it carried may be lost). Raft then falls back to probing.
 *
 * **Receiving.** `onMessage(from, bytes, lane)` is called once per message, in order per peer
 * and lane. `bytes` is a view of the connection's read buffer, valid only during the call:
 * decode it there, or copy what is kept. A message from an accepted peer is delivered as is;
 * the transport does not check what it encodes.
 *
 * **Addresses** are IP addresses and ports, never host names (how `localhost` resolves is
 * not something a cluster should depend on). The listener binds exactly the address given.
 *
 * **Closing.** `close()` closes the listener and every connection, clears every timer and
 * drops what is queued; once it resolves, the transport holds no handle that keeps the
 * process alive. Its timers never do so on their own (they are unref'd): the listener and
 * the sockets do.
 */
import { type Socket, type Server, createServer, isIP } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { acceptConnections, TLS_REFRESH_MS, TlsMaterial, type TlsFiles } from './tls.ts';
import { checkKnown, invalidArgument } from '../../base/index.ts';
import type { LogFields, TcpLogEntry, TcpLogKind, TcpLogLevel, TransportContext, TransportCounters } from './context.ts';
import { TcpTransportError } from './errors.ts';
import { TCP_LANES, type TcpLane } from './handshake.ts';
import { InboundLink, type InboundHost } from './inbound.ts';
import { OutboundLane, type PeerAddress } from './outbound.ts';
import { messageBytesMaxOf, resolveTcpTransportSettings, type TcpTransportSettings, type TcpTransportSettingsInput } from './settings.ts';
import { type LaneCounters, newLaneCounters, type TcpLaneStats, type TcpPeerStats, type TcpTransportStats } from './stats.ts';
import { listenOn, nowMs } from './framed-socket.ts';

export interface TcpTransportOptions {
  /** This node's id: a positive safe integer. */
  readonly nodeId: number;
  /** The cluster's id, from its name or token through `clusterIdOf`: a u64 other than 0. */
  readonly clusterId: bigint;
  /** Where to listen: an IP address (never a host name) and a port; port 0 takes a free one (see `address`). */
  readonly listen: PeerAddress;
  /** The peers this node sends to, with where each listens. `setPeer` and `removePeer` change them later. */
  readonly peers?: Iterable<readonly [number, PeerAddress]>;
  /**
   * Whether a connection from `peerId` is accepted, asked on each inbound handshake. Default:
   * whether `peerId` is a peer here (given in `peers` or `setPeer`). A removed member must be
   * refused: have this say no once it is removed.
   */
  readonly acceptPeer?: (peerId: number) => boolean;
  /**
   * Each message received, in order per peer and lane. `bytes` is valid only during the call
   * (a view of the read buffer): decode or copy it there. A throw here is a bug of the caller
   * and is not caught.
   */
  readonly onMessage: (from: number, bytes: Uint8Array, lane: TcpLane) => void;
  /** A message to `peerId` was dropped, or a connection to it that was up ended: it may have lost messages. Called after the turn in which that happened. */
  readonly onUnreachable?: (peerId: number) => void;
  /** Every connection event worth a log line; see `TcpLogEntry`. */
  readonly onLog?: (entry: TcpLogEntry) => void;
  /** See `TCP_TRANSPORT_SETTINGS`. */
  readonly settings?: TcpTransportSettingsInput;
  /**
   * Mutual TLS (tls.ts): this node's certificate and key, and the cluster's CA. Each side's
   * certificate must name its node (`node-<id>`); files are re-read when they change.
   */
  readonly tls?: TlsFiles;
}

const OPTION_NAMES = { nodeId: 0, clusterId: 0, listen: 0, peers: 0, acceptPeer: 0, onMessage: 0, onUnreachable: 0, onLog: 0, settings: 0, tls: 0 };
const LANE_INDEX: { readonly [L in TcpLane]: number } = { control: 0, append: 1, snapshot: 2 };
const U64_MAX = (1n << 64n) - 1n;
/** How often, at most, the transport checks its connections' clocks: a quarter of the shortest timeout or interval. */
const TICK_DIVISOR = 4;

/** One peer: where it listens (if this node sends to it), and per lane its counters, queue and connections. */
interface PeerRecord {
  readonly peerId: number;
  address: PeerAddress | undefined;
  readonly counters: readonly LaneCounters[];
  /** One per lane while the peer has an address. */
  outbound: readonly OutboundLane[] | undefined;
  /** The accepted connection of each lane, if any. */
  readonly inbound: (InboundLink | undefined)[];
}

export class TcpTransport {
  readonly nodeId: number;
  readonly clusterId: bigint;
  readonly settings: TcpTransportSettings;
  /** The largest message `send` takes: `frameBytesMax` less the framing of a one-message batch. */
  readonly messageBytesMax: number;
  private readonly peers = new Map<number, PeerRecord>();
  /** Every accepted connection, before and after its handshake. */
  private readonly inboundLinks = new Set<InboundLink>();
  private readonly sockets = new Set<Socket>();
  private readonly unreachable = new Set<number>();
  private readonly counters: TransportCounters = { connectionsAccepted: 0, connectionsRefused: 0, connectionsCorrupt: 0, connectionsDropped: 0 };
  private readonly ctx: TransportContext;
  private readonly inboundHost: InboundHost;
  private readonly ticker: NodeJS.Timeout;
  private closing = false;
  private closed: Promise<void> | undefined;

  /**
   * Starts a transport: checks the options, binds the listener, and resolves once it listens.
   * Refuses a bad option with INVALID_ARGUMENT, and an address it cannot bind with
   * CONNECTION_FAILED (its `cause` the system error).
   */
  static async start(options: TcpTransportOptions): Promise<TcpTransport> {
    checkOptions(options);
    let material: TlsMaterial | undefined;
    if (options.tls !== undefined) {
      if (options.tls.certFile === undefined) throw invalidArgument('tls: a node needs certFile and keyFile (mutual TLS)');
      material = new TlsMaterial(options.tls);
    }
    const idleMs = resolveTcpTransportSettings(options.settings, 'settings.').idleTimeoutMs;
    const server = material === undefined ? createServer({ noDelay: true }) : createTlsServer({ ...material.options(), requestCert: true, rejectUnauthorized: true, handshakeTimeout: idleMs, noDelay: true });
    const transport = new TcpTransport(options, server, material);
    await transport.listen(options.listen);
    return transport;
  }

  private constructor(
    private readonly options: TcpTransportOptions,
    private readonly server: Server,
    private readonly tls: TlsMaterial | undefined,
  ) {
    this.nodeId = options.nodeId;
    this.clusterId = options.clusterId;
    this.settings = resolveTcpTransportSettings(options.settings, 'settings.');
    this.messageBytesMax = messageBytesMaxOf(this.settings.frameBytesMax);
    this.ctx = {
      settings: this.settings,
      nodeId: this.nodeId,
      clusterId: this.clusterId,
      counters: this.counters,
      isClosing: () => this.closing,
      log: (level, kind, message, fields) => this.log(level, kind, message, fields),
      trackSocket: (socket) => this.trackSocket(socket),
      markUnreachable: (peerId) => this.markUnreachable(peerId),
      tls: tls === undefined ? undefined : () => this.currentTls(),
    };
    this.inboundHost = {
      ctx: this.ctx,
      acceptPeer: (peerId) => (options.acceptPeer === undefined ? this.peers.get(peerId)?.address !== undefined : options.acceptPeer(peerId)),
      onMessage: options.onMessage,
      countersOf: (peerId, lane) => this.peers.get(peerId)?.counters[LANE_INDEX[lane]],
      register: (link) => this.registerInbound(link),
      unregister: (link) => this.unregisterInbound(link),
    };
    for (const [peerId, address] of options.peers ?? []) this.setPeer(peerId, address);
    const s = this.settings;
    const tickMs = Math.max(1, Math.floor(Math.min(s.keepaliveIntervalMs, s.writeStallTimeoutMs, s.idleTimeoutMs) / TICK_DIVISOR));
    this.ticker = setInterval(() => this.tick(), tickMs);
    this.ticker.unref();
  }

  /** Where the listener is bound (with the port it took, if it was given 0). */
  get address(): PeerAddress {
    const bound = this.server.address();
    if (bound === null || typeof bound === 'string') throw new TcpTransportError('CLOSED', 'the transport is not listening');
    return { host: bound.address, port: bound.port };
  }

  /** Adds a peer, or moves it to a new address (its connections are redialled there). */
  setPeer(peerId: number, address: PeerAddress): void {
    this.checkOpen();
    checkNodeId(peerId, `peer id ${peerId}`);
    if (peerId === this.nodeId) throw invalidArgument(`peer id ${peerId} is this node's own id`);
    checkAddress(address, `address of peer ${peerId}`, false);
    const record = this.peers.get(peerId) ?? this.addRecord(peerId);
    const copy = { host: address.host, port: address.port };
    record.address = copy;
    if (record.outbound === undefined) record.outbound = TCP_LANES.map((lane, i) => new OutboundLane(this.ctx, peerId, lane, copy, record.counters[i]!));
    else for (const lane of record.outbound) lane.setAddress(copy);
  }

  /**
   * Forgets a peer: closes its connections both ways and drops what is queued for it, and
   * its counters. By default it is refused from now on; with `acceptPeer`, that predicate
   * decides.
   */
  removePeer(peerId: number): void {
    const record = this.peers.get(peerId);
    if (record === undefined) return;
    this.peers.delete(peerId);
    for (const lane of record.outbound ?? []) lane.stop('removed');
    for (const link of record.inbound) link?.close('removed');
  }

  /**
   * Queues `bytes` for `to` on `lane` and returns at once: true if queued, false if the
   * lane's queue was full and the message was dropped (counted, and `onUnreachable(to)`
   * follows). The bytes are copied. Throws INVALID_ARGUMENT for a peer without an address or
   * an unknown lane, FRAME_TOO_LARGE for a message over `messageBytesMax`, CLOSED after
   * `close()`.
   */
  send(to: number, bytes: Uint8Array, lane: TcpLane): boolean {
    if (this.closing) throw new TcpTransportError('CLOSED', 'the transport is closed');
    const outbound = this.peers.get(to)?.outbound?.[LANE_INDEX[lane]];
    if (outbound === undefined) {
      if (!Object.hasOwn(LANE_INDEX, lane)) throw invalidArgument(`unknown lane ${JSON.stringify(lane)} (lanes: ${TCP_LANES.join(', ')})`);
      throw invalidArgument(`no address for node ${to}: setPeer first`);
    }
    if (bytes.length > this.messageBytesMax) {
      throw new TcpTransportError('FRAME_TOO_LARGE', `a message of ${bytes.length} bytes exceeds the ${this.messageBytesMax} one frame holds (frameBytesMax ${this.settings.frameBytesMax})`);
    }
    if (outbound.enqueue(bytes)) return true;
    this.markUnreachable(to);
    return false;
  }

  /** The counters, per peer and lane, and the transport's own. A new object each call. */
  stats(): TcpTransportStats {
    const peers: TcpPeerStats[] = [];
    for (const record of this.peers.values()) {
      const lanes = Object.fromEntries(TCP_LANES.map((lane, i) => [lane, laneStats(record.counters[i]!, record.outbound?.[i])])) as { [L in TcpLane]: TcpLaneStats };
      peers.push({ peerId: record.peerId, address: record.address, lanes });
    }
    peers.sort((a, b) => a.peerId - b.peerId);
    return { peers, ...this.counters };
  }

  /** Closes the listener and every connection, clears every timer, drops what is queued. Idempotent. */
  close(): Promise<void> {
    if (this.closed !== undefined) return this.closed;
    this.closing = true;
    clearInterval(this.ticker);
    this.unreachable.clear();
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const record of this.peers.values()) for (const lane of record.outbound ?? []) lane.stop('closing');
    for (const link of this.inboundLinks) link.close('closing');
    const socketsClosed = [...this.sockets].map((socket) => {
      socket.destroy();
      return socket.closed ? undefined : new Promise<void>((resolve) => socket.once('close', () => resolve()));
    });
    this.closed = Promise.all([serverClosed, ...socketsClosed]).then(() => undefined);
    return this.closed;
  }

  private async listen(address: PeerAddress): Promise<void> {
    const server = this.server;
    server.maxConnections = this.settings.inboundConnectionsMax;
    acceptConnections(server, this.tls !== undefined, (socket) => this.onConnection(socket), (remote, message, cause) => {
      this.log('warn', 'tls-failed', message, { direction: 'in', remote, error: new TcpTransportError('HANDSHAKE_REFUSED', message, { cause }) });
    });
    try {
      await listenOn(
        server,
        address,
        (remote) => {
          this.counters.connectionsDropped++;
          this.log('warn', 'connection-dropped', `dropped a connection from ${remote}: inboundConnectionsMax (${this.settings.inboundConnectionsMax}) are open`, { direction: 'in', remote });
        },
        (error) => this.log('error', 'listener-error', `listener failed: ${error.message}`, {}),
      );
    } catch (cause) {
      clearInterval(this.ticker);
      this.closing = true;
      throw new TcpTransportError('CONNECTION_FAILED', `could not listen on ${address.host}:${address.port}: ${(cause as Error).message}`, { cause });
    }
    const bound = this.address;
    this.log('info', 'listening', `node ${this.nodeId} listening on ${bound.host}:${bound.port}`, {});
  }

  private onConnection(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.counters.connectionsAccepted++;
    this.trackSocket(socket);
    this.inboundLinks.add(new InboundLink(this.inboundHost, socket));
  }

  private registerInbound(link: InboundLink): LaneCounters {
    const record = this.peers.get(link.peerId!) ?? this.addRecord(link.peerId!);
    const i = LANE_INDEX[link.lane!];
    const older = record.inbound[i];
    record.inbound[i] = link;
    older?.close('replaced');
    return record.counters[i]!;
  }

  private unregisterInbound(link: InboundLink): void {
    this.inboundLinks.delete(link);
    if (link.peerId === undefined || link.lane === undefined) return;
    const record = this.peers.get(link.peerId);
    const i = LANE_INDEX[link.lane];
    if (record !== undefined && record.inbound[i] === link) record.inbound[i] = undefined;
  }

  private addRecord(peerId: number): PeerRecord {
    const record: PeerRecord = { peerId, address: undefined, counters: TCP_LANES.map(() => newLaneCounters()), outbound: undefined, inbound: TCP_LANES.map(() => undefined) };
    this.peers.set(peerId, record);
    return record;
  }

  private trackSocket(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private markUnreachable(peerId: number): void {
    if (this.closing || this.options.onUnreachable === undefined) return;
    if (this.unreachable.size === 0) queueMicrotask(() => this.reportUnreachable());
    this.unreachable.add(peerId);
  }

  private reportUnreachable(): void {
    const peerIds = [...this.unreachable];
    this.unreachable.clear();
    for (const peerId of peerIds) if (!this.closing && this.peers.has(peerId)) this.options.onUnreachable!(peerId);
  }

  /** The TLS options of the next connection: the files as they are now (re-read if changed, at most once a second). */
  private currentTls(): ReturnType<TlsMaterial['options']> {
    this.refreshTls();
    return this.tls!.options();
  }

  private refreshTls(): void {
    if (this.tls?.refresh(TLS_REFRESH_MS) === true) {
      (this.server as TlsServer).setSecureContext({ ...this.tls.options() });
      this.log('info', 'tls-reloaded', 'TLS certificate files changed: new connections use them', {});
    }
  }

  private tick(): void {
    this.refreshTls();
    const now = nowMs();
    for (const record of this.peers.values()) for (const lane of record.outbound ?? []) lane.tick(now);
    for (const link of this.inboundLinks) link.tick(now);
  }

  private checkOpen(): void {
    if (this.closing) throw new TcpTransportError('CLOSED', 'the transport is closed');
  }

  private log(level: TcpLogLevel, kind: TcpLogKind, message: string, fields: LogFields): void {
    const onLog = this.options.onLog;
    if (onLog === undefined) return;
    onLog({
      level,
      kind,
      peerId: fields.peerId,
      lane: fields.lane,
      direction: fields.direction,
      remote: fields.remote,
      error: fields.error,
      refusalReason: fields.refusalReason,
      delayMs: fields.delayMs,
      message,
    });
  }
}

function laneStats(c: LaneCounters, outbound: OutboundLane | undefined): TcpLaneStats {
  return {
    ...c,
    queuedMessages: outbound?.queue.queuedCount ?? 0,
    queuedBytes: outbound?.queue.queuedBytes ?? 0,
    connected: outbound?.isConnected ?? false,
  };
}

function checkOptions(options: TcpTransportOptions): void {
  if (typeof options !== 'object' || options === null) throw invalidArgument('TcpTransport options must be an object');
  checkKnown(OPTION_NAMES, options);
  checkNodeId(options.nodeId, 'nodeId');
  if (typeof options.clusterId !== 'bigint' || options.clusterId <= 0n || options.clusterId > U64_MAX) {
    throw invalidArgument(`clusterId must be a bigint in [1, 2^64) (clusterIdOf gives one), got ${String(options.clusterId)}`);
  }
  checkAddress(options.listen, 'listen', true);
  if (typeof options.onMessage !== 'function') throw invalidArgument('onMessage must be a function');
  for (const name of ['acceptPeer', 'onUnreachable', 'onLog'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw invalidArgument(`${name} must be a function`);
  }
}

function checkNodeId(id: unknown, what: string): void {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) throw invalidArgument(`${what} must be a positive safe integer, got ${String(id)}`);
}

function checkAddress(address: PeerAddress | undefined, what: string, portZeroAllowed: boolean): void {
  if (typeof address !== 'object' || address === null) throw invalidArgument(`${what} must be { host, port }`);
  if (typeof address.host !== 'string' || isIP(address.host) === 0) {
    throw invalidArgument(`${what}.host must be an IP address (not a host name: how names resolve must not matter), got ${JSON.stringify(address.host)}`);
  }
  const portMin = portZeroAllowed ? 0 : 1;
  if (typeof address.port !== 'number' || !Number.isInteger(address.port) || address.port < portMin || address.port > 0xffff) {
    throw invalidArgument(`${what}.port must be an integer in [${portMin}, 65535], got ${String(address.port)}`);
  }
}
