// Proves that a 3-node cluster's memory stays within a stated multiple of its live data
// whatever the value sizes. A real cluster with a dataDir takes values of 256 KiB to 1 MiB
// written over 32 keys (some 23 MiB live at any time), many times the live data in all,
// while the process's resident memory (the nodes are worker threads of this process) is
// sampled every 20 ms and after every write; its growth must stay under the bound below.
// Two runs: 800 MiB with a follower down (crashed: the leader's queue to it never drains),
// then 480 MiB with every node up. Before every per-node buffer was bounded in bytes they
// grew to 2.5 and 2.9 GB: the watch history (65,536 changes, whatever their size) kept every
// value written on every node, and the leader's queue to the dead follower (a count of
// messages, up to an entry of a few MiB each, and as many in flight) most of what was
// written; with only the watch history bounded, to 1.2 and 1.3 GB.
//
// The bound: RSS growth <= k x live + 768 MiB, with k = 12 for three nodes, 8 for two.
//
// - k x live: each node holds its state machine (live), the snapshot its storage keeps (at
//   most live), and while it takes a new snapshot, that one too: 3 x live a node. Another
//   1 x live a node for garbage the collector has not reclaimed yet (overwritten values,
//   replaced snapshots).
// - 768 MiB, whatever the values and however much is written: the rings (12 of 8 MiB), and
//   per node the watch history (16 MiB), the WAL's tail cache (8 MiB and one message), the
//   leader's queues to its followers (16 MiB in flight each, 32 MiB queued at most), the
//   write batch and WAL encoder buffers (a few MiB), the V8 heap and code of four isolates
//   (some 40 MiB each): some 450 MiB; the rest is what the allocator keeps of freed memory
//   (its per-thread arenas hold on to freed 1 MiB blocks).
//
// Measured on the 2-core machine: 460-480 MiB against 956 MiB with a follower down, 680-740
// MiB against 1,043 MiB with every node up.
//
// Growth is measured from the start of the file, before any cluster starts: memory an earlier
// run freed but the allocator kept is counted against a later one, which only makes the
// check stricter (so the run with a follower down, whose bound is the tighter, comes first).
// fsync is off: syncing changes nothing in what the nodes hold in memory, and would make the
// run take minutes on a slow disk.
//
// Last, a watch whose client does not read its replies: the node queues its events in bytes
// up to half its reply queue's bound, then ends the watch with WATCH_LAGGING; what the client
// reads is every change in order up to that point, with no gap, then the end.
import { describe, expect, it } from 'vitest';
import { ByteWriter } from '../../src/codec/index.ts';
import { ErrorCode, type Cluster } from '../../src/index.ts';
import { decodeReply, encodedRequestBytes, NODE_SETTINGS, writeRequestTo, type ClientReply, type ClientRequest } from '../../src/runtime/index.ts';
import { Doorbell, RingConsumer, RingProducer } from '../../src/transport/index.ts';
import { leaderOf, start, stopAfterEach, tempDir } from './helpers.ts';

stopAfterEach();

const MiB = 1 << 20;
const KEYS = 32;
const WRITERS = 4;
const RUN_MS_MAX = 25_000;
const ALLOWANCE_BYTES = 768 * MiB;
const rssFileStart = process.memoryUsage().rss;

interface Run {
  readonly writtenBytes: number;
  readonly liveBytesMax: number;
  readonly growthBytes: number;
  readonly report: string;
}

/**
 * Overwrites KEYS keys with values of 256 KiB to 1 MiB (from a fixed seed) until
 * `writtenBytesTarget` are written or RUN_MS_MAX passes, and samples the process's RSS all
 * along; growth is counted from the start of the file.
 */
async function overwrite(cluster: Cluster, writtenBytesTarget: number): Promise<Run> {
  const kv = cluster.client();
  await kv.put('warm-up', 'x');
  const rssStart = rssFileStart;
  let rssMax = rssStart;
  const sample = (): void => {
    rssMax = Math.max(rssMax, process.memoryUsage().rss);
  };
  const sampler = setInterval(sample, 20);
  const liveByKey = new Map<string, number>();
  let liveBytesMax = 0;
  let writtenBytes = 0;
  let seed = 12345;
  const random = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const startedAt = Date.now();
  const writer = async (): Promise<void> => {
    while (writtenBytes < writtenBytesTarget && Date.now() - startedAt < RUN_MS_MAX) {
      const key = `k${Math.floor(random() * KEYS)}`;
      const sizeBytes = 256 * 1024 + Math.floor(random() * 768 * 1024);
      const value = new Uint8Array(sizeBytes).fill(writtenBytes & 0xff);
      writtenBytes += sizeBytes;
      await kv.put(key, value);
      liveByKey.set(key, sizeBytes);
      let live = 0;
      for (const b of liveByKey.values()) live += b;
      liveBytesMax = Math.max(liveBytesMax, live);
      sample();
    }
  };
  try {
    await Promise.all(Array.from({ length: WRITERS }, writer));
  } finally {
    clearInterval(sampler);
  }
  sample();
  // The cluster still serves its data.
  expect((await kv.get('k0'))?.length).toBeGreaterThanOrEqual(256 * 1024);
  const growthBytes = rssMax - rssStart;
  const report = `wrote ${(writtenBytes / MiB).toFixed(0)} MiB in ${Date.now() - startedAt} ms; live ${(liveBytesMax / MiB).toFixed(1)} MiB; RSS grew ${(growthBytes / MiB).toFixed(0)} MiB (from ${(rssStart / MiB).toFixed(0)})`;
  // Enough was written for a count-bounded buffer to show: many times the live data.
  expect(writtenBytes, report).toBeGreaterThan(10 * liveBytesMax);
  return { writtenBytes, liveBytesMax, growthBytes, report };
}

