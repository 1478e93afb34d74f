// A small job queue on the store: jobs are keys under "jobs/", workers take each job under a
// lock (a lease-backed key: a worker that dies loses it a TTL later, never before), do it, and
// record it with a transaction that checks the job is still there, so no job is done twice.
// The lock's fencing token only grows from holder to holder.
//
//   npm run build && node examples/job-queue.mjs
import { createCluster } from 'ringraft';

const cluster = await createCluster({ nodes: 3 });
try {
  const kv = cluster.client();
  const text = (b) => new TextDecoder().decode(b);
  for (let i = 1; i <= 6; i++) await kv.put(`jobs/${i}`, `job ${i}`);

  const tokens = [];
  const done = new Map();
  async function worker(name) {
    for (;;) {
      const lock = await kv.lock('queue', { ttlMs: 2_000 });
      try {
        tokens.push(lock.token);
        const { entries } = await kv.range({ prefix: 'jobs/' }, { limit: 1 });
        if (entries.length === 0) return;
        const job = entries[0];
        // Take the job only if it is still there, in one entry with recording who did it.
        const taken = await kv.txn({
          if: [{ key: job.key, target: 'version', op: '>', value: 0 }],
          then: [{ op: 'delete', key: job.key }, { op: 'put', key: `done/${text(job.key).slice(5)}`, value: name }],
        });
        if (taken.succeeded) done.set(text(job.key), name);
      } finally {
        await lock.release();
      }
    }
  }
  await Promise.all(['ann', 'bob', 'cy'].map(worker));

  const { entries: left } = await kv.range({ prefix: 'jobs/' });
  const { entries: records } = await kv.range({ prefix: 'done/' });
  console.log(`jobs done: ${[...done].map(([job, by]) => `${job} by ${by}`).join(', ')}`);
  const increasing = tokens.every((t, i) => i === 0 || t > tokens[i - 1]);
  console.log(`lock tokens ${increasing ? 'only grew' : 'went back'}: ${tokens.join(' < ')}`);
  if (left.length !== 0 || records.length !== 6 || done.size !== 6 || !increasing) throw new Error('the queue lost, repeated or reordered work');
  console.log('six jobs, each done once');
} finally {
  await cluster.close();
}
