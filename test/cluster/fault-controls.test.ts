// The fault and membership controls refuse what would harm the cluster or what they cannot
// do, with typed errors that say why: a removal that would leave no live quorum, a transfer
// to a node that is down, node ids of the wrong type, partition groups that overlap or are
// empty. Each refusal leaves the cluster serving.
import { describe, expect, it } from 'vitest';
import { ErrorCode, type Cluster } from '../../src/index.ts';
import { leaderOf, start, stopAfterEach } from './helpers.ts';

stopAfterEach();

async function refusal(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error('expected a refusal');
}

async function stillServes(c: Cluster): Promise<void> {
  const kv = c.client();
  await kv.put('still', 'serving');
  expect(new TextDecoder().decode((await kv.get('still'))!)).toBe('serving');
}

describe('membership changes', () => {
  it('refuses to remove a node when the voters left would have no live quorum, and says which are down', async () => {
    const c = await start({ nodes: 3 });
    await leaderOf(c);
    await c.crash(2);
    const err = await refusal(c.removeNode(1, { timeoutMs: 5_000 }));
    expect(err.code).toBe(ErrorCode.NO_QUORUM);
    expect(err.message).toMatch(/removing node 1 would leave voters 2, 3, of which only 1 is live \(3\)/);
    expect(err.message).toMatch(/down: node 2/);
    // Nothing changed: node 1 is still a member, and the cluster serves.
    expect(c.nodeIds()).toEqual([1, 2, 3]);
    await stillServes(c);
    // Removing the down node itself is safe: {1, 3} are both live.
    await c.removeNode(2);
    expect(c.nodeIds()).toEqual([1, 3]);
    await stillServes(c);
  });
});

describe('concurrent membership changes', () => {
  it('run one at a time, so each checks the configuration the one before it left', async () => {
    const c = await start({ nodes: 6 });
    await leaderOf(c);
    await c.crash(5);
    await c.crash(6);
    // Either removal alone leaves a live majority; both together leave {3, 4, 5, 6}, 2 of 4 live.
    const results = await Promise.allSettled([c.removeNode(1), c.removeNode(2)]);
    const refused = results.filter((r) => r.status === 'rejected');
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(((refused[0] as PromiseRejectedResult).reason as { code: string }).code).toBe(ErrorCode.NO_QUORUM);
    await stillServes(c);
  });
});

describe('fault controls', () => {
  it('a transfer to a node that is down is refused with NODE_DOWN at once', async () => {
    const c = await start({ nodes: 3 });
    const leader = await leaderOf(c);
    const other = [1, 2, 3].find((id) => id !== leader)!;
    await c.crash(other);
    const began = performance.now();
    const err = await refusal(c.transferLeadership(other));
    expect(err.code).toBe(ErrorCode.NODE_DOWN);
    expect(err.message).toMatch(new RegExp(`node ${other} is down: it cannot become leader`));
    expect(performance.now() - began).toBeLessThan(1_000);
    await stillServes(c);
  });

  it('node ids of the wrong type are INVALID_ARGUMENT naming what was given', async () => {
    const c = await start({ nodes: 3 });
    for (const call of [
      () => c.crash('1' as unknown as number),
      () => c.restart(1.5),
      () => c.transferLeadership(0),
      () => c.removeNode(Number.NaN),
      () => c.crash(7),
    ]) {
      const err = await refusal(call());
      expect(err.code).toBe(ErrorCode.INVALID_ARGUMENT);
    }
    expect((await refusal(c.crash('1' as unknown as number))).message).toMatch(/a node id is a positive integer, got string '1'/);
    expect((await refusal(c.crash(7))).message).toMatch(/no node 7/);
    await stillServes(c);
  });

  it('partition groups must be non-empty, of known nodes, and disjoint', async () => {
    const c = await start({ nodes: 3 });
    await leaderOf(c);
    for (const [groups, pattern] of [
      [[[1], [1, 2]], /node 1 is named in two partition groups/],
      [[[1, 1]], /node 1 is named in two partition groups/],
      [[[]], /partition group 1 must be a non-empty array/],
      [[[1], []], /partition group 2 must be a non-empty array/],
      [[[9]], /no node 9/],
      [['1' as unknown as number[]], /partition group 1 must be a non-empty array of node ids, got string '1'/],
    ] as const) {
      const err = await refusal(c.partition(...(groups as unknown as number[][])));
      expect(err.code).toBe(ErrorCode.INVALID_ARGUMENT);
      expect(err.message).toMatch(pattern);
    }
    await stillServes(c);
  });
});
