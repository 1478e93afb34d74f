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
import { compareDiskRows, runDiskScenario } from './disk.bench.ts';
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
  }
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
  const comparisons = [...compareCrcRows(rows), ...compareDiskRows(rows)];
  if (comparisons.length > 0) console.log(`\n${comparisons.join('\n')}`);
  if (args.json !== undefined) {
    writeFileSync(args.json, `${JSON.stringify({ machine: m, scenarios: rows }, null, 2)}\n`);
    console.log(`\nwrote ${args.json}`);
  }
  return 0;
}

process.exitCode = await main();
