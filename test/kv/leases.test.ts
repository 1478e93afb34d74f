// Leases in the key-value state machine: grants, keys attached by puts (plain and in
// transactions), detached by a put without one or a delete, deleted when the lease is revoked
// or expires; refusals of an unknown lease that change nothing; and the table in snapshots.
// Against a model: a map of keys to their lease, and of leases to their TTL.

import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeKvRequest, decodeTxnResult, encodeKvRequest, KV_LEASE_TTL_MS_MIN, KvError, KvStateMachine, type KvChange, type KvCommand, type KvLogRequest } from '../../src/kv/index.ts';

const bytes = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));
const str = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

/** Client ids for every driver: a restored machine holds its original's sessions, so no two drivers share one. */
let clientNext = 1;

/** A state machine fed one request an entry, with a session per call. */
class Driver {
  readonly machine: KvStateMachine;
  readonly changes: KvChange[] = [];
  constructor(machine = new KvStateMachine()) {
    this.machine = machine;
    machine.onChange((c) => this.changes.push(c));
  }
  run(command: KvCommand) {
    return this.send({ clientId: clientNext++, seq: 1, command });
  }
  send(req: KvLogRequest) {
    return this.machine.apply(this.machine.appliedIndex + 1, encodeKvRequest(req)).result;
  }
  grant(ttlMs = 1000): number {
    const r = this.run({ op: 'lease-grant', ttlMs });
    if (r?.op !== 'lease-grant') throw new Error(`a grant answered ${r?.op}`);
    return r.id;
  }
  keys(): string[] {
    return this.machine.range({}).entries.map((e) => str(e.key));
  }
}

