// Proves recovery's promise, case by named case: a torn tail (the file cut at any record
// boundary or inside any record of the last batch, garbage after the tail, a torn segment
// creation) is cut off and the node starts with everything before it intact; zeroed space
// after the tail (preallocation) is fine; damage anywhere else (a flipped byte in any field of
// any record (an entries frame's first index, term, count, reserved word, entry header and
// data included), or in the batch CRC, before the last batch, a bad segment header, a missing
// segment or snapshot file, an intact record that cannot follow the log or an intact entries
// frame that is impossible) stops the open with CORRUPT_LOG naming the file and byte offset
// (a batch's first byte when its CRC fails; a frame's, or an entry's, when a batch whose CRC
// matches holds an impossible record). Each case copies one reference log, applies its own
// corrupt hook to the copy, and opens it.
import { ErrorCode, RingraftError } from '../../src/base/index.ts';
import { appendFileSync, closeSync, cpSync, openSync, readFileSync, readdirSync, renameSync, statSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emptyConfState } from '../../src/core/index.ts';
import { RecordType, WalStorage, realFileSystem, recoverLog } from '../../src/storage/index.ts';
import { crc32 } from '../../src/storage/wal/crc.ts';
import { SEGMENT_HEADER_BYTES, encodeBatch, frameBytes, frameHeader, type WalRecord } from '../../src/storage/wal/format.ts';
import { ent, ents, freshDir, plain, tempDir } from './helpers.ts';

const root = tempDir();
const OPTIONS = { segmentSizeBytesMax: 4096 };

interface LogState {
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly entries: ReturnType<typeof plain>;
  readonly hardState: unknown;
  readonly snapshotIndex: number;
}

function stateOf(s: WalStorage): LogState {
  return {
    firstIndex: s.firstIndex(),
    lastIndex: s.lastIndex(),
    entries: plain(s.allEntries()),
    hardState: s.getHardState(),
    snapshotIndex: s.snapshot().meta.index,
  };
}

/** The reference log: several segments, every record type, a snapshot; the last batch written last. */
function buildReference(dir: string): { before: LogState; after: LogState } {
  const s = WalStorage.open(dir, OPTIONS);
  s.persist({ entries: ents(1, [1, 1, 1, 1, 1], 100), hardState: { term: 1, vote: 1, commit: 2 } });
  s.persist({ entries: ents(4, [2, 2, 2, 2, 2], 100), hardState: { term: 2, vote: 2, commit: 5 } });
  s.createSnapshot(3, emptyConfState([1, 2, 3]), new Uint8Array([1, 2, 3]));
  for (let i = 9; i <= 45; i++) s.persist({ entries: [ent(i, 2, 100)], hardState: { term: 2, vote: 2, commit: i - 1 } });
  const before = stateOf(s);
  s.persist({ entries: ents(44, [3, 3, 3], 100), hardState: { term: 3, vote: 1, commit: 44 } });
  const after = stateOf(s);
  s.close();
  return { before, after };
}

interface Frame {
  readonly file: string;
  readonly offset: number;
  readonly end: number;
  readonly type: number;
}

/** Every frame of the reference log, walked by their headers, and where the last batch starts. */
function layoutOf(dir: string): { frames: Frame[]; lastBatch: Frame[]; lastFile: string; logEnd: number } {
  const log = recoverLog(realFileSystem, dir);
  const frames: Frame[] = [];
  for (const segment of log.segments) {
    const bytes = readFileSync(join(dir, segment.fileName)).subarray(0, segment.endBytes);
    for (let at = SEGMENT_HEADER_BYTES; at < bytes.length; ) {
      const header = frameHeader(bytes, at);
      if (typeof header === 'string') throw new Error(`${segment.fileName}@${at}: ${header}`);
      frames.push({ file: segment.fileName, offset: at, end: at + frameBytes(header.length), type: header.type });
      at += frameBytes(header.length);
    }
  }
  const lastFile = log.segments.at(-1)!.fileName;
  // The last batch: the frames after the second-to-last commit record.
  const commits = frames.map((f, k) => (f.type === RecordType.Commit ? k : -1)).filter((k) => k >= 0);
  const lastBatch = frames.slice(commits.at(-2)! + 1);
  expect(lastBatch.every((f) => f.file === lastFile)).toBe(true);
  return { frames, lastBatch, lastFile, logEnd: log.segments.at(-1)!.endBytes };
}

const reference = freshDir(root);
const { before, after } = buildReference(reference);
const layout = layoutOf(reference);
const segmentFiles = readdirSync(reference).filter((n) => n.endsWith('.wal')).sort();

