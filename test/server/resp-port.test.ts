// The RESP port of `ringraft serve` (src/server/resp-port.ts), on three real processes with
// durable writes: redis-cli gives the same output against a follower's port as against
// redis-server; redis-benchmark runs without error, and through a SIGKILL of the leader its
// errors stop once the cluster has recovered; ioredis and node-redis connect, pipeline and run
// MULTI through a leader change; a history of concurrent RESP clients through a leader crash
// is linearizable; and bad input (a bulk over the bound, binary junk, a request cut short, a
// client that never reads) gets an error and a closed connection, the node unharmed.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as connectSocket, type Socket } from 'node:net';
import { createClient } from '@redis/client';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { checkLinearizable, type HistoryOp } from '../../src/sim/index.ts';
import { freePort, HOST, redisServer, waitFor } from './helpers.ts';
import { processClusters, type ProcessCluster } from './processes.ts';

const cluster = processClusters();

async function respCluster(): Promise<{ c: ProcessCluster; resp: number[] }> {
  const resp = [await freePort(), await freePort(), await freePort()];
  const c = await cluster(3, [], {}, { argsOf: (id) => ['--listen-resp', `${HOST}:${resp[id - 1]}`] });
  return { c, resp };
}

/** A node that does not lead, once there is a leader. */
async function follower(c: ProcessCluster): Promise<{ leader: number; follower: number }> {
  const leader = await c.leader();
  return { leader, follower: leader === 1 ? 2 : 1 };
}

const redis = redisServer();

const SCRIPT = [
  'SET a 1',
  'GET a',
  'INCR a',
  'INCRBY a 10',
  'DECR a',
  'APPEND a xyz',
  'STRLEN a',
  'INCR a',
  'SET b hello NX',
  'SET b bye NX',
  'SET b bye XX GET',
  'GETDEL b',
  'EXISTS a b',
  'MSET k1 v1 k2 v2 k3 v3',
  'MGET k1 k2 nokey',
  'MULTI',
  'INCR counter',
  'INCR counter',
  'GET counter',
  'EXEC',
  'DEL k1 k2 nokey',
  'SCAN 0 MATCH k* COUNT 1000',
  'KEYS k*',
  'DBSIZE',
  'NOSUCHCOMMAND x',
  'GET',
  'PING',
  'ECHO "two words"',
].join('\n');

