/**
 * One measured task on tinybench, and the result row every runner reports.
 *
 * A task function may time only part of what it does: it then returns a {@link Timed}
 * whose `ms` is the mean time of one operation in the timed part. Tinybench records that
 * as the sample, while the time budget is charged the whole call (set-up included), so
 * that a task with expensive set-up still ends on time.
 */
import { performance } from 'node:perf_hooks';
import { Bench, type FnReturnedObject } from 'tinybench';

/** One line of a report: what was measured and how fast it went. */
export interface ResultRow {
  /** The scenario's name (bench.config.ts). */
  readonly name: string;
  readonly kind: string;
  /** Which measurement of the scenario, e.g. 'commit' or 'step-leader-AppResp'. */
  readonly task: string;
  /** Entries per round (commit), per message (step), or records per writev (disk). */
  readonly batch: number;
  /** What one operation is, e.g. 'entry committed' or 'step call'. */
  readonly op: string;
  readonly opsPerSec: number;
  readonly nsPerOp: number;
  /** For round-based tasks: mean time of one whole round, in nanoseconds. */
  readonly nsPerRound?: number;
  /** Which alternative was measured, e.g. 'zlib.crc32' or 'preallocated'; absent if only one. */
  readonly variant?: string;
  /** Bytes one operation handles (a checksummed buffer, a written record). */
  readonly bytesPerOp?: number;
  /** Throughput in MB/s, with 1 MB = 10^6 bytes: opsPerSec × bytesPerOp / 10^6. */
  readonly mbPerSec?: number;
  /** For disk tasks: `fdatasync` calls per second (one per batch). */
  readonly fsyncsPerSec?: number;
  /** Relative margin of error of the mean, in percent. */
  readonly rmePercent: number;
  readonly samples: number;
}

/**
 * The row of a task whose sample timed one operation of `bytesPerOp` bytes: rates derived from
 * the mean sample, plus the fields that name the task.
 */
export function perOpRow(m: Measurement, bytesPerOp: number, fields: Pick<ResultRow, 'name' | 'kind' | 'task' | 'variant' | 'batch' | 'op'>): ResultRow {
  const nsPerOp = m.meanMs * 1e6;
  const opsPerSec = 1e9 / nsPerOp;
  return { ...fields, opsPerSec, nsPerOp, bytesPerOp, mbPerSec: (opsPerSec * bytesPerOp) / 1e6, rmePercent: m.rmePercent, samples: m.samples };
}

export interface MeasureOptions {
  readonly timeMs: number;
  readonly warmupTimeMs: number;
}

export interface Measurement {
  /** Mean time per sample, in milliseconds. */
  readonly meanMs: number;
  readonly rmePercent: number;
  readonly samples: number;
}

/** A task's report of its own timing: the mean milliseconds of one operation it timed. */
export interface Timed {
  readonly ms: number;
}

/**
 * Runs `fn` under tinybench (with warmup) for about `timeMs` and returns the mean sample.
 * If `fn` returns a {@link Timed}, the sample is its `ms`; otherwise the whole call.
 */
export async function measure(name: string, fn: () => Timed | unknown, options: MeasureOptions): Promise<Measurement> {
  const bench = new Bench({
    name,
    time: options.timeMs,
    warmup: true,
    warmupTime: options.warmupTimeMs,
    timestampProvider: 'auto',
    throws: true,
  });
  bench.add(name, () => {
    const start = performance.now();
    const out = fn();
    if (!isTimed(out)) return undefined;
    const result: FnReturnedObject = { overriddenDuration: out.ms, overriddenIterationCost: performance.now() - start };
    return result;
  });
  await bench.run();
  const result = bench.tasks[0]!.result;
  if (result.state === 'errored') throw result.error;
  if (result.state !== 'completed') throw new Error(`task ${name} ended as ${result.state}`);
  return { meanMs: result.latency.mean, rmePercent: result.latency.rme, samples: result.latency.samplesCount };
}

function isTimed(x: unknown): x is Timed {
  return typeof x === 'object' && x !== null && typeof (x as { ms?: unknown }).ms === 'number';
}
