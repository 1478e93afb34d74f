/**
 * What one thread wake-up costs on this machine: a ping-pong between this thread and a
 * worker through a `SharedArrayBuffer`, each side sleeping until the other notifies it. A
 * `ringraft serve` process wakes its socket thread and its node thread several times per
 * request (the doorbells of runtime/node-worker.ts and server/node-server.ts), so this is the
 * floor under a request's CPU at low concurrency, where nothing is batched.
 *
 * - `wait`: this thread blocks in `Atomics.wait`, as the node's thread does;
 * - `waitAsync`: this thread awaits `Atomics.waitAsync` (with the timer beside it that
 *   transport/ring.ts sets), as the socket thread's pump does.
 *
 * The figures: wall-clock microseconds per round trip, and this process's CPU (both threads,
 * user and system, from `process.cpuUsage()`) per round trip; rounds alternate the two ways
 * and the median round of each is reported.
 *
 * Measured 2026-12-03 (2-core AMD EPYC VM, Node.js 20.20.2): on the idle machine `wait` took
 * 68.4 µs a round trip and 50.3 µs of CPU (35.4 in the kernel), `waitAsync` 67.5 µs and 62.8
 * µs; with both cores busy (a test suite running beside it) 9.4 µs and 9.3 µs, 15.6 µs and
 * 15.6 µs. Waking a thread whose core sleeps costs this machine some 50 µs; one whose core is
 * busy anyway, a fifth of that.
 *
 *     npm run build && node dist/bench/micro/wake.bench.js [--rounds N] [--trips N]
 */
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { waitWordAsync } from '../../src/transport/ring.ts';

const ECHO = `
const { workerData } = require('node:worker_threads');
const w = new Int32Array(workerData);
for (;;) {
  Atomics.wait(w, 0, 0);
  if (Atomics.load(w, 2) === 1) break;
  Atomics.store(w, 0, 0);
  Atomics.add(w, 1, 1);
  Atomics.notify(w, 1);
}
`;

interface Figure {
  readonly wallUs: number;
  readonly cpuUs: number;
  readonly systemUs: number;
}

async function measure(words: Int32Array, trips: number, async: boolean): Promise<Figure> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < trips; i++) {
    const seen = Atomics.load(words, 1);
    Atomics.store(words, 0, 1);
    Atomics.notify(words, 0);
    if (async) {
      // As the pump waits: Atomics.waitAsync with a timer beside it (transport/ring.ts).
      await waitWordAsync(words, 1, seen, 1_000);
    } else {
      Atomics.wait(words, 1, seen);
    }
  }
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { wallUs: (wall * 1000) / trips, cpuUs: (cpu.user + cpu.system) / trips, systemUs: cpu.system / trips };
}

function median(xs: readonly Figure[]): Figure {
  return [...xs].sort((a, b) => a.cpuUs - b.cpuUs)[Math.floor((xs.length - 1) / 2)]!;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, trips: { type: 'string', default: '5000' } } });
  const rounds = Number(values.rounds);
  const trips = Number(values.trips);
  if (!(Number.isInteger(rounds) && rounds >= 1 && Number.isInteger(trips) && trips >= 1)) {
    console.error('usage: node dist/bench/micro/wake.bench.js [--rounds N>=1] [--trips N>=1]');
    process.exitCode = 2;
    return;
  }
  const buffer = new SharedArrayBuffer(12);
  const words = new Int32Array(buffer);
  const worker = new Worker(ECHO, { eval: true, workerData: buffer });
  try {
    await measure(words, Math.min(trips, 1000), false); // warm-up
    const sync: Figure[] = [];
    const asyncs: Figure[] = [];
    for (let r = 0; r < rounds; r++) {
      sync.push(await measure(words, trips, false));
      asyncs.push(await measure(words, trips, true));
    }
    for (const [name, f] of [['wait', median(sync)], ['waitAsync', median(asyncs)]] as const) {
      console.log(`${name.padEnd(9)}: ${f.wallUs.toFixed(1)} µs a round trip, ${f.cpuUs.toFixed(1)} µs of CPU (${f.systemUs.toFixed(1)} in the kernel); median of ${rounds} rounds of ${trips}`);
    }
  } finally {
    Atomics.store(words, 2, 1);
    Atomics.store(words, 0, 1);
    Atomics.notify(words, 0);
    await worker.terminate();
  }
}

await main();
