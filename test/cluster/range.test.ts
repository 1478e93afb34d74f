/**
 * Range reads through the client of a real cluster (nodes on worker threads): keys in byte
 * order with their revisions (and the same revisions in watch events), prefixes, bounds, reverse, limits and paging, keysOnly and
 * countOnly, every consistency, a stale read from a follower, a page bounded in bytes, and
 * bad arguments refused with INVALID_ARGUMENT before anything is sent.
 */

import { describe, expect, it } from 'vitest';
import { ErrorCode, type KvClient } from '../../src/index.ts';
import { KV_RANGE_ENTRIES_MAX } from '../../src/kv/index.ts';
import { refused, start, stopAfterEach } from './helpers.ts';

stopAfterEach();

const text = new TextDecoder();
const keysOf = (r: { entries: readonly { key: Uint8Array }[] }): string[] => r.entries.map((e) => text.decode(e.key));

describe('range', () => {
  it('reads keys in byte order with revisions, by prefix or bounds, forwards and in reverse, and pages through', async () => {
    const cluster = await start();
    const kv: KvClient = cluster.client();
    for (const k of ['b/2', 'a/1', 'b/1', 'b/3', 'c', 'b/10']) await kv.put(k, `v-${k}`);
    await kv.put('b/1', 'again');

    const b = await kv.range({ prefix: 'b/' });
    expect(keysOf(b)).toEqual(['b/1', 'b/10', 'b/2', 'b/3']);
    expect([b.count, b.more]).toEqual([4, false]);
    const b1 = b.entries[0]!;
    expect(text.decode(b1.value)).toBe('again');
    expect(b1.version).toBe(2);
    expect(b1.modIndex).toBeGreaterThan(b1.createIndex);
    expect(b.index).toBeGreaterThanOrEqual(b1.modIndex);

    expect(keysOf(await kv.range({ start: 'a', end: 'b/2' }))).toEqual(['a/1', 'b/1', 'b/10']);
    expect(keysOf(await kv.range({ start: 'b/2' }))).toEqual(['b/2', 'b/3', 'c']);
    expect(keysOf(await kv.range({ prefix: '' }, { reverse: true, limit: 2 }))).toEqual(['c', 'b/3']);
    const counted = await kv.range({ prefix: 'b/' }, { countOnly: true });
    expect([counted.entries.length, counted.count]).toEqual([0, 4]);
    const keysOnly = await kv.range({ prefix: 'a' }, { keysOnly: true });
    expect(keysOnly.entries[0]!.value).toBeUndefined();

    // Paging: the next page starts at the last key plus a zero byte.
    const seen: string[] = [];
    let page = await kv.range({ prefix: 'b/' }, { limit: 3 });
    seen.push(...keysOf(page));
    expect(page.more).toBe(true);
    const last = page.entries[page.entries.length - 1]!.key;
    page = await kv.range({ start: Uint8Array.from([...last, 0]), end: 'b0' }, { limit: 3 });
    seen.push(...keysOf(page));
    expect(page.more).toBe(false);
    expect(seen).toEqual(['b/1', 'b/10', 'b/2', 'b/3']);

    // One key with its revisions: getEntry.
    const entry = await kv.getEntry('b/1');
    expect([text.decode(entry!.value), entry!.version, entry!.createIndex, entry!.modIndex]).toEqual(['again', 2, b1.createIndex, b1.modIndex]);
    expect(entry!.index).toBeGreaterThanOrEqual(b1.modIndex);
    expect(await kv.getEntry('b/')).toBeUndefined(); // a prefix of keys, not a key
    expect(await kv.getEntry('nothing', { consistency: 'stale' })).toBeUndefined();

    for (const consistency of ['linearizable', 'lease', 'stale'] as const) {
      expect(keysOf(await kv.range({ prefix: 'b/' }, { consistency }))).toEqual(['b/1', 'b/10', 'b/2', 'b/3']);
    }
  });

  it('watch events carry the revisions: version counts from 1, a delete is 0, a key made again starts anew', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const watch = kv.watch('w/');
    const events: { type: string; index: number; createIndex: number; version: number }[] = [];
    const reading = (async () => {
      for await (const e of watch) {
        events.push({ type: e.type, index: e.index, createIndex: e.createIndex, version: e.version });
        if (events.length === 4) break;
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    await kv.put('w/k', '1');
    await kv.put('w/k', '2');
    await kv.delete('w/k');
    await kv.put('w/k', '3');
    await reading;
    const [first, second, deleted, again] = events as [(typeof events)[0], (typeof events)[0], (typeof events)[0], (typeof events)[0]];
    expect([first.version, second.version, deleted.version, again.version]).toEqual([1, 2, 0, 1]);
    expect(first.createIndex).toBe(first.index);
    expect(second.createIndex).toBe(first.index);
    expect([deleted.type, deleted.createIndex]).toEqual(['delete', 0]);
    expect(again.createIndex).toBe(again.index);
    // The range read agrees with the last event.
    const [entry] = (await kv.range({ prefix: 'w/' })).entries;
    expect([entry!.createIndex, entry!.modIndex, entry!.version]).toEqual([again.index, again.index, 1]);
  });

  it('deleteRange deletes a prefix or [start, end) in one entry, once, and a watch sees each key go in byte order', async () => {
    const cluster = await start();
    const kv = cluster.client();
    for (const k of ['d/b', 'd/a', 'd/c', 'e/1', 'e/2', 'f']) await kv.put(k, '1');
    const watch = kv.watch('d/');
    const events: { type: string; key: string; index: number; position: number }[] = [];
    const reading = (async () => {
      for await (const e of watch) {
        events.push({ type: e.type, key: text.decode(e.key), index: e.index, position: e.position });
        if (events.length === 3) break;
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    expect(await kv.deleteRange({ prefix: 'd/' })).toBe(3);
    await reading;
    expect(events.map((e) => [e.type, e.key])).toEqual([['delete', 'd/a'], ['delete', 'd/b'], ['delete', 'd/c']]);
    // One entry; (index, position) strictly increases within it.
    expect(new Set(events.map((e) => e.index)).size).toBe(1);
    expect(events.map((e) => e.position)).toEqual([0, 1, 2]);
    expect(await kv.deleteRange({ prefix: 'd/' })).toBe(0);
    expect(await kv.deleteRange({ start: 'e/2', end: 'f' })).toBe(1);
    expect(keysOf(await kv.range({ prefix: '' }))).toEqual(['e/1', 'f']);
    expect(await kv.deleteRange({ start: '' })).toBe(2);
    expect((await kv.range({ prefix: '' })).count).toBe(0);
    const bad = await refused(kv.deleteRange({ prefix: 'a', end: 'b' } as never));
    expect([bad.code, bad.message]).toEqual([ErrorCode.INVALID_ARGUMENT, expect.stringMatching(/not both/)]);
  });

  it('serves a stale range from a follower, and refuses a linearizable one there with NOT_LEADER', async () => {
    const cluster = await start();
    const kv = cluster.client();
    await kv.put('x/1', '1');
    const status = await cluster.status();
    const follower = status.nodes.find((n) => n.id !== status.leaderId)!.id;
    // The follower applies the write soon after the leader.
    let keys: string[] = [];
    for (let i = 0; i < 100 && keys.length === 0; i++) {
      keys = keysOf(await kv.range({ prefix: 'x/' }, { consistency: 'stale', nodeId: follower }));
      if (keys.length === 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(keys).toEqual(['x/1']);
    expect((await refused(kv.range({ prefix: 'x/' }, { nodeId: follower }))).code).toBe(ErrorCode.NOT_LEADER);
  });

  it('bounds a page in bytes: large values come a few at a time, with more', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const big = new Uint8Array(400 << 10).fill(1);
    for (let i = 0; i < 5; i++) await kv.put(`big/${i}`, big);
    const page = await kv.range({ prefix: 'big/' });
    expect(page.count).toBe(5);
    expect(page.more).toBe(true);
    expect(page.entries.length).toBeGreaterThanOrEqual(1);
    expect(page.entries.length).toBeLessThan(5);
    expect(page.entries.every((e) => e.value?.length === big.length)).toBe(true);
  });

  it('refuses bad arguments with INVALID_ARGUMENT naming them, and serves on', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const cases: [Promise<unknown>, RegExp][] = [
      [kv.range({ prefix: 'a', start: 'b' } as never), /not both/],
      [kv.range({ prefix: 'a' }, { limit: 0 }), /limit 0/],
      [kv.range({ prefix: 'a' }, { limit: KV_RANGE_ENTRIES_MAX + 1 }), /limit/],
      [kv.range({ prefix: 'a' }, { keysOnly: true, countOnly: true }), /keysOnly and countOnly/],
      [kv.range({ prefix: 'k'.repeat(5000) }), /prefix.*KV_KEY_BYTES_MAX/],
      [kv.range({ from: 'a' } as never), /unknown range field 'from'/],
      [kv.range(null as never), /a range is/],
      [kv.range({ prefix: 'a' }, { consistency: 'eventual' as never }), /consistency/],
    ];
    for (const [call, message] of cases) {
      const error = await refused(call);
      expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
      expect(error.message).toMatch(message);
    }
    await kv.put('still', 'here');
    expect(keysOf(await kv.range({ prefix: 'st' }))).toEqual(['still']);
  });
});
