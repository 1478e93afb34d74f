/**
 * The in-flight slots of one client endpoint: at most `max` calls hold one at a time; more
 * wait in line (oldest first) until a slot is released, their deadline passes or their signal
 * aborts. A slot released while calls wait goes straight to the next in line. Both client
 * endpoints (rings: endpoint.ts; TCP: client/) keep their calls in flight with one.
 *
 * Waiting costs a call no timer of its own: one timer sweeps the line every
 * {@link SLOT_SWEEP_INTERVAL_MS} while anyone waits, so a wait ends at most that much after its
 * deadline. A call that gives up is marked and skipped when its turn comes, not spliced out.
 * Before, each waiter had a timer, and one giving up searched the line for itself: with 60,000
 * calls waiting (an open loop past a cap of 1,024) the client spent 140 to 175 µs of CPU per call.
 *
 * ```
 *   line:  0        head                       line.length
 *          ├ gone ───┼── waiting (or given up), oldest first ──┤
 * ```
 *
 * Invariant: waiting counts the entries of line[head..] not settled, and is 0 exactly when
 * the line is empty and no sweep runs; inFlight <= max.
 */

import { performance } from 'node:perf_hooks';
import { fail } from '../base/index.ts';

/** How often the calls waiting for a slot are checked against their deadlines. */
export const SLOT_SWEEP_INTERVAL_MS = 20;

interface Waiter {
  readonly deadline: number;
  readonly resolve: (granted: boolean) => void;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  settled: boolean;
}

export class SlotGate {
  private inFlight = 0;
  private line: Waiter[] = [];
  private head = 0;
  /** Waiters in line[head..] not settled. */
  private waiting = 0;
  private sweeper: NodeJS.Timeout | undefined;
  /** No wait in line ends before this: a sweep before it looks at none of them. */
  private nextDeadline = Number.POSITIVE_INFINITY;

  constructor(private readonly max: number) {}

  /** Calls waiting for a slot now. */
  get waitingCount(): number {
    return this.waiting;
  }

  tryAcquire(): boolean {
    if (this.inFlight >= this.max || this.waiting > 0) return false;
    this.inFlight++;
    return true;
  }

  /** Waits for a slot until `deadline` (a performance.now() time) or the signal; false if none came or `closed`. */
  acquire(deadline: number, signal: AbortSignal | undefined, closed: boolean): Promise<boolean> {
    if (closed || signal?.aborted === true) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const w: Waiter = { deadline, resolve, signal, onAbort: undefined, settled: false };
      if (signal !== undefined) {
        w.onAbort = () => this.settle(w, false);
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.line.push(w);
      this.waiting++;
      if (deadline < this.nextDeadline) this.nextDeadline = deadline;
      this.sweeper ??= setInterval(() => this.sweep(), SLOT_SWEEP_INTERVAL_MS);
    });
  }

  release(): void {
    // A slot released twice would let more calls in than `max`, for good.
    if (this.inFlight <= 0) fail('a slot released is one held');
    // A waiting call takes the slot over directly; otherwise it is free.
    const next = this.nextWaiter();
    if (next !== undefined) this.settle(next, true);
    else this.inFlight--;
  }

  /** Gives up every waiting call (the endpoint closed). */
  failWaiters(): void {
    for (let w = this.nextWaiter(); w !== undefined; w = this.nextWaiter()) this.settle(w, false);
  }

  /** Takes the oldest waiter not settled off the line; undefined when none waits. */
  private nextWaiter(): Waiter | undefined {
    while (this.head < this.line.length) {
      const w = this.line[this.head]!;
      this.line[this.head] = undefined as unknown as Waiter;
      this.head++;
      if (!w.settled) return w;
    }
    return undefined;
  }

  private settle(w: Waiter, granted: boolean): void {
    if (w.settled) return;
    w.settled = true;
    this.waiting--;
    if (w.onAbort !== undefined) w.signal!.removeEventListener('abort', w.onAbort);
    if (this.waiting === 0) {
      // Nobody waits: the line starts over, and the sweep stops until someone waits again.
      this.line = [];
      this.head = 0;
      this.nextDeadline = Number.POSITIVE_INFINITY;
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
    w.resolve(granted);
  }

  /**
   * Ends the waits past their deadline, then drops from the line the calls given up once
   * they outnumber those waiting, and its taken part once that is most of it.
   */
  private sweep(): void {
    const now = performance.now();
    if (now >= this.nextDeadline) {
      let next = Number.POSITIVE_INFINITY;
      for (let i = this.head; i < this.line.length; i++) {
        const w = this.line[i]!;
        if (w.settled) continue;
        if (w.deadline <= now) this.settle(w, false);
        else if (w.deadline < next) next = w.deadline;
      }
      this.nextDeadline = next;
    }
    // Each entry is copied once per doubling of the line: amortized constant per call.
    const givenUp = this.line.length - this.head - this.waiting;
    if (givenUp > this.waiting + 1024) {
      this.line = this.line.slice(this.head).filter((w) => !w.settled);
      this.head = 0;
    } else if (this.head > 1024 && this.head > this.line.length / 2) {
      this.line = this.line.slice(this.head);
      this.head = 0;
    }
  }
}
