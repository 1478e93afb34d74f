/**
 * Leases through the client of a real cluster (nodes on worker threads): keys that vanish
 * once their lease is left to run out, and not before; keep-alives that hold them, across a
 * leader change too; revoke, time-to-live, the keep-alive helper, and typed refusals.
 */

import { describe, expect, it } from 'vitest';
import { ErrorCode, type KvClient } from '../../src/index.ts';
import { leaderOf, refused, start, stopAfterEach } from './helpers.ts';

stopAfterEach();

const text = new TextDecoder();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `key` is gone; returns when (performance.now()), or throws after `withinMs`. */
async function goneAt(kv: KvClient, key: string, withinMs: number): Promise<number> {
  const deadline = performance.now() + withinMs;
  while (performance.now() < deadline) {
    if ((await kv.get(key)) === undefined) return performance.now();
    await sleep(10);
  }
  throw new Error(`${key} still there after ${withinMs} ms`);
}

describe('leases', () => {
  it('delete their keys once left to run out, not before, and refuse keep-alives then', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const ttlMs = 600;
    const granted = performance.now();
    const { id, ttlMs: ttl } = await kv.grantLease(ttlMs);
    expect(ttl).toBe(ttlMs);
    await kv.put('session/a', '1', { lease: id });
    await kv.put('session/b', '2', { lease: id });
    await kv.put('plain', '3');
    const status = await kv.leaseTimeToLive(id);
    expect(status).toMatchObject({ id, ttlMs, keys: 2 });
    expect(status.remainingMs).toBeGreaterThan(0);
    expect(status.remainingMs).toBeLessThanOrEqual(ttlMs);
    const gone = await goneAt(kv, 'session/a', 5_000);
    // Not before a whole TTL from the grant (the leader started it no earlier than the call).
    expect(gone - granted).toBeGreaterThanOrEqual(ttlMs);
    expect(await kv.get('session/b')).toBeUndefined();
    expect(text.decode(await kv.get('plain'))).toBe('3');
    expect((await refused(kv.keepAlive(id))).code).toBe(ErrorCode.LEASE_NOT_FOUND);
    expect((await refused(kv.put('late', 'x', { lease: id }))).code).toBe(ErrorCode.LEASE_NOT_FOUND);
    expect(await kv.get('late')).toBeUndefined();
  });

  it('hold their keys while kept alive, across a leader change, and lose them a TTL after the renewals stop', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const ttlMs = 500;
    const { id } = await kv.grantLease(ttlMs);
    await kv.put('lock', 'me', { lease: id });
    const stop = new AbortController();
    const renewing = kv.keepLeaseAlive(id, { signal: stop.signal, intervalMs: 100 });
    await sleep(ttlMs * 2);
    const leader = await leaderOf(cluster);
    const next = [1, 2, 3].find((n) => n !== leader)!;
    await cluster.transferLeadership(next);
    await sleep(ttlMs * 2);
    expect(text.decode(await kv.get('lock'))).toBe('me');
    stop.abort();
    await renewing;
    const stopped = performance.now();
    const gone = await goneAt(kv, 'lock', 5_000);
    expect(gone - stopped).toBeGreaterThanOrEqual(ttlMs - 150);
  });

  it('revoke at once, exactly once, and answer LEASE_NOT_FOUND for a lease that is gone', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const { id } = await kv.grantLease(60_000);
    for (const k of ['r/1', 'r/2', 'r/3']) await kv.put(k, 'v', { lease: id });
    await kv.put('r/2', 'detached');
    expect(await kv.revokeLease(id)).toBe(2);
    expect((await kv.range({ prefix: 'r/' })).entries.map((e) => text.decode(e.key))).toEqual(['r/2']);
    expect((await refused(kv.revokeLease(id))).code).toBe(ErrorCode.LEASE_NOT_FOUND);
    expect((await refused(kv.leaseTimeToLive(id))).code).toBe(ErrorCode.LEASE_NOT_FOUND);
    expect((await refused(kv.keepAlive(id + 1000))).code).toBe(ErrorCode.LEASE_NOT_FOUND);
    // A transaction's put with the lease is refused whole.
    const { id: other } = await kv.grantLease(60_000);
    expect((await refused(kv.txn({ then: [{ op: 'put', key: 't/1', value: 'v', lease: other }, { op: 'put', key: 't/2', value: 'v', lease: id }] }))).code).toBe(ErrorCode.LEASE_NOT_FOUND);
    expect(await kv.get('t/1')).toBeUndefined();
    await kv.txn({ then: [{ op: 'put', key: 't/1', value: 'v', lease: other }] });
    expect(await kv.revokeLease(other)).toBe(1);
  });

  it('refuse bad arguments with INVALID_ARGUMENT naming them', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const cases: [Promise<unknown>, RegExp][] = [
      [kv.grantLease(99), /ttlMs must be an integer in \[KV_LEASE_TTL_MS_MIN = 100/],
      [kv.grantLease(1.5e3 + 0.5), /ttlMs must be an integer/],
      [kv.keepAlive(0), /lease id must be an integer in \[1/],
      [kv.revokeLease(-1), /lease id must be an integer/],
      [kv.put('k', 'v', { lease: 2 ** 53 }), /lease must be an integer/],
      [kv.txn({ then: [{ op: 'put', key: 'k', value: 'v', lease: 0 }] }), /txn then\[0\]\.lease must be an integer/],
      [kv.keepLeaseAlive(1, { intervalMs: -1 }), /intervalMs must be/],
    ];
    for (const [p, message] of cases) {
      const e = await refused(p);
      expect(e.code).toBe(ErrorCode.INVALID_ARGUMENT);
      expect(e.message).toMatch(message);
    }
  });
});
