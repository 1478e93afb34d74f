// The store's Redis commands (src/kv/redis.ts) answer byte for byte as Redis does: random
// sequences of commands over a few keys run against the store (writes as log entries, reads
// on the read path) and against a real redis-server, each reply compared (KEYS sorted: Redis
// lists them in no order). Then what only ringraft does: SCAN's cursors over byte order,
// MULTI's commands in one entry, bounded replies, expiry refused, and the replies kept in
// sessions and snapshots.
import { connect, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, encodeKvRequest, globMatch, KvStateMachine, parseInt64, type KvWriteResult } from '../../src/kv/index.ts';
import { HOST, redisServer } from '../server/helpers.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
const words = (...w: string[]): Uint8Array[] => w.map((x) => enc.encode(x));

function encodeArray(command: readonly Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [enc.encode(`*${command.length}\r\n`)];
  for (const w of command) parts.push(enc.encode(`$${w.length}\r\n`), w, enc.encode('\r\n'));
  return Buffer.concat(parts);
}

/** The end of the one RESP2 reply at `at`, or -1 if it has not all come. */
function replyEnd(b: Uint8Array, at: number): number {
  const cr = b.indexOf(13, at);
  if (cr < 0 || cr + 1 >= b.length) return -1;
  const type = b[at];
  const next = cr + 2;
  if (type !== 36 && type !== 42) return next;
  const n = Number(dec.decode(b.subarray(at + 1, cr)));
  if (n < 0) return next;
  if (type === 36) return next + n + 2 <= b.length ? next + n + 2 : -1;
  let p = next;
  for (let i = 0; i < n; i++) {
    p = replyEnd(b, p);
    if (p < 0) return -1;
  }
  return p;
}

/** A connection to redis-server that sends one command at a time and returns its raw reply. */
class RawRedis {
  private buffer = Buffer.alloc(0);
  private waiting: (() => void) | undefined;

  constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d]);
      this.waiting?.();
    });
  }

  async call(command: readonly Uint8Array[]): Promise<string> {
    this.socket.write(encodeArray(command));
    for (;;) {
      const end = this.buffer.length === 0 ? -1 : replyEnd(this.buffer, 0);
      if (end >= 0) {
        const reply = this.buffer.subarray(0, end);
        this.buffer = this.buffer.subarray(end);
        return dec.decode(reply);
      }
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }
}

const redis = redisServer();
let raw: RawRedis;
let socket: Socket;

beforeAll(async () => {
  socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect(redis.port(), HOST, () => resolve(s));
    s.once('error', reject);
  });
  raw = new RawRedis(socket);
  expect(await raw.call(words('PING'))).toBe('+PONG\r\n');
});

afterAll(() => socket?.destroy());

/** The store, with each command applied as Redis would run it: writes as log entries, reads on the read path. */
class Store {
  readonly kv = new KvStateMachine();
  private seq = 0;

  run(command: Uint8Array[]): string {
    const name = dec.decode(command[0]).toLowerCase();
    if (READS.has(name)) return dec.decode(this.kv.redisRead([command]));
    return this.write([command], false);
  }

  write(commands: Uint8Array[][], transaction: boolean): string {
    this.seq++;
    const out = this.kv.apply(this.kv.appliedIndex + 1, encodeKvRequest({ clientId: 7, seq: this.seq, command: { op: 'redis', commands, transaction } }));
    const result = out.result as KvWriteResult | undefined;
    if (result?.op !== 'redis') throw new Error(`not a redis result: ${JSON.stringify(out)}`);
    return dec.decode(result.encoded);
  }
}

const READS = new Set(['get', 'mget', 'exists', 'strlen', 'dbsize', 'keys', 'type', 'ttl', 'pttl']);

/** KEYS answers in no order in Redis: compare its elements sorted. */
function normal(command: Uint8Array[], reply: string): string {
  if (dec.decode(command[0]).toLowerCase() !== 'keys' || !reply.startsWith('*')) return reply;
  const lines = reply.split('\r\n');
  const items: string[] = [];
  for (let i = 1; i + 1 < lines.length; i += 2) items.push(`${lines[i]}\r\n${lines[i + 1]}`);
  return `${lines[0]}\r\n${items.sort().join('\r\n')}\r\n`;
}

