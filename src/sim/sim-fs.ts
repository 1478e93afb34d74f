/**
 * The simulated disk: an in-memory {@link FileSystem} that the simulator can crash and
 * corrupt, so the real WAL and its recovery run under simulated faults.
 *
 * Fault model (what a crash or the media can do; what they cannot is as important):
 *
 * 1. Data reaches the disk in the order it was written. An `fdatasync` makes everything
 *    written to that file so far durable.
 * 2. A crash keeps every file's durable contents, then replays a random prefix of the
 *    writes and truncations made since the file's last sync. The last write replayed may be
 *    torn: only a prefix of its bytes lands. Nothing lands out of order, and nothing that was
 *    never written appears (no garbage).
 * 3. A directory change (create, rename, unlink) is durable once `syncDir` is called on the
 *    directory. After a crash, each change made since then survives or is undone, at random,
 *    independently.
 * 4. A bit flip (`flipDurableBit`) changes one bit of synced data, before the file's last
 *    synced write, so that a corrupt record is followed by good ones (corruption "in the
 *    middle", which the WAL must report rather than cut off as a torn tail).
 * 5. A wipe (`wipe`) deletes every file under a directory for good, synced or not, as a
 *    lost or replaced disk, or a mistaken `rm -rf`, does: no crash brings any of them back.
 *
 * All randomness comes from the Rand given, so a seed replays the same faults.
 */
import { fail } from '../base/index.ts';
import type { Rand } from '../core/index.ts';
import { SimulatedCrash, type Fd, type FileSystem, type OpenMode } from '../storage/index.ts';

interface SimFile {
  /** What reads see: durable contents plus every write since. */
  data: Uint8Array;
  size: number;
  /** What survives a crash for certain. */
  durable: Uint8Array;
  durableSize: number;
  /** Writes and truncations since the last sync, oldest first. */
  pending: PendingOp[];
  /** Start of the last synced write; bit flips land before it. */
  lastSyncedWriteAt: number;
}

type PendingOp = { kind: 'write'; position: number; bytes: Uint8Array } | { kind: 'truncate'; size: number };

type DirChange = { kind: 'create'; path: string } | { kind: 'unlink'; path: string; file: SimFile } | { kind: 'rename'; from: string; to: string; replaced: SimFile | undefined };

export class SimFileSystem implements FileSystem {
  /** When set, the next fdatasync throws SimulatedCrash instead of syncing (a crash mid-write). */
  crashAtNextSync = false;
  /**
   * When set, the next syncDir throws SimulatedCrash before it syncs (a crash between the
   * steps of a change of several files: a segment created, a snapshot's files replaced,
   * segments deleted), whenever that next call comes.
   */
  crashAtNextSyncDir = false;
  private files = new Map<string, SimFile>();
  private fds = new Map<Fd, { path: string; file: SimFile; writable: boolean }>();
  private fdNext = 3;
  /** Directory changes since the last syncDir of their directory, oldest first. */
  private dirChanges: DirChange[] = [];
  /** Bytes the disk holds at most, so a runaway writer fails loudly. */
  readonly bytesMax: number;

  constructor(bytesMax = 256 << 20) {
    this.bytesMax = bytesMax;
  }

  open(path: string, mode: OpenMode): Fd {
    let file = this.files.get(path);
    if (mode === 'read' || mode === 'readWrite') {
      if (file === undefined) throw fsError('ENOENT', `no such file: ${path}`);
    } else if (mode === 'createExclusive') {
      if (file !== undefined) throw fsError('EEXIST', `file exists: ${path}`);
      file = this.create(path);
    } else if (file === undefined) {
      file = this.create(path);
    } else {
      this.truncateFile(file, 0);
    }
    const fd = this.fdNext++;
    this.fds.set(fd, { path, file, writable: mode !== 'read' });
    return fd;
  }

