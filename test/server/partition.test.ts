// Faults between real `ringraft serve` processes: the leader cut off from its peers by fault
// proxies (its sockets open, its bytes vanishing), and the leader process paused past the
// election timeout. In neither case may the old leader commit anything or serve a
// linearizable or lease read once the others have moved on.
import { describe, expect, it } from 'vitest';
import { RingraftError } from '../../src/base/index.ts';
import { connect, type NetworkClient } from '../../src/client/index.ts';
import { waitFor } from './helpers.ts';
import { processClusters, type ProcessCluster } from './processes.ts';

const cluster = processClusters();
const decoder = new TextDecoder();

async function clientOf(c: ProcessCluster, ids: readonly number[]): Promise<NetworkClient> {
  return connect({ endpoints: ids.map((id) => c.endpoints()[id - 1]!), clusterToken: 'serve-tests', electionTimeoutMs: 200 });
}

/** The leader `ids` agree on once it is not `old`. */
async function newLeader(c: ProcessCluster, ids: readonly number[], old: number): Promise<number> {
  return waitFor(async () => {
    const l = await c.leader(ids, 10_000);
    return l !== old ? l : undefined;
  }, 'a new leader', 10_000);
}

/** The outcome of a call: its value as text, or its error code. */
async function outcome(p: Promise<Uint8Array | undefined | void>): Promise<string> {
  try {
    const v = await p;
    return v === undefined ? 'ok' : `value ${decoder.decode(v)}`;
  } catch (error) {
    if (error instanceof RingraftError) return error.code;
    throw error;
  }
}

describe('a leader cut off from its peers', () => {
  it('commits nothing and serves no linearizable or lease read while the majority moves on; it rejoins after the heal', async () => {
    const c = await cluster(3, [], {}, { proxied: true });
    const old = await c.leader();
    const kv = await clientOf(c, [1, 2, 3]);
    try {
      await kv.put('x', 'before');
      c.isolate(old);
      const others = [1, 2, 3].filter((id) => id !== old);
      const next = await newLeader(c, others, old);
      await kv.put('x', 'after', { timeoutMs: 5_000 });
      // At the old leader: a write may not commit; reads may not answer 'before' (stale) or at all.
      const atOld = { nodeId: old, timeoutMs: 1_500 };
      const write = await outcome(kv.put('y', 'lost', atOld));
      expect(['NOT_LEADER', 'TIMEOUT']).toContain(write);
      for (const consistency of ['linearizable', 'lease'] as const) {
        const read = await outcome(kv.get('x', { ...atOld, consistency }));
        expect(read).not.toBe('value before');
        expect(['NOT_LEADER', 'TIMEOUT', 'value after']).toContain(read);
      }
      c.heal();
      await waitFor(async () => ((await c.status(old)).leaderId === next ? true : undefined), 'the old leader following the new one');
      // The write refused at the old leader never reached any log.
      expect(await kv.get('y')).toBeUndefined();
      expect(decoder.decode(await kv.get('x'))).toBe('after');
    } finally {
      await kv.close();
    }
  });
});

describe('a leader process paused past the election timeout', () => {
  it('serves no stale lease read when it resumes', async () => {
    const c = await cluster(3);
    const old = await c.leader();
    const kv = await clientOf(c, [1, 2, 3]);
    try {
      await kv.put('x', 'before');
      // Keep its client connection busy up to the pause, so a read is queued the moment it resumes.
      c.signal(old, 'SIGSTOP');
      const others = [1, 2, 3].filter((id) => id !== old);
      const next = await newLeader(c, others, old);
      await kv.put('x', 'after', { timeoutMs: 5_000 });
      // Reads sent to the paused leader wait in its socket and are read first thing on SIGCONT.
      const reads = Array.from({ length: 20 }, () => outcome(kv.get('x', { nodeId: old, consistency: 'lease', timeoutMs: 3_000 })));
      await new Promise((r) => setTimeout(r, 100));
      c.signal(old, 'SIGCONT');
      const results = await Promise.all(reads);
      expect(results.filter((r) => r === 'value before')).toEqual([]);
      for (const r of results) expect(['NOT_LEADER', 'TIMEOUT', 'NODE_DOWN', 'value after']).toContain(r);
      expect(next).not.toBe(old);
    } finally {
      c.signal(old, 'SIGCONT');
      await kv.close();
    }
  });
});

