/**
 * `npm run bench`: runs the scenarios of bench.config.ts and prints a table.
 *
 *   node dist/bench/run.js [--scenario NAME] [--quick] [--json FILE]
 *
 * --scenario NAME  run only this scenario (repeatable; default: all)
 * --quick          a short time budget per task (for a smoke run, not for numbers)
 * --json FILE      also write the results as JSON: { machine, scenarios: [rows] }
 *
 * MB/s counts 1 MB as 10^6 bytes.
 *
 * This is the CLI entry, the one place under bench/ that writes to the terminal.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { quickTimeMs, scenarios, type Scenario } from '../bench.config.ts';
import { runCoreScenario } from './core.bench.ts';
import { compareCrcRows, runCrcScenario } from './crc.bench.ts';
import { runCodecBench } from './codec.bench.ts';
import { compareDiskRows, runDiskScenario } from './disk.bench.ts';
import { runRingBench, type RingBenchResult, type ThroughputResult } from './ring.bench.ts';
import type { ResultRow } from './measure.ts';

interface Machine {
  readonly cores: number;
  readonly cpu: string;
  readonly node: string;
}

const USAGE = 'usage: node dist/bench/run.js [--scenario NAME]... [--quick] [--json FILE]';

function machine(): Machine {
  return { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model.trim() ?? 'unknown', node: process.version };
}

async function runScenario(scenario: Scenario, timeMs: number, onProgress: (line: string) => void): Promise<ResultRow[]> {
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

function formatNumber(x: number): string {
  return x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toPrecision(3);
}

/** A plain text table, right-aligned numbers, one row per result. */
function formatTable(rows: readonly ResultRow[]): string {
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
  const left = new Set([0, 1, 2, 6]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]) =>
    c.map((s, i) => (left.has(i) ? s.padEnd(widths[i]!) : s.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        scenario: { type: 'string', multiple: true },
        quick: { type: 'boolean', default: false },
        json: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: false,
    }).values;
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(`${USAGE}\nscenarios: ${scenarios.map((s) => s.name).join(', ')}`);
    return 0;
  }
  const names = args.scenario ?? scenarios.map((s) => s.name);
  const chosen: Scenario[] = [];
  for (const name of names) {
    const s = scenarios.find((x) => x.name === name);
    if (s === undefined) {
      console.error(`unknown scenario '${name}'; known: ${scenarios.map((x) => x.name).join(', ')}`);
      return 2;
    }
    chosen.push(s);
  }

  const m = machine();
  console.log(`ringraft bench — ${m.cpu}, ${m.cores} cores, Node.js ${m.node}${args.quick ? ' (quick: not for numbers)' : ''}`);
  const rows: ResultRow[] = [];
  for (const scenario of chosen) {
    const timeMs = args.quick ? quickTimeMs : scenario.timeMs;
    console.log(`\n${scenario.name} (${scenario.kind}): ${scenario.description}; ${timeMs} ms per task`);
    rows.push(...(await runScenario(scenario, timeMs, (line) => console.log(`  measuring ${line}`))));
  }
  console.log(`\n${formatTable(rows)}`);
  // Alternatives measured side by side, compared where the table would make one do sums.
  const comparisons = [...compareCrcRows(rows), ...compareDiskRows(rows), ...compareRingRows(rows)];
  if (comparisons.length > 0) console.log(`\n${comparisons.join('\n')}`);
  if (args.json !== undefined) {
    writeFileSync(args.json, `${JSON.stringify({ machine: m, scenarios: rows }, null, 2)}\n`);
    console.log(`\nwrote ${args.json}`);
  }
  return 0;
}

process.exitCode = await main();
