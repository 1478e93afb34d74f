/**
 * Between a node server's client connections and its node: every connection shares the
 * node's one client link (a request ring and a reply ring), and a follower forwards what
 * only the leader can answer.
 *
 * **Ids.** Each request's u32 id is replaced by one of this process's own (unique among those
 * in flight), and each reply's by the client's again, in place in the frame; `pending` maps
 * one to the other. A reply that ends its request (write, read, error, watch-end) ends it on
 * the connection; a watch's id lives until its watch-end; an unwatch ends at once
 * (transport/tcp/client-port.ts says why). A connection that closes has its watches ended on
 * the node and its pending replies forgotten.
 *
 * **Bounds.** When the requests waiting for room in the node's ring pass
 * {@link REQUEST_QUEUE_BYTES_MAX}, a new request is answered UNAVAILABLE at once, not queued:
 * a client's, and one a follower forwarded here alike.
 *
 * **Forwarding.** A follower that knows its leader sends a client's write, linearizable or
 * lease read (of a key or a range) there over the peer transport (the append lane, tagged: frames.ts), and
 * hands the leader's reply back, so a client connected to any node is served; the first
 * request forwarded to a leader on a connection is preceded by a `leader` notice naming it,
 * so that a client that can reach the leader goes straight there. Stale reads,
 * watches and admin commands stay on the node they reach. When the transport may have lost
 * what went to the leader, those requests fail with NOT_LEADER (a write `proposed`), and the
 * client retries.
 *
 * ```
 *   client ──request──► follower ──FORWARD_REQUEST (its forward id)──► leader ──► leader's node
 *   client ◄──reply──── follower ◄──FORWARD_REPLY (that id)─────────── leader ◄── its reply ring
 * ```
 */

import { ErrorCode, errorCodeFromWire, errorCodeWire, RingraftError } from '../base/index.ts';
import { decodeRequest, ERROR_REPLY_BYTES, isForwardedToLeader, REPLY_KIND, REQUEST_HEADER_BYTES, REQUEST_KIND } from '../runtime/index.ts';
import type { ClientConnectionHandle, RingConsumer, TcpLane } from '../transport/index.ts';
import { errorFrame, FORWARD_HEADER_BYTES, FORWARD_REPLY, FORWARD_REQUEST, forwardFrame, keepCopy, NOT_LEADER_WIRE, replyFrame } from './frames.ts';
import type { Logger } from './log.ts';

/** Bytes of client requests waiting for room in the node's ring; past them new requests are answered UNAVAILABLE. */
export const REQUEST_QUEUE_BYTES_MAX = 64 << 20;

/** What the bridge needs of its node server. */
export interface ClientBridgeHost {
  readonly nodeId: number;
  readonly log: Logger;
  /** Whether the server is shutting down: new requests are answered NODE_DOWN. */
  isDraining(): boolean;
  /** Bytes of requests waiting for room in the node's ring. */
  queuedToNodeBytes(): number;
  /** Queues a client-protocol frame (copied) for the node's ring and wakes the pump. */
  toNode(frame: Uint8Array): void;
  /** Whether `id` is a peer this server has rings for. */
  isPeer(id: number): boolean;
  /** Hands bytes to the peer transport; false when they were not queued. */
  sendToPeer(id: number, bytes: Uint8Array, lane: TcpLane): boolean;
  /** Runs an admin command (admin.ts) and returns its answer. */
  admin(body: string): Promise<string>;
}

/**
 * One request in flight on the node, under this process's id: a client's, or one a follower
 * forwarded here (answered back to that follower under its own id).
 */
type PendingRequest =
  | { readonly from: 'client'; readonly conn: ClientConnectionHandle; readonly clientRequestId: number }
  | { readonly from: 'peer'; readonly peer: number; readonly originId: number };

/** A request this node forwarded to its leader, under this process's forward id. */
interface ForwardedRequest {
  readonly conn: ClientConnectionHandle;
  readonly clientRequestId: number;
  readonly peer: number;
  readonly write: boolean;
}

/** What this process keeps of one client connection. */
interface ConnectionState {
  /** This process's ids of the connection's requests in flight on this node. */
  readonly pending: Set<number>;
  /** The forward ids of the connection's requests in flight at the leader. */
  readonly forwarded: Set<number>;
  /** The connection's open watches: its id of each, and this process's. */
  readonly watches: Map<number, number>;
  /** The leader this connection was last told of (a `leader` notice); 0: none. */
  leaderTold: number;
}

