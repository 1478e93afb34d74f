/**
 * A node restored from a snapshot answers exactly as its peers do: ordered keys with their
 * revisions, keys attached to leases (and the lease table, which its leadership then keeps),
 * and transactions' kept results. The node is crashed, the others take more writes and
 * compact their logs, and it comes back by installing a snapshot.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/index.ts';
import { leaderOf, refused, start, stopAfterEach, tempDir } from './helpers.ts';

stopAfterEach();

const text = new TextDecoder();

describe('a node restored from a snapshot', () => {
  it('holds the same keys, revisions and leases as its peers, and serves them when it leads', async () => {
    const cluster = await start({ dataDir: tempDir(), node: { snapshotEveryEntries: 50, snapshotRetainEntries: 5 } });
    const kv = cluster.client();
    const leader = await leaderOf(cluster);
    const victim = [1, 2, 3].find((n) => n !== leader)!;
    const { id: lease } = await kv.grantLease(60_000);
    await cluster.crash(victim);
    // Written while it is down: far more than the others' logs keep (50 entries a snapshot, 5
    // kept behind), so it can only catch up by installing a snapshot.
    for (let i = 0; i < 300; i++) await kv.put(`k/${String(i).padStart(3, '0')}`, `v${i}`, i % 3 === 0 ? { lease } : {});
    await kv.txn({ if: [{ key: 'k/000', target: 'version', op: '=', value: 1 }], then: [{ op: 'put', key: 'k/000', value: 'again' }, { op: 'deleteRange', start: 'k/290', end: 'k/295' }] });
    await kv.delete('k/001');
    const { id: other } = await kv.grantLease(60_000);
    await kv.put('other', 'x', { lease: other });
    await cluster.restart(victim);
    // Wait until it has applied everything the leader has.
    const target = (await cluster.status()).nodes.find((n) => n.id === leader)!.appliedIndex;
    for (let i = 0; i < 200; i++) {
      const me = (await cluster.status()).nodes.find((n) => n.id === victim)!;
      if (me.appliedIndex >= target) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const read = async (nodeId: number) => (await kv.range({ prefix: '' }, { consistency: 'stale', nodeId })).entries.map((e) => [text.decode(e.key), text.decode(e.value), e.createIndex, e.modIndex, e.version]);
    const expected = await read(leader);
    expect(expected.length).toBe(300 - 5 - 1 + 1);
    expect(await read(victim)).toEqual(expected);
    // It leads now: the lease table came with the snapshot, and revoking deletes the attached keys.
    await cluster.transferLeadership(victim);
    // 100 keys put with it; k/000 put again without it, k/291 and k/294 deleted by the range.
    expect(await kv.leaseTimeToLive(lease)).toMatchObject({ id: lease, ttlMs: 60_000, keys: 97 });
    expect(await kv.revokeLease(lease)).toBe(97);
    expect((await kv.range({ prefix: 'k/' }, { countOnly: true })).count).toBe(294 - 97);
    expect((await refused(kv.keepAlive(lease))).code).toBe(ErrorCode.LEASE_NOT_FOUND);
    expect(await kv.keepAlive(other)).toMatchObject({ id: other, keys: 1 });
  });
});
