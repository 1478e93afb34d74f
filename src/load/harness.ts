/**
 * The load-testing harness behind `ringraft load`: starts a cluster on worker threads,
 * drives it from a piscina pool of load generator threads (each with its own rings to every
 * node, so the main thread is not the bottleneck), injects faults on a schedule, and
 * reports throughput over time, latency percentiles, errors by code, the time the cluster
 * took to recover after each fault, and (optionally) whether the recorded history is
 * linearizable.
 */

import { ErrorCode, RingraftError } from '../base/index.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import hdr from 'hdr-histogram-js';
import { Piscina } from 'piscina';
import { createCluster, type Cluster } from '../cluster/index.ts';
import { checkLinearizable, type HistoryOp } from '../sim/index.ts';
import type { LoadTask } from './load-worker.ts';
import type { WorkloadResult, WorkloadSpec } from './workload.ts';
import { nowMs } from './workload.ts';

export type FaultKind = 'crash-leader' | 'crash-follower' | 'restart' | 'partition-leader' | 'heal' | 'transfer';
export const FAULT_KINDS: readonly FaultKind[] = ['crash-leader', 'crash-follower', 'restart', 'partition-leader', 'heal', 'transfer'];

export interface FaultStep {
  readonly kind: FaultKind;
  /** Milliseconds after the load starts. */
  readonly atMs: number;
}

export interface LoadOptions {
  readonly nodes: number;
  /** Durable logs in a temporary directory (removed afterwards), or logs in memory. */
  readonly durable: boolean;
  readonly fsync: 'always' | 'none';
  /** The workload; `concurrency` / `ratePerSec` are totals, split over the threads. */
  readonly spec: WorkloadSpec;
  readonly threads: number;
  readonly faults: readonly FaultStep[];
  /** Check the history with the linearizability checker (records it). */
  readonly check: boolean;
  /** Write the history as JSON lines here (records it). */
  readonly historyFile: string | undefined;
  readonly onProgress?: (line: string) => void;
}

export interface FaultReport {
  readonly kind: FaultKind;
  readonly atMs: number;
  /** What it did ("crashed node 2"), or why it did nothing. */
  readonly detail: string;
  /** Time until throughput was back to half its level in the second before the fault; undefined if it never was. */
  readonly recoveryMs: number | undefined;
}

export interface LoadReport {
  readonly durationMs: number;
  readonly ops: number;
  readonly opsPerSec: number;
  readonly opsByKind: Record<string, number>;
  readonly errorsByCode: Record<string, number>;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly p999: number; readonly max: number };
  /** Throughput per bucket, from the start. */
  readonly timeline: readonly { readonly atMs: number; readonly opsPerSec: number }[];
  readonly faults: readonly FaultReport[];
  readonly linearizability: { readonly result: 'ok' | 'violation' | 'unknown'; readonly ops: number; readonly detail?: string } | undefined;
}

/**
 * The piscina task file, named by URL (a worker entry, not an import): the built one, also
 * when this runs from the TypeScript sources, because worker threads run JavaScript.
 */
const WORKER_URL = import.meta.url.endsWith('.ts') ? new URL('../../dist/src/load/load-worker.js', import.meta.url) : new URL('./load-worker.js', import.meta.url);

export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const progress = options.onProgress ?? (() => {});
  const dataDir = options.durable ? mkdtempSync(join(tmpdir(), 'ringraft-load-')) : undefined;
  const cluster = await createCluster({ nodes: options.nodes, node: { fsync: options.fsync }, ...(dataDir === undefined ? {} : { dataDir }) });
  const pool = new Piscina({ filename: WORKER_URL.href, minThreads: options.threads, maxThreads: options.threads, idleTimeout: 1_000 });
  try {
    await waitForLeader(cluster);
    const spec = options.spec;
    const recordHistory = options.check || options.historyFile !== undefined;
    const startAt = nowMs() + 300;
    const tasks: Promise<WorkloadResult>[] = [];
    for (let t = 0; t < options.threads; t++) {
      const share = (total: number | undefined): number | undefined => (total === undefined ? undefined : Math.max(1, Math.round(total / options.threads)));
      const task: LoadTask = {
        descriptor: await cluster.connectEndpoint(),
        spec: { ...spec, concurrency: share(spec.concurrency), ratePerSec: share(spec.ratePerSec), recordHistory },
        client: t + 1,
        seed: 0x9e37_79b9 ^ (t * 0x85eb_ca6b),
        startAt,
      };
      tasks.push(pool.run(task) as Promise<WorkloadResult>);
    }
    const faults = runFaults(cluster, options.faults, startAt, progress);
    const ticker = setInterval(() => progress(`load: ${Math.max(0, Math.round((nowMs() - startAt) / 1000))} s of ${Math.round(spec.durationMs / 1000)} s`), 1000);
    let results: WorkloadResult[];
    try {
      results = await Promise.all(tasks);
    } finally {
      clearInterval(ticker);
    }
    const faultLog = await faults;
    return summarize(results, faultLog, spec, options, progress);
  } finally {
    await pool.destroy();
    await cluster.close();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  }
}