type Expectation =
  /** Opens with this state; `torn` says whether recovery reports a torn tail. */
  | { readonly opens: LogState; readonly torn: boolean }
  /** Fails with CORRUPT_LOG whose message names this file at this byte offset. */
  | { readonly corrupt: string; readonly at?: number };

interface Case {
  readonly name: string;
  /** Cases of one group run in one test (the flips of one record, the cuts of one record). */
  readonly group?: string;
  readonly corrupt: (dir: string) => void;
  readonly expect: Expectation;
}

function flip(dir: string, file: string, offset: number): void {
  const path = join(dir, file);
  const bytes = readFileSync(path);
  bytes[offset] ^= 0x5a;
  writeFileSync(path, bytes);
}

const TYPE_NAMES = ['invalid', 'entry', 'hard-state', 'truncation', 'snapshot', 'commit'];
const lastBatchStart = layout.lastBatch[0]!.offset;
const middleFrames = layout.frames.slice(0, layout.frames.length - layout.lastBatch.length);

const cases: Case[] = [];

/** Where the batch holding each frame starts: one CRC (in its commit record) covers a batch, so damage is reported there. */
const batchStarts = layout.frames.map((f, k) => {
  let first = k;
  while (first > 0 && layout.frames[first - 1]!.file === f.file && layout.frames[first - 1]!.type !== RecordType.Commit) first--;
  return layout.frames[first]!.offset;
});

/** The fields of a frame to flip a byte of: its header's, and each field of an entries frame's payload. */
const FRAME_PARTS: [string, number][] = [
  ['type', 0],
  ['first reserved header byte', 1],
  ['last reserved header byte', 3],
  ['length', 4],
  ['first payload byte', 8],
];
const ENTRIES_PARTS: [string, number][] = [
  ['term', 16],
  ['count', 24],
  ['reserved word', 28],
  ["first entry's header", 32],
  ["first entry's type bits", 35],
  ["first entry's data", 36],
];

// A flipped byte in any part of any record before the last batch.
middleFrames.forEach((f, k) => {
  const parts: [string, number][] = [...FRAME_PARTS, ...(f.type === RecordType.Entry ? ENTRIES_PARTS : []), ['last byte', f.end - f.offset - 1]];
  for (const [part, delta] of parts) {
    cases.push({
      name: `flipped ${part} of the ${TYPE_NAMES[f.type]} record at ${f.file}@${f.offset}`,
      group: `a flipped byte in the ${TYPE_NAMES[f.type]} record at ${f.file}@${f.offset} (${parts.map(([p]) => p).join(', ')})`,
      corrupt: (dir) => flip(dir, f.file, f.offset + delta),
      expect: { corrupt: f.file, at: batchStarts[k]! },
    });
  }
});

// The file cut at every record boundary and inside every record of the last batch.
for (const f of layout.lastBatch) {
  cases.push({
    name: `cut at the start of the last batch's ${TYPE_NAMES[f.type]} record @${f.offset}`,
    group: `the file cut at and inside the last batch's ${TYPE_NAMES[f.type]} record @${f.offset}`,
    corrupt: (dir) => truncateSync(join(dir, layout.lastFile), f.offset),
    expect: { opens: before, torn: f.offset > lastBatchStart },
  });
  for (const delta of [1, 4, 7, 9, 17, 30, 33, 40, f.end - f.offset - 1]) {
    if (delta <= 0 || delta >= f.end - f.offset) continue;
    cases.push({
      name: `cut ${delta} bytes into the last batch's ${TYPE_NAMES[f.type]} record @${f.offset}`,
      group: `the file cut at and inside the last batch's ${TYPE_NAMES[f.type]} record @${f.offset}`,
      corrupt: (dir) => truncateSync(join(dir, layout.lastFile), f.offset + delta),
      expect: { opens: before, torn: true },
    });
  }
}

