/**
 * A closed loop of puts (or linearizable gets) at 256 in flight on a filled 3-node cluster in
 * memory, nothing else: the run to profile (`node --cpu-prof --cpu-prof-dir=DIR
 * dist/bench/cluster/put-loop.js [--op put|get] [--ms N] [--in-flight N]`, which writes a
 * profile for the main thread and one for each node's thread), and the per-thread CPU of a
 * plain loop.
 */
import { parseArgs } from 'node:util';
import { createCluster } from '../../src/index.ts';
import { closedLoop } from '../load/loops.ts';
import { filledCluster, KEYS } from './filled-cluster.ts';
import { threadDeltas, threadTimes } from '../shared/thread-cpu.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { op: { type: 'string', default: 'put' }, ms: { type: 'string', default: '4000' }, 'in-flight': { type: 'string', default: '256' } } });
  const ms = Number(values.ms);
  const inFlight = Number(values['in-flight']);
  if (!(values.op === 'put' || values.op === 'get') || !(ms > 0) || !(Number.isInteger(inFlight) && inFlight >= 1)) {
    console.error('usage: node dist/bench/cluster/put-loop.js [--op put|get] [--ms N>0] [--in-flight N>=1]');
    process.exitCode = 2;
    return;
  }
  const { cluster, kv, keys, value } = await filledCluster(createCluster);
  try {
    const op = values.op === 'put' ? (i: number) => kv.put(keys[i % KEYS]!, value) : (i: number) => kv.get(keys[i % KEYS]!);
    await closedLoop(op, { inFlight, durationMs: 500 });
    const before = threadTimes();
    const r = await closedLoop(op, { inFlight, durationMs: ms });
    const after = threadTimes();
    console.log(`${values.op}: ${Math.round(r.opsPerSec)}/s at ${inFlight} in flight, ${r.errors} errors; CPU µs per op by thread:`);
    let total = 0;
    for (const [tid, t] of threadDeltas(before, after)) {
      const used = t.ns / 1000 / r.ops;
      total += used;
      if (used >= 0.05) console.log(`  ${tid === process.pid ? 'main' : `${tid} ${t.name}`}: ${used.toFixed(2)}`);
    }
    console.log(`  total: ${total.toFixed(2)}`);
  } finally {
    await cluster.close();
  }
}

await main();
