/**
 * A closed loop of puts (or linearizable gets) at 256 in flight on a filled 3-node cluster in
 * memory (or `--durable`: WALs with fsync 'always' in a temporary directory), nothing else:
 * the run to profile (`node --cpu-prof --cpu-prof-dir=DIR dist/bench/cluster/put-loop.js
 * [--op put|get] [--ms N] [--in-flight N] [--node-threads N] [--durable] [--plain]`, which
 * writes a profile for the main thread and one for each node thread), and the per-thread CPU
 * of a plain loop. `--plain` runs a user's own loop instead of the benchmark's driver: `N`
 * async functions that each await one call after another, with no clock and no histogram
 * (throughput and CPU only), to show that the driver gets nothing such a loop does not.
 * `--op txn --txn-puts N`: each call is one transaction of N puts (the batched call), and
 * throughput and CPU are counted in puts, not calls.
 */
import { performance } from 'node:perf_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createCluster } from '../../src/index.ts';
import { closedLoop } from '../load/loops.ts';
import { filledCluster, KEYS } from './filled-cluster.ts';
import { threadDeltas, threadTimes } from '../shared/thread-cpu.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { op: { type: 'string', default: 'put' }, 'txn-puts': { type: 'string', default: '16' }, ms: { type: 'string', default: '4000' }, 'in-flight': { type: 'string', default: '256' }, 'node-threads': { type: 'string' }, durable: { type: 'boolean', default: false }, 'sync-inline': { type: 'boolean', default: false }, plain: { type: 'boolean', default: false } },
  });
  const ms = Number(values.ms);
  const inFlight = Number(values['in-flight']);
  const nodeThreads = values['node-threads'] === undefined ? undefined : Number(values['node-threads']);
  const txnPuts = Number(values['txn-puts']);
  if (!(values.op === 'put' || values.op === 'get' || values.op === 'txn') || !(Number.isInteger(txnPuts) && txnPuts >= 1 && txnPuts <= 128) || !(ms > 0) || !(Number.isInteger(inFlight) && inFlight >= 1) || !(nodeThreads === undefined || Number.isInteger(nodeThreads))) {
    console.error('usage: node dist/bench/cluster/put-loop.js [--op put|get|txn [--txn-puts 1..128]] [--ms N>0] [--in-flight N>=1] [--node-threads N>=1 (default: the cluster\'s)] [--durable [--sync-inline]] [--plain]');
    process.exitCode = 2;
    return;
  }
  const dataDir = values.durable ? mkdtempSync(join(tmpdir(), 'ringraft-put-loop-')) : undefined;
  const { cluster, kv, keys, value } = await filledCluster((o) => createCluster({ ...o, ...(nodeThreads === undefined ? {} : { nodeThreads }), ...(dataDir === undefined ? {} : { dataDir }), ...(values['sync-inline'] ? { node: { syncThread: false } } : {}) }));
  try {
    const txnOf = (i: number) => ({ then: Array.from({ length: txnPuts }, (_, k) => ({ op: 'put' as const, key: keys[(i * txnPuts + k) % KEYS]!, value })) });
    const op = values.op === 'put' ? (i: number) => kv.put(keys[i % KEYS]!, value) : values.op === 'txn' ? (i: number) => kv.txn(txnOf(i)) : (i: number) => kv.get(keys[i % KEYS]!);
    /** Puts per call: throughput and CPU are per put. */
    const perCall = values.op === 'txn' ? txnPuts : 1;
    await closedLoop(op, { inFlight, durationMs: 500 });
    const before = threadTimes();
    const r = values.plain ? await plainLoop(op, inFlight, ms) : await closedLoop(op, { inFlight, durationMs: ms });
    const after = threadTimes();
    const latency = 'latencyMs' in r ? `p50 ${r.latencyMs.p50.toFixed(3)} ms, p99 ${r.latencyMs.p99.toFixed(3)} ms` : 'a plain loop';
    const what = values.op === 'txn' ? `txn of ${txnPuts} puts: ${Math.round(r.opsPerSec * perCall)} puts/s (${Math.round(r.opsPerSec)} calls/s)` : `${values.op}: ${Math.round(r.opsPerSec)}/s`;
    console.log(`${what} at ${inFlight} in flight, ${latency}, ${r.errors} errors; CPU µs per ${values.op === 'txn' ? 'put' : 'op'} by thread:`);
    let total = 0;
    for (const [tid, t] of threadDeltas(before, after)) {
      const used = t.ns / 1000 / (r.ops * perCall);
      total += used;
      if (used >= 0.05) console.log(`  ${tid === process.pid ? 'main' : `${tid} ${t.name}`}: ${used.toFixed(2)}`);
    }
    console.log(`  total: ${total.toFixed(2)}`);
  } finally {
    await cluster.close();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * A user's own loop: `inFlight` async functions, each awaiting one call after another until
 * a flag set by one timer says stop. Calls are counted, failures too; nothing is timed.
 */
async function plainLoop(op: (i: number) => Promise<unknown>, inFlight: number, ms: number): Promise<{ ops: number; errors: number; opsPerSec: number }> {
  let stop = false;
  let ops = 0;
  let errors = 0;
  const timer = setTimeout(() => (stop = true), ms);
  const start = performance.now();
  const worker = async (w: number): Promise<void> => {
    for (let i = w; !stop; i += inFlight) {
      try {
        await op(i);
        ops++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, (_, w) => worker(w)));
  clearTimeout(timer);
  const elapsedMs = performance.now() - start;
  return { ops, errors, opsPerSec: (ops / elapsedMs) * 1000 };
}

await main();
