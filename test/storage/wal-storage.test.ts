// Proves WalStorage's write path and what survives a reopen: a Ready is one writev and one
// fdatasync; entries, truncations, hard state and snapshots round-trip through close and
// open; segments roll over at their size and are deleted once a snapshot covers them; small
// batches preallocate with zeros, large ones grow the file; reads come back from disk intact,
// from batches of several entries frames, after a batch's head was compacted or its tail
// truncated (and a damaged entry read back is CORRUPT_LOG); a segment of another format
// version is refused with a typed error and left alone; injected EIO on a write or a sync
// is a typed error after which the storage refuses writes; short and torn writes are handled;
// an entry of the largest size (the message codec's) round-trips and a larger one is refused.
// Runs on the real file system in a temporary directory, with FaultyFileSystem counting calls
// and injecting faults.
import { ErrorCode } from '../../src/base/index.ts';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { emptyConfState, type Snapshot } from '../../src/core/index.ts';
import {
  FaultyFileSystem,
  PREALLOCATE_BATCH_BYTES_MAX,
  StorageError,
  StorageErrorCode,
  WalStorage,
  WalVersionError,
  realFileSystem,
  walRecoveryChannel,
  type FaultPlan,
} from '../../src/storage/index.ts';
import { ENTRY_DATA_BYTES_MAX as CODEC_ENTRY_DATA_BYTES_MAX } from '../../src/codec/index.ts';
import { crc32 } from '../../src/storage/wal/crc.ts';
import { ENTRY_DATA_BYTES_MAX } from '../../src/storage/wal/format.ts';
import { expectCode } from '../core/helpers/errors.ts';
import { ent, ents, freshDir, plain, tempDir } from './helpers.ts';

const root = tempDir();
const CONF = emptyConfState([1, 2, 3]);

function walFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.wal')).sort();
}
function snapFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.snap')).sort();
}

function faulty(plan: FaultPlan = {}): FaultyFileSystem {
  return new FaultyFileSystem(realFileSystem, plan);
}

