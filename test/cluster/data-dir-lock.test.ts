// The data directory lock on its own: taken once, refused while its owner lives (this
// process included), broken when its owner is gone (no such pid, or the pid now names a
// process started at another time), never broken when it cannot be read as a lock, and
// released only by its owner.
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { codeOf, tempDir } from '../storage/helpers.ts';
import { DataDirLock, LOCK_FILE } from '../../src/cluster/data-dir-lock.ts';
import { ErrorCode } from '../../src/index.ts';

function dir(): string {
  return tempDir('ringraft-lock-');
}

/** A pid that names no process (the highest pids are free on any ordinary machine). */
function deadPid(): number {
  for (let pid = 4_194_000; pid > 4_000_000; pid--) {
    try {
      process.kill(pid, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') return pid;
    }
  }
  throw new Error('no free pid found');
}

/** The host line this process writes in a lock. */
function hostLine(): string {
  const d = dir();
  const lock = DataDirLock.acquire(d);
  const line = readFileSync(join(d, LOCK_FILE), 'utf8').split('\n')[0]!;
  lock.release();
  return line;
}

describe('DataDirLock', () => {
  it('is refused while held in this process, and free again after release', () => {
    const d = dir();
    const lock = DataDirLock.acquire(d);
    expect(readFileSync(join(d, LOCK_FILE), 'utf8')).toMatch(new RegExp(`^host .+\\npid ${process.pid}\\nstart \\d+\\n$`));
    expect(codeOf(() => DataDirLock.acquire(d))).toBe(ErrorCode.DATA_DIR_LOCKED);
    lock.release();
    expect(readdirSync(d)).toEqual([]);
    DataDirLock.acquire(d).release();
  });

  it('breaks a lock whose owner is gone, or whose pid was reused by a process started later', () => {
    const d = dir();
    const host = hostLine();
    writeFileSync(join(d, LOCK_FILE), `${host}\npid ${deadPid()}\nstart 12345\n`);
    const lock = DataDirLock.acquire(d);
    lock.release();
    // Our own pid, but another start time: the process that wrote it is gone.
    writeFileSync(join(d, LOCK_FILE), `${host}\npid ${process.pid}\nstart 1\n`);
    DataDirLock.acquire(d).release();
    // Nothing of ours is left behind.
    expect(readdirSync(d)).toEqual([]);
  });

  it('never breaks a file it cannot read as a lock, and release leaves a lock that is not its own', () => {
    const d = dir();
    writeFileSync(join(d, LOCK_FILE), 'something else\n');
    expect(codeOf(() => DataDirLock.acquire(d))).toBe(ErrorCode.DATA_DIR_LOCKED);
    expect(readFileSync(join(d, LOCK_FILE), 'utf8')).toBe('something else\n');
    rmSync(join(d, LOCK_FILE));
    const lock = DataDirLock.acquire(d);
    // Someone replaced the file meanwhile (by hand): release does not remove theirs.
    writeFileSync(join(d, LOCK_FILE), `${hostLine()}\npid ${process.pid}\nstart 99\n`);
    lock.release();
    expect(readdirSync(d)).toEqual([LOCK_FILE]);
  });

  it('never breaks the lock of an owner on another machine or in another pid namespace, whose pid means nothing here', () => {
    const d = dir();
    const foreign = `host elsewhere/pid:[1]\npid ${deadPid()}\nstart 12345\n`;
    writeFileSync(join(d, LOCK_FILE), foreign);
    let message = '';
    try {
      DataDirLock.acquire(d);
    } catch (error) {
      message = (error as Error).message;
      expect((error as { code?: string }).code).toBe(ErrorCode.DATA_DIR_LOCKED);
    }
    expect(message).toMatch(/on elsewhere\/pid:\[1\] \(another machine or pid namespace/);
    expect(readFileSync(join(d, LOCK_FILE), 'utf8')).toBe(foreign);
  });
});
