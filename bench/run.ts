/**
 * `npm run bench`: runs the scenarios of bench.config.ts and prints tables.
 *
 *   node dist/bench/run.js [--scenario NAME]... [--quick] [--json FILE] [--time-ms N]
 *
 * --scenario NAME  run only this scenario (repeatable; default: all, the micro-benchmarks
 *                  first, then the 3-node cluster in memory and durable)
 * --quick          shorter loops and fewer levels of requests in flight (a smoke run for
 *                  CI, under a minute; not for numbers)
 * --json FILE      where the JSON result goes (default .tmp/bench/result.json); the HTML
 *                  report goes next to it, as report.html
 * --time-ms N      every measured loop and limit takes N ms (tests of the bench itself)
 *
 * Progress goes to stderr (a bar on a terminal, plain lines otherwise); the tables, the
 * targets and the paths of what was written go to stdout. MB/s counts 1 MB as 10^6 bytes.
 *
 * This is the CLI entry, the one place under bench/ that writes to the terminal.
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { quickTimeMs, scenarios, targets, type Scenario } from '../bench.config.ts';
import { collectGarbage } from './shared/collect-garbage.ts';
import { runClusterTcp } from './cluster/cluster-tcp.bench.ts';
import { estimateClusterMs, runClusterScenario } from './cluster/cluster.bench.ts';
import { runCoreScenario } from './micro/core.bench.ts';
import { compareCrcRows, runCrcScenario } from './micro/crc.bench.ts';
import { runCodecBench } from './micro/codec.bench.ts';
import { compareDiskRows, runDiskScenario } from './micro/disk.bench.ts';
import type { ResultRow } from './shared/measure.ts';
import { createProgress, type Progress } from './shared/progress.ts';
import { writeReport } from './shared/report.ts';
import {
  evaluateTargets,
  formatClusterTable,
  formatLimits,
  formatNumber,
  formatTargets,
  machineInfo,
  textTable,
  writeBenchJson,
  type BenchJson,
  type BenchRow,
  type LimitRecord,
} from './shared/result.ts';
import { runRingBench, type RingBenchResult, type ThroughputResult } from './micro/ring.bench.ts';

const USAGE = 'usage: node dist/bench/run.js [--scenario NAME]... [--quick] [--json FILE] [--time-ms N]';
const JSON_DEFAULT = path.join('.tmp', 'bench', 'result.json');
const REPORT_NAME = 'report.html';

type MicroScenario = Exclude<Scenario, { kind: 'cluster' }>;

/** Rough time of a micro scenario with `timeMs` per task (warm-ups and set-up included), for the progress bar. */
function estimateMicroMs(scenario: MicroScenario, timeMs: number): number {
  const task = timeMs + Math.min(250, timeMs / 4);
  switch (scenario.kind) {
    case 'core':
      return (scenario.batchSizes.length + 2) * task;
    case 'crc':
      return scenario.bufferSizesBytes.length * 2 * task;
    case 'disk':
      return scenario.batchSizes.length * scenario.variants.length * timeMs + 2000;
    case 'codec':
      return 20 * task;
    case 'ring':
      return 5 * (timeMs + 400);
  }
}

async function runMicroScenario(scenario: MicroScenario, timeMs: number, onProgress: (line: string) => void): Promise<ResultRow[]> {
  switch (scenario.kind) {
    case 'core':
      return runCoreScenario(scenario, { timeMs, onProgress });
    case 'crc':
      return runCrcScenario(scenario, { timeMs, onProgress });
    case 'disk':
      return runDiskScenario(scenario, { timeMs, onProgress });
    case 'codec':
      return (await runCodecBench({ timeMs, onProgress })).map((r) => ({ ...r, name: scenario.name, kind: scenario.kind }));
    case 'ring':
      return ringRows(scenario.name, await runRingBench({ timeMs, messageBytes: scenario.messageBytes, onProgress }));
  }
}

