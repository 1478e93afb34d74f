// Replies that wait in a node's outbox (the client's reply ring full while its thread is
// busy) still reach their own callers with what they answered: the node answers a put that
// applied through one reply object reused for every answer, so one queued must be a copy,
// not that object; and it answers a get with a view of the store's bytes that later writes
// may write over (the value slabs are reused), so one queued must hold a copy of them.
import { describe, expect, it } from 'vitest';
import { start, stopAfterEach } from './helpers.ts';

stopAfterEach();

const PUTS = 200;
const BIG_READS = 12;
const READS_OF_X = 50;
const OVERWRITES = 2_000;

describe('write replies queued behind a full reply ring', () => {
  it('each reach the put they answer', async () => {
    // An election timeout of 1 s makes a call's attempt last 4 s, longer than the puts' own
    // 3.5 s: a reply lost at the node is not hidden by a retry, the put fails with TIMEOUT.
    const cluster = await start({ raft: { electionTimeoutTicks: 100 } });
    const kv = cluster.client();
    // Replies of 1 MiB values fill the client's 8 MiB reply ring; the write replies after them wait.
    const big = new Uint8Array(1 << 20).fill(7);
    for (let i = 0; i < BIG_READS; i++) await kv.put(`big-${i}`, big);
    const busy = (ms: number): void => {
      const until = performance.now() + ms;
      while (performance.now() < until) {
        // This thread reads no reply meanwhile.
      }
    };
    // The reads go out at the next microtask (the client flushes its requests there); their
    // replies fill the ring and the rest wait at the node while this thread is busy.
    const reads: Promise<Uint8Array | undefined>[] = [];
    for (let i = 0; i < BIG_READS; i++) reads.push(kv.get(`big-${i}`));
    await Promise.resolve();
    busy(300);
    // The puts go out at the next microtask; their replies queue behind the reads'.
    const puts: Promise<void>[] = [];
    for (let i = 0; i < PUTS; i++) puts.push(kv.put(`key-${i}`, `value-${i}`, { timeoutMs: 3_500 }));
    await Promise.resolve();
    busy(500);
    const settled = await Promise.allSettled([...reads, ...puts]);
    expect(settled.filter((s) => s.status === 'rejected')).toEqual([]);
    for (const r of reads) expect((await r)?.length).toBe(big.length);
    for (let i = 0; i < PUTS; i += 7) expect(new TextDecoder().decode(await kv.get(`key-${i}`))).toBe(`value-${i}`);
  }, 40_000);

  it('each hold the value their get read, though later writes reuse its bytes', async () => {
    // No watch history: a value slab is free to be written again as soon as its values are replaced.
    const cluster = await start({ raft: { electionTimeoutTicks: 100 }, node: { watchHistoryChangesMax: 1, watchHistoryBytesMax: 0 } });
    const kv = cluster.client();
    const big = new Uint8Array(1 << 20).fill(7);
    for (let i = 0; i < BIG_READS; i++) await kv.put(`big-${i}`, big);
    const first = new Uint8Array(1000).fill(1);
    await kv.put('x', first);
    const busy = (ms: number): void => {
      const until = performance.now() + ms;
      while (performance.now() < until) {
        // This thread reads no reply meanwhile.
      }
    };
    // The big replies fill the ring; the gets of x are answered behind them, and wait.
    const bigReads: Promise<Uint8Array | undefined>[] = [];
    for (let i = 0; i < BIG_READS; i++) bigReads.push(kv.get(`big-${i}`));
    const reads: Promise<Uint8Array | undefined>[] = [];
    for (let i = 0; i < READS_OF_X; i++) reads.push(kv.get('x'));
    await Promise.resolve();
    busy(300);
    // Then x is written over and over (some 2 MB of values, many slabs): the slab its first
    // value lay in is replaced whole, freed, and written again, while those replies wait.
    const puts: Promise<void>[] = [];
    for (let i = 0; i < OVERWRITES; i++) puts.push(kv.put('x', new Uint8Array(1000).fill(2 + (i % 200)), { timeoutMs: 3_500 }));
    await Promise.resolve();
    busy(500);
    const settled = await Promise.allSettled([...bigReads, ...reads, ...puts]);
    expect(settled.filter((s) => s.status === 'rejected')).toEqual([]);
    for (const r of reads) expect(await r).toEqual(first);
  }, 40_000);
});
