/**
 * Idle CPU of a cluster: `node dist/bench/cluster/idle.js [--nodes N] [--seconds S]`. Starts a cluster
 * with the library's default timing, writes once so that a leader is settled, then measures the
 * CPU time of the whole process (every thread) over S seconds of idleness, as a share of one core.
 */
import { parseArgs } from 'node:util';
import { createCluster } from '../../src/cluster/index.ts';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '3' }, seconds: { type: 'string', default: '5' } } });
const nodes = Number(values.nodes);
const seconds = Number(values.seconds);
if (!(Number.isInteger(nodes) && nodes >= 1) || !(seconds > 0 && seconds <= 600)) {
  console.error('usage: node dist/bench/cluster/idle.js [--nodes N] [--seconds S (<= 600)]');
  process.exit(2);
}
const cluster = await createCluster({ nodes });
try {
  await cluster.client().put('idle', 'check');
  await new Promise((r) => setTimeout(r, 1000));
  const before = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const used = process.cpuUsage(before);
  const wallMs = performance.now() - t0;
  const share = (used.user + used.system) / 1000 / wallMs;
  console.log(`idle CPU of a ${nodes}-node cluster, all threads: ${(share * 100).toFixed(2)}% of one core (user ${(used.user / 1000).toFixed(0)} ms, system ${(used.system / 1000).toFixed(0)} ms over ${wallMs.toFixed(0)} ms)`);
} finally {
  await cluster.close();
}
