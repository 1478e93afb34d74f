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
 *
 * Between syncs the thread also frees the blocks of segments the WAL deleted (`reclaim`):
 * the node hands over a descriptor of each, through a ring of slots in the same words, and
 * the thread truncates it `RECLAIM_STEP_BYTES` at a time, at most one step per
 * `RECLAIM_GAP_MS` and never while a sync is asked for, then marks it done. Freeing a 64 MiB
 * segment in one go takes some 12 ms on ext4, on the node's thread if it unlinks it, and holds
 * other files' syncs as long; 2 MiB steps take under a millisecond each and hold nothing
 * measurably (docs/wal-format.md, "Writing").
 *
 * The node closes every descriptor itself, once the thread is done with it: a worker thread
 * tracks the descriptors it opens and closes those left open when it exits, so a descriptor
 * another thread closed would be closed again there, by then maybe another file's. For the
 * same reason the thread never touches a descriptor after it is done with it, nor after its
 * loop ends; `close` waits for that end before it closes what the thread has not emptied.
 *
 * The thread sleeps on a knock word that every request (a sync, a file to reclaim, the exit)
 * changes, read before it looks for work, so that no request made after that look is missed.
 */
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { realFileSystem, StorageError, storageErrorCodeOf, type Fd, type FileSystem, type SyncAgent } from '../storage/index.ts';

const ASKED = 0;
const FD = 1;
const SYNCED = 2;
const ERRNO = 3;
const CLAIMED = 4;
/** Threads asleep waiting to be asked: the node wakes the thread only if it sleeps (a notify is a system call). */
const WAITING = 5;
/** Changed by every request; the thread sleeps on it. */
const KNOCK = 6;
/** Files handed over to reclaim (a count, modulo 2^31), and files the thread is done with. */
const RECLAIM_HEAD = 7;
const RECLAIM_DONE = 8;
/** STATE_IDLE until the loop starts (RUNNING) or the node closes first (CLOSED); STOPPED once the loop ended. */
const STATE = 9;
const STATE_IDLE = 0;
const STATE_RUNNING = 1;
const STATE_CLOSED = 2;
const STATE_STOPPED = 3;
/** The slots of the files to reclaim: file k is in RECLAIM_SLOTS + k % RECLAIM_SLOT_COUNT. */
const RECLAIM_SLOTS = 10;
/** Files handed over and not yet closed, at most; with more, the WAL closes the next one itself. */
export const RECLAIM_SLOT_COUNT = 16;
/** ASKED set to this tells the thread to exit (sequences are 31-bit, never negative). */
const EXIT = -1;
const WORDS = RECLAIM_SLOTS + RECLAIM_SLOT_COUNT;
/** The shared words by name, and how many there are (for tests that run the thread's loop by hand). */
export const SYNC_WORDS = { ASKED, FD, SYNCED, ERRNO, CLAIMED, WAITING, KNOCK, RECLAIM_HEAD, RECLAIM_DONE, RECLAIM_SLOTS, STATE, EXIT, COUNT: WORDS } as const;
/** How long `close` waits for the thread's loop to end before it leaves the descriptors the thread holds open. */
const STOP_WAIT_MS = 10_000;
const SEQUENCE_MASK = 0x7fff_ffff;
/** Bytes freed per step of a reclaim: under a millisecond of the thread's time on this machine. */
export const RECLAIM_STEP_BYTES = 2 * 1024 * 1024;
/** A reclaim takes at most one step per this many milliseconds, leaving the cores to the nodes. */
export const RECLAIM_GAP_MS = 1;

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
  /** Files handed over to reclaim and closed here (a count, modulo 2^31, as RECLAIM_HEAD). */
  private reclaimClosed = 0;

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
    this.knock();
  }

  reclaim(fd: Fd): boolean {
    if (this.closed || Atomics.load(this.words, ERRNO) !== 0) return false;
    this.closeReclaimed(Atomics.load(this.words, RECLAIM_DONE));
    if (!offerReclaim(this.words, fd, this.reclaimClosed)) return false;
    this.knock();
    return true;
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
    this.knock();
    const head = Atomics.load(this.words, RECLAIM_HEAD);
    if (this.reclaimClosed === head) return;
    // The files the thread has not emptied are closed (and freed at once) here, once the
    // thread can no longer touch them: it never started, or its loop ended.
    if (Atomics.compareExchange(this.words, STATE, STATE_IDLE, STATE_CLOSED) !== STATE_IDLE) {
      const deadline = performance.now() + STOP_WAIT_MS;
      for (let state = Atomics.load(this.words, STATE); state !== STATE_STOPPED; state = Atomics.load(this.words, STATE)) {
        const leftMs = deadline - performance.now();
        // A thread stuck in a sync that long keeps its files; they are closed when this thread exits.
        if (leftMs <= 0) return;
        Atomics.wait(this.words, STATE, state, leftMs);
      }
    }
    this.closeReclaimed(head);
  }

  /** Closes the files handed over to reclaim up to count `upTo` (the thread is done with them). */
  private closeReclaimed(upTo: number): void {
    while (this.reclaimClosed !== upTo) {
      try {
        realFileSystem.close(Atomics.load(this.words, RECLAIM_SLOTS + (this.reclaimClosed % RECLAIM_SLOT_COUNT)));
      } catch {
        // Nothing is left to do with a descriptor that does not close.
      }
      this.reclaimClosed = (this.reclaimClosed + 1) & SEQUENCE_MASK;
    }
  }

  /** After a request is stored: wakes the thread if it sleeps. */
  private knock(): void {
    Atomics.add(this.words, KNOCK, 1);
    if (Atomics.load(this.words, WAITING) > 0) Atomics.notify(this.words, KNOCK, 1);
  }

  private checkError(): void {
    const errno = Atomics.load(this.words, ERRNO);
    if (errno === 0) return;
    const name = ERRNO_NAMES[errno] ?? 'OTHER';
    throw new StorageError(storageErrorCodeOf(name), `fdatasync failed on the sync thread: ${name}`);
  }
}

