/**
 * A WAL's sync agent on threads of its own (storage's `SyncAgent`; the node setting
 * `syncThreads`, 1 by default): the node's thread writes a batch and goes on, while a sync
 * thread runs the batch's `fdatasync` and then rings the node's doorbell. A node whose thread
 * it shares with other nodes, or that takes requests while its disk syncs, no longer waits for
 * the disk; what depends on the write still does (node-host.ts holds such a Ready until it is
 * durable).
 *
 * The threads share six words: the file and sequence asked for (the node writes the file
 * first, then the sequence, so a sync thread, reading the sequence first, never syncs an older
 * file for a newer sequence), the highest sequence a thread has claimed, the sequence synced,
 * the error code of a sync that failed, and how many threads sleep (the node wakes one only if
 * one does: a notify is a system call). A sequence asked for while every thread syncs is taken
 * by the next free one, so the syncs never queue up: under load each covers every batch
 * written meanwhile (group commit). With several threads, syncs overlap: a sync that ends
 * reports its own claim, since it covered every byte written before it began.
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
/** The highest sequence a thread has started a sync for. */
const CLAIMED = 4;
/** Threads asleep waiting to be asked: the node wakes one only if there is one (a notify is a system call). */
const WAITING = 5;
/** ASKED set to this tells the threads to exit. */
const EXIT = -1;
const WORDS = 6;

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

/** The node's side of its sync threads: one agent per WAL. */
export class ThreadSyncAgent implements SyncAgent {
  private readonly words: Int32Array;
  private readonly workers: Worker[] = [];
  private closed = false;

  /** Starts `threads` threads; `doorbell` is the node thread's, rung after each sync. */
  constructor(doorbell: SharedArrayBuffer, threads: number) {
    const words = new SharedArrayBuffer(WORDS * Int32Array.BYTES_PER_ELEMENT);
    this.words = new Int32Array(words);
    for (let i = 0; i < threads; i++) {
      // A thread allocates next to nothing: its heap is kept small (the thread itself, a V8
      // isolate, takes some 10 MiB of memory: 105 → 137 MiB for three durable nodes).
      const worker = new Worker(SYNC_WORKER_URL, {
        workerData: { words, doorbell } satisfies SyncThreadData,
        resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 8 },
      });
      // The threads hold no event loop of the node's open: the process may exit while they sleep.
      worker.unref();
      worker.on('error', () => {
        // A thread that died other than by a failed sync (reported through the words) leaves
        // its claim unsynced: the node's next look at `synced` finds this error.
        Atomics.compareExchange(this.words, ERRNO, 0, ERRNO_NAMES.indexOf('OTHER'));
      });
      this.workers.push(worker);
    }
  }

  request(fd: Fd, sequence: number): void {
    if (this.closed) return;
    Atomics.store(this.words, FD, fd);
    Atomics.store(this.words, ASKED, sequence);
    if (Atomics.load(this.words, WAITING) > 0) Atomics.notify(this.words, ASKED, 1);
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

/**
 * A sync thread's loop (sync-worker.ts runs it): sleep until a sequence is asked for that no
 * thread has claimed, claim it, sync, report, ring. A sync covers every byte written to the
 * file before it started, whichever thread wrote it, so a sync that ends reports its claim as
 * synced even while an older claim's sync still runs on another thread.
 */
export function runSyncThread(data: SyncThreadData, fdatasync: (fd: number) => void, ring: () => void): void {
  const words = new Int32Array(data.words);
  for (;;) {
    const asked = Atomics.load(words, ASKED);
    if (asked === EXIT) return;
    const claimed = Atomics.load(words, CLAIMED);
    if (asked <= claimed) {
      // Counted before the last look at ASKED (Atomics.wait compares it), so a sequence asked
      // for after that look finds this thread counted and notifies it.
      Atomics.add(words, WAITING, 1);
      Atomics.wait(words, ASKED, asked);
      Atomics.sub(words, WAITING, 1);
      continue;
    }
    if (Atomics.compareExchange(words, CLAIMED, claimed, asked) !== claimed) continue;
    // Read after the sequence: the node stores the file first, so this is the file of `asked`
    // or a newer one (a new segment, made after the node synced the one `asked` was in).
    const fd = Atomics.load(words, FD);
    try {
      fdatasync(fd);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'OTHER';
      const at = ERRNO_NAMES.indexOf(code as (typeof ERRNO_NAMES)[number]);
      Atomics.compareExchange(words, ERRNO, 0, at > 0 ? at : ERRNO_NAMES.indexOf('OTHER'));
      ring();
      return;
    }
    for (;;) {
      const synced = Atomics.load(words, SYNCED);
      if (synced >= asked || Atomics.compareExchange(words, SYNCED, synced, asked) === synced) break;
    }
    ring();
  }
}
