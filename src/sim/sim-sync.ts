/**
 * The sync agent of a simulated node's WAL (storage's `SyncAgent`), standing in for the sync
 * thread of a real node (runtime/sync-thread.ts): a sync asked for runs at a later event, a
 * delay drawn from the seed, while the node goes on stepping, taking requests and writing.
 * As on the thread, one sync runs at a time and a request made meanwhile is taken by the
 * next, so a crash finds writes of several Readys not yet synced, which the simulated disk
 * may tear or lose (sim-fs.ts), and the node must have held back everything that depended on
 * them.
 */
import type { Fd, SyncAgent } from '../storage/index.ts';
import type { SimFileSystem } from './sim-fs.ts';

export class SimSyncAgent implements SyncAgent {
  private syncedSequence = 0;
  private asked: { readonly fd: Fd; readonly sequence: number } | undefined;
  private running = false;
  private closed = false;
  /** Files handed over by `reclaim`, not yet freed. */
  private readonly reclaiming = new Set<Fd>();

  /**
   * `later(run)` runs `run` at a later event; `synced()` is called after each sync, the node's
   * cue to finish what waited for it. A sync that throws (a crash the simulator planted at the
   * next sync) is passed to `failed`.
   */
  constructor(
    private readonly fs: SimFileSystem,
    private readonly later: (run: () => void) => void,
    private readonly onSynced: () => void,
    private readonly failed: (error: unknown) => void,
  ) {}

  request(fd: Fd, sequence: number): void {
    if (this.closed) return;
    this.asked = { fd, sequence };
    if (!this.running) this.start();
  }

  synced(): number {
    return this.syncedSequence;
  }

  /** The simulated sync lands at its event; nothing of it runs in between to wait for. */
  quiesce(): void {}

  /** The file is emptied and closed at a later event, as the sync thread does between syncs. */
  reclaim(fd: Fd): boolean {
    if (this.closed) return false;
    this.reclaiming.add(fd);
    this.later(() => {
      if (this.reclaiming.delete(fd)) this.free(fd);
    });
    return true;
  }

  close(): void {
    this.closed = true;
    for (const fd of this.reclaiming) this.free(fd);
    this.reclaiming.clear();
  }

  /**
   * Empties and closes `fd`, unless a crash closed it already. Emptying it does nothing a
   * reader sees, unless the WAL handed over a file the log still holds: then a crash may
   * bring back an emptied segment, which recovery reports as damage.
   */
  private free(fd: Fd): void {
    if (!this.fs.isOpen(fd)) return;
    this.fs.ftruncate(fd, 0);
    this.fs.close(fd);
  }

  private start(): void {
    const asked = this.asked!;
    this.asked = undefined;
    this.running = true;
    this.later(() => {
      this.running = false;
      if (this.closed) return;
      try {
        // A file the WAL no longer holds open was synced by the WAL itself when it moved to a
        // new segment (wal-storage.ts, write): nothing of it is left to sync.
        if (this.fs.isOpen(asked.fd)) this.fs.fdatasync(asked.fd);
      } catch (error) {
        this.closed = true;
        this.failed(error);
        return;
      }
      this.syncedSequence = asked.sequence;
      if (this.asked !== undefined) this.start();
      this.onSynced();
    });
  }
}
