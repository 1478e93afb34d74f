/**
 * The client port: the server side of the TCP connections that network clients use to reach a
 * node. It carries the client protocol's frames (runtime/client-protocol.ts; opaque here but
 * for their 5-byte header), pipelined and batched, in the frames of frame.ts with the
 * handshake of client-handshake.ts. It knows nothing of what a request asks: the node's host
 * decodes each one (`decodeRequest`) and answers through the connection's handle.
 *
 * ```
 *  client ── HELLO ──► accept, check magic/version/cluster ──► WELCOME (frameBytesMax, requestsInFlightMax)
 *  client ── BATCH ──► check the batch ──► onRequest(conn, frame) for each request, in order
 *  conn.reply(frame) ──► reply queue ──► one BATCH per flush (end of the turn), one write ──► client
 * ```
 *
 * **Requests.** Each request frame is handed to `onRequest` as a view of the read buffer,
 * valid only during the call (decodeRequest copies what it keeps). The transport checks the
 * outer framing (CRC, lengths) and that each request is at least 5 bytes with a kind other
 * than 0; it does not call decodeRequest (the layer rule keeps runtime/ out of transport/),
 * so a request that is malformed inside is the host's to answer (an error reply), or to
 * punish with `conn.close(new ClientPortError('PROTOCOL_ERROR', ...))`.
 *
 * **Bounds, per connection.** What happens at each:
 *
 * | bound                 | at the bound                                                        |
 * | --------------------- | ------------------------------------------------------------------- |
 * | `frameBytesMax`       | a frame header over it: CORRUPT-class close (FRAME_TOO_LARGE), before any allocation |
 * | `requestsInFlightMax` | one request more than announced: GOAWAY TOO_MANY_REQUESTS, closed (the client broke the contract of its WELCOME; nothing of it is delivered) |
 * | `replyQueueCountMax`, `replyQueueBytesMax` | a reply that would pass either: the queue is dropped, GOAWAY QUEUE_FULL, closed |
 * | `writeStallTimeoutMs` | a write waiting that long for 'drain': closed (TIMEOUT)              |
 * | `idleTimeoutMs`       | nothing received that long (no HELLO, no request, no PING): closed (TIMEOUT) |
 * | `connectionsMax`      | a connection past it: REFUSAL `full` at once, closed; 64 more are dropped on accept |
 *
 * A request is in flight from `onRequest` until the host ends it: `reply(frame)` (a reply
 * that ends its request: write, read, error, watch-end), or `endRequest()` for one that gets
 * no reply of its own (an unwatch: end it before the watch-end it causes is sent, so that a
 * client counting its slots never sees a slot free before the server does). Replies that do
 * not end a request (watch-start, watch-event) pass `endsRequest = false`. Cutting a
 * connection off rather than pausing its reads keeps the accounting exact and the server's
 * work per connection bounded by one number: a client that counts its requests never hits it.
 *
 * Any bad input (garbage, an oversized or bad-CRC frame, half a frame and then the end, a
 * handshake for another cluster) closes only that connection, logged with a typed error.
 * `close()` ends every connection (a GOAWAY CLOSED first), the listener and every timer.
 */
import { type Server, type Socket, createServer, isIP } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { acceptConnections, TLS_REFRESH_MS, TlsMaterial, type TlsFiles } from './tls.ts';
import { checkKnown, fail, invalidArgument, type RingraftError } from '../../base/index.ts';
import type { TcpLogLevel } from './context.ts';
import { ClientPortError } from './client-port-errors.ts';
import { resolveClientPortSettings, type ClientPortSettings, type ClientPortSettingsInput } from './client-port-settings.ts';
import { CLIENT_FRAME_HEADER_BYTES, clientBatchProblem, clientHandshakeMismatch, decodeClientHandshake, encodeClientHandshake, encodeClientRefusal, encodeGoaway, type ClientRefusalReason } from './client-handshake.ts';
import { encodeFrame, FRAME_BYTES_MIN, forEachBatchMessage, FrameType, frameTypeName } from './frame.ts';
import { FramedSocket, listenOn, nowMs, type SocketCloseKind } from './framed-socket.ts';
import { MessageQueue } from './message-queue.ts';
import { messageBytesMaxOf } from './settings.ts';

/** An IP address (never a host name) and a port. */
export interface ClientPortAddress {
  readonly host: string;
  readonly port: number;
}

