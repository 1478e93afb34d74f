/**
 * An open loop of puts on a filled 3-node cluster in memory: calls started on a schedule at
 * `--rate` per second for `--ms`, whatever the replies do (`openLoop`), with the calls in
 * flight and answered printed every `--every` ms, then what each thread's CPU cost per put
 * (`node dist/bench/cluster/open-loop.js --rate N [--ms N] [--every N] [--in-flight-max N]`).
 * It shows how the client and the nodes behave when the calls come faster than they are
 * answered for a while: whether the calls in flight drain again, or grow to their bound.
 */
import { parseArgs } from 'node:util';
import { createCluster } from '../../src/index.ts';
import { REQUESTS_IN_FLIGHT_MAX } from '../../src/cluster/options.ts';
import { openLoop } from '../load/loops.ts';
import { filledCluster, KEYS } from './filled-cluster.ts';
import { threadDeltas, threadTimes } from '../shared/thread-cpu.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { rate: { type: 'string' }, ms: { type: 'string', default: '3000' }, every: { type: 'string', default: '100' }, 'in-flight-max': { type: 'string' } },
  });
  const rate = Number(values.rate);
  const ms = Number(values.ms);
  const every = Number(values.every);
  const inFlightMax = values['in-flight-max'] === undefined ? undefined : Number(values['in-flight-max']);
  if (!(rate > 0 && ms > 0 && every > 0) || !(inFlightMax === undefined || (Number.isInteger(inFlightMax) && inFlightMax >= 1))) {
    console.error('usage: node dist/bench/cluster/open-loop.js --rate N>0 [--ms N>0] [--every N>0] [--in-flight-max N>=1 (the client\'s requestsInFlightMax)]');
    process.exitCode = 2;
    return;
  }
  const { cluster, kv, keys, value } = await filledCluster((o) => createCluster(inFlightMax === undefined ? o : { ...o, client: { requestsInFlightMax: inFlightMax } }));
  try {
    const live = { inFlight: 0, answered: 0 };
    const op = (i: number): Promise<unknown> => kv.put(keys[i % KEYS]!, value);
    const start = performance.now();
    const reporter = setInterval(() => console.log(`${Math.round(performance.now() - start)} ms: in flight ${live.inFlight}, answered ${live.answered}`), every);
    const before = threadTimes();
    // Calls may wait for a slot beyond the client's own bound, up to ten times it.
    const r = await openLoop(op, { ratePerSec: rate, durationMs: ms, inFlightMax: 10 * (inFlightMax ?? REQUESTS_IN_FLIGHT_MAX), live });
    const after = threadTimes();
    clearInterval(reporter);
    console.log(`offered ${rate}/s for ${ms} ms: ${r.ops} done in ${Math.round(r.elapsedMs)} ms (${Math.round(r.opsPerSec)}/s), p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms; failed or never started: ${JSON.stringify(r.errorsByCode)}; CPU µs per put by thread:`);
    for (const [tid, t] of threadDeltas(before, after)) {
      const used = t.ns / 1000 / Math.max(1, r.ops);
      if (used >= 0.05) console.log(`  ${tid === process.pid ? 'main' : `${tid} ${t.name}`}: ${used.toFixed(2)}`);
    }
  } finally {
    await cluster.close();
  }
}

await main();
