/**
 * The peer comparison: the same workload, in one run, against ringraft (3 nodes on worker
 * threads, fsync 'always'), a 3-member etcd and a Redis with `appendfsync always` and
 * `everysec`. One system runs at a time, so that none takes CPU from another; every server
 * is started here and stopped here, also when a measurement fails.
 *
 * Per system, a round runs every cell (puts, then gets) once, each as a warm-up loop and a
 * measured closed loop (bench/load/loops.ts); the run reports, per cell, the round with the
 * median throughput.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as turnOfEventLoop } from 'node:timers/promises';
import { closedLoop, type LatencyMs, type LoopResult, type Operation } from '../load/loops.ts';
import {
  ETCD_BINARY,
  findBinary,
  notInstalledMessage,
  REDIS_BINARY,
  startEtcdCluster,
  startRedis,
  startRingraftServe,
  type PeerBinary,
  type RedisFsync,
  type ServerSet,
} from './servers.ts';
import { etcdTarget, isRingraft, redisConnection, ringraftTcpTarget, startRedisTarget, startRingraft, type SystemName, type Target, type TargetData } from './targets.ts';
import { cellsOf, makeKeys, makeValue, type Cell, type PeerOp, type Plan } from './workload.ts';
import { benchmarkTarget, REDIS_BENCHMARK_BINARY, type RedisBenchmarkPlan, type RedisBenchmarkRow, type RespTargetName } from './redis-benchmark.ts';

export const SYSTEMS: readonly SystemName[] = ['ringraft', 'ringraft-tcp', 'etcd', 'redis'];

/** One measured cell, in the shape of the `peers` part of the benchmark JSON. */
export interface PeerRow {
  readonly system: SystemName;
  readonly name: string;
  readonly nodes: number;
  readonly durable: boolean;
  /** Requests in flight (for a pipelined cell: clients × pipeline depth). */
  readonly inFlight: number;
  readonly op: PeerOp;
  /** Operations per second; a pipelined cell counts each SET. */
  readonly opsPerSec: number;
  /** Per request; for a pipelined cell, per pipeline (each SET in it waits as long). */
  readonly latencyMs: LatencyMs;
  /** Where a client cap lowered `inFlight`: the concurrency the cell asked for (ratios use ringraft's row at this one). */
  readonly inFlightAsked?: number;
  /** ringraft's figure for the same op and concurrency; null on ringraft's own rows or where it did not run. */
  readonly limit: { readonly name: string; readonly opsPerSec: number } | null;
  /** ringraft / this system (limit.opsPerSec / opsPerSec); above 1 means ringraft did more. */
  readonly ratio: number | null;
  /** Failed requests in the reported loop (not counted in opsPerSec). */
  readonly errors: number;
  readonly errorsByCode: Readonly<Record<string, number>>;
  /** What else a reader must know about this row (a cap, a pipeline). */
  readonly note?: string;
}

export interface PeersOptions {
  readonly plan: Plan;
  readonly only: ReadonlySet<SystemName>;
  /** Owns every server process started; the caller may stop them all from a signal handler. */
  readonly servers: ServerSet;
  /** Where binaries are looked for (default: $PATH, then /usr/bin). */
  readonly searchPath?: readonly string[];
  /** Parent of the run's temporary directory (default: the OS's). */
  readonly tempParent?: string;
  /** Called with the run's temporary directory as soon as it exists (to remove it on a signal). */
  readonly onTempDir?: (dir: string) => void;
  readonly onProgress: (line: string) => void;
  /** Stops the run before its next cell (a signal handler aborts it while it stops the servers). */
  readonly signal?: AbortSignal;
  /** redis-benchmark's cells against ringraft's RESP port (ringraft-tcp) and redis-server (redis); none if left out. */
  readonly redisBenchmark?: RedisBenchmarkPlan;
}

export interface PeersResult {
  readonly rows: PeerRow[];
  /** Systems that did not run, with why (a binary not installed). */
  readonly skipped: { readonly system: SystemName; readonly reason: string }[];
  /** redis-benchmark's figures (redis-benchmark.ts), when it ran. */
  readonly redisBenchmark: RedisBenchmarkRow[];
}

