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
import { ErrorCode, RingraftError, SequenceTable } from '../base/index.ts';
import { expireAttempts, RequestBuffers, SessionPool, SESSIONS_KEPT_MAX, SlotGate, syntheticErrorReply, type KvClientHost, type PendingAttempt, type ReplyTarget } from '../cluster/index.ts';
import { decodeReply, encodedRequestBytes, writeRequest, type ClientReply, type ClientRequest } from '../runtime/index.ts';
import type { ClientConnectionHandle } from '../transport/index.ts';

/** How often attempts are checked against their deadlines. */
const SWEEP_INTERVAL_MS = 20;

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

export class LocalEndpoint implements KvClientHost {
  readonly sessions: SessionPool;
  readonly requestBuffers = new RequestBuffers();
  leaderGuess: number | undefined;
  private readonly attempts = new SequenceTable<PendingAttempt>();
  /** Attempts given up on at their deadline, until their late reply. */
  private readonly abandoned = new Set<number>();
  private readonly gate: SlotGate;
  private requestIdNext = 1;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;
  private inFlight = 0;
  private readonly conn: ClientConnectionHandle;

  constructor(
    private readonly server: LocalEndpointServer,
    private readonly options: LocalEndpointOptions,
  ) {
    this.gate = new SlotGate(options.requestsInFlightMax);
    this.sessions = new SessionPool(Math.min(options.requestsInFlightMax, SESSIONS_KEPT_MAX));
    const self = this;
    this.conn = {
      id: connectionIdNext++,
      remote: 'local',
      get isClosed() {
        return self.closed;
      },
      get requestsInFlight() {
        return self.inFlight;
      },
      reply: (frame) => this.onReply(frame),
      endRequest: () => {
        this.inFlight--;
      },
      close: () => {
        void this.close();
      },
    };
  }

  /** Fails what is in flight with CLOSED and tells the bridge the connection is gone. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const [requestId, a] of this.attempts.entries()) {
      if (this.attempts.delete(requestId) !== undefined) a.target.onReply(syntheticErrorReply(requestId, ErrorCode.CLOSED), a.context);
    }
    this.gate.failWaiters();
    this.server.closed(this.conn);
  }

  // ─── KvClientHost ───────────────────────────────────────────────────────────────

  get isClosed(): boolean {
    return this.closed;
  }

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

  tryAcquireSlot(): boolean {
    return this.gate.tryAcquire();
  }

  acquireSlot(deadline: number, signal: AbortSignal | undefined): Promise<boolean> {
    return this.gate.acquire(deadline, signal, this.closed);
  }

  releaseSlot(): void {
    this.gate.release();
  }

  /** See {@link KvClientHost.attempt}: the frame goes to the bridge now (it copies what it keeps). */
  attempt<C>(nodeId: number, request: ClientRequest, deadline: number, target: ReplyTarget<C>, context: C): void {
    const requestId = this.nextRequestId();
    const refused = this.closed ? ErrorCode.CLOSED : nodeId !== this.server.nodeId ? ErrorCode.NODE_DOWN : undefined;
    if (refused !== undefined) {
      queueMicrotask(() => target.onReply(syntheticErrorReply(requestId, refused), context));
      return;
    }
    this.attempts.set(requestId, { deadline, target: target as ReplyTarget<unknown>, context } satisfies PendingAttempt);
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    const frame = new Uint8Array(encodedRequestBytes(request));
    writeRequest(request, frame, requestId);
    this.inFlight++;
    // The bridge may answer at once (a refusal): replies never reach the caller before this returns.
    this.server.request(this.conn, frame);
  }

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
    this.inFlight--;
    if (this.abandoned.delete(id)) return true;
    const a = this.attempts.get(id);
    if (a === undefined) return true;
    this.attempts.delete(id);
    // Never within the call that made the request (attempt's contract): the bridge may answer inside it.
    queueMicrotask(() => a.target.onReply(reply, a.context));
    return true;
  }

  private sweep(): void {
    if (expireAttempts(this.attempts, (requestId) => this.abandoned.add(requestId)) || this.sweeper === undefined) return;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private nextRequestId(): number {
    for (;;) {
      const id = this.requestIdNext;
      this.requestIdNext = id >= 0xffff_ffff ? 1 : id + 1;
      if (!this.attempts.has(id) && !this.abandoned.has(id)) return id;
    }
  }
}
