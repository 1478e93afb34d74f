/**
 * The cluster benchmark: a real cluster of Raft nodes on worker threads (createCluster),
 * driven from the main thread by one client, each figure printed next to the limit that
 * bounds it, both measured in the same run with the same payloads.
 *
 * One scenario (bench.config.ts, kind 'cluster') runs, in this order:
 * 1. the limits that need no cluster, before it starts, so that nothing else runs:
 *    - ring: the SharedArrayBuffer ring between two worker threads (bench/micro/ring.bench.ts),
 *      with frames of the size a request or its reply takes on the client's ring (the larger
 *      of the two), published as a node publishes a turn's frames;
 *    - map: one thread applying the same puts (or gets) to a `Map`, keyed as the state
 *      machine keys it (the key's latin1 string), copying each value in (or out);
 * 2. the cluster: started (durable: WAL in a fresh temporary directory, `fsync: 'always'`),
 *    a leader awaited, every key written once (the warm-up of the whole run);
 * 3. for each level of requests in flight and each op: a discarded warm-up, then a closed
 *    loop (bench/load/loops.ts) whose latency comes from an HdrHistogram;
 * 4. for each op of `openLoopOps`: an open loop at `openLoopRateOfPeak` × the best closed
 *    loop of that op, latency counted from each operation's due time (coordinated omission);
 * 5. durable puts only: while the cluster idles after each of those loops, the bare
 *    `writev` + `fdatasync` loop (bench/micro/disk.bench.ts, preallocated file) at the WAL batch
 *    the loop achieved: committed writes per sync, estimated as writes over the log's new
 *    entries (see LoopProbe). Its records are the size each write takes
 *    in a batch entry. The three nodes share the disk, the bare loop has it alone.
 * Then the cluster is closed and the directory removed, also when something failed.
 *
 * Each row's limit is the tightest limit of its op (for durable puts, the disk limit at its
 * own batch), and its ratio is opsPerSec / limit.opsPerSec.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { quickCluster, type ClusterOp, type ClusterScenario } from '../../bench.config.ts';
import { encodeKvRequest } from '../../src/kv/index.ts';
import { encodedReplyBytes, encodedRequestBytes } from '../../src/runtime/index.ts';
import { createCluster, type Cluster, type KvClient } from '../../src/index.ts';
import { IOVECS_PER_WRITE_MAX, runDiskLoop } from '../micro/disk.bench.ts';
import { closedLoop, openLoop, type LoopResult, type Operation } from '../load/loops.ts';
import { silentProgress, type Progress } from '../shared/progress.ts';
import { runRingThroughput } from '../micro/ring.bench.ts';
import { withLimit, type BenchRow, type LimitRecord, type WalBatching } from '../shared/result.ts';
import { cpuByRole, threadDeltas, threadTimes, type ThreadCpu, type ThreadRoles, type ThreadTime } from '../shared/thread-cpu.ts';

/** Longest wait for the first leader. */
const LEADER_WAIT_MS = 10_000;
/** Requests in flight while every key is written once before the first measurement. */
const PRELOAD_IN_FLIGHT = 256;
/** The preload stops after this long even if keys are left (a stuck cluster must not hang the run). */
const PRELOAD_MS_MAX = 60_000;
/** Operations between two looks at the clock in the Map limit loop. */
const MAP_CLOCK_EVERY = 4096;
/** Longest ring warm-up before a ring limit is timed. */
const RING_WARMUP_MS_MAX = 250;
/** Distinct values the puts cycle through (a power of two). */
const VALUE_VARIANTS = 4;
/** Bytes of the length prefix each request gets in a batch entry (KvBatchBuilder). */
const BATCH_LENGTH_PREFIX_BYTES = 4;
// Rough costs of the steps that have no time budget, for the progress bar only.
const ESTIMATE_START_MS = 500;
const ESTIMATE_PRELOAD_MS = 1000;
const ESTIMATE_RING_SETUP_MS = 200;
const ESTIMATE_DISK_SETUP_MS = 400;