function caughtError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('WalStorage writes', () => {
  it('writes one Ready with one writev and one fdatasync', () => {
    const fs = faulty();
    const s = WalStorage.open(freshDir(root), { fs });
    s.append(ents(1, [1, 1, 1]));
    const before = { writes: fs.writes, syncs: fs.syncs, dirSyncs: fs.dirSyncs };
    s.persist({ entries: [...ents(3, [2, 2, 2])], hardState: { term: 2, vote: 1, commit: 2 } });
    expect({ writes: fs.writes - before.writes, syncs: fs.syncs - before.syncs, dirSyncs: fs.dirSyncs - before.dirSyncs }).toEqual({ writes: 1, syncs: 1, dirSyncs: 0 });
    expect(plain(s.allEntries())).toEqual(plain([...ents(1, [1, 1]), ...ents(3, [2, 2, 2])]));
    s.close();
  });

  it('round-trips entries, truncations, hard state and a snapshot through close and open', () => {
    const dir = freshDir(root);
    let s = WalStorage.open(dir);
    s.persist({ entries: ents(1, [1, 1, 1, 1]), hardState: { term: 1, vote: 1, commit: 1 } });
    s.persist({ entries: ents(3, [2, 2, 2]), hardState: { term: 2, vote: 3, commit: 3 } });
    s.createSnapshot(2, CONF, new Uint8Array([42]));
    s.append(ents(6, [3, 3]));
    const expected = plain(s.allEntries());
    s.close();
    s = WalStorage.open(dir);
    expect(plain(s.allEntries())).toEqual(expected);
    expect(expected.map((e) => [e.index, e.term])).toEqual([
      [3, 2],
      [4, 2],
      [5, 2],
      [6, 3],
      [7, 3],
    ]);
    expect(s.initialState()).toEqual({ hardState: { term: 2, vote: 3, commit: 3 }, conf: CONF });
    expect(s.snapshot().meta).toEqual({ index: 2, term: 1, conf: CONF });
    expect(s.recovery.tornTail).toBeUndefined();
    s.close();
  });

  it('persists a snapshot from the leader with the entries and hard state of the same Ready', () => {
    const dir = freshDir(root);
    let s = WalStorage.open(dir);
    s.append(ents(1, [1, 1, 1]));
    const snap: Snapshot = { meta: { index: 20, term: 5, conf: CONF }, data: new Uint8Array(1000).fill(7) };
    s.persist({ snapshot: snap, entries: ents(19, [5, 5, 6]), hardState: { term: 6, vote: 0, commit: 20 } });
    expect(s.firstIndex()).toBe(21);
    expect(plain(s.allEntries())).toEqual(plain([ent(21, 6)]));
    s.close();
    s = WalStorage.open(dir);
    expect(s.snapshot().meta).toEqual(snap.meta);
    expect(s.snapshot().data).toEqual(snap.data);
    expect(plain(s.allEntries())).toEqual(plain([ent(21, 6)]));
    expect(s.getHardState()).toEqual({ term: 6, vote: 0, commit: 20 });
    expect(snapFiles(dir)).toEqual(['snapshot-00000000000000000020.snap']);
    s.close();
  });

  it('rolls over to a new segment when the next batch would pass segmentSizeBytesMax', () => {
    const dir = freshDir(root);
    const max = 4096;
    let s = WalStorage.open(dir, { segmentSizeBytesMax: max });
    for (let i = 1; i <= 100; i++) s.persist({ entries: [ent(i, 1, 100)], hardState: { term: 1, vote: 1, commit: i - 1 } });
    const files = walFiles(dir);
    expect(files.length).toBeGreaterThan(3);
    expect(files[0]).toBe('00000000000000000001.wal');
    for (const f of files) expect(statSync(join(dir, f)).size).toBeLessThanOrEqual(max);
    // A batch larger than a segment goes whole into a fresh one, which is then larger than the maximum.
    s.append([ent(101, 1, 10_000)]);
    const last = walFiles(dir).at(-1)!;
    expect(statSync(join(dir, last)).size).toBeGreaterThan(max);
    s.append([ent(102, 1, 10)]);
    expect(walFiles(dir).length).toBe(files.length + 2);
    const expected = plain(s.allEntries());
    s.close();
    s = WalStorage.open(dir, { segmentSizeBytesMax: max });
    expect(plain(s.allEntries())).toEqual(expected);
    expect(s.lastIndex()).toBe(102);
    expect(s.getHardState()).toEqual({ term: 1, vote: 1, commit: 99 });
    s.close();
  });

  it('deletes segments a snapshot covers and older snapshot files; reopen still works', () => {
    const dir = freshDir(root);
    const opts = { segmentSizeBytesMax: 4096 };
    let s = WalStorage.open(dir, opts);
    for (let i = 1; i <= 60; i++) s.persist({ entries: [ent(i, 1 + Math.floor(i / 20), 100)], hardState: { term: 1 + Math.floor(i / 20), vote: 1, commit: i } });
    const before = walFiles(dir);
    s.createSnapshot(10, CONF, new Uint8Array([1]));
    s.createSnapshot(40, CONF, new Uint8Array([2]));
    const after = walFiles(dir);
    expect(after.length).toBeLessThan(before.length);
    expect(after[0]).not.toBe(before[0]);
    expect(snapFiles(dir)).toEqual(['snapshot-00000000000000000040.snap']);
    const expected = plain(s.allEntries());
    s.close();
    s = WalStorage.open(dir, opts);
    expect(s.firstIndex()).toBe(41);
    expect(plain(s.allEntries())).toEqual(expected);
    expect(s.getHardState()).toEqual({ term: 4, vote: 1, commit: 60 });
    // Appending and compacting further after the reopen.
    for (let i = 61; i <= 90; i++) s.append([ent(i, 4, 100)]);
    s.createSnapshot(90, CONF, new Uint8Array([3]));
    expect(walFiles(dir).length).toBe(1);
    s.close();
    s = WalStorage.open(dir, opts);
    expect(s.firstIndex()).toBe(91);
    expect(s.lastIndex()).toBe(90);
    expect(s.term(90)).toBe(4);
    expect([...s.snapshot().data]).toEqual([3]);
    s.close();
  });

  it('preallocates segment space in the same writev, and recovery treats the zeros as unwritten space', () => {
    const dir = freshDir(root);
    const fs = faulty();
    const options = { fs, segmentSizeBytesMax: 64 * 1024, preallocateBytes: 8192 };
    let s = WalStorage.open(dir, options);
    const file = join(dir, '00000000000000000001.wal');
    expect(statSync(file).size).toBe(8192);
    const writes = fs.writes;
    s.append(ents(1, [1, 1, 1], 100));
    expect(fs.writes).toBe(writes + 1);
    expect(statSync(file).size).toBe(8192);
    for (let i = 4; i <= 80; i++) s.append([ent(i, 1, 100)]);
    expect(statSync(file).size % 8192).toBe(0);
    expect(statSync(file).size).toBeGreaterThan(8192);
    s.close();
    s = WalStorage.open(dir, options);
    expect(s.recovery.tornTail).toBeUndefined();
    expect(s.lastIndex()).toBe(80);
    const size = statSync(file).size;
    s.append([ent(81, 1, 100)]);
    expect(statSync(file).size).toBe(size);
    s.close();
    // Without preallocation the file ends where the log does.
    const plainDir = freshDir(root);
    s = WalStorage.open(plainDir, { preallocateBytes: 0 });
    s.append(ents(1, [1], 100));
    s.close();
    // Header 32, first batch 56 (hard state 32, commit 24), entries frame 8 + 24 + 4 + 100 = 136, commit 24.
    expect(statSync(join(plainDir, '00000000000000000001.wal')).size).toBe(32 + 56 + 136 + 24);
  });

  it('writes no zeros after a batch over PREALLOCATE_BATCH_BYTES_MAX: the file grows by the batch', () => {
    const dir = freshDir(root);
    const options = { segmentSizeBytesMax: 1 << 20, preallocateBytes: 8192 };
    const s = WalStorage.open(dir, options);
    const file = join(dir, '00000000000000000001.wal');
    expect(statSync(file).size).toBe(8192);
    // A large batch past the preallocated space: the file ends where the batch does.
    const large = ents(1, Array(600).fill(1), 150);
    s.append(large);
    const afterLarge = statSync(file).size;
    expect(afterLarge - 8192).toBeGreaterThan(PREALLOCATE_BATCH_BYTES_MAX - 8192);
    expect(afterLarge % 8192).not.toBe(0);
    // A small batch past the end preallocates again.
    s.append([ent(601, 1, 150)]);
    expect(statSync(file).size % 8192).toBe(0);
    s.close();
    const again = WalStorage.open(dir, options);
    expect(again.recovery.tornTail).toBeUndefined();
    expect(plain(again.allEntries())).toEqual(plain([...large, ent(601, 1, 150)]));
    again.close();
  });

  it('refuses a segment of another format version with a typed error, and changes nothing', () => {
    for (const [version, withBatches] of [
      [2, true],
      [2, false],
      [4, true],
    ] as const) {
      const dir = freshDir(root);
      const s = WalStorage.open(dir);
      s.append(ents(1, [1, 1], 50));
      s.close();
      const file = join(dir, '00000000000000000001.wal');
      const bytes = readFileSync(file);
      bytes[4] = version;
      bytes.writeUInt32LE(crc32(bytes.subarray(0, 28)), 28);
      // Without batches the segment would look like a torn creation; an intact header of another version is not one.
      writeFileSync(file, withBatches ? bytes : bytes.subarray(0, 32));
      const error = expectCode(() => WalStorage.open(dir), ErrorCode.UNSUPPORTED_FORMAT);
      expect(error).toBeInstanceOf(WalVersionError);
      expect(error).toMatchObject({ fileName: '00000000000000000001.wal', version, supportedVersion: 3 });
      expect(error.message).toContain(`00000000000000000001.wal at byte 4: format version ${version}; this build reads version 3 only`);
      expect(readFileSync(file)).toEqual(withBatches ? bytes : bytes.subarray(0, 32));
    }
  });

  it('reads entries back from disk when they are not cached', () => {
    const dir = freshDir(root);
    const s = WalStorage.open(dir, { cacheEntriesMax: 0, segmentSizeBytesMax: 8192 });
    const written = [...ents(1, [1, 1, 1], 20_000), ...ents(4, Array(50).fill(2), 300)];
    s.append(written.slice(0, 3));
    for (const e of written.slice(3)) s.append([e]);
    s.append(ents(30, [3, 3]));
    const expected = [...written.slice(0, 29), ...ents(30, [3, 3])];
    expect(plain(s.allEntries())).toEqual(plain(expected));
    expect(plain(s.entries(5, 31, 1000))).toEqual(plain(expected.slice(4, 7)));
    s.close();
  });

  it('reads back a batch of several entries frames, after its head was compacted and its tail truncated', () => {
    const dir = freshDir(root);
    const s = WalStorage.open(dir, { cacheEntriesMax: 0 });
    // One batch: terms 1, 1, 2, 2, 2, 3 and entries of 100 KiB, so the frames split at terms and at the size target.
    const terms = [1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3];
    const sizes = [10, 100_000, 7, 100_000, 100_000, 0, 100_000, 100_000, 100_000, 5, 9];
    const batch = terms.map((t, k) => ent(k + 1, t, sizes[k]));
    s.persist({ entries: batch, hardState: { term: 3, vote: 1, commit: 0 } });
    expect(plain(s.allEntries())).toEqual(plain(batch));
    // Reading entry by entry, from the middle, reads the same.
    for (let i = 11; i >= 1; i--) expect(plain(s.entries(i, i + 1, 0))).toEqual(plain([batch[i - 1]!]));
    // Compact the batch's head, then overwrite its tail from entry 8 with a newer term.
    s.createSnapshot(3, CONF, new Uint8Array([3]));
    s.append(ents(8, [4, 4], 20));
    const expected = [...batch.slice(3, 7), ...ents(8, [4, 4], 20)];
    expect(plain(s.allEntries())).toEqual(plain(expected));
    expect(plain(s.entries(6, 9, Infinity))).toEqual(plain(expected.slice(2, 5)));
    s.close();
    const again = WalStorage.open(dir, { cacheEntriesMax: 0 });
    expect(plain(again.allEntries())).toEqual(plain(expected));
    again.close();
  });

  it('reports an entry damaged on disk after it was written as CORRUPT_LOG when read back', () => {
    const dir = freshDir(root);
    const s = WalStorage.open(dir, { cacheEntriesMax: 0 });
    s.append(ents(1, [1, 1, 1], 64));
    const file = join(dir, walFiles(dir)[0]!);
    const bytes = readFileSync(file);
    bytes[150] ^= 0x40; // In the data of entry 1: header 32, first batch 56, frame header 8, run fields 24, entry header 4.
    writeFileSync(file, bytes);
    const error = expectCode(() => s.allEntries(), ErrorCode.CORRUPT_LOG);
    expect(error.message).toMatch(/00000000000000000001\.wal at byte \d+/);
    s.close();
  });

  it('defers a hard state when mustSync is false and writes it with the next batch or at close', () => {
    const dir = freshDir(root);
    const fs = faulty();
    let s = WalStorage.open(dir, { fs });
    s.append(ents(1, [1, 1]));
    const writes = fs.writes;
    s.persist({ hardState: { term: 1, vote: 0, commit: 2 }, mustSync: false });
    expect(fs.writes).toBe(writes);
    expect(s.initialState().hardState).toEqual({ term: 1, vote: 0, commit: 2 });
    s.close();
    s = WalStorage.open(dir);
    expect(s.getHardState()).toEqual({ term: 1, vote: 0, commit: 2 });
    s.persist({ hardState: { term: 1, vote: 0, commit: 1 }, mustSync: false });
    s.append(ents(3, [1]));
    s.close();
    s = WalStorage.open(dir);
    expect(s.getHardState()).toEqual({ term: 1, vote: 0, commit: 1 });
    s.close();
  });

  it("does not sync with durability 'none'", () => {
    const fs = faulty();
    const s = WalStorage.open(freshDir(root), { fs, durability: 'none', segmentSizeBytesMax: 4096 });
    for (let i = 1; i <= 50; i++) s.append([ent(i, 1, 200)]);
    s.createSnapshot(20, CONF, new Uint8Array(10));
    expect(fs.syncs).toBe(0);
    expect(fs.dirSyncs).toBe(0);
    s.close();
  });

  it('creates missing parent directories and rejects bad options', () => {
    const dir = join(freshDir(root), 'a', 'b');
    WalStorage.open(dir).close();
    expect(walFiles(dir)).toEqual(['00000000000000000001.wal']);
    expectCode(() => WalStorage.open(dir, { segmentSizeBytesMax: 10 }), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => WalStorage.open(dir, { durability: 'sometimes' as never }), ErrorCode.INVALID_ARGUMENT);
  });

  it("stores an entry of the largest size (the message codec's) and refuses a larger one", () => {
    expect(ENTRY_DATA_BYTES_MAX).toBe(CODEC_ENTRY_DATA_BYTES_MAX);
    const dir = freshDir(root);
    const s = WalStorage.open(dir, { cacheEntriesMax: 0 });
    const largest = { index: 1, term: 1, type: 0 as const, data: new Uint8Array(ENTRY_DATA_BYTES_MAX).fill(0xab) };
    expectCode(() => s.append([{ ...largest, data: new Uint8Array(ENTRY_DATA_BYTES_MAX + 1) }]), ErrorCode.INVALID_ARGUMENT);
    expect(s.lastIndex()).toBe(0);
    s.append([largest, ent(2, 1)]);
    s.close();
    const again = WalStorage.open(dir, { cacheEntriesMax: 0 });
    const [back, next] = again.allEntries();
    expect(back!.data.length).toBe(ENTRY_DATA_BYTES_MAX);
    expect(back!.data.every((b) => b === 0xab)).toBe(true);
    expect(plain([next!])).toEqual(plain([ent(2, 1)]));
    again.close();
  });

  it('refuses every call once closed', () => {
    const s = WalStorage.open(freshDir(root));
    s.append(ents(1, [1]));
    s.close();
    // Every method, writes and reads alike: none answers from what it held.
    const calls: [string, () => unknown][] = [
      ['append', () => s.append(ents(2, [1]))],
      ['setHardState', () => s.setHardState({ term: 2, vote: 0, commit: 1 })],
      ['persist', () => s.persist({ entries: ents(2, [1]) })],
      ['persistLater', () => s.persistLater({ entries: ents(2, [1]) })],
      ['syncNow', () => s.syncNow()],
      ['createSnapshot', () => s.createSnapshot(1, { voters: [1], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false }, new Uint8Array(1))],
      ['entries', () => s.entries(1, 2, Infinity)],
      ['allEntries', () => s.allEntries()],
      ['term', () => s.term(1)],
      ['firstIndex', () => s.firstIndex()],
      ['lastIndex', () => s.lastIndex()],
      ['getHardState', () => s.getHardState()],
      ['initialState', () => s.initialState()],
      ['snapshot', () => s.snapshot()],
      ['durableSequence', () => s.durableSequence()],
    ];
    for (const [name, call] of calls) expect(caughtError(call), name).toMatchObject({ code: ErrorCode.CLOSED });
    // Closing again does nothing.
    s.close();
  });
});

