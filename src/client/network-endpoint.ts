/**
 * The network twin of cluster/endpoint.ts: a `KvClientHost` over TCP, so that `KvClient`
 * (sessions, retries, leader hints, watches that move between nodes) works unchanged against
 * `ringraft serve` processes.
 *
 * ```
 *  KvClient ── attempt(node, request) ──► slot of that node ── ClientPortConnection ──► node's client port
 *           ◄── reply (or a synthetic NODE_DOWN, TIMEOUT, CLOSED, UNAVAILABLE) ◄── onReply ◄──┘
 * ```
 *
 * **Endpoints and nodes.** One connection per endpoint (`HOST:PORT` of a node's client port).
 * The node behind an endpoint is learned from its WELCOME, so a NOT_LEADER's hint (a node id)
 * leads straight to that node's connection. A second endpoint that answers as a node already
 * connected is dropped (the first keeps it) and redialled later. A node is alive while its
 * connection is up.
 *
 * **Failures.** A connection that ends (the node stopped, a GOAWAY, a timeout) fails its
 * attempts at once with NODE_DOWN and ends its watches with NODE_DOWN, so KvClient tries
 * another node; the endpoint is redialled with jittered exponential back-off (50 ms doubling
 * to 2 s, timers unref'd), one dial at a time per endpoint.
 *
 * **In flight, per connection.** The server cuts off a client past the `requestsInFlightMax`
 * of its WELCOME, so each connection counts what it has unanswered: attempts until their
 * reply (an attempt given up on at its deadline stays counted until its late reply comes or
 * the connection ends), watches until their watch-end, an unwatch until the watch-end it
 * causes. An attempt on a connection at its bound is answered UNAVAILABLE here, which KvClient
 * retries after a back-off; the calls of the whole endpoint are bounded first by its
 * `requestsInFlightMax` slots.
 */
import { ErrorCode, RingraftError } from '../base/index.ts';
import { AttemptHost, syntheticErrorReply, type KvClientHost, type PendingAttempt, type ReplyTarget } from '../cluster/index.ts';
import { decodeReply, encodedRequestBytes, writeRequest, type ClientReply, type OutgoingRequest } from '../runtime/index.ts';
import { ClientPortConnection, type ClientPortSettingsInput, type TlsFiles } from '../transport/index.ts';
import type { EndpointAddress } from './endpoint-address.ts';

const REDIAL_MS_MIN = 50;
const REDIAL_MS_MAX = 2_000;

export interface NetworkEndpointOptions {
  readonly clusterId: bigint;
  readonly requestTimeoutMs: number;
  readonly requestsInFlightMax: number;
  /** The cluster's election timeout as the client assumes it: an attempt at one node waits four of them before the call tries another. */
  readonly electionTimeoutMs: number;
  readonly clientPort: ClientPortSettingsInput | undefined;
  readonly tls: TlsFiles | undefined;
}

/** One endpoint: its connection when up, and what it has in flight. */
interface Slot {
  readonly text: string;
  readonly address: EndpointAddress;
  conn: ClientPortConnection | undefined;
  dialing: boolean;
  /** The node behind it, from its last WELCOME. */
  nodeId: number | undefined;
  /** Unanswered requests on the current connection (see the module comment). */
  inFlight: number;
  /** The server's bound, from its WELCOME. */
  max: number;
  /** Failed dials in a row. */
  failures: number;
  lastError: RingraftError | undefined;
  redial: NodeJS.Timeout | undefined;
}

interface Attempt extends PendingAttempt {
  readonly slot: Slot;
}

/** What an endpoint reports of itself. */
export interface EndpointState {
  /** The endpoint as given to `connect` (`HOST:PORT`). */
  readonly endpoint: string;
  /** The node behind it, from its last handshake; undefined until it has answered once. */
  readonly nodeId: number | undefined;
  /** Whether its connection is up. */
  readonly up: boolean;
  /** Requests and watches unanswered on its current connection (0 while it is down). */
  readonly inFlight: number;
  /** Why its last dial failed or its connection ended; undefined once a connection is up. */
  readonly lastError: RingraftError | undefined;
}

