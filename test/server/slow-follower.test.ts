// A follower process stopped (SIGSTOP) while the leader takes far more data than any of its
// bounds: the leader's memory stays within what its settings allow (the peer transport's
// queues for that follower, Raft's in-flight window, the log it retains and a snapshot), not
// what was written; the follower, resumed, catches up and holds the last write.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { connect } from '../../src/client/index.ts';
import { resolveServeConfig } from '../../src/server/config.ts';
import { waitFor } from './helpers.ts';
import { processClusters } from './processes.ts';

const cluster = processClusters();
const MiB = 1 << 20;

function rssBytes(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  if (!Number.isFinite(kb)) throw new Error(`no VmRSS for ${pid}`);
  return kb * 1024;
}

describe('a stopped follower', () => {
  it("does not grow the leader's memory past its bounds while it writes several times those bounds", async () => {
    const c = await cluster(3);
    const leader = await c.leader();
    const [stopped, other] = [1, 2, 3].filter((id) => id !== leader) as [number, number];
    const kv = await connect({ endpoints: [leader, other].map((id) => c.endpoints()[id - 1]!), clusterToken: 'serve-tests', electionTimeoutMs: 200 });
    try {
      const value = new Uint8Array(128 << 10).fill(1);
      const keys = 64;
      const live = keys * value.length;
      const put = async (count: number, inFlight: number): Promise<void> => {
        let next = 0;
        await Promise.all(Array.from({ length: inFlight }, async () => {
          while (next < count) {
            const i = next++;
            await kv.put(`k${i % keys}`, value);
          }
        }));
      };
      // Warm up with every node up, so that the baseline has its heap, JIT code and rings.
      await put(256, 16);
      const pid = c.nodes.get(leader)!.child.pid!;
      const before = rssBytes(pid);
      c.signal(stopped, 'SIGSTOP');
      let max = before;
      const sampler = setInterval(() => {
        try {
          max = Math.max(max, rssBytes(pid));
        } catch {
          // The leader exited: the writes fail, and say why.
        }
      }, 50);
      const writes = 4096; // 512 MiB
      try {
        await put(writes, 16);
      } finally {
        clearInterval(sampler);
        c.signal(stopped, 'SIGCONT');
      }
      max = Math.max(max, rssBytes(pid));
      // What the leader may hold for a follower that reads nothing: the transport's queue on
      // each of its three lanes, and what Raft keeps (its in-flight window, the log it retains
      // for followers and the snapshot it takes and sends: a few times the live data), with
      // 64 MiB for garbage not yet collected.
      const s = resolveServeConfig({ id: 1, dataDir: '/x', listenPeer: '127.0.0.1:1', listenClient: '127.0.0.1:2', initialCluster: '1=127.0.0.1:1', clusterToken: 't' });
      const bound = 3 * s.peerTransport.queueBytesMax + s.raft.inflightBytesMax + 4 * live + 64 * MiB;
      const written = writes * value.length;
      expect(written).toBeGreaterThan(2 * bound);
      expect(max - before, `leader RSS ${Math.round(before / MiB)} -> ${Math.round(max / MiB)} MiB; bound ${Math.round(bound / MiB)} MiB growth`).toBeLessThanOrEqual(bound);
      // Resumed, the follower catches up (by snapshot: the log it missed was compacted away).
      const last = await c.status(leader);
      await waitFor(async () => ((await c.status(stopped)).appliedIndex >= last.commitIndex ? true : undefined), 'the follower caught up', 30_000);
      expect((await c.status(stopped)).leaderId).toBe(leader);
    } finally {
      await kv.close();
    }
  }, 120_000);
});