interface Measured {
  readonly cell: Cell;
  readonly result: LoopResult;
}

/** Runs the chosen systems one after the other and returns their rows, ratios filled in. */
export async function runPeers(options: PeersOptions): Promise<PeersResult> {
  const tempDir = mkdtempSync(path.join(options.tempParent ?? os.tmpdir(), 'ringraft-peers-'));
  options.onTempDir?.(tempDir);
  const data: TargetData = { keys: makeKeys(options.plan.keysCount), value: makeValue(), requestTimeoutMs: options.plan.requestTimeoutMs };
  const rows: PeerRow[] = [];
  const skipped: PeersResult['skipped'] = [];
  const redisBenchmark: RedisBenchmarkRow[] = [];
  const say = options.onProgress;
  const benchmarkBin = options.redisBenchmark === undefined ? undefined : findBinary(REDIS_BENCHMARK_BINARY, options.searchPath);
  if (options.redisBenchmark !== undefined && benchmarkBin === undefined) say(`redis-benchmark: ${notInstalledMessage(REDIS_BENCHMARK_BINARY)}`);
  /** redis-benchmark against a RESP port, if it is to run. */
  const resp = (target: RespTargetName, port: number): void => {
    if (benchmarkBin !== undefined) redisBenchmark.push(...benchmarkTarget(benchmarkBin, target, '127.0.0.1', port, options.redisBenchmark!, say));
  };
  try {
    options.signal?.throwIfAborted();
    if (options.only.has('ringraft')) {
      say('ringraft: starting 3 nodes on worker threads (fsync always)');
      rows.push(...(await runTarget(() => startRingraft(path.join(tempDir, 'ringraft'), data), options, data)));
    }
    if (options.only.has('ringraft-tcp')) {
      options.signal?.throwIfAborted();
      rows.push(...(await runRingraftServe(path.join(tempDir, 'ringraft-tcp'), options, data, resp)));
    }
    if (options.only.has('etcd')) {
      const bin = findBinary(ETCD_BINARY, options.searchPath);
      options.signal?.throwIfAborted();
      if (bin === undefined) skip(skipped, 'etcd', ETCD_BINARY, say);
      else rows.push(...(await runEtcd(bin, path.join(tempDir, 'etcd'), options, data)));
    }
    if (options.only.has('redis')) {
      const bin = findBinary(REDIS_BINARY, options.searchPath);
      if (bin === undefined) skip(skipped, 'redis', REDIS_BINARY, say);
      else {
        for (const fsync of ['always', 'everysec'] as const) {
          options.signal?.throwIfAborted();
          rows.push(...(await runRedis(bin, fsync, path.join(tempDir, `redis-${fsync}`), options, data, resp)));
        }
      }
    }
  } finally {
    await options.servers.stopAll();
    rmSync(tempDir, { recursive: true, force: true });
  }
  return { rows: withRatios(rows), skipped, redisBenchmark };
}

function skip(skipped: PeersResult['skipped'], system: SystemName, binary: PeerBinary, say: (line: string) => void): void {
  const reason = notInstalledMessage(binary);
  skipped.push({ system, reason });
  say(`${system}: ${reason}`);
}

async function runRingraftServe(dataDir: string, options: PeersOptions, data: TargetData, resp: (target: RespTargetName, port: number) => void): Promise<PeerRow[]> {
  options.onProgress('ringraft-tcp: starting 3 serve processes on 127.0.0.1 (fsync always)');
  const serve = await startRingraftServe(options.servers, dataDir);
  options.onProgress(`ringraft-tcp: nodes up, PIDs ${serve.members.map((m) => m.pid).join(', ')}`);
  try {
    const rows = await runTarget(() => ringraftTcpTarget(serve.endpoints, serve.clusterToken, data), options, data);
    options.signal?.throwIfAborted();
    // The leader's port: a follower's forwards to it, a hop more.
    resp('ringraft RESP (3 serve, fsync always)', serve.respPorts[(await serve.leader()) - 1]!);
    return rows;
  } finally {
    for (const m of serve.members) await options.servers.stop(m);
  }
}

