/**
 * The store's newer operations beside a plain put, in one run: a 3-node cluster on worker
 * threads (in memory: the operations' cost, not the disk's), 10,000 keys of 16 bytes with
 * 128-byte values.
 *
 * - closed loops at 256 in flight: puts (the baseline); transactions of a compare and two
 *   puts; transactions of a compare, a put, a get and a range of 10;
 * - lock round trips (acquire, then release) under contention: `c` contenders, each taking
 *   one of `names` locks in turn, for a fixed time; each round trip is a lease grant, a keep-
 *   alive loop, a create, a range, maybe a watch, the token write, and a revoke.
 *
 * For each: operations per second, p50 and p99, and the CPU µs per operation of every thread
 * of this process (client and nodes) from `/proc/self/task/<tid>/schedstat` over the window.
 *
 *   npm run build && node dist/bench/cluster/store.bench.js [--quick]
 */
import { parseArgs } from 'node:util';
import { createCluster } from '../../src/index.ts';
import { closedLoop, type Operation } from '../load/loops.ts';
import { filledCluster, KEYS, processCpuNs } from './filled-cluster.ts';



async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  const loopMs = values.quick ? 1_500 : 4_000;
  const { cluster, kv, keys, value } = await filledCluster(createCluster);
  try {
    const key = (i: number): string => keys[(i * 7919) % KEYS]!;
    const cells: [string, number, Operation][] = [
      ['put', 256, (i) => kv.put(key(i), value)],
      ['txn: compare, 2 puts', 256, (i) => kv.txn({ if: [{ key: key(i), target: 'version', op: '>', value: 0 }], then: [{ op: 'put', key: key(i), value }, { op: 'put', key: key(i + 1), value }] })],
      ['txn: compare, put, get, range 10', 256, (i) => kv.txn({ if: [{ key: key(i), target: 'version', op: '>', value: 0 }], then: [{ op: 'put', key: key(i), value }, { op: 'get', key: key(i + 1) }, { op: 'range', start: key(i + 2), limit: 10 }] })],
    ];
    for (const [contenders, names] of [
      [16, 1],
      [64, 1],
      [64, 16],
    ] as const) {
      cells.push([
        `lock round trip: ${contenders} on ${names} lock${names > 1 ? 's' : ''}`,
        contenders,
        async (i) => {
          const lock = await kv.lock(`lock-${i % names}`, { ttlMs: 10_000 });
          await lock.release();
        },
      ]);
    }
    console.log(`store operations: 3 nodes on worker threads in memory, ${KEYS.toLocaleString('en-US')} keys, ${loopMs} ms loops`);
    console.log('op                                   in flight      ops/s   p50 ms   p99 ms   CPU µs/op (all threads)');
    for (const [name, inFlight, op] of cells) {
      await closedLoop(op, { inFlight, durationMs: 500 });
      const before = processCpuNs();
      const r = await closedLoop(op, { inFlight, durationMs: loopMs });
      const cpu = (processCpuNs() - before) / 1000 / Math.max(1, r.ops);
      console.log(
        `${name.padEnd(36)} ${String(inFlight).padStart(9)} ${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(10)} ${r.latencyMs.p50.toFixed(2).padStart(8)} ${r.latencyMs.p99.toFixed(2).padStart(8)} ${cpu.toFixed(1).padStart(10)}${r.errors > 0 ? `   errors ${r.errors} ${JSON.stringify(r.errorsByCode)}` : ''}`,
      );
    }
  } finally {
    await cluster.close();
  }
}

await main();
