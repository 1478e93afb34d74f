/**
 * The client side of the rings, for one thread: a request ring to each node and a reply
 * ring back, one doorbell the nodes ring after publishing replies, and the bookkeeping of
 * what is in flight. The main thread has one (owned by the {@link Cluster}); a load
 * generator in another worker thread gets its own with {@link connectEndpoint}.
 *
 * The thread using an endpoint must never block (it is the main thread, or a pool worker
 * running async tasks), so requests are staged in ring memory and published once per turn
 * of the event loop, and replies are drained by a pump that runs while anything is in
 * flight: it polls once per turn for a short while after the last reply, then sleeps with
 * `Atomics.waitAsync` on the doorbell.
 */

import { performance } from 'node:perf_hooks';
import { ErrorCode, fail, SequenceTable } from '../base/index.ts';
import {
  decodeReplyAt,
  encodedRequestBytes,
  Outbox,
  ProtocolError,
  REQUEST_HEADER_BYTES,
  writeRequestTo,
  type ClientReply,
  type OutgoingRequest,
  type FrameCodec,
} from '../runtime/index.ts';
import { ByteWriter, CopyPool } from '../codec/index.ts';
import { Doorbell, RingConsumer, RingProducer } from '../transport/index.ts';
import { SESSIONS_KEPT_MAX, SessionPool, type KvClientHost, type ReplyTarget } from './client.ts';
import { RequestBuffers } from './request-buffers.ts';
import { SlotGate } from './slot-gate.ts';

/** Milliseconds the pump sleeps at most between looks at the reply rings. */
const PUMP_IDLE_MS = 50;
/**
 * How long after the last request sent or reply received the pump polls the rings once per
 * turn of the event loop instead of sleeping on the doorbell, by what is in flight.
 *
 * - One call: PUMP_POLL_ONE_MS. Its reply is due within about a millisecond (a durable
 *   write's round trip), and a wake-up from `Atomics.waitAsync` costs tens of microseconds
 *   of that; the nodes have the machine's other cores.
 * - More: PUMP_POLL_MANY_MS, a few turns. Replies come in bursts, and a thread that spins
 *   between them takes a core from the nodes that make them.
 *
 * Measured on 2 cores (bench/cluster/put-loop.ts): polling 2 ms at every load gave 121k
 * puts/s at 256 in flight with the client's thread at 5.0 µs of CPU a put, and 40k at 16;
 * 20 µs beyond one call gave 159k at 256 (2.0 µs) and 47k at 16. At one in flight, 2 ms gave
 * 6,400 puts/s (156 µs each) and 20 µs 5,500.
 */
const PUMP_POLL_ONE_MS = 2;
const PUMP_POLL_MANY_MS = 0.02;
/** How often in-flight attempts are checked against their deadlines and their node's liveness. */
const SWEEP_INTERVAL_MS = 20;
/**
 * Replies taken from one ring per pump turn. Small on purpose: the callers of one chunk run
 * (and send their next requests, which the node starts on at once) before the next chunk
 * is drained, so the threads work in a pipeline rather than in one wave per round trip.
 * Measured at 256 writes in flight: 8192 gave some 28-55k writes/s, 32-128 some 46-49k,
 * 8 some 25k, on a noisy machine (see BENCHMARKS.md).
 */
const REPLIES_PER_TURN_MAX = 64;
/**
 * How long the pump goes on draining chunks of replies in one turn of the event loop while
 * more wait, letting each chunk's callers run (a microtask) between chunks. Yielding to the
 * event loop after every chunk let a caller that starts many calls per timer turn (an open
 * loop) starve the replies: at 100,000 puts/s offered to a cluster that serves 300,000 in a
 * closed loop, 64 replies came back per turn of 30 to 300 ms while the calls in flight grew
 * to their bound (bench/cluster/open-loop.ts). Now the first 100 ms answer some 4,000 to
 * 5,000 calls; the loop still falls behind later (see BENCHMARKS.md, "The open loop").
 */
const PUMP_TURN_MS_MAX = 1;

/** A request as it goes out: numbered for this attempt (a call's request carries no number of its own). */
interface Outgoing {
  readonly requestId: number;
  readonly request: OutgoingRequest;
}