async function runEtcd(bin: string, dataDir: string, options: PeersOptions, data: TargetData): Promise<PeerRow[]> {
  const version = versionOf(bin, /etcd Version: (\S+)/);
  options.onProgress(`etcd ${version}: starting 3 members on 127.0.0.1`);
  const etcd = await startEtcdCluster(options.servers, bin, dataDir);
  options.onProgress(`etcd: members up, PIDs ${etcd.members.map((m) => m.pid).join(', ')}`);
  try {
    return await runTarget(async () => etcdTarget(etcd.endpoints, version, data), options, data);
  } finally {
    // One by one: see ServerSet.stopAll.
    for (const m of etcd.members) await options.servers.stop(m);
  }
}

async function runRedis(bin: string, fsync: RedisFsync, dataDir: string, options: PeersOptions, data: TargetData, resp: (target: RespTargetName, port: number) => void): Promise<PeerRow[]> {
  const version = versionOf(bin, /v=(\S+)/);
  options.onProgress(`redis ${version}: starting with appendfsync ${fsync} on 127.0.0.1`);
  const redis = await startRedis(options.servers, bin, dataDir, fsync, (port) => ping(port, options.plan.requestTimeoutMs));
  options.onProgress(`redis (appendfsync ${fsync}): up, PID ${redis.server.pid}`);
  try {
    const rows = await runTarget(() => startRedisTarget(redis.port, fsync, version, options.plan.redisConnectionsMax, data), options, data);
    options.signal?.throwIfAborted();
    resp(`redis appendfsync ${fsync}`, redis.port);
    return rows;
  } finally {
    await options.servers.stop(redis.server);
  }
}

async function ping(port: number, timeoutMs: number): Promise<boolean> {
  const connection = redisConnection(port, timeoutMs);
  try {
    await connection.connect();
    return (await connection.ping()) === 'PONG';
  } finally {
    connection.disconnect();
  }
}