function redisCli(port: number, script: string): string {
  const r = spawnSync('redis-cli', ['-h', HOST, '-p', String(port)], { input: `${script}\n`, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`redis-cli exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function benchmark(port: number, args: readonly string[]): { status: number | null; out: string; errors: number } {
  const r = spawnSync('redis-benchmark', ['-h', HOST, '-p', String(port), '-q', ...args], { encoding: 'utf8', timeout: 120_000 });
  const out = `${r.stdout}${r.stderr}`;
  return { status: r.status, out, errors: out.split('\n').filter((l) => /Error from server|ERR|CLUSTERDOWN/.test(l)).length };
}

describe('the RESP port', () => {
  it('with --resp-moved, sends what needs the leader there with -MOVED, which redis-cli -c follows; a stale read stays', async () => {
    const resp = [await freePort(), await freePort(), await freePort()];
    const moved = resp.map((p, i) => `${i + 1}=${HOST}:${p}`).join(',');
    const c = await cluster(3, ['--resp-moved', moved], {}, { argsOf: (id) => ['--listen-resp', `${HOST}:${resp[id - 1]}`] });
    const { leader, follower: f } = await follower(c);
    const port = resp[f - 1]!;
    await waitFor(() => (redisCli(port, 'SET a 1').trim() === `MOVED 0 ${HOST}:${resp[leader - 1]}` ? true : undefined), 'a MOVED to the leader');
    expect(redisCli(port, 'MULTI\nINCR a\nEXEC').trim().split('\n')).toEqual(['OK', 'QUEUED', `MOVED 0 ${HOST}:${resp[leader - 1]}`]);
    const r = spawnSync('redis-cli', ['-c', '-h', HOST, '-p', String(port), 'SET', 'b', '2'], { encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('OK');
    expect(redisCli(resp[leader - 1]!, 'GET b').trim()).toBe('2');
    await waitFor(() => (redisCli(port, 'RINGRAFT READ stale\nGET b').trim() === 'OK\n2' ? true : undefined), 'a stale read on the follower');
  }, 60_000);

  it('answers redis-cli as redis-server does, on a follower', async () => {
    const { c, resp } = await respCluster();
    const { follower: f } = await follower(c);
    spawnSync('redis-cli', ['-h', HOST, '-p', String(redis.port()), 'flushall']);
    const theirs = redisCli(redis.port(), SCRIPT);
    const ours = redisCli(resp[f - 1]!, SCRIPT);
    expect(ours).toBe(theirs);
    // Every node has it, through its own port, read linearizably.
    for (const port of resp) expect(redisCli(port, 'GET counter\nGET a').trim().split('\n')).toEqual(['2', '11xyz']);
  }, 60_000);

  it('runs redis-benchmark without error, and through a SIGKILL of the leader its errors stop once the cluster recovers', async () => {
    const { c, resp } = await respCluster();
    const { leader, follower: f } = await follower(c);
    const port = resp[f - 1]!;
    for (const pipeline of [[], ['-P', '16']]) {
      const r = benchmark(port, ['-t', 'set,get,incr,mset', '-n', '3000', '-c', '20', ...pipeline]);
      expect(r.status, r.out).toBe(0);
      expect(r.errors, r.out).toBe(0);
      for (const test of ['SET', 'GET', 'INCR', 'MSET']) expect(r.out).toMatch(new RegExp(`${test}[^:\\n]*: [0-9.]+ requests per second`));
    }
    // Through the kill: a longer run on the follower's port, the leader killed and restarted meanwhile.
    const during = new Promise<{ status: number | null; out: string; errors: number }>((resolve) => {
      const child = spawn('redis-benchmark', ['-h', HOST, '-p', String(port), '-q', '-t', 'set', '-n', '40000', '-c', '20'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', (status) => resolve({ status, out, errors: out.split('\n').filter((l) => /Error from server/.test(l)).length }));
    });
    await new Promise((r) => setTimeout(r, 700));
    c.signal(leader, 'SIGKILL');
    await c.nodes.get(leader)!.exited;
    await new Promise((r) => setTimeout(r, 500));
    await c.start(leader);
    const r = await during;
    expect(r.status, r.out).toBe(0);
    // redis-benchmark 7 exits non-zero at its first error reply: status 0 is no error at all.
    console.log(`redis-benchmark through a SIGKILL of the leader: exit ${r.status}, ${r.errors} error lines`);
    await c.leader();
    const after = benchmark(port, ['-t', 'set,get', '-n', '3000', '-c', '20']);
    expect(after.status, after.out).toBe(0);
    expect(after.errors, after.out).toBe(0);
  }, 180_000);

  it('serves ioredis and node-redis: pipelines and MULTI, through a leader change', async () => {
    const { c, resp } = await respCluster();
    const { leader, follower: f } = await follower(c);
    const io = new Redis({ host: HOST, port: resp[f - 1]!, maxRetriesPerRequest: 50, lazyConnect: true });
    const nr = createClient({ socket: { host: HOST, port: resp[f - 1]!, reconnectStrategy: () => 50 }, RESP: 3 });
    nr.on('error', () => {});
    await io.connect();
    await nr.connect();
    try {
      const piped = await io.pipeline().set('p1', 'a').set('p2', 'b').incr('n').mget('p1', 'p2', 'none').exec();
      expect(piped!.map(([e, v]) => (e === null ? v : String(e)))).toEqual(['OK', 'OK', 1, ['a', 'b', null]]);
      expect(await io.multi().incr('n').incrby('n', 5).get('n').exec()).toEqual([[null, 2], [null, 7], [null, '7']]);
      expect(await nr.multi().set('m', 'x').append('m', 'y').get('m').exec()).toEqual(['OK', 2, 'xy']);
      expect(await nr.get('none')).toBeNull();
      expect(await nr.hello()).toMatchObject({ proto: 3 });
      // The leader goes down: commands fail with CLUSTERDOWN for an election's time; retried, they go through.
      c.signal(leader, 'SIGKILL');
      await c.nodes.get(leader)!.exited;
      const retry = async <T>(f2: () => Promise<T>): Promise<T> => {
        for (let i = 0; ; i++) {
          try {
            return await f2();
          } catch (error) {
            if (i > 200 || !/CLUSTERDOWN/.test(String(error))) throw error;
            await new Promise((r) => setTimeout(r, 25));
          }
        }
      };
      expect(await retry(() => io.incr('n'))).toBe(8);
      expect(await retry(() => nr.incr('n'))).toBe(9);
      expect(await retry(() => io.pipeline().incr('n').get('n').exec())).toEqual([[null, 10], [null, '10']]);
      expect(await retry(() => nr.multi().incr('n').get('n').exec())).toEqual([11, '11']);
    } finally {
      io.disconnect();
      await nr.disconnect().catch(() => {});
    }
  }, 120_000);

  it('keeps a history of concurrent RESP clients through a leader crash linearizable', async () => {
    const { c, resp } = await respCluster();
    const { leader } = await follower(c);
    const ports = resp.filter((_, i) => i + 1 !== leader);
    const keys = ['a', 'b', 'c'];
    const history: HistoryOp[] = [];
    let stop = false;
    const clients = Array.from({ length: 4 }, (_, i) => new Redis({ host: HOST, port: ports[i % ports.length]!, maxRetriesPerRequest: 0, enableOfflineQueue: false }));
    await Promise.all(clients.map((r) => new Promise((resolve) => r.once('ready', resolve))));
    const run = async (client: number, r: Redis): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const key = keys[(client + i) % keys.length]!;
        const kind = (['put', 'get', 'delete', 'get'] as const)[(client * 3 + i) % 4]!;
        const value = `c${client}-${i}`;
        const op: HistoryOp = { client, op: kind, key, value: kind === 'put' ? value : null, expected: null, output: null, call: performance.now(), return: null };
        try {
          if (kind === 'put') await r.set(key, value);
          else if (kind === 'get') op.output = await r.get(key);
          else op.output = (await r.del(key)) === 1;
          op.return = performance.now();
        } catch {
          // No answer: a write may or may not have applied; a failed read had no effect.
          op.output = null;
          if (kind === 'get') continue;
        }
        history.push(op);
      }
    };
    const running = clients.map((r, i) => run(i, r));
    await new Promise((r) => setTimeout(r, 800));
    c.signal(leader, 'SIGKILL');
    await c.nodes.get(leader)!.exited;
    await new Promise((r) => setTimeout(r, 800));
    await c.start(leader);
    await new Promise((r) => setTimeout(r, 800));
    stop = true;
    await Promise.all(running);
    for (const r of clients) r.disconnect();
    expect(history.filter((h) => h.return !== null).length).toBeGreaterThan(100);
    const result = checkLinearizable(history);
    expect(result.ok === true ? 'linearizable' : JSON.stringify(result).slice(0, 2_000)).toBe('linearizable');
  }, 120_000);

  it('answers bad input with an error and closes that connection, the node unharmed and its memory bounded', async () => {
    const { c, resp } = await respCluster();
    const port = resp[0]!;
    /** Sends `bytes`, then collects what comes back until the server closes the connection. */
    const exchange = (bytes: Uint8Array | string): Promise<string> =>
      new Promise((resolve, reject) => {
        const s = connectSocket(port, HOST, () => s.write(bytes));
        let got = '';
        s.on('data', (d) => (got += d.toString('latin1')));
        s.on('close', () => resolve(got));
        s.on('error', reject);
        setTimeout(() => {
          s.destroy();
          reject(new Error(`the server kept the connection open; it sent ${JSON.stringify(got.slice(0, 200))}`));
        }, 10_000);
      });
    expect(await exchange('*1\r\n$99999999\r\n')).toBe('-ERR Protocol error: invalid bulk length\r\n');
    expect(await exchange('*2000000\r\n')).toBe('-ERR Protocol error: invalid multibulk length\r\n');
    expect(await exchange(`PING\r\n*1\r\n:1\r\n`)).toBe("+PONG\r\n-ERR Protocol error: expected '$', got ':'\r\n");
    // Binary junk with no line end: past 64 KiB it is a request too big to be one.
    const junk = Buffer.alloc(100_000, 0x9c);
    expect(await exchange(junk)).toBe('-ERR Protocol error: too big inline request\r\n');
    // A request cut short, then the client goes: nothing to answer, nothing kept.
    const cut = connectSocket(port, HOST, () => cut.end('*2\r\n$3\r\nSET\r\n$5\r\nab'));
    await new Promise((r) => cut.on('close', r));
    // A client that sends and never reads: its unread replies pass the bound and it is cut off, the server's memory bounded.
    const pid = c.nodes.get(1)!.child.pid!;
    const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
    expect(redisCli(port, `SET big ${'x'.repeat(512 << 10)}`).trim()).toBe('OK');
    const before = rss();
    const greedy: Socket = connectSocket(port, HOST);
    await new Promise((r) => greedy.once('connect', r));
    greedy.pause();
    const closed = new Promise((r) => greedy.once('close', r));
    const request = Buffer.from('*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n');
    for (let i = 0; i < 2_000 && !greedy.destroyed; i++) {
      if (!greedy.write(request)) await new Promise((r) => setTimeout(r, 5));
    }
    // It reads nothing: the server stops reading it, then cuts it off (RESP_OUTPUT_STALL_MS).
    await waitFor(() => c.nodes.get(1)!.lines.some((l) => /read none of its \d+ bytes of replies/.test(String(l['msg']))) || undefined, 'the server cutting off the client that does not read', 20_000);
    // (A paused socket hears of the close once it reads what came before it.)
    greedy.resume();
    await closed;
    // 2,000 replies of 512 KiB would be 1 GiB: the server holds a bounded part of it.
    expect(rss() - before).toBeLessThan(400 << 20);
    // Unharmed: it answers, and the cluster writes.
    expect(redisCli(port, 'PING\nSET after ok\nGET after').trim().split('\n')).toEqual(['PONG', 'OK', 'ok']);
    expect((await c.status(1)).role === 'leader' || (await c.status(1)).leaderId !== 0).toBe(true);
  }, 120_000);
});

const enc = (...words: string[]): string => `*${words.length}\r\n${words.map((w) => `$${Buffer.byteLength(w)}\r\n${w}\r\n`).join('')}`;

/**
 * Sends `bytes` at once on a fresh connection and returns the reply bytes received, and whether
 * the server closed: once it closes, or once nothing more has come for QUIET_MS (500) after a first
 * byte, or at `ms` in all.
 */
function exchange(port: number, bytes: string, ms = 5_000): Promise<{ out: string; closed: boolean }> {
  const QUIET_MS = 500;
  return new Promise((resolve) => {
    const s = connectSocket(port, HOST);
    let out = '';
    let closed = false;
    let quiet: NodeJS.Timeout | undefined;
    const done = (): void => {
      clearTimeout(quiet);
      clearTimeout(overall);
      s.destroy();
      resolve({ out, closed });
    };
    s.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      clearTimeout(quiet);
      quiet = setTimeout(done, QUIET_MS);
    });
    s.on('close', () => {
      closed = true;
      done();
    });
    s.on('error', () => undefined);
    s.write(bytes);
    const overall = setTimeout(done, ms);
  });
}

describe('the RESP port, in order and in step with Redis', () => {
  it('answers pipelined commands in order when a connection command sits between two store commands', async () => {
    const { c, resp } = await respCluster();
    await c.leader();
    const port = resp[0]!;
    await exchange(port, enc('MSET', 'ra', 'AAA', 'rb', 'BBB'));
    // Redis: $3 AAA, $7 between, $3 BBB, +OK, +PONG, :2
    const { out } = await exchange(port, enc('GET', 'ra') + enc('ECHO', 'between') + enc('GET', 'rb') + enc('SET', 'rc', '1') + enc('PING') + enc('INCR', 'rc'));
    expect(out).toBe('$3\r\nAAA\r\n$7\r\nbetween\r\n$3\r\nBBB\r\n+OK\r\n+PONG\r\n:2\r\n');
  }, 60_000);

  it('writes a reply in the protocol the connection had when the command came (HELLO 3 / RESET later in the pipeline)', async () => {
    const { c, resp } = await respCluster();
    await c.leader();
    const port = resp[0]!;
    // Redis: the GET before HELLO 3 is answered in RESP2 ($-1).
    const { out } = await exchange(port, enc('GET', 'missing') + enc('HELLO', '3'));
    expect(out.startsWith('$-1\r\n')).toBe(true);
  }, 60_000);

  it('runs nothing a client sends after QUIT', async () => {
    const { c, resp } = await respCluster();
    await c.leader();
    const port = resp[0]!;
    const r = await exchange(port, enc('SET', 'q1', 'a') + enc('QUIT') + enc('SET', 'q2', 'b'));
    expect(r.closed).toBe(true);
    // Redis: +OK +OK, and q2 is never set.
    expect(r.out).toBe('+OK\r\n+OK\r\n');
    const { out } = await exchange(port, enc('EXISTS', 'q2'));
    expect(out).toBe(':0\r\n');
  }, 60_000);

  it('accepts AUTH default <any> and HELLO 3 AUTH default <any> with no password configured, as Redis (nopass default user)', async () => {
    const { c, resp } = await respCluster();
    await c.leader();
    expect((await exchange(resp[0]!, enc('AUTH', 'default', 'x'))).out).toBe('+OK\r\n');
    expect((await exchange(resp[0]!, enc('HELLO', '3', 'AUTH', 'default', 'x'))).out).toMatch(/^%7\r\n/);
  }, 60_000);

  it('refuses KEYS and SCAN inside MULTI, and a MULTI past one entry\'s bounds, aborting its EXEC; `constructor` is no command', async () => {
    const { c, resp } = await respCluster();
    await c.leader();
    const port = resp[0]!;
    const { out } = await exchange(port, enc('MULTI') + enc('SET', 'm', '1') + enc('KEYS', '*') + enc('EXEC') + enc('EXISTS', 'm'));
    expect(out).toBe('+OK\r\n+QUEUED\r\n-ERR KEYS inside MULTI is not supported: every replica would run it as it applies the transaction\r\n-EXECABORT Transaction discarded because of previous errors.\r\n:0\r\n');
    let many = enc('MULTI');
    for (let i = 0; i <= 10_000; i++) many += enc('INCR', 'n');
    const big = await exchange(port, many + enc('EXEC') + enc('EXISTS', 'n'), 20_000);
    expect(big.out).toMatch(/-ERR a MULTI holds at most 10000 commands[^\r]*\r\n-EXECABORT Transaction discarded because of previous errors\.\r\n:0\r\n$/);
    expect((await exchange(port, enc('constructor', 'x') + enc('MULTI') + enc('__proto__') + enc('EXEC'))).out).toBe(
      "-ERR unknown command 'constructor', with args beginning with: 'x' \r\n+OK\r\n-ERR unknown command '__proto__', with args beginning with: \r\n-EXECABORT Transaction discarded because of previous errors.\r\n",
    );
  }, 60_000);

  it('keeps an unauthenticated client small: past 10 elements or a 16 KiB bulk string before AUTH, refused and closed', async () => {
    const resp = [await freePort(), await freePort(), await freePort()];
    const c = await cluster(3, ['--resp-password', 'sesame'], {}, { argsOf: (id) => ['--listen-resp', `${HOST}:${resp[id - 1]}`] });
    await c.leader();
    const port = resp[0]!;
    expect((await exchange(port, `*11\r\n`)).out).toBe('-ERR Protocol error: unauthenticated multibulk length\r\n');
    expect((await exchange(port, `*1\r\n$20000\r\n`)).out).toBe('-ERR Protocol error: unauthenticated bulk length\r\n');
    expect((await exchange(port, enc('GET', 'a'))).out).toBe('-NOAUTH Authentication required.\r\n');
    const authed = await exchange(port, enc('AUTH', 'sesame') + enc('MSET', ...Array.from({ length: 12 }, (_, i) => `k${i}`)));
    expect(authed.out).toBe('+OK\r\n+OK\r\n');
  }, 60_000);

  it("lets a connection read its own write with RINGRAFT READ stale on a follower", async () => {
    const { c, resp } = await respCluster();
    const leader = await c.leader();
    const port = resp[leader === 1 ? 1 : 0]!;
    let pipeline = enc('RINGRAFT', 'READ', 'stale');
    for (let i = 0; i < 300; i++) pipeline += enc('SET', 'sk', String(i)) + enc('GET', 'sk');
    const { out } = await exchange(port, pipeline, 20_000);
    const lines = out.split('\r\n');
    const gets: string[] = [];
    for (let at = 1; at < lines.length; at++) {
      if (lines[at]!.startsWith('$-1')) gets.push('(nil)');
      else if (lines[at]!.startsWith('$')) gets.push(lines[++at]!);
    }
    const stale = gets.map((v, i) => (v === String(i) ? undefined : `GET #${i} read ${v}`)).filter((x) => x !== undefined);
    expect(gets.length).toBe(300);
    expect(stale).toEqual([]);
  }, 60_000);
});
