// Proves that a snapshot can keep catch-up entries behind it: after createSnapshot(index, …,
// retainEntries) the WAL still serves the last retainEntries entries before the snapshot
// (with the term of the compaction point answerable, as the core's Storage contract needs),
// exactly as MemoryStorage does; successive snapshots never lose that term; segments holding
// retained entries survive until a later compaction; and a restart compacts through the
// snapshot index, the retained tail being an optimization only.
import { ErrorCode, RingraftError } from '../../src/base/index.ts';
import { describe, expect, it } from 'vitest';
import { emptyConfState } from '../../src/core/index.ts';
import { MemoryStorage, WalStorage } from '../../src/storage/index.ts';
import { ents, freshDir, plain, tempDir } from './helpers.ts';

const root = tempDir('ringraft-wal-retain-');
const conf = emptyConfState([1, 2, 3]);
const terms = (n: number): number[] => Array.from({ length: n }, (_, i) => 1 + Math.floor(i / 10));

function compacted(fn: () => unknown): boolean {
  try {
    fn();
  } catch (error) {
    return error instanceof RingraftError && error.code === ErrorCode.COMPACTED;
  }
  return false;
}

describe('WalStorage.createSnapshot with retained entries', () => {
  it('serves the retained entries, like MemoryStorage', () => {
    const wal = WalStorage.open(freshDir(root), { segmentSizeBytesMax: 4096 });
    const mem = new MemoryStorage(conf);
    for (const s of [wal, mem]) s.append(ents(1, terms(100)));
    for (const s of [wal, mem]) s.createSnapshot(80, conf, new Uint8Array([8]), 30);
    for (const s of [wal, mem]) {
      expect(s.snapshot().meta.index).toBe(80);
      expect(s.firstIndex()).toBe(51);
      expect(s.term(50)).toBe(5);
      expect(compacted(() => s.term(49))).toBe(true);
      expect(compacted(() => s.entries(50, 60, Infinity))).toBe(true);
    }
    expect(plain(wal.entries(51, 101, Infinity))).toEqual(plain(mem.entries(51, 101, Infinity)));
    expect(plain(wal.entries(51, 101, Infinity))).toEqual(plain(ents(51, terms(100).slice(50))));
    wal.close();
  });

  it('keeps the compaction point and its term across later snapshots that retain more than there is', () => {
    const wal = WalStorage.open(freshDir(root));
    wal.append(ents(1, terms(100)));
    wal.createSnapshot(80, conf, new Uint8Array([1]), 30);
    // Retaining 100 behind index 90 would reach below what is left: the point stays at 50.
    wal.createSnapshot(90, conf, new Uint8Array([2]), 100);
    expect(wal.firstIndex()).toBe(51);
    expect(wal.term(50)).toBe(5);
    expect(wal.entries(51, 52, Infinity)[0]!.index).toBe(51);
    // No retention: everything through the snapshot goes.
    wal.createSnapshot(95, conf, new Uint8Array([3]), 0);
    expect(wal.firstIndex()).toBe(96);
    expect(wal.term(95)).toBe(wal.snapshot().meta.term);
    // Then a snapshot that would retain more than is left: the point stays at 95, whose term
    // (that of the older snapshot) must still be known.
    wal.append(ents(101, Array(10).fill(11)));
    wal.createSnapshot(105, conf, new Uint8Array([4]), 50);
    expect(wal.firstIndex()).toBe(96);
    expect(wal.term(95)).toBe(10);
    expect(wal.entries(96, 111, Infinity).map((e) => e.index)).toEqual(Array.from({ length: 15 }, (_, i) => 96 + i));
    wal.close();
  });

  it('keeps the segments of retained entries until a later compaction, and compacts through the snapshot on reopen', () => {
    const dir = freshDir(root);
    const wal = WalStorage.open(dir, { segmentSizeBytesMax: 4096, preallocateBytes: 0 });
    for (let i = 0; i < 20; i++) wal.append(ents(1 + i * 10, Array(10).fill(1), 64));
    wal.createSnapshot(150, conf, new Uint8Array([5]), 100);
    const stillThere = wal.entries(51, 201, Infinity);
    expect(stillThere.length).toBe(150);
    expect(stillThere.every((e, i) => e.index === 51 + i && e.data.length === 64)).toBe(true);
    wal.close();

    const reopened = WalStorage.open(dir, { segmentSizeBytesMax: 4096, preallocateBytes: 0 });
    expect(reopened.snapshot().meta.index).toBe(150);
    expect(reopened.firstIndex()).toBe(151);
    expect(reopened.lastIndex()).toBe(200);
    expect(plain(reopened.entries(151, 201, Infinity))).toEqual(plain(ents(151, Array(50).fill(1), 64)));
    reopened.close();
  });
});
