/**
 * What one load generator thread does: a mix of operations on a key space with a uniform or
 * Zipfian distribution, at a fixed concurrency or a fixed rate, for a duration, against a
 * cluster reached through its own endpoint. It records latency in an HdrHistogram, the
 * completed operations per time bucket (for throughput over time and recovery after
 * faults), errors by code, and optionally the history for the linearizability checker.
 *
 * Runs as a piscina task (see load-worker.ts); plain data in and out.
 */

import { performance } from 'node:perf_hooks';
import { invalidArgument } from '../base/index.ts';
import hdr from 'hdr-histogram-js';
import { LatencyLog } from './latency-log.ts';
import { runSchedule } from './schedule.ts';
import type { KvClient } from '../cluster/index.ts';
import type { HistoryOp } from '../sim/index.ts';

export type OpKind = 'put' | 'get' | 'lease-get' | 'stale-get' | 'delete' | 'cas';
export const OP_KINDS: readonly OpKind[] = ['put', 'get', 'lease-get', 'stale-get', 'delete', 'cas'];

export interface WorkloadSpec {
  /** Weights by operation; they need not sum to 100. */
  readonly mix: Readonly<Partial<Record<OpKind, number>>>;
  readonly keys: number;
  readonly distribution: 'uniform' | 'zipf';
  /** Zipf exponent (default 0.99). */
  readonly zipfExponent: number;
  readonly keyBytes: number;
  readonly valueBytes: number;
  /** Exactly one of concurrency or ratePerSec (for this thread). */
  readonly concurrency: number | undefined;
  readonly ratePerSec: number | undefined;
  readonly durationMs: number;
  /** Width of a throughput bucket. */
  readonly bucketMs: number;
  readonly recordHistory: boolean;
  readonly timeoutMs: number;
}

export interface WorkloadResult {
  readonly ops: number;
  readonly opsByKind: Record<string, number>;
  readonly errorsByCode: Record<string, number>;
  /** Completed operations per bucket, from `startAt`. */
  readonly buckets: number[];
  /** The HdrHistogram of latencies (µs), compressed (merge with hdr.decodeFromCompressedBase64). */
  readonly histogram: string;
  readonly history: HistoryOp[];
}

/** Operations of an open loop in flight at most, per thread. */
const IN_FLIGHT_MAX = 65_536;

/** Absolute milliseconds comparable across threads. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Picks operations and keys from a seeded generator. */
export class OpPicker {
  private readonly kinds: OpKind[] = [];
  private readonly cumulative: number[] = [];
  private readonly zipfCdf: Float64Array | undefined;
  private state: number;

  constructor(
    private readonly spec: WorkloadSpec,
    seed: number,
  ) {
    let total = 0;
    for (const kind of OP_KINDS) {
      const w = spec.mix[kind] ?? 0;
      if (w <= 0) continue;
      total += w;
      this.kinds.push(kind);
      this.cumulative.push(total);
    }
    if (total <= 0) throw invalidArgument('the mix has no operation with a positive weight');
    this.cumulative = this.cumulative.map((c) => c / total);
    if (spec.distribution === 'zipf') {
      const cdf = new Float64Array(spec.keys);
      let sum = 0;
      for (let k = 0; k < spec.keys; k++) {
        sum += 1 / Math.pow(k + 1, spec.zipfExponent);
        cdf[k] = sum;
      }
      for (let k = 0; k < spec.keys; k++) cdf[k]! /= sum;
      this.zipfCdf = cdf;
    }
    this.state = seed >>> 0 || 1;
  }

  /** A uniform number in [0, 1) (xorshift32). */
  random(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 2 ** 32;
  }

  kind(): OpKind {
    const r = this.random();
    const i = this.cumulative.findIndex((c) => r < c);
    return this.kinds[i < 0 ? this.kinds.length - 1 : i]!;
  }

