/**
 * Every argument of every client call is checked before anything is encoded or sent: a table
 * of bad arguments (keys, values, prefixes over their limits, empty keys, lone surrogates,
 * wrong types; options, signal, timeoutMs, nodeId, consistency, afterIndex out of range) is
 * tried on put, get, delete, cas and watch of a real cluster. Each is refused with a
 * RingraftError INVALID_ARGUMENT whose message names the argument (and its limit, where it
 * has one), no request reaches a node, and the cluster serves as before afterwards: the issue
 * was a get of a key over KV_KEY_BYTES_MAX that the client sent and that killed every node.
 */

import { describe, expect, it } from 'vitest';
import type { KvClientHost } from '../../src/cluster/client.ts';
import { ErrorCode, RingraftError, type KvClient } from '../../src/index.ts';
import { KV_KEY_BYTES_MAX, KV_VALUE_BYTES_MAX } from '../../src/kv/index.ts';
import { start, stopAfterEach } from './helpers.ts';

stopAfterEach();

const text = new TextDecoder();
/** Arguments deliberately of the wrong type go through this. */
const any = (value: unknown): never => value as never;

/** The key arguments a call must refuse, with what the message must say. */
const badKeys: readonly (readonly [string, unknown, RegExp])[] = [
  ['bytes over KV_KEY_BYTES_MAX', new Uint8Array(KV_KEY_BYTES_MAX + 1), /KV_KEY_BYTES_MAX \(4096/],
  ['a string over KV_KEY_BYTES_MAX', 'k'.repeat(KV_KEY_BYTES_MAX + 1), /KV_KEY_BYTES_MAX \(4096/],
  ['a string over KV_KEY_BYTES_MAX in UTF-8 only', '\u00e9'.repeat(KV_KEY_BYTES_MAX / 2 + 1), /KV_KEY_BYTES_MAX \(4096/],
  ['an empty string', '', /empty.*KV_KEY_BYTES_MAX/],
  ['empty bytes', new Uint8Array(0), /empty/],
  ['a lone high surrogate', '\uD800', /lone surrogate/],
  ['a lone low surrogate inside', 'a\uDC00b', /lone surrogate/],
  ['a number', 42, /Uint8Array or a string/],
  ['null', null, /Uint8Array or a string/],
  ['undefined', undefined, /Uint8Array or a string/],
  ['an array of numbers', [1, 2], /Uint8Array or a string/],
  ['an ArrayBuffer', new ArrayBuffer(3), /Uint8Array or a string/],
  ['a Uint16Array', new Uint16Array(2), /Uint8Array or a string/],
];

/** The value arguments (put's value, cas's expected and next) a call must refuse. */
const badValues: readonly (readonly [string, unknown, RegExp])[] = [
  ['bytes over KV_VALUE_BYTES_MAX', new Uint8Array(KV_VALUE_BYTES_MAX + 1), /KV_VALUE_BYTES_MAX \(1048576/],
  ['a string over KV_VALUE_BYTES_MAX', 'v'.repeat(KV_VALUE_BYTES_MAX + 1), /KV_VALUE_BYTES_MAX \(1048576/],
  ['a lone surrogate', 'x\uDBFF', /lone surrogate/],
  ['a number', 7, /Uint8Array or a string/],
  ['null', null, /Uint8Array or a string/],
];

/** Options every call takes, each one bad. */
const badCallOptions: readonly (readonly [string, unknown, RegExp])[] = [
  ['options null', null, /options/],
  ['options a number', 5, /options/],
  ['timeoutMs 0', { timeoutMs: 0 }, /timeoutMs.*CALL_TIMEOUT_MS_MAX/],
  ['timeoutMs negative', { timeoutMs: -1 }, /timeoutMs/],
  ['timeoutMs NaN', { timeoutMs: Number.NaN }, /timeoutMs/],
  ['timeoutMs Infinity', { timeoutMs: Number.POSITIVE_INFINITY }, /timeoutMs/],
  ['timeoutMs over 2^31 - 1', { timeoutMs: 2 ** 31 }, /timeoutMs.*2147483647/],
  ['timeoutMs a string', { timeoutMs: '100' }, /timeoutMs/],
  ['nodeId not in the cluster', { nodeId: 99 }, /nodeId.*1, 2, 3/],
  ['nodeId 0', { nodeId: 0 }, /nodeId/],
  ['nodeId fractional', { nodeId: 1.5 }, /nodeId/],
  ['nodeId a string', { nodeId: '1' }, /nodeId/],
  ['signal not an AbortSignal', { signal: {} }, /signal/],
  ['signal an AbortController', { signal: new AbortController() }, /signal/],
];

const badConsistency: readonly (readonly [string, unknown, RegExp])[] = [
  ['consistency unknown', { consistency: 'strong' }, /consistency.*'linearizable', 'lease' or 'stale'/],
  ['consistency a number', { consistency: 1 }, /consistency/],
  ['consistency null', { consistency: null }, /consistency/],
];

const badWatchOptions: readonly (readonly [string, unknown, RegExp])[] = [
  ['options null', null, /options/],
  ['afterIndex negative', { afterIndex: -1 }, /afterIndex.*2\^53 - 1/],
  ['afterIndex fractional', { afterIndex: 1.5 }, /afterIndex/],
  ['afterIndex 2^53', { afterIndex: 2 ** 53 }, /afterIndex/],
  ['afterIndex NaN', { afterIndex: Number.NaN }, /afterIndex/],
  ['afterIndex a string', { afterIndex: '3' }, /afterIndex/],
  ['signal not an AbortSignal', { signal: 'abort' }, /signal/],
];

const badPrefixes: readonly (readonly [string, unknown, RegExp])[] = [
  ['bytes over KV_KEY_BYTES_MAX', new Uint8Array(KV_KEY_BYTES_MAX + 1), /prefix.*KV_KEY_BYTES_MAX \(4096/],
  ['a string over KV_KEY_BYTES_MAX', 'p'.repeat(KV_KEY_BYTES_MAX + 1), /prefix.*KV_KEY_BYTES_MAX \(4096/],
  ['a lone surrogate', '\uDFFF', /prefix.*lone surrogate/],
  ['a number', 1, /prefix.*Uint8Array or a string/],
  ['null', null, /prefix.*Uint8Array or a string/],
];

/** Every bad call: its name, how to make it, and what its message must say. */
function badCalls(kv: KvClient): (readonly [string, () => unknown, RegExp])[] {
  const calls: (readonly [string, () => unknown, RegExp])[] = [];
  for (const [name, key, message] of badKeys) {
    const named = new RegExp(`key.*${message.source}|${message.source}.*key`);
    calls.push([`put: key ${name}`, () => kv.put(any(key), 'v'), named]);
    calls.push([`get: key ${name}`, () => kv.get(any(key)), named]);
    calls.push([`delete: key ${name}`, () => kv.delete(any(key)), named]);
    calls.push([`cas: key ${name}`, () => kv.cas(any(key), undefined, 'v'), named]);
  }
  for (const [name, value, message] of badValues) {
    calls.push([`put: value ${name}`, () => kv.put('k', any(value)), new RegExp(`value.*${message.source}|${message.source}.*value`)]);
    calls.push([`cas: expected ${name}`, () => kv.cas('k', any(value), 'v'), new RegExp(`expected.*${message.source}|${message.source}.*expected`)]);
    calls.push([`cas: next ${name}`, () => kv.cas('k', undefined, any(value)), new RegExp(`next.*${message.source}|${message.source}.*next`)]);
  }
  for (const [name, options, message] of badCallOptions) {
    calls.push([`put: ${name}`, () => kv.put('k', 'v', any(options)), message]);
    calls.push([`get: ${name}`, () => kv.get('k', any(options)), message]);
    calls.push([`delete: ${name}`, () => kv.delete('k', any(options)), message]);
    calls.push([`cas: ${name}`, () => kv.cas('k', undefined, 'v', any(options)), message]);
  }
  for (const [name, options, message] of badConsistency) calls.push([`get: ${name}`, () => kv.get('k', any(options)), message]);
  for (const [name, options, message] of badWatchOptions) calls.push([`watch: ${name}`, () => kv.watch('p', any(options)), message]);
  for (const [name, prefix, message] of badPrefixes) calls.push([`watch: prefix ${name}`, () => kv.watch(any(prefix)), message]);
  return calls;
}

/** What a call threw or rejected with (watch throws at once; the others reject). */
async function errorOf(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Counts what the client sends (attempts and watches) through its host. */
function countSends(kv: KvClient): { readonly sent: number } {
  const host = (kv as unknown as { host: KvClientHost }).host;
  const counter = { sent: 0 };
  const attempt = host.attempt.bind(host);
  const openWatch = host.openWatch.bind(host);
  host.attempt = (...args) => {
    counter.sent++;
    return attempt(...args);
  };
  host.openWatch = (...args) => {
    counter.sent++;
    return openWatch(...args);
  };
  return counter;
}

describe('client arguments', () => {
  it('refuses every bad argument of every call with INVALID_ARGUMENT naming it, sends nothing, and the cluster serves on', async () => {
    // Short calls: a client that let a bad argument through to dying nodes fails soon.
    const cluster = await start({ client: { requestTimeoutMs: 2_000 } });
    const kv = cluster.client();
    await kv.put('before', '1');
    const sends = countSends(kv);
    const calls = badCalls(kv);
    expect(calls.length).toBeGreaterThan(100);
    const wrong: string[] = [];
    for (const [name, call, message] of calls) {
      const error = await errorOf(call);
      const ok = error instanceof RingraftError && error.code === ErrorCode.INVALID_ARGUMENT && message.test(error.message);
      if (!ok) wrong.push(`${name}: ${error instanceof Error ? `${(error as RingraftError).code} ${error.message}` : String(error)}`);
    }
    expect(wrong).toEqual([]);
    expect(sends.sent).toBe(0);

    // Every node is up and the cluster serves reads, writes and watches.
    const status = await cluster.status();
    expect(status.nodes.map((n) => n.alive)).toEqual([true, true, true]);
    await kv.put('after', '2');
    expect(text.decode(await kv.get('after'))).toBe('2');
    expect(text.decode(await kv.get('before'))).toBe('1');
  });

  it('takes arguments right at their limits', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const longestKey = new Uint8Array(KV_KEY_BYTES_MAX).fill(0x6b);
    const longestValue = new Uint8Array(KV_VALUE_BYTES_MAX).fill(0x76);
    await kv.put(longestKey, longestValue);
    expect((await kv.get(longestKey))?.length).toBe(KV_VALUE_BYTES_MAX);
    // 2,048 two-byte characters: 4,096 bytes of UTF-8.
    const wideKey = '\u00e9'.repeat(KV_KEY_BYTES_MAX / 2);
    expect(await kv.cas(wideKey, undefined, '', { timeoutMs: 2 ** 31 - 1, nodeId: undefined })).toBe(true);
    expect(await kv.get(wideKey, { consistency: 'stale' })).toEqual(new Uint8Array(0));
    // A well-formed surrogate pair is fine: it is one character.
    await kv.put('\uD83D\uDE00', '\uD83D\uDE00');
    expect(text.decode(await kv.get('\uD83D\uDE00'))).toBe('\uD83D\uDE00');
    expect(await kv.delete(longestKey)).toBe(true);
    const watch = kv.watch(new Uint8Array(KV_KEY_BYTES_MAX), { afterIndex: 0 });
    await watch.return?.();
  });
});

describe('a watch from an index far ahead', () => {
  it('is refused at once with INVALID_ARGUMENT, instead of waiting silently; an index already written resumes', async () => {
    const cluster = await start({ nodes: 3 });
    const kv = cluster.client();
    await kv.put('w:a', '1');
    const st = await cluster.status();
    const began = performance.now();
    const far = kv.watch('w:', { afterIndex: st.nodes[0]!.lastIndex + 1_000_000 });
    let error: unknown;
    try {
      await far.next();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RingraftError);
    expect((error as RingraftError).code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect((error as RingraftError).message).toMatch(/afterIndex \d+ is past every live node's log/);
    expect(performance.now() - began).toBeLessThan(2_000);
    // From index 0 the history replays the put.
    const from0 = kv.watch('w:', { afterIndex: 0 });
    const first = await from0.next();
    expect(text.decode((first.value as { key: Uint8Array }).key)).toBe('w:a');
    await from0.return!();
  });
});
