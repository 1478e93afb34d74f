/**
 * A simulated node: the real host loop (`NodeHost`) over a disk of its own, either a
 * `MemoryStorage` or the real `WalStorage` on a `SimFileSystem` that crashes tear and bit
 * flips corrupt (see sim-fs.ts). A `SimNode` outlives its incarnations: a crash drops the
 * host and everything volatile, the disk stays (unless wiped), and the next start recovers
 * from it. What the simulator tracks per node to check it (the last commit and apply indexes
 * seen, whether it was leader) lives here too.
 */
import { fail } from '../base/index.ts';
import type { RaftNode } from '../core/index.ts';
import type { NodeHost } from '../runtime/index.ts';
import { CorruptLogError, MemoryStorage, SimulatedCrash, WalStorage, type SyncAgent } from '../storage/index.ts';
import { cutCorruptLog, type LateHardStateStorage } from './host-bugs.ts';
import type { SimDisk } from './operator.ts';
import { SimFileSystem } from './sim-fs.ts';

export type SimStorage = MemoryStorage | WalStorage;

/** Small WAL segments in the simulation, so rollover and segment deletion happen often. */
const WAL_SEGMENT_BYTES = 16 << 10;

/** A crash the simulator decided on, thrown from a host hook to stop the node mid-Ready. */
export class CrashSignal extends Error {
  constructor() {
    super('simulated crash');
    this.name = 'CrashSignal';
  }
}

/** Whether `error` is a simulated crash (the simulator's, or the simulated disk's), not a bug. */
export function isCrash(error: unknown): boolean {
  if (error instanceof CrashSignal || error instanceof SimulatedCrash) return true;
  // The WAL wraps file-system errors; the crash signal is the cause.
  return (error as { cause?: unknown } | undefined)?.cause instanceof SimulatedCrash;
}

export class SimNode {
  host: NodeHost | undefined;
  /** The node's disk: opened (recovered) at each start in 'wal' mode. */
  private storageValue: SimStorage | undefined;
  /** With the persistHardStateLate bug: the storage the host writes through. */
  lateStorage: LateHardStateStorage | undefined;
  /** In 'wal' mode, the simulated file system the WAL lives on. */
  readonly fs: SimFileSystem | undefined;
  /**
   * In 'memory' mode: whether the node's in-memory log exists. It is made at the node's
   * first start (as the WAL makes its first segment) and lost with a wiped disk.
   */
  memoryLogExists = false;
  /** When its disk was wiped, until its next start. */
  wipedAt: number | undefined;
  /** Found its log corrupt, or its state lost, on restart: stays down for the rest of the run. */
  stopped = false;
  /** A fault of the media (a flipped bit) damaged its disk: only then may its log be found corrupt. */
  mediaFaulted = false;
  incarnation = 0;
  /** Client requests this incarnation took and has not answered, by the host's request id. */
  readonly requests = new Map<number, { readonly client: number; readonly opId: number; readonly redis?: boolean }>();
  /** The id the next request gets: ids grow across incarnations, so none is taken twice. */
  requestNext = 1;
  /** The first request id this incarnation took: ids in [requestFirst, requestNext) absent from `requests` were answered. */
  requestFirst = 1;
  lastCommit = 0;

  lastApplied = 0;
  wasLeader = false;
  /**
   * Paused (a process stopped, by a debugger or the kernel) until this simulated time: it
   * takes no tick, message or request before, and then every tick it missed at once.
   */
  pausedUntil = 0;
  /** Ticks it missed while paused: taken, time first as the worker loop does, before its next input. */
  ticksMissed = 0;
  /** The crash point chosen for the Ready being processed, if any. */
  crashPoint: 'mid-write' | 'before-send' | 'after-send' | undefined;

  constructor(
    readonly id: number,
    mode: 'memory' | 'wal',
  ) {
    this.fs = mode === 'wal' ? new SimFileSystem() : undefined;
    this.storageValue = this.fs === undefined ? new MemoryStorage() : undefined;
  }

  get dir(): string {
    return `/n${this.id}`;
  }

  /** Forgets the requests of an incarnation that ends: nobody answers them now. */
  forgetRequests(): void {
    this.requests.clear();
    this.requestFirst = this.requestNext;
  }

  /** The node's disk. In 'wal' mode it exists from the node's first start on. */
  get storage(): SimStorage {
    if (this.storageValue === undefined) fail(`node ${this.id} has not opened its storage`);
    return this.storageValue;
  }

  set storage(storage: SimStorage) {
    this.storageValue = storage;
  }

  /** The disk as the start guard sees it. */
  get disk(): SimDisk {
    return this.fs !== undefined ? { kind: 'wal', fs: this.fs, dir: this.dir } : { kind: 'memory', hasLog: this.memoryLogExists };
  }

  get raft(): RaftNode | undefined {
    return this.host?.raft;
  }

  get alive(): boolean {
    return this.host !== undefined;
  }

  /**
   * Opens (recovers) the node's WAL, in 'wal' mode, its syncs left to `syncAgent()` if given.
   * With the truncateCorruptLog bug, cuts a corrupt log and retries; with the
   * refuseTornTail bug, calls a log whose last write a crash tore corrupt.
   */
  openWal(truncateCorruptLog: boolean, syncAgent?: () => SyncAgent, refuseTornTail = false): WalStorage {
    const fs = this.fs!;
    for (let attempt = 0; ; attempt++) {
      try {
        const wal = WalStorage.open(this.dir, { fs, segmentSizeBytesMax: WAL_SEGMENT_BYTES, ...(syncAgent === undefined ? {} : { syncAgent: syncAgent() }) });
        const torn = wal.recovery.tornTail;
        if (refuseTornTail && torn !== undefined) {
          wal.close();
          throw new CorruptLogError(torn.fileName, torn.badOffsetBytes, `a torn write taken for damage: ${torn.what}`);
        }
        return wal;
      } catch (error) {
        const corrupt = error instanceof CorruptLogError && error.fileName.endsWith('.wal') ? error : undefined;
        if (!truncateCorruptLog || corrupt === undefined || attempt > 8) throw error;
        cutCorruptLog(fs, this.dir, corrupt);
      }
    }
  }

  /**
   * The node's disk is lost (a crashed node's): in 'wal' mode every file in its directory
   * is deleted; in 'memory' mode its in-memory log is replaced by an empty one. The node
   * comes back as if new, and only the operator knows it is not.
   */
  wipeDisk(nowMs: number): void {
    if (this.fs !== undefined) this.fs.wipe(this.dir);
    else this.storage = new MemoryStorage();
    this.memoryLogExists = false;
    this.wipedAt = nowMs;
  }
}
