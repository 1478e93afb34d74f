/**
 * A WAL's sync agent on a thread of its own (storage's `SyncAgent`; the node setting
 * `syncThread`, on by default): the node's thread writes a batch and goes on, while the sync
 * thread runs the batch's `fdatasync` and then rings the node's doorbell. A node whose thread
 * it shares with other nodes, or that takes requests while its disk syncs, no longer waits for
 * the disk; what depends on the write still does (node-host.ts holds such a Ready until it is
 * durable).
 *
 * The threads share five words: the file and sequence asked for (the node writes the file
 * first, then the sequence, so the sync thread, reading the sequence first, never syncs an
 * older file for a newer sequence), the sequence claimed (the sync running, if it is above the
 * synced one), the sequence synced, and the error code of a sync that failed. A sequence asked
 * for while a sync runs is taken by the next one, so the syncs never queue up: under load each
 * covers every batch written meanwhile (group commit). Sequences travel as 31-bit numbers and
 * are compared with wrap-around, so a node may write more than 2^31 batches.
 *
 * One thread, not several: Linux reports a failed writeback to one `fdatasync` of the file
 * description, so a second thread's sync that succeeds after a first one's failed must not
 * stand for the batches the failed one covered; with one thread, and the node waiting for it
 * to be idle before it trusts a sync of its own (`quiesce`), a failure is never missed.
 *
 * A file the node stops writing to (a new segment) is synced by the node before it moves on,
 * so a sync of a descriptor the node has since closed has nothing left to make durable: the
 * thread, finding the file word moved on, counts such a failed sync as done.
 */
import { Worker } from 'node:worker_threads';
import { StorageError, storageErrorCodeOf, type Fd, type SyncAgent } from '../storage/index.ts';

const ASKED = 0;
const FD = 1;
const SYNCED = 2;
const ERRNO = 3;
const CLAIMED = 4;
/** Threads asleep waiting to be asked: the node wakes the thread only if it sleeps (a notify is a system call). */
const WAITING = 5;
/** ASKED set to this tells the thread to exit (sequences are 31-bit, never negative). */
const EXIT = -1;
const WORDS = 6;
/** The shared words by name, and how many there are (for tests that run the thread's loop by hand). */
export const SYNC_WORDS = { ASKED, FD, SYNCED, ERRNO, CLAIMED, WAITING, EXIT, COUNT: WORDS } as const;
const SEQUENCE_MASK = 0x7fff_ffff;

/** Error codes the thread reports (errno names, in this order; 0 is none). */
const ERRNO_NAMES = ['', 'EIO', 'ENOSPC', 'EDQUOT', 'EBADF', 'EROFS', 'EINVAL', 'OTHER'] as const;

/** Whether 31-bit sequence `a` comes after `b` (within 2^30 of it). */
export function sequenceAfter(a: number, b: number): boolean {
  const d = (a - b) & SEQUENCE_MASK;
  return d !== 0 && d < 0x4000_0000;
}

export interface SyncThreadData {
  readonly words: SharedArrayBuffer;
  /** The node thread's doorbell (transport's Doorbell buffer), rung after each sync. */
  readonly doorbell: SharedArrayBuffer;
}

/** The entry file of the sync thread (its built JavaScript, as for the node worker). */
const SYNC_WORKER_URL = import.meta.url.endsWith('.ts')
  ? new URL('../../dist/src/runtime/sync-worker.js', import.meta.url)
  : new URL('./sync-worker.js', import.meta.url);

/** The node's side of its sync thread: one agent per WAL. */
export class ThreadSyncAgent implements SyncAgent {
  private readonly words: Int32Array;
  private readonly worker: Worker;
  private closed = false;
  /** The newest sequence asked for, whole (the words hold it modulo 2^31). */
  private askedSequence = 0;

