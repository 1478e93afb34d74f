// Proves `ringraft wal verify` and `ringraft wal dump` work as users run them: the built bin,
// in a child process, on logs written by WalStorage: verify reports segments, records,
// entries, index range, hard state and snapshot and exits 0 on a sound log, reports a torn
// tail without changing the directory, and exits 1 naming file and byte on corruption; dump
// prints every record (one per line, or JSON lines); bad arguments exit 2. A directory with no
// segment (empty, or holding other files) is refused with exit 1, never "ok"; a cluster's data
// directory (node-<id> WAL directories) is verified node by node, exit 1 if any node's WAL is
// corrupt or empty, and dump asks for one node (exit 2); a file that cannot be read is one line
// and exit 1, never a stack trace. `npm test` builds first; run `npx tsc -p tsconfig.json`
// before running this file alone.
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { emptyConfState } from '../../src/core/index.ts';
import { WalStorage } from '../../src/storage/index.ts';
import { expectOneLineError } from '../cli/helpers.ts';
import { ent, ents, freshDir, tempDir } from './helpers.ts';

const bin = join(import.meta.dirname, '../../bin/ringraft.js');
const root = tempDir('ringraft-wal-cli-');

function run(args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
}

/** A log of 2+ segments: entries 1..30 (a truncation at 10), a snapshot at 5, hard state (2, 1, 29). */
function makeLog(): string {
  const dir = freshDir(root);
  const s = WalStorage.open(dir, { segmentSizeBytesMax: 4096 });
  s.append(ents(1, Array(12).fill(1), 100));
  for (let i = 10; i <= 30; i++) s.persist({ entries: [ent(i, 2, 100)], hardState: { term: 2, vote: 1, commit: i - 1 } });
  s.createSnapshot(5, emptyConfState([1, 2, 3]), new Uint8Array(10));
  s.close();
  return dir;
}

/**
 * A cluster's data directory as the cluster lays it out: one WAL directory `node-<id>` per
 * node, and a file of the cluster's own beside them.
 */
function makeDataDir(nodes = 3): string {
  const dataDir = freshDir(root);
  for (let id = 1; id <= nodes; id++) {
    const s = WalStorage.open(join(dataDir, `node-${id}`));
    for (const e of ents(1, [1, 1, 1])) s.persist({ entries: [e], hardState: { term: 1, vote: 1, commit: e.index } });
    s.close();
  }
  writeFileSync(join(dataDir, 'client-ids'), '1025\n');
  return dataDir;
}

function lastSegment(dir: string): string {
  return join(dir, readdirSync(dir).filter((n) => n.endsWith('.wal')).sort().at(-1)!);
}

