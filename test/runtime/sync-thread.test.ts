// The sync thread (runtime/sync-thread.ts): a WAL's fdatasync on a thread of its own. It syncs
// what it is asked, reports the sequence, and rings the node thread's doorbell; a failed sync
// is reported as the storage's own error (EBADF here: IO_ERROR), and a WAL over it recovers
// every batch it reported durable. Runs the built worker (dist), as the cluster tests do.
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ThreadSyncAgent } from '../../src/runtime/sync-thread.ts';
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

  it.each([1, 2])('syncs the file asked for, reports the sequence and rings the doorbell (%i threads)', (threads) => {
    const doorbell = Doorbell.create();
    const agent = new ThreadSyncAgent(doorbell.buffer, threads);
    const fd = openSync(join(root, 'a'), 'w+');
    try {
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
    } finally {
      agent.close();
      closeSync(fd);
    }
  });

  it("reports a failed sync as the storage's error", () => {
    const doorbell = Doorbell.create();
    const agent = new ThreadSyncAgent(doorbell.buffer, 2);
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
    const s = WalStorage.open(dir, { syncAgent: new ThreadSyncAgent(doorbell.buffer, 2) });
    let last = 0;
    for (let i = 1; i <= 50; i++) last = s.persistLater({ entries: ents(i, [1]) });
    waitFor(doorbell, () => s.durableSequence() >= last);
    s.close();
    const again = WalStorage.open(dir);
    expect(plain(again.allEntries())).toEqual(plain(ents(1, Array.from({ length: 50 }, () => 1))));
    again.close();
  });
});