export class NetworkEndpoint extends AttemptHost<Attempt> implements KvClientHost {
  private readonly slots: Slot[];
  private readonly byNode = new Map<number, Slot>();
  /** Attempts given up on at their deadline, still counted on their connection until a reply comes. */
  private readonly abandoned = new Map<number, Slot>();
  private readonly watches = new Map<number, { readonly slot: Slot; readonly onReply: (r: ClientReply) => void }>();
  /** Watches told to stop, until their watch-end. */
  private readonly unwatching = new Map<number, Slot>();
  private readonly upListeners = new Set<() => void>();

  constructor(
    addresses: readonly (readonly [string, EndpointAddress])[],
    private readonly options: NetworkEndpointOptions,
  ) {
    super(options.requestsInFlightMax);
    this.slots = addresses.map(([text, address]) => ({ text, address, conn: undefined, dialing: false, nodeId: undefined, inFlight: 0, max: 0, failures: 0, lastError: undefined, redial: undefined }));
  }

  /**
   * Dials every endpoint; resolves once one connection is up. Rejects with the endpoints'
   * failures (CONNECTION_FAILED, or HANDSHAKE_REFUSED if every one refused) when each has
   * failed its first dial, or with TIMEOUT after `timeoutMs`.
   */
  start(timeoutMs: number): Promise<void> {
    for (const slot of this.slots) this.dial(slot);
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.slots.some((s) => s.conn !== undefined)) return done(undefined);
        if (this.slots.every((s) => !s.dialing && s.failures > 0)) return done(this.failure(ErrorCode.CONNECTION_FAILED, 'no endpoint could be reached'));
      };
      const timer = setTimeout(() => done(this.failure(ErrorCode.TIMEOUT, `no endpoint answered within ${timeoutMs} ms`)), timeoutMs);
      const done = (error: RingraftError | undefined): void => {
        clearTimeout(timer);
        this.upListeners.delete(check);
        if (error === undefined) resolve();
        else reject(error);
      };
      this.upListeners.add(check);
      check();
    });
  }

  states(): EndpointState[] {
    return this.slots.map((s) => ({ endpoint: s.text, nodeId: s.nodeId, up: s.conn !== undefined, inFlight: s.inFlight, lastError: s.lastError }));
  }

  /** Fails what is in flight with CLOSED, closes every connection and clears every timer. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closeAttempts();
    for (const [requestId, w] of this.watches) w.onReply({ kind: 'watch-end', requestId, code: ErrorCode.CLOSED });
    this.watches.clear();
    const closing: Promise<void>[] = [];
    for (const slot of this.slots) {
      if (slot.redial !== undefined) clearTimeout(slot.redial);
      slot.redial = undefined;
      if (slot.conn !== undefined) closing.push(slot.conn.close());
      slot.conn = undefined;
    }
    await Promise.all(closing);
  }

  // ─── KvClientHost ───────────────────────────────────────────────────────────────

  get defaultTimeoutMs(): number {
    return this.options.requestTimeoutMs;
  }

  electionTimeoutMs(): number {
    return this.options.electionTimeoutMs;
  }

  nodeIds(): number[] {
    return [...this.byNode.keys()].sort((a, b) => a - b);
  }

  isAlive(id: number): boolean {
    return this.byNode.get(id)?.conn !== undefined;
  }

  downReasons(): string {
    return this.slots
      .filter((s) => s.conn === undefined && s.lastError !== undefined)
      .map((s) => `${s.text}${s.nodeId === undefined ? '' : ` (node ${s.nodeId})`} down (${s.lastError!.code}: ${s.lastError!.message})`)
      .join(', ');
  }

  /** See {@link KvClientHost.attempt}. */
  attempt<C>(nodeId: number, request: OutgoingRequest, deadline: number, target: ReplyTarget<C>, context: C): void {
    const requestId = this.nextRequestId();
    const slot = this.byNode.get(nodeId);
    const refused: ClientReply | undefined = this.closed
      ? syntheticErrorReply(requestId, ErrorCode.CLOSED)
      : slot?.conn === undefined
        ? syntheticErrorReply(requestId, ErrorCode.NODE_DOWN)
        : slot.inFlight >= slot.max
          ? { kind: 'error', requestId, code: ErrorCode.UNAVAILABLE, leaderHint: 0, proposed: false }
          : this.refusal(requestId, this.send(slot, request, requestId));
    if (refused !== undefined) {
      queueMicrotask(() => target.onReply(refused, context));
      return;
    }
    this.track(requestId, { slot: slot!, deadline, target: target as ReplyTarget<unknown>, context });
  }

  /** The reply for a request {@link send} refused with `code` (undefined: it was sent). */
  private refusal(requestId: number, code: ErrorCode | undefined): ClientReply | undefined {
    return code === undefined ? undefined : { kind: 'error', requestId, code, leaderHint: 0, proposed: false };
  }

  openWatch(nodeId: number, prefix: Uint8Array, afterIndex: number | undefined, onReply: (r: ClientReply) => void): number {
    const requestId = this.nextRequestId();
    const slot = this.byNode.get(nodeId);
    const refused =
      this.closed ? ErrorCode.CLOSED : slot?.conn === undefined || slot.inFlight >= slot.max ? ErrorCode.NODE_DOWN : this.send(slot, { kind: 'watch', requestId, prefix, afterIndex });
    if (refused !== undefined) {
      queueMicrotask(() => onReply({ kind: 'watch-end', requestId, code: refused }));
      return requestId;
    }
    this.watches.set(requestId, { slot: slot!, onReply });
    return requestId;
  }

  closeWatch(requestId: number): void {
    const w = this.watches.get(requestId);
    if (w === undefined) return;
    this.watches.delete(requestId);
    // Counted until the watch-end it causes (the server ends it then).
    if (this.send(w.slot, { kind: 'unwatch', requestId }) === undefined) this.unwatching.set(requestId, w.slot);
  }

  // ─── Connections ────────────────────────────────────────────────────────────────

  /** Encodes and sends `req` on `slot`'s connection, counting it; returns the code of a refusal instead. */
  private send(slot: Slot, req: OutgoingRequest, requestId: number = req.requestId): ErrorCode | undefined {
    const conn = slot.conn;
    if (conn === undefined) return ErrorCode.NODE_DOWN;
    const frame = new Uint8Array(encodedRequestBytes(req));
    writeRequest(req, frame, requestId);
    try {
      conn.send(frame);
    } catch (error) {
      if (!(error instanceof RingraftError)) throw error;
      // QUEUE_FULL: the socket pushes back; FRAME_TOO_LARGE: more than the server takes.
      return error.code === ErrorCode.QUEUE_FULL ? ErrorCode.UNAVAILABLE : error.code === ErrorCode.FRAME_TOO_LARGE ? ErrorCode.INVALID_ARGUMENT : ErrorCode.NODE_DOWN;
    }
    slot.inFlight++;
    return undefined;
  }

  private dial(slot: Slot): void {
    if (this.closed || slot.dialing || slot.conn !== undefined) return;
    slot.dialing = true;
    slot.redial = undefined;
    let conn: ClientPortConnection | undefined;
    ClientPortConnection.connect(slot.address, {
      clusterId: this.options.clusterId,
      settings: this.options.clientPort,
      ...(this.options.tls === undefined ? {} : { tls: this.options.tls }),
      onReply: (frame) => this.onReply(slot, frame),
      onClose: (error) => {
        if (conn !== undefined && slot.conn === conn) this.connectionEnded(slot, error);
      },
    }).then(
      (c) => {
        conn = c;
        slot.dialing = false;
        if (this.closed) {
          void c.close();
          return;
        }
        const other = this.byNode.get(c.nodeId);
        if (other !== undefined && other !== slot && other.conn !== undefined) {
          void c.close();
          this.dialFailed(slot, new RingraftError(ErrorCode.CONFIG_MISMATCH, `${slot.text} answers as node ${c.nodeId}, which ${other.text} already is`));
          return;
        }
        if (slot.nodeId !== undefined && slot.nodeId !== c.nodeId && this.byNode.get(slot.nodeId) === slot) this.byNode.delete(slot.nodeId);
        slot.conn = c;
        slot.nodeId = c.nodeId;
        slot.max = c.requestsInFlightMax;
        slot.inFlight = 0;
        slot.failures = 0;
        slot.lastError = undefined;
        this.byNode.set(c.nodeId, slot);
        this.notify();
      },
      (error: unknown) => {
        slot.dialing = false;
        if (!(error instanceof RingraftError)) throw error;
        this.dialFailed(slot, error);
      },
    );
  }

  private dialFailed(slot: Slot, error: RingraftError): void {
    slot.failures++;
    slot.lastError = error;
    this.notify();
    this.scheduleRedial(slot);
  }

  private scheduleRedial(slot: Slot): void {
    if (this.closed || slot.redial !== undefined) return;
    const ceiling = Math.min(REDIAL_MS_MAX, REDIAL_MS_MIN * 2 ** Math.min(20, Math.max(0, slot.failures - 1)));
    const delayMs = ceiling / 2 + (Math.random() * ceiling) / 2;
    slot.redial = setTimeout(() => this.dial(slot), delayMs);
    slot.redial.unref();
  }

  /** Fails what waits on a connection that ended, so that KvClient tries elsewhere at once; redials it. */
  private connectionEnded(slot: Slot, error: RingraftError): void {
    slot.conn = undefined;
    slot.lastError = error;
    slot.inFlight = 0;
    for (const [requestId, a] of this.attempts.select((a) => a.slot === slot)) {
      if (this.attempts.delete(requestId) === undefined) continue;
      a.target.onReply(syntheticErrorReply(requestId, ErrorCode.NODE_DOWN), a.context);
    }
    for (const [requestId, s] of this.abandoned) if (s === slot) this.abandoned.delete(requestId);
    for (const [requestId, s] of this.unwatching) if (s === slot) this.unwatching.delete(requestId);
    for (const [requestId, w] of this.watches) {
      if (w.slot !== slot) continue;
      this.watches.delete(requestId);
      w.onReply({ kind: 'watch-end', requestId, code: ErrorCode.NODE_DOWN });
    }
    if (this.leaderGuess !== undefined && this.leaderGuess === slot.nodeId) this.leaderGuess = undefined;
    this.scheduleRedial(slot);
  }

  private onReply(slot: Slot, frame: Uint8Array): void {
    let reply: ClientReply;
    try {
      reply = decodeReply(frame);
    } catch (error) {
      if (!(error instanceof RingraftError)) throw error;
      // A server that sends what is not a reply: this connection is not to be trusted.
      void slot.conn?.close();
      return;
    }
    if (reply.kind === 'leader') {
      // The node forwards to its leader: go there directly if this client reaches it.
      if (this.byNode.get(reply.leaderId)?.conn !== undefined) this.leaderGuess = reply.leaderId;
      return;
    }
    const id = reply.requestId;
    const a = this.attempts.get(id);
    if (a !== undefined && a.slot === slot) {
      this.attempts.delete(id);
      slot.inFlight--;
      a.target.onReply(reply, a.context);
      return;
    }
    if (this.abandoned.get(id) === slot) {
      this.abandoned.delete(id);
      slot.inFlight--;
      return;
    }
    const w = this.watches.get(id);
    if (w !== undefined && w.slot === slot) {
      if (reply.kind === 'watch-end') {
        this.watches.delete(id);
        slot.inFlight--;
      }
      w.onReply(reply);
      return;
    }
    if (reply.kind === 'watch-end' && this.unwatching.get(id) === slot) {
      this.unwatching.delete(id);
      slot.inFlight -= 2;
    }
  }

  protected abandon(requestId: number, attempt: Attempt): void {
    this.abandoned.set(requestId, attempt.slot);
  }

  protected idInUse(id: number): boolean {
    return this.abandoned.has(id) || this.watches.has(id) || this.unwatching.has(id);
  }

  private notify(): void {
    for (const l of [...this.upListeners]) l();
  }

  private failure(code: ErrorCode, what: string): RingraftError {
    const reasons = this.slots.map((s) => `${s.text}: ${s.lastError === undefined ? 'no answer yet' : `${s.lastError.code}: ${s.lastError.message}`}`).join('; ');
    const refusedAll = this.slots.every((s) => s.lastError?.code === ErrorCode.HANDSHAKE_REFUSED);
    return new RingraftError(refusedAll ? ErrorCode.HANDSHAKE_REFUSED : code, `${what} (${reasons})`);
  }
}
