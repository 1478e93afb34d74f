/**
 * `ringraft sim`: runs the deterministic simulator.
 *
 *   ringraft sim --seed N [--nodes K] [--faults a,b] [--plant BUG] [--redis P] [--json | --trace] [--history FILE]
 *   ringraft sim --seeds N [--start S] [--nodes 3,5,7] [--faults a,b] [--redis P] [--workers W] [--json]
 *
 * `--redis P`: each put, delete and read of one key goes as Redis's SET, DEL or GET with
 * probability P (0 to 1), through the store's Redis commands, judged in the same history.
 *
 * One seed replays a run exactly, and a failing one prints the last events of each node
 * before the violation (`--trace` prints every event of the run as it happens); many seeds
 * fan out over a piscina worker pool. The exit code is 0 when no run found a violation, 1
 * when one did, 2 for a bad argument (checked, with the --history path, before anything runs).
 */
import { availableParallelism } from 'node:os';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import {
  FAULT_KINDS,
  PLANTED_BUGS,
  defaultSimOptions,
  formatTraceRecord,
  historyToJsonLines,
  runSimulation,
  simOverrides,
  type FaultKind,
  type PlantedBug,
  type SimTask,
  type SimTaskResult,
} from '../sim/index.ts';
import { checkOutputFile, parseArgs, UsageError, type Output } from './args.ts';

export interface SimSummary {
  runs: number;
  operations: number;
  elections: number;
  faults: number;
  violations: number;
  failures: { seed: number; nodes: number; what: string; replay: string }[];
}

const SEEDS_MAX = 10_000_000;
const WORKERS_MAX = 64;
/** The largest seed: a run's replay command passes its seed to --seed, which parseInt32 bounds so. */
const SEED_MAX = 0xffffffff;