describe('memory', () => {
  it('with a follower down, the leader\'s queue to it stays bounded: within 8 x live data + 768 MiB', async () => {
    // Many AppendEntries may be in flight, as when entries are large: the bytes bound binds.
    const cluster = await start({ dataDir: tempDir(), node: { fsync: 'none' }, client: { requestTimeoutMs: 30_000 }, raft: { inflightMessagesMax: 4096 } });
    const leader = await leaderOf(cluster);
    await cluster.crash(cluster.nodeIds().find((id) => id !== leader)!);
    const run = await overwrite(cluster, 800 * MiB);
    const boundBytes = 8 * run.liveBytesMax + ALLOWANCE_BYTES;
    console.log(`${run.report}, bound ${(boundBytes / MiB).toFixed(0)} MiB`);
    expect(run.growthBytes, run.report).toBeLessThanOrEqual(boundBytes);
  });

  it('stays within 12 x live data + 768 MiB while large values are overwritten for hundreds of MiB', async () => {
    const cluster = await start({ dataDir: tempDir(), node: { fsync: 'none' }, client: { requestTimeoutMs: 30_000 } });
    const run = await overwrite(cluster, 480 * MiB);
    const boundBytes = 12 * run.liveBytesMax + ALLOWANCE_BYTES;
    console.log(`${run.report}, bound ${(boundBytes / MiB).toFixed(0)} MiB`);
    expect(run.growthBytes, run.report).toBeLessThanOrEqual(boundBytes);
  });

  it('a watch whose client does not read is ended with WATCH_LAGGING, after every change up to then, with no gap', async () => {
    const cluster = await start();
    const kv = cluster.client();
    await kv.put('warm-up', 'x');
    const leader = await leaderOf(cluster);
    // A client link driven by hand: one watch request, then no reading until the writes are done.
    const link = (await cluster.connectEndpoint()).links.find((l) => l.nodeId === leader)!;
    const watch: ClientRequest = { kind: 'watch', requestId: 1, prefix: new TextEncoder().encode('w/'), afterIndex: undefined };
    const frame = new ByteWriter(encodedRequestBytes(watch));
    writeRequestTo(frame, watch);
    expect(new RingProducer(link.requestRing, { doorbell: new Doorbell(link.nodeDoorbell) }).tryPush(frame.finish())).toBe(true);
    // Sequential writes, so the log order is the order written: 2.5 times what the watch may queue.
    const value = new Uint8Array(MiB);
    const count = Math.ceil((2.5 * NODE_SETTINGS.replyQueueBytesMax.default) / 2 / MiB);
    for (let i = 0; i < count; i++) await kv.put(`w/${String(i).padStart(4, '0')}`, value);
    const replies: ClientReply[] = [];
    const consumer = new RingConsumer(link.replyRing);
    const deadline = Date.now() + 10_000;
    while (replies.at(-1)?.kind !== 'watch-end') {
      if (Date.now() > deadline) throw new Error(`no watch-end after ${replies.length} replies`);
      for (let f = consumer.tryPop(); f !== undefined; f = consumer.tryPop()) replies.push(decodeReply(f));
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(replies[0]?.kind).toBe('watch-start');
    expect(replies.at(-1)).toMatchObject({ kind: 'watch-end', code: ErrorCode.WATCH_LAGGING });
    const keys = replies.slice(1, -1).map((r) => (r.kind === 'watch-event' ? new TextDecoder().decode(r.key) : r.kind));
    // Every change from the first on, in order, until the watch was cut off: no gap.
    expect(keys).toEqual(Array.from({ length: keys.length }, (_, i) => `w/${String(i).padStart(4, '0')}`));
    // Cut off once half the reply queue's bytes were queued (beyond the ring), not after all of them.
    expect(keys.length).toBeGreaterThan(NODE_SETTINGS.replyQueueBytesMax.default / 2 / MiB);
    expect(keys.length).toBeLessThan(count);
  });
});