  writev(fd: Fd, buffers: readonly Uint8Array[], position: number): number {
    const f = this.handle(fd);
    if (!f.writable) throw fsError('EBADF', 'file not open for writing');
    let total = 0;
    for (const b of buffers) total += b.length;
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const b of buffers) {
      bytes.set(b, at);
      at += b.length;
    }
    this.applyWrite(f.file, position, bytes);
    f.file.pending.push({ kind: 'write', position, bytes });
    return total;
  }

  fdatasync(fd: Fd): void {
    const file = this.handle(fd).file;
    if (this.crashAtNextSync) {
      this.crashAtNextSync = false;
      throw new SimulatedCrash();
    }
    for (let i = file.pending.length - 1; i >= 0; i--) {
      const op = file.pending[i]!;
      if (op.kind === 'write') {
        file.lastSyncedWriteAt = op.position;
        break;
      }
    }
    file.durable = file.data.slice(0, file.size);
    file.durableSize = file.size;
    file.pending = [];
  }

  read(fd: Fd, target: Uint8Array, position: number): number {
    const file = this.handle(fd).file;
    if (position >= file.size) return 0;
    const n = Math.min(target.length, file.size - position);
    target.set(file.data.subarray(position, position + n));
    return n;
  }

  ftruncate(fd: Fd, lengthBytes: number): void {
    const f = this.handle(fd);
    if (!f.writable) throw fsError('EBADF', 'file not open for writing');
    this.truncateFile(f.file, lengthBytes);
    f.file.pending.push({ kind: 'truncate', size: lengthBytes });
  }

  size(fd: Fd): number {
    return this.handle(fd).file.size;
  }

  close(fd: Fd): void {
    this.handle(fd);
    this.fds.delete(fd);
  }

  readdir(dir: string): string[] {
    const prefix = dir.endsWith('/') ? dir : dir + '/';
    const out: string[] = [];
    for (const path of this.files.keys()) {
      if (path.startsWith(prefix) && !path.slice(prefix.length).includes('/')) out.push(path.slice(prefix.length));
    }
    return out.sort();
  }

  unlink(path: string): void {
    const file = this.files.get(path);
    if (file === undefined) throw fsError('ENOENT', `no such file: ${path}`);
    this.files.delete(path);
    this.dirChanges.push({ kind: 'unlink', path, file });
  }

  rename(from: string, to: string): void {
    const file = this.files.get(from);
    if (file === undefined) throw fsError('ENOENT', `no such file: ${from}`);
    const replaced = this.files.get(to);
    this.files.delete(from);
    this.files.set(to, file);
    this.dirChanges.push({ kind: 'rename', from, to, replaced });
  }

  mkdirp(_dir: string): void {
    // Directories are implicit in paths here.
  }

  syncDir(dir: string): void {
    if (this.crashAtNextSyncDir) {
      this.crashAtNextSyncDir = false;
      throw new SimulatedCrash();
    }
    const prefix = dir.endsWith('/') ? dir : dir + '/';
    const inDir = (p: string): boolean => p.startsWith(prefix) && !p.slice(prefix.length).includes('/');
    this.dirChanges = this.dirChanges.filter((c) => !(c.kind === 'rename' ? inDir(c.from) || inDir(c.to) : inDir(c.path)));
  }

  /**
   * A crash: open files are gone, unsynced writes survive only as a random in-order prefix
   * (the last one possibly torn), and unsynced directory changes survive or are undone at
   * random. Returns how many files lost unsynced data.
   */
  crash(rand: Rand): number {
    this.fds.clear();
    // Undo directory changes newest first, each with probability 1/2.
    for (let i = this.dirChanges.length - 1; i >= 0; i--) {
      const c = this.dirChanges[i]!;
      if (!rand.chance(0.5)) continue;
      if (c.kind === 'create') this.files.delete(c.path);
      else if (c.kind === 'unlink') this.files.set(c.path, c.file);
      else {
        const file = this.files.get(c.to);
        if (file !== undefined) this.files.set(c.from, file);
        if (c.replaced !== undefined) this.files.set(c.to, c.replaced);
        else this.files.delete(c.to);
      }
    }
    this.dirChanges = [];
    let lost = 0;
    for (const file of this.files.values()) {
      if (file.pending.length === 0) continue;
      lost++;
      const keep = rand.int(0, file.pending.length + 1);
      const ops = file.pending.slice(0, keep);
      file.data = file.durable.slice();
      file.size = file.durableSize;
      ops.forEach((op, i) => {
        if (op.kind === 'truncate') this.truncateFile(file, op.size);
        else {
          const torn = i === ops.length - 1 && rand.chance(0.5);
          const bytes = torn ? op.bytes.subarray(0, rand.int(0, op.bytes.length)) : op.bytes;
          this.applyWrite(file, op.position, bytes);
        }
      });
      file.pending = [];
      file.durable = file.data.slice(0, file.size);
      file.durableSize = file.size;
    }
    return lost;
  }

  /**
   * Flips one random bit of durable data before the file's last synced write. Returns the
   * byte offset flipped, or undefined if the file has no such data.
   */
  flipDurableBit(path: string, rand: Rand): number | undefined {
    const file = this.files.get(path);
    if (file === undefined || file.lastSyncedWriteAt <= 0 || file.pending.length > 0) return undefined;
    const offset = rand.int(0, Math.min(file.lastSyncedWriteAt, file.durableSize));
    const bit = 1 << rand.int(0, 8);
    file.durable[offset]! ^= bit;
    file.data[offset]! ^= bit;
    return offset;
  }

  /**
   * Deletes every file under `dir` (at any depth) for good: a lost disk. Undoes nothing and
   * leaves nothing for a crash to bring back. No file under `dir` may be open (wipe a crashed
   * node's directory). Returns how many files were deleted.
   */
  wipe(dir: string): number {
    const prefix = dir.endsWith('/') ? dir : dir + '/';
    for (const f of this.fds.values()) {
      if (f.path.startsWith(prefix)) fail(`${f.path} is open while its directory is wiped`);
    }
    const under = (p: string): boolean => p.startsWith(prefix);
    let deleted = 0;
    for (const path of [...this.files.keys()]) {
      if (!under(path)) continue;
      this.files.delete(path);
      deleted++;
    }
    // A pending change under `dir` undone by a later crash would bring a file back.
    this.dirChanges = this.dirChanges.filter((c) => !(c.kind === 'rename' ? under(c.from) || under(c.to) : under(c.path)));
    return deleted;
  }

  /** Every file's path, sorted. */
  paths(): string[] {
    return [...this.files.keys()].sort();
  }

  fileSize(path: string): number | undefined {
    return this.files.get(path)?.size;
  }

  private create(path: string): SimFile {
    const file: SimFile = { data: new Uint8Array(0), size: 0, durable: new Uint8Array(0), durableSize: 0, pending: [], lastSyncedWriteAt: 0 };
    this.files.set(path, file);
    this.dirChanges.push({ kind: 'create', path });
    return file;
  }

  /** Whether `fd` is open. */
  isOpen(fd: Fd): boolean {
    return this.fds.has(fd);
  }

  /** Directory changes a crash could still undo (made since the last syncDir of their directory). */
  dirChangesUnsynced(): number {
    return this.dirChanges.length;
  }

  private handle(fd: Fd): { path: string; file: SimFile; writable: boolean } {
    const f = this.fds.get(fd);
    if (f === undefined) throw fsError('EBADF', `bad file descriptor ${fd}`);
    return f;
  }

  private applyWrite(file: SimFile, position: number, bytes: Uint8Array): void {
    const end = position + bytes.length;
    if (end > this.bytesMax) throw fsError('ENOSPC', `simulated disk full at ${end} bytes`);
    if (end > file.data.length) {
      const grown = new Uint8Array(Math.max(end, file.data.length * 2, 4096));
      grown.set(file.data.subarray(0, file.size));
      file.data = grown;
    }
    if (position > file.size) file.data.fill(0, file.size, position);
    file.data.set(bytes, position);
    file.size = Math.max(file.size, end);
  }

  private truncateFile(file: SimFile, size: number): void {
    if (size < file.size) file.data.fill(0, size, file.size);
    else if (size > file.data.length) {
      const grown = new Uint8Array(size);
      grown.set(file.data.subarray(0, file.size));
      file.data = grown;
    }
    file.size = size;
  }
}

function fsError(code: string, message: string): Error {
  const error = new Error(`${code}: ${message}`) as NodeJS.ErrnoException;
  error.code = code;
  return error;
}