/** What the node's host holds of one client connection. */
export interface ClientConnectionHandle {
  /** This connection's number, unique within its server. */
  readonly id: number;
  /** The far end, `host:port`. */
  readonly remote: string;
  readonly isClosed: boolean;
  /** Requests delivered and not yet ended. */
  readonly requestsInFlight: number;
  /**
   * Queues a copy of a reply frame for the next flush; `endsRequest` (default true) ends one
   * request in flight. False: the connection is closed (now, or because this reply passed
   * the reply queue's bounds: it is cut off with QUEUE_FULL); the reply is dropped, which is
   * not an error. Throws INVALID_ARGUMENT for a frame shorter than 5 bytes or of kind 0,
   * FRAME_TOO_LARGE for one past what the client accepts.
   */
  reply(frame: Uint8Array, endsRequest?: boolean): boolean;
  /** Ends one request in flight that gets no reply of its own. */
  endRequest(): void;
  /** Cuts the connection off: a GOAWAY with `error.code` (default CLOSED), then closed. */
  close(error?: RingraftError): void;
}

/**
 * What a log entry reports. `listening`; `accepted`: a client passed its handshake;
 * `refused`: a handshake was refused (`refusalReason` says why); `closed`: the client closed
 * or the connection broke; `corrupt`: bytes that are not frames; `idle`, `write-stall`: a
 * timeout; `cut-off`: a bound was passed, or the host closed it; `connection-dropped`: past
 * `connectionsMax` and the refusal slack; `listener-error`.
 */
export type ClientPortLogKind = 'listening' | 'accepted' | 'refused' | 'closed' | 'corrupt' | 'idle' | 'write-stall' | 'cut-off' | 'connection-dropped' | 'listener-error' | 'tls-failed';

/** One event of the client port, for its host's log. Compare `kind` and `error.code`, never `message`. */
export interface ClientPortLogEntry {
  readonly level: TcpLogLevel;
  readonly kind: ClientPortLogKind;
  readonly connectionId: number | undefined;
  readonly remote: string | undefined;
  readonly error: RingraftError | undefined;
  readonly refusalReason: ClientRefusalReason | undefined;
  readonly message: string;
}

export interface ClientPortServerOptions {
  /** The cluster's id, `clusterIdOf(token)`: a client naming another is refused. */
  readonly clusterId: bigint;
  /** This node's id (1 to 2^32 - 1, as a leader hint on the wire), announced in the WELCOME. */
  readonly nodeId: number;
  /** An IP address (never a host name) and a port; port 0 takes a free one (see `address`). */
  readonly listen: ClientPortAddress;
  /** Each request frame, in order per connection; `frame` is valid only during the call. A throw here is the host's bug and is not caught. */
  readonly onRequest: (conn: ClientConnectionHandle, frame: Uint8Array) => void;
  /** A connection that passed its handshake ended (its watches can go); `error` undefined when the server closed. */
  readonly onConnectionClosed?: (conn: ClientConnectionHandle, error: RingraftError | undefined) => void;
  readonly onLog?: (entry: ClientPortLogEntry) => void;
  /** See `CLIENT_PORT_SETTINGS`. */
  readonly settings?: ClientPortSettingsInput;
  /**
   * TLS (tls.ts): the node's certificate and key, and the CA client certificates must chain
   * to; with `requireClientCert`, a client without one is refused in the TLS handshake.
   */
  readonly tls?: TlsFiles & { readonly requireClientCert?: boolean };
}

const OPTION_NAMES = { clusterId: 0, nodeId: 0, listen: 0, onRequest: 0, onConnectionClosed: 0, onLog: 0, settings: 0, tls: 0 };
const U64_MAX = (1n << 64n) - 1n;
/** Connections past `connectionsMax` held while they are refused; past these the listener drops them on accept. */
const CONNECTIONS_REFUSING_MAX = 64;
const PONG_FRAME = encodeFrame(FrameType.PONG);
/** The server checks its connections' clocks this many times per shortest timeout. */
const TICK_DIVISOR = 4;

type ServerCloseKind = 'refused' | 'cut-off' | 'closing';

export class ClientPortServer {
  readonly settings: ClientPortSettings;
  readonly clusterId: bigint;
  private readonly connections = new Set<ServerConnection>();
  private readonly ticker: NodeJS.Timeout;
  private nextConnectionId = 1;
  private closing = false;
  private closed: Promise<void> | undefined;

