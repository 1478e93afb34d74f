/**
 * One owner per data directory. Two clusters on one directory would both elect leaders and
 * both acknowledge writes into the same logs, and every node's WAL would be corrupt after.
 *
 * Node.js has no `flock`, and ringraft loads no native addon, so the lock is a file, `LOCK`,
 * made by linking a fully written file of our own under that name (a link fails if the name
 * exists), holding its owner's pid and the start time of
 * that process (from /proc where there is one). A lock whose owner is gone (no such pid, or
 * the pid now belongs to a process started at another time) was left by a crash and is
 * broken; a live owner's lock, in another process or in this one, is refused with
 * DATA_DIR_LOCKED. The lock is released by `close()`, and a process that dies leaves a lock
 * the next opener breaks.
 *
 * Breaking is done by renaming the stale file to a name of our own, reading it back, and
 * only then removing it: two openers racing to break one stale lock cannot both succeed,
 * because only one rename finds the file, and an opener that renamed a fresh lock by
 * mistake (its owner took it between our read and our rename) puts it back and gives up.
 */
import { linkSync, readFileSync, readlinkSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, RingraftError } from '../base/index.ts';

export const LOCK_FILE = 'LOCK';

interface LockOwner {
  /** The machine and pid namespace the pid belongs to: a pid means nothing elsewhere. */
  readonly host: string;
  readonly pid: number;
  /** The owner's start time as the kernel reports it (clock ticks since boot); '' where unknown. */
  readonly startTime: string;
}

/** The start time of process `pid` from /proc, or '' where there is no /proc or no such process. */
function processStartTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? '';
  } catch {
    return '';
  }
}

/** This process's machine and pid namespace, as a lock records them. */
function hostOfThisProcess(): string {
  let ns = '';
  try {
    ns = readlinkSync('/proc/self/ns/pid');
  } catch {
    // No /proc: the host name alone.
  }
  return `${hostname()}${ns === '' ? '' : `/${ns}`}`;
}

function isAlive(owner: LockOwner): boolean {
  // An owner on another machine or in another pid namespace (a container, a network file
  // system) cannot be looked up from here: its lock is never taken for stale.
  if (owner.host !== hostOfThisProcess()) return true;
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const startTime = processStartTime(owner.pid);
  return owner.startTime === '' || startTime === '' || startTime === owner.startTime;
}

function parseOwner(text: string): LockOwner | undefined {
  const match = /^host (.*)\npid (\d+)\nstart ([0-9]*)\n$/.exec(text);
  if (match === null) return undefined;
  return { host: match[1]!, pid: Number(match[2]), startTime: match[3]! };
}

/** A held lock on a data directory. */
export class DataDirLock {
  private released = false;

  private constructor(
    readonly dir: string,
    private readonly content: string,
  ) {}

  /**
   * Takes the lock on `dir` (which must exist). Throws DATA_DIR_LOCKED if a live process,
   * this one included, holds it.
   */
  static acquire(dir: string): DataDirLock {
    const path = join(dir, LOCK_FILE);
    const content = `host ${hostOfThisProcess()}\npid ${process.pid}\nstart ${processStartTime(process.pid)}\n`;
    // The content is written to a file of our own first and then linked under the lock's
    // name, which fails if the name exists: a lock file is never seen half written.
    const mine = `${path}.${process.pid}-${Math.floor(Math.random() * 2 ** 32).toString(16)}`;
    writeFileSync(mine, content);
    try {
      // Two tries: the second after breaking a stale lock.
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          linkSync(mine, path);
          return new DataDirLock(dir, content);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
        const text = readText(path);
        // Gone between our link and our read: its owner released it; try again.
        if (text === undefined) continue;
        const owner = parseOwner(text);
        // A file we cannot read as a lock is not ours to break.
        if (owner === undefined || isAlive(owner)) throw locked(dir, owner);
        breakStale(path, text, dir);
      }
      throw locked(dir, undefined);
    } finally {
      unlinkSync(mine);
    }
  }

  /** Gives the lock up (only if the file is still ours). */
  release(): void {
    if (this.released) return;
    this.released = true;
    const path = join(this.dir, LOCK_FILE);
    if (readText(path) === this.content) unlinkSync(path);
  }
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Removes the stale lock that read as `text`, unless someone took the lock meanwhile. */
function breakStale(path: string, text: string, dir: string): void {
  const aside = `${path}.stale-${process.pid}-${Math.floor(Math.random() * 2 ** 32).toString(16)}`;
  try {
    renameSync(path, aside);
  } catch (error) {
    // Someone else broke it first.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (readText(aside) === text) {
    unlinkSync(aside);
    return;
  }
  // We moved a live lock taken after our read: put it back (unless yet another opener got in).
  try {
    linkSync(aside, path);
  } finally {
    unlinkSync(aside);
  }
  throw locked(dir, parseOwner(readText(path) ?? ''));
}

function locked(dir: string, owner: LockOwner | undefined): RingraftError {
  const who =
    owner === undefined
      ? `an opener whose ${LOCK_FILE} file cannot be read as a lock (delete it if no cluster uses the directory)`
      : owner.host !== hostOfThisProcess()
        ? `process ${owner.pid} on ${owner.host} (another machine or pid namespace: delete ${LOCK_FILE} by hand if it is gone)`
        : owner.pid === process.pid
          ? `another cluster in this process (pid ${owner.pid}); close() it first`
          : `process ${owner.pid}`;
  return new RingraftError(ErrorCode.DATA_DIR_LOCKED, `data directory ${dir} is in use by ${who}`);
}
