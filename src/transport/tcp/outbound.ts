/**
 * The sending side of one lane to one peer: its bounded queue, and the one connection this
 * transport dials to carry it.
 *
 * ```
 *          send: dial                  WELCOME
 *   idle ─────────────► connecting ─────────────► open ──┐
 *    ▲                      │                      │     │ flush: a batch frame per write,
 *    │                      │ REFUSAL, bad         │     │ until the socket pushes back
 *    │ timer fired,         │ WELCOME, failure,    │ ◄───┘
 *    │ nothing queued       │ timeout              │ failure, stall, silence, bad frame
 *    │                      ▼                      │
 *    └──────────────── backoff ◄───────────────────┘
 *                         │ timer fired, messages queued: dial
 *                         └──────────────────────► connecting
 * ```
 *
 * A connection is dialled when there is something to send and none is up or on its way (a
 * lane with nothing to send is not redialled until it has). The dialler writes its HELLO at
 * once and sends nothing else until the WELCOME arrives (a refused connection carries no
 * messages), then flushes. Each flush takes queued messages into one BATCH frame of at most
 * `batchBytesMax` and writes it with one call; it goes on while the socket takes writes and
 * stops when `write` pushes back, until 'drain'. While stopped, the queue fills and then
 * drops. A connection that ends for any reason is redialled after a jittered delay that
 * doubles with each failure in a row, from `redialBackoffMsMin` to `redialBackoffMsMax`; a
 * connection proves itself, and clears the failures, when a keepalive is answered (a
 * listener that accepts and then stalls does not). Messages still queued when a connection
 * ends stay queued for the next one; those in frames the socket had not yet handed to the
 * kernel are lost and counted in `sendFailures` (what the kernel had taken may be lost too,
 * unseen: that is the network's loss).
 */
import { connect as tlsConnect } from 'node:tls';
import { certificateNamesNode, nodeCertificateName } from './tls.ts';
import { connect } from 'node:net';
import type { LaneCounters } from './stats.ts';
import { logClose, type LogFields, type TransportContext } from './context.ts';
import { TcpTransportError } from './errors.ts';
import { encodeFrame, FrameType, frameTypeName } from './frame.ts';
import { FramedSocket, type CloseKind, nowMs } from './framed-socket.ts';
import { decodeHandshake, decodeRefusal, describeMismatch, encodeHandshake, handshakeMismatch, STOPPING_FRAME, type TcpLane } from './handshake.ts';
import { MessageQueue } from './message-queue.ts';

/** Where a peer listens: an IP address (v4 or v6, never a host name) and a port. */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

const PING_FRAME = encodeFrame(FrameType.PING);

/**
 * The delay before the redial that follows `failures` failures in a row (1 or more): the
 * ceiling min(maxMs, minMs · 2^(failures − 1)), and a delay drawn evenly from its upper half,
 * so that peers that lost each other at once do not redial in step.
 */
export function redialDelayMs(failures: number, minMs: number, maxMs: number, random: () => number): number {
  const ceilingMs = Math.min(maxMs, minMs * 2 ** Math.min(Math.max(failures, 1) - 1, 30));
  return Math.max(1, Math.round(ceilingMs / 2 + random() * (ceilingMs / 2)));
}

type OutboundState = 'idle' | 'backoff' | 'connecting' | 'open';

export class OutboundLane {
  readonly queue: MessageQueue;
  private state: OutboundState = 'idle';
  private link: FramedSocket | undefined;
  private backoffTimer: NodeJS.Timeout | undefined;
  /** Connections in a row that ended before a keepalive was answered. */
  private failures = 0;
  private lastPingMs = 0;
  private flushQueued = false;
  private stopped = false;
  /** The peer said it is stopping (a GOAWAY): failed dials are logged at info until one succeeds. */
  private peerStopping = false;
  private readonly flushTask = (): void => this.flush();

  constructor(
    private readonly ctx: TransportContext,
    readonly peerId: number,
    readonly lane: TcpLane,
    private address: PeerAddress,
    readonly counters: LaneCounters,
  ) {
    this.queue = new MessageQueue(ctx.settings.queueMessagesMax, ctx.settings.queueBytesMax);
  }

