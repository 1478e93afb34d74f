// The sync thread (runtime/sync-thread.ts): a WAL's fdatasync on a thread of its own. It syncs
// what it is asked, reports the sequence, and rings the node thread's doorbell; a failed sync
// is reported as the storage's own error (EBADF here: IO_ERROR), and a WAL over it recovers
// every batch it reported durable. Sequences past 2^31 (they travel as 31-bit words) keep
// working; `quiesce` waits for a sync running and throws its failure. Runs the built worker (dist), as the cluster tests do.
import { closeSync, openSync, readdirSync, readlinkSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { offerReclaim, RECLAIM_GAP_MS, RECLAIM_SLOT_COUNT, RECLAIM_STEP_BYTES, runSyncThread, sequenceAfter, SYNC_WORDS, ThreadSyncAgent, type SyncThreadIo } from '../../src/runtime/sync-thread.ts';
import { emptyConfState } from '../../src/core/index.ts';
import { StorageError, StorageErrorCode, WalStorage } from '../../src/storage/index.ts';
import { Doorbell } from '../../src/transport/index.ts';
import { ents, plain, tempDir } from '../storage/helpers.ts';

/** Waits (on `doorbell`, as a node thread does) until `ready()` holds; fails after 5 s. */
function waitFor(doorbell: Doorbell, ready: () => boolean): void {
  const deadline = performance.now() + 5000;
  while (!ready()) {
    if (performance.now() > deadline) throw new Error('timed out');
    doorbell.wait(50, ready);
  }
}

/** The files under `dir` this process holds open, as /proc/self/fd names them (a deleted one ends in " (deleted)"), and their sizes. */
function openFilesUnder(dir: string): { target: string; size: number }[] {
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(dir + '/') ? [{ target, size: statSync(`/proc/self/fd/${fd}`).size }] : [];
    } catch {
      // Closed meanwhile.
      return [];
    }
  });
}

/** File calls a hand-run loop must not make (each test replaces those it expects). */
const noFiles: SyncThreadIo = {
  fdatasync: () => expect.unreachable('fdatasync'),
  ftruncate: () => expect.unreachable('ftruncate'),
  size: () => expect.unreachable('size'),
};

