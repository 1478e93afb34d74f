// Membership changes of a cluster of processes, with the CLI, under load: a node started with
// --join is added (learner, caught up, voter), another removed and stopped; every write the
// clients were told succeeded is there after.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RingraftError } from '../../src/base/index.ts';
import { connect } from '../../src/client/index.ts';
import { HOST, waitFor } from './helpers.ts';
import { processClusters } from './processes.ts';

const BIN = resolve(import.meta.dirname, '../../bin/ringraft.js');
const cluster = processClusters();

function cli(args: readonly string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => done({ code, stdout, stderr }));
  });
}

describe('ringraft member add and remove', () => {
  it('adds a node started with --join and removes another, under load, losing no acknowledged write', async () => {
    const c = await cluster(4, [], {}, { members: 3 });
    await c.leader([1, 2, 3]);
    const env = { RINGRAFT_ENDPOINTS: c.endpoints().slice(0, 3).join(','), RINGRAFT_CLUSTER_TOKEN: 'serve-tests' };
    const kv = await connect({ endpoints: c.endpoints().slice(0, 3), clusterToken: 'serve-tests', electionTimeoutMs: 200 });
    const acked = new Map<string, string>();
    let failures = 0;
    let writes = 0;
    let stop = false;
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        const key = `k${i % 50}`;
        try {
          await kv.put(key, `v${i}`, { timeoutMs: 10_000 });
          acked.set(key, `v${i}`);
          writes++;
        } catch (error) {
          if (!(error instanceof RingraftError)) throw error;
          failures++;
        }
      }
    })();
    try {
      await c.start(4, ['--join']);
      const added = await cli(['member', 'add', '4', `${HOST}:${c.ports.peer[3]}`], env);
      expect(added.stderr).toBe('');
      expect(added).toMatchObject({ code: 0, stdout: 'node 4 added; voters 1, 2, 3, 4\n' });
      await waitFor(async () => ((await c.status(4)).voters.length === 4 && (await c.status(4)).leaderId !== 0 ? true : undefined), 'node 4 knows it is a voter');
      const list = await cli(['member', 'list', '-w', 'json'], env);
      expect(list.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: number; role: string })).toEqual([
        { id: 1, peerAddress: `${HOST}:${c.ports.peer[0]}`, role: 'voter' },
        { id: 2, peerAddress: `${HOST}:${c.ports.peer[1]}`, role: 'voter' },
        { id: 3, peerAddress: `${HOST}:${c.ports.peer[2]}`, role: 'voter' },
        { id: 4, peerAddress: `${HOST}:${c.ports.peer[3]}`, role: 'voter' },
      ]);
      const removed = await cli(['member', 'remove', '2'], env);
      expect(removed.stderr).toBe('');
      expect(removed).toMatchObject({ code: 0, stdout: 'node 2 removed; voters 1, 3, 4\n' });
      c.signal(2, 'SIGTERM');
      expect(await c.nodes.get(2)!.exited).toBe(0);
      const before = writes;
      await waitFor(() => (writes > before + 20 ? true : undefined), 'writes after the removal');
    } finally {
      stop = true;
      await load;
    }
    expect(failures).toBe(0);
    // Every acknowledged write is there, read from the remaining members.
    const after = await connect({ endpoints: [c.endpoints()[0]!, c.endpoints()[2]!, c.endpoints()[3]!], clusterToken: 'serve-tests' });
    try {
      for (const [key, value] of acked) expect(new TextDecoder().decode(await after.get(key))).toBe(value);
      expect((await c.status(4)).voters).toEqual([1, 3, 4]);
    } finally {
      await after.close();
      await kv.close();
    }
  });
});

describe('ringraft member remove without a live quorum left', () => {
  it('is refused with NO_QUORUM and exit 1, naming the voters; the configuration is unchanged', async () => {
    const c = await cluster(3);
    const leader = await c.leader();
    const [down, victim] = [1, 2, 3].filter((id) => id !== leader) as [number, number];
    c.signal(down, 'SIGTERM');
    expect(await c.nodes.get(down)!.exited).toBe(0);
    const env = { RINGRAFT_ENDPOINTS: c.endpoints().join(','), RINGRAFT_CLUSTER_TOKEN: 'serve-tests' };
    // Once the leader has seen the stopped node's connection end, removing the other follower
    // would leave the leader and the stopped node: one of the two a quorum needs.
    await waitFor(async () => {
      const r = await cli(['member', 'remove', String(victim)], env);
      return r.code === 1 && /NO_QUORUM/.test(r.stderr) ? r : undefined;
    }, 'the removal refused', 10_000);
    expect((await c.status(leader)).voters).toEqual([1, 2, 3]);
  });
});