/** The ring benchmark's figures as table rows: throughput per transport, then round trips. */
function ringRows(name: string, r: RingBenchResult): ResultRow[] {
  const row = (task: string, variant: string, batch: number, op: string, opsPerSec: number, samples: number): ResultRow => ({
    name,
    kind: 'ring',
    task,
    variant,
    batch,
    op,
    opsPerSec,
    nsPerOp: 1e9 / opsPerSec,
    bytesPerOp: r.messageBytes,
    mbPerSec: (opsPerSec * r.messageBytes) / 1e6,
    rmePercent: 0,
    samples,
  });
  const t = (variant: string, batch: number, x: ThroughputResult): ResultRow => row('throughput', variant, batch, 'message', x.messagesPerSec, x.messages);
  const rt = r.latency;
  return [
    t('ring', 1, r.throughput.ring),
    t('ring', r.throughput.ringPublishBatch, r.throughput.ringBatched),
    t('postMessage', 1, r.throughput.postMessage),
    { ...row('round-trip p50', 'ring', 1, 'round trip', 1e6 / rt.ring.p50Us, rt.ring.samples), mbPerSec: undefined },
    { ...row('round-trip p99', 'ring', 1, 'round trip', 1e6 / rt.ring.p99Us, rt.ring.samples), mbPerSec: undefined },
    { ...row('round-trip p50', 'postMessage', 1, 'round trip', 1e6 / rt.postMessage.p50Us, rt.postMessage.samples), mbPerSec: undefined },
    { ...row('round-trip p99', 'postMessage', 1, 'round trip', 1e6 / rt.postMessage.p99Us, rt.postMessage.samples), mbPerSec: undefined },
  ];
}

/** Ring against postMessage, from the same run. */
function compareRingRows(rows: readonly ResultRow[]): string[] {
  const find = (task: string, variant: string, batch?: number) =>
    rows.find((r) => r.kind === 'ring' && r.task === task && r.variant === variant && (batch === undefined || r.batch === batch));
  const ring = find('throughput', 'ring', 1);
  const post = find('throughput', 'postMessage');
  const p50Ring = find('round-trip p50', 'ring');
  const p50Post = find('round-trip p50', 'postMessage');
  if (ring === undefined || post === undefined || p50Ring === undefined || p50Post === undefined) return [];
  return [
    `ring throughput: ${formatNumber(ring.opsPerSec)} msg/s, postMessage ${formatNumber(post.opsPerSec)} msg/s: ring ×${(ring.opsPerSec / post.opsPerSec).toFixed(1)}`,
    `round trip p50: ring ${(p50Ring.nsPerOp / 1000).toFixed(1)} µs, postMessage ${(p50Post.nsPerOp / 1000).toFixed(1)} µs`,
  ];
}

/** The micro-benchmark rows: one line per task. */
function formatMicroTable(rows: readonly ResultRow[]): string {
  const header = ['scenario', 'task', 'variant', 'batch', 'ops/s', 'ns/op', 'op', 'ns/round', 'MB/s', 'fsyncs/s', '±%', 'samples'];
  const optional = (x: number | undefined) => (x === undefined ? '' : formatNumber(x));
  const cells = rows.map((r) => [
    r.name,
    r.task,
    r.variant ?? '',
    String(r.batch),
    formatNumber(r.opsPerSec),
    formatNumber(r.nsPerOp),
    r.op,
    optional(r.nsPerRound),
    optional(r.mbPerSec),
    optional(r.fsyncsPerSec),
    r.rmePercent.toFixed(1),
    String(r.samples),
  ]);
  return textTable(header, cells, new Set([0, 1, 2, 6]));
}

function parsePositive(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  const x = Number(text);
  if (!(Number.isFinite(x) && x > 0)) throw new Error(`${name} must be a positive number, not ${text}`);
  return x;
}

