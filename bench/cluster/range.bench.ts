/**
 * Range reads against point reads and puts, side by side in one run: a 3-node cluster on
 * worker threads (in memory: the reads' cost, not the disk's), 10,000 keys of 16 bytes with
 * 128-byte values, closed loops at 64 in flight of
 *
 * - puts and linearizable gets of one key (the baseline),
 * - linearizable range reads of 10, 100 and 1,000 consecutive keys (`limit`), from a random
 *   key; and keysOnly reads of 1,000.
 *
 * For each loop: operations per second, keys per second, p50 and p99, and the CPU µs per
 * operation of every thread of this process (client and nodes) from
 * `/proc/self/task/<tid>/schedstat` over the loop's window.
 *
 *   npm run build && node dist/bench/cluster/range.bench.js [--quick]
 */
import { parseArgs } from 'node:util';
import { createCluster } from '../../src/index.ts';
import { closedLoop, type Operation } from '../load/loops.ts';
import { filledCluster, KEYS, processCpuNs } from './filled-cluster.ts';

const IN_FLIGHT = 64;


async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  const loopMs = values.quick ? 1_500 : 4_000;
  const { cluster, kv, keys, value } = await filledCluster(createCluster);
  try {
    const start = (i: number): string => keys[(i * 7919) % KEYS]!;
    const cells: [string, number, Operation][] = [
      ['put', 1, (i) => kv.put(keys[i % KEYS]!, value)],
      ['get', 1, (i) => kv.get(keys[i % KEYS]!)],
      ['range 10', 10, (i) => kv.range({ start: start(i) }, { limit: 10 })],
      ['range 100', 100, (i) => kv.range({ start: start(i) }, { limit: 100 })],
      ['range 1,000', 1_000, (i) => kv.range({ start: start(i) }, { limit: 1_000 })],
      ['range 1,000 keysOnly', 1_000, (i) => kv.range({ start: start(i) }, { limit: 1_000, keysOnly: true })],
    ];
    console.log(`range reads: 3 nodes on worker threads in memory, ${KEYS.toLocaleString('en-US')} keys, ${IN_FLIGHT} in flight, ${loopMs} ms loops (a range from a random key: fewer keys near the end)`);
    console.log('op                        ops/s      keys/s   p50 ms   p99 ms   CPU µs/op (all threads)');
    for (const [name, perOp, op] of cells) {
      await closedLoop(op, { inFlight: IN_FLIGHT, durationMs: 500 });
      const before = processCpuNs();
      const r = await closedLoop(op, { inFlight: IN_FLIGHT, durationMs: loopMs });
      const cpu = (processCpuNs() - before) / 1000 / Math.max(1, r.ops);
      console.log(
        `${name.padEnd(22)} ${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(9)} ${Math.round(r.opsPerSec * perOp).toLocaleString('en-US').padStart(11)} ${r.latencyMs.p50.toFixed(2).padStart(8)} ${r.latencyMs.p99.toFixed(2).padStart(8)} ${cpu.toFixed(1).padStart(10)}${r.errors > 0 ? `   errors ${r.errors}` : ''}`,
      );
    }
  } finally {
    await cluster.close();
  }
}

await main();