export interface ClusterRunOptions {
  /** Fewer levels of requests in flight, shorter loops (bench.config.ts, quickCluster). */
  readonly quick?: boolean;
  /** Overrides the measured time of every loop and limit, and caps each warm-up at it (tests). */
  readonly timeMs?: number;
  readonly progress?: Progress;
}

export interface ClusterPlan {
  readonly inFlight: readonly number[];
  readonly timeMs: number;
  readonly warmupMs: number;
  readonly limitTimeMs: number;
}

export interface ClusterRunResult {
  readonly rows: BenchRow[];
  readonly limits: LimitRecord[];
}

/** The levels and times a run of `scenario` uses under `options`. */
export function clusterPlan(scenario: ClusterScenario, options: ClusterRunOptions = {}): ClusterPlan {
  const quick = options.quick === true;
  const base: ClusterPlan = quick
    ? { inFlight: scenario.quickInFlight, timeMs: quickCluster.timeMs, warmupMs: quickCluster.warmupMs, limitTimeMs: quickCluster.limitTimeMs }
    : { inFlight: scenario.inFlight, timeMs: scenario.timeMs, warmupMs: scenario.warmupMs, limitTimeMs: scenario.limits.timeMs };
  const t = options.timeMs;
  if (t === undefined) return base;
  if (!(t > 0)) throw new RangeError(`timeMs must be positive, got ${t}`);
  return { ...base, timeMs: t, warmupMs: Math.min(base.warmupMs, t), limitTimeMs: t };
}

/** About how long a run of `scenario` takes, for a progress bar. */
export function estimateClusterMs(scenario: ClusterScenario, options: ClusterRunOptions = {}): number {
  const plan = clusterPlan(scenario, options);
  const rings = readOps(scenario).length > 0 ? 2 : 1;
  const ringMs = rings * (ESTIMATE_RING_SETUP_MS + Math.min(RING_WARMUP_MS_MAX, plan.limitTimeMs / 2) + plan.limitTimeMs);
  const mapMs = rings * plan.limitTimeMs;
  const loopsMs = plan.inFlight.length * scenario.ops.length * (plan.warmupMs + plan.timeMs) + scenario.openLoopOps.length * plan.timeMs;
  const diskMs = scenario.durable ? (plan.inFlight.length + scenario.openLoopOps.length) * (plan.limitTimeMs + ESTIMATE_DISK_SETUP_MS) : 0;
  return ringMs + mapMs + ESTIMATE_START_MS + ESTIMATE_PRELOAD_MS + loopsMs + diskMs;
}

/** The keys and values of a scenario, and the sizes they take on a ring and in the WAL. */
export interface Payloads {
  readonly keys: readonly Uint8Array[];
  readonly values: readonly Uint8Array[];
  /** A put's frame on a client ring (request or reply, the larger). */
  readonly putFrameBytes: number;
  /** A get's frame on a client ring (request or reply, the larger). */
  readonly getFrameBytes: number;
  /** What one put adds to a WAL batch entry: its encoded request and length prefix. */
  readonly walRecordBytes: number;
}

/** Keys `k000…0i` of `keyBytes` ASCII bytes; values of `valueBytes` fixed pseudo-random bytes. */
export function makePayloads(scenario: ClusterScenario): Payloads {
  const { keyBytes, valueBytes, keySpace } = scenario;
  const digits = String(keySpace - 1).length;
  if (keyBytes < digits + 1) throw new RangeError(`keys of ${keyBytes} bytes cannot number ${keySpace} keys`);
  const ascii = new TextEncoder();
  const keys = Array.from({ length: keySpace }, (_, i) => ascii.encode(`k${String(i).padStart(keyBytes - 1, '0')}`));
  const values = Array.from({ length: VALUE_VARIANTS }, (_, v) => Uint8Array.from({ length: valueBytes }, (_, j) => (v * 131 + j * 7 + 1) & 0xff));
  const key = keys[0]!;
  const value = values[0]!;
  // Large ids and indexes, so that no varint-like field is shorter than in a long run.
  const data = encodeKvRequest({ clientId: 0xffff_fff0, seq: 0xffff_fff0, command: { op: 'put', key, value } });
  const putRequest = encodedRequestBytes({ kind: 'write', requestId: 0xffff_fff0, data });
  const putReply = encodedReplyBytes({ kind: 'write', requestId: 0xffff_fff0, result: { op: 'put' }, index: 2 ** 40 });
  const getRequest = encodedRequestBytes({ kind: 'read', requestId: 0xffff_fff0, consistency: 'linearizable', key });
  const getReply = encodedReplyBytes({ kind: 'read', requestId: 0xffff_fff0, index: 2 ** 40, value });
  return {
    keys,
    values,
    putFrameBytes: Math.max(putRequest, putReply),
    getFrameBytes: Math.max(getRequest, getReply),
    walRecordBytes: data.length + BATCH_LENGTH_PREFIX_BYTES,
  };
}

