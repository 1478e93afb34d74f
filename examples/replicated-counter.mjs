// A state machine of your own, replicated: three nodes on worker threads each run the counter
// of examples/state-machines/counter.ts (built by `npm run build`), clients propose increments
// and query the total. Each proposal is applied once on every node, however often it is retried.
//
//   npm run build && node examples/replicated-counter.mjs
import { createCluster } from 'ringraft';

const module = new URL('../dist/examples/state-machines/counter.js', import.meta.url);
const cluster = await createCluster({ nodes: 3, stateMachine: { module, options: { start: 100 } } });
try {
  const kv = cluster.client();
  const i32 = (n) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, n);
    return b;
  };
  const read = (bytes) => new DataView(bytes.buffer, bytes.byteOffset, 4).getInt32(0);
  // Ten increments at once: each answer is the total just after it applied.
  const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => kv.propose(i32(i + 1))));
  console.log(`totals after each: ${answers.map(read).sort((a, b) => a - b).join(', ')}`);
  const total = read(await kv.query(new Uint8Array(0)));
  console.log(`total (linearizable query): ${total}`);
  try {
    await kv.propose(new Uint8Array(3));
  } catch (error) {
    console.log(`a bad command: ${error.code}: ${error.message}`);
  }
  if (total !== 155) throw new Error(`expected 155, got ${total}`);
  console.log('the counter counted to 155');
} finally {
  await cluster.close();
}
