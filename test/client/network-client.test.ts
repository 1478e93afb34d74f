// The network client against node servers in this process (each node's thread a worker):
// the KvClient API over TCP, leader hints, fail-over, typed refusals, and a clean close.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, RingraftError } from '../../src/base/index.ts';
import { connect, type NetworkClient } from '../../src/client/index.ts';
import type { NodeServer } from '../../src/server/index.ts';
import { configOf, freePort, HOST, portsFor, servers, tempDirs, waitFor } from '../server/helpers.ts';

const dirs = tempDirs();
const start = servers();
const clients: NetworkClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

async function cluster(n: number): Promise<{ nodes: NodeServer[]; endpoints: string[] }> {
  const ports = await portsFor(n);
  const nodes = await Promise.all(Array.from({ length: n }, (_, i) => start(configOf(i + 1, dirs(), ports))));
  return { nodes, endpoints: ports.client.map((p) => `${HOST}:${p}`) };
}

async function client(endpoints: string[], extra: object = {}): Promise<NetworkClient> {
  const c = await connect({ endpoints, clusterToken: 'serve-tests', electionTimeoutMs: 200, ...extra });
  clients.push(c);
  return c;
}

async function allUp(c: NetworkClient): Promise<void> {
  await waitFor(() => (c.endpoints().every((e) => e.up) ? true : undefined), 'every endpoint up');
}

async function leaderOf(nodes: NodeServer[]): Promise<number> {
  return waitFor(async () => {
    const ss = await Promise.all(nodes.map((n) => n.status()));
    return ss.find((s) => s.role === 'leader')?.id;
  }, 'a leader');
}