/** Puts `fd` in the reclaim ring's next slot; false if every slot is taken (`closed` files are closed: their slots are free). */
export function offerReclaim(words: Int32Array, fd: Fd, closed: number): boolean {
  const head = Atomics.load(words, RECLAIM_HEAD);
  if (((head - closed) & SEQUENCE_MASK) >= RECLAIM_SLOT_COUNT) return false;
  Atomics.store(words, RECLAIM_SLOTS + (head % RECLAIM_SLOT_COUNT), fd);
  Atomics.store(words, RECLAIM_HEAD, (head + 1) & SEQUENCE_MASK);
  return true;
}

/** Records a failure of the sync thread (errno name `code`) and wakes whoever waits for it. */
export function reportSyncFailure(words: Int32Array, code: string, ring: () => void): void {
  const at = ERRNO_NAMES.indexOf(code as (typeof ERRNO_NAMES)[number]);
  Atomics.compareExchange(words, ERRNO, 0, at > 0 ? at : ERRNO_NAMES.indexOf('OTHER'));
  Atomics.notify(words, SYNCED);
  ring();
}

/** What the sync thread does to files (storage's FileSystem has these). */
export type SyncThreadIo = Pick<FileSystem, 'fdatasync' | 'ftruncate' | 'size'>;

/**
 * The sync thread's loop (sync-worker.ts runs it): sleep until knocked; sync what is asked,
 * report it and ring; between syncs, reclaim. It does nothing if the node closed first, and
 * says when it has ended (STATE), so that the node may close the files it was handed.
 */
export function runSyncThread(data: SyncThreadData, io: SyncThreadIo, ring: () => void): void {
  const words = new Int32Array(data.words);
  if (Atomics.compareExchange(words, STATE, STATE_IDLE, STATE_RUNNING) !== STATE_IDLE) return;
  const reclaimer = new Reclaimer(words, io);
  try {
    for (;;) {
      // Read before looking for work: a request made after the look changes it, and the wait
      // below then returns at once.
      const knock = Atomics.load(words, KNOCK);
      const asked = Atomics.load(words, ASKED);
      if (asked === EXIT) return;
      if (sequenceAfter(asked, Atomics.load(words, SYNCED))) {
        if (!syncAsked(words, asked, io, ring)) return;
        continue;
      }
      let timeoutMs = Infinity;
      if (reclaimer.waiting()) {
        timeoutMs = reclaimer.nextStepAtMs - performance.now();
        if (timeoutMs <= 0) {
          reclaimer.step();
          continue;
        }
      }
      Atomics.add(words, WAITING, 1);
      Atomics.wait(words, KNOCK, knock, timeoutMs);
      Atomics.sub(words, WAITING, 1);
    }
  } finally {
    Atomics.store(words, STATE, STATE_STOPPED);
    Atomics.notify(words, STATE);
  }
}

/** Claims and runs the sync of `asked`; false if it failed (reported) and the thread must stop. */
function syncAsked(words: Int32Array, asked: number, io: SyncThreadIo, ring: () => void): boolean {
  Atomics.store(words, CLAIMED, asked);
  // Read after the sequence: the node stores the file first, so this is the file of `asked`
  // or a newer one (a new segment, made after the node synced the one `asked` was in).
  const fd = Atomics.load(words, FD);
  try {
    io.fdatasync(fd);
  } catch (error) {
    // A descriptor the node has since moved on from (and synced, and maybe closed) leaves
    // nothing of `asked` unsynced; any other failure fails the WAL.
    if (Atomics.load(words, FD) === fd) {
      reportSyncFailure(words, (error as NodeJS.ErrnoException).code ?? 'OTHER', ring);
      return false;
    }
  }
  Atomics.store(words, SYNCED, asked);
  Atomics.notify(words, SYNCED);
  ring();
  return true;
}

/**
 * The thread's side of the reclaim ring: the oldest file not done is truncated a step at a
 * time; once empty it is done (RECLAIM_DONE moves on), and the node closes it.
 */
class Reclaimer {
  /** When the next step may run (performance.now()). */
  nextStepAtMs = 0;
  /** Bytes the file being emptied still has; -1 until it is looked at. */
  private bytesLeft = -1;

  constructor(
    private readonly words: Int32Array,
    private readonly io: SyncThreadIo,
  ) {}

  waiting(): boolean {
    return Atomics.load(this.words, RECLAIM_DONE) !== Atomics.load(this.words, RECLAIM_HEAD);
  }

  /**
   * Frees one step of the oldest file not done. A file whose step fails is done as it is:
   * the node's close frees what it has left in one go (its name is gone already, so nothing
   * of the log depends on it).
   */
  step(): void {
    const done = Atomics.load(this.words, RECLAIM_DONE);
    const fd = Atomics.load(this.words, RECLAIM_SLOTS + (done % RECLAIM_SLOT_COUNT));
    try {
      if (this.bytesLeft < 0) this.bytesLeft = this.io.size(fd);
      this.bytesLeft = Math.max(0, this.bytesLeft - RECLAIM_STEP_BYTES);
      this.io.ftruncate(fd, this.bytesLeft);
    } catch {
      this.bytesLeft = 0;
    }
    if (this.bytesLeft === 0) {
      this.bytesLeft = -1;
      Atomics.store(this.words, RECLAIM_DONE, (done + 1) & SEQUENCE_MASK);
    }
    this.nextStepAtMs = performance.now() + RECLAIM_GAP_MS;
  }
}