/** The first match of `pattern` in `bin --version`, or 'unknown'. */
function versionOf(bin: string, pattern: RegExp): string {
  try {
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    return pattern.exec(out)?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Starts a target, runs its cells for the plan's rounds, and always closes it. */
async function runTarget(start: () => Promise<Target>, options: PeersOptions, data: TargetData): Promise<PeerRow[]> {
  const target = await start();
  try {
    return await measureTarget(target, options, data);
  } finally {
    await target.close();
  }
}

async function measureTarget(target: Target, options: PeersOptions, data: TargetData): Promise<PeerRow[]> {
  const { plan, onProgress: say } = options;
  const cells = cellsOf(plan, isRingraft(target.system) ? 'ringraft' : (target.system as 'etcd' | 'redis'));
  const rounds: Measured[][] = cells.map(() => []);
  let preloaded = false;
  for (let round = 1; round <= plan.rounds; round++) {
    for (const [c, asked] of cells.entries()) {
      options.signal?.throwIfAborted();
      if (asked.op === 'get' && !preloaded) {
        await preload(target, options, data);
        preloaded = true;
      }
      const cell = capped(target, asked, plan);
      const op = yieldingOnError(target.operation(cell));
      const loop = { inFlight: cell.inFlight / (cell.pipelineDepth ?? 1), opsMax: plan.loopOpsMax };
      if (plan.warmupMs > 0) await closedLoop(op, { ...loop, durationMs: plan.warmupMs });
      const raw = await closedLoop(op, { ...loop, durationMs: plan.durationMs });
      const result = perRequest(raw, cell.pipelineDepth ?? 1);
      rounds[c]!.push({ cell, result });
      say(`${target.system}: round ${round}/${plan.rounds} ${describeCell(cell)}: ${Math.round(result.opsPerSec).toLocaleString('en-US')} ops/s, p99 ${result.latencyMs.p99.toFixed(2)} ms${errorText(result)}`);
    }
  }
  return cells.map((asked, c) => toRow(target, asked, median(rounds[c]!)));
}

/** Writes every key once, so that gets find the value. */
async function preload(target: Target, options: PeersOptions, data: TargetData): Promise<void> {
  const count = data.keys.length;
  const op = yieldingOnError(target.operation({ op: 'put', inFlight: options.plan.preloadInFlight }));
  const result = await closedLoop(op, { inFlight: options.plan.preloadInFlight, durationMs: 120_000, opsMax: count });
  options.onProgress(`${target.system}: preloaded ${result.ops.toLocaleString('en-US')} of ${count.toLocaleString('en-US')} keys in ${(result.elapsedMs / 1000).toFixed(1)} s${errorText(result)}`);
}

/**
 * Lets the event loop turn after a failed operation. A server that is down fails requests
 * at once, and a closed loop of failures that settle as microtasks would hold the thread
 * for the rest of its time: no timer, signal or child-exit event would run meanwhile.
 */
function yieldingOnError(op: Operation): Operation {
  return async (i) => {
    try {
      return await op(i);
    } catch (error) {
      await turnOfEventLoop();
      throw error;
    }
  };
}

/** The cell as it can run on `target`: etcd's concurrency capped at the plan's maximum. */
function capped(target: Target, cell: Cell, plan: Plan): Cell {
  if (target.system !== 'etcd' || cell.inFlight <= plan.etcdInFlightMax) return cell;
  return { ...cell, inFlight: plan.etcdInFlightMax };
}

/** A pipelined loop counts pipelines; the row counts the SETs in them. */
function perRequest(r: LoopResult, depth: number): LoopResult {
  if (depth === 1) return r;
  return { ...r, ops: r.ops * depth, opsPerSec: r.opsPerSec * depth };
}

function median(results: readonly Measured[]): Measured {
  const sorted = [...results].sort((a, b) => a.result.opsPerSec - b.result.opsPerSec);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function toRow(target: Target, asked: Cell, m: Measured): PeerRow {
  const notes: string[] = [];
  if (m.cell.inFlight !== asked.inFlight) notes.push(`asked ${asked.inFlight} in flight, capped at ${m.cell.inFlight}`);
  if (m.cell.pipelineDepth !== undefined) notes.push(`${m.cell.inFlight / m.cell.pipelineDepth} clients × ${m.cell.pipelineDepth}-deep pipeline; latency per pipeline`);
  return {
    system: target.system,
    name: target.name,
    nodes: target.nodes,
    durable: target.durable,
    inFlight: m.cell.inFlight,
    op: m.cell.op,
    opsPerSec: m.result.opsPerSec,
    latencyMs: m.result.latencyMs,
    limit: null,
    ratio: null,
    errors: m.result.errors,
    errorsByCode: m.result.errorsByCode,
    ...(m.cell.inFlight !== asked.inFlight ? { inFlightAsked: asked.inFlight } : {}),
    ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
  };
}

/**
 * Fills each peer row's `limit` and `ratio` from ringraft's row of the same op and
 * concurrency: ringraft over TCP (separate processes, as every peer runs) where it ran,
 * else ringraft on worker threads.
 */
export function withRatios(rows: readonly PeerRow[]): PeerRow[] {
  const tcp = rows.filter((r) => r.system === 'ringraft-tcp');
  const ringraft = tcp.length > 0 ? tcp : rows.filter((r) => r.system === 'ringraft');
  const label = tcp.length > 0 ? 'ringraft over TCP' : 'ringraft';
  return rows.map((row) => {
    if (isRingraft(row.system)) return row;
    // A capped row is matched by the concurrency asked for: the question is what each system
    // serves to that many callers.
    const inFlight = row.inFlightAsked ?? row.inFlight;
    const mine = ringraft.find((r) => r.op === row.op && r.inFlight === inFlight);
    if (mine === undefined) return row;
    return {
      ...row,
      limit: { name: `${label} ${row.op} at ${inFlight} in flight`, opsPerSec: mine.opsPerSec },
      ratio: row.opsPerSec > 0 ? mine.opsPerSec / row.opsPerSec : null,
    };
  });
}

export function describeCell(cell: Cell): string {
  if (cell.pipelineDepth !== undefined) return `${cell.op} ${cell.inFlight / cell.pipelineDepth} clients × ${cell.pipelineDepth} pipelined`;
  return `${cell.op} at ${cell.inFlight} in flight`;
}

function errorText(r: LoopResult): string {
  if (r.errors === 0) return '';
  return `, ${r.errors} errors (${Object.entries(r.errorsByCode).map(([code, n]) => `${code} ${n}`).join(', ')})`;
}
