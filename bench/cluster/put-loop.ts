/**
 * A closed loop of puts (or linearizable gets) at 256 in flight on a filled 3-node cluster in
 * memory (or `--durable`: WALs with fsync 'always' in a temporary directory), nothing else:
 * the run to profile (`node --cpu-prof --cpu-prof-dir=DIR dist/bench/cluster/put-loop.js
 * [--op put|get] [--ms N] [--in-flight N] [--node-threads N] [--durable]`, which writes a
 * profile for the main thread and one for each node thread), and the per-thread CPU of a
 * plain loop.
 */
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
    options: { op: { type: 'string', default: 'put' }, ms: { type: 'string', default: '4000' }, 'in-flight': { type: 'string', default: '256' }, 'node-threads': { type: 'string' }, durable: { type: 'boolean', default: false } },
  });
  const ms = Number(values.ms);
  const inFlight = Number(values['in-flight']);
  const nodeThreads = values['node-threads'] === undefined ? undefined : Number(values['node-threads']);
  if (!(values.op === 'put' || values.op === 'get') || !(ms > 0) || !(Number.isInteger(inFlight) && inFlight >= 1) || !(nodeThreads === undefined || Number.isInteger(nodeThreads))) {
    console.error('usage: node dist/bench/cluster/put-loop.js [--op put|get] [--ms N>0] [--in-flight N>=1] [--node-threads N>=1 (default: the cluster\'s)] [--durable]');
    process.exitCode = 2;
    return;
  }
  const dataDir = values.durable ? mkdtempSync(join(tmpdir(), 'ringraft-put-loop-')) : undefined;
  const { cluster, kv, keys, value } = await filledCluster((o) => createCluster({ ...o, ...(nodeThreads === undefined ? {} : { nodeThreads }), ...(dataDir === undefined ? {} : { dataDir }) }));
  try {
    const op = values.op === 'put' ? (i: number) => kv.put(keys[i % KEYS]!, value) : (i: number) => kv.get(keys[i % KEYS]!);
    await closedLoop(op, { inFlight, durationMs: 500 });
    const before = threadTimes();
    const r = await closedLoop(op, { inFlight, durationMs: ms });
    const after = threadTimes();
    console.log(`${values.op}: ${Math.round(r.opsPerSec)}/s at ${inFlight} in flight, p50 ${r.latencyMs.p50.toFixed(3)} ms, p99 ${r.latencyMs.p99.toFixed(3)} ms, ${r.errors} errors; CPU µs per op by thread:`);
    let total = 0;
    for (const [tid, t] of threadDeltas(before, after)) {
      const used = t.ns / 1000 / r.ops;
      total += used;
      if (used >= 0.05) console.log(`  ${tid === process.pid ? 'main' : `${tid} ${t.name}`}: ${used.toFixed(2)}`);
    }
    console.log(`  total: ${total.toFixed(2)}`);
  } finally {
    await cluster.close();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