  /** Whether the dialled connection is up and accepted. */
  get isConnected(): boolean {
    return this.state === 'open';
  }

  /**
   * Queues a copy of `message` for the peer and makes sure it will go: a flush at the end of
   * this turn (so that one turn's messages share a write), or a dial. False: the queue was
   * full and the message was dropped (and counted).
   */
  enqueue(message: Uint8Array): boolean {
    if (!this.queue.tryPush(message)) {
      this.counters.messagesDropped++;
      this.counters.bytesDropped += message.length;
      return false;
    }
    if (this.state === 'open') this.flushSoon();
    else if (this.state === 'idle') this.dial();
    return true;
  }

  /** Points the lane at a new address: any connection is closed, and the next message dials the new one at once. */
  setAddress(address: PeerAddress): void {
    if (address.host === this.address.host && address.port === this.address.port) return;
    this.address = address;
    this.link?.close('removed', undefined);
    clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    this.failures = 0;
    this.state = 'idle';
    if (this.queue.queuedCount > 0) this.dial();
  }

  /** Closes the connection and the timer for good and drops what is queued (the peer was removed, or the transport closes). */
  stop(kind: 'removed' | 'closing'): void {
    this.stopped = true;
    clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    // Stopping: the peer is told, so that it does not take this for a fault.
    if (kind === 'closing' && this.state === 'open') this.link?.write(STOPPING_FRAME);
    this.link?.close(kind, undefined);
    this.queue.clear();
    this.state = 'idle';
  }

  /** The transport's periodic check: timeouts, and a keepalive when one is due. */
  tick(now: number): void {
    const link = this.link;
    if (link === undefined || link.checkTimeouts(now, this.ctx.settings.writeStallTimeoutMs, this.ctx.settings.idleTimeoutMs)) return;
    if (this.state === 'open' && !link.isBlocked && now - this.lastPingMs >= this.ctx.settings.keepaliveIntervalMs) this.ping(link, now);
  }

  /** Writes queued messages, a batch frame per write, until the queue is empty or the socket pushes back. */
  flush(): void {
    this.flushQueued = false;
    const link = this.link;
    if (this.state !== 'open' || link === undefined) return;
    while (this.queue.queuedCount > 0 && !link.isBlocked && !link.isClosed) {
      const batch = this.queue.takeBatch(this.ctx.settings.batchBytesMax);
      this.counters.messagesSent += batch.messages;
      this.counters.bytesSent += batch.messageBytes;
      link.write(batch.frame, batch.messages);
    }
  }

  private flushSoon(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(this.flushTask);
  }

  private fields(): LogFields {
    return { peerId: this.peerId, lane: this.lane, direction: 'out', remote: `${this.address.host}:${this.address.port}` };
  }

  private dial(): void {
    this.state = 'connecting';
    const tls = this.ctx.tls?.();
    const socket =
      tls === undefined
        ? connect({ host: this.address.host, port: this.address.port, noDelay: true })
        : tlsConnect({
            host: this.address.host,
            port: this.address.port,
            ...tls,
            // Peers are dialled by IP: the acceptor's certificate must name the node dialled.
            checkServerIdentity: (_host, cert) => (certificateNamesNode(cert, this.peerId) ? undefined : new Error(`the certificate of ${this.address.host}:${this.address.port} does not name ${nodeCertificateName(this.peerId)}`)),
          });
    if (tls !== undefined) socket.setNoDelay(true);
    this.ctx.trackSocket(socket);
    const link: FramedSocket = new FramedSocket(socket, this.ctx.settings.frameBytesMax, false, {
      frame: (type, payload) => this.onFrame(link, type, payload),
      drain: () => this.flush(),
      closed: (kind, error) => this.onClosed(link, kind, error),
    });
    this.link = link;
    link.write(encodeHandshake(FrameType.HELLO, this.lane, this.ctx.clusterId, this.ctx.nodeId, this.peerId));
  }

  private ping(link: FramedSocket, now: number): void {
    link.write(PING_FRAME);
    this.lastPingMs = now;
  }