describe('ringraft wal', () => {
  it('verifies a sound log and prints what it holds', () => {
    const dir = makeLog();
    const r = run(['wal', 'verify', dir]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${dir}: ok`);
    expect(r.stdout).toMatch(/segments {4}[2-9]/);
    expect(r.stdout).toContain('entries     25 (index 6..30)');
    expect(r.stdout).toContain('hard state  term 2, vote 1, commit 29');
    expect(r.stdout).toContain('snapshot    index 5, term 1, 10 bytes of data (snapshot-00000000000000000005.snap)');
    expect(r.stdout).toMatch(/records {5}\d+ in \d+ batches/);

    const j = run(['wal', 'verify', dir, '--json']);
    expect(j.status).toBe(0);
    const summary = JSON.parse(j.stdout);
    expect(summary).toMatchObject({ ok: true, entries: 25, firstIndex: 6, lastIndex: 30, hardState: { term: 2, vote: 1, commit: 29 }, tornTail: null });
    expect(summary.segments.length).toBeGreaterThanOrEqual(2);
  });

  it('dumps every record, as text or JSON lines', () => {
    const dir = makeLog();
    const summary = JSON.parse(run(['wal', 'verify', dir, '--json']).stdout);
    const text = run(['wal', 'dump', dir]);
    expect(text.status).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines.length).toBe(summary.records);
    expect(lines[0]).toMatch(/^00000000000000000001\.wal@32 +hard-state +term=0 vote=0 commit=0$/);
    expect(text.stdout).toMatch(/truncation +index=10/);
    expect(text.stdout).toMatch(/entry +index=30 term=2 entryType=normal dataBytes=100/);

    const json = run(['wal', 'dump', dir, '--json']);
    expect(json.status).toBe(0);
    const records = json.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(records.length).toBe(summary.records);
    expect(records.filter((r) => r.type === 'commit').length).toBe(summary.batches);
    expect(records.find((r) => r.type === 'snapshot')).toMatchObject({ index: 5, term: 1, kind: 'compact', snapshotFile: 'snapshot-00000000000000000005.snap' });
    expect(records.find((r) => r.type === 'entry' && r.index === 12)).toMatchObject({ file: '00000000000000000001.wal', term: 1, dataBytes: 100 });
  });

  it('reports a torn tail, exits 0 and changes nothing', () => {
    const dir = makeLog();
    const file = lastSegment(dir);
    appendFileSync(file, Buffer.from('torn write'));
    const size = statSync(file).size;
    const r = run(['wal', 'verify', dir]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/torn tail +\d+\.wal at byte \d+: .*opening the log cuts \d+ bytes from byte \d+/);
    expect(statSync(file).size).toBe(size);
    const d = run(['wal', 'dump', dir]);
    expect(d.status).toBe(0);
    expect(d.stderr).toMatch(/torn tail/);
  });

  it('exits 1 with the CORRUPT_LOG message naming file and byte', () => {
    const dir = makeLog();
    const first = join(dir, '00000000000000000001.wal');
    const bytes = readFileSync(first);
    bytes[150] ^= 0xff;
    writeFileSync(first, bytes);
    for (const action of ['verify', 'dump']) {
      const r = run(['wal', action, dir]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^ringraft: corrupt WAL: 00000000000000000001\.wal at byte 88: batch at byte 88: batch checksum mismatch/);
    }
    const j = run(['wal', 'verify', dir, '--json']);
    expect(j.status).toBe(1);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, error: expect.stringContaining('at byte 88') });
  });

  it('exits 1 with the UNSUPPORTED_FORMAT message for a log of another format version', () => {
    const dir = makeLog();
    const first = join(dir, '00000000000000000001.wal');
    const bytes = readFileSync(first);
    bytes[4] = 2;
    bytes.writeUInt32LE(crc32(bytes.subarray(0, 28)), 28);
    writeFileSync(first, bytes);
    for (const action of ['verify', 'dump']) {
      const r = run(['wal', action, dir]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^ringraft: unsupported WAL: 00000000000000000001\.wal at byte 4: format version 2; this build reads version 3 only/);
    }
  });

  it('refuses a directory without segments with exit 1, for verify and dump', () => {
    const empty = freshDir(root);
    mkdirSync(empty);
    const others = freshDir(root);
    mkdirSync(others);
    writeFileSync(join(others, 'notes.txt'), 'not a log\n');
    for (const dir of [empty, others]) {
      for (const action of ['verify', 'dump']) {
        const r = run(['wal', action, dir]);
        expect(r.status, `${action} ${dir}`).toBe(1);
        expect(r.stdout).toBe('');
        expectOneLineError(r.stderr, new RegExp(`^ringraft: no WAL segments found in ${dir}`));
      }
      const j = run(['wal', 'verify', dir, '--json']);
      expect(j.status).toBe(1);
      expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, error: expect.stringContaining('no WAL segments found') });
    }
  });

  it("verifies a cluster's data directory node by node", () => {
    const dataDir = makeDataDir();
    const r = run(['wal', 'verify', dataDir]);
    expect(r.status, r.stderr).toBe(0);
    for (let id = 1; id <= 3; id++) expect(r.stdout).toContain(`${join(dataDir, `node-${id}`)}: ok\nsegments    1\n`);
    expect(r.stdout.match(/entries {5}3 \(index 1\.\.3\)/g)?.length).toBe(3);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe(`${dataDir}: ok, all 3 node WALs (node-1, node-2, node-3)`);

    const j = run(['wal', 'verify', dataDir, '--json']);
    expect(j.status).toBe(0);
    const summary = JSON.parse(j.stdout);
    expect(summary).toMatchObject({ ok: true, dataDir });
    expect(summary.nodes.map((n: { node: string; ok: boolean; entries: number }) => [n.node, n.ok, n.entries])).toEqual([
      ['node-1', true, 3],
      ['node-2', true, 3],
      ['node-3', true, 3],
    ]);
  });

  it("exits 1 when a node's WAL in a cluster's data directory is corrupt or empty, and reports every node", () => {
    const dataDir = makeDataDir();
    const segment = join(dataDir, 'node-2', '00000000000000000001.wal');
    const bytes = readFileSync(segment);
    // Inside the second of four batches: intact batches follow, so it is corruption, not a torn write.
    bytes[100] ^= 0xff;
    writeFileSync(segment, bytes);
    rmSync(join(dataDir, 'node-3'), { recursive: true });
    mkdirSync(join(dataDir, 'node-3'));
    const r = run(['wal', 'verify', dataDir]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`${join(dataDir, 'node-1')}: ok`);
    expect(r.stdout).toMatch(new RegExp(`${join(dataDir, 'node-2')}: BAD: corrupt WAL: 00000000000000000001\\.wal at byte \\d+`));
    expect(r.stdout).toContain(`${join(dataDir, 'node-3')}: BAD: no WAL segments found in ${join(dataDir, 'node-3')}`);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe(`${dataDir}: 1 of 3 node WALs ok; bad: node-2, node-3`);
    expectOneLineError(r.stderr, /bad node WALs: node-2, node-3/);

    const j = run(['wal', 'verify', dataDir, '--json']);
    expect(j.status).toBe(1);
    const summary = JSON.parse(j.stdout);
    expect(summary.ok).toBe(false);
    expect(summary.nodes.map((n: { node: string; ok: boolean }) => [n.node, n.ok])).toEqual([
      ['node-1', true],
      ['node-2', false],
      ['node-3', false],
    ]);
    expect(summary.nodes[1].error).toMatch(/^corrupt WAL: /);
  });

  it("asks for one node's directory when dumping a cluster's data directory", () => {
    const dataDir = makeDataDir(2);
    const r = run(['wal', 'dump', dataDir]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expectOneLineError(r.stderr, new RegExp(`cluster's data directory; dump one node's WAL: ${join(dataDir, 'node-1')}, ${join(dataDir, 'node-2')}`));
    const one = run(['wal', 'dump', join(dataDir, 'node-2')]);
    expect(one.status).toBe(0);
    expect(one.stdout).toMatch(/entry +index=3 term=1/);
  });

  it('refuses a directory that holds both segments and node directories', () => {
    const dir = makeLog();
    mkdirSync(join(dir, 'node-1'));
    const r = run(['wal', 'verify', dir]);
    expect(r.status).toBe(2);
    expectOneLineError(r.stderr, /holds both WAL segments and node directories \(node-1\)/);
  });

  it('reports a segment it cannot read in one line with exit 1, no stack trace', () => {
    const dir = freshDir(root);
    mkdirSync(join(dir, '00000000000000000001.wal'), { recursive: true });
    for (const action of ['verify', 'dump']) {
      const r = run(['wal', action, dir]);
      expect(r.status, action).toBe(1);
      expectOneLineError(r.stderr, /cannot read the WAL in .*: EISDIR/);
    }
  });

  it('rejects bad arguments with exit code 2', () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    for (const args of [['wal'], ['wal', 'verify'], ['wal', 'fix', root], ['wal', 'verify', join(root, 'nope')], ['wal', 'dump', root, 'x'], ['wal', 'verify', root, '--bogus'], ['wal', 'dump', file]]) {
      const r = run(args);
      expect(r.status, args.join(' ')).toBe(2);
      expectOneLineError(r.stderr, /ringraft: /);
    }
    expect(run(['wal', 'verify', join(root, 'nope')]).stderr).toMatch(/nope does not exist/);
    expect(run(['wal', 'dump', file]).stderr).toMatch(/a-file is not a directory/);
  });

  it('tells in its usage that it verifies a cluster and what each exit code means', () => {
    const r = run(['wal', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("a cluster's data directory");
    expect(r.stdout).toContain('node-<id>');
    expect(r.stdout).toContain('holds no WAL segment');
  });
});
