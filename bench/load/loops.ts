/**
 * The two load shapes every cluster and peer benchmark uses, with latency recorded in an
 * HdrHistogram (never averaged samples):
 *
 * - closed loop: `inFlight` workers, each issuing its next operation as soon as the last
 *   one completes, for `durationMs`;
 * - open loop: operations started on a fixed schedule (`ratePerSec`) whatever the answers
 *   do, with latency measured from the time each operation was *due*, not from when it was
 *   sent. That is the correction for coordinated omission: a stalled system delays the
 *   sends behind the stall, and those waits count as latency.
 *
 * Both stop after `durationMs` (and after `opsMax` operations), and wait for what is in flight.
 */

import { performance } from 'node:perf_hooks';
import hdr from 'hdr-histogram-js';
import { LatencyLog } from '../../src/load/latency-log.ts';
import { runSchedule } from '../../src/load/schedule.ts';

export interface LatencyMs {
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/** Percentiles recorded for a latency curve (100 is the maximum). */
export const CURVE_PERCENTILES: readonly number[] = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100];

/** One point of a latency percentile curve. */
export interface PercentilePoint {
  readonly percentile: number;
  readonly ms: number;
}

export interface LoopResult {
  readonly ops: number;
  readonly errors: number;
  /** Error counts by `code` (or by name when an error has no code). */
  readonly errorsByCode: Readonly<Record<string, number>>;
  readonly elapsedMs: number;
  readonly opsPerSec: number;
  readonly latencyMs: LatencyMs;
  /** Latency at each of {@link CURVE_PERCENTILES}, from the same histogram; empty when no operation completed. */
  readonly curveMs: readonly PercentilePoint[];
  /** The most operations in flight at once (a closed loop: at most `inFlight`). */
  readonly inFlightPeak: number;
}

/** One operation; `i` counts operations from 0 across all workers. */
export type Operation = (i: number) => Promise<unknown>;

export interface ClosedLoopOptions {
  readonly inFlight: number;
  readonly durationMs: number;
  /** Stop after this many operations. Default: no limit but time. */
  readonly opsMax?: number;
}

export interface OpenLoopOptions {
  readonly ratePerSec: number;
  readonly durationMs: number;
  /** Operations in flight at most; beyond it the schedule still advances and the wait counts as latency. Default 65,536. */
  readonly inFlightMax?: number;
  /** Kept up to date as the loop runs, for a caller that reports progress. */
  readonly live?: { inFlight: number; answered: number };
}

/** Latencies from 1 µs to 60 s with 3 significant digits, recorded in microseconds. */
export function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
}

function summary(log: LatencyLog, ops: number, errorsByCode: Record<string, number>, elapsedMs: number, inFlightPeak: number): LoopResult {
  log.flush();
  const h = log.histogram;
  // A percentile is the top of its histogram bucket, which may lie above the exact maximum.
  const us = (p: number): number => Math.min(p >= 100 ? h.maxValue : h.getValueAtPercentile(p), h.maxValue) / 1000;
  const errors = Object.values(errorsByCode).reduce((a, b) => a + b, 0);
  return {
    ops,
    errors,
    errorsByCode,
    elapsedMs,
    opsPerSec: (ops / elapsedMs) * 1000,
    latencyMs: ops === 0 ? { p50: 0, p99: 0, p999: 0, max: 0 } : { p50: us(50), p99: us(99), p999: us(99.9), max: us(100) },
    curveMs: ops === 0 ? [] : CURVE_PERCENTILES.map((percentile) => ({ percentile, ms: us(percentile) })),
    inFlightPeak,
  };
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : error instanceof Error ? error.name : 'unknown';
}

/** Runs `op` from `inFlight` concurrent workers for `durationMs`. Failed operations are counted, not timed. */
export async function closedLoop(op: Operation, options: ClosedLoopOptions): Promise<LoopResult> {
  if (!(Number.isInteger(options.inFlight) && options.inFlight >= 1)) throw new RangeError(`inFlight ${options.inFlight} is a positive integer`);
  const log = new LatencyLog(newHistogram());
  const errorsByCode: Record<string, number> = {};
  const opsMax = options.opsMax ?? Number.POSITIVE_INFINITY;
  let next = 0;
  let ops = 0;
  let inFlight = 0;
  let inFlightPeak = 0;
  const start = performance.now();
  const until = start + options.durationMs;
  const worker = async (): Promise<void> => {
    // One clock reading per operation: its end is the next one's start.
    let t0 = performance.now();
    while (next < opsMax && t0 < until) {
      const i = next++;
      inFlightPeak = Math.max(inFlightPeak, ++inFlight);
      try {
        await op(i);
        const t1 = performance.now();
        log.record(t0, t1);
        t0 = t1;
        ops++;
      } catch (error) {
        const code = codeOf(error);
        errorsByCode[code] = (errorsByCode[code] ?? 0) + 1;
        t0 = performance.now();
      } finally {
        inFlight--;
      }
    }
  };
  await Promise.all(Array.from({ length: options.inFlight }, worker));
  const elapsedMs = performance.now() - start;
  const result = summary(log, ops, errorsByCode, elapsedMs, inFlightPeak);
  log.histogram.destroy();
  return result;
}

/**
 * Starts `op` at `ratePerSec` for `durationMs`; each latency runs from the operation's due
 * time (coordinated-omission corrected). The schedule is src/load/schedule.ts's: a timer
 * every millisecond starts the operations due, a bounded part of the schedule per turn.
 */
export async function openLoop(op: Operation, options: OpenLoopOptions): Promise<LoopResult> {
  const log = new LatencyLog(newHistogram());
  const errorsByCode: Record<string, number> = {};
  const inFlightMax = options.inFlightMax ?? 65_536;
  const start = performance.now();
  let inFlight = 0;
  let inFlightPeak = 0;
  let ops = 0;
  const live = options.live ?? { inFlight: 0, answered: 0 };
  // No promise or set entry of its own per operation (with tens of thousands in flight they
  // were the collector's work, enough to make the loop fall behind on its own): a count, and
  // one promise for the end.
  let drained: (() => void) | undefined;
  const settled = (): void => {
    inFlight--;
    live.inFlight = inFlight;
    live.answered++;
    if (inFlight === 0) drained?.();
  };
  const launch = (i: number, dueAt: number): void => {
    inFlightPeak = Math.max(inFlightPeak, ++inFlight);
    live.inFlight = inFlight;
    op(i).then(
      () => {
        log.record(dueAt, performance.now());
        ops++;
        settled();
      },
      (error: unknown) => {
        const code = codeOf(error);
        errorsByCode[code] = (errorsByCode[code] ?? 0) + 1;
        settled();
      },
    );
  };
  const schedule = await runSchedule({
    ratePerSec: options.ratePerSec,
    startAt: start,
    durationMs: options.durationMs,
    giveUpAt: start + options.durationMs * 2,
    now: () => performance.now(),
    mayStart: () => inFlight < inFlightMax,
    start: launch,
  });
  if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
  // Operations the schedule never reached (the system fell too far behind) count as errors.
  if (schedule.started < schedule.count) errorsByCode.NOT_STARTED = schedule.count - schedule.started;
  const elapsedMs = performance.now() - start;
  const result = summary(log, ops, errorsByCode, elapsedMs, inFlightPeak);
  log.histogram.destroy();
  return result;
}
