/**
 * The client side of a client port connection (client-port.ts): one TCP connection to one
 * node, carrying request frames out and reply frames back, pipelined. It does not reconnect:
 * the client above it fails over between endpoints, and learns why this one ended from
 * `onClose`, once, with a typed error.
 *
 * `send` copies a request into a bounded queue; one turn's requests leave together, as one
 * BATCH frame per `batchBytesMax`, each written with one call, at the end of the turn (and
 * after 'drain' while the socket pushes back). A full queue refuses the request
 * (QUEUE_FULL), nothing sent. A PING goes out every `keepaliveIntervalMs`; nothing heard for
 * `idleTimeoutMs` (a PONG at least) closes the connection (TIMEOUT).
 *
 * The server's WELCOME announces `requestsInFlightMax`: the client above must keep at most
 * that many requests unanswered (an unwatch counts until its watch's watch-end arrives), or
 * the server cuts it off (TOO_MANY_REQUESTS).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { TlsMaterial, type TlsFiles } from './tls.ts';
import { checkKnown, ErrorCode, invalidArgument, type RingraftError } from '../../base/index.ts';
import { ClientPortError } from './client-port-errors.ts';
import { resolveClientPortSettings, type ClientPortSettings, type ClientPortSettingsInput } from './client-port-settings.ts';
import { checkClientPortAddress, checkClusterId, type ClientPortAddress } from './client-port.ts';
import { CLIENT_FRAME_HEADER_BYTES, clientBatchProblem, clientHandshakeMismatch, decodeClientHandshake, decodeClientRefusal, decodeGoaway, encodeClientHandshake } from './client-handshake.ts';
import { encodeFrame, FRAME_BYTES_MIN, forEachBatchMessage, FrameType, frameTypeName } from './frame.ts';
import { FramedSocket, nowMs, type SocketCloseKind } from './framed-socket.ts';
import { MessageQueue } from './message-queue.ts';
import { messageBytesMaxOf } from './settings.ts';

export interface ClientPortConnectOptions {
  /** The cluster's id, `clusterIdOf(token)`: a server of another cluster is refused, and refuses. */
  readonly clusterId: bigint;
  /** Each reply frame, in the order the server sent them; `frame` is valid only during the call (decodeReply copies). */
  readonly onReply: (frame: Uint8Array) => void;
  /** The connection ended, after `connect` resolved: called once, with why (CLOSED after `close()`). */
  readonly onClose?: (error: RingraftError) => void;
  /** See `CLIENT_PORT_SETTINGS`. */
  readonly settings?: ClientPortSettingsInput;
  /** TLS (tls.ts): the CA the server's certificate must chain to, and a client certificate and key if the server asks for one. The server is addressed by IP: its host name is not checked. */
  readonly tls?: TlsFiles;
}

const OPTION_NAMES = { clusterId: 0, onReply: 0, onClose: 0, settings: 0, tls: 0 };
const PING_FRAME = encodeFrame(FrameType.PING);
const TICK_DIVISOR = 4;

type ClientCloseKind = 'refused-by-server' | 'goaway' | 'closing';

export class ClientPortConnection {
  readonly settings: ClientPortSettings;
  readonly remote: string;
  /** The server's bound on unanswered requests, from its WELCOME. */
  requestsInFlightMax = 0;
  /** The id of the node that answered, from its WELCOME. */
  nodeId = 0;
  /** The largest request `send` takes: what one frame holds under the smaller frame limit of the two sides. */
  messageBytesMax = 0;
  private readonly link: FramedSocket<ClientCloseKind, ClientPortError>;
  private readonly queue: MessageQueue;
  private readonly ticker: NodeJS.Timeout;
  private welcomed = false;
  private closeError: RingraftError | undefined;
  private lastPingMs: number;
  private flushQueued = false;
  private readonly flushTask = (): void => this.flush();
  private readonly handshake: { resolve: () => void; reject: (error: RingraftError) => void };