cases.push(
  {
    name: 'nothing wrong',
    corrupt: () => {},
    expect: { opens: after, torn: false },
  },
  {
    name: 'a flipped byte in the last batch: indistinguishable from a torn write, so cut',
    corrupt: (dir) => flip(dir, layout.lastFile, lastBatchStart + 20),
    expect: { opens: before, torn: true },
  },
  {
    name: 'garbage after the tail',
    corrupt: (dir) => appendFileSync(join(dir, layout.lastFile), Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 11) & 0xff))),
    expect: { opens: after, torn: true },
  },
  {
    name: 'a zeroed tail (preallocated space)',
    corrupt: (dir) => appendFileSync(join(dir, layout.lastFile), Buffer.alloc(64 * 1024)),
    expect: { opens: after, torn: false },
  },
  {
    name: 'a torn write over zeroed space',
    corrupt: (dir) => {
      const path = join(dir, layout.lastFile);
      const bytes = readFileSync(path);
      bytes.fill(0, lastBatchStart + 40);
      writeFileSync(path, Buffer.concat([bytes, Buffer.alloc(8192)]));
    },
    expect: { opens: before, torn: true },
  },
  {
    name: 'the last batch with a hole (pages persisted out of order)',
    corrupt: (dir) => {
      const path = join(dir, layout.lastFile);
      const bytes = readFileSync(path);
      bytes.fill(0, lastBatchStart + 8, lastBatchStart + 200);
      writeFileSync(path, bytes);
    },
    expect: { opens: before, torn: true },
  },
  {
    name: 'a bad header in the first segment',
    corrupt: (dir) => flip(dir, segmentFiles[0]!, 9),
    expect: { corrupt: segmentFiles[0]!, at: 0 },
  },
  {
    name: 'a bad magic number in the last segment, which holds intact batches',
    corrupt: (dir) => flip(dir, layout.lastFile, 1),
    expect: { corrupt: layout.lastFile, at: 0 },
  },
  {
    name: 'a new segment whose creation was torn (header cut short)',
    corrupt: (dir) => writeFileSync(join(dir, nextSegment()), Buffer.from([0x52, 0x52, 0x57, 0x4c, 1, 0, 0])),
    expect: { opens: after, torn: true },
  },
  {
    name: 'a new empty segment file',
    corrupt: (dir) => writeFileSync(join(dir, nextSegment()), Buffer.alloc(0)),
    expect: { opens: after, torn: true },
  },
  {
    name: 'a missing middle segment',
    corrupt: (dir) => unlinkSync(join(dir, segmentFiles[1]!)),
    expect: { corrupt: segmentFiles[1]! },
  },
  {
    name: 'a missing first segment (not covered by the snapshot)',
    corrupt: (dir) => unlinkSync(join(dir, segmentFiles[0]!)),
    expect: { corrupt: segmentFiles[1]! },
  },
  {
    name: 'a segment renamed to another sequence number',
    corrupt: (dir) => renameSync(join(dir, layout.lastFile), join(dir, nextSegment())),
    expect: { corrupt: segmentFiles.at(-2) === undefined ? layout.lastFile : nextSegment() },
  },
  {
    name: 'a missing snapshot file',
    corrupt: (dir) => unlinkSync(join(dir, 'snapshot-00000000000000000003.snap')),
    expect: { corrupt: 'snapshot-00000000000000000003.snap', at: 0 },
  },
  {
    name: 'a damaged snapshot file',
    corrupt: (dir) => flip(dir, 'snapshot-00000000000000000003.snap', 45),
    expect: { corrupt: 'snapshot-00000000000000000003.snap' },
  },
  // Intact batches (their CRC matches) that hold what cannot be: corruption, wherever they
  // are, reported at the entry (whose header follows its frame's 8-byte header and 24 bytes of
  // run fields) or at the frame.
  {
    name: 'an intact batch whose entry does not follow the log',
    corrupt: (dir) => writeAtLogEnd(dir, batchOf([run(ent(100, 3))])),
    expect: { corrupt: layout.lastFile, at: layout.logEnd + 32 },
  },
  {
    name: 'an intact batch whose entry goes back in term',
    corrupt: (dir) => writeAtLogEnd(dir, batchOf([run(ent(47, 1))])),
    expect: { corrupt: layout.lastFile, at: layout.logEnd + 32 },
  },
  {
    name: 'an intact batch whose second entries frame does not continue its first',
    // Entry 47 (8 + 24 + 4 + 8 bytes, padded to 48), then a frame from entry 49.
    corrupt: (dir) => writeAtLogEnd(dir, batchOf([run(ent(47, 3)), run(ent(49, 3))])),
    expect: { corrupt: layout.lastFile, at: layout.logEnd + 48 + 32 },
  },
  {
    name: 'an intact batch whose entries frame counts more entries than it holds',
    corrupt: (dir) => writeAtLogEnd(dir, withCrc(batchOf([run(ent(47, 3), ent(48, 3))]), (b) => b.writeUInt32LE(3, 24))),
    expect: { corrupt: layout.lastFile, at: layout.logEnd },
  },
  {
    name: 'an intact batch whose entry has an unknown entry type',
    corrupt: (dir) => writeAtLogEnd(dir, withCrc(batchOf([run(ent(47, 3))]), (b) => (b[35] = 0x20))),
    expect: { corrupt: layout.lastFile, at: layout.logEnd },
  },
  {
    name: 'an intact record of an unknown type after the tail: a torn write cannot make a matching CRC',
    corrupt: (dir) => writeAtLogEnd(dir, recordOfUnknownType()),
    expect: { corrupt: layout.lastFile, at: layout.logEnd },
  },
  {
    name: 'leftover temporary and unreferenced snapshot files (deleted)',
    corrupt: (dir) => {
      writeFileSync(join(dir, 'snapshot-00000000000000000099.snap.tmp'), 'x');
      writeFileSync(join(dir, 'snapshot-00000000000000000001.snap'), 'x');
    },
    expect: { opens: after, torn: false },
  },
);