/** A request as the queue of a full ring keeps it: its frame, encoded when its call sent it. */
interface KeptOutgoing {
  readonly requestId: number;
  readonly frame: Uint8Array;
}

type Queued = Outgoing | KeptOutgoing;

const requestCodec: FrameCodec<Queued> = {
  encodedBytes: (o) => ('frame' in o ? o.frame.length : encodedRequestBytes(o.request)),
  write: (o, writer) => ('frame' in o ? writer.raw(o.frame) : writeRequestTo(writer, o.request, o.requestId)),
};

/**
 * What the queue of a full ring keeps of a request: its frame as it is now. Whatever bytes
 * a request refers to may change once its call has started: a write's are the client's pooled
 * memory, written again once its call ends (by a timeout, say) while the request may still
 * wait here, and a key, prefix, query or command given as bytes is the caller's array. Never
 * the request itself: an attempt is reused once it ends (see ClientEndpoint.endAttempt).
 */
function keptOutgoing(o: Queued): Queued {
  if ('frame' in o) return o;
  const frame = new Uint8Array(encodedRequestBytes(o.request));
  writeRequestTo(new ByteWriter(frame), o.request, o.requestId);
  return { requestId: o.requestId, frame };
}

/** The rings between one client thread and one node. */
export interface EndpointLink {
  readonly nodeId: number;
  /** Client to node; rings `nodeDoorbell`. */
  readonly requestRing: SharedArrayBuffer;
  /** Node to client; the node rings the endpoint's doorbell. */
  readonly replyRing: SharedArrayBuffer;
  readonly nodeDoorbell: SharedArrayBuffer;
}

/** Which nodes exist and which are up, as the cluster's owner sees it. */
export interface NodeLiveness {
  nodeIds(): number[];
  isAlive(id: number): boolean;
  /** Why nodes are down, for an error message ('' if none is down by no one's choice). */
  downReasons?(): string;
}

export interface EndpointOptions {
  readonly requestTimeoutMs: number;
  readonly electionTimeoutMs: number;
  readonly requestsInFlightMax: number;
}

interface EndpointNode {
  readonly id: number;
  readonly requests: Outbox<Queued>;
  readonly replies: RingConsumer;
  readonly replyView: DataView;
}

/**
 * A request in flight to a node, until its reply, its deadline or its node's end. Reused
 * once it ends (see {@link ClientEndpoint.endAttempt}): an object per call was a tenth of
 * what a client allocated per put, and the table and the pump are the only holders of one.
 */
class Attempt implements Outgoing {
  constructor(
    public requestId: number,
    public request: OutgoingRequest,
    public nodeId: number,
    public deadline: number,
    public target: ReplyTarget<unknown>,
    public context: unknown,
  ) {}
}

/** What an ended attempt holds while it waits to be reused: nothing of its call. */
const NO_REQUEST: OutgoingRequest = { kind: 'unwatch', requestId: 0 };
const NO_TARGET: ReplyTarget<unknown> = { onReply: () => fail('an ended attempt was answered') };
/** Ended attempts kept for reuse, at most. */
const SPARE_ATTEMPTS_MAX = 1024;

export class ClientEndpoint implements KvClientHost {
  readonly doorbell: Doorbell;
  private readonly nodes = new Map<number, EndpointNode>();
  /** The node {@link nodeOf} found last (cleared when a link is added or removed). */
  private lastNode: EndpointNode | undefined;
  private readonly attempts = new SequenceTable<Attempt>();
  private readonly spareAttempts: Attempt[] = [];
  private readonly watchHandlers = new Map<number, { nodeId: number; onReply: (r: ClientReply) => void }>();
  private requestIdNext = 1;
  /** Replies that did not decode: each failed its call with PROTOCOL_ERROR (or, too short to name one, was dropped). */
  repliesMalformed = 0;
  private pumping = false;
  private flushScheduled = false;
  /** A request went out since the pump last looked (see PUMP_POLL_ONE_MS). */
  private sentSincePoll = false;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;
  private leaderGuessValue: number | undefined;
  private readonly slots: SlotGate;
  /** The sessions of every client on this endpoint, and the registered client ids they use. */
  readonly sessions: SessionPool;
  readonly requestBuffers = new RequestBuffers();
  /** Where the values of read replies are copied to. */
  private readonly values = new CopyPool();

