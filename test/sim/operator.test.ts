// Proves the simulator's start guard refuses exactly the starts an operator must not make:
// a member that has run but whose disk holds no log (STATE_LOST, in both storage modes), a
// node the cluster's record does not list, and bootstrap voters other than the record's
// (CONFIG_MISMATCH, leaving no identity file behind); and that it lets through the starts a
// cluster makes every day (first start, restart with a log, a new member). Each check can be
// skipped on its own, as the planted operator bugs do.
import { ErrorCode, RingraftError } from '../../src/base/index.ts';
import { describe, expect, it } from 'vitest';
import { Rand } from '../../src/core/index.ts';
import { addSimMember, checkSimStart, newSimRecord, noteSimStarted, type SimDisk } from '../../src/sim/operator.ts';
import { SimFileSystem } from '../../src/sim/sim-fs.ts';
import { IDENTITY_FILE, WalStorage, readNodeIdentity } from '../../src/storage/index.ts';

const ALL = { configuration: true, directory: true };

function refusal(run: () => void): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (error instanceof RingraftError) return error.code;
    throw error;
  }
}

/** Node `id`'s first start on a fresh simulated disk: guard, then the WAL makes its log. */
function firstStart(fs: SimFileSystem, record: ReturnType<typeof newSimRecord>, id: number, voters: readonly number[]): SimDisk {
  const disk: SimDisk = { kind: 'wal', fs, dir: `/n${id}` };
  checkSimStart(record, id, voters, disk, ALL);
  WalStorage.open(`/n${id}`, { fs }).close();
  noteSimStarted(record, id);
  return disk;
}

describe('the simulator start guard', () => {
  it('gives an original member the first configuration at every start (used only while its log is pristine), and refuses any other', () => {
    const record = newSimRecord(7, 3);
    const fs = new SimFileSystem();
    const disk = firstStart(fs, record, 1, [3, 2, 1]);
    expect(readNodeIdentity(fs, '/n1')).toEqual({ clusterId: record.clusterId, nodeId: 1 });
    expect(refusal(() => checkSimStart(record, 1, [1, 2, 3], disk, ALL))).toBeUndefined();
    expect(refusal(() => checkSimStart(record, 1, [], disk, ALL))).toBe(ErrorCode.CONFIG_MISMATCH);
    expect(refusal(() => checkSimStart(record, 1, [1, 2], disk, ALL))).toBe(ErrorCode.CONFIG_MISMATCH);
  });

  it('refuses a member that has run and whose directory was wiped, unless the check is skipped', () => {
    const record = newSimRecord(7, 3);
    const fs = new SimFileSystem();
    const disk = firstStart(fs, record, 2, [1, 2, 3]);
    fs.crash(new Rand(1));
    expect(fs.wipe('/n2')).toBeGreaterThan(1);
    expect(fs.paths()).toEqual([]);
    expect(refusal(() => checkSimStart(record, 2, [1, 2, 3], disk, ALL))).toBe(ErrorCode.STATE_LOST);
    expect(refusal(() => checkSimStart(record, 2, [1, 2, 3], disk, { configuration: false, directory: true }))).toBe(ErrorCode.STATE_LOST);
    expect(refusal(() => checkSimStart(record, 2, [1, 2, 3], disk, { configuration: true, directory: false }))).toBeUndefined();
  });

  it('refuses, in memory mode, a member that has run whose in-memory log is gone', () => {
    const record = newSimRecord(1, 3);
    expect(refusal(() => checkSimStart(record, 3, [1, 2, 3], { kind: 'memory', hasLog: false }, ALL))).toBeUndefined();
    noteSimStarted(record, 3);
    expect(refusal(() => checkSimStart(record, 3, [1, 2, 3], { kind: 'memory', hasLog: true }, ALL))).toBeUndefined();
    expect(refusal(() => checkSimStart(record, 3, [1, 2, 3], { kind: 'memory', hasLog: false }, ALL))).toBe(ErrorCode.STATE_LOST);
  });

  it('refuses extra nodes from a wrong node count and leaves no identity behind', () => {
    const record = newSimRecord(7, 3);
    const fs = new SimFileSystem();
    const disk: SimDisk = { kind: 'wal', fs, dir: '/n4' };
    expect(refusal(() => checkSimStart(record, 4, [1, 2, 3, 4, 5], disk, ALL))).toBe(ErrorCode.CONFIG_MISMATCH);
    expect(fs.paths()).toEqual([]);
    // With the configuration check skipped, it gets as far as writing its identity (and would bootstrap).
    expect(refusal(() => checkSimStart(record, 4, [1, 2, 3, 4, 5], disk, { configuration: false, directory: true }))).toBeUndefined();
    expect(fs.paths()).toEqual([`/n4/${IDENTITY_FILE}`]);
  });

  it('starts a new member with no voters, and refuses one given voters of its own', () => {
    const record = newSimRecord(7, 3);
    addSimMember(record, 4);
    const fs = new SimFileSystem();
    const disk: SimDisk = { kind: 'wal', fs, dir: '/n4' };
    expect(refusal(() => checkSimStart(record, 4, [4], disk, ALL))).toBe(ErrorCode.CONFIG_MISMATCH);
    expect(refusal(() => checkSimStart(record, 4, [1, 2, 3, 4], disk, ALL))).toBe(ErrorCode.CONFIG_MISMATCH);
    expect(refusal(() => checkSimStart(record, 4, [1, 2, 3], disk, ALL))).toBe(ErrorCode.CONFIG_MISMATCH);
    expect(refusal(() => checkSimStart(record, 4, [], disk, ALL))).toBeUndefined();
    expect(() => addSimMember(record, 4)).toThrow(/handed out before/);
  });

  it("refuses a directory that holds another node's identity", () => {
    const record = newSimRecord(7, 3);
    const fs = new SimFileSystem();
    firstStart(fs, record, 1, [1, 2, 3]);
    expect(refusal(() => checkSimStart(record, 2, [1, 2, 3], { kind: 'wal', fs, dir: '/n1' }, ALL))).toBe(ErrorCode.CONFIG_MISMATCH);
  });
});