describe('leases', () => {
  it('grant ids from 1 that never repeat, attach keys by put, and delete them in byte order when revoked', () => {
    const d = new Driver();
    const a = d.grant(5000);
    const b = d.grant();
    expect([a, b]).toEqual([1, 2]);
    for (const k of ['z', 'm', 'a']) d.run({ op: 'put', key: bytes(k), value: bytes('v'), lease: a });
    d.run({ op: 'put', key: bytes('other'), value: bytes('v'), lease: b });
    d.run({ op: 'put', key: bytes('free'), value: bytes('v') });
    expect(d.machine.leaseInfo(a)).toEqual({ id: a, ttlMs: 5000, keys: 3 });
    expect(d.machine.leaseOf(bytes('m'))).toBe(a);
    d.changes.length = 0;
    expect(d.run({ op: 'lease-revoke', id: a })).toEqual({ op: 'lease-revoke', found: true, deleted: 3 });
    expect(d.changes.map((c) => [str(c.key), c.value, c.position, c.index])).toEqual([
      ['a', undefined, 0, d.machine.appliedIndex],
      ['m', undefined, 1, d.machine.appliedIndex],
      ['z', undefined, 2, d.machine.appliedIndex],
    ]);
    expect(d.keys()).toEqual(['free', 'other']);
    expect(d.run({ op: 'lease-revoke', id: a })).toEqual({ op: 'lease-revoke', found: false, deleted: 0 });
    // An expiry (no session) ends lease b the same way; a second one finds nothing.
    expect(d.send({ op: 'lease-expire', id: b })).toEqual({ op: 'lease-revoke', found: true, deleted: 1 });
    expect(d.send({ op: 'lease-expire', id: b })).toEqual({ op: 'lease-revoke', found: false, deleted: 0 });
    expect(d.keys()).toEqual(['free']);
    expect(d.grant()).toBe(3);
  });

  it('detach a key from its lease on a put without it, a put with another, a cas, or a delete', () => {
    const d = new Driver();
    const a = d.grant();
    const b = d.grant();
    for (const k of ['p', 'q', 'r', 's']) d.run({ op: 'put', key: bytes(k), value: bytes('v'), lease: a });
    d.run({ op: 'put', key: bytes('p'), value: bytes('w') });
    d.run({ op: 'put', key: bytes('q'), value: bytes('w'), lease: b });
    d.run({ op: 'cas', key: bytes('r'), expected: bytes('v'), value: bytes('w') });
    d.run({ op: 'delete', key: bytes('s') });
    expect(d.machine.leaseInfo(a)?.keys).toBe(0);
    expect(d.run({ op: 'lease-revoke', id: a })).toEqual({ op: 'lease-revoke', found: true, deleted: 0 });
    expect(d.keys()).toEqual(['p', 'q', 'r']);
    expect(d.run({ op: 'lease-revoke', id: b })).toEqual({ op: 'lease-revoke', found: true, deleted: 1 });
    expect(d.keys()).toEqual(['p', 'r']);
  });

  it('refuse a put, or a whole transaction, naming a lease that does not exist, and change nothing', () => {
    const d = new Driver();
    const a = d.grant();
    expect(d.run({ op: 'put', key: bytes('k'), value: bytes('v'), lease: a + 1 })).toEqual({ op: 'refused', code: 'LEASE_NOT_FOUND' });
    const r = d.run({ op: 'txn', txn: { compares: [], then: [{ op: 'put', key: bytes('x'), value: bytes('1'), lease: a }, { op: 'put', key: bytes('y'), value: bytes('1'), lease: 99 }], else: [] } });
    expect(r).toEqual({ op: 'refused', code: 'LEASE_NOT_FOUND' });
    expect(d.keys()).toEqual([]);
    expect(d.changes).toEqual([]);
    // The branch that runs is the one checked: a bad lease in the other list does not matter.
    const ok = d.run({ op: 'txn', txn: { compares: [], then: [{ op: 'put', key: bytes('x'), value: bytes('1'), lease: a }], else: [{ op: 'put', key: bytes('y'), value: bytes('1'), lease: 99 }] } });
    if (ok?.op !== 'txn') throw new Error('not a txn');
    expect(decodeTxnResult(ok.encoded).succeeded).toBe(true);
    expect(d.machine.leaseOf(bytes('x'))).toBe(a);
  });

  it('encode every lease request both ways, and refuse a bad TTL or id', () => {
    for (const req of [
      { clientId: 3, seq: 2, command: { op: 'lease-grant', ttlMs: KV_LEASE_TTL_MS_MIN } },
      { clientId: 3, seq: 2, command: { op: 'lease-revoke', id: 2 ** 53 - 1 } },
      { clientId: 3, seq: 2, command: { op: 'put', key: bytes('k'), value: bytes('v'), lease: 7 } },
      { op: 'lease-expire', id: 9 },
    ] as KvLogRequest[]) {
      expect(decodeKvRequest(encodeKvRequest(req))).toEqual(req);
    }
    for (const [req, message] of [
      [{ clientId: 3, seq: 2, command: { op: 'lease-grant', ttlMs: KV_LEASE_TTL_MS_MIN - 1 } }, /ttlMs 99/],
      [{ clientId: 3, seq: 2, command: { op: 'lease-revoke', id: 0 } }, /lease id 0/],
      [{ clientId: 3, seq: 2, command: { op: 'put', key: bytes('k'), value: bytes('v'), lease: 1.5 } }, /lease 1.5/],
      [{ op: 'lease-expire', id: -1 }, /lease id -1/],
    ] as [KvLogRequest, RegExp][]) {
      expect(() => encodeKvRequest(req)).toThrow(KvError);
      expect(() => encodeKvRequest(req)).toThrow(message);
    }
  });

  it('follow a model through grants, puts, deletes, revokes and expiries, and survive a snapshot exactly', () => {
    type Step = { op: 'grant' } | { op: 'put'; key: number; lease: number } | { op: 'delete'; key: number } | { op: 'revoke'; lease: number } | { op: 'expire'; lease: number };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.constant({ op: 'grant' as const }),
      fc.record({ op: fc.constant('put' as const), key: fc.integer({ min: 0, max: 7 }), lease: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ op: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ op: fc.constant('revoke' as const), lease: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ op: fc.constant('expire' as const), lease: fc.integer({ min: 1, max: 5 }) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const d = new Driver();
        const keys = new Map<string, number>();
        const leases = new Set<number>();
        let next = 1;
        const end = (lease: number): void => {
          leases.delete(lease);
          for (const [k, l] of [...keys]) if (l === lease) keys.delete(k);
        };
        for (const s of steps) {
          if (s.op === 'grant') {
            expect(d.grant()).toBe(next);
            leases.add(next++);
          } else if (s.op === 'put') {
            const key = `k${s.key}`;
            const r = d.run({ op: 'put', key: bytes(key), value: bytes('v'), ...(s.lease === 0 ? {} : { lease: s.lease }) });
            if (s.lease !== 0 && !leases.has(s.lease)) expect(r).toEqual({ op: 'refused', code: 'LEASE_NOT_FOUND' });
            else keys.set(key, s.lease);
          } else if (s.op === 'delete') {
            d.run({ op: 'delete', key: bytes(`k${s.key}`) });
            keys.delete(`k${s.key}`);
          } else {
            const held = [...keys.values()].filter((l) => l === s.lease).length;
            const r = s.op === 'revoke' ? d.run({ op: 'lease-revoke', id: s.lease }) : d.send({ op: 'lease-expire', id: s.lease });
            expect(r).toEqual({ op: 'lease-revoke', found: leases.has(s.lease), deleted: leases.has(s.lease) ? held : 0 });
            end(s.lease);
          }
        }
        expect(d.keys()).toEqual([...keys.keys()].sort());
        for (const [k, l] of keys) expect(d.machine.leaseOf(bytes(k))).toBe(l);
        expect([...d.machine.leases()].map((l) => [l.id, l.keys])).toEqual([...leases].map((l) => [l, [...keys.values()].filter((x) => x === l).length]));
        // A restored replica holds the same table, writes the same bytes, and ends a lease the same way.
        const restored = new Driver(KvStateMachine.restore(d.machine.snapshot()));
        expect(restored.machine.snapshot()).toEqual(d.machine.snapshot());
        for (const l of leases) {
          expect(restored.send({ op: 'lease-expire', id: l })).toEqual(d.send({ op: 'lease-expire', id: l }));
        }
        expect(restored.changes.map((c) => str(c.key))).toEqual(d.changes.slice(d.changes.length - restored.changes.length).map((c) => str(c.key)));
        expect(restored.grant()).toBe(d.grant());
      }),
      { numRuns: 300 },
    );
  });
});