  constructor(
    private readonly options: EndpointOptions,
    private readonly liveness: NodeLiveness,
    doorbell: Doorbell = Doorbell.create(),
  ) {
    this.doorbell = doorbell;
    this.slots = new SlotGate(options.requestsInFlightMax);
    // Every write in flight holds a slot and then a session: with as many kept, none is one-off.
    this.sessions = new SessionPool(Math.min(options.requestsInFlightMax, SESSIONS_KEPT_MAX));
  }

  /** Starts talking to a node through `link`. */
  addLink(link: EndpointLink): void {
    this.lastNode = undefined;
    this.nodes.set(link.nodeId, {
      id: link.nodeId,
      // Requests are never discarded: the in-flight bound keeps the queue finite.
      requests: new Outbox(new RingProducer(link.requestRing, { doorbell: new Doorbell(link.nodeDoorbell) }), requestCodec, Number.POSITIVE_INFINITY),
      replies: new RingConsumer(link.replyRing),
      replyView: new DataView(link.replyRing),
    });
  }

  /** Stops talking to a node removed from the cluster. */
  removeLink(id: number): void {
    this.nodeDown(id);
    this.lastNode = undefined;
    this.nodes.delete(id);
  }

  /** Fails everything waiting on node `id`, so callers retry elsewhere at once. */
  nodeDown(id: number): void {
    this.nodes.get(id)?.requests.clear();
    for (const [requestId, a] of this.attempts.select((a) => a.nodeId === id)) {
      // Ended already (and maybe reused) by a reply an earlier one's target caused: not in the table under this id.
      if (this.attempts.delete(requestId) === undefined) continue;
      this.endAttempt(a, synthetic(requestId, ErrorCode.NODE_DOWN));
    }
    for (const [requestId, w] of this.watchHandlers) {
      if (w.nodeId !== id) continue;
      this.watchHandlers.delete(requestId);
      w.onReply({ kind: 'watch-end', requestId, code: ErrorCode.NODE_DOWN });
    }
    if (this.leaderGuessValue === id) this.leaderGuessValue = undefined;
  }

  /** Fails what is in flight with CLOSED and stops the pump and the sweeper. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const [requestId, a] of this.attempts.entries()) {
      if (this.attempts.delete(requestId) === undefined) continue;
      this.endAttempt(a, synthetic(requestId, ErrorCode.CLOSED));
    }
    for (const [requestId, w] of this.watchHandlers) {
      this.watchHandlers.delete(requestId);
      w.onReply({ kind: 'watch-end', requestId, code: ErrorCode.CLOSED });
    }
    this.slots.failWaiters();
    this.doorbell.ring();
  }

  // ─── KvClientHost ───────────────────────────────────────────────────────────────

  get isClosed(): boolean {
    return this.closed;
  }

  get leaderGuess(): number | undefined {
    return this.leaderGuessValue;
  }

  set leaderGuess(id: number | undefined) {
    this.leaderGuessValue = id;
  }

  get defaultTimeoutMs(): number {
    return this.options.requestTimeoutMs;
  }

  electionTimeoutMs(): number {
    return this.options.electionTimeoutMs;
  }

  nodeIds(): number[] {
    return this.liveness.nodeIds().filter((id) => this.nodes.has(id));
  }

  isAlive(id: number): boolean {
    return this.nodeOf(id) !== undefined && this.liveness.isAlive(id);
  }

  /**
   * The node `id` talks through; undefined if none. Every call asks twice (is it alive, then
   * its attempt), mostly of one node: the last one found is kept.
   */
  private nodeOf(id: number): EndpointNode | undefined {
    const last = this.lastNode;
    if (last?.id === id) return last;
    const node = this.nodes.get(id);
    if (node !== undefined) this.lastNode = node;
    return node;
  }

  downReasons(): string {
    return this.liveness.downReasons?.() ?? '';
  }

