/**
 * The receiving side of one accepted connection. Its first frame must be a HELLO, which is
 * checked against this node (handshake.ts); a mismatch is answered with a REFUSAL, logged
 * with HANDSHAKE_REFUSED, and the connection is ended. An accepted connection is answered
 * with a WELCOME and then carries BATCH frames, whose messages go to `onMessage` in order,
 * and PINGs, each answered with a PONG. Anything else closes it (CORRUPT_FRAME). A newer
 * connection from the same peer and lane replaces an older one (the peer redialled: the old
 * one is dead or soon will be).
 */
import type { Socket } from 'node:net';
import { TLSSocket, type PeerCertificate } from 'node:tls';
import { certificateNamesNode, nodeCertificateName } from './tls.ts';
import { logClose, type LogFields, type TransportContext } from './context.ts';
import { TcpTransportError } from './errors.ts';
import { batchProblem, encodeFrame, forEachBatchMessage, FrameType, frameTypeName } from './frame.ts';
import { FramedSocket, type CloseKind } from './framed-socket.ts';
import { decodeHandshake, describeMismatch, encodeHandshake, encodeRefusal, handshakeMismatch, laneOfWire, STOPPING_FRAME, type TcpLane } from './handshake.ts';
import type { LaneCounters } from './stats.ts';

const PONG_FRAME = encodeFrame(FrameType.PONG);

/** What an accepted connection needs from its transport beyond the shared context. */
export interface InboundHost {
  readonly ctx: TransportContext;
  acceptPeer(peerId: number): boolean;
  onMessage(from: number, bytes: Uint8Array, lane: TcpLane): void;
  /** The counters of a peer's lane if the peer is known here. */
  countersOf(peerId: number, lane: TcpLane): LaneCounters | undefined;
  /** Files an accepted connection under its peer and lane, replacing any older one; returns that lane's counters. */
  register(link: InboundLink): LaneCounters;
  /** Forgets a connection that ended. */
  unregister(link: InboundLink): void;
}

export class InboundLink {
  /** The peer and lane, once its HELLO is accepted. */
  peerId: number | undefined;
  lane: TcpLane | undefined;
  readonly link: FramedSocket;
  private counters: LaneCounters | undefined;
  private readonly remote: string;
  /** The dialler's certificate, over TLS. */
  private readonly tlsPeer: PeerCertificate | undefined;

  constructor(
    private readonly host: InboundHost,
    socket: Socket,
  ) {
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.tlsPeer = socket instanceof TLSSocket ? socket.getPeerCertificate() : undefined;
    this.link = new FramedSocket(socket, host.ctx.settings.frameBytesMax, true, {
      frame: (type, payload) => this.onFrame(type, payload),
      drain: () => {},
      closed: (kind, error) => this.onClosed(kind, error),
    });
  }

  /** The transport's periodic check: a write stalled or a dialler gone silent closes it. */
  tick(now: number): void {
    this.link.checkTimeouts(now, this.host.ctx.settings.writeStallTimeoutMs, this.host.ctx.settings.idleTimeoutMs);
  }

  close(kind: 'replaced' | 'removed' | 'closing'): void {
    // Stopping: the dialler is told, so that it does not take this for a fault.
    if (kind === 'closing' && this.counters !== undefined) this.link.write(STOPPING_FRAME);
    this.link.close(kind, undefined);
  }

  private fields(): LogFields {
    return { peerId: this.peerId, lane: this.lane, direction: 'in', remote: this.remote };
  }

  private onFrame(type: FrameType, payload: Uint8Array): boolean {
    const counters = this.counters;
    if (counters === undefined) {
      if (type === FrameType.HELLO) return this.onHello(payload);
      this.link.close('corrupt', new TcpTransportError('CORRUPT_FRAME', `first frame is ${frameTypeName(type)}, not HELLO`));
      return false;
    }
    counters.framesReceived++;
    if (type === FrameType.BATCH) {
      const peerId = this.peerId!;
      const lane = this.lane!;
      // Checked here rather than thrown from the delivery below: a throw out of onMessage is the
      // caller's, and must not pass for a corrupt frame.
      const problem = batchProblem(payload);
      if (problem !== undefined) {
        this.link.close('corrupt', new TcpTransportError('CORRUPT_FRAME', problem));
        return false;
      }
      forEachBatchMessage(payload, (message) => {
        counters.messagesReceived++;
        counters.bytesReceived += message.length;
        this.host.onMessage(peerId, message, lane);
        return !this.link.isClosed;
      });
      return !this.link.isClosed;
    }
    if (type === FrameType.PING) {
      this.link.write(PONG_FRAME);
      return true;
    }
    if (type === FrameType.GOAWAY) {
      this.link.close('peer-stopping', undefined);
      return false;
    }
    this.link.close('corrupt', new TcpTransportError('CORRUPT_FRAME', `unexpected ${frameTypeName(type)} frame from a dialler`));
    return false;
  }

  private onHello(payload: Uint8Array): boolean {
    const ctx = this.host.ctx;
    const hello = decodeHandshake(payload);
    const expected = { clusterId: ctx.clusterId, receiverId: ctx.nodeId, lane: undefined, acceptSender: (id: number) => this.host.acceptPeer(id) };
    // Over TLS the dialler's certificate must name the node its HELLO says it is.
    const reason = handshakeMismatch(hello, expected) ?? (this.tlsPeer !== undefined && !certificateNamesNode(this.tlsPeer, hello.senderId) ? 'identity' : undefined);
    const lane = laneOfWire(hello.laneWire);
    if (reason !== undefined) {
      const detail = reason === 'identity' ? `its certificate (CN ${String(this.tlsPeer?.subject?.CN)}) does not name ${nodeCertificateName(hello.senderId)}, the node its HELLO claims` : describeMismatch(reason, hello, expected);
      ctx.counters.connectionsRefused++;
      if (lane !== undefined) {
        const known = this.host.countersOf(hello.senderId, lane);
        if (known !== undefined) known.refusalsSent++;
      }
      const error = new TcpTransportError('HANDSHAKE_REFUSED', `refused a connection from ${this.remote} (${reason}): ${detail}`);
      ctx.log('warn', 'refused', error.message, { ...this.fields(), peerId: hello.senderId > 0 ? hello.senderId : undefined, lane, error, refusalReason: reason });
      this.link.endWith(encodeRefusal(reason, detail), 'refused', error, ctx.settings.idleTimeoutMs);
      return false;
    }
    this.peerId = hello.senderId;
    this.lane = lane!;
    const counters = this.host.register(this);
    this.counters = counters;
    counters.accepts++;
    counters.framesReceived++;
    this.link.write(encodeHandshake(FrameType.WELCOME, this.lane, ctx.clusterId, ctx.nodeId, this.peerId));
    ctx.log('info', 'accepted', `accepted node ${this.peerId} (${this.lane}, ${this.remote})`, this.fields());
    return true;
  }

  private onClosed(kind: CloseKind, error: TcpTransportError | undefined): void {
    this.host.unregister(this);
    logClose(this.host.ctx, kind, error, true, this.fields());
  }
}