describe('WalStorage under injected faults', () => {
  function expectStorageError(fn: () => unknown, code: StorageErrorCode): StorageError {
    const error = caughtError(fn);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).code).toBe(code);
    return error as StorageError;
  }

  for (const fault of ['write', 'sync'] as const) {
    it(`turns EIO on a ${fault} into IO_ERROR and then refuses every write`, () => {
      const dir = freshDir(root);
      const probe = faulty();
      const s0 = WalStorage.open(dir, { fs: probe });
      s0.append(ents(1, [1, 1]));
      s0.close();
      // The next write or sync after opening fails.
      const fs = faulty(fault === 'write' ? { writeFailAt: 1 } : { syncFailAt: 1 });
      const s = WalStorage.open(dir, { fs });
      const error = expectStorageError(() => s.append(ents(3, [1])), StorageErrorCode.IO_ERROR);
      expect((error.cause as NodeJS.ErrnoException).code).toBe('EIO');
      expect(s.lastIndex()).toBe(2);
      expectStorageError(() => s.append(ents(3, [1])), StorageErrorCode.STORAGE_FAILED);
      expectStorageError(() => s.setHardState({ term: 1, vote: 0, commit: 0 }), StorageErrorCode.STORAGE_FAILED);
      expectStorageError(() => s.createSnapshot(1, CONF, new Uint8Array(0)), StorageErrorCode.STORAGE_FAILED);
      // Reads of what was durable still work.
      expect(plain(s.allEntries())).toEqual(plain(ents(1, [1, 1])));
      s.close();
      // A restart recovers: entry 3 is there only if its write reached the file.
      const again = WalStorage.open(dir);
      expect(again.lastIndex()).toBe(fault === 'write' ? 2 : 3);
      again.close();
    });
  }

  it('turns ENOSPC on a write or a sync into NO_SPACE, and then refuses every write', () => {
    for (const plan of [{ writeFailAt: 1 }, { syncFailAt: 1 }]) {
      const dir = freshDir(root);
      WalStorage.open(dir).close();
      const s = WalStorage.open(dir, { fs: faulty({ ...plan, failWith: 'ENOSPC' }) });
      const error = expectStorageError(() => s.append(ents(1, [1])), StorageErrorCode.NO_SPACE);
      expect((error.cause as NodeJS.ErrnoException).code).toBe('ENOSPC');
      expectStorageError(() => s.append(ents(1, [1])), StorageErrorCode.STORAGE_FAILED);
      s.close();
    }
  });

  it('turns EIO while writing a snapshot file into IO_ERROR, and the log is unchanged', () => {
    const dir = freshDir(root);
    const fs = faulty({ syncFailAt: 3 });
    const s = WalStorage.open(dir, { fs });
    s.append(ents(1, [1, 1, 1]));
    expectStorageError(() => s.createSnapshot(2, CONF, new Uint8Array(5)), StorageErrorCode.IO_ERROR);
    expect(s.firstIndex()).toBe(1);
    s.close();
    const again = WalStorage.open(dir);
    expect(again.firstIndex()).toBe(1);
    expect(again.lastIndex()).toBe(3);
    expect(snapFiles(dir)).toEqual([]);
    again.close();
  });

  it('continues short writes until the whole batch is written', () => {
    const dir = freshDir(root);
    const fs = faulty({ writeBytesMax: 7 });
    const s = WalStorage.open(dir, { fs, segmentSizeBytesMax: 4096 });
    const written = ents(1, Array(40).fill(1), 150);
    for (let i = 0; i < 40; i += 4) s.append(written.slice(i, i + 4));
    s.close();
    const again = WalStorage.open(dir);
    expect(plain(again.allEntries())).toEqual(plain(written));
    again.close();
  });

  it('recovers from a torn write: the batch being written is gone, everything before it intact', () => {
    const published: unknown[] = [];
    const listen = (message: unknown) => void published.push(message);
    walRecoveryChannel.subscribe(listen);
    onTestFinished(() => void walRecoveryChannel.unsubscribe(listen));
    // The batch is 256 bytes (an entries frame of 8 + 24 + 3 × 54 = 194, padded to 200, a hard
    // state of 32, a commit of 24): every prefix kept here is short of it.
    for (const keepBytes of [0, 1, 16, 40, 100, 250]) {
      const dir = freshDir(root);
      const s0 = WalStorage.open(dir);
      s0.append(ents(1, [1, 1, 1], 50));
      s0.close();
      const fs = faulty({ tornWriteAt: { call: 1, keepBytes } });
      const s = WalStorage.open(dir, { fs });
      expect(() => s.persist({ entries: ents(4, [2, 2, 2], 50), hardState: { term: 2, vote: 1, commit: 3 } })).toThrow();
      s.close();
      const again = WalStorage.open(dir);
      expect(plain(again.allEntries())).toEqual(plain(ents(1, [1, 1, 1], 50)));
      expect(again.getHardState()).toEqual({ term: 0, vote: 0, commit: 0 });
      expect(again.recovery.tornTail === undefined).toBe(keepBytes === 0);
      if (keepBytes > 0) expect(published.at(-1)).toMatchObject({ dir, tornTail: { action: 'cut' } });
      again.append(ents(4, [3]));
      again.close();
      const third = WalStorage.open(dir);
      expect(third.lastIndex()).toBe(4);
      expect(third.recovery.tornTail).toBeUndefined();
      third.close();
    }
  });
});