  private onFrame(link: FramedSocket, type: FrameType, payload: Uint8Array): boolean {
    if (link !== this.link) return false;
    this.counters.framesReceived++;
    if (this.state === 'connecting' && type === FrameType.WELCOME) return this.onWelcome(link, payload);
    if (this.state === 'connecting' && type === FrameType.REFUSAL) return this.onRefusal(link, payload);
    if (this.state === 'open' && type === FrameType.PONG) {
      this.failures = 0;
      return true;
    }
    if (this.state === 'open' && type === FrameType.GOAWAY) {
      this.peerStopping = true;
      link.close('peer-stopping', undefined);
      return false;
    }
    const when = this.state === 'open' ? 'after the handshake' : 'before the handshake reply';
    link.close('corrupt', new TcpTransportError('CORRUPT_FRAME', `unexpected ${frameTypeName(type)} frame from the acceptor ${when}`));
    return false;
  }

  private onWelcome(link: FramedSocket, payload: Uint8Array): boolean {
    const expected = { clusterId: this.ctx.clusterId, receiverId: this.ctx.nodeId, lane: this.lane, acceptSender: (id: number) => id === this.peerId };
    const welcome = decodeHandshake(payload);
    const reason = handshakeMismatch(welcome, expected);
    if (reason !== undefined) {
      this.counters.refusalsSent++;
      const error = new TcpTransportError('HANDSHAKE_REFUSED', `the listener at ${this.address.host}:${this.address.port} is not node ${this.peerId} of this cluster: ${describeMismatch(reason, welcome, expected)}`);
      this.ctx.log('warn', 'refused', error.message, { ...this.fields(), error, refusalReason: reason });
      link.close('refused', error);
      return false;
    }
    this.state = 'open';
    this.peerStopping = false;
    this.counters.connects++;
    this.ctx.log('info', 'connected', `connected to node ${this.peerId} (${this.lane}, ${this.address.host}:${this.address.port})`, this.fields());
    // The first keepalive goes at once: its answer is what proves the connection.
    this.ping(link, nowMs());
    this.flush();
    return !link.isClosed;
  }

  private onRefusal(link: FramedSocket, payload: Uint8Array): boolean {
    const refusal = decodeRefusal(payload);
    this.counters.refusalsReceived++;
    const error = new TcpTransportError('HANDSHAKE_REFUSED', `node ${this.peerId} refused this node (${refusal.reason}): ${refusal.detail}`);
    this.ctx.log('warn', 'refused-by-peer', error.message, { ...this.fields(), error, refusalReason: refusal.reason });
    link.close('refused-by-peer', error);
    return false;
  }

  private onClosed(link: FramedSocket, kind: CloseKind, error: TcpTransportError | undefined): void {
    if (link !== this.link) return;
    const wasOpen = this.state === 'open';
    this.link = undefined;
    this.state = 'idle';
    this.counters.sendFailures += link.unwrittenMessages;
    if (this.peerStopping && kind === 'closed' && !link.connected) {
      this.ctx.log('info', 'dial-failed', `dial to node ${this.peerId} (${this.lane}, ${this.address.host}:${this.address.port}) failed while it is stopped${error === undefined ? '' : `: ${error.message}`}`, { ...this.fields(), error });
    } else {
      logClose(this.ctx, kind, error, link.connected, this.fields());
    }
    if (wasOpen) this.ctx.markUnreachable(this.peerId);
    if (this.stopped || this.ctx.isClosing() || kind === 'removed' || kind === 'closing') return;
    this.failures++;
    this.scheduleRedial();
  }

  private scheduleRedial(): void {
    const s = this.ctx.settings;
    const delayMs = redialDelayMs(this.failures, s.redialBackoffMsMin, s.redialBackoffMsMax, Math.random);
    this.state = 'backoff';
    this.ctx.log('info', 'redial', `next dial to node ${this.peerId} (${this.lane}) in ${delayMs} ms, after ${this.failures} failed connection(s) in a row`, { ...this.fields(), delayMs });
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      this.state = 'idle';
      if (this.queue.queuedCount > 0) this.dial();
    }, delayMs);
    this.backoffTimer.unref();
  }
}
