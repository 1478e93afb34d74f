/**
 * The schedule of an open loop (`ringraft load --rate`, load/workload.ts; the benchmarks'
 * open loops, bench/load/loops.ts): operation i is due at startAt + i / rate, whatever the
 * replies do, and its latency counts from that time (so a stall counts against every
 * operation it delays: no coordinated omission).
 *
 * A timer every millisecond starts the operations due, at most {@link SCHEDULE_TURN_MS} of
 * the schedule per turn. A loop that fell behind used to start everything due in one go:
 * behind by 300 ms at 250k/s, that is 75,000 calls in one synchronous task of as long again,
 * during which the client's pump could neither take replies nor free slots, so the loop fell
 * further behind. An open loop at 200,000 puts/s on the in-memory cluster (a third of what a
 * closed loop does) collapsed to 94k/s with a p50 of 3.8 s, and at 270,000/s to 10k/s with most
 * calls timed out; starting at most 2 ms of the schedule per turn, the same loops held 198,579
 * and 269,941/s (bench/cluster/open-loop.ts). Operations due meanwhile wait in the schedule,
 * their latency counted from their due time all the same.
 */
import { invalidArgument } from '../base/index.ts';

/** The most of the schedule one turn of the timer starts, in milliseconds. */
export const SCHEDULE_TURN_MS = 2;

export interface ScheduleOptions {
  readonly ratePerSec: number;
  /** When operation 0 is due (`now()`'s clock). */
  readonly startAt: number;
  /** The schedule holds the operations due in [startAt, startAt + durationMs). */
  readonly durationMs: number;
  /** Past this time (`now()`'s clock) the operations not started yet never are. */
  readonly giveUpAt: number;
  readonly now: () => number;
  /** Whether another operation may start now (a bound on those in flight). */
  readonly mayStart: () => boolean;
  /** Starts operation `i`, due at `dueAt`; it must not throw. */
  readonly start: (i: number, dueAt: number) => void;
}

/** What a schedule did: the operations it held, and of those the ones it started (the rest never were). */
export interface ScheduleResult {
  readonly count: number;
  readonly started: number;
}

/** Runs the schedule. */
export function runSchedule(o: ScheduleOptions): Promise<ScheduleResult> {
  if (!(o.ratePerSec > 0 && Number.isFinite(o.ratePerSec))) throw invalidArgument(`ratePerSec must be a positive number, got ${o.ratePerSec}`);
  const count = Math.floor((o.durationMs * o.ratePerSec) / 1000);
  const intervalMs = 1000 / o.ratePerSec;
  const perTurnMax = Math.max(1, Math.ceil((o.ratePerSec * SCHEDULE_TURN_MS) / 1000));
  let started = 0;
  return new Promise<ScheduleResult>((resolve) => {
    const timer = setInterval(() => {
      const now = o.now();
      const turnEnd = started + perTurnMax;
      while (started < count && started < turnEnd && o.startAt + started * intervalMs <= now && o.mayStart()) {
        o.start(started, o.startAt + started * intervalMs);
        started++;
      }
      if (started >= count || now >= o.giveUpAt) {
        clearInterval(timer);
        resolve({ count, started });
      }
    }, 1);
  });
}
