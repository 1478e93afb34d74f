/**
 * `npm run bench:peers`: ringraft against etcd and Redis, the same workload in one run.
 *
 *   node dist/bench/peers/run.js [--quick] [--only ringraft|ringraft-tcp|etcd|redis]... [--json FILE]
 *
 * --quick      one short round per cell (about a minute in all; a smoke run, not for numbers)
 * --only NAME  run only this system (repeatable; default: all four). ringraft: 3 nodes on
 *              worker threads in this process; ringraft-tcp: 3 `ringraft serve` processes
 *              driven by the network client from this one, as etcd's members are
 * --json FILE  also write { machine, scenarios: [], peers: [rows] }
 *
 * Servers are started on 127.0.0.1 with data in a temporary directory, and stopped by PID
 * when the run ends, fails, or is interrupted (SIGINT, SIGTERM, SIGHUP).
 *
 * This is the CLI entry, the one place of the peer comparison that writes to the terminal.
 */

import { rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { runPeers, SYSTEMS, type PeerRow } from './peers.ts';
import { formatEtcdRatios, formatPeersTable } from './report.ts';
import { formatRedisBenchmark, REDIS_BENCHMARK_FULL, REDIS_BENCHMARK_QUICK } from './redis-benchmark.ts';
import { ServerSet } from './servers.ts';
import type { SystemName } from './targets.ts';
import { FULL_PLAN, KEY_BYTES, QUICK_PLAN, VALUE_BYTES, type Plan } from './workload.ts';

const USAGE = 'usage: node dist/bench/peers/run.js [--quick] [--only ringraft|ringraft-tcp|etcd|redis]... [--json FILE]';

interface Machine {
  readonly cores: number;
  readonly cpu: string;
  readonly node: string;
}

function machine(): Machine {
  return { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model.trim() ?? 'unknown', node: process.version };
}

const servers = new ServerSet();
const abort = new AbortController();
let tempDir: string | undefined;

function removeTempDir(): void {
  if (tempDir !== undefined) rmSync(tempDir, { recursive: true, force: true });
}

/** Whatever happens, no server outlives the run: signals stop them in order, `exit` kills what is left. */
function installCleanup(): void {
  process.on('exit', () => {
    servers.killAllSync();
    removeTempDir();
  });
  const onSignal = (signal: NodeJS.Signals, code: number) => {
    console.error(`\n${signal}: stopping servers ${servers.pids().join(', ') || '(none running)'}`);
    abort.abort(new Error(`interrupted by ${signal}`));
    void servers.stopAll().finally(() => {
      removeTempDir();
      process.exit(code);
    });
  };
  process.once('SIGINT', () => onSignal('SIGINT', 130));
  process.once('SIGTERM', () => onSignal('SIGTERM', 143));
  process.once('SIGHUP', () => onSignal('SIGHUP', 129));
}

function describePlan(plan: Plan, quick: boolean): string {
  return [
    `${KEY_BYTES}-byte keys (${plan.keysCount.toLocaleString('en-US')} of them), ${VALUE_BYTES}-byte values; closed loops of puts and linearizable gets at ${plan.inFlights.join(', ')} in flight`,
    `${plan.rounds} round(s) of ${plan.durationMs} ms per cell after ${plan.warmupMs} ms of warm-up, median round reported${quick ? ' (quick: not for numbers)' : ''}`,
    `etcd: one etcd3 client over the 3 members' endpoints, at most ${plan.etcdInFlightMax} in flight; Redis: min(in flight, ${plan.redisConnectionsMax}) ioredis connections`,
  ].join('\n');
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string', multiple: true },
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
    console.log(USAGE);
    return 0;
  }
  const only = new Set<SystemName>();
  for (const name of args.only ?? SYSTEMS) {
    if (!(SYSTEMS as readonly string[]).includes(name)) {
      console.error(`unknown system '${name}'; known: ${SYSTEMS.join(', ')}\n${USAGE}`);
      return 2;
    }
    only.add(name as SystemName);
  }
  const plan = args.quick ? QUICK_PLAN : FULL_PLAN;
  installCleanup();

  const m = machine();
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s`;
  console.log(`ringraft bench:peers — ${m.cpu}, ${m.cores} cores, Node.js ${m.node}, load average ${os.loadavg()[0]!.toFixed(2)}`);
  console.log(describePlan(plan, args.quick));
  const result = await runPeers({
    plan,
    only,
    servers,
    signal: abort.signal,
    onTempDir: (dir) => (tempDir = dir),
    // Once interrupted, what is still running only fails; it is not news.
    onProgress: (line) => abort.signal.aborted || console.log(`[${elapsed()}] ${line}`),
    redisBenchmark: args.quick ? REDIS_BENCHMARK_QUICK : REDIS_BENCHMARK_FULL,
  });
  tempDir = undefined;

  console.log(`\n${formatPeersTable(result.rows)}`);
  const overTcp = result.rows.some((r) => r.system === 'ringraft-tcp');
  const which = overTcp ? 'ringraft over TCP (3 serve processes)' : 'ringraft (3 nodes on worker threads)';
  console.log(`\nringraft/peer = ${which} ops/s ÷ the peer's ops/s at the same op and concurrency (above 1: ringraft did more).`);
  const etcd = formatEtcdRatios(result.rows);
  if (etcd !== '') console.log(`\n${which}, durable, against etcd (3 members over TCP), durable; ratio ringraft / etcd:\n${etcd}`);
  if (result.redisBenchmark.length > 0) {
    console.log('\nredis-benchmark -t set,get -c 50 (-P as given), -d 128 -r 100000; ringraft / this = requests/s ratio (above 1: ringraft did more):');
    console.log(formatRedisBenchmark(result.redisBenchmark));
  }
  for (const s of result.skipped) console.log(`\n${s.system}: ${s.reason}`);
  console.log(`\ntook ${((performance.now() - started) / 1000).toFixed(0)} s; load average now ${os.loadavg()[0]!.toFixed(2)}`);
  if (args.json !== undefined) {
    const peers: PeerRow[] = result.rows;
    writeFileSync(args.json, `${JSON.stringify({ machine: m, scenarios: [], peers, redisBenchmark: result.redisBenchmark }, null, 2)}\n`);
    console.log(`wrote ${args.json}`);
  }
  return 0;
}

process.exitCode = await main();
