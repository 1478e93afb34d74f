/**
 * A burst of concurrent writes from one client, far past the in-flight bound:
 * `node dist/bench/cluster/session-burst.js [--puts N] [--rounds R] [--keys K]`. Starts a 3-node
 * in-memory cluster and runs R rounds of N concurrent puts (each waits for a slot, then takes a
 * session); prints each round's time and its errors by code. Every write must succeed: a
 * SESSION_EXPIRED here means sessions evicted each other in the state machine.
 */
import { parseArgs } from 'node:util';
import { createCluster } from '../../src/cluster/index.ts';

const { values } = parseArgs({
  options: { puts: { type: 'string', default: '130000' }, rounds: { type: 'string', default: '2' }, keys: { type: 'string', default: '5000' } },
});
const puts = Number(values.puts);
const rounds = Number(values.rounds);
const keys = Number(values.keys);
if (![puts, rounds, keys].every((n) => Number.isInteger(n) && n >= 1) || puts > 1_000_000 || rounds > 20) {
  console.error('usage: node dist/bench/cluster/session-burst.js [--puts N (<= 1,000,000)] [--rounds R (<= 20)] [--keys K]');
  process.exit(2);
}
const cluster = await createCluster({ nodes: 3 });
let failed = 0;
try {
  const kv = cluster.client();
  for (let round = 1; round <= rounds; round++) {
    const began = performance.now();
    const errors = new Map<string, number>();
    await Promise.all(
      Array.from({ length: puts }, (_, i) =>
        kv.put(`k${i % keys}`, 'v', { timeoutMs: 120_000 }).catch((error: { code?: string }) => {
          const code = error.code ?? 'UNKNOWN';
          errors.set(code, (errors.get(code) ?? 0) + 1);
          failed++;
        }),
      ),
    );
    const ms = performance.now() - began;
    console.log(`round ${round}: ${puts} puts in ${(ms / 1000).toFixed(1)} s, errors: ${errors.size === 0 ? 'none' : JSON.stringify(Object.fromEntries(errors))}`);
  }
} finally {
  await cluster.close();
}
process.exit(failed === 0 ? 0 : 1);