  /**
   * Connects and completes the handshake. Rejects with HANDSHAKE_REFUSED (`refusalReason`
   * says why), CONNECTION_FAILED, TIMEOUT (nothing for `idleTimeoutMs`) or CORRUPT_FRAME, and
   * with INVALID_ARGUMENT for a bad option or an address that is not an IP.
   */
  static connect(address: ClientPortAddress, options: ClientPortConnectOptions): Promise<ClientPortConnection> {
    try {
      checkConnectOptions(address, options);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    return new Promise((resolve, reject) => {
      const conn: ClientPortConnection = new ClientPortConnection(address, options, { resolve: () => resolve(conn), reject });
    });
  }

  private constructor(
    address: ClientPortAddress,
    private readonly options: ClientPortConnectOptions,
    handshake: { resolve: () => void; reject: (error: RingraftError) => void },
  ) {
    this.settings = resolveClientPortSettings(options.settings, 'settings.');
    this.remote = `${address.host}:${address.port}`;
    this.handshake = handshake;
    const s = this.settings;
    this.queue = new MessageQueue(s.sendQueueCountMax, s.sendQueueBytesMax);
    const tls = options.tls === undefined ? undefined : new TlsMaterial(options.tls).options();
    const socket: Socket =
      tls === undefined ? netConnect({ host: address.host, port: address.port, noDelay: true }) : tlsConnect({ host: address.host, port: address.port, ...tls, checkServerIdentity: () => undefined });
    socket.setNoDelay(true);
    this.link = new FramedSocket<ClientCloseKind, ClientPortError>(socket, s.frameBytesMax, false, {
      frame: (type, payload) => this.onFrame(type, payload),
      drain: () => this.flush(),
      closed: (kind, error) => this.onClosed(kind, error),
    });
    this.link.write(encodeClientHandshake(FrameType.HELLO, options.clusterId, s.frameBytesMax, 0));
    this.lastPingMs = nowMs();
    const tickMs = Math.max(1, Math.floor(Math.min(s.keepaliveIntervalMs, s.idleTimeoutMs, s.writeStallTimeoutMs) / TICK_DIVISOR));
    this.ticker = setInterval(() => this.tick(), tickMs);
    this.ticker.unref();
  }

  get isClosed(): boolean {
    return this.link.isClosed;
  }

  /** Requests queued and not yet handed to the socket. */
  get queuedCount(): number {
    return this.queue.queuedCount;
  }

  /**
   * Queues a copy of a request frame for this turn's flush. Throws CLOSED once closed (its
   * cause why), QUEUE_FULL when the send queue is full, FRAME_TOO_LARGE past
   * `messageBytesMax`, INVALID_ARGUMENT for a frame shorter than 5 bytes or of kind 0.
   */
  send(frame: Uint8Array): void {
    if (this.link.isClosed) throw new ClientPortError('CLOSED', `the connection to ${this.remote} is closed`, { cause: this.closeError });
    if (frame.length < CLIENT_FRAME_HEADER_BYTES || frame[0] === 0) throw invalidArgument(`a request frame is at least ${CLIENT_FRAME_HEADER_BYTES} bytes with a kind other than 0 (got ${frame.length} bytes, kind ${frame[0]})`);
    if (frame.length > this.messageBytesMax) throw new ClientPortError('FRAME_TOO_LARGE', `a request of ${frame.length} bytes exceeds the ${this.messageBytesMax} a frame holds`);
    if (!this.queue.tryPush(frame)) {
      throw new ClientPortError('QUEUE_FULL', `the send queue holds ${this.queue.queuedCount} requests (${this.queue.queuedBytes} bytes); bounds ${this.queue.messagesMax}, ${this.queue.bytesMax} bytes`);
    }
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushTask);
    }
  }

  /** Closes the connection and its timer, dropping what is queued; `onClose` gets CLOSED. Resolves once the socket is closed. */
  close(): Promise<void> {
    this.link.close('closing', new ClientPortError('CLOSED', 'closed by the client'));
    const socket = this.link.socket;
    return socket.closed ? Promise.resolve() : new Promise<void>((resolve) => socket.once('close', () => resolve()));
  }

  private tick(): void {
    const now = nowMs();
    const s = this.settings;
    if (this.link.checkTimeouts(now, s.writeStallTimeoutMs, s.idleTimeoutMs)) return;
    if (this.welcomed && now - this.lastPingMs >= s.keepaliveIntervalMs) {
      this.lastPingMs = now;
      this.link.write(PING_FRAME);
    }
  }

  private flush(): void {
    this.flushQueued = false;
    if (!this.welcomed) return;
    while (!this.link.isClosed && !this.link.isBlocked && this.queue.queuedCount > 0) {
      const batch = this.queue.takeBatch(this.settings.batchBytesMax);
      this.link.write(batch.frame, batch.messages);
    }
  }

  private onFrame(type: FrameType, payload: Uint8Array): boolean {
    if (!this.welcomed) {
      if (type === FrameType.WELCOME) return this.onWelcome(payload);
      if (type === FrameType.REFUSAL) {
        const { reason, detail } = decodeClientRefusal(payload);
        this.link.close('refused-by-server', new ClientPortError('HANDSHAKE_REFUSED', `${this.remote} refused this client (${reason}): ${detail}`, { refusalReason: reason }));
        return false;
      }
    } else if (type === FrameType.BATCH) {
      return this.onBatch(payload);
    } else if (type === FrameType.PONG) {
      return true;
    } else if (type === FrameType.GOAWAY) {
      const { code, detail } = decodeGoaway(payload);
      this.link.close('goaway', new ClientPortError(code ?? ErrorCode.CONNECTION_FAILED, `${this.remote} cut this client off (${code ?? 'unknown code'}): ${detail}`));
      return false;
    }
    this.link.close('corrupt', new ClientPortError('CORRUPT_FRAME', `unexpected ${frameTypeName(type)} frame from the server${this.welcomed ? '' : ' before its WELCOME'}`));
    return false;
  }

  private onWelcome(payload: Uint8Array): boolean {
    const welcome = decodeClientHandshake(payload);
    const mismatch = clientHandshakeMismatch(welcome, this.options.clusterId, FRAME_BYTES_MIN);
    if (mismatch !== undefined || welcome.requestsInFlightMax === 0 || welcome.nodeId === 0) {
      const why = mismatch !== undefined ? `${mismatch.reason}: ${mismatch.detail}` : welcome.nodeId === 0 ? 'no node id' : 'no requests in flight allowed';
      this.link.close('refused-by-server', new ClientPortError('HANDSHAKE_REFUSED', `${this.remote} answered with a WELCOME this client refuses (${why})`, { refusalReason: mismatch?.reason ?? 'version' }));
      return false;
    }
    this.welcomed = true;
    this.requestsInFlightMax = welcome.requestsInFlightMax;
    this.nodeId = welcome.nodeId;
    this.messageBytesMax = messageBytesMaxOf(Math.min(welcome.frameBytesMax, this.settings.frameBytesMax));
    this.handshake.resolve();
    return true;
  }

  private onBatch(payload: Uint8Array): boolean {
    const problem = clientBatchProblem(payload, messageBytesMaxOf(this.settings.frameBytesMax));
    if (problem !== undefined) {
      this.link.close('corrupt', new ClientPortError('CORRUPT_FRAME', problem));
      return false;
    }
    forEachBatchMessage(payload, (frame) => {
      this.options.onReply(frame);
      return !this.link.isClosed;
    });
    return !this.link.isClosed;
  }

  private onClosed(_kind: ClientCloseKind | SocketCloseKind, error: RingraftError | undefined): void {
    clearInterval(this.ticker);
    this.queue.clear();
    const reported = error ?? new ClientPortError('CLOSED', 'closed');
    this.closeError = reported;
    if (!this.welcomed) this.handshake.reject(reported);
    else this.options.onClose?.(reported);
  }
}

function checkConnectOptions(address: ClientPortAddress, options: ClientPortConnectOptions): void {
  checkClientPortAddress(address, 'address', false);
  if (typeof options !== 'object' || options === null) throw invalidArgument('ClientPortConnection options must be an object');
  checkKnown(OPTION_NAMES, options);
  checkClusterId(options.clusterId);
  if (typeof options.onReply !== 'function') throw invalidArgument('onReply must be a function');
  if (options.onClose !== undefined && typeof options.onClose !== 'function') throw invalidArgument('onClose must be a function');
}
