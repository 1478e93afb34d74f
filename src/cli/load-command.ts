/**
 * `ringraft load`: drives a cluster on worker threads with a mix of operations from a pool
 * of load generator threads, injects faults on a schedule, and reports throughput over
 * time, latency percentiles, errors by code and recovery after each fault. The harness
 * itself is src/load/, which ships in the package: the command works from an installed one.
 */

import { FAULT_KINDS, OP_KINDS, runLoad, type FaultKind, type FaultStep, type LoadOptions, type LoadReport } from '../load/index.ts';
import { checkOutputFile, parseArgs, UsageError, type Output } from './args.ts';

export const LOAD_USAGE = `ringraft load [options]
  --nodes N               cluster size (default 3)
  --durable               logs on disk (temporary directory, fsync always); default in memory
  --mix put=50,get=45,cas=5   weights of put, get, lease-get, stale-get, delete, cas
  --keys N                key space (default 10000)
  --dist uniform|zipf     key distribution (default uniform); --zipf-s S (default 0.99)
  --key-bytes N --value-bytes N   sizes (default 16 and 128)
  --concurrency N | --rate OPS    closed loop with N in flight (default 256), or a fixed rate
  --duration 10s          how long (ms or s; default 10s)
  --threads N             load generator threads (default 2)
  --faults crash-leader@3s,restart@5s,partition-leader@7s,heal@8s,transfer@9s,crash-follower@1s
  --history FILE          write the history (JSON lines) to FILE; its directory must exist
  --check                 check the history for linearizability
  --json                  print the report as JSON
  Every option and the --history path are checked before the run: a bad one exits 2.
  Exit code 1 if --check finds a violation.`;

/** "10s", "1500ms", "1500" (ms) → milliseconds. */
export function parseDurationMs(text: string, name: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim());
  if (m === null) throw new UsageError(`--${name} ${text} is not a duration (like 10s or 500ms)`);
  return Math.round(Number(m[1]) * (m[2] === 's' ? 1000 : 1));
}

function positiveInt(text: string | undefined, name: string, fallback: number, max = 1e9): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new UsageError(`--${name} must be an integer in [1, ${max}], got ${text}`);
  return n;
}

export function parseMix(text: string): Record<string, number> {
  const mix: Record<string, number> = {};
  for (const part of text.split(',')) {
    const [name, weight] = part.split('=');
    if (!(OP_KINDS as readonly string[]).includes(name ?? '')) throw new UsageError(`--mix: unknown operation "${name}" (known: ${OP_KINDS.join(', ')})`);
    const w = Number(weight);
    if (!(Number.isFinite(w) && w >= 0)) throw new UsageError(`--mix: weight of ${name} must be a number >= 0`);
    mix[name!] = w;
  }
  if (Object.values(mix).every((w) => w === 0)) throw new UsageError('--mix: no operation has a positive weight');
  return mix;
}

export function parseFaults(text: string): FaultStep[] {
  return text.split(',').map((part) => {
    const [kind, at] = part.split('@');
    if (!(FAULT_KINDS as readonly string[]).includes(kind ?? '')) throw new UsageError(`--faults: unknown fault "${kind}" (known: ${FAULT_KINDS.join(', ')})`);
    if (at === undefined) throw new UsageError(`--faults: ${kind} needs a time, like ${kind}@5s`);
    return { kind: kind as FaultKind, atMs: parseDurationMs(at, 'faults') };
  });
}