  key(): number {
    const r = this.random();
    const cdf = this.zipfCdf;
    if (cdf === undefined) return Math.floor(r * this.spec.keys);
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! < r) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** The key for index k: `keyBytes` long, zero-padded. */
export function keyName(k: number, keyBytes: number): string {
  return `k${String(k).padStart(keyBytes - 1, '0')}`;
}

/** Runs the workload on `kv` from `startAt` (absolute ms) for the duration. */
export async function runWorkload(kv: KvClient, spec: WorkloadSpec, client: number, seed: number, startAt: number): Promise<WorkloadResult> {
  const picker = new OpPicker(spec, seed);
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
  const log = new LatencyLog(h);
  const bucketCount = Math.ceil(spec.durationMs / spec.bucketMs) + 1;
  const buckets = new Array<number>(bucketCount).fill(0);
  const opsByKind: Record<string, number> = {};
  const errorsByCode: Record<string, number> = {};
  const history: HistoryOp[] = [];
  const endAt = startAt + spec.durationMs;
  let ops = 0;
  let seq = 0;
  const filler = 'x'.repeat(spec.valueBytes);

  const one = async (dueAt: number): Promise<void> => {
    const kind = picker.kind();
    const key = keyName(picker.key(), spec.keyBytes);
    const n = seq++;
    // Values are unique per operation (for the checker), padded to valueBytes.
    const value = `${client}.${n}.${filler}`.slice(0, Math.max(spec.valueBytes, `${client}.${n}.`.length));
    const call = nowMs();
    const op: HistoryOp = { client, op: 'get', key, value: null, expected: null, output: null, call, return: null };
    const opts = { timeoutMs: spec.timeoutMs };
    try {
      switch (kind) {
        case 'put':
          op.op = 'put';
          op.value = value;
          await kv.put(key, value, opts);
          break;
        case 'get':
        case 'lease-get':
        case 'stale-get': {
          const v = await kv.get(key, { ...opts, consistency: kind === 'get' ? 'linearizable' : kind === 'lease-get' ? 'lease' : 'stale' });
          op.output = v === undefined ? null : new TextDecoder().decode(v);
          break;
        }
        case 'delete':
          op.op = 'delete';
          op.output = await kv.delete(key, opts);
          break;
        case 'cas': {
          op.op = 'cas';
          const current = await kv.get(key, { ...opts, consistency: 'stale' });
          op.expected = current === undefined ? null : new TextDecoder().decode(current);
          op.value = value;
          op.call = nowMs();
          op.output = await kv.cas(key, current, value, opts);
          break;
        }
      }
      const done = nowMs();
      op.return = done;
      log.record(dueAt, done);
      ops++;
      opsByKind[kind] = (opsByKind[kind] ?? 0) + 1;
      const b = Math.floor((done - startAt) / spec.bucketMs);
      if (b >= 0 && b < bucketCount) buckets[b]!++;
      // Stale reads are not linearizable by design: they stay out of the checked history.
      if (spec.recordHistory && kind !== 'stale-get') history.push(op);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      const name = typeof code === 'string' ? code : (error as Error).name;
      errorsByCode[name] = (errorsByCode[name] ?? 0) + 1;
      // A failed write may still take effect; a failed read has none.
      if (spec.recordHistory && op.op !== 'get') {
        op.output = null;
        history.push(op);
      }
    }
  };

  const wait = startAt - nowMs();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  if (spec.concurrency !== undefined) {
    const worker = async (): Promise<void> => {
      while (nowMs() < endAt) await one(nowMs());
    };
    await Promise.all(Array.from({ length: spec.concurrency }, worker));
  } else {
    const rate = spec.ratePerSec!;
    const pending = new Set<Promise<void>>();
    const schedule = await runSchedule({
      ratePerSec: rate,
      startAt,
      durationMs: spec.durationMs,
      // Late operations still start (their latency counted from their due time) for a while after the end.
      giveUpAt: endAt + Math.min(1000, spec.durationMs),
      now: nowMs,
      mayStart: () => pending.size < IN_FLIGHT_MAX,
      start: (_i, dueAt) => {
        const p: Promise<void> = one(dueAt).finally(() => pending.delete(p));
        pending.add(p);
      },
    });
    // Operations the schedule never reached (the cluster fell too far behind): counted, not dropped unseen.
    if (schedule.started < schedule.count) errorsByCode.NOT_STARTED = schedule.count - schedule.started;
    await Promise.all(pending);
  }
  log.flush();
  const histogram = hdr.encodeIntoCompressedBase64(h);
  h.destroy();
  return { ops, opsByKind, errorsByCode, buckets, histogram, history };
}
