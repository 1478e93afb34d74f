/**
 * The base of the client endpoints that keep their own attempts (the network client's and a
 * node server's own): see {@link AttemptHost}.
 */
import { performance } from 'node:perf_hooks';
import { ErrorCode, SequenceTable } from '../base/index.ts';
import { SESSIONS_KEPT_MAX, SessionPool, type ReplyTarget } from './client.ts';
import { synthetic } from './endpoint.ts';
import { RequestBuffers } from './request-buffers.ts';
import { SlotGate } from './slot-gate.ts';

/** An attempt in flight, with its deadline (a performance.now() time) and whom to answer. */
export interface PendingAttempt {
  readonly deadline: number;
  readonly target: ReplyTarget<unknown>;
  readonly context: unknown;
}

/** How often attempts are checked against their deadlines. */
const SWEEP_INTERVAL_MS = 20;

/**
 * What the endpoints that keep their own attempts share (the network client's,
 * client/network-endpoint.ts, and a node server's own, server/local-endpoint.ts): KvClient's
 * slots and sessions, attempts whose deadlines one timer sweeps (an attempt past its deadline
 * is answered TIMEOUT, and the subclass keeps what it needs to drop its late reply), and
 * request ids handed out in sequence, skipping those still in use.
 */
export abstract class AttemptHost<A extends PendingAttempt> {
  readonly sessions: SessionPool;
  readonly requestBuffers = new RequestBuffers();
  leaderGuess: number | undefined;
  protected readonly attempts = new SequenceTable<A>();
  protected closed = false;
  private readonly gate: SlotGate;
  private sweeper: NodeJS.Timeout | undefined;
  private requestIdNext = 1;

  constructor(requestsInFlightMax: number) {
    this.gate = new SlotGate(requestsInFlightMax);
    this.sessions = new SessionPool(Math.min(requestsInFlightMax, SESSIONS_KEPT_MAX));
  }

  /** An attempt past its deadline, just answered TIMEOUT: keep what drops its late reply. */
  protected abstract abandon(requestId: number, attempt: A): void;
  /** Whether `id` is in use by something other than an attempt (one abandoned, a watch). */
  protected abstract idInUse(id: number): boolean;

  get isClosed(): boolean {
    return this.closed;
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

  /** Keeps `attempt` until its reply or its deadline. */
  protected track(requestId: number, attempt: A): void {
    this.attempts.set(requestId, attempt);
    this.sweeper ??= setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
  }

  /** Closes: every attempt is answered CLOSED, the sweep stops, and calls waiting for a slot give up. */
  protected closeAttempts(): void {
    this.closed = true;
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const [requestId, a] of this.attempts.entries()) {
      if (this.attempts.delete(requestId) !== undefined) a.target.onReply(synthetic(requestId, ErrorCode.CLOSED), a.context);
    }
    this.gate.failWaiters();
  }

  protected nextRequestId(): number {
    for (;;) {
      const id = this.requestIdNext;
      this.requestIdNext = id >= 0xffff_ffff ? 1 : id + 1;
      if (!this.attempts.has(id) && !this.idInUse(id)) return id;
    }
  }

  /** Answers TIMEOUT to the attempts past their deadline; stops once none is left. */
  private sweep(): void {
    const now = performance.now();
    for (const [requestId, a] of this.attempts.select((a) => a.deadline <= now)) {
      if (this.attempts.delete(requestId) === undefined) continue;
      this.abandon(requestId, a);
      a.target.onReply(synthetic(requestId, ErrorCode.TIMEOUT), a.context);
    }
    if (this.attempts.size > 0 || this.sweeper === undefined) return;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}
