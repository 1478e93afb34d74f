// A follower process down long enough that the leader compacted past it catches up over the
// network from a snapshot (chunks on the snapshot lane), while the cluster keeps its leader.
import { describe, expect, it } from 'vitest';
import { connect } from '../../src/client/index.ts';
import { waitFor } from './helpers.ts';
import { processClusters } from './processes.ts';

const cluster = processClusters();

describe('a follower back after the log was compacted past it', () => {
  it('catches up from a snapshot over TCP with no election, and serves what was written while it was down', async () => {
    // Snapshots every 50 entries, 5 kept behind: the leader compacts well past the stopped node.
    // Debug logs: the leader's decision to send a snapshot is one of its lines.
    const c = await cluster(3, ['--log-level', 'debug'], { node: { snapshotEveryEntries: 50, snapshotRetainEntries: 5 } });
    const leader = await c.leader();
    const follower = [1, 2, 3].find((id) => id !== leader)!;
    const kv = await connect({ endpoints: c.endpoints(), clusterToken: 'serve-tests', electionTimeoutMs: 200 });
    try {
      await kv.put('first', '1');
      c.signal(follower, 'SIGTERM');
      expect(await c.nodes.get(follower)!.exited).toBe(0);
      const value = 'v'.repeat(1000);
      // One at a time: an entry each.
      for (let i = 0; i < 300; i++) await kv.put(`k${i}`, value);
      const before = await c.status(leader);
      expect(before.lastIndex).toBeGreaterThan(300);
      await c.start(follower);
      const caughtUp = await waitFor(async () => {
        const s = await c.status(follower);
        return s.appliedIndex >= before.commitIndex ? s : undefined;
      }, 'the follower caught up', 20_000);
      const after = await c.status(leader);
      // No election: the same leader, the same term.
      expect(after.role).toBe('leader');
      expect(after.term).toBe(before.term);
      expect(caughtUp.term).toBe(before.term);
      // It has the data, read where it is (a stale read pinned to it, once the client is back on it).
      await waitFor(() => (kv.endpoints().find((e) => e.nodeId === follower)?.up === true ? true : undefined), 'the client reconnected');
      const got = await kv.get('k299', { consistency: 'stale', nodeId: follower });
      expect(got?.length).toBe(1000);
      expect(new TextDecoder().decode(await kv.get('first', { consistency: 'stale', nodeId: follower }))).toBe('1');
      // It came back by a snapshot, which the leader sent it.
      const sent = c.nodes.get(leader)!.lines.filter((l) => l['kind'] === 'raft-snapshot-sent' && (l['event'] as { to: number }).to === follower);
      expect(sent.length).toBeGreaterThan(0);
    } finally {
      await kv.close();
    }
  });
});
