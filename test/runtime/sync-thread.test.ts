// The sync thread (runtime/sync-thread.ts): a WAL's fdatasync on a thread of its own. It syncs
// what it is asked, reports the sequence, and rings the node thread's doorbell; a failed sync
// is reported as the storage's own error (EBADF here: IO_ERROR), and a WAL over it recovers
// every batch it reported durable. Sequences past 2^31 (they travel as 31-bit words) keep
// working; `quiesce` waits for a sync running and throws its failure. Runs the built worker (dist), as the cluster tests do.
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSyncThread, sequenceAfter, SYNC_WORDS, ThreadSyncAgent } from '../../src/runtime/sync-thread.ts';
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
        (fd) => {
          expect(fd).toBe(99);
          if (movedOn) Atomics.store(words, SYNC_WORDS.FD, 5);
          Atomics.store(words, SYNC_WORDS.ASKED, SYNC_WORDS.EXIT);
          throw Object.assign(new Error('bad descriptor'), { code: 'EBADF' });
        },
        () => rings++,
      );
      expect(rings).toBe(1);
      expect(Atomics.load(words, SYNC_WORDS.ERRNO) === 0).toBe(movedOn);
      expect(Atomics.load(words, SYNC_WORDS.SYNCED)).toBe(movedOn ? 1 : 0);
    }
  });
});