export async function loadCommand(argv: readonly string[], out: Output): Promise<number> {
  const a = parseArgs(argv, {
    flags: ['durable', 'check', 'json', 'help'],
    values: ['nodes', 'mix', 'keys', 'dist', 'zipf-s', 'key-bytes', 'value-bytes', 'concurrency', 'rate', 'duration', 'threads', 'faults', 'history'],
  });
  if (a.flags.has('help')) {
    out.stdout(LOAD_USAGE);
    return 0;
  }
  // Every argument, and the --history path, is checked before the cluster is started: a bad
  // one must not cost a whole run.
  if (a.positional.length > 0) throw new UsageError(`unexpected argument ${a.positional[0]}`);
  const dist = a.values.get('dist') ?? 'uniform';
  if (dist !== 'uniform' && dist !== 'zipf') throw new UsageError(`--dist must be uniform or zipf, got ${dist}`);
  if (a.values.has('rate') && a.values.has('concurrency')) throw new UsageError('give --rate or --concurrency, not both');
  const durationMs = parseDurationMs(a.values.get('duration') ?? '10s', 'duration');
  if (durationMs < 100 || durationMs > 3_600_000) throw new UsageError('--duration must be between 100 ms and 1 hour');
  const zipfExponent = Number(a.values.get('zipf-s') ?? '0.99');
  if (!(zipfExponent > 0 && zipfExponent < 10)) throw new UsageError('--zipf-s must be in (0, 10)');
  const rate = a.values.has('rate') ? positiveInt(a.values.get('rate'), 'rate', 1) : undefined;
  const faults = a.values.has('faults') ? parseFaults(a.values.get('faults')!) : [];
  for (const f of faults) if (f.atMs >= durationMs) throw new UsageError(`--faults: ${f.kind}@${f.atMs}ms is not before the end (${durationMs} ms)`);
  const nodes = positiveInt(a.values.get('nodes'), 'nodes', 3, 15);
  const threads = positiveInt(a.values.get('threads'), 'threads', 2, 64);
  const spec: LoadOptions['spec'] = {
    mix: parseMix(a.values.get('mix') ?? 'put=50,get=45,cas=5'),
    keys: positiveInt(a.values.get('keys'), 'keys', 10_000),
    distribution: dist,
    zipfExponent,
    keyBytes: positiveInt(a.values.get('key-bytes'), 'key-bytes', 16, 4096),
    valueBytes: positiveInt(a.values.get('value-bytes'), 'value-bytes', 128, 1 << 20),
    concurrency: rate === undefined ? positiveInt(a.values.get('concurrency'), 'concurrency', 256, 1 << 16) : undefined,
    ratePerSec: rate,
    durationMs,
    bucketMs: 100,
    recordHistory: false,
    timeoutMs: 5_000,
  };
  const historyFile = a.values.get('history');
  if (historyFile !== undefined) checkOutputFile(historyFile, 'history');

  const report = await runLoad({
    nodes,
    durable: a.flags.has('durable'),
    fsync: 'always',
    threads,
    faults,
    check: a.flags.has('check'),
    historyFile,
    onProgress: (line) => out.progress(line),
    spec,
  });
  out.progressDone();
  if (a.flags.has('json')) {
    out.stdout(JSON.stringify(report, null, 2));
  } else {
    out.stdout(formatReport(report));
  }
  return report.linearizability?.result === 'violation' ? 1 : 0;
}

function formatReport(r: LoadReport): string {
  const lines: string[] = [];
  const n = (x: number): string => Math.round(x).toLocaleString('en-US');
  lines.push(`${n(r.ops)} operations in ${(r.durationMs / 1000).toFixed(1)} s: ${n(r.opsPerSec)} ops/s`);
  lines.push(`latency ms: p50 ${r.latencyMs.p50.toFixed(3)}  p99 ${r.latencyMs.p99.toFixed(3)}  p999 ${r.latencyMs.p999.toFixed(3)}  max ${r.latencyMs.max.toFixed(3)}`);
  lines.push(`by operation: ${Object.entries(r.opsByKind).map(([k, v]) => `${k} ${n(v)}`).join(', ')}`);
  const errors = Object.entries(r.errorsByCode);
  lines.push(`errors: ${errors.length === 0 ? 'none' : errors.map(([k, v]) => `${k} ${n(v)}`).join(', ')}`);
  lines.push('throughput over time (ops/s, per second):');
  const perSecond: number[] = [];
  for (const b of r.timeline) {
    const s = Math.floor(b.atMs / 1000);
    perSecond[s] = (perSecond[s] ?? 0) + b.opsPerSec / (1000 / (r.timeline[1]?.atMs ?? 1000));
  }
  lines.push(perSecond.map((x, s) => `  ${String(s).padStart(3)} s  ${n(x ?? 0)}`).join('\n'));
  for (const f of r.faults) {
    lines.push(`fault ${f.kind} at ${f.atMs} ms (${f.detail}): ${f.recoveryMs === undefined ? 'no recovery measured' : `recovered in ${f.recoveryMs} ms`}`);
  }
  if (r.linearizability !== undefined) {
    lines.push(`linearizability: ${r.linearizability.result} (${n(r.linearizability.ops)} operations)${r.linearizability.detail === undefined ? '' : `\n${r.linearizability.detail}`}`);
  }
  return lines.join('\n');
}