async function main(): Promise<number> {
  let args;
  let timeOverride: number | undefined;
  try {
    args = parseArgs({
      options: {
        scenario: { type: 'string', multiple: true },
        quick: { type: 'boolean', default: false },
        json: { type: 'string' },
        'time-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: false,
    }).values;
    timeOverride = parsePositive(args['time-ms'], '--time-ms');
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(`${USAGE}\nscenarios: ${scenarios.map((s) => s.name).join(', ')}; and, only when named, ${TCP_SCENARIO} (3 serve processes over TCP)`);
    return 0;
  }
  const names = args.scenario ?? scenarios.map((s) => s.name);
  // The cluster over TCP (3 serve processes) runs only when named: it is not in the default run.
  if (names.includes(TCP_SCENARIO)) {
    if (names.length > 1) {
      console.error(`--scenario ${TCP_SCENARIO} runs alone`);
      return 2;
    }
    const m = machineInfo();
    console.log(`ringraft bench — ${m.cpu}, ${m.cores} cores, Node.js ${m.node}${args.quick ? ' (quick: not for numbers)' : ''}`);
    console.log(`${TCP_SCENARIO}: 3 ringraft serve processes on ${HOST_LOOPBACK}, fsync 'always'; the client in this process (a fourth); CPU per op from /proc/<pid>/task/<tid>/schedstat (L: the leader's process)`);
    await runClusterTcp({ quick: args.quick });
    return 0;
  }
  const chosen: Scenario[] = [];
  for (const name of names) {
    const s = scenarios.find((x) => x.name === name);
    if (s === undefined) {
      console.error(`unknown scenario '${name}'; known: ${scenarios.map((x) => x.name).join(', ')}`);
      return 2;
    }
    chosen.push(s);
  }
  const quick = args.quick;
  const jsonFile = args.json ?? JSON_DEFAULT;
  const reportFile = path.join(path.dirname(jsonFile), REPORT_NAME);
  const microTimeMs = (s: Scenario) => timeOverride ?? (quick ? quickTimeMs : s.timeMs);
  const clusterOptions = { quick, timeMs: timeOverride };
  const estimateMs = (s: Scenario) => (s.kind === 'cluster' ? estimateClusterMs(s, clusterOptions) : estimateMicroMs(s, microTimeMs(s)));

  const m = machineInfo();
  const startedAt = new Date().toISOString();
  const runStart = performance.now();
  console.log(`ringraft bench — ${m.cpu}, ${m.cores} cores, Node.js ${m.node}${quick ? ' (quick: not for numbers)' : ''}`);
  const progress: Progress = createProgress(chosen.reduce((sum, s) => sum + estimateMs(s), 0));
  const micro: ResultRow[] = [];
  const rows: BenchRow[] = [];
  const limits: LimitRecord[] = [];
  try {
    for (const scenario of chosen) {
      // Each scenario starts with the garbage of the ones before it collected (see collect-garbage.ts).
      collectGarbage();
      if (scenario.kind === 'cluster') {
        const r = await runClusterScenario(scenario, { ...clusterOptions, progress });
        rows.push(...r.rows);
        limits.push(...r.limits);
      } else {
        const timeMs = microTimeMs(scenario);
        progress.step(`${scenario.name} (${scenario.kind}): ${scenario.description}; ${timeMs} ms per task`, estimateMs(scenario));
        micro.push(...(await runMicroScenario(scenario, timeMs, (line) => progress.note(`measuring ${line}`))));
      }
    }
  } finally {
    progress.done();
  }

  if (micro.length > 0) {
    console.log(`\n${formatMicroTable(micro)}`);
    // Alternatives measured side by side, compared where the table would make one do sums.
    const comparisons = [...compareCrcRows(micro), ...compareDiskRows(micro), ...compareRingRows(micro)];
    if (comparisons.length > 0) console.log(`\n${comparisons.join('\n')}`);
  }
  const verdicts = rows.length > 0 ? evaluateTargets(rows, targets) : [];
  if (rows.length > 0) {
    console.log(`\ncluster: ${os.availableParallelism()} cores shared by the nodes' threads and the client's; ratio = ops/s ÷ the tightest limit of the op`);
    console.log(`\n${formatClusterTable(rows)}`);
    for (const r of rows) if (r.note !== undefined) console.log(`note: ${r.name} ${r.op} at ${r.inFlight} in flight: ${r.note}`);
    console.log(`\nlimits, measured in the same run with the same payloads:\n${formatLimits(limits)}`);
    console.log(`\ntargets (reported, never tuned for):\n${formatTargets(verdicts).join('\n')}`);
  }
  const result: BenchJson = {
    machine: m,
    scenarios: rows,
    peers: [],
    limits,
    targets: verdicts,
    micro,
    startedAt,
    command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
  };
  writeBenchJson(jsonFile, result);
  writeReport(reportFile, result);
  console.log(`\nwrote ${jsonFile}\nreport: ${reportFile}\ntook ${((performance.now() - runStart) / 1000).toFixed(0)} s`);
  return 0;
}

const TCP_SCENARIO = 'cluster-tcp';
const HOST_LOOPBACK = '127.0.0.1';

// Ctrl-C: leave through process.exit, so that 'exit' handlers (temporary directories) run.
process.once('SIGINT', () => process.exit(130));
process.exitCode = await main();
