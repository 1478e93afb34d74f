// WalStorage.abandon, what a crash of one node on a shared thread does to its log: every file
// is closed, even when closing one fails (that failure is thrown after), nothing more is
// written (a deferred hard state stays unwritten), and the log reopens as it was made durable.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EntryType } from '../../src/core/index.ts';
import { realFileSystem, WalStorage, type Fd, type FileSystem } from '../../src/storage/index.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The real file system, counting the files open, whose first `close` of a file fails after closing it. */
function countingFs(failFirstClose: boolean): FileSystem & { readonly open: FileSystem['open']; openFds: Set<Fd> } {
  const openFds = new Set<Fd>();
  let failed = !failFirstClose;
  return {
    ...realFileSystem,
    openFds,
    open: (path, mode) => {
      const fd = realFileSystem.open(path, mode);
      openFds.add(fd);
      return fd;
    },
    close: (fd) => {
      realFileSystem.close(fd);
      openFds.delete(fd);
      if (!failed) {
        failed = true;
        throw Object.assign(new Error('close failed'), { code: 'EIO' });
      }
    },
  };
}

const entry = (index: number) => ({ index, term: 1, type: EntryType.Normal, data: new Uint8Array(64).fill(index) });

describe('WalStorage.abandon', () => {
  it('closes every file even when closing one fails, throws that failure after, and writes nothing more', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringraft-abandon-'));
    dirs.push(dir);
    const fs = countingFs(true);
    // Small segments, so that reading old entries opens read descriptors beside the active one.
    const wal = WalStorage.open(dir, { fs, segmentSizeBytesMax: 4096 });
    for (let i = 1; i <= 200; i++) wal.persist({ entries: [entry(i)], hardState: { term: 1, vote: 1, commit: i - 1 } });
    wal.entries(1, 200, Infinity);
    // A commit index alone is deferred (mustSync false): abandon must not write it.
    wal.persist({ hardState: { term: 1, vote: 1, commit: 200 }, mustSync: false });
    expect(fs.openFds.size).toBeGreaterThan(1);
    expect(() => wal.abandon()).toThrow('close failed');
    expect(fs.openFds.size).toBe(0);
    expect(() => wal.abandon()).not.toThrow();
    const reopened = WalStorage.open(dir);
    expect(reopened.lastIndex()).toBe(200);
    expect(reopened.initialState().hardState.commit).toBe(199);
    reopened.close();
  });
});