function readOps(scenario: ClusterScenario): ClusterOp[] {
  return scenario.ops.filter((op) => op !== 'put');
}

/** The disk limit's batch for a loop's WAL batching: the nearest whole batch a `writev` can take. */
export function diskBatchOf(wal: WalBatching): number {
  return Math.min(IOVECS_PER_WRITE_MAX, Math.max(1, Math.round(wal.batch)));
}

/** The limits of `scenario` that bound `op` (disk limits: only the one at `diskBatch`). */
export function limitsFor(limits: readonly LimitRecord[], scenario: string, op: string, diskBatch: number | undefined): LimitRecord[] {
  return limits.filter((l) => l.scenario === scenario && l.ops.includes(op) && (l.kind !== 'disk' || l.batch === diskBatch));
}

interface Measured {
  readonly op: ClusterOp;
  readonly loop: 'closed' | 'open';
  readonly inFlight: number;
  readonly offeredOpsPerSec?: number;
  readonly result: LoopResult;
  readonly wal?: WalBatching;
  readonly note?: string;
  readonly cpu?: ThreadCpu;
}

export async function runClusterScenario(scenario: ClusterScenario, options: ClusterRunOptions = {}): Promise<ClusterRunResult> {
  const plan = clusterPlan(scenario, options);
  const progress = options.progress ?? silentProgress;
  const p = makePayloads(scenario);
  const name = scenario.name;
  const reads = readOps(scenario);

  const limits: LimitRecord[] = [];
  progress.step(`${name}: limit: ring between two worker threads, ${p.putFrameBytes} B frames (puts)`, ESTIMATE_RING_SETUP_MS + plan.limitTimeMs);
  limits.push(await ringLimit(scenario, p.putFrameBytes, ['put'], plan.limitTimeMs));
  if (reads.length > 0) {
    progress.step(`${name}: limit: ring between two worker threads, ${p.getFrameBytes} B frames (gets)`, ESTIMATE_RING_SETUP_MS + plan.limitTimeMs);
    limits.push(await ringLimit(scenario, p.getFrameBytes, reads, plan.limitTimeMs));
  }
  progress.step(`${name}: limit: one thread applying the same operations to a Map`, plan.limitTimeMs * (reads.length > 0 ? 2 : 1));
  limits.push(mapLimit(scenario, p, 'put', ['put'], plan.limitTimeMs));
  if (reads.length > 0) limits.push(mapLimit(scenario, p, 'get', reads, plan.limitTimeMs));

  const measured: Measured[] = [];
  const diskLimits = new Map<number, LimitRecord>();
  const dir = scenario.durable ? mkdtempSync(path.join(os.tmpdir(), 'ringraft-bench-')) : undefined;
  // Also when the process is made to exit (Ctrl-C in bench/run.ts) while the cluster runs.
  const removeDir = (): void => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', removeDir);
  let cluster: Cluster | undefined;
  try {
    progress.step(`${name}: starting ${scenario.nodes} nodes on worker threads${dir === undefined ? ', logs in memory' : `, WAL in ${dir}`}`, ESTIMATE_START_MS);
    cluster = await createCluster({ nodes: scenario.nodes, dataDir: dir, ...scenario.cluster, node: { fsync: 'always' } });
    const kv = cluster.client();
    await waitForLeader(cluster);
    progress.step(`${name}: writing each of ${scenario.keySpace.toLocaleString('en-US')} keys once`, ESTIMATE_PRELOAD_MS);
    await preload(kv, p);

    // Durable puts: the bare disk loop at the batch the WAL achieved, while the cluster idles.
    const measureDisk = (wal: WalBatching | undefined): void => {
      if (wal === undefined) return;
      const batch = diskBatchOf(wal);
      if (diskLimits.has(batch)) return;
      progress.note(`${name}: limit: bare writev + fdatasync, ${batch} × ${p.walRecordBytes} B per sync`);
      diskLimits.set(batch, diskLimit(scenario, batch, p.walRecordBytes, plan.limitTimeMs));
    };

    for (const inFlight of plan.inFlight) {
      for (const op of scenario.ops) {
        progress.step(`${name}: ${op}, closed loop, ${inFlight} in flight, ${plan.timeMs} ms`, plan.warmupMs + plan.timeMs);
        const operation = makeOperation(kv, op, p);
        const warm = await closedLoop(operation, { inFlight, durationMs: plan.warmupMs, opsMax: scenario.opsMaxPerLoop });
        if (warm.ops === 0) throw new Error(`${name}: no ${op} completed in the warm-up at ${inFlight} in flight: ${JSON.stringify(warm.errorsByCode)}`);
        const probe = await LoopProbe.start(cluster, scenario.durable && op === 'put');
        const result = await closedLoop(operation, { inFlight, durationMs: plan.timeMs, opsMax: scenario.opsMaxPerLoop });
        const { wal, note, cpu } = await probe.finish(result);
        measured.push({ op, loop: 'closed', inFlight, result, wal, note, cpu });
        measureDisk(wal);
      }
    }

    for (const op of scenario.openLoopOps) {
      const peak = Math.max(0, ...measured.filter((m) => m.op === op).map((m) => m.result.opsPerSec));
      const rate = Math.round(peak * scenario.openLoopRateOfPeak);
      if (rate <= 0) continue;
      progress.step(`${name}: ${op}, open loop at ${rate.toLocaleString('en-US')}/s (${scenario.openLoopRateOfPeak} × the peak), ${plan.timeMs} ms`, plan.timeMs);
      const probe = await LoopProbe.start(cluster, scenario.durable && op === 'put');
      const result = await openLoop(makeOperation(kv, op, p), { ratePerSec: rate, durationMs: plan.timeMs, inFlightMax: scenario.cluster.client.requestsInFlightMax });
      const { wal, note, cpu } = await probe.finish(result);
      measured.push({ op, loop: 'open', inFlight: result.inFlightPeak, offeredOpsPerSec: rate, result, wal, note, cpu });
      measureDisk(wal);
    }
  } finally {
    try {
      await cluster?.close();
    } finally {
      removeDir();
      process.off('exit', removeDir);
    }
  }

  limits.push(...diskLimits.values());
  const rows = measured.map((m) => {
    const diskBatch = m.wal === undefined ? undefined : diskBatchOf(m.wal);
    return withLimit(toRow(scenario, m), limitsFor(limits, name, m.op, diskBatch));
  });
  return { rows, limits };
}

