import { createCluster } from '/work/main/dist/src/index.js';
import { openLoop } from '/work/main/dist/bench/load/loops.js';
import { filledCluster, KEYS } from '/work/main/dist/bench/cluster/filled-cluster.js';
import { threadDeltas, threadTimes } from '/work/main/dist/bench/shared/thread-cpu.js';
const rate = Number(process.argv[2] ?? 178000);
const { cluster, kv, keys, value } = await filledCluster((o) => createCluster(o));
const op = (i) => kv.put(keys[i % KEYS], value);
const before = threadTimes();
const r = await openLoop(op, { ratePerSec: rate, durationMs: 3000, inFlightMax: 65536 });
const after = threadTimes();
console.log(`rate ${rate}: ${Math.round(r.opsPerSec)}/s p50 ${r.latencyMs.p50} p99 ${r.latencyMs.p99} peak ${r.inFlightPeak} errors ${JSON.stringify(r.errorsByCode)}`);
for (const [tid, t] of threadDeltas(before, after)) { const used = t.ns / 1000 / r.ops; if (used >= 0.1) console.log(`  ${tid === process.pid ? 'main' : `${tid} ${t.name}`}: ${used.toFixed(2)}`); }
await cluster.close();
