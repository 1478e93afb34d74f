// Proves that restart() racing restart() or close() leaves no stray node or worker: two
// restarts of one node start it once, and close() during a restart stops the restarted node's
// worker too; with a thread per node and with the nodes sharing one. A spy on the private
// startWorker of the cluster's node workers records every start and the worker that hosts it,
// and each worker must exit within a bound.
import type { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { Cluster } from '../../src/index.ts';
import { afterTest, start, stopAfterEach, tempDir } from './helpers.ts';

stopAfterEach();

/** Records every node start (through the startWorker of the cluster's private NodeWorkers) and the worker that hosts it, so a test can check that each one stopped. */
function spyWorkers(cluster: Cluster): { readonly starts: number[]; readonly workers: Worker[] } {
  const starts: number[] = [];
  const workers: Worker[] = [];
  const c = (cluster as unknown as { workers: { startWorker(id: number, voters: readonly number[], beforeRun: () => void): Promise<void>; slots: Map<number, { thread: { run?: { worker: Worker } | undefined } }> } })
    .workers;
  const original = c.startWorker.bind(c);
  c.startWorker = (id, voters, beforeRun) => {
    const p = original(id, voters, beforeRun);
    starts.push(id);
    const w = c.slots.get(id)!.thread.run?.worker;
    if (w !== undefined && !workers.includes(w)) workers.push(w);
    return p;
  };
  afterTest(async () => {
    await Promise.all(workers.map((w) => w.terminate().catch(() => undefined)));
  });
  return { starts, workers };
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

describe.each([3, 1])('restart races, %i node threads', (nodeThreads) => {
  it('two restart() calls of one node at once start it once, not twice', async () => {
    const cluster = await start({ dataDir: tempDir(), nodeThreads });
    const { starts, workers } = spyWorkers(cluster);
    await cluster.crash(2);
    await Promise.all([cluster.restart(2), cluster.restart(2)]);
    // Two starts would be two Raft nodes numbered 2 on one WAL directory and one set of rings.
    expect(starts).toEqual([2]);
    expect(workers.length).toBe(1);
    await cluster.close();
    for (const w of workers) expect(await exitsWithin(w, 3_000)).toBe(true);
  });

  it('close() while a restart is under way stops the restarted worker too', async () => {
    const cluster = await start({ dataDir: tempDir(), nodeThreads });
    const { starts, workers } = spyWorkers(cluster);
    await cluster.crash(2);
    const restarting = cluster.restart(2).catch((e: unknown) => e);
    await cluster.close();
    await restarting;
    expect(starts.length).toBeLessThanOrEqual(1);
    expect(workers.length).toBeLessThanOrEqual(1);
    // close() skipped the node (not alive yet); the worker started anyway and keeps running.
    for (const w of workers) expect(await exitsWithin(w, 3_000)).toBe(true);
  });
});