function toRow(scenario: ClusterScenario, m: Measured): BenchRow {
  const r = m.result;
  return {
    name: scenario.name,
    nodes: scenario.nodes,
    durable: scenario.durable,
    inFlight: m.inFlight,
    op: m.op,
    opsPerSec: r.opsPerSec,
    latencyMs: r.latencyMs,
    limit: null,
    ratio: null,
    loop: m.loop,
    ...(m.offeredOpsPerSec === undefined ? {} : { offeredOpsPerSec: m.offeredOpsPerSec }),
    errors: r.errors,
    errorsByCode: r.errorsByCode,
    curveMs: r.curveMs,
    ...(m.wal === undefined ? {} : { wal: m.wal }),
    ...(m.note === undefined ? {} : { note: m.note }),
    ...(m.cpu === undefined ? {} : { cpu: m.cpu }),
  };
}

/** A failed read check: the value read is not one that was written. */
class BadValueError extends Error {
  readonly code = 'BAD_VALUE';
}

function makeOperation(kv: KvClient, op: ClusterOp, p: Payloads): Operation {
  const { keys, values } = p;
  const n = keys.length;
  const valueBytes = values[0]!.length;
  // Every key was written before the first read, so a read that finds no value of the
  // written length is wrong, and counts as an error rather than as a fast read.
  const check = (v: Uint8Array | undefined): void => {
    if (v === undefined || v.length !== valueBytes) throw new BadValueError(`read ${v === undefined ? 'no value' : `${v.length} bytes`}`);
  };
  switch (op) {
    case 'put':
      return (i) => kv.put(keys[i % n]!, values[i & (VALUE_VARIANTS - 1)]!);
    case 'get-linearizable':
    case 'get-lease': {
      const options = { consistency: op === 'get-lease' ? 'lease' : 'linearizable' } as const;
      return (i) => kv.get(keys[i % n]!, options).then(check);
    }
  }
}

