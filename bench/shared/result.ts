/**
 * The benchmark's result: the row every cluster (and peer) measurement reports, the JSON
 * document `--json FILE` writes, and the terminal tables and target verdicts built from it.
 *
 * The JSON is a contract other tools read:
 *
 *     { machine: { cores, cpu, node },
 *       scenarios: [ { name, nodes, durable, inFlight, op, opsPerSec,
 *                      latencyMs: { p50, p99, p999, max }, limit: { name, opsPerSec }, ratio, ... } ],
 *       peers: [ ...the same shape, with a `system` field ],
 *       limits: [...], targets: [...], micro: [...] }
 *
 * Rows may carry more fields than the contract names (loop, errors, the latency curve, the
 * WAL batch); readers ignore what they do not know. `npm run bench:peers` reuses
 * {@link BenchRow}, {@link PeerBenchRow}, {@link machineInfo} and {@link writeBenchJson}.
 */
import type { ThreadCpu } from './thread-cpu.ts';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Target } from '../../bench.config.ts';
import type { LatencyMs, PercentilePoint } from '../load/loops.ts';
import type { ResultRow } from './measure.ts';

export interface Machine {
  readonly cores: number;
  readonly cpu: string;
  readonly node: string;
}

export function machineInfo(): Machine {
  return { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model.trim() ?? 'unknown', node: process.version };
}

/** What bounds a figure: a named measurement of the same operations, without the cluster. */
export interface Limit {
  readonly name: string;
  readonly opsPerSec: number;
}

/** How the WAL batched during a durable loop (see LoopProbe in bench/cluster/cluster.bench.ts). */
export interface WalBatching {
  /** Committed writes per `writev` + `fdatasync`. */
  readonly batch: number;
  /** `fdatasync`s per second of one node. */
  readonly fsyncsPerSec: number;
  /** How syncs were counted: the log's new entries (one per sync, more for very large turns). */
  readonly source: 'log-entries';
}

/** One measured loop: the row of `scenarios` (and, with `system`, of `peers`). */
export interface BenchRow {
  /** The scenario's name (bench.config.ts). */
  readonly name: string;
  readonly nodes: number;
  readonly durable: boolean;
  /** Requests in flight: the closed loop's concurrency; for an open loop, the most there were at once. */
  readonly inFlight: number;
  readonly op: string;
  /** Completed operations per second (for writes: committed and acknowledged). */
  readonly opsPerSec: number;
  /** From an HdrHistogram of every completed operation; open loops count from each operation's due time. */
  readonly latencyMs: LatencyMs;
  /** The tightest limit of this figure; null where none was measured. */
  readonly limit: Limit | null;
  /** opsPerSec / limit.opsPerSec; null without a limit. */
  readonly ratio: number | null;
  readonly loop?: 'closed' | 'open';
  /** Open loops: the rate operations were started at. */
  readonly offeredOpsPerSec?: number;
  /** Failed operations (not counted in opsPerSec), and by error code. */
  readonly errors?: number;
  readonly errorsByCode?: Readonly<Record<string, number>>;
  /** The latency percentile curve, from the same histogram. */
  readonly curveMs?: readonly PercentilePoint[];
  /** Durable writes: how the WAL batched. */
  readonly wal?: WalBatching;
  readonly note?: string;
  /** In-process clusters: the CPU µs per operation of each thread (bench/shared/thread-cpu.ts). */
  readonly cpu?: ThreadCpu;
}

/** A row of `peers`: the same measurement of another system. */
export interface PeerBenchRow extends BenchRow {
  readonly system: string;
}

/** One measured limit, and the operations of one scenario it bounds. */
export interface LimitRecord extends Limit {
  readonly scenario: string;
  readonly kind: 'ring' | 'map' | 'disk';
  readonly ops: readonly string[];
  /** Bytes one operation moves through the limit (a ring frame, a disk record, a stored value). */
  readonly bytesPerOp: number;
  /** Disk limits: records per `writev` + `fdatasync`. */
  readonly batch?: number;
  /** Disk limits: syncs per second of the bare loop. */
  readonly fsyncsPerSec?: number;
}

export interface TargetResult {
  readonly name: string;
  readonly status: 'met' | 'missed' | 'not measured';
  /** The row that decided it, in words. */
  readonly detail: string;
}

export interface BenchJson {
  readonly machine: Machine;
  readonly scenarios: readonly BenchRow[];
  readonly peers: readonly PeerBenchRow[];
  readonly limits?: readonly LimitRecord[];
  readonly targets?: readonly TargetResult[];
  /** Micro-benchmark rows (core, crc, disk, codec, ring). */
  readonly micro?: readonly ResultRow[];
  /** When the run started (ISO 8601), and its command line. */
  readonly startedAt?: string;
  readonly command?: string;
}

/** Writes `result` as indented JSON, making the file's directory if needed. */
export function writeBenchJson(file: string, result: BenchJson): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
}

/** The smallest of `limits` (the one that binds), or null if there is none. */
export function tightestLimit(limits: readonly Limit[]): Limit | null {
  let best: Limit | null = null;
  for (const l of limits) if (best === null || l.opsPerSec < best.opsPerSec) best = l;
  return best === null ? null : { name: best.name, opsPerSec: best.opsPerSec };
}

