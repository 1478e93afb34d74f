/**
 * A `KvClientHost` inside a node server, for what the server itself serves (the RESP port):
 * `KvClient`'s sessions, retries and deadlines, with its requests handed straight to the
 * server's client bridge as those of one more connection, with no socket, no handshake and no
 * frame copied on a wire. The bridge forwards to the leader what only the leader answers, as
 * it does for a TCP client, so this host has one node: its own.
 *
 * ```
 *  KvClient ── attempt ──► LocalEndpoint ── frame ──► ClientBridge ──► the node's ring (or the leader)
 *           ◄── reply (or a synthetic TIMEOUT, CLOSED, UNAVAILABLE) ◄── reply(frame) ◄──┘
 * ```
 *
 * In flight: at most `requestsInFlightMax` calls (KvClient's slots); a deadline passed is
 * answered TIMEOUT by a sweep, and its late reply dropped when it comes.
 */
import { ErrorCode, RingraftError } from '../base/index.ts';
import { AttemptHost, syntheticErrorReply, type KvClientHost, type PendingAttempt, type ReplyTarget } from '../cluster/index.ts';
import { decodeReply, encodedRequestBytes, writeRequest, type ClientReply, type OutgoingRequest } from '../runtime/index.ts';
import type { ClientConnectionHandle } from '../transport/index.ts';

/** What the endpoint needs of its server. */
export interface LocalEndpointServer {
  readonly nodeId: number;
  /** Hands a request frame to the client bridge, as a connection's (ClientBridge.onRequest). */
  request(conn: ClientConnectionHandle, frame: Uint8Array): void;
  /** Tells the bridge the connection is gone (ClientBridge.onConnectionClosed). */
  closed(conn: ClientConnectionHandle): void;
}

export interface LocalEndpointOptions {
  readonly requestTimeoutMs: number;
  readonly requestsInFlightMax: number;
  readonly electionTimeoutMs: number;
}

/** Ids of connections the bridge sees from this endpoint: far from the client port's. */
let connectionIdNext = 0x4000_0000;

export class LocalEndpoint extends AttemptHost<PendingAttempt> implements KvClientHost {
  /** Attempts given up on at their deadline, until their late reply. */
  private readonly abandoned = new Set<number>();
  private readonly conn: ClientConnectionHandle;

  constructor(
    private readonly server: LocalEndpointServer,
    private readonly options: LocalEndpointOptions,
  ) {
    super(options.requestsInFlightMax);
    const self = this;
    this.conn = {
      id: connectionIdNext++,
      remote: 'local',
      get isClosed() {
        return self.closed;
      },
      // Every request this endpoint sends has one reply, and it watches nothing.
      get requestsInFlight() {
        return self.attempts.size + self.abandoned.size;
      },
      reply: (frame) => this.onReply(frame),
      endRequest: () => {},
      close: () => {
        void this.close();
      },
    };
  }

  /** Fails what is in flight with CLOSED and tells the bridge the connection is gone. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closeAttempts();
    this.server.closed(this.conn);
  }

  // ─── KvClientHost ───────────────────────────────────────────────────────────────

  get defaultTimeoutMs(): number {
    return this.options.requestTimeoutMs;
  }

  electionTimeoutMs(): number {
    return this.options.electionTimeoutMs;
  }

  nodeIds(): number[] {
    return [this.server.nodeId];
  }

  isAlive(id: number): boolean {
    return id === this.server.nodeId && !this.closed;
  }

  downReasons(): string {
    return '';
  }

  /** See {@link KvClientHost.attempt}: the frame goes to the bridge now (it copies what it keeps). */
  attempt<C>(nodeId: number, request: OutgoingRequest, deadline: number, target: ReplyTarget<C>, context: C): void {
    const requestId = this.nextRequestId();
    const refused = this.closed ? ErrorCode.CLOSED : nodeId !== this.server.nodeId ? ErrorCode.NODE_DOWN : undefined;
    if (refused !== undefined) {
      queueMicrotask(() => target.onReply(syntheticErrorReply(requestId, refused), context));
      return;
    }
    this.track(requestId, { deadline, target: target as ReplyTarget<unknown>, context });
    const frame = new Uint8Array(encodedRequestBytes(request));
    writeRequest(request, frame, requestId);
    // The bridge may answer at once (a refusal): replies never reach the caller before this returns.
    this.server.request(this.conn, frame);
  }

  /** Watches are not served here (the RESP port has none): each ends at once, UNAVAILABLE. */
  openWatch(nodeId: number, prefix: Uint8Array, afterIndex: number | undefined, onReply: (r: ClientReply) => void): number {
    void nodeId;
    void prefix;
    void afterIndex;
    const requestId = this.nextRequestId();
    queueMicrotask(() => onReply({ kind: 'watch-end', requestId, code: ErrorCode.UNAVAILABLE }));
    return requestId;
  }

  closeWatch(requestId: number): void {
    void requestId;
  }

  protected abandon(requestId: number): void {
    this.abandoned.add(requestId);
  }

  protected idInUse(id: number): boolean {
    return this.abandoned.has(id);
  }

  /** A reply frame from the bridge (a copy is not needed: it is decoded now). */
  private onReply(frame: Uint8Array): boolean {
    if (this.closed) return false;
    let reply: ClientReply;
    try {
      reply = decodeReply(frame);
    } catch (error) {
      if (!(error instanceof RingraftError)) throw error;
      return false;
    }
    if (reply.kind === 'leader') return true;
    const id = reply.requestId;
    if (this.abandoned.delete(id)) return true;
    const a = this.attempts.get(id);
    if (a === undefined) return true;
    this.attempts.delete(id);
    // Never within the call that made the request (attempt's contract): the bridge may answer inside it.
    queueMicrotask(() => a.target.onReply(reply, a.context));
    return true;
  }
}