async function waitForLeader(cluster: Cluster): Promise<void> {
  const deadline = performance.now() + LEADER_WAIT_MS;
  while ((await cluster.status()).leaderId === undefined) {
    if (performance.now() > deadline) throw new Error(`no leader within ${LEADER_WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Writes every key once: reads then find values, and the cluster is warm. */
async function preload(kv: KvClient, p: Payloads): Promise<void> {
  const put = makeOperation(kv, 'put', p);
  const r = await closedLoop(put, { inFlight: PRELOAD_IN_FLIGHT, durationMs: PRELOAD_MS_MAX, opsMax: p.keys.length });
  if (r.errors > 0 || r.ops < p.keys.length) {
    throw new Error(`preload wrote ${r.ops} of ${p.keys.length} keys: ${JSON.stringify(r.errorsByCode)}`);
  }
}

/**
 * What the cluster did during one loop besides answering: whether its leader changed (the
 * row then says so), and for durable puts how the WAL batched. Syncs are counted as the
 * log's new entries (the highest last index of any node, so that a change of leader loses
 * nothing): the leader proposes the writes of one turn as one entry and persists each Ready
 * with one `writev` and one `fdatasync`, so entries and syncs agree until a turn's writes
 * pass the host's write batch limit (128 KiB, some 770 puts), when one sync carries more
 * than one entry: then the count is above the syncs and the batch below the real one.
 */
class LoopProbe {
  private constructor(
    private readonly cluster: Cluster,
    private readonly countSyncs: boolean,
    private readonly before: LogPosition,
    /** Every thread's CPU when the loop started. */
    private readonly cpuBefore: Map<number, ThreadTime>,
  ) {}

  static async start(cluster: Cluster, countSyncs: boolean): Promise<LoopProbe> {
    const before = await logPosition(cluster);
    return new LoopProbe(cluster, countSyncs, before, threadTimes());
  }

  async finish(r: LoopResult): Promise<{ wal: WalBatching | undefined; note: string | undefined; cpu: ThreadCpu }> {
    const cpu = cpuByRole(threadDeltas(this.cpuBefore, threadTimes()), this.before.roles, r.ops);
    const after = await logPosition(this.cluster);
    const entries = after.lastIndex - this.before.lastIndex;
    const note = after.leaderId === this.before.leaderId ? undefined : `the leader changed during the loop (node ${this.before.leaderId ?? '-'} to ${after.leaderId ?? '-'})`;
    if (!this.countSyncs || entries <= 0 || r.ops === 0) return { wal: undefined, note, cpu };
    return { wal: { batch: r.ops / entries, fsyncsPerSec: entries / (r.elapsedMs / 1000), source: 'log-entries' }, note, cpu };
  }
}

interface LogPosition {
  readonly leaderId: number | undefined;
  readonly lastIndex: number;
  /** The threads of the client (this process's main thread), the leader and the followers. */
  readonly roles: ThreadRoles;
}

async function logPosition(cluster: Cluster): Promise<LogPosition> {
  const st = await cluster.status();
  const leader = st.nodes.find((n) => n.id === st.leaderId)?.osThreadId;
  const followers = st.nodes.filter((n) => n.id !== st.leaderId && n.osThreadId !== undefined).map((n) => n.osThreadId!);
  return { leaderId: st.leaderId, lastIndex: Math.max(0, ...st.nodes.map((n) => n.lastIndex)), roles: { main: process.pid, leader, followers } };
}

async function ringLimit(scenario: ClusterScenario, frameBytes: number, ops: readonly ClusterOp[], timeMs: number): Promise<LimitRecord> {
  const publishBatch = scenario.limits.ringPublishBatch;
  const r = await runRingThroughput({ messageBytes: frameBytes, publishBatch, timeMs, warmupMs: Math.min(RING_WARMUP_MS_MAX, timeMs / 2) });
  return {
    scenario: scenario.name,
    kind: 'ring',
    name: `ring, ${frameBytes} B frames, ${publishBatch} per publish`,
    ops,
    opsPerSec: r.messagesPerSec,
    bytesPerOp: frameBytes,
  };
}

/** The same state machine key as the KV store's: one char per byte. */
function keyString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');
}

/**
 * One thread applying the scenario's puts to a Map, or reading them back, for `timeMs`: the
 * key as the state machine keys it (its latin1 string), and the value copied once — into a
 * stored copy for a put (out of the entry that carried it), into a reply frame for a get (as
 * a reply is encoded into ring memory). Copies use Node's pooled `Buffer.from`, the cheapest
 * way to own 128 bytes here, so that the limit is what one thread can do, not what one way
 * of copying costs.
 */
function mapLimit(scenario: ClusterScenario, p: Payloads, kind: 'put' | 'get', ops: readonly ClusterOp[], timeMs: number): LimitRecord {
  const { keys, values } = p;
  const n = keys.length;
  const map = new Map<string, Uint8Array>();
  if (kind === 'get') for (let i = 0; i < n; i++) map.set(keyString(keys[i]!), Buffer.from(values[i & (VALUE_VARIANTS - 1)]!));
  const frame = new Uint8Array(values[0]!.length);
  let count = 0;
  let bytes = 0;
  const start = performance.now();
  let now = start;
  while (now - start < timeMs) {
    if (kind === 'put') {
      for (let j = 0; j < MAP_CLOCK_EVERY; j++, count++) map.set(keyString(keys[count % n]!), Buffer.from(values[count & (VALUE_VARIANTS - 1)]!));
    } else {
      for (let j = 0; j < MAP_CLOCK_EVERY; j++, count++) {
        const v = map.get(keyString(keys[count % n]!))!;
        frame.set(v);
        bytes += v.length;
      }
    }
    now = performance.now();
  }
  if (kind === 'get' && bytes !== count * frame.length) throw new Error('assertion failed: the Map limit read back other values');
  return {
    scenario: scenario.name,
    kind: 'map',
    name: `Map.${kind === 'put' ? 'set' : 'get'}, one thread`,
    ops,
    opsPerSec: (count / (now - start)) * 1000,
    bytesPerOp: scenario.keyBytes + scenario.valueBytes,
  };
}

function diskLimit(scenario: ClusterScenario, batch: number, recordBytes: number, timeMs: number): LimitRecord {
  const r = runDiskLoop({ variant: 'preallocated', recordBytes, batchRecords: batch, timeMs, fileBytesMax: scenario.limits.diskFileBytesMax });
  return {
    scenario: scenario.name,
    kind: 'disk',
    name: `disk writev+fdatasync, ${batch} × ${recordBytes} B`,
    ops: ['put'],
    opsPerSec: r.recordsPerSec,
    bytesPerOp: recordBytes,
    batch,
    fsyncsPerSec: r.fsyncsPerSec,
  };
}
