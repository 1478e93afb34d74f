// Proves the file system layer: realFileSystem's calls do what the WAL relies on (positional
// writev, read at offset, truncate, size, rename, directory sync, exclusive create), the
// writevFully/readFully helpers continue short transfers, and FaultyFileSystem injects
// exactly the faults its plan names (EIO on the nth write or sync, short writes, a torn
// write that keeps a prefix and then "kills" the process, a crash before the nth mutation).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FaultyFileSystem, SimulatedCrash, dropPrefix, readFully, realFileSystem, takePrefix, writevFully } from '../../src/storage/fs.ts';
import { tempDir } from './helpers.ts';

const dir = tempDir('ringraft-fs-');
const bytes = (...xs: number[]) => Uint8Array.from(xs);

describe('realFileSystem', () => {
  it('writes at positions, reads at offsets, truncates, renames and lists', () => {
    const fs = realFileSystem;
    const path = join(dir, 'a.bin');
    const fd = fs.open(path, 'createExclusive');
    expect(fs.writev(fd, [bytes(1, 2), bytes(3)], 0)).toBe(3);
    expect(fs.writev(fd, [bytes(9)], 10)).toBe(1);
    fs.fdatasync(fd);
    expect(fs.size(fd)).toBe(11);
    const target = new Uint8Array(4);
    expect(fs.read(fd, target, 1)).toBe(4);
    expect([...target]).toEqual([2, 3, 0, 0]);
    fs.ftruncate(fd, 2);
    expect(fs.size(fd)).toBe(2);
    expect(readFully(fs, fd, new Uint8Array(10), 0)).toBe(2);
    fs.close(fd);
    expect(() => fs.open(path, 'createExclusive')).toThrow(/EEXIST/);
    fs.rename(path, join(dir, 'b.bin'));
    fs.syncDir(dir);
    fs.mkdirp(join(dir, 'x', 'y'));
    expect(fs.readdir(dir).sort()).toEqual(['b.bin', 'x']);
    fs.unlink(join(dir, 'b.bin'));
    expect(fs.readdir(dir)).toEqual(['x']);
  });
});

describe('iovec helpers', () => {
  it('take and drop prefixes without copying', () => {
    const a = bytes(1, 2, 3);
    const b = bytes(4, 5);
    expect(takePrefix([a, b], 4).map((x) => [...x])).toEqual([[1, 2, 3], [4]]);
    expect(dropPrefix([a, b], 4).map((x) => [...x])).toEqual([[5]]);
    expect(dropPrefix([a, b], 3)[0]).toBe(b);
    expect(takePrefix([a, b], 0)).toEqual([]);
  });
});

describe('FaultyFileSystem', () => {
  it('fails the nth writev with EIO, writing nothing', () => {
    const fs = new FaultyFileSystem(realFileSystem, { writeFailAt: 2 });
    const fd = fs.open(join(dir, 'w.bin'), 'createTruncate');
    fs.writev(fd, [bytes(1)], 0);
    expect(() => fs.writev(fd, [bytes(2)], 1)).toThrow(expect.objectContaining({ code: 'EIO', syscall: 'write' }));
    fs.writev(fd, [bytes(3)], 1);
    expect(fs.size(fd)).toBe(2);
    fs.close(fd);
  });

  it('fails the nth fdatasync with EIO', () => {
    const fs = new FaultyFileSystem(realFileSystem, { syncFailAt: 1 });
    const fd = fs.open(join(dir, 's.bin'), 'createTruncate');
    expect(() => fs.fdatasync(fd)).toThrow(expect.objectContaining({ code: 'EIO', syscall: 'fdatasync' }));
    fs.fdatasync(fd);
    expect(fs.syncs).toBe(2);
    fs.close(fd);
  });

  it('makes short writes that writevFully continues', () => {
    const fs = new FaultyFileSystem(realFileSystem, { writeBytesMax: 3 });
    const path = join(dir, 'short.bin');
    const fd = fs.open(path, 'createTruncate');
    expect(fs.writev(fd, [bytes(1, 2), bytes(3, 4, 5)], 0)).toBe(3);
    writevFully(fs, fd, [bytes(1, 2), bytes(3, 4, 5), bytes(6, 7, 8, 9)], 0);
    fs.close(fd);
    expect([...readFileSync(path)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('tears a write: keeps a prefix, then every call fails as if the process were gone', () => {
    const fs = new FaultyFileSystem(realFileSystem, { tornWriteAt: { call: 2, keepBytes: 3 } });
    const path = join(dir, 'torn.bin');
    const fd = fs.open(path, 'createTruncate');
    fs.writev(fd, [bytes(1)], 0);
    expect(() => fs.writev(fd, [bytes(2, 3), bytes(4, 5)], 1)).toThrow(SimulatedCrash);
    expect(fs.crashed).toBe(true);
    expect(() => fs.fdatasync(fd)).toThrow(SimulatedCrash);
    expect(() => fs.readdir(dir)).toThrow(SimulatedCrash);
    fs.close(fd);
    expect([...readFileSync(path)]).toEqual([1, 2, 3, 4]);
  });

  it('crashes just before the nth call that changes the disk', () => {
    const path = join(dir, 'm.bin');
    writeFileSync(path, bytes(7));
    const fs = new FaultyFileSystem(realFileSystem, { crashAtMutation: 3 });
    const fd = fs.open(path, 'readWrite'); // Not a mutation.
    fs.writev(fd, [bytes(1)], 0); // 1
    fs.fdatasync(fd); // 2
    expect(() => fs.rename(path, join(dir, 'n.bin'))).toThrow(SimulatedCrash); // 3: not done
    fs.close(fd);
    expect(fs.mutations).toBe(3);
    expect(realFileSystem.readdir(dir)).toContain('m.bin');
  });
});
