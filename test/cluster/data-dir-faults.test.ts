// Proves that the main thread's files in a data directory go through the FileSystem seam and
// that its failures are handled: a FaultyFileSystem given to Cluster.start fails one sync of
// the CLUSTER record. When creating the record fails, the start is refused with IO_ERROR and
// the directory is left unlocked; when recording that a node has run fails, that node alone
// is down with IO_ERROR, the record on disk and in memory still says it has not run (nothing
// claims what the disk does not hold), and a restart brings it up.
import diagnostics_channel from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/base/index.ts';
import { Cluster } from '../../src/cluster/index.ts';
import { NODE_CHANNEL, type NodeEvent } from '../../src/runtime/index.ts';
import { FaultyFileSystem, readManifest, realFileSystem } from '../../src/storage/index.ts';
import { afterTest, fast, leaderOf, start, stopAfterEach, tempDir } from './helpers.ts';

stopAfterEach();

/** Starts a cluster on `dir` whose main-thread files fail the `syncFailAt`-th fdatasync with EIO; closed after the test. */
async function startFaulty(dir: string, syncFailAt: number): Promise<Cluster> {
  const cluster = await Cluster.start(fast({ nodes: 3, dataDir: dir }), { fileSystem: new FaultyFileSystem(realFileSystem, { syncFailAt }) });
  afterTest(() => cluster.close());
  return cluster;
}

describe('faults in the data directory files of the main thread', () => {
  it('a failed sync of a new CLUSTER record refuses the start with IO_ERROR and leaves the directory unlocked', async () => {
    const dir = tempDir();
    // The first fdatasync is the new record's (the directory is made and the lock taken before).
    await expect(startFaulty(dir, 1)).rejects.toMatchObject({ code: ErrorCode.IO_ERROR, message: expect.stringMatching(/CLUSTER record failed: EIO/) });
    expect(readManifest(realFileSystem, dir)).toBeUndefined();
    const cluster = await start({ nodes: 3, dataDir: dir });
    await leaderOf(cluster);
  });

  it('a failed write of "node has run" leaves that node down with IO_ERROR and the record true to the disk; a restart brings it up', async () => {
    const dir = tempDir();
    const events: NodeEvent[] = [];
    const listen = (message: unknown): void => void events.push(message as NodeEvent);
    diagnostics_channel.subscribe(NODE_CHANNEL, listen);
    afterTest(() => void diagnostics_channel.unsubscribe(NODE_CHANNEL, listen));
    // Syncs 1 to 4 are the new record and the three IDENTITY files, all written before any
    // thread starts; sync 5 records that the first node to say 'started' has run.
    const cluster = await startFaulty(dir, 5);
    const status = await cluster.status();
    const down = status.nodes.filter((n) => !n.alive);
    expect(down).toHaveLength(1);
    const failed = down[0]!.id;
    expect(down[0]).toMatchObject({ errorCode: ErrorCode.IO_ERROR });
    expect(events).toContainEqual(expect.objectContaining({ kind: 'start-failed', node: failed, code: ErrorCode.IO_ERROR }));
    // The other two nodes' records were written after the failure: none says the failed node has run.
    const record = readManifest(realFileSystem, dir)!;
    expect(record.members.map((m) => [m.id, m.hasRun])).toEqual([1, 2, 3].map((id) => [id, id !== failed]));
    await cluster.restart(failed);
    expect(readManifest(realFileSystem, dir)!.members.every((m) => m.hasRun)).toBe(true);
    expect((await cluster.status()).nodes.every((n) => n.alive)).toBe(true);
  });
});