const key = fc.constantFrom('k0', 'k1', 'k2', 'k3');
const value = fc.constantFrom('0', '1', '-7', '42', '9223372036854775807', '-9223372036854775808', '01', ' 1', 'abc', '', '3.5', '+1', '99999999999999999999');
const amount = fc.constantFrom('1', '-1', '10', '9223372036854775807', '-9223372036854775808', 'x', '1.0');
const commandArb: fc.Arbitrary<readonly string[]> = fc.oneof(
  fc.tuple(fc.constant('GET'), key),
  fc.tuple(fc.constant('SET'), key, value),
  fc.tuple(fc.constant('SET'), key, value, fc.constantFrom('NX', 'XX', 'GET', 'KEEPTTL', 'nx', 'BOGUS')),
  fc.tuple(fc.constant('SET'), key, value, fc.constantFrom('NX', 'XX'), fc.constant('GET')),
  fc.tuple(fc.constant('SET'), key, value, fc.constant('NX'), fc.constant('XX')),
  fc.tuple(fc.constant('SETNX'), key, value),
  fc.tuple(fc.constant('GETSET'), key, value),
  fc.tuple(fc.constant('GETDEL'), key),
  fc.tuple(fc.constant('DEL'), key, key),
  fc.tuple(fc.constant('EXISTS'), key, key, key),
  fc.tuple(fc.constant('MGET'), key, key, key),
  fc.tuple(fc.constant('MSET'), key, value, key, value),
  fc.tuple(fc.constant('MSET'), key, value, key),
  fc.tuple(fc.constant('MSETNX'), key, value, key, value),
  fc.tuple(fc.constantFrom('INCR', 'DECR', 'incr'), key),
  fc.tuple(fc.constantFrom('INCRBY', 'DECRBY'), key, amount),
  fc.tuple(fc.constant('APPEND'), key, value),
  fc.tuple(fc.constant('STRLEN'), key),
  fc.tuple(fc.constant('TYPE'), key),
  fc.tuple(fc.constant('TTL'), key),
  fc.constant(['DBSIZE']),
  fc.tuple(fc.constant('KEYS'), fc.constantFrom('*', 'k[0-1]', 'k?', '*3', 'x*', 'k[^0]')),
  fc.constant(['GET']),
  fc.constant(['INCR', 'k0', 'k1']),
  fc.constant(['NOSUCH', 'a', 'b']),
);