describe('ThreadSyncAgent', () => {
  const root = tempDir('ringraft-sync-thread-');

  /** Runs `test` with a fresh agent (and its doorbell) and file `name` open for writing; closes both after. */
  function withAgent(name: string, test: (doorbell: Doorbell, agent: ThreadSyncAgent, fd: number) => void): void {
    const doorbell = Doorbell.create();
    const agent = new ThreadSyncAgent(doorbell.buffer);
    const fd = openSync(join(root, name), 'w+');
    try {
      test(doorbell, agent, fd);
    } finally {
      agent.close();
      closeSync(fd);
    }
  }

  it('syncs the file asked for, reports the sequence and rings the doorbell', () => {
    withAgent('a', (doorbell, agent, fd) => {
      writeSync(fd, 'hello');
      expect(agent.synced()).toBe(0);
      agent.request(fd, 1);
      waitFor(doorbell, () => agent.synced() >= 1);
      expect(agent.synced()).toBe(1);
      // Requests made while a sync runs are taken together by the next one.
      for (let sequence = 2; sequence <= 20; sequence++) {
        writeSync(fd, 'more');
        agent.request(fd, sequence);
      }
      waitFor(doorbell, () => agent.synced() >= 20);
      expect(agent.synced()).toBe(20);
    });
  });

  it("reports a failed sync as the storage's error", () => {
    const doorbell = Doorbell.create();
    const agent = new ThreadSyncAgent(doorbell.buffer);
    // No file is open at this descriptor: fdatasync fails with EBADF.
    agent.request(1 << 20, 1);
    let error: unknown;
    waitFor(doorbell, () => {
      try {
        agent.synced();
        return false;
      } catch (caught) {
        error = caught;
        return true;
      }
    });
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).code).toBe(StorageErrorCode.IO_ERROR);
    expect((error as StorageError).message).toMatch(/EBADF/);
    agent.close();
  });

  it('a WAL over it: batches become durable without the writer syncing', () => {
    const doorbell = Doorbell.create();
    const dir = join(root, 'wal');
    const s = WalStorage.open(dir, { syncAgent: new ThreadSyncAgent(doorbell.buffer) });
    let last = 0;
    for (let i = 1; i <= 50; i++) last = s.persistLater({ entries: ents(i, [1]) });
    waitFor(doorbell, () => s.durableSequence() >= last);
    s.close();
    const again = WalStorage.open(dir);
    expect(plain(again.allEntries())).toEqual(plain(ents(1, Array.from({ length: 50 }, () => 1))));
    again.close();
  });

  it('keeps syncing past 2^31 sequences, the words wrapping around', () => {
    expect(sequenceAfter(5, 0x7fff_fffe)).toBe(true);
    expect(sequenceAfter(0x7fff_fffe, 5)).toBe(false);
    expect(sequenceAfter(7, 7)).toBe(false);
    withAgent('wrap', (doorbell, agent, fd) => {
      // Each step under 2^30, as sequences grow one batch at a time.
      for (const sequence of [2 ** 30 - 1, 2 ** 31 - 2, 2 ** 31 + 3, 2 ** 31 + 2 ** 30, 2 ** 32 - 5, 2 ** 32 + 10]) {
        writeSync(fd, 'x');
        agent.request(fd, sequence);
        waitFor(doorbell, () => agent.synced() >= sequence);
        expect(agent.synced()).toBe(sequence);
      }
    });
  });

  it('quiesce returns once no sync runs, and throws the failure of one', () => {
    withAgent('quiesce', (doorbell, agent, fd) => {
      writeSync(fd, 'x');
      agent.request(fd, 1);
      agent.quiesce();
      // Idle: every sequence asked for is synced.
      waitFor(doorbell, () => agent.synced() >= 1);
      agent.request(1 << 20, 2);
      let error: unknown;
      const deadline = performance.now() + 5000;
      while (error === undefined && performance.now() < deadline) {
        try {
          agent.quiesce();
        } catch (caught) {
          error = caught;
        }
      }
      expect(error).toBeInstanceOf(StorageError);
    });
  });

  it("counts a failed sync of a file the node has moved on from as done, and fails one of the file it writes", () => {
    for (const movedOn of [true, false]) {
      const words = new Int32Array(new SharedArrayBuffer(SYNC_WORDS.COUNT * 4));
      Atomics.store(words, SYNC_WORDS.FD, 99);
      Atomics.store(words, SYNC_WORDS.ASKED, 1);
      let rings = 0;
      // The loop runs here, by hand: the sync fails with EBADF after the node (maybe) moved
      // to a new file, then the loop is told to exit.
      runSyncThread(
        { words: words.buffer as SharedArrayBuffer, doorbell: new SharedArrayBuffer(8) },
        {
          ...noFiles,
          fdatasync: (fd) => {
            expect(fd).toBe(99);
            if (movedOn) Atomics.store(words, SYNC_WORDS.FD, 5);
            Atomics.store(words, SYNC_WORDS.ASKED, SYNC_WORDS.EXIT);
            throw Object.assign(new Error('bad descriptor'), { code: 'EBADF' });
          },
        },
        () => rings++,
      );
      expect(rings).toBe(1);
      expect(Atomics.load(words, SYNC_WORDS.ERRNO) === 0).toBe(movedOn);
      expect(Atomics.load(words, SYNC_WORDS.SYNCED)).toBe(movedOn ? 1 : 0);
    }
  });

  /** Words for a hand-run loop with files `fds` handed over to reclaim, in order. */
  function wordsReclaiming(fds: readonly number[]): Int32Array {
    const words = new Int32Array(new SharedArrayBuffer(SYNC_WORDS.COUNT * 4));
    for (const fd of fds) expect(offerReclaim(words, fd, 0)).toBe(true);
    return words;
  }

  it('holds at most RECLAIM_SLOT_COUNT files not closed, its counts wrapping around past 2^31', () => {
    for (const start of [0, 0x7fff_fffa]) {
      const words = new Int32Array(new SharedArrayBuffer(SYNC_WORDS.COUNT * 4));
      Atomics.store(words, SYNC_WORDS.RECLAIM_HEAD, start);
      for (let k = 0; k < RECLAIM_SLOT_COUNT; k++) expect(offerReclaim(words, 100 + k, start)).toBe(true);
      expect(offerReclaim(words, 200, start)).toBe(false);
      // Once the node has closed the oldest, its slot takes the next file.
      const oldestSlot = SYNC_WORDS.RECLAIM_SLOTS + (start % RECLAIM_SLOT_COUNT);
      expect(Atomics.load(words, oldestSlot)).toBe(100);
      const closed = (start + 1) & 0x7fff_ffff;
      expect(offerReclaim(words, 201, closed)).toBe(true);
      expect(Atomics.load(words, oldestSlot)).toBe(201);
      expect(offerReclaim(words, 202, closed)).toBe(false);
    }
  });

  it('empties a file a step at a time, one step per gap at most, a sync asked meanwhile first', () => {
    const words = wordsReclaiming([40, 41]);
    const sizes = new Map([
      [40, 2 * RECLAIM_STEP_BYTES + 1],
      [41, 0],
    ]);
    const calls: string[] = [];
    const stepsAt: number[] = [];
    let rings = 0;
    runSyncThread(
      { words: words.buffer as SharedArrayBuffer, doorbell: new SharedArrayBuffer(8) },
      {
        fdatasync: (fd) => void calls.push(`sync ${fd}`),
        ftruncate: (fd, bytes) => {
          calls.push(`truncate ${fd} ${bytes} (done ${Atomics.load(words, SYNC_WORDS.RECLAIM_DONE)})`);
          stepsAt.push(performance.now());
          if (calls.length === 1) {
            // The node asks for a sync while the first file is being emptied.
            Atomics.store(words, SYNC_WORDS.FD, 7);
            Atomics.store(words, SYNC_WORDS.ASKED, 1);
            Atomics.add(words, SYNC_WORDS.KNOCK, 1);
          }
          // The WAL closes its agent once the second file is empty.
          if (fd === 41) Atomics.store(words, SYNC_WORDS.ASKED, SYNC_WORDS.EXIT);
        },
        size: (fd) => sizes.get(fd)!,
      },
      () => rings++,
    );
    expect(calls).toEqual([`truncate 40 ${RECLAIM_STEP_BYTES + 1} (done 0)`, 'sync 7', 'truncate 40 1 (done 0)', 'truncate 40 0 (done 0)', 'truncate 41 0 (done 1)']);
    expect(rings).toBe(1);
    for (let k = 1; k < stepsAt.length; k++) expect(stepsAt[k]! - stepsAt[k - 1]!).toBeGreaterThanOrEqual(RECLAIM_GAP_MS);
    expect(Atomics.load(words, SYNC_WORDS.RECLAIM_DONE)).toBe(2);
    expect(Atomics.load(words, SYNC_WORDS.STATE)).toBe(3);
  });

  it('counts a file whose step fails as done, and leaves the rest to the node when told to exit', () => {
    const words = wordsReclaiming([50, 51, 52]);
    const calls: string[] = [];
    runSyncThread(
      { words: words.buffer as SharedArrayBuffer, doorbell: new SharedArrayBuffer(8) },
      {
        ...noFiles,
        size: () => 10 * RECLAIM_STEP_BYTES,
        ftruncate: (fd) => {
          calls.push(`truncate ${fd}`);
          if (fd === 51) {
            Atomics.store(words, SYNC_WORDS.ASKED, SYNC_WORDS.EXIT);
            return;
          }
          throw Object.assign(new Error('i/o error'), { code: 'EIO' });
        },
      },
      () => expect.unreachable('ring'),
    );
    expect(calls).toEqual(['truncate 50', 'truncate 51']);
    expect(Atomics.load(words, SYNC_WORDS.RECLAIM_DONE)).toBe(1);
    expect(Atomics.load(words, SYNC_WORDS.STATE)).toBe(3);
  });

  it('does nothing if the node closed before the loop started', () => {
    const words = wordsReclaiming([60]);
    Atomics.store(words, SYNC_WORDS.STATE, 2);
    Atomics.store(words, SYNC_WORDS.ASKED, 1);
    runSyncThread({ words: words.buffer as SharedArrayBuffer, doorbell: new SharedArrayBuffer(8) }, noFiles, () => expect.unreachable('ring'));
    expect(Atomics.load(words, SYNC_WORDS.STATE)).toBe(2);
  });

  it('close closes the files the thread has not emptied, once its loop has ended', () => {
    const agent = new ThreadSyncAgent(Doorbell.create().buffer);
    const fds = [0, 1, 2].map((k) => {
      const path = join(root, `reclaim-${k}`);
      const fd = openSync(path, 'w+');
      writeSync(fd, new Uint8Array(3 * RECLAIM_STEP_BYTES));
      unlinkSync(path);
      return fd;
    });
    for (const fd of fds) expect(agent.reclaim(fd)).toBe(true);
    const reclaimed = (): unknown[] => openFilesUnder(root).filter((f) => f.target.includes('/reclaim-'));
    expect(reclaimed()).toHaveLength(3);
    agent.close();
    // By name, not by number: a number closed may be taken again at once (the thread loading its code opens files).
    expect(reclaimed()).toEqual([]);
  });

  it('takes no file once closed or failed (the WAL then closes it itself)', () => {
    const closed = new ThreadSyncAgent(Doorbell.create().buffer);
    closed.close();
    expect(closed.reclaim(3)).toBe(false);
    const doorbell = Doorbell.create();
    const failed = new ThreadSyncAgent(doorbell.buffer);
    failed.request(1 << 20, 1);
    waitFor(doorbell, () => {
      try {
        failed.synced();
        return false;
      } catch {
        return true;
      }
    });
    expect(failed.reclaim(3)).toBe(false);
    failed.close();
  });

  it('a WAL over it: the segments a snapshot deletes are emptied by the thread, and closed', () => {
    const doorbell = Doorbell.create();
    const dir = join(root, 'wal-reclaim');
    const s = WalStorage.open(dir, { syncAgent: new ThreadSyncAgent(doorbell.buffer), segmentSizeBytesMax: 64 * 1024 });
    for (let i = 1; i <= 100; i++) s.persistLater({ entries: ents(i, [1], 4096) });
    s.syncNow();
    const segments = (): string[] => readdirSync(dir).filter((n) => n.endsWith('.wal'));
    const before = segments();
    s.createSnapshot(95, emptyConfState([1]), new Uint8Array([1]));
    expect(before.length).toBeGreaterThan(4);
    expect(segments().length).toBeLessThan(3);
    // The sizes of the deleted files this process holds open.
    const deletedOpen = (): number[] =>
      readdirSync('/proc/self/fd').flatMap((fd) => {
        try {
          const target = readlinkSync(`/proc/self/fd/${fd}`);
          return target.startsWith(dir + '/') && target.endsWith(' (deleted)') ? [statSync(`/proc/self/fd/${fd}`).size] : [];
        } catch {
          return [];
        }
      });
    expect(deletedOpen().length).toBeGreaterThan(0);
    const deadline = performance.now() + 5000;
    while (deletedOpen().some((size) => size > 0) && performance.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    expect(deletedOpen().every((size) => size === 0)).toBe(true);
    s.close();
    expect(deletedOpen()).toEqual([]);
    const again = WalStorage.open(dir);
    expect(again.firstIndex()).toBe(96);
    expect(again.lastIndex()).toBe(100);
    again.close();
  });
});
