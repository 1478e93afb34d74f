// SIGKILL of the leader process under load from several network clients: no acknowledged
// write is lost, service resumes within a few election timeouts, and what the clients saw is
// linearizable (the project's checker, over every operation with its call and return times).
import { describe, expect, it } from 'vitest';
import { RingraftError } from '../../src/base/index.ts';
import { connect, type NetworkClient } from '../../src/client/index.ts';
import { checkLinearizable, type HistoryOp } from '../../src/sim/index.ts';
import { processClusters } from './processes.ts';

const cluster = processClusters();
const KEYS = ['a', 'b', 'c', 'd'];
const decoder = new TextDecoder();

interface Load {
  readonly history: HistoryOp[];
  /** performance.now() of each acknowledged write, to find the gap the kill made. */
  readonly acknowledgedAt: number[];
  stop: boolean;
}

/** One client's closed loop of random operations on a few keys, recorded. */
async function runClient(kv: NetworkClient, client: number, load: Load): Promise<void> {
  let i = 0;
  while (!load.stop) {
    i++;
    const key = KEYS[(client * 7 + i * 13) % KEYS.length]!;
    const kind = (['put', 'get', 'cas', 'put', 'get', 'delete'] as const)[(i + client) % 6]!;
    const value = `c${client}-${i}`;
    const call = performance.now();
    const op: HistoryOp = { client, op: kind, key, value: null, expected: null, output: null, call, return: null };
    try {
      switch (kind) {
        case 'put':
          op.value = value;
          await kv.put(key, value, { timeoutMs: 4_000 });
          break;
        case 'get': {
          const v = await kv.get(key, { timeoutMs: 4_000 });
          op.output = v === undefined ? null : decoder.decode(v);
          break;
        }
        case 'delete':
          op.output = await kv.delete(key, { timeoutMs: 4_000 });
          break;
        case 'cas': {
          // Expect what this client last read of any key, or absent: some succeed, some not.
          const last = [...load.history].reverse().find((h) => h.client === client && h.op === 'get' && h.return !== null);
          op.value = value;
          op.expected = (last?.output as string | null | undefined) ?? null;
          op.output = await kv.cas(key, op.expected ?? undefined, value, { timeoutMs: 4_000 });
          break;
        }
      }
      op.return = performance.now();
      if (kind !== 'get') load.acknowledgedAt.push(op.return);
    } catch (error) {
      if (!(error instanceof RingraftError)) throw error;
      // No answer: the op may or may not have taken effect. A failed read had no effect at all.
      op.output = null;
      if (kind === 'get') continue;
    }
    load.history.push(op);
  }
}

describe('SIGKILL of the leader process', () => {
  it('loses no acknowledged write, resumes within a few election timeouts, and the history is linearizable', async () => {
    const c = await cluster(3);
    const leader = await c.leader();
    const clients = await Promise.all([0, 1, 2].map(() => connect({ endpoints: c.endpoints(), clusterToken: 'serve-tests', electionTimeoutMs: 200 })));
    const load: Load = { history: [], acknowledgedAt: [], stop: false };
    try {
      const running = clients.map((kv, i) => runClient(kv, i, load));
      await new Promise((r) => setTimeout(r, 1_000));
      const killedAt = performance.now();
      c.signal(leader, 'SIGKILL');
      await c.nodes.get(leader)!.exited;
      await new Promise((r) => setTimeout(r, 1_500));
      // The old leader comes back from its directory while the load goes on.
      await c.start(leader);
      await new Promise((r) => setTimeout(r, 1_000));
      load.stop = true;
      await Promise.all(running);
      const resumedAt = load.acknowledgedAt.find((t) => t > killedAt);
      expect(resumedAt).toBeDefined();
      const gapMs = resumedAt! - killedAt;
      // Election timeouts of 200 to 400 ms here: a few of them, with room for a loaded machine.
      expect(gapMs).toBeLessThan(5_000);
      const before = load.acknowledgedAt.filter((t) => t < killedAt).length;
      const after = load.acknowledgedAt.length - before;
      expect(before).toBeGreaterThan(20);
      expect(after).toBeGreaterThan(20);
      const result = checkLinearizable(load.history);
      expect(result.ok === true ? 'linearizable' : JSON.stringify(result).slice(0, 2_000)).toBe('linearizable');
      // Every key's last acknowledged value is there on every node's read path, after the restart.
      for (const key of KEYS) {
        const values = await Promise.all(clients.map((kv) => kv.get(key)));
        expect(new Set(values.map((v) => (v === undefined ? '' : decoder.decode(v)))).size).toBe(1);
      }
      console.log(`kill of leader ${leader}: first acknowledged write ${gapMs.toFixed(0)} ms after the SIGKILL; ${load.history.length} operations checked`);
    } finally {
      load.stop = true;
      await Promise.all(clients.map((kv) => kv.close()));
    }
  });
});