  /** Starts the thread; `doorbell` is the node thread's, rung after each sync. */
  constructor(doorbell: SharedArrayBuffer) {
    const words = new SharedArrayBuffer(WORDS * Int32Array.BYTES_PER_ELEMENT);
    this.words = new Int32Array(words);
    // The thread is a V8 isolate of its own: some 10 MiB of memory (three durable nodes: 105 → 137 MiB).
    this.worker = new Worker(SYNC_WORKER_URL, { workerData: { words, doorbell } satisfies SyncThreadData });
    // It holds no event loop of the node's open: the process may exit while it sleeps.
    this.worker.unref();
    this.worker.on('error', () => {
      // A thread that died before its loop could report it (see sync-worker.ts), if the
      // node's event loop turns to hear it: the node's next look at `synced` fails.
      Atomics.compareExchange(this.words, ERRNO, 0, ERRNO_NAMES.indexOf('OTHER'));
    });
  }

  request(fd: Fd, sequence: number): void {
    if (this.closed) return;
    this.askedSequence = sequence;
    Atomics.store(this.words, FD, fd);
    Atomics.store(this.words, ASKED, sequence & SEQUENCE_MASK);
    if (Atomics.load(this.words, WAITING) > 0) Atomics.notify(this.words, ASKED, 1);
  }

  synced(): number {
    this.checkError();
    // Whole again: the synced sequence is at most the newest asked, and within 2^30 of it.
    const low = Atomics.load(this.words, SYNCED);
    return this.askedSequence - ((this.askedSequence - low) & SEQUENCE_MASK);
  }

  quiesce(): void {
    for (;;) {
      this.checkError();
      const synced = Atomics.load(this.words, SYNCED);
      if (!sequenceAfter(Atomics.load(this.words, CLAIMED), synced)) return;
      Atomics.wait(this.words, SYNCED, synced, 10);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.words, ASKED, EXIT);
    Atomics.notify(this.words, ASKED);
  }

  private checkError(): void {
    const errno = Atomics.load(this.words, ERRNO);
    if (errno === 0) return;
    const name = ERRNO_NAMES[errno] ?? 'OTHER';
    throw new StorageError(storageErrorCodeOf(name), `fdatasync failed on the sync thread: ${name}`);
  }
}

/** Records a failure of the sync thread (errno name `code`) and wakes whoever waits for it. */
export function reportSyncFailure(words: Int32Array, code: string, ring: () => void): void {
  const at = ERRNO_NAMES.indexOf(code as (typeof ERRNO_NAMES)[number]);
  Atomics.compareExchange(words, ERRNO, 0, at > 0 ? at : ERRNO_NAMES.indexOf('OTHER'));
  Atomics.notify(words, SYNCED);
  ring();
}

/** The sync thread's loop (sync-worker.ts runs it): sleep until asked, claim, sync, report, ring. */
export function runSyncThread(data: SyncThreadData, fdatasync: (fd: number) => void, ring: () => void): void {
  const words = new Int32Array(data.words);
  for (;;) {
    const asked = Atomics.load(words, ASKED);
    if (asked === EXIT) return;
    if (!sequenceAfter(asked, Atomics.load(words, SYNCED))) {
      // Counted before the last look at ASKED (Atomics.wait compares it), so a sequence asked
      // for after that look finds this thread counted and notifies it.
      Atomics.add(words, WAITING, 1);
      Atomics.wait(words, ASKED, asked);
      Atomics.sub(words, WAITING, 1);
      continue;
    }
    Atomics.store(words, CLAIMED, asked);
    // Read after the sequence: the node stores the file first, so this is the file of `asked`
    // or a newer one (a new segment, made after the node synced the one `asked` was in).
    const fd = Atomics.load(words, FD);
    try {
      fdatasync(fd);
    } catch (error) {
      // A descriptor the node has since moved on from (and synced, and maybe closed) leaves
      // nothing of `asked` unsynced; any other failure fails the WAL.
      if (Atomics.load(words, FD) === fd) {
        reportSyncFailure(words, (error as NodeJS.ErrnoException).code ?? 'OTHER', ring);
        return;
      }
    }
    Atomics.store(words, SYNCED, asked);
    Atomics.notify(words, SYNCED);
    ring();
  }
}
