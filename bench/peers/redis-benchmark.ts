/**
 * Redis's own benchmark, `redis-benchmark`, against ringraft's RESP port (3 `ringraft serve`
 * processes, fsync 'always') and against redis-server with `appendfsync always` and
 * `everysec`, in the same run: `-t set,get -c 50`, with and without `-P 16`. Each cell runs
 * for about `secondsPerCell`: a short probe sizes its request count from the probe's rate.
 * Requests per second and p50/p99 come from redis-benchmark's CSV. redis-benchmark 7 stops at
 * the first error reply and exits non-zero: such a cell fails the run, naming the command.
 */
import { spawnSync } from 'node:child_process';

export const REDIS_BENCHMARK_BINARY = { command: 'redis-benchmark', debianPackage: 'redis-tools' } as const;

export type RespTargetName = 'ringraft RESP (3 serve, fsync always)' | 'redis appendfsync always' | 'redis appendfsync everysec';

export interface RedisBenchmarkRow {
  readonly target: RespTargetName;
  readonly test: 'SET' | 'GET';
  readonly clients: number;
  /** Commands each connection sends before it reads (-P). */
  readonly pipeline: number;
  readonly requests: number;
  readonly requestsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface RedisBenchmarkPlan {
  readonly clients: number;
  readonly pipelines: readonly number[];
  readonly secondsPerCell: number;
  readonly probeRequests: number;
  readonly requestsMax: number;
}

export const REDIS_BENCHMARK_FULL: RedisBenchmarkPlan = { clients: 50, pipelines: [1, 16], secondsPerCell: 5, probeRequests: 2_000, requestsMax: 2_000_000 };
export const REDIS_BENCHMARK_QUICK: RedisBenchmarkPlan = { clients: 50, pipelines: [1, 16], secondsPerCell: 1, probeRequests: 500, requestsMax: 200_000 };

interface CsvRow {
  readonly test: string;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
}

/** Runs redis-benchmark once: its CSV rows; throws if it fails (an error reply among them). */
function runOnce(bin: string, host: string, port: number, tests: string, clients: number, pipeline: number, requests: number): CsvRow[] {
  const args = ['-h', host, '-p', String(port), '-t', tests, '-c', String(clients), '-P', String(pipeline), '-n', String(requests), '-r', '100000', '-d', '128', '--csv'];
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`redis-benchmark ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr.slice(0, 500)}`);
  const rows: CsvRow[] = [];
  for (const line of r.stdout.split('\n')) {
    // A run that ends within the tool's clock tick reports its rate as "inf": read as Infinity.
    const m = /^"([A-Z]+)[^"]*","([0-9.]+|inf)","[0-9.]+","[0-9.]+","([0-9.]+)","[0-9.]+","([0-9.]+)"/.exec(line);
    if (m !== null) rows.push({ test: m[1]!, rps: m[2] === 'inf' ? Number.POSITIVE_INFINITY : Number(m[2]), p50: Number(m[3]), p99: Number(m[4]) });
  }
  if (rows.length === 0) throw new Error(`redis-benchmark printed no CSV rows: ${r.stdout.slice(0, 500)}`);
  return rows;
}

/**
 * The first row of a run of at least `requests`, made ten times longer while it ends too soon
 * for redis-benchmark to time it (a rate of "inf"), up to `requestsMax`; throws if even that
 * is too short. Returns the row and the requests it took.
 */
function timedRun(bin: string, host: string, port: number, test: string, clients: number, pipeline: number, requests: number, requestsMax: number): { row: CsvRow; requests: number } {
  for (let n = Math.min(requests, requestsMax); ; n = Math.min(requestsMax, n * 10)) {
    const row = runOnce(bin, host, port, test, clients, pipeline, n)[0]!;
    if (Number.isFinite(row.rps)) return { row, requests: n };
    if (n >= requestsMax) throw new Error(`redis-benchmark ${test} -P ${pipeline}: ${n} requests end too soon to time`);
  }
}

/** Every cell of `plan` against one target: a probe per pipeline depth sizes the measured run. */
export function benchmarkTarget(bin: string, target: RespTargetName, host: string, port: number, plan: RedisBenchmarkPlan, say: (line: string) => void): RedisBenchmarkRow[] {
  const out: RedisBenchmarkRow[] = [];
  for (const pipeline of plan.pipelines) {
    for (const test of ['SET', 'GET'] as const) {
      const probe = timedRun(bin, host, port, test.toLowerCase(), plan.clients, pipeline, plan.probeRequests, plan.requestsMax);
      const wanted = Math.min(plan.requestsMax, Math.max(probe.requests, Math.round(probe.row.rps * plan.secondsPerCell)));
      const { row, requests } = timedRun(bin, host, port, test.toLowerCase(), plan.clients, pipeline, wanted, plan.requestsMax);
      out.push({ target, test, clients: plan.clients, pipeline, requests, requestsPerSec: row.rps, p50Ms: row.p50, p99Ms: row.p99 });
      say(`redis-benchmark ${target}: ${test} -c ${plan.clients} -P ${pipeline}: ${Math.round(row.rps).toLocaleString('en-US')} requests/s, p50 ${row.p50} ms, p99 ${row.p99} ms`);
    }
  }
  return out;
}

/** The rows as a table, each Redis row with ringraft's figure beside it and the ratio ringraft / Redis. */
export function formatRedisBenchmark(rows: readonly RedisBenchmarkRow[]): string {
  const ours = (r: RedisBenchmarkRow) => rows.find((o) => o.target.startsWith('ringraft') && o.test === r.test && o.pipeline === r.pipeline);
  const lines = ['| target | test | -P | requests/s | p50 ms | p99 ms | ringraft / this |', '| --- | --- | ---: | ---: | ---: | ---: | ---: |'];
  for (const r of rows) {
    const mine = ours(r);
    const ratio = r.target.startsWith('ringraft') || mine === undefined ? '' : (mine.requestsPerSec / r.requestsPerSec).toFixed(2);
    lines.push(`| ${r.target} | ${r.test} | ${r.pipeline} | ${Math.round(r.requestsPerSec).toLocaleString('en-US')} | ${r.p50Ms} | ${r.p99Ms} | ${ratio} |`);
  }
  return lines.join('\n');
}