async function waitForLeader(cluster: Cluster): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await cluster.status()).leaderId === undefined) {
    if (Date.now() > deadline) throw new RingraftError(ErrorCode.TIMEOUT, 'the cluster elected no leader in 10 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function runFaults(cluster: Cluster, steps: readonly FaultStep[], startAt: number, progress: (line: string) => void): Promise<{ step: FaultStep; at: number; detail: string }[]> {
  const done: { step: FaultStep; at: number; detail: string }[] = [];
  const crashed: number[] = [];
  for (const step of [...steps].sort((a, b) => a.atMs - b.atMs)) {
    const wait = startAt + step.atMs - nowMs();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const at = nowMs();
    const st = await cluster.status();
    const leader = st.leaderId;
    let detail: string;
    switch (step.kind) {
      case 'crash-leader':
      case 'crash-follower': {
        const victim = step.kind === 'crash-leader' ? leader : st.nodes.find((n) => n.alive && n.id !== leader)?.id;
        if (victim === undefined) {
          detail = 'no such node up';
          break;
        }
        await cluster.crash(victim);
        crashed.push(victim);
        detail = `crashed node ${victim}`;
        break;
      }
      case 'restart': {
        const ids = crashed.splice(0);
        for (const id of ids) await cluster.restart(id);
        detail = ids.length === 0 ? 'nothing to restart' : `restarted ${ids.join(', ')}`;
        break;
      }
      case 'partition-leader': {
        if (leader === undefined) {
          detail = 'no leader to cut off';
          break;
        }
        await cluster.partition([leader]);
        detail = `cut node ${leader} off`;
        break;
      }
      case 'heal':
        await cluster.heal();
        detail = 'healed';
        break;
      case 'transfer': {
        const target = st.nodes.find((n) => n.alive && n.id !== leader)?.id;
        if (target === undefined) {
          detail = 'no target';
          break;
        }
        await cluster.transferLeadership(target).catch(() => {});
        detail = `leadership to ${target}`;
        break;
      }
    }
    progress(`fault at ${Math.round(at - startAt)} ms: ${step.kind} (${detail})`);
    done.push({ step, at: at - startAt, detail });
  }
  return done;
}

function summarize(
  results: readonly WorkloadResult[],
  faults: readonly { step: FaultStep; at: number; detail: string }[],
  spec: WorkloadSpec,
  options: LoadOptions,
  progress: (line: string) => void,
): LoadReport {
  const merged = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3, useWebAssembly: false });
  for (const r of results) {
    const h = hdr.decodeFromCompressedBase64(r.histogram, 32, false);
    merged.add(h);
    h.destroy();
  }
  const sum = (pick: (r: WorkloadResult) => Record<string, number>): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const r of results) for (const [k, v] of Object.entries(pick(r))) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  const buckets = new Array<number>(Math.max(...results.map((r) => r.buckets.length))).fill(0);
  for (const r of results) r.buckets.forEach((n, i) => (buckets[i]! += n));
  const ops = results.reduce((a, r) => a + r.ops, 0);
  const perSec = 1000 / spec.bucketMs;
  const pct = (p: number): number => merged.getValueAtPercentile(p) / 1000;
  const report: LoadReport = {
    durationMs: spec.durationMs,
    ops,
    opsPerSec: (ops / spec.durationMs) * 1000,
    opsByKind: sum((r) => r.opsByKind),
    errorsByCode: sum((r) => r.errorsByCode),
    latencyMs: ops === 0 ? { p50: 0, p99: 0, p999: 0, max: 0 } : { p50: pct(50), p99: pct(99), p999: pct(99.9), max: merged.maxValue / 1000 },
    timeline: buckets.map((n, i) => ({ atMs: i * spec.bucketMs, opsPerSec: n * perSec })),
    faults: faults.map((f) => {
      const r = recoveryMs(buckets, spec.bucketMs, f.at);
      return { kind: f.step.kind, atMs: Math.round(f.at), detail: f.detail, recoveryMs: r === undefined ? undefined : Math.round(r) };
    }),
    linearizability: undefined,
  };
  merged.destroy();
  const history: HistoryOp[] = results.flatMap((r) => r.history);
  if (options.historyFile !== undefined) {
    writeFileSync(options.historyFile, history.map((op) => JSON.stringify(op)).join('\n') + '\n');
  }
  if (!options.check) return report;
  progress(`checking ${history.length} operations for linearizability`);
  const result = checkLinearizable(history);
  const linearizability =
    result.ok === true
      ? { result: 'ok' as const, ops: history.length }
      : result.ok === false
        ? { result: 'violation' as const, ops: history.length, detail: result.report }
        : { result: 'unknown' as const, ops: history.length, detail: result.reason };
  return { ...report, linearizability };
}

/**
 * Milliseconds from a fault until throughput is back to half its mean over the second
 * before it (measured in buckets); undefined when there was no load before, or no recovery.
 */
export function recoveryMs(buckets: readonly number[], bucketMs: number, faultAtMs: number): number | undefined {
  const faultBucket = Math.floor(faultAtMs / bucketMs);
  const before = buckets.slice(Math.max(0, faultBucket - Math.round(1000 / bucketMs)), faultBucket);
  if (before.length === 0) return undefined;
  const mean = before.reduce((a, b) => a + b, 0) / before.length;
  if (mean === 0) return undefined;
  // The fault's own bucket is partly before it: look from the next one, and count to the end
  // of the bucket that recovered, so the figure is never below the truth.
  for (let b = faultBucket + 1; b < buckets.length; b++) {
    if (buckets[b]! >= mean / 2) return (b + 1) * bucketMs - faultAtMs;
  }
  return undefined;
}