describe('Redis commands in the store', () => {
  it('answer byte for byte as redis-server does, over random sequences', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 30 }), async (sequence) => {
        expect(await raw.call(words('FLUSHALL'))).toBe('+OK\r\n');
        const store = new Store();
        for (const c of sequence) {
          const command = words(...c);
          const theirs = normal(command, await raw.call(command));
          const ours = normal(command, store.run(command));
          expect(ours, `${c.join(' ')}`).toBe(theirs);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('runs the commands of a MULTI in one entry, each answered in one array, as EXEC does', async () => {
    expect(await raw.call(words('FLUSHALL'))).toBe('+OK\r\n');
    const commands = [words('SET', 'a', '1'), words('INCR', 'a'), words('APPEND', 'a', 'x'), words('INCR', 'a'), words('GET', 'a')];
    await raw.call(words('MULTI'));
    for (const c of commands) expect(await raw.call(c)).toBe('+QUEUED\r\n');
    const theirs = await raw.call(words('EXEC'));
    const store = new Store();
    const index = store.kv.appliedIndex;
    expect(store.write(commands, true)).toBe(theirs);
    expect(store.kv.appliedIndex).toBe(index + 1);
  });

  it('scans every key once in byte order across calls, whatever is written meanwhile, and refuses a bad cursor', () => {
    const store = new Store();
    for (let i = 0; i < 25; i++) store.run(words('SET', `key:${String(i).padStart(2, '0')}`, 'v'));
    const seen: string[] = [];
    let cursor = '0';
    let calls = 0;
    do {
      const reply = dec.decode(store.kv.redisRead([words('SCAN', cursor, 'COUNT', '7', 'MATCH', 'key:*')]));
      const lines = reply.split('\r\n');
      cursor = lines[2]!;
      for (let i = 5; i < lines.length; i += 2) if (lines[i] !== '') seen.push(lines[i]!);
      // Written meanwhile: a key before the cursor, and one that does not match.
      store.run(words('SET', `aaa${calls}`, 'v'));
      calls++;
    } while (cursor !== '0');
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => `key:${String(i).padStart(2, '0')}`));
    expect(calls).toBe(4);
    expect(dec.decode(store.kv.redisRead([words('SCAN', '12x')]))).toBe('-ERR invalid cursor\r\n');
    expect(decodeCursor(encodeCursor(Uint8Array.of(0, 255, 7)))).toEqual(Uint8Array.of(0, 255, 7));
    expect(decodeCursor('1256')).toBeNull();
  });

  it('refuses expiry, bounds what a reply holds, and keeps a write\'s reply in its session across a snapshot', () => {
    const store = new Store();
    expect(store.run(words('SET', 'a', '1', 'EX', '10'))).toMatch(/^-ERR ringraft keeps no expiry per key/);
    const big = 'x'.repeat(600 << 10);
    store.run(words('SET', 'big', big));
    store.run(words('SET', 'big2', big));
    // A write's reply is kept in its session, bounded: a GETSET of a large value fits, two in one MULTI do not.
    expect(store.write([words('GET', 'big'), words('GET', 'big2')], true)).toMatch(new RegExp(`^\\*2\\r\\n\\$${big.length}\\r\\nx+\\r\\n-ERR reply too large`));
    expect(store.run(words('GETSET', 'big2', 'y'))).toBe(`$${big.length}\r\n${big}\r\n`);
    expect(store.run(words('GETDEL', 'big'))).toBe(`$${big.length}\r\n${big}\r\n`);
    // A pattern too costly for the keys it meets is refused, not matched for seconds.
    for (let i = 0; i < 40; i++) store.run(words('SET', `${'a'.repeat(4000)}${i}`, 'v'));
    expect(store.run(words('KEYS', `*${'a'.repeat(2000)}b`))).toMatch(/^-ERR the pattern costs too much/);
    expect(globMatch(enc.encode('*a*b'), enc.encode('aaaaaaaaab'), { steps: 5 })).toBe(false);
    const reply = store.run(words('INCR', 'n'));
    // The session's reply survives a snapshot: a retry of the same seq answers it again without applying.
    const copy = KvStateMachine.restore(store.kv.snapshot());
    const retry = copy.apply(copy.appliedIndex + 1, encodeKvRequest({ clientId: 7, seq: 47, command: { op: 'redis', commands: [words('INCR', 'n')], transaction: false } }));
    expect(retry.status).toBe('duplicate');
    expect(dec.decode((retry.result as { encoded: Uint8Array }).encoded)).toBe(reply);
    expect(dec.decode(copy.redisRead([words('GET', 'n')]))).toBe('$1\r\n1\r\n');
  });

  it('parses integers and globs as Redis does', () => {
    expect(parseInt64(enc.encode('-9223372036854775808'))).toBe(-(2n ** 63n));
    for (const bad of ['', '-', '01', '+1', ' 1', '1 ', '9223372036854775808', '-0']) expect(parseInt64(enc.encode(bad)), bad).toBeUndefined();
    const m = (p: string, s: string): boolean => globMatch(enc.encode(p), enc.encode(s));
    expect([m('*', ''), m('a*b*c', 'aXbYc'), m('a?c', 'abc'), m('[a-c]x', 'bx'), m('[^a]x', 'ax'), m('\\*', '*'), m('\\*', 'a'), m('*a*a*a*a*b', 'a'.repeat(40))]).toEqual([true, true, true, true, false, true, false, false]);
  });
});
