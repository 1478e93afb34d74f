// The member table of a node server: kept in its data directory over --initial-cluster, and
// what a peer may send as one.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode, RingraftError } from '../../src/base/index.ts';
import { decodeMemberTable, encodeMemberTable, MEMBER_TABLE, PeerTable } from '../../src/server/members.ts';
import { tempDirs } from './helpers.ts';

const dirs = tempDirs();
const at = (port: number) => ({ host: '127.0.0.1', port });

describe('PeerTable', () => {
  it('starts from --initial-cluster, and after a change from its record, which wins', () => {
    const dir = dirs();
    const initial = new Map([[1, at(7001)], [2, at(7002)], [3, at(7003)]]);
    const t = new PeerTable(dir, initial);
    expect(t.describe()).toBe('1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003');
    expect(t.apply({ members: new Map([[4, at(7004)]]) }, 1)).toBe(true);
    expect(t.apply({ members: new Map([[4, at(7004)]]) }, 1)).toBe(false);
    expect(t.apply({ members: new Map(), removed: [2] }, 1)).toBe(true);
    // A removed id does not come back, and a node's own entry is its own.
    expect(t.apply({ members: new Map([[2, at(7002)], [1, at(9999)]]) }, 1)).toBe(false);
    const again = new PeerTable(dir, initial);
    expect(again.describe()).toBe('1=127.0.0.1:7001,3=127.0.0.1:7003,4=127.0.0.1:7004');
    expect(again.removed()).toEqual([2]);
  });

  it('refuses a damaged record with a typed error, and a peer message that is not a table', () => {
    const dir = dirs();
    writeFileSync(join(dir, 'PEERS'), 'not a record');
    let error: unknown;
    try {
      new PeerTable(dir, new Map());
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RingraftError);
    expect((error as RingraftError).code).toBe(ErrorCode.CORRUPT_LOG);
    const t = new PeerTable(dirs(), new Map([[1, at(7001)]]));
    expect(decodeMemberTable(encodeMemberTable(t))).toEqual({ members: new Map([[1, at(7001)]]), removed: [] });
    const bad = (json: string) => decodeMemberTable(Uint8Array.of(MEMBER_TABLE, ...new TextEncoder().encode(json)));
    expect(bad('{')).toBeUndefined();
    expect(bad('{"members":{"x":"127.0.0.1:1"},"removed":[]}')).toBeUndefined();
    expect(bad('{"members":{"1":"localhost:1"},"removed":[]}')).toBeUndefined();
    expect(bad('{"members":{},"removed":[0]}')).toBeUndefined();
    expect(bad('[]')).toBeUndefined();
  });
});
