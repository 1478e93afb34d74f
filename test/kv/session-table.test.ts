/**
 * SessionTable (src/kv/session-table.ts) against the Map it replaced as the model: a Map
 * whose order is kept by a delete and a set per write. Evictions and snapshots go by that
 * order on every replica, so the two must agree on it exactly.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KV_CLIENT_ID_REGISTERED_FIRST, SessionTable, sessionKeyOf } from '../../src/kv/session-table.ts';

type Op = { kind: 'write'; id: number } | { kind: 'evict' };

describe('SessionTable', () => {
  it('keys every client id apart, registered ones as small integers', () => {
    const edge = KV_CLIENT_ID_REGISTERED_FIRST + 0x8000_0000;
    const idArb = fc.oneof(
      fc.integer({ min: 1, max: 0x8000_0000 }),
      fc.integer({ min: KV_CLIENT_ID_REGISTERED_FIRST - 4, max: KV_CLIENT_ID_REGISTERED_FIRST + 4 }),
      fc.integer({ min: edge - 4, max: edge + 4 }),
      fc.integer({ min: KV_CLIENT_ID_REGISTERED_FIRST, max: Number.MAX_SAFE_INTEGER }),
      fc.constantFrom(1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, Number.MAX_SAFE_INTEGER),
    );
    fc.assert(
      fc.property(fc.uniqueArray(idArb, { maxLength: 60 }), (ids) => {
        const keys = ids.map(sessionKeyOf);
        expect(new Set(keys).size).toBe(ids.length);
        for (const id of ids) if (id >= KV_CLIENT_ID_REGISTERED_FIRST && id < edge) expect(sessionKeyOf(id)).toBe(sessionKeyOf(id) | 0);
        // The table finds each by its id, and evicts them in the order they came.
        const table = new SessionTable();
        ids.forEach((id, i) => table.add(id, 1, i, { op: 'put' }));
        for (const id of ids) expect(table.get(id)?.clientId).toBe(id);
        for (const id of ids) expect(table.evictOldest().clientId).toBe(id);
        expect(table.size).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps the sessions in the order of their last write, as a Map with delete and set does', () => {
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ kind: fc.constant('write' as const), id: fc.integer({ min: 1, max: 12 }) }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'evict' as const }) },
    );
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 300 }), (ops) => {
        const table = new SessionTable();
        const model = new Map<number, number>();
        ops.forEach((op, index) => {
          if (op.kind === 'evict') {
            const oldest = model.keys().next();
            if (oldest.done === true) return;
            expect(table.evictOldest().clientId).toBe(oldest.value);
            model.delete(oldest.value);
          } else {
            const session = table.get(op.id);
            if (session === undefined) {
              table.add(op.id, 1, index, { op: 'put' });
            } else {
              session.lastIndex = index;
              table.touch(session);
            }
            model.delete(op.id);
            model.set(op.id, index);
          }
          expect(table.size).toBe(model.size);
        });
        expect([...table.values()].map((s) => [s.clientId, s.lastIndex])).toEqual([...model]);
        for (const id of model.keys()) expect(table.has(id)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses to add a session twice and to evict from an empty table', () => {
    const table = new SessionTable();
    table.add(1, 1, 1, { op: 'put' });
    expect(() => table.add(1, 2, 2, { op: 'put' })).toThrow(/is new/);
    table.evictOldest();
    expect(() => table.evictOldest()).toThrow(/to evict/);
  });
});