  /** Starts a client port and resolves once it listens. INVALID_ARGUMENT for a bad option, CONNECTION_FAILED for an address it cannot bind. */
  static async start(options: ClientPortServerOptions): Promise<ClientPortServer> {
    checkServerOptions(options);
    const t = options.tls;
    if (t !== undefined && t.certFile === undefined) throw invalidArgument('tls: a client port needs certFile and keyFile');
    const material = t === undefined ? undefined : new TlsMaterial(t);
    const idleMs = resolveClientPortSettings(options.settings, 'settings.').idleTimeoutMs;
    const requireCert = t?.requireClientCert === true;
    const listener = material === undefined ? createServer({ noDelay: true }) : createTlsServer({ ...material.options(), requestCert: requireCert, rejectUnauthorized: requireCert, handshakeTimeout: idleMs, noDelay: true });
    const server = new ClientPortServer(options, listener, material);
    await server.listen(options.listen);
    return server;
  }

  private constructor(
    readonly options: ClientPortServerOptions,
    private readonly server: Server,
    private readonly tls: TlsMaterial | undefined,
  ) {
    this.settings = resolveClientPortSettings(options.settings, 'settings.');
    this.clusterId = options.clusterId;
    const s = this.settings;
    const tickMs = Math.max(1, Math.floor(Math.min(s.writeStallTimeoutMs, s.idleTimeoutMs) / TICK_DIVISOR));
    this.ticker = setInterval(() => this.tick(), tickMs);
    this.ticker.unref();
  }

  /** Where the listener is bound (with the port it took, if given 0). */
  get address(): ClientPortAddress {
    const bound = this.server.address();
    if (bound === null || typeof bound === 'string') throw new ClientPortError('CLOSED', 'the client port is not listening');
    return { host: bound.address, port: bound.port };
  }

  /** Connections open now, in their handshake or past it. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Ends every connection (GOAWAY CLOSED), the listener and every timer. Idempotent; once it resolves no handle is left. */
  close(): Promise<void> {
    if (this.closed !== undefined) return this.closed;
    this.closing = true;
    clearInterval(this.ticker);
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const socketsClosed = [...this.connections].map((conn) => conn.shutDown());
    this.closed = Promise.all([serverClosed, ...socketsClosed]).then(() => undefined);
    return this.closed;
  }

  /** @internal */
  log(level: TcpLogLevel, kind: ClientPortLogKind, message: string, fields: { connectionId?: number; remote?: string; error?: RingraftError; refusalReason?: ClientRefusalReason }): void {
    this.options.onLog?.({ level, kind, connectionId: fields.connectionId, remote: fields.remote, error: fields.error, refusalReason: fields.refusalReason, message });
  }

  /** @internal */
  forget(conn: ServerConnection): void {
    this.connections.delete(conn);
  }

  private async listen(address: ClientPortAddress): Promise<void> {
    const server = this.server;
    server.maxConnections = this.settings.connectionsMax + CONNECTIONS_REFUSING_MAX;
    acceptConnections(server, this.tls !== undefined, (socket) => this.onConnection(socket), (remote, message, cause) => {
      this.log('warn', 'tls-failed', message, { remote, error: new ClientPortError('HANDSHAKE_REFUSED', message, { cause }) });
    });
    try {
      await listenOn(
        server,
        address,
        (remote) => this.log('warn', 'connection-dropped', `dropped a client connection from ${remote}: ${server.maxConnections} are open`, { remote }),
        (error) => this.log('error', 'listener-error', `client port listener failed: ${error.message}`, {}),
      );
    } catch (cause) {
      clearInterval(this.ticker);
      this.closing = true;
      throw new ClientPortError('CONNECTION_FAILED', `could not listen on ${address.host}:${address.port}: ${(cause as Error).message}`, { cause });
    }
    const bound = this.address;
    this.log('info', 'listening', `client port listening on ${bound.host}:${bound.port}`, {});
  }

  private onConnection(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const full = this.connections.size >= this.settings.connectionsMax;
    const conn = new ServerConnection(this, this.nextConnectionId++, socket);
    this.connections.add(conn);
    if (full) conn.refuse('full', `connectionsMax (${this.settings.connectionsMax}) client connections are open`);
  }

  private tick(): void {
    if (this.tls?.refresh(TLS_REFRESH_MS) === true) (this.server as TlsServer).setSecureContext({ ...this.tls.options() });
    const now = nowMs();
    for (const conn of this.connections) conn.tick(now);
  }
}

/** One accepted client connection: its handshake, its requests in flight and its reply queue. */
class ServerConnection implements ClientConnectionHandle {
  readonly remote: string;
  private readonly link: FramedSocket<ServerCloseKind, ClientPortError>;
  private readonly replies: MessageQueue;
  private welcomed = false;
  private inFlight = 0;
  /** The largest reply frame the client accepts, from its HELLO. */
  private replyBytesMax = 0;
  private flushQueued = false;
  private readonly flushTask = (): void => this.flush();

