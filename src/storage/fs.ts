/**
 * The file system as the WAL sees it: a handful of synchronous calls, behind an interface so
 * that tests can inject faults and the simulator can crash it.
 *
 * Synchronous on purpose: each Raft node owns a worker thread, and the core reads its log
 * through the synchronous {@link Storage} interface, so blocking that thread on the disk is
 * what we want (the main thread never opens a WAL).
 *
 * Writes name their position (`pwritev`): the WAL always knows where its tail is, and a
 * positional write cannot be misplaced by a stale file offset after a truncation.
 */
import { fail } from '../base/index.ts';
import { join } from 'node:path';
import {
  closeSync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writevSync,
} from 'node:fs';

/**
 * How a file is opened.
 * - `read`: read only; the file must exist.
 * - `readWrite`: read and write; the file must exist.
 * - `createExclusive`: create a new file for reading and writing; fails if it exists.
 * - `createTruncate`: create the file, or empty an existing one, for reading and writing.
 */
export type OpenMode = 'read' | 'readWrite' | 'createExclusive' | 'createTruncate';

/** A file descriptor handed out by a {@link FileSystem}. */
export type Fd = number;

export interface FileSystem {
  open(path: string, mode: OpenMode): Fd;
  /**
   * Writes `buffers`, in order, at byte `position`. Returns the bytes written, which may be
   * fewer than asked (a short write); the caller writes the rest. The buffers are lent for
   * the call only: the WAL reuses them for its next batch, so an implementation that keeps
   * the bytes (a simulated disk) must copy them before returning.
   */
  writev(fd: Fd, buffers: readonly Uint8Array[], position: number): number;
  /** Makes the file's data (and the metadata needed to read it, such as its size) durable. */
  fdatasync(fd: Fd): void;
  /** Reads up to `target.length` bytes at `position`; returns the count, 0 at end of file. */
  read(fd: Fd, target: Uint8Array, position: number): number;
  ftruncate(fd: Fd, lengthBytes: number): void;
  /** The file's size in bytes. */
  size(fd: Fd): number;
  close(fd: Fd): void;
  /** Names of the entries in `dir` (not paths). */
  readdir(dir: string): string[];
  unlink(path: string): void;
  rename(from: string, to: string): void;
  /** Creates `dir` and any missing parents; no error if it exists. */
  mkdirp(dir: string): void;
  /**
   * Makes `dir`'s entries durable (fsync of the directory): needed after a file in it was
   * created, renamed or deleted, or that change may be lost in a crash.
   */
  syncDir(dir: string): void;
}

const OPEN_FLAGS: Record<OpenMode, string> = {
  read: 'r',
  readWrite: 'r+',
  createExclusive: 'wx+',
  createTruncate: 'w+',
};

/** The real file system, through node:fs's synchronous calls. */
export const realFileSystem: FileSystem = {
  open: (path, mode) => openSync(path, OPEN_FLAGS[mode]),
  writev: (fd, buffers, position) => writevSync(fd, buffers, position),
  fdatasync: (fd) => fdatasyncSync(fd),
  read: (fd, target, position) => readSync(fd, target, 0, target.length, position),
  ftruncate: (fd, lengthBytes) => ftruncateSync(fd, lengthBytes),
  size: (fd) => fstatSync(fd).size,
  close: (fd) => closeSync(fd),
  readdir: (dir) => readdirSync(dir),
  unlink: (path) => unlinkSync(path),
  rename: (from, to) => renameSync(from, to),
  mkdirp: (dir) => void mkdirSync(dir, { recursive: true }),
  syncDir: (dir) => {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  },
};

/** Writes all of `buffers` at `position`, calling `fs.writev` again after a short write. */
export function writevFully(fs: FileSystem, fd: Fd, buffers: readonly Uint8Array[], position: number): void {
  let total = 0;
  for (const b of buffers) total += b.length;
  let done = fs.writev(fd, buffers, position);
  while (done < total) {
    if (done <= 0) fail(`writev makes progress (at byte ${position + done})`);
    const written = done;
    done += fs.writev(fd, dropPrefix(buffers, written), position + written);
  }
}

