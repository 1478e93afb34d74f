/**
 * Locks and elections (cluster/recipes.ts) on a real cluster: under contention from several
 * threads never two holders at once, fencing tokens that grow with each holder, waiters served
 * in order; a holder that stops renewing loses the lock a TTL later and not before; elections
 * elect one at a time, observers see each leader, and resigning hands over.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/index.ts';
import { refused, start, stopAfterEach } from './helpers.ts';

stopAfterEach();

const text = new TextDecoder();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Hold {
  readonly token: number;
  readonly began: number;
  readonly ended: number;
}

describe('lock', () => {
  it('holds one holder at a time across threads and clients, with tokens that grow holder to holder', async () => {
    const cluster = await start();
    await cluster.client().put('warm', 'up');
    const shared = new SharedArrayBuffer(8);
    const overlap = new Int32Array(shared);
    const thread = async (): Promise<{ holds: Hold[]; errors: string[] }> => {
      const descriptor = await cluster.connectEndpoint();
      const worker = new Worker(new URL('../fixtures/lock-client.mjs', import.meta.url), { workerData: { descriptor, name: 'res', callers: 4, rounds: 4, shared } });
      const exited = new Promise((r) => worker.once('exit', r));
      const result = await new Promise<{ holds: Hold[]; errors: string[] }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`the lock thread exited (code ${code}) without a result`)));
      });
      await exited;
      return result;
    };
    // Three threads of four contenders, and four more contenders on this thread's client.
    const local = async (): Promise<Hold[]> => {
      const kv = cluster.client();
      const holds: Hold[] = [];
      for (let i = 0; i < 4; i++) {
        const lock = await kv.lock('res', { ttlMs: 5000 });
        const began = performance.timeOrigin + performance.now();
        if (Atomics.add(overlap, 0, 1) !== 0) Atomics.add(overlap, 1, 1);
        await sleep(Math.random() * 3);
        Atomics.sub(overlap, 0, 1);
        holds.push({ token: lock.token, began, ended: performance.timeOrigin + performance.now() });
        await lock.release();
      }
      return holds;
    };
    const [a, b, c, ...mine] = await Promise.all([thread(), thread(), thread(), local(), local(), local(), local()]);
    for (const r of [a, b, c]) expect(r.errors).toEqual([]);
    const holds = [...a.holds, ...b.holds, ...c.holds, ...mine.flat()].sort((x, y) => x.began - y.began);
    expect(holds).toHaveLength(3 * 16 + 16);
    expect(overlap[1], 'holders at once').toBe(0);
    // In the order they held it, each token is above the one before, and each hold began after the last ended.
    for (let i = 1; i < holds.length; i++) {
      expect(holds[i]!.token).toBeGreaterThan(holds[i - 1]!.token);
      expect(holds[i]!.began).toBeGreaterThanOrEqual(holds[i - 1]!.ended);
    }
    // Released: nothing left under the lock's name.
    expect((await cluster.client().range({ prefix: 'res/' })).count).toBe(0);
  });

  it('passes to the next waiter a TTL after its holder stops renewing, and not before', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const ttlMs = 900;
    const stopRenewing = new AbortController();
    const first = await kv.lock('job', { ttlMs, signal: stopRenewing.signal });
    const waiting = kv.lock('job', { ttlMs });
    await sleep(ttlMs * 2);
    // Still held while renewed: the waiter waits.
    expect(await Promise.race([waiting.then(() => 'acquired'), sleep(10).then(() => 'waiting')])).toBe('waiting');
    stopRenewing.abort();
    const stopped = performance.now();
    const second = await waiting;
    // The last renewal was at most a third of a TTL before the stop.
    expect(performance.now() - stopped).toBeGreaterThanOrEqual((ttlMs * 2) / 3 - 50);
    expect(second.token).toBeGreaterThan(first.token);
    // The first holder learns it lost the lock.
    for (let i = 0; i < 100 && !first.lost.aborted; i++) await sleep(20);
    await first.release();
    await second.release();
    expect((await kv.range({ prefix: 'job/' })).count).toBe(0);
  });

  it('gives up waiting with TIMEOUT or ABORTED, leaving the queue, and refuses a bad name', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const held = await kv.lock('q');
    expect((await refused(kv.lock('q', { timeoutMs: 300 }))).code).toBe(ErrorCode.TIMEOUT);
    const abort = new AbortController();
    const aborted = kv.lock('q', { signal: abort.signal });
    await sleep(100);
    abort.abort();
    expect((await refused(aborted)).code).toBe(ErrorCode.ABORTED);
    // The two that gave up left no key behind.
    expect((await kv.range({ prefix: 'q/' })).count).toBe(1);
    await held.release();
    expect((await refused(kv.lock(''))).code).toBe(ErrorCode.INVALID_ARGUMENT);
  });

  it('keeps a name and the names nested under it apart: lock a/b held does not hold lock a', async () => {
    const cluster = await start();
    const kv = cluster.client();
    // Nested first, so its key comes before the outer lock's in the queue's order.
    const nested = await kv.lock('a/b');
    const outer = await kv.lock('a', { timeoutMs: 2_000 });
    expect(outer.token).toBeGreaterThan(nested.token);
    // An observer of election "a" sees its own contender, not the nested lock's.
    const stop = new AbortController();
    const seen = kv.observeElection('a', { signal: stop.signal });
    const first = await seen.next();
    expect((first.value as { key: string }).key).toMatch(/^a\/[0-9a-f]{16}$/);
    stop.abort();
    await Promise.all([outer.release(), nested.release()]);
  });
});

describe('elect', () => {
  it('elects one candidate at a time, observers see each leader, and resigning hands over in order', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const stop = new AbortController();
    const seen: (string | undefined)[] = [];
    const observing = (async () => {
      for await (const leader of kv.observeElection('svc', { signal: stop.signal })) seen.push(leader === undefined ? undefined : text.decode(leader.value));
    })();
    const a = await kv.elect('svc', 'node-a');
    // The elected one sees itself lead.
    const mine = new AbortController();
    const first = await a.observe(mine.signal).next();
    mine.abort();
    expect(first.done === false && first.value !== undefined && text.decode(first.value.value)).toBe('node-a');
    const b = kv.elect('svc', 'node-b');
    await sleep(200);
    const c = kv.elect('svc', 'node-c');
    await sleep(200);
    await a.resign();
    const bElected = await b;
    await bElected.resign();
    const cElected = await c;
    expect(cElected.token).toBeGreaterThan(bElected.token);
    await cElected.resign();
    for (let i = 0; i < 100 && seen[seen.length - 1] !== undefined; i++) await sleep(20);
    stop.abort();
    await observing;
    expect(seen.filter((v) => v !== undefined)).toEqual(['node-a', 'node-b', 'node-c']);
    expect(seen[seen.length - 1]).toBeUndefined();
  });
});
