// `ringraft serve` as separate processes on 127.0.0.1: elections, signals, restarts.
import { describe, expect, it } from 'vitest';
import { connect } from '../../src/client/index.ts';
import { waitFor } from './helpers.ts';
import { processClusters } from './processes.ts';

const cluster = processClusters();

describe('ringraft serve processes', () => {
  it('SIGTERM of the leader hands leadership off before it exits 0; it rejoins from its directory', async () => {
    const c = await cluster(3);
    const leader = await c.leader();
    const before = await c.status(leader);
    c.signal(leader, 'SIGTERM');
    expect(await c.nodes.get(leader)!.exited).toBe(0);
    const lines = c.nodes.get(leader)!.lines;
    const kinds = lines.map((l) => l['kind']);
    expect(kinds).toContain('shutdown-transferred');
    expect(kinds.indexOf('shutdown-transferred')).toBeLessThan(kinds.indexOf('stopped'));
    const others = [1, 2, 3].filter((id) => id !== leader);
    const next = await c.leader(others, 5_000);
    expect(next).not.toBe(leader);
    // Handed off, not elected after a timeout: the new term is the next one.
    expect((await c.status(next)).term).toBe(before.term + 1);
    await c.start(leader);
    expect(await c.leader()).toBe(next);
    const back = await c.status(leader);
    expect(back.commitIndex).toBeGreaterThanOrEqual(before.commitIndex);
  });

  it('a second signal exits at once, with 128 + its number, while the first is still stopping gracefully', async () => {
    // Elections after 2 s: the leader stays leader while its followers are stopped, and its
    // graceful stop waits for a hand-off that cannot happen.
    const c = await cluster(3, [], { raft: { electionTimeoutTicks: 100 } });
    const leader = await c.leader();
    for (const id of [1, 2, 3]) if (id !== leader) c.signal(id, 'SIGSTOP');
    try {
      const p = c.nodes.get(leader)!;
      p.child.kill('SIGINT');
      await waitFor(() => (p.lines.some((l) => l['kind'] === 'shutdown-transfer') ? true : undefined), 'the hand-off under way');
      const second = performance.now();
      p.child.kill('SIGINT');
      expect(await p.exited).toBe(130);
      expect(performance.now() - second).toBeLessThan(1_500);
      expect(p.lines.map((l) => l['kind'])).toContain('exit-now');
      expect(p.lines.map((l) => l['kind'])).not.toContain('stopped');
    } finally {
      for (const id of [1, 2, 3]) if (id !== leader) c.signal(id, 'SIGCONT');
    }
  });

  it('a whole cluster stopped and started again from its directories keeps its term, its log and every write', async () => {
    const c = await cluster(3);
    const leader = await c.leader();
    const kv = await connect({ endpoints: c.endpoints(), clusterToken: 'serve-tests', electionTimeoutMs: 200 });
    try {
      await Promise.all(Array.from({ length: 200 }, (_, i) => kv.put(`k${i}`, `v${i}`)));
    } finally {
      await kv.close();
    }
    const before = await c.status(leader);
    for (const id of [1, 2, 3]) c.signal(id, 'SIGTERM');
    for (const id of [1, 2, 3]) expect(await c.nodes.get(id)!.exited).toBe(0);
    await Promise.all([1, 2, 3].map((id) => c.start(id)));
    const again = await c.leader();
    const after = await c.status(again);
    expect(after.term).toBeGreaterThan(before.term);
    expect(after.commitIndex).toBeGreaterThan(before.commitIndex);
    expect(after.voters).toEqual([1, 2, 3]);
    const reader = await connect({ endpoints: c.endpoints(), clusterToken: 'serve-tests', electionTimeoutMs: 200 });
    try {
      const values = await Promise.all(Array.from({ length: 200 }, (_, i) => reader.get(`k${i}`)));
      expect(values.map((v) => new TextDecoder().decode(v))).toEqual(Array.from({ length: 200 }, (_, i) => `v${i}`));
    } finally {
      await reader.close();
    }
  });
});
