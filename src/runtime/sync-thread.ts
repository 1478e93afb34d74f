/**
 * A WAL's sync agent on a thread of its own (storage's `SyncAgent`): the node's thread writes
 * a batch and goes on, while this thread runs the batch's `fdatasync` and then rings the
 * node's doorbell. A node whose thread it shares with other nodes, or that takes requests
 * while its disk syncs, no longer waits for the disk; what depends on the write still does
 * (node-host.ts holds such a Ready until it is durable).
 *
 * The two threads share four words: the file and sequence asked for (the node writes the file
 * first, then the sequence, so the sync thread, reading the sequence first, never syncs an
 * older file for a newer sequence), the sequence synced, and the error code of a sync that
 * failed. A sequence asked for while a sync runs is taken by the next one, so the syncs never
 * queue up: under load each covers every batch written meanwhile (group commit).
 *
 * A file the node stops writing to (a new segment) is synced by the node before it moves on,
 * so a sync of a file descriptor the node has since closed has nothing left to make durable.
 */
import { Worker } from 'node:worker_threads';
import { StorageError, StorageErrorCode, type Fd, type SyncAgent } from '../storage/index.ts';

const ASKED = 0;
const FD = 1;
const SYNCED = 2;
const ERRNO = 3;
/** ASKED set to this tells the thread to exit. */
const EXIT = -1;
const WORDS = 4;

/** Error codes the thread reports (errno names, in this order; 0 is none). */
const ERRNO_NAMES = ['', 'EIO', 'ENOSPC', 'EDQUOT', 'EBADF', 'EROFS', 'EINVAL', 'OTHER'] as const;

export interface SyncThreadData {
  readonly words: SharedArrayBuffer;
  /** The node thread's doorbell (transport's Doorbell buffer), rung after each sync. */
  readonly doorbell: SharedArrayBuffer;
}

/** The entry file of the sync thread (its built JavaScript, as for the node worker). */
const SYNC_WORKER_URL = import.meta.url.endsWith('.ts')
  ? new URL('../../dist/src/runtime/sync-worker.js', import.meta.url)
  : new URL('./sync-worker.js', import.meta.url);

/** The node's side of a sync thread: one per WAL. */
export class ThreadSyncAgent implements SyncAgent {
  private readonly words: Int32Array;
  private readonly worker: Worker;
  private closed = false;

  /** Starts the thread; `doorbell` is the node thread's, rung after each sync. */
  constructor(doorbell: SharedArrayBuffer) {
    const words = new SharedArrayBuffer(WORDS * Int32Array.BYTES_PER_ELEMENT);
    this.words = new Int32Array(words);
    this.worker = new Worker(SYNC_WORKER_URL, { workerData: { words, doorbell } satisfies SyncThreadData });
    // The thread holds no event loop of the node's open: the process may exit while it sleeps.
    this.worker.unref();
    this.worker.on('error', () => {
      // Reported through the words when it can be; a thread that died otherwise reports nothing
      // more, and the node's next look at `synced` finds the error recorded here.
      Atomics.compareExchange(this.words, ERRNO, 0, ERRNO_NAMES.indexOf('OTHER'));
    });
  }

  request(fd: Fd, sequence: number): void {
    if (this.closed) return;
    Atomics.store(this.words, FD, fd);
    Atomics.store(this.words, ASKED, sequence);
    Atomics.notify(this.words, ASKED);
  }

  synced(): number {
    const errno = Atomics.load(this.words, ERRNO);
    if (errno !== 0) {
      const name = ERRNO_NAMES[errno] ?? 'OTHER';
      const code = name === 'ENOSPC' || name === 'EDQUOT' ? StorageErrorCode.NO_SPACE : StorageErrorCode.IO_ERROR;
      throw new StorageError(code, `fdatasync failed on the sync thread: ${name}`);
    }
    return Atomics.load(this.words, SYNCED);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.words, ASKED, EXIT);
    Atomics.notify(this.words, ASKED);
  }
}

/** The sync thread's loop (sync-worker.ts runs it): sleep until asked, sync, report, ring. */
export function runSyncThread(data: SyncThreadData, fdatasync: (fd: number) => void, ring: () => void): void {
  const words = new Int32Array(data.words);
  let done = 0;
  for (;;) {
    const asked = Atomics.load(words, ASKED);
    if (asked === EXIT) return;
    if (asked === done) {
      Atomics.wait(words, ASKED, asked);
      continue;
    }
    const fd = Atomics.load(words, FD);
    try {
      fdatasync(fd);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'OTHER';
      const at = ERRNO_NAMES.indexOf(code as (typeof ERRNO_NAMES)[number]);
      Atomics.store(words, ERRNO, at > 0 ? at : ERRNO_NAMES.indexOf('OTHER'));
      ring();
      return;
    }
    done = asked;
    Atomics.store(words, SYNCED, asked);
    ring();
  }
}
