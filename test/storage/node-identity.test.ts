// Node identities and checked records: a new node's directory gets its identity; a node that
// has run must still have a log (else STATE_LOST); a directory of another node or cluster, or
// a log without an identity, is CONFIG_MISMATCH; a damaged record is CORRUPT_LOG, never
// silently taken as absent.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { codeOf, tempDir } from './helpers.ts';
import { EntryType } from '../../src/core/index.ts';
import { ErrorCode } from '../../src/index.ts';
import { checkNodeDirectory, IDENTITY_FILE, readCheckedRecord, readNodeIdentity, realFileSystem as fs, WalStorage, writeCheckedRecord } from '../../src/storage/index.ts';

function dir(): string {
  return tempDir('ringraft-identity-');
}
/** Gives `d` a log: a WAL with one entry. */
function writeLog(d: string): void {
  const wal = WalStorage.open(d);
  wal.persist({ entries: [{ index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(3) }], hardState: { term: 1, vote: 0, commit: 0 } });
  wal.close();
}

describe('checkNodeDirectory', () => {
  it('writes a new node its identity, then accepts it with its log', () => {
    const d = join(dir(), 'node-1');
    expect(checkNodeDirectory(fs, d, { clusterId: 'c1', nodeId: 1, hasRun: false })).toEqual({ hasLog: false, identityWritten: true });
    expect(readNodeIdentity(fs, d)).toEqual({ clusterId: 'c1', nodeId: 1 });
    writeLog(d);
    expect(checkNodeDirectory(fs, d, { clusterId: 'c1', nodeId: 1, hasRun: true })).toEqual({ hasLog: true, identityWritten: false });
  });

  it('refuses a node that has run but has no log: deleted directory, emptied directory', () => {
    const parent = dir();
    const d = join(parent, 'node-2');
    expect(codeOf(() => checkNodeDirectory(fs, d, { clusterId: 'c1', nodeId: 2, hasRun: true }))).toBe(ErrorCode.STATE_LOST);
    // Refused before anything was written for it.
    expect(readNodeIdentity(fs, d)).toBeUndefined();
    checkNodeDirectory(fs, d, { clusterId: 'c1', nodeId: 2, hasRun: false });
    expect(codeOf(() => checkNodeDirectory(fs, d, { clusterId: 'c1', nodeId: 2, hasRun: true }))).toBe(ErrorCode.STATE_LOST);
  });

  it('refuses another node, another cluster, and a log without an identity', () => {
    const d = join(dir(), 'node-1');
    checkNodeDirectory(fs, d, { clusterId: 'c1', nodeId: 1, hasRun: false });
    writeLog(d);
    expect(codeOf(() => checkNodeDirectory(fs, d, { clusterId: 'c1', nodeId: 3, hasRun: true }))).toBe(ErrorCode.CONFIG_MISMATCH);
    expect(codeOf(() => checkNodeDirectory(fs, d, { clusterId: 'c2', nodeId: 1, hasRun: true }))).toBe(ErrorCode.CONFIG_MISMATCH);
    rmSync(join(d, IDENTITY_FILE));
    expect(codeOf(() => checkNodeDirectory(fs, d, { clusterId: 'c1', nodeId: 1, hasRun: false }))).toBe(ErrorCode.CONFIG_MISMATCH);
  });
});

describe('checked records', () => {
  it('round-trip, and any damage is CORRUPT_LOG', () => {
    const d = dir();
    writeCheckedRecord(fs, d, 'R', { a: 1, b: 'x' });
    expect(readCheckedRecord(fs, join(d, 'R'))).toEqual({ a: 1, b: 'x' });
    expect(readCheckedRecord(fs, join(d, 'missing'))).toBeUndefined();
    const good = readFileSync(join(d, 'R'));
    const damaged = [
      Buffer.from(good.toString().replace('"x"', '"y"')), // a changed byte: checksum mismatch
      good.subarray(0, good.length - 5), // cut short
      Buffer.concat([good, Buffer.from('more\n')]), // extra line
      Buffer.from([0xff, 0xfe, 0x0a]), // not UTF-8
    ];
    for (const bytes of damaged) {
      writeFileSync(join(d, 'R'), bytes);
      expect(codeOf(() => readCheckedRecord(fs, join(d, 'R')))).toBe(ErrorCode.CORRUPT_LOG);
    }
    mkdirSync(join(d, 'node-1'));
    writeCheckedRecord(fs, join(d, 'node-1'), IDENTITY_FILE, { format: 2, clusterId: 'c', nodeId: 1 });
    expect(codeOf(() => readNodeIdentity(fs, join(d, 'node-1')))).toBe(ErrorCode.UNSUPPORTED_FORMAT);
  });
});