  tryAcquireSlot(): boolean {
    return this.slots.tryAcquire();
  }

  acquireSlot(deadline: number, signal: AbortSignal | undefined): Promise<boolean> {
    return this.slots.acquire(deadline, signal, this.closed);
  }

  releaseSlot(): void {
    this.slots.release();
  }

  /** See {@link KvClientHost.attempt}. */
  attempt<C>(nodeId: number, request: OutgoingRequest, deadline: number, target: ReplyTarget<C>, context: C): void {
    const requestId = this.nextRequestId();
    const node = this.nodeOf(nodeId);
    if (this.closed || node === undefined || !this.liveness.isAlive(nodeId)) {
      const reply = synthetic(requestId, this.closed ? ErrorCode.CLOSED : ErrorCode.NODE_DOWN);
      queueMicrotask(() => target.onReply(reply, context));
      return;
    }
    let a = this.spareAttempts.pop();
    if (a === undefined) {
      a = new Attempt(requestId, request, nodeId, deadline, target as ReplyTarget<unknown>, context);
    } else {
      a.requestId = requestId;
      a.request = request;
      a.nodeId = nodeId;
      a.deadline = deadline;
      a.target = target as ReplyTarget<unknown>;
      a.context = context;
    }
    this.attempts.set(requestId, a);
    try {
      node.requests.send(a, keptOutgoing);
    } catch (error) {
      // Not kept: the caller, told by the throw, answers its call itself (see KvClientHost.attempt).
      this.attempts.delete(requestId);
      throw error;
    }
    this.afterSend();
  }

  /** Registers a watch on node `nodeId`; every reply for it goes to `onReply`. Returns its request id. */
  openWatch(nodeId: number, prefix: Uint8Array, afterIndex: number | undefined, onReply: (r: ClientReply) => void): number {
    const requestId = this.nextRequestId();
    const node = this.nodes.get(nodeId);
    if (this.closed || node === undefined || !this.liveness.isAlive(nodeId)) {
      const code = this.closed ? ErrorCode.CLOSED : ErrorCode.NODE_DOWN;
      queueMicrotask(() => onReply({ kind: 'watch-end', requestId, code }));
      return requestId;
    }
    this.watchHandlers.set(requestId, { nodeId, onReply });
    node.requests.send({ requestId, request: { kind: 'watch', requestId, prefix, afterIndex } }, keptOutgoing);
    this.afterSend();
    return requestId;
  }

  closeWatch(requestId: number): void {
    const w = this.watchHandlers.get(requestId);
    if (w === undefined) return;
    this.watchHandlers.delete(requestId);
    if (!this.liveness.isAlive(w.nodeId)) return;
    this.nodes.get(w.nodeId)?.requests.send({ requestId, request: { kind: 'unwatch', requestId } });
    this.afterSend();
  }

  // ─── The pump ───────────────────────────────────────────────────────────────────

