/**
 * Transactions through the client of a real cluster (nodes on worker threads): optimistic
 * concurrency without lost updates, multi-key moves that no reader sees half done, what a
 * watch sees of them, and bad arguments refused with INVALID_ARGUMENT before anything is sent.
 */

import { describe, expect, it } from 'vitest';
import { ErrorCode, type KvClient } from '../../src/index.ts';
import { KV_TXN_OPS_MAX } from '../../src/kv/index.ts';
import { refused, start, stopAfterEach } from './helpers.ts';

stopAfterEach();

const text = new TextDecoder();
const num = (b: Uint8Array | undefined): number => Number(text.decode(b));

/** Adds 1 to the counter at `key` by read, then compare-on-modIndex-and-put; retries until its compare holds. Returns the attempts. */
async function increment(kv: KvClient, key: string): Promise<number> {
  for (let attempt = 1; attempt <= 1000; attempt++) {
    const e = await kv.getEntry(key);
    const t = await kv.txn({
      if: [{ key, target: 'modIndex', op: '=', value: e?.modIndex ?? 0 }],
      then: [{ op: 'put', key, value: String(num(e?.value) + 1) }],
    });
    if (t.succeeded) return attempt;
  }
  throw new Error('no increment in 1000 attempts');
}

describe('txn', () => {
  it('optimistic increments from many clients at once lose no update', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const workers = 8;
    const each = 15;
    const attempts = await Promise.all(
      Array.from({ length: workers }, async () => {
        let n = 0;
        for (let i = 0; i < each; i++) n += await increment(kv, 'counter');
        return n;
      }),
    );
    expect(num(await kv.get('counter'))).toBe(workers * each);
    // Contention happened: some compares failed and were retried (else this proves little).
    expect(attempts.reduce((a, b) => a + b, 0)).toBeGreaterThan(workers * each);
  });

  it('moves between keys that no reader, range or transaction, sees half done', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const accounts = ['acct/a', 'acct/b', 'acct/c', 'acct/d'];
    await kv.txn({ then: accounts.map((key) => ({ op: 'put' as const, key, value: '100' })) });
    let stop = false;
    const mover = (async () => {
      for (let i = 0; i < 60; i++) {
        const from = accounts[i % 4]!;
        const to = accounts[(i * 3 + 1) % 4]!;
        const snapshot = await kv.range({ prefix: 'acct/' });
        const balance = new Map(snapshot.entries.map((e) => [text.decode(e.key), e]));
        const f = balance.get(from)!;
        const t = balance.get(to)!;
        if (from === to) continue;
        await kv.txn({
          if: [
            { key: from, target: 'modIndex', op: '=', value: f.modIndex },
            { key: to, target: 'modIndex', op: '=', value: t.modIndex },
          ],
          then: [
            { op: 'put', key: from, value: String(num(f.value) - 7) },
            { op: 'put', key: to, value: String(num(t.value) + 7) },
          ],
        });
      }
      stop = true;
    })();
    const sums: number[] = [];
    const reader = (async () => {
      while (!stop) {
        const r = await kv.range({ prefix: 'acct/' });
        sums.push(r.entries.reduce((a, e) => a + num(e.value), 0));
        const t = await kv.txn({ then: accounts.map((key) => ({ op: 'get' as const, key })) });
        sums.push(t.results.reduce((a, x) => a + (x.op === 'get' ? num(x.entry?.value) : 0), 0));
      }
    })();
    await Promise.all([mover, reader]);
    expect(sums.length).toBeGreaterThan(2);
    expect(new Set(sums)).toEqual(new Set([400]));
  });

  it('is seen by a watch as changes of one index, in order, and its else branch runs when a compare fails', async () => {
    const cluster = await start();
    const kv = cluster.client();
    await kv.put('w/old', 'x');
    const watch = kv.watch('w/');
    const events: { type: string; key: string; index: number; position: number }[] = [];
    const done = (async () => {
      for await (const e of watch) {
        events.push({ type: e.type, key: text.decode(e.key), index: e.index, position: e.position });
        if (events.length === 3) break;
      }
    })();
    const miss = await kv.txn({ if: [{ key: 'w/old', target: 'value', op: '=', value: 'y' }], then: [{ op: 'put', key: 'w/never', value: '1' }], else: [{ op: 'get', key: 'w/old' }] });
    expect(miss.succeeded).toBe(false);
    const got = miss.results[0];
    expect(got?.op === 'get' && [text.decode(got.entry?.value), got.entry?.version]).toEqual(['x', 1]);
    const hit = await kv.txn({
      if: [{ key: 'w/old', target: 'value', op: '=', value: 'x' }],
      then: [{ op: 'put', key: 'w/new', value: '1' }, { op: 'deleteRange', prefix: 'w/o' }, { op: 'put', key: 'w/z', value: '2' }],
    });
    expect(hit.succeeded).toBe(true);
    expect(hit.results).toEqual([{ op: 'put' }, { op: 'deleteRange', deleted: 1 }, { op: 'put' }]);
    await done;
    expect(events).toEqual([
      { type: 'put', key: 'w/new', index: hit.index, position: 0 },
      { type: 'delete', key: 'w/old', index: hit.index, position: 1 },
      { type: 'put', key: 'w/z', index: hit.index, position: 2 },
    ]);
  });

  it('refuses bad arguments with INVALID_ARGUMENT naming them, and serves on', async () => {
    const cluster = await start();
    const kv = cluster.client();
    const cases: [unknown, RegExp][] = [
      [null, /a transaction is/],
      [{ when: [] }, /unknown transaction field 'when'/],
      [{ then: 'put' }, /txn then must be an array/],
      [{ then: [{ op: 'upsert', key: 'k' }] }, /txn then\[0\]\.op must be/],
      [{ then: [{ op: 'put', key: '', value: 'v' }] }, /txn then\[0\]\.key is empty/],
      [{ if: [{ key: 'k', target: 'version', op: '=', value: 'one' }] }, /txn if\[0\]\.value must be an integer/],
      [{ if: [{ key: 'k', target: 'value', op: '~', value: 'v' }] }, /txn if\[0\]\.op must be/],
      [{ else: [{ op: 'range', prefix: 'a', start: 'b' }] }, /give a prefix, or start and end/],
      [{ then: Array.from({ length: KV_TXN_OPS_MAX + 1 }, () => ({ op: 'delete', key: 'k' })) }, /txn then holds 129, over the 128 allowed/],
    ];
    for (const [spec, message] of cases) {
      const e = await refused(kv.txn(spec as never));
      expect(e.code).toBe(ErrorCode.INVALID_ARGUMENT);
      expect(e.message).toMatch(message);
    }
    expect((await kv.txn({})).succeeded).toBe(true);
  });
});
