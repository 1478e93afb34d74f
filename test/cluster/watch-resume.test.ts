// Proves that a watch moves on when it cannot stay where it is: a watch through another
// thread's endpoint resumes on another node when its node crashes, and a watch that no node
// can resume (every history starts past its index) ends with COMPACTED instead of retrying
// for ever. Real clusters on worker threads, every wait bounded by `within`.
import { describe, expect, it } from 'vitest';
import { connectEndpoint, createCluster, ErrorCode } from '../../src/index.ts';
import { afterTest, fast, leaderOf, start, stopAfterEach, tempDir } from './helpers.ts';
import { within } from './within.ts';

stopAfterEach();

describe('watches that must move on', () => {
  it("a watch through another thread's endpoint moves on when its node crashes", async () => {
    const cluster = await start();
    const kv = cluster.client();
    await kv.put('warm', 'up');
    const remote = connectEndpoint(await cluster.connectEndpoint());
    afterTest(() => remote.close());
    const rkv = remote.client();
    // The remote client learns the leader; its watch then goes to the leader.
    await rkv.put('w/0', 'a');
    const leader = await leaderOf(cluster);
    const watch = rkv.watch('w/');
    afterTest(async () => {
      await watch.return!();
    });
    await rkv.put('w/1', 'b');
    const first = await within(watch.next(), 5_000);
    expect(first).toMatchObject({ value: { value: { index: expect.any(Number) } } });
    await cluster.crash(leader);
    await kv.put('w/2', 'c', { timeoutMs: 10_000 });
    // Nothing tells a remote endpoint that a node went down except the liveness words, and
    // its sweep looks at them only for request attempts, not for watches: the watch stays
    // registered with the dead node and waits for ever.
    const next = await within(watch.next(), 5_000);
    expect(next).not.toBe('pending');
    expect(next).toMatchObject({ value: { value: { key: new TextEncoder().encode('w/2') } } });
  });

  it('a watch that no node can resume ends with COMPACTED instead of retrying for ever', async () => {
    const dataDir = tempDir();
    const first = await createCluster(fast({ dataDir, node: { snapshotEveryEntries: 5 } }));
    const kv1 = first.client();
    for (let i = 0; i < 30; i++) await kv1.put(`k${i}`, `${i}`);
    await first.close();
    // Restarted from disk, every node's watch history starts at its snapshot (past index 1).
    const cluster = await start({ dataDir, node: { snapshotEveryEntries: 5 } });
    const kv = cluster.client();
    await kv.put('again', 'x');
    const watch = kv.watch('k', { afterIndex: 1 });
    afterTest(async () => {
      await watch.return!();
    });
    // Client.ts retryLater: the back-off is capped at the election timeout, and the give-up
    // test asks for 50 election timeouts, so the watch re-subscribes for ever.
    const r = await within(watch.next(), 15_000);
    expect(r).not.toBe('pending');
    expect(r).toMatchObject({ error: { code: ErrorCode.COMPACTED } });
  });
});
