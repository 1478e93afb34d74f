/**
 * A cluster's data directory, as the main thread keeps it: made if need be, locked (`LOCK`,
 * data-dir-lock.ts), its record (`CLUSTER`, storage/cluster-manifest.ts) read or created,
 * each node's directory checked against that record before the node starts, and the record
 * rewritten as members run, join and leave.
 *
 * Every file here goes through a {@link FileSystem} (the real one by default), so that a test
 * can inject faults: a failed write of the record is a typed error, and the record in memory
 * changes only once the new one is durable, so memory never claims what the disk does not
 * hold. Two things do not: the lock, which needs `link` and `readlink` (the interface has
 * neither; see data-dir-lock.ts), and the look at the nearest existing ancestor after a
 * directory could not be made, which only explains that failure (`access` is not in the
 * interface either). The nodes' own logs are opened in their threads, with the real file
 * system: a file system object cannot cross threads.
 */
import { existsSync, accessSync, constants } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ErrorCode, RingraftError } from '../base/index.ts';
import {
  bootstrapVotersOf,
  checkNodeDirectory,
  expectationOf,
  MANIFEST_FILE,
  newManifest,
  nodeDirectoryHasLog,
  readManifest,
  writeManifest,
  type ClusterManifest,
  type FileSystem,
} from '../storage/index.ts';
import { DataDirLock } from './data-dir-lock.ts';
import { storageSetupError } from './node-failure.ts';

export class DataDirectory {
  private constructor(
    readonly dir: string,
    private readonly fs: FileSystem,
    private readonly lock: DataDirLock,
    /** The record as it is on disk: replaced only after a new one is written. */
    private manifest: ClusterManifest,
  ) {}

  /**
   * Makes `dir` if need be, locks it, and reads its record, or creates one for a new cluster
   * of `nodesDefault` nodes. `nodesGiven` (the caller's `nodes` option, if any) must agree
   * with a record that exists. Every failure is a typed error, and leaves the lock released.
   */
  static open(dir: string, nodesGiven: number | undefined, nodesDefault: number, fs: FileSystem): DataDirectory {
    makeDataDir(fs, dir);
    let lock: DataDirLock;
    try {
      lock = DataDirLock.acquire(dir);
    } catch (error) {
      throw storageSetupError(dir, 'locking it', error);
    }
    try {
      return new DataDirectory(dir, fs, lock, openManifest(fs, dir, nodesGiven, nodesDefault));
    } catch (error) {
      lock.release();
      throw storageSetupError(dir, `reading or creating its ${MANIFEST_FILE} record`, error);
    }
  }

  /** The members' ids, by ascending id. */
  memberIds(): number[] {
    return this.manifest.members.map((m) => m.id);
  }

  /** Node `id`'s WAL directory. */
  nodeDir(id: number): string {
    return join(this.dir, `node-${id}`);
  }

  /**
   * Checks node `id`'s directory against the record before the node starts (throws
   * STATE_LOST, CONFIG_MISMATCH, CORRUPT_LOG, ... as storage/node-identity.ts says), and
   * returns the voters it bootstraps with: the cluster's first configuration for an
   * original member, none for a node added later.
   */
  checkNode(id: number): readonly number[] {
    checkNodeDirectory(this.fs, this.nodeDir(id), expectationOf(this.manifest, id));
    return bootstrapVotersOf(this.manifest, id);
  }

  /**
   * Records that member `id` runs, before it runs Raft: from then on its directory must hold
   * its log, and losing it is STATE_LOST, not a new node. Nothing to do if recorded already
   * (or not a member).
   */
  noteRunning(id: number): void {
    const m = this.manifest;
    const member = m.members.find((x) => x.id === id);
    if (member === undefined || member.hasRun) return;
    this.write({ ...m, members: m.members.map((x) => (x.id === id ? { id, hasRun: true } : x)) });
  }

  /** The id the next member will have. */
  get nodeIdNext(): number {
    return this.manifest.nodeIdNext;
  }

  /** Records a new member before anything of it exists, so its id is never handed out again; returns its id. */
  addMember(): number {
    const m = this.manifest;
    const id = m.nodeIdNext;
    this.write({ ...m, nodeIdNext: id + 1, members: [...m.members, { id, hasRun: false }] });
    return id;
  }

  /** Forgets member `id` (its directory stays, for inspection; its id is never used again). */
  removeMember(id: number): void {
    const m = this.manifest;
    this.write({ ...m, members: m.members.filter((x) => x.id !== id) });
  }

  /** Unlocks the directory: it is no longer this process's to write. */
  release(): void {
    this.lock.release();
  }

  private write(next: ClusterManifest): void {
    writeManifest(this.fs, this.dir, next);
    this.manifest = next;
  }
}

/**
 * The cluster's record in `dir`, read or made. A new record is made only for a directory
 * with no node logs in it. `nodesGiven` (the caller's `nodes` option, if any) must agree with
 * the recorded membership: a count that disagrees would start nodes that bootstrap a
 * configuration of their own (two clusters in one), or leave members out.
 */
function openManifest(fs: FileSystem, dir: string, nodesGiven: number | undefined, nodesDefault: number): ClusterManifest {
  const existing = readManifest(fs, dir);
  if (existing !== undefined) {
    const ids = existing.members.map((m) => m.id);
    if (nodesGiven !== undefined && nodesGiven !== ids.length) {
      throw new RingraftError(
        ErrorCode.CONFIG_MISMATCH,
        `${dir} holds a cluster of ${ids.length} node${ids.length === 1 ? '' : 's'} (${ids.join(', ')}), and nodes: ${nodesGiven} disagrees; ` +
          'change membership with addNode() and removeNode(), or omit nodes to open the cluster as it is',
      );
    }
    return existing;
  }
  const logs = fs.readdir(dir).filter((name) => /^node-\d+$/.test(name) && nodeDirectoryHasLog(fs, join(dir, name)));
  if (logs.length > 0) {
    throw new RingraftError(
      ErrorCode.CONFIG_MISMATCH,
      `${dir} holds node logs (${logs.join(', ')}) but no ${MANIFEST_FILE} record, so their membership is unknown; refusing to guess (restore the record, or open an empty directory)`,
    );
  }
  const created = newManifest(nodesDefault);
  writeManifest(fs, dir, created);
  return created;
}

/** Creates `dir` (and its parents) if need be, with a typed error saying why it cannot be. */
function makeDataDir(fs: FileSystem, dir: string): void {
  try {
    fs.mkdirp(dir);
    // A file where the directory should be fails here (ENOTDIR), if mkdirp let it pass.
    fs.readdir(dir);
  } catch (error) {
    let cause = error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      // A recursive mkdir under a read-only mount says ENOENT: ask the nearest existing
      // ancestor why nothing can be made below it.
      let ancestor = dirname(resolve(dir));
      while (!existsSync(ancestor) && ancestor !== dirname(ancestor)) ancestor = dirname(ancestor);
      try {
        accessSync(ancestor, constants.W_OK);
      } catch (why) {
        cause = why;
      }
    }
    throw storageSetupError(dir, 'creating it', cause);
  }
}