  constructor(
    private readonly server: ClientPortServer,
    readonly id: number,
    private readonly socket: Socket,
  ) {
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const s = server.settings;
    this.replies = new MessageQueue(s.replyQueueCountMax, s.replyQueueBytesMax);
    this.link = new FramedSocket<ServerCloseKind, ClientPortError>(socket, s.frameBytesMax, true, {
      frame: (type, payload) => this.onFrame(type, payload),
      drain: () => this.flush(),
      closed: (kind, error) => this.onClosed(kind, error),
    });
  }

  get isClosed(): boolean {
    return this.link.isClosed;
  }

  get requestsInFlight(): number {
    return this.inFlight;
  }

  reply(frame: Uint8Array, endsRequest = true): boolean {
    if (endsRequest) this.endRequest();
    if (this.link.isClosed) return false;
    if (frame.length < CLIENT_FRAME_HEADER_BYTES || frame[0] === 0) throw invalidArgument(`a reply frame is at least ${CLIENT_FRAME_HEADER_BYTES} bytes with a kind other than 0 (got ${frame.length} bytes, kind ${frame[0]})`);
    if (frame.length > this.replyBytesMax) throw new ClientPortError('FRAME_TOO_LARGE', `a reply of ${frame.length} bytes exceeds the ${this.replyBytesMax} the client accepts`);
    if (!this.replies.tryPush(frame)) {
      const r = this.replies;
      this.cutOff(new ClientPortError('QUEUE_FULL', `the client left ${r.queuedCount} replies (${r.queuedBytes} bytes) unread; bounds ${r.messagesMax} replies, ${r.bytesMax} bytes`));
      return false;
    }
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushTask);
    }
    return true;
  }

  endRequest(): void {
    if (this.inFlight <= 0) fail(`connection ${this.id}: a request ended with none in flight`);
    this.inFlight--;
  }

  close(error: RingraftError = new ClientPortError('CLOSED', 'closed by the server')): void {
    this.cutOff(error);
  }

  /** The server's periodic check: a stalled write or a silent client closes the connection. */
  tick(now: number): void {
    const s = this.server.settings;
    this.link.checkTimeouts(now, s.writeStallTimeoutMs, s.idleTimeoutMs);
  }

  /** Answers a connection with a REFUSAL and ends it. */
  refuse(reason: ClientRefusalReason, detail: string): void {
    const error = new ClientPortError('HANDSHAKE_REFUSED', `refused client ${this.remote} (${reason}): ${detail}`, { refusalReason: reason });
    this.server.log('warn', 'refused', error.message, { connectionId: this.id, remote: this.remote, error, refusalReason: reason });
    this.link.endWith(encodeClientRefusal(reason, detail), 'refused', error, this.server.settings.writeStallTimeoutMs);
  }

  /** The server closes: a GOAWAY CLOSED, then the socket; resolves once it is closed. */
  shutDown(): Promise<void> {
    if (this.welcomed && !this.link.isClosed) this.link.write(encodeGoaway('CLOSED', 'the client port closed'));
    this.link.close('closing', undefined);
    return this.socket.closed ? Promise.resolve() : new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
  }

  private cutOff(error: RingraftError): void {
    if (this.link.isClosed) return;
    this.replies.clear();
    const wrapped = error instanceof ClientPortError ? error : new ClientPortError(error.code, error.message, { cause: error });
    this.link.endWith(encodeGoaway(error.code, error.message), 'cut-off', wrapped, this.server.settings.writeStallTimeoutMs);
  }

  private flush(): void {
    this.flushQueued = false;
    const batchBytesMax = this.server.settings.batchBytesMax;
    while (!this.link.isClosed && !this.link.isBlocked && this.replies.queuedCount > 0) {
      const batch = this.replies.takeBatch(batchBytesMax);
      this.link.write(batch.frame, batch.messages);
    }
  }

  private onFrame(type: FrameType, payload: Uint8Array): boolean {
    if (!this.welcomed) {
      if (type === FrameType.HELLO) return this.onHello(payload);
      this.link.close('corrupt', new ClientPortError('CORRUPT_FRAME', `first frame is ${frameTypeName(type)}, not HELLO`));
      return false;
    }
    if (type === FrameType.BATCH) return this.onBatch(payload);
    if (type === FrameType.PING) {
      this.link.write(PONG_FRAME);
      return true;
    }
    this.link.close('corrupt', new ClientPortError('CORRUPT_FRAME', `unexpected ${frameTypeName(type)} frame from a client`));
    return false;
  }

  private onHello(payload: Uint8Array): boolean {
    const s = this.server.settings;
    const hello = decodeClientHandshake(payload);
    const mismatch = clientHandshakeMismatch(hello, this.server.clusterId, FRAME_BYTES_MIN);
    if (mismatch !== undefined) {
      this.refuse(mismatch.reason, mismatch.detail);
      return false;
    }
    this.welcomed = true;
    this.replyBytesMax = messageBytesMaxOf(Math.min(hello.frameBytesMax, s.frameBytesMax));
    this.link.write(encodeClientHandshake(FrameType.WELCOME, this.server.clusterId, s.frameBytesMax, s.requestsInFlightMax, this.server.options.nodeId));
    this.server.log('info', 'accepted', `accepted client ${this.remote} as connection ${this.id}`, { connectionId: this.id, remote: this.remote });
    return true;
  }

  private onBatch(payload: Uint8Array): boolean {
    const s = this.server.settings;
    const problem = clientBatchProblem(payload, messageBytesMaxOf(s.frameBytesMax));
    if (problem !== undefined) {
      this.link.close('corrupt', new ClientPortError('CORRUPT_FRAME', problem));
      return false;
    }
    forEachBatchMessage(payload, (frame) => {
      if (this.inFlight >= s.requestsInFlightMax) {
        this.cutOff(new ClientPortError('TOO_MANY_REQUESTS', `a request past the ${s.requestsInFlightMax} in flight announced (requestsInFlightMax)`));
        return false;
      }
      this.inFlight++;
      this.server.options.onRequest(this, frame);
      return !this.link.isClosed;
    });
    return !this.link.isClosed;
  }

  private onClosed(kind: ServerCloseKind | SocketCloseKind, error: RingraftError | undefined): void {
    this.server.forget(this);
    this.replies.clear();
    const fields = { connectionId: this.id, remote: this.remote, error };
    const because = error === undefined ? '' : `: ${error.message}`;
    switch (kind) {
      case 'closed':
        this.server.log('info', 'closed', `client connection ${this.id} (${this.remote}) closed${because}`, fields);
        break;
      case 'corrupt':
        this.server.log('error', 'corrupt', `client connection ${this.id} (${this.remote}) sent bytes that are not frames${because}`, fields);
        break;
      case 'idle':
      case 'write-stall':
      case 'cut-off':
        this.server.log('warn', kind, `client connection ${this.id} (${this.remote}) cut off${because}`, fields);
        break;
      case 'refused':
      case 'closing':
        // A refusal is logged where it is decided, with its reason; closing is on purpose.
        break;
    }
    if (this.welcomed) this.server.options.onConnectionClosed?.(this, kind === 'closing' ? undefined : error);
  }
}

