// Proves that restart() racing restart() or close() leaves no stray worker: two restarts of
// one node start one worker, and close() during a restart stops the restarted worker too. A
// spy on the private startWorker of the cluster's node workers records every worker started,
// and each must exit within a bound.
import type { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { Cluster } from '../../src/index.ts';
import { afterTest, start, stopAfterEach, tempDir } from './helpers.ts';

stopAfterEach();

/** Records every worker the cluster starts (through the startWorker of its private NodeWorkers), so a test can check that each one stopped. */
function spyWorkers(cluster: Cluster): Worker[] {
  const workers: Worker[] = [];
  const c = (cluster as unknown as { workers: { startWorker(id: number, voters: readonly number[], beforeRun: () => void): Promise<void>; slots: Map<number, { worker: Worker | undefined }> } }).workers;
  const original = c.startWorker.bind(c);
  c.startWorker = (id, voters, beforeRun) => {
    const p = original(id, voters, beforeRun);
    const w = c.slots.get(id)!.worker!;
    workers.push(w);
    return p;
  };
  afterTest(async () => {
    await Promise.all(workers.map((w) => w.terminate().catch(() => undefined)));
  });
  return workers;
}

/** Whether `w` has exited (its 'exit' event has fired) within `ms`. */
function exitsWithin(w: Worker, ms: number): Promise<boolean> {
  if (w.threadId === -1) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    w.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

describe('restart races', () => {
  it('two restart() calls of one node at once start one worker, not two', async () => {
    const cluster = await start({ dataDir: tempDir() });
    const workers = spyWorkers(cluster);
    await cluster.crash(2);
    await Promise.all([cluster.restart(2), cluster.restart(2)]);
    // Two workers would be two Raft nodes numbered 2 on one WAL directory and one set of rings.
    expect(workers.length).toBe(1);
    await cluster.close();
    for (const w of workers) expect(await exitsWithin(w, 3_000)).toBe(true);
  });

  it('close() while a restart is under way stops the restarted worker too', async () => {
    const cluster = await start({ dataDir: tempDir() });
    const workers = spyWorkers(cluster);
    await cluster.crash(2);
    const restarting = cluster.restart(2).catch((e: unknown) => e);
    await cluster.close();
    await restarting;
    expect(workers.length).toBeLessThanOrEqual(1);
    // close() skipped the node (not alive yet); the worker started anyway and keeps running.
    for (const w of workers) expect(await exitsWithin(w, 3_000)).toBe(true);
  });
});
