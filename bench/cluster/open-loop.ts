/**
 * An open loop of puts on a filled 3-node cluster in memory: calls started on a schedule at
 * `--rate` per second for `--ms`, whatever the replies do, with the calls in flight and done
 * printed every `--every` ms, then what each thread's CPU cost per put
 * (`node dist/bench/cluster/open-loop.js --rate N [--ms N] [--every N] [--in-flight-max N]`).
 * It shows how the client and the nodes behave when the calls come faster than they are
 * answered for a while: whether the calls in flight drain again, or grow to their bound.
 */
import { parseArgs } from 'node:util';
import { createCluster } from '../../src/index.ts';
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
    const total = Math.floor((rate * ms) / 1000);
    let started = 0;
    let inFlight = 0;
    let done = 0;
    let failed = 0;
    const before = threadTimes();
    const start = performance.now();
    let reportAt = start + every;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const now = performance.now();
        // The calls due by now, as long as the client's own bound is not passed tenfold.
        while (started < total && start + (started * 1000) / rate <= now && inFlight < 10 * (inFlightMax ?? 65_536)) {
          started++;
          inFlight++;
          kv.put(keys[started % KEYS]!, value).then(
            () => {
              inFlight--;
              done++;
            },
            () => {
              inFlight--;
              failed++;
            },
          );
        }
        if (now >= reportAt) {
          console.log(`${Math.round(now - start)} ms: started ${started}, in flight ${inFlight}, done ${done}, failed ${failed}`);
          reportAt += every;
        }
        if ((started >= total && inFlight === 0) || now - start > 3 * ms) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    const elapsedMs = performance.now() - start;
    const after = threadTimes();
    console.log(`offered ${rate}/s for ${ms} ms: ${done} done in ${Math.round(elapsedMs)} ms (${Math.round((done / elapsedMs) * 1000)}/s), ${failed} failed, ${total - started} never started; CPU µs per put by thread:`);
    for (const [tid, t] of threadDeltas(before, after)) {
      const used = t.ns / 1000 / Math.max(1, done);
      if (used >= 0.05) console.log(`  ${tid === process.pid ? 'main' : `${tid} ${t.name}`}: ${used.toFixed(2)}`);
    }
  } finally {
    await cluster.close();
  }
}

await main();