  private afterSend(): void {
    this.sentSincePoll = true;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => {
        this.flushScheduled = false;
        this.flushRequests();
      });
    }
    if (!this.pumping) void this.pump();
    if (this.sweeper === undefined) this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
  }

  private flushRequests(): void {
    for (const [id, node] of this.nodes) if (this.liveness.isAlive(id)) node.requests.flush();
  }

  private queuedRequests(): boolean {
    for (const node of this.nodes.values()) if (node.requests.queuedCount > 0) return true;
    return false;
  }

  private hasReplies(): boolean {
    for (const node of this.nodes.values()) if (node.replies.hasData()) return true;
    return false;
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    let lastActivityAt = performance.now();
    let turnStartedAt = lastActivityAt;
    try {
      while (!this.closed && (this.attempts.size > 0 || this.watchHandlers.size > 0)) {
        const got = this.drainReplies();
        this.flushRequests();
        if (got > 0 || this.sentSincePoll) lastActivityAt = performance.now();
        this.sentSincePoll = false;
        if (got > 0 && this.hasReplies() && lastActivityAt - turnStartedAt < PUMP_TURN_MS_MAX) {
          // More wait: this chunk's callers run, then the next chunk, in this turn.
          await undefined;
          continue;
        }
        const pollMs = this.attempts.size + this.watchHandlers.size <= 1 ? PUMP_POLL_ONE_MS : PUMP_POLL_MANY_MS;
        if (got > 0 || performance.now() - lastActivityAt < pollMs) {
          // Let the callers whose replies came run (and send more) before the next look.
          await new Promise<void>((resolve) => setImmediate(resolve));
        } else {
          await this.doorbell.waitAsync(this.queuedRequests() ? 1 : PUMP_IDLE_MS, () => this.hasReplies() || this.closed);
        }
        turnStartedAt = performance.now();
      }
    } finally {
      this.pumping = false;
    }
  }

  private drainReplies(): number {
    let frames = 0;
    for (const node of this.nodes.values()) {
      const view = node.replyView;
      frames += node.replies.drainRanges((memory, offset, length) => {
        let reply: ClientReply;
        try {
          reply = decodeReplyAt(memory, view, offset, length, this.values);
        } catch (error) {
          // A reply that does not decode (a node's bug, or ring memory written by another
          // hand) fails its own call with PROTOCOL_ERROR, never the pump and the process.
          if (!(error instanceof ProtocolError)) throw error;
          this.repliesMalformed++;
          if (length < REQUEST_HEADER_BYTES) return;
          reply = { kind: 'error', requestId: view.getUint32(offset + 1, true), code: ErrorCode.PROTOCOL_ERROR, leaderHint: 0, proposed: true };
        }
        this.dispatch(reply);
      }, REPLIES_PER_TURN_MAX);
    }
    return frames;
  }

  private dispatch(reply: ClientReply): void {
    const a = this.attempts.delete(reply.requestId);
    if (a !== undefined) {
      this.endAttempt(a, reply);
      return;
    }
    const w = this.watchHandlers.get(reply.requestId);
    if (w === undefined) return; // A late reply to an attempt given up on.
    if (reply.kind === 'watch-end') this.watchHandlers.delete(reply.requestId);
    w.onReply(reply);
  }

  /**
   * Fails attempts past their deadline with TIMEOUT and those at nodes gone down with
   * NODE_DOWN; stops itself when nothing is in flight.
   */
  private sweep(): void {
    const now = performance.now();
    const down = new Set<number>();
    for (const id of this.nodes.keys()) if (!this.liveness.isAlive(id)) down.add(id);
    for (const [requestId, a] of this.attempts.select((a) => a.deadline <= now || down.has(a.nodeId))) {
      // Ended already (and maybe reused under another id) by what an earlier one's target did.
      if (this.attempts.get(requestId) !== a) continue;
      if (a.deadline <= now) {
        this.attempts.delete(requestId);
        this.endAttempt(a, synthetic(requestId, ErrorCode.TIMEOUT));
      } else {
        this.nodeDown(a.nodeId);
      }
    }
    // In another thread than the cluster's, this is how a watch learns its node went down.
    for (const w of this.watchHandlers.values()) {
      if (!this.liveness.isAlive(w.nodeId)) this.nodeDown(w.nodeId);
    }
    if (this.attempts.size === 0 && this.watchHandlers.size === 0 && this.sweeper !== undefined) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /**
   * Tells the target of `a`, just taken out of the table, its `reply`; `a` is kept for reuse
   * first, holding nothing of its call (the target may start the next attempt at once).
   */
  private endAttempt(a: Attempt, reply: ClientReply): void {
    const target = a.target;
    const context = a.context;
    a.request = NO_REQUEST;
    a.target = NO_TARGET;
    a.context = undefined;
    if (this.spareAttempts.length < SPARE_ATTEMPTS_MAX) this.spareAttempts.push(a);
    target.onReply(reply, context);
  }

  private nextRequestId(): number {
    const id = this.requestIdNext;
    this.requestIdNext = id >= 0xffff_ffff ? 1 : id + 1;
    return id;
  }
}

/** An error reply made on the client's side (no answer came): `proposed`, since the request may have reached a log. */
export function synthetic(requestId: number, code: ErrorCode): ClientReply {
  return { kind: 'error', requestId, code, leaderHint: 0, proposed: true };
}
