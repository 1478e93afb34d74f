// Proves that a cluster's diagnostics reach subscribers on the main thread, though its nodes
// run on worker threads (a diagnostics channel is per thread): a real 3-node cluster's
// election arrives on `ringraft:raft` as the core's `role` event of its leader, its nodes'
// comings and goings arrive on `ringraft:node` (started, down when crashed, restarted), and
// what a node's WAL recovery repaired arrives on `ringraft:wal:recovery`.
import diagnostics_channel from 'node:diagnostics_channel';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TraceEvent } from '../../src/core/index.ts';
import { NODE_CHANNEL, RAFT_CHANNEL, type NodeEvent } from '../../src/runtime/index.ts';
import { walRecoveryChannel } from '../../src/storage/index.ts';
import { afterTest, leaderOf, start, stopAfterEach, tempDir } from './helpers.ts';

stopAfterEach();

/** Subscribes to channel `name` until the test ends; returns what it receives. */
function subscribe<T>(name: string): T[] {
  const received: T[] = [];
  const listen = (message: unknown): void => void received.push(message as T);
  diagnostics_channel.subscribe(name, listen);
  afterTest(() => void diagnostics_channel.unsubscribe(name, listen));
  return received;
}

/** Resolves with the first of `received` that `match` accepts, waiting up to `timeoutMs`. */
async function arrival<T>(received: readonly T[], match: (x: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = received.find(match);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`not arrived in ${timeoutMs} ms; received: ${JSON.stringify(received)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('diagnostics channels on the main thread', () => {
  it('the leader election arrives on ringraft:raft, and a crashed node on ringraft:node', async () => {
    const raft = subscribe<TraceEvent>(RAFT_CHANNEL);
    const nodes = subscribe<NodeEvent>(NODE_CHANNEL);
    const cluster = await start({ nodes: 3 });
    const leader = await leaderOf(cluster);
    const won = await arrival(raft, (e) => e.kind === 'role' && e.role === 'leader');
    expect(won).toMatchObject({ kind: 'role', role: 'leader', reason: 'won' });
    expect(won.node).toBe(won.kind === 'role' ? won.leader : -1);
    expect(nodes.filter((e) => e.kind === 'started').map((e) => e.node).sort()).toEqual([1, 2, 3]);
    const victim = leader === 1 ? 2 : 1;
    await cluster.crash(victim);
    // Crashed by request: down, with no error code.
    expect(await arrival(nodes, (e) => e.kind === 'down')).toEqual({ kind: 'down', node: victim });
  });

  it('a restart arrives on ringraft:node, and what a node WAL recovery repaired on ringraft:wal:recovery', async () => {
    const dir = tempDir();
    // A leftover temporary file in node 1's directory: opening its WAL deletes it, in its thread.
    mkdirSync(join(dir, 'node-1'), { recursive: true });
    writeFileSync(join(dir, 'node-1', 'leftover.tmp'), 'x');
    const recoveries = subscribe<{ dir: string; deletedFiles: readonly string[] }>(walRecoveryChannel.name as string);
    const nodes = subscribe<NodeEvent>(NODE_CHANNEL);
    const cluster = await start({ nodes: 3, dataDir: dir });
    expect(await arrival(recoveries, (r) => r.deletedFiles.includes('leftover.tmp'))).toMatchObject({ dir: join(dir, 'node-1') });
    await cluster.crash(2);
    await cluster.restart(2);
    const events = nodes.filter((e) => e.node === 2);
    expect(events).toEqual([
      { kind: 'started', node: 2 },
      { kind: 'down', node: 2 },
      { kind: 'restarted', node: 2, automatic: false },
    ]);
  });
});