function checkServerOptions(options: ClientPortServerOptions): void {
  if (typeof options !== 'object' || options === null) throw invalidArgument('ClientPortServer options must be an object');
  checkKnown(OPTION_NAMES, options);
  checkClusterId(options.clusterId);
  if (!Number.isInteger(options.nodeId) || options.nodeId < 1 || options.nodeId > 0xffff_ffff) throw invalidArgument(`nodeId must be an integer in [1, 2^32), got ${String(options.nodeId)}`);
  checkClientPortAddress(options.listen, 'listen', true);
  if (typeof options.onRequest !== 'function') throw invalidArgument('onRequest must be a function');
  for (const name of ['onConnectionClosed', 'onLog'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw invalidArgument(`${name} must be a function`);
  }
}

/** Refuses a cluster id that is not a u64 other than 0. */
export function checkClusterId(clusterId: unknown): void {
  if (typeof clusterId !== 'bigint' || clusterId <= 0n || clusterId > U64_MAX) {
    throw invalidArgument(`clusterId must be a bigint in [1, 2^64) (clusterIdOf gives one), got ${String(clusterId)}`);
  }
}

/** Refuses an address that is not an IP address and a port (0 only where `portZeroAllowed`, to listen on a free one). */
export function checkClientPortAddress(address: ClientPortAddress | undefined, what: string, portZeroAllowed: boolean): void {
  if (typeof address !== 'object' || address === null) throw invalidArgument(`${what} must be { host, port }`);
  if (typeof address.host !== 'string' || isIP(address.host) === 0) throw invalidArgument(`${what}.host must be an IP address, not a host name, got ${JSON.stringify(address.host)}`);
  const portMin = portZeroAllowed ? 0 : 1;
  if (!Number.isInteger(address.port) || address.port < portMin || address.port > 0xffff) throw invalidArgument(`${what}.port must be an integer in [${portMin}, 65535], got ${String(address.port)}`);
}
