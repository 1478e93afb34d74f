// Proves the simulated disk keeps its stated fault model: synced data always survives a
// crash; unsynced writes survive only as an in-order prefix whose last write may be torn,
// never reordered and never garbage; unsynced directory changes may be undone; and bit
// flips land in synced data before the last synced write; a wipe deletes a directory's files
// for good, synced or not, and no crash brings them back.
import { describe, expect, it } from 'vitest';
import { Rand } from '../../src/core/index.ts';
import { SimFileSystem } from '../../src/sim/sim-fs.ts';

const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

function readAll(fs: SimFileSystem, path: string): Uint8Array {
  const fd = fs.open(path, 'read');
  const out = new Uint8Array(fs.size(fd));
  fs.read(fd, out, 0);
  fs.close(fd);
  return out;
}

describe('SimFileSystem', () => {
  it('keeps synced data across a crash, and reads see writes before any sync', () => {
    const fs = new SimFileSystem();
    const fd = fs.open('/d/a', 'createExclusive');
    fs.syncDir('/d');
    fs.writev(fd, [bytes(10, 1), bytes(5, 2)], 0);
    expect(readAll(fs, '/d/a')).toEqual(new Uint8Array([...bytes(10, 1), ...bytes(5, 2)]));
    fs.fdatasync(fd);
    for (let seed = 0; seed < 20; seed++) {
      fs.crash(new Rand(seed));
      expect(readAll(fs, '/d/a')).toEqual(new Uint8Array([...bytes(10, 1), ...bytes(5, 2)]));
    }
    expect(() => fs.size(fd)).toThrow(/EBADF/);
  });

  it('after a crash, unsynced writes survive as an in-order prefix, the last possibly torn', () => {
    const seen = new Set<string>();
    for (let seed = 0; seed < 200; seed++) {
      const fs = new SimFileSystem();
      const fd = fs.open('/d/a', 'createExclusive');
      fs.syncDir('/d');
      fs.writev(fd, [bytes(4, 1)], 0);
      fs.fdatasync(fd);
      fs.writev(fd, [bytes(4, 2)], 4);
      fs.writev(fd, [bytes(4, 3)], 8);
      fs.writev(fd, [bytes(4, 4)], 12);
      fs.crash(new Rand(seed));
      const after = [...readAll(fs, '/d/a')];
      // The synced prefix is there; then values 2, 3, 4 in order, each run whole except maybe the last.
      expect(after.slice(0, 4)).toEqual([1, 1, 1, 1]);
      const rest = after.slice(4);
      const expected = [2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4];
      expect(rest).toEqual(expected.slice(0, rest.length));
      seen.add(String(rest.length));
    }
    // Every outcome from nothing to everything, torn ones included, occurs.
    expect(seen.has('0')).toBe(true);
    expect(seen.has('12')).toBe(true);
    expect([...seen].some((n) => Number(n) % 4 !== 0)).toBe(true);
  });

  it('may undo a file creation, rename or unlink that was not followed by syncDir', () => {
    let undone = 0;
    let kept = 0;
    for (let seed = 0; seed < 50; seed++) {
      const fs = new SimFileSystem();
      const fd = fs.open('/d/a', 'createExclusive');
      fs.writev(fd, [bytes(3, 7)], 0);
      fs.fdatasync(fd);
      fs.crash(new Rand(seed));
      if (fs.paths().includes('/d/a')) kept++;
      else undone++;
    }
    expect(undone).toBeGreaterThan(0);
    expect(kept).toBeGreaterThan(0);

    const fs = new SimFileSystem();
    const fd = fs.open('/d/tmp', 'createExclusive');
    fs.writev(fd, [bytes(3, 9)], 0);
    fs.fdatasync(fd);
    fs.close(fd);
    fs.rename('/d/tmp', '/d/final');
    fs.syncDir('/d');
    fs.crash(new Rand(1));
    expect(fs.paths()).toEqual(['/d/final']);
    expect(readAll(fs, '/d/final')).toEqual(bytes(3, 9));
  });

  it('flips a bit only in synced data before the last synced write', () => {
    for (let seed = 0; seed < 50; seed++) {
      const fs = new SimFileSystem();
      const fd = fs.open('/d/a', 'createExclusive');
      fs.syncDir('/d');
      fs.writev(fd, [bytes(100, 0)], 0);
      fs.fdatasync(fd);
      fs.writev(fd, [bytes(50, 0)], 100);
      fs.fdatasync(fd);
      const offset = fs.flipDurableBit('/d/a', new Rand(seed));
      expect(offset).toBeDefined();
      expect(offset!).toBeLessThan(100);
      const after = readAll(fs, '/d/a');
      const flipped = after.findIndex((b) => b !== 0);
      expect(flipped).toBe(offset);
      expect(after.filter((b) => b !== 0).length).toBe(1);
      fs.crash(new Rand(seed));
      expect(readAll(fs, '/d/a')[offset!]).not.toBe(0);
    }
  });

  it('wipes every file under a directory for good, and only there', () => {
    for (let seed = 0; seed < 20; seed++) {
      const fs = new SimFileSystem();
      for (const path of ['/n1/a', '/n1/b', '/n2/a']) {
        const fd = fs.open(path, 'createExclusive');
        fs.writev(fd, [bytes(8, 5)], 0);
        fs.fdatasync(fd);
        fs.close(fd);
      }
      fs.syncDir('/n1');
      fs.syncDir('/n2');
      // Unsynced changes under the directory too: a new file, a rename and an unlink.
      fs.close(fs.open('/n1/c', 'createExclusive'));
      fs.rename('/n1/b', '/n1/d');
      fs.unlink('/n1/a');
      expect(fs.wipe('/n1')).toBe(2);
      expect(fs.paths()).toEqual(['/n2/a']);
      fs.crash(new Rand(seed));
      expect(fs.paths()).toEqual(['/n2/a']);
      expect(readAll(fs, '/n2/a')).toEqual(bytes(8, 5));
    }
  });

  it('refuses to wipe a directory with a file open in it', () => {
    const fs = new SimFileSystem();
    fs.open('/n1/a', 'createExclusive');
    expect(() => fs.wipe('/n1')).toThrow(/open while its directory is wiped/);
  });
});