/** The suffix of a file being written before its rename into place; recovery removes leftovers. */
export const TEMP_SUFFIX = '.tmp';

/**
 * Writes a whole small file durably under `name` in `dir`: a temporary file, synced, renamed
 * into place, and the directory synced (the syncs only if `sync`), so that a crash leaves
 * either the old file or the whole new one under the final name, never a part.
 */
export function writeFileAtomically(fs: FileSystem, dir: string, name: string, buffers: readonly Uint8Array[], sync: boolean): void {
  const temp = join(dir, name + TEMP_SUFFIX);
  const fd = fs.open(temp, 'createTruncate');
  try {
    writevFully(fs, fd, buffers, 0);
    if (sync) fs.fdatasync(fd);
  } finally {
    fs.close(fd);
  }
  fs.rename(temp, join(dir, name));
  if (sync) fs.syncDir(dir);
}

/**
 * Reads the whole file at `path`, or undefined if it does not exist. A file larger than
 * `bytesMax` is refused before anything is allocated for it (`tooLarge` builds the error).
 */
export function readWholeFile(fs: FileSystem, path: string, bytesMax: number, tooLarge: (sizeBytes: number) => Error): Uint8Array | undefined {
  let fd: Fd;
  try {
    fd = fs.open(path, 'read');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const size = fs.size(fd);
    if (size > bytesMax) throw tooLarge(size);
    const bytes = new Uint8Array(size);
    return bytes.subarray(0, readFully(fs, fd, bytes, 0));
  } finally {
    fs.close(fd);
  }
}

/** Fills `target` from `position`; returns the bytes read, fewer only at end of file. */
export function readFully(fs: FileSystem, fd: Fd, target: Uint8Array, position: number): number {
  let done = 0;
  while (done < target.length) {
    const n = fs.read(fd, target.subarray(done), position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** `buffers` without their first `bytes` bytes (no copying: views into the same memory). */
export function dropPrefix(buffers: readonly Uint8Array[], bytes: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = bytes;
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip === 0 ? b : b.subarray(skip));
    skip = 0;
  }
  return out;
}

/** The first `bytes` bytes of `buffers`, as views into the same memory. */
export function takePrefix(buffers: readonly Uint8Array[], bytes: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let left = bytes;
  for (const b of buffers) {
    if (left === 0) break;
    out.push(left >= b.length ? b : b.subarray(0, left));
    left -= Math.min(left, b.length);
  }
  return out;
}

// ─── Fault injection ─────────────────────────────────────────────────────────────────

/**
 * What {@link FaultyFileSystem} does wrong. Calls are counted from 1, over the life of the
 * wrapper, per kind (every `writev`, every `fdatasync`).
 */
export interface FaultPlan {
  /** This `writev` call fails with EIO and writes nothing. */
  readonly writeFailAt?: number;
  /** This `fdatasync` call fails with EIO. */
  readonly syncFailAt?: number;
  /** What those two fail with: EIO (the default), or ENOSPC, a full disk. */
  readonly failWith?: 'EIO' | 'ENOSPC';
  /** Every `writev` writes at most this many bytes and reports a short count. */
  readonly writeBytesMax?: number;
  /**
   * This `writev` call persists only the first `keepBytes` bytes of what it was given, then
   * the process "dies": the call throws a {@link SimulatedCrash}, and so does every later
   * call. The test then reopens the directory with another file system, as a restarted
   * process would.
   */
  readonly tornWriteAt?: { readonly call: number; readonly keepBytes: number };
  /**
   * The process "dies" just before this call that changes the disk (counted over `writev`,
   * `fdatasync`, `ftruncate`, `unlink`, `rename`, `mkdirp`, directory syncs and opens that
   * create a file): the call does nothing and throws a {@link SimulatedCrash}, and so does
   * every later call. Stepping this through 1, 2, 3, ... crashes an operation at every point.
   */
  readonly crashAtMutation?: number;
}

/** Thrown by a {@link FaultyFileSystem} once it has "crashed". */
export class SimulatedCrash extends Error {
  constructor() {
    super('simulated crash: the process is gone');
    this.name = 'SimulatedCrash';
  }
}

/** An error shaped like the one node:fs throws for EIO (or, with `code` ENOSPC, a full disk). */
export function eioError(syscall: string, code: 'EIO' | 'ENOSPC' = 'EIO'): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(code === 'EIO' ? `EIO: i/o error, ${syscall}` : `ENOSPC: no space left on device, ${syscall}`);
  error.code = code;
  error.errno = code === 'EIO' ? -5 : -28;
  error.syscall = syscall;
  return error;
}