async function caught(p: Promise<unknown>): Promise<RingraftError> {
  try {
    await p;
  } catch (error) {
    if (error instanceof RingraftError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b));

describe('connect', () => {
  it('puts, gets at every consistency, deletes, cas and watches, each node learned from its endpoint', async () => {
    const { nodes, endpoints } = await cluster(3);
    const leader = await leaderOf(nodes);
    const follower = [1, 2, 3].find((id) => id !== leader)!;
    const kv = await client(endpoints);
    await allUp(kv);
    expect(kv.endpoints().map((e) => e.nodeId).sort()).toEqual([1, 2, 3]);
    await kv.put('a', '1');
    expect(text(await kv.get('a'))).toBe('1');
    expect(text(await kv.get('a', { consistency: 'lease' }))).toBe('1');
    // Pinned to a follower: a stale read is served there.
    await waitFor(async () => ((await nodes[follower - 1]!.status()).appliedIndex >= (await nodes[leader - 1]!.status()).commitIndex ? true : undefined), 'the follower caught up');
    expect(text(await kv.get('a', { consistency: 'stale', nodeId: follower }))).toBe('1');
    expect(await kv.cas('a', '1', '2')).toBe(true);
    expect(await kv.cas('a', '1', '3')).toBe(false);
    expect(await kv.cas('new', undefined, 'x')).toBe(true);
    const watch = kv.watch('w/');
    const seen: string[] = [];
    const reading = (async () => {
      for await (const e of watch) {
        seen.push(`${text(e.key)}=${text(e.value)}`);
        if (seen.length === 2) break;
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    await kv.put('w/1', 'x');
    await kv.put('w/2', 'y');
    await reading;
    expect(seen).toEqual(['w/1=x', 'w/2=y']);
    expect(await kv.delete('a')).toBe(true);
    expect(await kv.delete('a')).toBe(false);
    expect(await kv.get('a')).toBeUndefined();
  });

  it('a client of one follower only is served: the follower forwards writes, reads and range reads to its leader', async () => {
    const { nodes, endpoints } = await cluster(3);
    const leader = await leaderOf(nodes);
    const follower = [1, 2, 3].find((id) => id !== leader)!;
    const kv = await client([endpoints[follower - 1]!]);
    await kv.put('p', '1');
    expect(await kv.cas('p', '1', '2')).toBe(true);
    expect(text(await kv.get('p'))).toBe('2');
    expect(text(await kv.get('p', { consistency: 'lease' }))).toBe('2');
    // A range read too: forwarded, in byte order, with its revisions.
    const r = await kv.range({ prefix: 'p' });
    expect(r.entries.map((e) => [text(e.key), text(e.value), e.version])).toEqual([['p', '2', 2]]);
    // And a transaction, with its reads and the index it applied at.
    const t = await kv.txn({ if: [{ key: 'p', target: 'version', op: '=', value: 2 }], then: [{ op: 'put', key: 'p', value: '3' }, { op: 'range', prefix: 'p' }], else: [] });
    expect(t.succeeded).toBe(true);
    const read = t.results[1];
    expect(read?.op === 'range' && read.result.entries.map((e) => [text(e.key), text(e.value), e.modIndex === t.index])).toEqual([['p', '3', true]]);
    // And leases: a grant, a put with it, a keep-alive and a time-to-live, all at the leader.
    const { id } = await kv.grantLease(30_000);
    await kv.put('leased', 'v', { lease: id });
    expect(await kv.keepAlive(id)).toMatchObject({ id, ttlMs: 30_000, remainingMs: 30_000 });
    expect(await kv.leaseTimeToLive(id)).toMatchObject({ id, keys: 1 });
    expect(await kv.revokeLease(id)).toBe(1);
    expect(nodes[follower - 1]!.stats().requestsForwarded).toBeGreaterThanOrEqual(11);
    // Pinned to the follower, a write is served there by forwarding, not refused.
    await kv.put('q', '1', { nodeId: follower });
    expect(text(await kv.get('q'))).toBe('1');
  });

  it('a follower that forwards names its leader, and the client sends the next requests there itself', async () => {
    const { nodes, endpoints } = await cluster(3);
    const old = await leaderOf(nodes);
    const kv = await client(endpoints);
    await allUp(kv);
    await kv.put('first', '0');
    // Leadership moves: the client still believes in the old leader, now a follower that forwards.
    const next = [1, 2, 3].find((id) => id !== old)!;
    await nodes[old - 1]!.transferLeadership(next);
    await waitFor(async () => ((await nodes[old - 1]!.status()).leaderId === next ? true : undefined), 'the old leader follows the new one');
    const before = nodes[old - 1]!.stats().requestsForwarded;
    for (let i = 0; i < 20; i++) await kv.put(`next${i}`, String(i));
    // The first write went through the old leader, which named the new one; the rest went there directly.
    expect(nodes[old - 1]!.stats().requestsForwarded - before).toBe(1);
    expect(text(await kv.get('next19'))).toBe('19');
  });

  it('fails over when the leader stops: writes in flight then and after succeed at the next leader, each once', async () => {
    const { nodes, endpoints } = await cluster(3);
    const leader = await leaderOf(nodes);
    const kv = await client(endpoints);
    await allUp(kv);
    await kv.put('n', '0');
    const writes = Array.from({ length: 50 }, (_, i) => kv.put(`k${i}`, `v${i}`));
    await nodes[leader - 1]!.shutdown();
    await Promise.all(writes);
    for (let i = 0; i < 50; i++) expect(text(await kv.get(`k${i}`))).toBe(`v${i}`);
    // A cas chain succeeds step by step: no step applied twice, none lost.
    for (let i = 0; i < 5; i++) expect(await kv.cas('n', String(i), String(i + 1))).toBe(true);
    expect(text(await kv.get('n'))).toBe('5');
  });

  it('one write at a time is not held up by a sleeping pump: each hop is handed on at once', async () => {
    const { nodes, endpoints } = await cluster(3);
    await leaderOf(nodes);
    const kv = await client(endpoints);
    await allUp(kv);
    await kv.put('warm', '0');
    const times: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t0 = performance.now();
      await kv.put('seq', String(i));
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    // A message from a peer once waited for the pump's 50 ms idle timer at each hop: 100 ms a write.
    expect(times[15]!).toBeLessThan(40);
  });

  it('refuses bad options with INVALID_ARGUMENT naming them', async () => {
    const bad: [object, RegExp][] = [
      [{ endpoints: [], clusterToken: 't' }, /endpoints must be a non-empty array/],
      [{ endpoints: ['localhost:7000'], clusterToken: 't' }, /endpoints\[0\] "localhost:7000": localhost is not an IP address/],
      [{ endpoints: ['127.0.0.1:0'], clusterToken: 't' }, /port 0 is not in/],
      [{ endpoints: ['::1:7000'], clusterToken: 't' }, /not HOST:PORT/],
      [{ endpoints: ['127.0.0.1:7000', '127.0.0.1:7000'], clusterToken: 't' }, /lists 127.0.0.1:7000 twice/],
      [{ endpoints: ['127.0.0.1:7000'], clusterToken: '' }, /clusterToken must be a non-empty string/],
      [{ endpoints: ['127.0.0.1:7000'], clusterToken: 't', client: { requestTimeoutMs: 0 } }, /client\.requestTimeoutMs/],
      [{ endpoints: ['127.0.0.1:7000'], clusterToken: 't', colour: 1 }, /colour/],
    ];
    for (const [options, message] of bad) {
      const error = await caught(connect(options as never));
      expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
      expect(error.message).toMatch(message);
    }
  });

  it('rejects with CONNECTION_FAILED when no endpoint is reachable, HANDSHAKE_REFUSED for another cluster, each endpoint named', async () => {
    const closed = await freePort();
    const none = await caught(connect({ endpoints: [`${HOST}:${closed}`], clusterToken: 'serve-tests' }));
    expect(none.code).toBe(ErrorCode.CONNECTION_FAILED);
    expect(none.message).toContain(`${HOST}:${closed}`);
    const { endpoints } = await cluster(1);
    const other = await caught(connect({ endpoints, clusterToken: 'another-cluster' }));
    expect(other.code).toBe(ErrorCode.HANDSHAKE_REFUSED);
    expect(other.message).toContain(endpoints[0]!);
  });

  it('a call with no leader to answer it fails with TIMEOUT at its timeoutMs, one aborted with ABORTED', async () => {
    const ports = await portsFor(2);
    // Only node 1 of 2 runs: no quorum, no leader.
    await start(configOf(1, dirs(), ports));
    const kv = await client([`${HOST}:${ports.client[0]}`]);
    const started = performance.now();
    const timeout = await caught(kv.put('a', '1', { timeoutMs: 400 }));
    expect(timeout.code).toBe(ErrorCode.TIMEOUT);
    expect(performance.now() - started).toBeGreaterThanOrEqual(399);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    expect((await caught(kv.get('a', { signal: ac.signal, timeoutMs: 5_000 }))).code).toBe(ErrorCode.ABORTED);
  });

  it('a watch whose node stops resumes at another node, missing nothing', async () => {
    const { nodes, endpoints } = await cluster(3);
    await leaderOf(nodes);
    const kv = await client(endpoints);
    await allUp(kv);
    const seen: string[] = [];
    const watch = kv.watch('m/');
    const reading = (async () => {
      for await (const e of watch) {
        seen.push(text(e.key)!);
        if (seen.length === 6) break;
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 3; i++) await kv.put(`m/${i}`, 'x');
    // Whichever node the watch is on, node 1 stops: a watch there moves, one elsewhere goes on.
    await nodes[0]!.shutdown();
    for (let i = 3; i < 6; i++) await kv.put(`m/${i}`, 'x');
    await reading;
    expect(seen).toEqual(['m/0', 'm/1', 'm/2', 'm/3', 'm/4', 'm/5']);
  });

  it('after close() nothing of the client keeps a process alive', async () => {
    const { endpoints } = await cluster(1);
    const entry = resolve(import.meta.dirname, '../../dist/src/client/index.js');
    const code = `import { connect } from ${JSON.stringify(entry)};
      const kv = await connect({ endpoints: ${JSON.stringify(endpoints)}, clusterToken: 'serve-tests' });
      await kv.put('alive', 'no');
      await kv.close();`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = await new Promise<number | null>((res) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        res(null);
      }, 8_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        res(c);
      });
    });
    expect(stderr).toBe('');
    expect(exited).toBe(0);
  });
});