export class ClientBridge {
  private readonly pending = new Map<number, PendingRequest>();
  private readonly forwarded = new Map<number, ForwardedRequest>();
  private readonly connections = new Map<ClientConnectionHandle, ConnectionState>();
  private readonly replyView: DataView;
  private requestIdNext = 1;
  private forwardIdNext = 1;
  /** The leader as this node last heard (its role changes, NOT_LEADER hints); 0: unknown. */
  knownLeader = 0;
  /** Client requests answered UNAVAILABLE because the requests waiting for the node passed their bound. */
  requestsShed = 0;
  /** Client requests this node forwarded to its leader. */
  requestsForwarded = 0;
  /** Error replies sent to clients, by code. */
  readonly errorReplies: Record<string, number> = {};

  constructor(
    private readonly host: ClientBridgeHost,
    private readonly replies: RingConsumer,
    replyRing: SharedArrayBuffer,
  ) {
    this.replyView = new DataView(replyRing);
  }

  /** Whether the node has replies waiting in its ring. */
  hasReplies(): boolean {
    return this.replies.hasData();
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  get requestsInFlight(): number {
    return this.pending.size;
  }

  /** Requests still owed a reply, watches aside: what a shutdown waits for. */
  requestsAwaited(): number {
    let watches = 0;
    for (const state of this.connections.values()) watches += state.watches.size;
    return this.pending.size - watches + this.forwarded.size;
  }

  // ─── From clients ───────────────────────────────────────────────────────────────

  onRequest(conn: ClientConnectionHandle, frame: Uint8Array): void {
    let state = this.connections.get(conn);
    if (state === undefined) {
      state = { pending: new Set(), forwarded: new Set(), watches: new Map(), leaderTold: 0 };
      this.connections.set(conn, state);
    }
    const kind = frame[0]!;
    const view = new DataView(frame.buffer, frame.byteOffset, frame.length);
    const clientRequestId = view.getUint32(1, true);
    if (kind === REQUEST_KIND.unwatch) {
      // Ended now, before the watch-end it causes (client-port.ts).
      conn.endRequest();
      const id = state.watches.get(clientRequestId);
      if (id === undefined) return;
      view.setUint32(1, id, true);
      this.host.toNode(frame);
      return;
    }
    if (kind === REQUEST_KIND.admin) {
      this.admin(conn, frame, clientRequestId);
      return;
    }
    const refusal = this.refusal();
    if (refusal !== undefined) {
      this.answerError(conn, clientRequestId, kind === REQUEST_KIND.watch, refusal);
      return;
    }
    if (this.forward(conn, state, frame, clientRequestId)) return;
    const id = this.nextRequestId();
    this.pending.set(id, { from: 'client', conn, clientRequestId });
    state.pending.add(id);
    if (kind === REQUEST_KIND.watch) state.watches.set(clientRequestId, id);
    view.setUint32(1, id, true);
    this.host.toNode(frame);
  }

  /** Why a new request is answered at once rather than queued for the node, if it is. */
  private refusal(): ErrorCode | undefined {
    if (this.host.isDraining()) return ErrorCode.NODE_DOWN;
    if (this.host.queuedToNodeBytes() > REQUEST_QUEUE_BYTES_MAX) {
      this.requestsShed++;
      return ErrorCode.UNAVAILABLE;
    }
    return undefined;
  }

  /** Answers an admin request here (admin.ts), not through the node's ring. */
  private admin(conn: ClientConnectionHandle, frame: Uint8Array, requestId: number): void {
    let body: string;
    try {
      const req = decodeRequest(frame);
      body = (req as { body: string }).body;
    } catch (error) {
      if (!(error instanceof RingraftError)) throw error;
      this.answerError(conn, requestId, false, ErrorCode.INVALID_ARGUMENT);
      return;
    }
    this.host.admin(body).then(
      (answer) => conn.reply(replyFrame({ kind: 'admin', requestId, body: answer })),
      (error: unknown) => {
        if (!(error instanceof RingraftError)) throw error;
        this.host.log.log('info', 'admin-refused', `admin command refused: ${error.message}`, { connection: conn.id, error });
        this.answerError(conn, requestId, false, error.code);
      },
    );
  }

  /** Answers a request here, without the node: an error, or a watch-end for a watch. */
  private answerError(conn: ClientConnectionHandle, requestId: number, watch: boolean, code: ErrorCode): void {
    if (!watch) this.countError(errorCodeWire(code));
    conn.reply(errorFrame(requestId, code, { watch }));
  }

  onConnectionClosed(conn: ClientConnectionHandle): void {
    const state = this.connections.get(conn);
    if (state === undefined) return;
    this.connections.delete(conn);
    for (const id of state.pending) this.pending.delete(id);
    for (const id of state.forwarded) this.forwarded.delete(id);
    // Its watches end on the node too (their watch-ends find no one and are dropped).
    for (const id of state.watches.values()) {
      const frame = new Uint8Array(5);
      frame[0] = REQUEST_KIND.unwatch;
      new DataView(frame.buffer).setUint32(1, id, true);
      this.host.toNode(frame);
    }
  }

  // ─── Forwarding to the leader ───────────────────────────────────────────────────

  /**
   * Sends a client's write or linearizable or lease read to the leader this node knows of,
   * when that is another node. Returns false when the request is for this node after all (it
   * leads, knows no leader, the request is not one to forward, or it cannot be sent).
   */
  private forward(conn: ClientConnectionHandle, state: ConnectionState, frame: Uint8Array, clientRequestId: number): boolean {
    const kind = frame[0];
    const leader = this.knownLeader;
    if (leader === 0 || leader === this.host.nodeId || !this.host.isPeer(leader)) return false;
    if (!isForwardedToLeader(frame)) return false;
    const id = this.nextForwardId();
    if (!this.host.sendToPeer(leader, forwardFrame(FORWARD_REQUEST, id, frame), 'append')) return false;
    this.forwarded.set(id, { conn, clientRequestId, peer: leader, write: kind === REQUEST_KIND.write });
    state.forwarded.add(id);
    this.requestsForwarded++;
    if (state.leaderTold !== leader) {
      // Before the reply: a client that can reach the leader sends it the next requests itself.
      state.leaderTold = leader;
      this.replyTo(conn, replyFrame({ kind: 'leader', requestId: clientRequestId, leaderId: leader }), false);
    }
    return true;
  }

  /** Whether a peer message is a forwarded request or reply (for {@link fromForward}). */
  static isForward(bytes: Uint8Array): boolean {
    return bytes[0] === FORWARD_REQUEST || bytes[0] === FORWARD_REPLY;
  }

  /**
   * A request another node forwarded here, or the reply to one this node forwarded. Returns
   * false for a message too short to be either (the caller counts it as refused).
   */
  fromForward(from: number, bytes: Uint8Array): boolean {
    if (bytes.length < FORWARD_HEADER_BYTES + REQUEST_HEADER_BYTES) return false;
    const originId = new DataView(bytes.buffer, bytes.byteOffset, bytes.length).getUint32(1, true);
    const frame = keepCopy(bytes.subarray(FORWARD_HEADER_BYTES));
    if (bytes[0] === FORWARD_REQUEST) {
      if (!isForwardedToLeader(frame)) {
        this.replyToForwarder(from, originId, ErrorCode.NOT_LEADER);
        return true;
      }
      // Under the same bounds as this node's own clients.
      const refusal = this.refusal();
      if (refusal !== undefined) {
        this.replyToForwarder(from, originId, refusal === ErrorCode.NODE_DOWN ? ErrorCode.NOT_LEADER : refusal);
        return true;
      }
      const id = this.nextRequestId();
      this.pending.set(id, { from: 'peer', peer: from, originId });
      new DataView(frame.buffer).setUint32(1, id, true);
      this.host.toNode(frame);
      return true;
    }
    const f = this.forwarded.get(originId);
    if (f === undefined || f.peer !== from) return true; // its client went away
    this.forwarded.delete(originId);
    this.connections.get(f.conn)?.forwarded.delete(originId);
    const view = new DataView(frame.buffer);
    if (frame[0] === REPLY_KIND.error && frame.length >= ERROR_REPLY_BYTES) this.noteError(view.getUint16(REQUEST_HEADER_BYTES, true), view.getUint32(REQUEST_HEADER_BYTES + 2, true));
    view.setUint32(1, f.clientRequestId, true);
    this.replyTo(f.conn, frame, true);
    return true;
  }

  /** Answers a forwarded request with an error, back to the follower that sent it. */
  private replyToForwarder(peer: number, originId: number, code: ErrorCode): void {
    const frame = errorFrame(originId, code, { leaderHint: this.knownLeader });
    this.host.sendToPeer(peer, forwardFrame(FORWARD_REPLY, originId, frame), 'append');
  }

  /**
   * Fails the requests forwarded to `peer` when the transport may have lost what went to it
   * or came from it: NOT_LEADER with no hint (the client tries elsewhere), `proposed` for a
   * write, which may have reached the leader's log.
   */
  forwardsLost(peer: number): void {
    for (const [id, f] of this.forwarded) {
      if (f.peer !== peer) continue;
      this.forwarded.delete(id);
      this.connections.get(f.conn)?.forwarded.delete(id);
      if (this.knownLeader === peer) this.knownLeader = 0;
      this.replyTo(f.conn, errorFrame(f.clientRequestId, ErrorCode.NOT_LEADER, { proposed: f.write }), true);
    }
  }

  // ─── From the node ──────────────────────────────────────────────────────────────

  /** Hands up to `framesMax` replies from the node's ring to their clients (or forwarders); returns how many it took. */
  drainReplies(framesMax: number): number {
    const view = this.replyView;
    return this.replies.drainRanges((memory, offset, length) => {
      const kind = memory[offset]!;
      const id = view.getUint32(offset + 1, true);
      const p = this.pending.get(id);
      if (p === undefined) return; // its connection closed
      const endsRequest = kind !== REPLY_KIND['watch-event'] && kind !== REPLY_KIND['watch-start'];
      if (kind === REPLY_KIND.error && length >= ERROR_REPLY_BYTES) this.noteError(view.getUint16(offset + REQUEST_HEADER_BYTES, true), view.getUint32(offset + REQUEST_HEADER_BYTES + 2, true));
      if (p.from === 'peer') {
        // A forwarded request: its reply goes back to the follower that sent it.
        this.pending.delete(id);
        this.host.sendToPeer(p.peer, forwardFrame(FORWARD_REPLY, p.originId, memory.subarray(offset, offset + length)), 'append');
        return;
      }
      if (endsRequest) {
        this.pending.delete(id);
        const state = this.connections.get(p.conn);
        state?.pending.delete(id);
        if (kind === REPLY_KIND['watch-end']) state?.watches.delete(p.clientRequestId);
      }
      // The client's own id, in place: the ring's frame is this side's until drained.
      view.setUint32(offset + 1, p.clientRequestId, true);
      this.replyTo(p.conn, memory.subarray(offset, offset + length), endsRequest);
    }, framesMax);
  }

  /** Sends a reply; one larger than the client accepts cuts its connection off with why. */
  private replyTo(conn: ClientConnectionHandle, frame: Uint8Array, endsRequest: boolean): void {
    try {
      conn.reply(frame, endsRequest);
    } catch (error) {
      if (!(error instanceof RingraftError)) throw error;
      conn.close(error);
    }
  }

  /** Counts an error reply, and learns the leader from a NOT_LEADER's hint. */
  private noteError(wire: number, leaderHint: number): void {
    this.countError(wire);
    if (wire === NOT_LEADER_WIRE && leaderHint !== 0) this.knownLeader = leaderHint;
  }

  private countError(wire: number): void {
    const code = errorCodeFromWire(wire) ?? 'unknown';
    this.errorReplies[code] = (this.errorReplies[code] ?? 0) + 1;
  }

  private nextRequestId(): number {
    return nextFreeId(this.requestIdNext, this.pending, (next) => (this.requestIdNext = next));
  }

  private nextForwardId(): number {
    return nextFreeId(this.forwardIdNext, this.forwarded, (next) => (this.forwardIdNext = next));
  }
}

/** A read of a key or of a range: its consistency byte follows the header (a stale one is not forwarded). */

/** The first u32 id from `from` on (1 after 0xFFFFFFFF) not in use in `inUse`; `advance` gets the one after it. */
function nextFreeId(from: number, inUse: ReadonlyMap<number, unknown>, advance: (next: number) => void): number {
  let id = from;
  while (inUse.has(id)) id = id >= 0xffff_ffff ? 1 : id + 1;
  advance(id >= 0xffff_ffff ? 1 : id + 1);
  return id;
}