/**
 * Fault model: a disk that can fail one write or one sync with EIO (and what was written may
 * or may not be on disk afterwards; here, nothing of a failed write is), that may accept
 * fewer bytes per call than asked (short writes, which callers must continue), and that can
 * lose power in the middle of a write, leaving only a prefix of it (a torn write). Every
 * call passes through to `inner` otherwise; reads, directory calls and truncation never fail.
 */
export class FaultyFileSystem implements FileSystem {
  /** `writev` calls so far. */
  writes = 0;
  /** `fdatasync` calls so far. */
  syncs = 0;
  /** Directory syncs so far. */
  dirSyncs = 0;
  /** Calls that change the disk so far (see FaultPlan.crashAtMutation). */
  mutations = 0;
  /** Whether a torn write or a crash point has "killed" the process. */
  crashed = false;

  constructor(
    private readonly inner: FileSystem,
    private readonly plan: FaultPlan,
  ) {}

  private alive(): void {
    if (this.crashed) throw new SimulatedCrash();
  }

  /** Counts a call that changes the disk, and dies here if the plan says so. */
  private mutate(): void {
    this.alive();
    this.mutations++;
    if (this.plan.crashAtMutation === this.mutations) {
      this.crashed = true;
      throw new SimulatedCrash();
    }
  }

  open(path: string, mode: OpenMode): Fd {
    if (mode === 'createExclusive' || mode === 'createTruncate') this.mutate();
    else this.alive();
    return this.inner.open(path, mode);
  }

  writev(fd: Fd, buffers: readonly Uint8Array[], position: number): number {
    this.mutate();
    this.writes++;
    if (this.plan.writeFailAt === this.writes) throw eioError('write', this.plan.failWith);
    const torn = this.plan.tornWriteAt;
    if (torn !== undefined && torn.call === this.writes) {
      const prefix = takePrefix(buffers, torn.keepBytes);
      if (prefix.length > 0) writevFully(this.inner, fd, prefix, position);
      this.crashed = true;
      throw new SimulatedCrash();
    }
    const max = this.plan.writeBytesMax;
    if (max !== undefined) return this.inner.writev(fd, takePrefix(buffers, max), position);
    return this.inner.writev(fd, buffers, position);
  }

  fdatasync(fd: Fd): void {
    this.mutate();
    this.syncs++;
    if (this.plan.syncFailAt === this.syncs) throw eioError('fdatasync', this.plan.failWith);
    this.inner.fdatasync(fd);
  }

  read(fd: Fd, target: Uint8Array, position: number): number {
    this.alive();
    return this.inner.read(fd, target, position);
  }

  ftruncate(fd: Fd, lengthBytes: number): void {
    this.mutate();
    this.inner.ftruncate(fd, lengthBytes);
  }

  size(fd: Fd): number {
    this.alive();
    return this.inner.size(fd);
  }

  close(fd: Fd): void {
    // Closing always works, also after a crash, so that tests can release descriptors.
    this.inner.close(fd);
  }

  readdir(dir: string): string[] {
    this.alive();
    return this.inner.readdir(dir);
  }

  unlink(path: string): void {
    this.mutate();
    this.inner.unlink(path);
  }

  rename(from: string, to: string): void {
    this.mutate();
    this.inner.rename(from, to);
  }

  mkdirp(dir: string): void {
    this.mutate();
    this.inner.mkdirp(dir);
  }

  syncDir(dir: string): void {
    this.mutate();
    this.dirSyncs++;
    this.inner.syncDir(dir);
  }
}