export async function simCommand(argv: readonly string[], out: Output): Promise<number> {
  const args = parseArgs(argv, {
    flags: ['json', 'help', 'trace'],
    values: ['seed', 'seeds', 'start', 'nodes', 'faults', 'history', 'plant', 'workers', 'redis'],
  });
  if (args.flags.has('help')) {
    out.stdout(SIM_USAGE);
    return 0;
  }
  // Without --nodes: 3, or the cluster size a planted bug's hunting profile asks for.
  const nodesGiven = args.values.has('nodes');
  const nodes = parseNodes(args.values.get('nodes') ?? '3');
  const faults = args.values.has('faults') ? parseFaults(args.values.get('faults')!) : undefined;
  const plant = args.values.has('plant') ? parsePlant(args.values.get('plant')!) : undefined;
  const redis = args.values.has('redis') ? parseShare(args.values.get('redis')!, '--redis') : undefined;
  const json = args.flags.has('json');
  const trace = args.flags.has('trace');
  if (args.positional.length > 0) throw new UsageError(`unexpected argument "${args.positional[0]}"`);
  if (args.values.has('seed') === args.values.has('seeds')) throw new UsageError('give exactly one of --seed N or --seeds N');

  if (args.values.has('seed')) {
    if (nodes.length !== 1) throw new UsageError('--seed runs one cluster size: give one --nodes value');
    for (const name of ['start', 'workers']) if (args.values.has(name)) throw new UsageError(`--${name} goes with --seeds (many runs)`);
    if (trace && json) throw new UsageError('--trace prints lines, --json one object: give one of them');
    const seed = parseInt32(args.values.get('seed')!, '--seed');
    const history = args.values.get('history');
    if (history !== undefined) checkOutputFile(history, 'history');
    const options = defaultSimOptions(seed, simOverrides({ seed, nodes: nodesGiven ? nodes[0] : undefined, faults, plant, redis }));
    const r = runSimulation(options, trace ? { onEvent: (record) => out.stdout(formatTraceRecord(record)) } : {});
    if (history !== undefined) writeFileSync(history, historyToJsonLines(r.history));
    const summary = summarize([{ ...r }], faults, plant, redis);
    if (json) out.stdout(JSON.stringify({ ...summary, history: history ?? null }));
    else {
      out.stdout(`seed ${seed}, ${r.nodes} nodes: ${r.ok ? 'ok' : 'VIOLATION'}`);
      out.stdout(`  ${r.operations} operations (${r.operationsCompleted} answered), ${r.elections} leaders elected, ${r.faults} faults, ${r.events} events, ${r.simulatedMs} ms simulated`);
      if (!r.ok) {
        for (const line of r.violation!.split('\n')) out.stdout(`  ${line}`);
        for (const line of r.lastEvents) out.stdout(`  ${line}`);
      }
    }
    return r.ok ? 0 : 1;
  }

  if (args.values.has('history')) throw new UsageError('--history goes with --seed (one run)');
  if (trace) throw new UsageError('--trace goes with --seed (one run): trace one of the seeds on its own');
  const count = parseInt32(args.values.get('seeds')!, '--seeds');
  if (count < 1 || count > SEEDS_MAX) throw new UsageError(`--seeds takes 1 to ${SEEDS_MAX}`);
  const start = args.values.has('start') ? parseInt32(args.values.get('start')!, '--start') : 1;
  if (start + count - 1 > SEED_MAX) throw new UsageError(`--start ${start} --seeds ${count} goes past the largest seed, ${SEED_MAX}`);
  // By default one worker per core, but never more than the limit (a machine with more cores
  // must not turn an option nobody gave into a usage error) nor than there are runs.
  const workers = args.values.has('workers') ? parseInt32(args.values.get('workers')!, '--workers') : Math.min(availableParallelism(), WORKERS_MAX, count);
  if (workers < 1 || workers > WORKERS_MAX) throw new UsageError(`--workers takes 1 to ${WORKERS_MAX}`);

  const pool = new Piscina({
    filename: fileURLToPath(new URL('../sim/worker.js', import.meta.url)),
    minThreads: workers,
    maxThreads: workers,
  });
  const results: SimTaskResult[] = [];
  const started = Date.now();
  let lastProgress = 0;
  const progress = (): void => {
    const now = Date.now();
    // In place on a terminal; in a log (no terminal), a line every two seconds.
    const intervalMs = process.stderr.isTTY === true ? 250 : 2000;
    if (now - lastProgress < intervalMs && results.length < count) return;
    lastProgress = now;
    const bad = results.filter((r) => !r.ok).length;
    out.progress(`sim: ${results.length}/${count} runs, ${bad} violations, ${((now - started) / 1000).toFixed(1)} s`);
  };
  try {
    // Bounded in flight: a few tasks per worker, so memory stays flat for any --seeds.
    const inFlightMax = workers * 4;
    let next = 0;
    const runOne = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        const task: SimTask = { seed: start + i, nodes: nodesGiven ? nodes[i % nodes.length]! : undefined, faults, plant, redis };
        results.push((await pool.run(task)) as SimTaskResult);
        progress();
      }
    };
    await Promise.all(Array.from({ length: Math.min(inFlightMax, count) }, runOne));
  } finally {
    await pool.destroy();
  }
  out.progressDone();
  results.sort((a, b) => a.seed - b.seed);
  const summary = summarize(results, faults, plant, redis);
  if (json) out.stdout(JSON.stringify(summary));
  else {
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    out.stdout(`runs ${summary.runs}, operations ${summary.operations}, elections ${summary.elections}, faults injected ${summary.faults}, violations ${summary.violations}, ${secs} s`);
    for (const f of summary.failures.slice(0, 20)) out.stdout(`  seed ${f.seed}: ${firstLine(f.what)}\n    replay: ${f.replay}`);
    if (summary.failures.length > 20) out.stdout(`  ... and ${summary.failures.length - 20} more`);
  }
  return summary.violations === 0 ? 0 : 1;
}

