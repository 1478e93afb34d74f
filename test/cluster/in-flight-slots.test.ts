// Proves that a call waiting for one of the client's in-flight slots is bounded by its own
// options: it gives up at its own timeoutMs and is aborted by its own signal, instead of
// waiting until another call frees the slot. A real cluster with one slot, its only slot held
// by a put that cannot commit (no quorum), and every wait bounded by `within`.
import { describe, expect, it } from 'vitest';
import { ErrorCode, type KvClient } from '../../src/index.ts';
import { leaderOf, start, stopAfterEach } from './helpers.ts';
import { within } from './within.ts';

stopAfterEach();

/**
 * A cluster whose client has one in-flight slot, held by a put (`holder`, settled with its
 * error) that cannot commit: every node but the leader has crashed, so there is no quorum,
 * and the put holds the slot until its own 3 s timeout.
 */
async function clientWithItsOnlySlotHeld(): Promise<{ kv: KvClient; holder: Promise<unknown> }> {
  const cluster = await start({ client: { requestsInFlightMax: 1 } });
  const kv = cluster.client();
  await kv.put('warm', 'up');
  const leader = await leaderOf(cluster);
  for (const id of cluster.nodeIds()) if (id !== leader) await cluster.crash(id);
  const holder = kv.put('x', '1', { timeoutMs: 3_000 }).catch((e: unknown) => e);
  return { kv, holder };
}

describe('waiting for an in-flight slot', () => {
  it('a call waiting for an in-flight slot gives up at its own timeoutMs', async () => {
    const { kv, holder } = await clientWithItsOnlySlotHeld();
    const t0 = performance.now();
    const r = await within(kv.get('x', { consistency: 'stale', timeoutMs: 200 }), 2_500);
    const elapsedMs = performance.now() - t0;
    await holder;
    // A stale read could be answered by the live node at once; at the latest it must fail
    // with TIMEOUT near 200 ms, not wait until another call frees the slot.
    expect(r).not.toBe('pending');
    expect(elapsedMs).toBeLessThan(1_000);
  });

  it('a call waiting for an in-flight slot is aborted by its signal', async () => {
    const { kv, holder } = await clientWithItsOnlySlotHeld();
    const ac = new AbortController();
    const waiting = kv.get('x', { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    const r = await within(waiting, 1_000);
    await holder;
    expect(r).not.toBe('pending');
    expect(r).toMatchObject({ error: { code: ErrorCode.ABORTED } });
  });
});