/** A row's limit and ratio: the tightest of `limits`. */
export function withLimit<R extends BenchRow>(row: R, limits: readonly Limit[]): R {
  const limit = tightestLimit(limits);
  return { ...row, limit, ratio: limit === null || limit.opsPerSec <= 0 ? null : row.opsPerSec / limit.opsPerSec };
}

/** Whether `row` is one a target speaks of (closed-loop rows of its op that pass its filters). */
export function targetMatches(t: Target, row: BenchRow): boolean {
  if (row.op !== t.op || (row.loop ?? 'closed') !== 'closed') return false;
  if (t.durable !== undefined && row.durable !== t.durable) return false;
  if (t.inFlightMin !== undefined && row.inFlight < t.inFlightMin) return false;
  if (t.inFlightExact !== undefined && row.inFlight !== t.inFlightExact) return false;
  return true;
}

function targetMet(t: Target, row: BenchRow): boolean {
  return (
    (t.opsPerSecMin === undefined || row.opsPerSec >= t.opsPerSecMin) &&
    (t.p50MaxMs === undefined || row.latencyMs.p50 < t.p50MaxMs) &&
    (t.p99MaxMs === undefined || row.latencyMs.p99 < t.p99MaxMs)
  );
}

/**
 * Met when some matching row meets every bound of the target; the detail names that row,
 * or else the row that came closest (the fastest; for a latency-only target, the lowest p50).
 */
export function evaluateTargets(rows: readonly BenchRow[], targets: readonly Target[]): TargetResult[] {
  return targets.map((t) => {
    const candidates = rows.filter((r) => targetMatches(t, r));
    if (candidates.length === 0) return { name: t.name, status: 'not measured', detail: 'no matching row in this run' };
    const met = candidates.filter((r) => targetMet(t, r));
    const latencyOnly = t.opsPerSecMin === undefined;
    const pool = met.length > 0 ? met : candidates;
    const best = pool.reduce((a, b) => (latencyOnly ? (b.latencyMs.p50 < a.latencyMs.p50 ? b : a) : b.opsPerSec > a.opsPerSec ? b : a));
    return { name: t.name, status: met.length > 0 ? 'met' : 'missed', detail: describeRow(best) };
  });
}

function describeRow(r: BenchRow): string {
  const l = r.latencyMs;
  return `${r.name} ${r.op} at ${r.inFlight} in flight: ${formatNumber(r.opsPerSec)}/s, p50 ${formatMs(l.p50)} ms, p99 ${formatMs(l.p99)} ms`;
}

export function formatNumber(x: number): string {
  return x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toPrecision(3);
}

export function formatMs(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3);
}

/** A plain text table: `left` columns left-aligned, the others right-aligned. */
export function textTable(header: readonly string[], cells: readonly (readonly string[])[], left: ReadonlySet<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]) => c.map((s, i) => (left.has(i) ? s.padEnd(widths[i]!) : s.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** The cluster rows: one line per loop, with its limit and ratio. */
export function formatClusterTable(rows: readonly BenchRow[]): string {
  const header = ['scenario', 'op', 'loop', 'in flight', 'ops/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'WAL batch', 'limit', 'limit ops/s', 'ratio', 'errors', ...CPU_HEADER];
  const cells = rows.map((r) => [
    r.name,
    r.op,
    r.loop === 'open' ? `open @${formatNumber(r.offeredOpsPerSec ?? 0)}/s` : (r.loop ?? 'closed'),
    String(r.inFlight),
    formatNumber(r.opsPerSec),
    formatMs(r.latencyMs.p50),
    formatMs(r.latencyMs.p99),
    formatMs(r.latencyMs.p999),
    formatMs(r.latencyMs.max),
    r.wal === undefined ? '' : r.wal.batch.toFixed(1),
    r.limit?.name ?? '',
    r.limit === null ? '' : formatNumber(r.limit.opsPerSec),
    r.ratio === null ? '' : r.ratio.toFixed(3),
    String(r.errors ?? 0),
    ...cpuCells(r.cpu),
  ]);
  return textTable(header, cells, new Set([0, 1, 2, 10]));
}

/**
 * The per-thread CPU columns: µs per operation of the client, the leader's thread, each other
 * node thread (none when every node shares the leader's: `nodeThreads`), the other threads,
 * and all.
 */
const CPU_HEADER = ['client µs', 'leader µs', 'followers µs', 'rest µs', 'total µs'];

function cpuCells(cpu: ThreadCpu | undefined): string[] {
  if (cpu === undefined) return CPU_HEADER.map(() => '');
  const us = (x: number): string => x.toFixed(2);
  const followers = cpu.followersUs.length === 0 ? "on leader's" : cpu.followersUs.map(us).join(' ');
  return [us(cpu.clientUs), us(cpu.leaderUs), followers, us(cpu.restUs), us(cpu.totalUs)];
}

export function formatLimits(limits: readonly LimitRecord[]): string {
  const header = ['scenario', 'limit', 'bounds', 'bytes/op', 'ops/s', 'fsyncs/s'];
  const cells = limits.map((l) => [
    l.scenario,
    l.name,
    l.ops.join(', '),
    String(l.bytesPerOp),
    formatNumber(l.opsPerSec),
    l.fsyncsPerSec === undefined ? '' : formatNumber(l.fsyncsPerSec),
  ]);
  return textTable(header, cells, new Set([0, 1, 2]));
}

export function formatTargets(results: readonly TargetResult[]): string[] {
  return results.map((t) => `${t.status.toUpperCase().padEnd(12)} ${t.name} (${t.detail})`);
}