function summarize(
  results: readonly { seed: number; nodes: number; ok: boolean; violation: string | undefined; operations: number; elections: number; faults: number }[],
  faults: readonly FaultKind[] | undefined,
  plant: PlantedBug | undefined,
  redis: number | undefined,
): SimSummary {
  const failures = results
    .filter((r) => !r.ok)
    .map((r) => ({
      seed: r.seed,
      nodes: r.nodes,
      what: r.violation ?? 'unknown',
      replay: `ringraft sim --seed ${r.seed} --nodes ${r.nodes}${faults !== undefined ? ` --faults ${faults.join(',')}` : ''}${plant !== undefined ? ` --plant ${plant}` : ''}${redis !== undefined ? ` --redis ${redis}` : ''}`,
    }));
  return {
    runs: results.length,
    operations: results.reduce((n, r) => n + r.operations, 0),
    elections: results.reduce((n, r) => n + r.elections, 0),
    faults: results.reduce((n, r) => n + r.faults, 0),
    violations: failures.length,
    failures,
  };
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return i < 0 ? s : s.slice(0, i);
}

/** A probability, 0 to 1, as a flag gives it. */
function parseShare(s: string, what: string): number {
  const n = Number(s);
  if (!(s.trim() !== '' && Number.isFinite(n) && n >= 0 && n <= 1)) throw new UsageError(`${what} takes a number from 0 to 1, got "${s}"`);
  return n;
}

function parseInt32(s: string, what: string): number {
  if (!/^\d+$/.test(s)) throw new UsageError(`${what} takes a whole number, got "${s}"`);
  const n = Number(s);
  if (n > 0xffffffff) throw new UsageError(`${what} is at most ${0xffffffff}`);
  return n;
}

function parseNodes(s: string): number[] {
  const out = s.split(',').map((x) => parseInt32(x.trim(), '--nodes'));
  for (const n of out) if (n < 1 || n > 9) throw new UsageError('--nodes takes cluster sizes from 1 to 9');
  return out;
}

function parseFaults(s: string): FaultKind[] {
  if (s === 'none') return [];
  if (s === 'all') return [...FAULT_KINDS];
  const out = s.split(',').map((x) => x.trim());
  for (const f of out) {
    if (!(FAULT_KINDS as readonly string[]).includes(f)) throw new UsageError(`unknown fault "${f}"; known: ${FAULT_KINDS.join(', ')}, all, none`);
  }
  return out as FaultKind[];
}

function parsePlant(s: string): PlantedBug {
  if (!(PLANTED_BUGS as readonly string[]).includes(s)) throw new UsageError(`unknown planted bug "${s}"; known: ${PLANTED_BUGS.join(', ')}`);
  return s as PlantedBug;
}

export const SIM_USAGE = `usage:
  ringraft sim --seed N [--nodes K] [--faults LIST] [--plant BUG] [--redis P] [--json | --trace] [--history FILE]
      replay one run exactly; if it fails, print the last events of each node before the
      violation; --trace prints every event of the run as it happens, one a line, then the
      summary; --history writes the client history as JSON lines to FILE (its directory must
      exist; checked before the run)
  ringraft sim --seeds N [--start S] [--nodes 3,5,7] [--faults LIST] [--plant BUG] [--redis P] [--workers W] [--json]
      run seeds S..S+N-1 (at most ${SEED_MAX}) on a worker pool, cycling through the cluster sizes;
      --workers 1 to ${WORKERS_MAX}, default one per core

  --redis   send each put, delete and read of one key as Redis's SET, DEL or GET with
            probability P (0 to 1), judged in the same history
  --faults  comma list of: ${FAULT_KINDS.join(', ')}; or all (default), none
  --plant   run with a classic Raft bug planted, to see the checks catch it:
            ${PLANTED_BUGS.join(', ')}
  --json    print the summary as one JSON object:
            { runs, operations, elections, faults, violations, failures: [{ seed, nodes, what, replay }] }
  exit code 0 if no run found a violation, 1 if one did, 2 for a bad argument or path`;
