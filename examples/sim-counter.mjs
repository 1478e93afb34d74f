// Testing a state machine of your own with ringraft/sim: the counter of
// examples/state-machines/counter.ts (built by `npm run build`) on every replica of simulated
// clusters, through partitions, crashes, torn writes, snapshots and membership changes, its
// clients proposing increments from a seeded generator. Every seed must pass; a failing one
// would say how to replay it.
//
//   npm run build && node examples/sim-counter.mjs
import { simulateStateMachine } from 'ringraft/sim';

const { default: counter } = await import(new URL('../dist/examples/state-machines/counter.js', import.meta.url).href);

const report = await simulateStateMachine({
  stateMachine: counter,
  options: { start: 0 },
  // An increment of 1 to 9, as a big-endian i32.
  command: (random) => {
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setInt32(0, 1 + Math.floor(random() * 9));
    return bytes;
  },
  seeds: 20,
});
console.log(`${report.runs} seeds, ${report.commandsApplied} commands applied on the replicas, ${report.failures.length} failed`);
for (const f of report.failures) console.log(`seed ${f.seed}: ${f.violation}\n  replay: ${f.replay}`);
if (report.failures.length > 0) process.exit(1);
console.log('the counter passed 20 seeds');
