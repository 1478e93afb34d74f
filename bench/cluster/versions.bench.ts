/**
 * Puts and gets of two builds side by side: this one and another (`--other`, the
 * `dist/src/index.js` of a build of another commit, made with `git worktree add` and
 * `npm ci && npx tsc -p tsconfig.json` there). Each run is a child process of its own: a
 * 3-node cluster on worker threads in memory, 10,000 keys of 16 bytes with 128-byte values,
 * closed loops of puts then of linearizable gets at 256 in flight. The builds alternate, A B A
 * B ..., and the medians are reported with their ratio: ops/s, and CPU µs per operation of
 * all the child's threads (from `/proc/self/task/<tid>/schedstat` over the loop's window).
 *
 *   npm run build && node dist/bench/cluster/versions.bench.js --other ../old/dist/src/index.js [--runs N] [--ms N]
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { closedLoop } from '../load/loops.ts';
import { filledCluster, KEYS, processCpuNs, type BenchCluster } from './filled-cluster.ts';

const IN_FLIGHT = 256;

interface Figures {
  readonly putOps: number;
  readonly putCpuUs: number;
  readonly getOps: number;
  readonly getCpuUs: number;
}


/** One run, in a child: the build at `entry`, its figures as one JSON line on stdout. */
async function child(entry: string, ms: number): Promise<void> {
  type Client = { put(k: string, v: Uint8Array): Promise<unknown>; get(k: string): Promise<unknown> };
  const { createCluster } = (await import(pathToFileURL(entry).href)) as { createCluster: (o: { nodes: number }) => Promise<BenchCluster<Client>> };
  const { cluster, kv, keys, value } = await filledCluster(createCluster);
  try {
    const measure = async (op: (i: number) => Promise<unknown>): Promise<[number, number]> => {
      await closedLoop(op, { inFlight: IN_FLIGHT, durationMs: 500 });
      const before = processCpuNs();
      const r = await closedLoop(op, { inFlight: IN_FLIGHT, durationMs: ms });
      if (r.errors > 0) throw new Error(`${r.errors} errors`);
      return [r.opsPerSec, (processCpuNs() - before) / 1000 / Math.max(1, r.ops)];
    };
    const [putOps, putCpuUs] = await measure((i) => kv.put(keys[i % KEYS]!, value));
    const [getOps, getCpuUs] = await measure((i) => kv.get(keys[i % KEYS]!));
    const figures: Figures = { putOps, putCpuUs, getOps, getCpuUs };
    console.log(JSON.stringify(figures));
  } finally {
    await cluster.close();
  }
}

function runChild(entry: string, ms: number): Promise<Figures> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [process.argv[1]!, '--child', entry, '--ms', String(ms)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as Figures) : reject(new Error(`run of ${entry} exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { other: { type: 'string' }, child: { type: 'string' }, runs: { type: 'string', default: '3' }, ms: { type: 'string', default: '3000' } } });
  const ms = Number(values.ms);
  if (values.child !== undefined) return child(values.child, ms);
  if (values.other === undefined) throw new Error('--other PATH: the dist/src/index.js of the build to compare with');
  const runs = Number(values.runs);
  const here = path.resolve(import.meta.dirname, '../../src/index.js');
  const other = path.resolve(values.other);
  const a: Figures[] = [];
  const b: Figures[] = [];
  for (let i = 0; i < runs; i++) {
    a.push(await runChild(other, ms));
    b.push(await runChild(here, ms));
    console.log(`run ${i + 1}: other ${JSON.stringify(a[i])}; this ${JSON.stringify(b[i])}`);
  }
  const median = (xs: number[]): number => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  console.log(`medians of ${runs} alternating runs, 3 nodes in memory, ${IN_FLIGHT} in flight: other | this | ratio`);
  for (const [name, f] of [
    ['puts/s', (x: Figures) => x.putOps],
    ['CPU µs/put', (x: Figures) => x.putCpuUs],
    ['gets/s', (x: Figures) => x.getOps],
    ['CPU µs/get', (x: Figures) => x.getCpuUs],
  ] as const) {
    const m = median(a.map(f));
    const n = median(b.map(f));
    console.log(`  ${name.padEnd(11)} ${m.toFixed(1).padStart(10)} | ${n.toFixed(1).padStart(10)} | ${(n / m).toFixed(2)}`);
  }
}

await main();