/** Writes `bytes` where the next batch would go (over preallocated zeros, if any). */
function writeAtLogEnd(dir: string, bytes: Uint8Array): void {
  const fd = openSync(join(dir, layout.lastFile), 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, layout.logEnd);
  } finally {
    closeSync(fd);
  }
}

function run(...entries: ReturnType<typeof ent>[]): WalRecord {
  return { type: RecordType.Entry, entries };
}

function batchOf(records: readonly WalRecord[]): Buffer {
  return Buffer.concat(encodeBatch(records).buffers);
}

/** `bytes` (one batch) changed by `change`, with the batch CRC recomputed: intact as far as the CRC can tell. */
function withCrc(bytes: Buffer, change: (b: Buffer) => void): Buffer {
  change(bytes);
  const crcAt = bytes.length - 4;
  bytes.writeUInt32LE(crc32(bytes.subarray(0, crcAt)), crcAt);
  return bytes;
}

/** A batch whose hard-state frame is retyped to 9, with the batch CRC recomputed: intact, but not a record type. */
function recordOfUnknownType(): Buffer {
  return withCrc(batchOf([{ type: RecordType.HardState, hardState: { term: 1, vote: 0, commit: 0 } }]), (b) => (b[0] = 9));
}

function nextSegment(): string {
  const n = Number(layout.lastFile.slice(0, 20)) + 1;
  return `${String(n).padStart(20, '0')}.wal`;
}

describe('WAL recovery: corruption cases', () => {
  it('has a reference log with several segments and a last batch to tear', () => {
    expect(segmentFiles.length).toBeGreaterThanOrEqual(3);
    expect(layout.lastBatch.map((f) => f.type)).toEqual([RecordType.Truncation, RecordType.Entry, RecordType.HardState, RecordType.Commit]);
    expect(middleFrames.length).toBeGreaterThan(50);
  });

  const groups = new Map<string, Case[]>();
  for (const c of cases) groups.set(c.group ?? c.name, [...(groups.get(c.group ?? c.name) ?? []), c]);
  for (const [name, group] of groups) {
    it(name, () => {
      for (const c of group) check(c);
    });
  }
});

/** Names and sizes of the files in `dir`. */
function listing(dir: string): [string, number][] {
  return readdirSync(dir)
    .sort()
    .map((n) => [n, statSync(join(dir, n)).size]);
}

function check(c: Case): void {
  const dir = freshDir(root);
  cpSync(reference, dir, { recursive: true });
  c.corrupt(dir);
  const e = c.expect;
  if ('corrupt' in e) {
    const files = listing(dir);
    let error: unknown;
    try {
      WalStorage.open(dir, OPTIONS).close();
    } catch (caught) {
      error = caught;
    }
    expect(error, c.name).toBeInstanceOf(RingraftError);
    expect((error as RingraftError).code, c.name).toBe(ErrorCode.CORRUPT_LOG);
    const message = (error as RingraftError).message;
    expect(message, c.name).toContain(e.corrupt);
    expect(message, c.name).toMatch(e.at === undefined ? / at byte \d+/ : new RegExp(` at byte ${e.at}\\b`));
    // A corrupt log is left exactly as it was found.
    expect(listing(dir), c.name).toEqual(files);
    return;
  }
  const s = WalStorage.open(dir, OPTIONS);
  expect(stateOf(s), c.name).toEqual(e.opens);
  expect(s.recovery.tornTail !== undefined, c.name).toBe(e.torn);
  // The repaired log takes new writes and reopens cleanly.
  s.append([ent(s.lastIndex() + 1, 9)]);
  s.close();
  const again = WalStorage.open(dir, OPTIONS);
  expect(again.recovery.tornTail, c.name).toBeUndefined();
  expect(again.recovery.deletedFiles, c.name).toEqual([]);
  expect(again.lastIndex(), c.name).toBe(e.opens.lastIndex + 1);
  again.close();
}
