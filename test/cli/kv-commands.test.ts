// The network commands of the CLI against a 5-node cluster of `ringraft serve` processes:
// what they print (table and JSON), and the exit codes scripts rely on (0 done, 1 refused or
// failed, 2 a bad command line).
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, HOST } from '../server/helpers.ts';
import { processClusters } from '../server/processes.ts';

const BIN = resolve(import.meta.dirname, '../../bin/ringraft.js');
const cluster = processClusters();

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function ringraft(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, RINGRAFT_ENDPOINTS: '', RINGRAFT_CLUSTER_TOKEN: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

describe('ringraft put/get/del/cas/watch/status/move-leader', () => {
  it('drive a 5-node cluster of processes, with the exit codes scripts rely on', async () => {
    const c = await cluster(5);
    const leader = await c.leader();
    const env = { RINGRAFT_ENDPOINTS: c.endpoints().join(','), RINGRAFT_CLUSTER_TOKEN: 'serve-tests' };
    expect(await ringraft(['put', 'greeting', 'hello'], env)).toMatchObject({ code: 0, stdout: 'OK\n' });
    expect(await ringraft(['get', 'greeting'], env)).toMatchObject({ code: 0, stdout: 'hello\n' });
    expect(await ringraft(['get', 'greeting', '--consistency', 'lease', '-w', 'json'], env)).toMatchObject({ code: 0, stdout: '{"op":"get","key":"greeting","found":true,"value":"hello"}\n' });
    expect(await ringraft(['get', 'absent', '-w', 'json'], env)).toMatchObject({ code: 0, stdout: '{"op":"get","key":"absent","found":false}\n' });
    expect(await ringraft(['cas', 'greeting', 'hello', 'bye'], env)).toMatchObject({ code: 0, stdout: 'OK\n' });
    const notSwapped = await ringraft(['cas', 'greeting', 'hello', 'again'], env);
    expect(notSwapped).toMatchObject({ code: 1, stdout: 'NOT SWAPPED\n' });
    expect(notSwapped.stderr).toMatch(/greeting did not hold "hello"/);
    expect(await ringraft(['cas', '--absent', 'fresh', 'one'], env)).toMatchObject({ code: 0, stdout: 'OK\n' });
    expect(await ringraft(['del', 'greeting'], env)).toMatchObject({ code: 0, stdout: '1\n' });
    expect(await ringraft(['del', 'greeting'], env)).toMatchObject({ code: 0, stdout: '0\n' });

    // Ranges: by prefix, by bounds, limited (a count line when more are left), JSON with revisions.
    for (const k of ['r/b', 'r/a', 'r/c', 's']) await ringraft(['put', k, `v-${k}`], env);
    expect(await ringraft(['get', 'r/', '--prefix'], env)).toMatchObject({ code: 0, stdout: 'r/a v-r/a\nr/b v-r/b\nr/c v-r/c\n' });
    expect(await ringraft(['get', 'r/b', 's', '--keys-only'], env)).toMatchObject({ code: 0, stdout: 'r/b\nr/c\n' });
    expect(await ringraft(['get', 'r/', '--prefix', '--reverse', '--limit', '1'], env)).toMatchObject({ code: 0, stdout: 'r/c v-r/c\n(1 of 3; more)\n' });
    expect(await ringraft(['get', 'r/', '--prefix', '--count-only'], env)).toMatchObject({ code: 0, stdout: '3\n' });
    const page = await ringraft(['get', 'r/', '--prefix', '--limit', '2', '-w', 'json'], env);
    const json = JSON.parse(page.stdout) as { op: string; count: number; more: boolean; entries: { key: string; value: string; version: number; createIndex: number }[] };
    expect(json).toMatchObject({ op: 'range', count: 3, more: true, entries: [{ key: 'r/a', value: 'v-r/a', version: 1 }, { key: 'r/b', value: 'v-r/b', version: 1 }] });
    expect(json.entries[0]!.createIndex).toBeGreaterThan(0);
    expect((await ringraft(['get', 'r/', 's', '--prefix'], env)).code).toBe(2);
    expect(await ringraft(['del', 'r/b', 'r/z'], env)).toMatchObject({ code: 0, stdout: '2\n' });
    expect(await ringraft(['del', 'r/', '--prefix', '-w', 'json'], env)).toMatchObject({ code: 0, stdout: '{"op":"del","prefix":"r/","deleted":1}\n' });
    expect(await ringraft(['get', 'r/', '--prefix', '--count-only'], env)).toMatchObject({ code: 0, stdout: '0\n' });
    expect((await ringraft(['get', 'r/', '--prefix', '--limit', '0'], env)).code).toBe(2);

    // Transactions, from an argument; a malformed one is a bad command line, a bad field refused.
    const txn = JSON.stringify({ if: [{ key: 't', target: 'version', op: '=', value: 0 }], then: [{ op: 'put', key: 't', value: '1' }, { op: 'get', key: 't' }], else: [{ op: 'get', key: 't' }] });
    expect(await ringraft(['txn', txn], env)).toMatchObject({ code: 0, stdout: 'SUCCEEDED\nput OK\nget 1\n' });
    expect(await ringraft(['txn', txn], env)).toMatchObject({ code: 0, stdout: 'FAILED\nget 1\n' });
    expect((await ringraft(['txn', '{not json'], env)).code).toBe(2);
    const badTxn = await ringraft(['txn', JSON.stringify({ then: [{ op: 'upsert', key: 't' }] })], env);
    expect(badTxn.code).toBe(1);
    expect(badTxn.stderr).toMatch(/INVALID_ARGUMENT.*txn then\[0\]\.op must be/);

    // Leases: grant, a key under it, its time to live, a keep-alive, revoke (the key goes).
    const granted = await ringraft(['lease', 'grant', '60000'], env);
    expect(granted.code).toBe(0);
    const lease = granted.stdout.trim();
    expect(await ringraft(['put', 'leased', 'v', '--lease', lease], env)).toMatchObject({ code: 0, stdout: 'OK\n' });
    expect((await ringraft(['lease', 'ttl', lease], env)).stdout).toMatch(new RegExp(`^lease ${lease}: ttl 60000 ms, \\d+ ms left, 1 keys\n$`));
    expect(await ringraft(['lease', 'keep-alive', lease, '--count', '1', '-w', 'json'], env)).toMatchObject({ code: 0, stdout: `{"op":"lease-keep-alive","id":${lease},"ttlMs":60000,"remainingMs":60000,"keys":1}\n` });
    expect(await ringraft(['lease', 'revoke', lease], env)).toMatchObject({ code: 0, stdout: '1\n' });
    expect(await ringraft(['get', 'leased', '-w', 'json'], env)).toMatchObject({ code: 0, stdout: '{"op":"get","key":"leased","found":false}\n' });
    const gone = await ringraft(['lease', 'revoke', lease], env);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/LEASE_NOT_FOUND/);
    expect((await ringraft(['lease', 'renew', lease], env)).code).toBe(2);

    const watching = ringraft(['watch', 'w/', '--count', '2', '-w', 'json'], env);
    await new Promise((r) => setTimeout(r, 1_000));
    await ringraft(['put', 'w/a', '1'], env);
    await ringraft(['del', 'w/a'], env);
    const watched = await watching;
    expect(watched.code).toBe(0);
    expect(watched.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)).toMatchObject([
      { op: 'watch', type: 'put', key: 'w/a', value: '1' },
      { op: 'watch', type: 'delete', key: 'w/a' },
    ]);

    const status = await ringraft(['status', '-w', 'json'], env);
    expect(status.code).toBe(0);
    const rows = status.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: number; role: string; leaderId: number });
    expect(rows.map((r) => r.id).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(rows.filter((r) => r.role === 'leader').map((r) => r.id)).toEqual([leader]);
    const table = await ringraft(['status'], env);
    expect(table.stdout.split('\n')[0]).toMatch(/^endpoint +id +role +term +commit +applied +leader$/);

    const target = leader === 5 ? 4 : 5;
    expect(await ringraft(['move-leader', String(target)], env)).toMatchObject({ code: 0, stdout: `node ${target} leads now\n` });
    expect(await c.leader()).toBe(target);
  });

  it('refuse a bad command line with 2 and an unreachable or foreign cluster with 1, one line each', async () => {
    const closed = await freePort();
    const usage = await ringraft(['put', 'only-a-key'], { RINGRAFT_ENDPOINTS: `${HOST}:${closed}`, RINGRAFT_CLUSTER_TOKEN: 't' });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/put takes 2 arguments, got 1/);
    expect((await ringraft(['get', 'k'], { RINGRAFT_CLUSTER_TOKEN: 't' })).stderr).toMatch(/no endpoints: give --endpoints/);
    expect((await ringraft(['get', 'k', '--endpoints', `${HOST}:${closed}`])).stderr).toMatch(/no cluster token/);
    const named = await ringraft(['get', 'k', '--endpoints', 'localhost:7000', '--cluster-token', 't']);
    expect(named.code).toBe(2);
    expect(named.stderr).toMatch(/localhost is not an IP address/);
    const unreachable = await ringraft(['get', 'k', '--endpoints', `${HOST}:${closed}`, '--cluster-token', 't']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^ringraft: CONNECTION_FAILED: /);
    expect(unreachable.stderr.trim().split('\n')).toHaveLength(1);
    const c = await cluster(1);
    await c.leader();
    const foreign = await ringraft(['put', 'k', 'v', '--endpoints', c.endpoints()[0]!, '--cluster-token', 'another']);
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toMatch(/^ringraft: HANDSHAKE_REFUSED: /);
    expect((await ringraft(['get', 'k', '--endpoints', c.endpoints()[0]!, '--cluster-token', 'serve-tests', '-w', 'yaml'])).code).toBe(2);
  });
});
