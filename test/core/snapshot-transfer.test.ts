// Proves InstallSnapshot travels in chunks and survives loss: a follower far behind gets
// the snapshot as totalBytes / snapshotChunkBytes chunks, assembles it byte-exact and
// replaces its state only when complete; a lost chunk resumes from the follower's offset
// (not from zero); a follower that restarts mid-transfer gets the whole snapshot again; a
// transfer completes even while the leader keeps taking newer snapshots; and a snapshot
// over the follower's limit is refused without allocating for it.
import { describe, expect, it } from 'vitest';
import { MessageType, type Message } from '../../src/core/index.ts';
import { Network } from './helpers/network.ts';

const CHUNK = 1024;
const SIZE = 10 * CHUNK + 300; // 11 chunks, the last one short.

function bigState(seed: number): Uint8Array {
  const data = new Uint8Array(SIZE);
  for (let i = 0; i < SIZE; i++) data[i] = (i * 31 + seed) & 0xff;
  return data;
}

/** A 3-node cluster where node 3 missed everything the leader has compacted away. */
function laggingFollower(options: { snapshotBytesMax?: number } = {}) {
  const net = new Network([1, 2, 3], { snapshotChunkBytes: CHUNK, ...options });
  const leader = net.elect(1);
  net.isolate(3);
  for (let i = 0; i < 10; i++) net.propose(1, `s${i}`);
  net.deliverAll();
  const data = bigState(leader.log.applied);
  net.node(1).storage.createSnapshot(leader.log.applied, leader.conf, data);
  net.recover();
  return { net, leader, data };
}

const snapTo3 = (m: Message): boolean => m.type === MessageType.Snap && m.from === 1 && m.to === 3;

function driveUntilInstalled(net: Network, roundsMax: number): void {
  for (let i = 0; i < roundsMax && net.node(3).snapshotsInstalled === 0; i++) {
    net.tick(1);
    net.deliverAll();
  }
}

describe('chunked snapshot transfer (§7)', () => {
  it('sends the snapshot in chunks, in order, and installs it whole', () => {
    const { net, data } = laggingFollower();
    driveUntilInstalled(net, 10);
    const chunks = net.delivered.filter(snapTo3).map((m) => m.snapshot!);
    expect(chunks.length).toBe(Math.ceil(SIZE / CHUNK));
    expect(chunks.map((c) => c.offset)).toEqual(chunks.map((_, i) => i * CHUNK));
    for (const c of chunks) {
      expect(c.totalBytes).toBe(SIZE);
      expect(c.data.length).toBeLessThanOrEqual(CHUNK);
    }
    expect(net.node(3).snapshotsInstalled).toBe(1);
    expect(net.node(3).storage.snapshot().data).toEqual(data);
    net.propose(1, 'after');
    net.deliverAll();
    expect(net.appliedTexts(3)).toEqual(['after']);
  });

  it('resumes after a lost chunk from the offset the follower reports', () => {
    const { net, data } = laggingFollower();
    let dropped = 0;
    net.drop((m) => {
      if (snapTo3(m) && m.snapshot!.offset === 5 * CHUNK && dropped === 0) {
        dropped++;
        return true;
      }
      return false;
    });
    driveUntilInstalled(net, 40);
    expect(dropped).toBe(1);
    expect(net.node(3).snapshotsInstalled).toBe(1);
    expect(net.node(3).storage.snapshot().data).toEqual(data);
    // Resumed, not restarted: chunks before the lost one were sent once more at most.
    const offsets = net.sent.filter(snapTo3).map((m) => m.snapshot!.offset);
    expect(offsets.filter((o) => o === CHUNK).length).toBe(1);
    expect(offsets.filter((o) => o === 5 * CHUNK).length).toBe(2);
  });

  it('a follower that restarts mid-transfer receives the whole snapshot again', () => {
    const { net, data } = laggingFollower();
    // Let a few chunks through, then restart node 3 (its partial assembly is memory only).
    for (let i = 0; i < 50 && net.sent.filter(snapTo3).length < 4; i++) {
      net.tick(1);
      net.deliverAll((m) => snapTo3(m) && m.snapshot!.offset >= 4 * CHUNK);
    }
    expect(net.node(3).snapshotsInstalled).toBe(0);
    net.queue = net.queue.filter((m) => m.to !== 3);
    net.restart(3);
    driveUntilInstalled(net, 60);
    expect(net.node(3).snapshotsInstalled).toBe(1);
    expect(net.node(3).storage.snapshot().data).toEqual(data);
    const offsets = net.sent.filter(snapTo3).map((m) => m.snapshot!.offset);
    expect(offsets.filter((o) => o === 0).length).toBeGreaterThanOrEqual(2);
  });

  it('refuses a snapshot over snapshotBytesMax, without installing anything', () => {
    const { net } = laggingFollower({ snapshotBytesMax: SIZE - 1 });
    for (let i = 0; i < 5; i++) {
      net.tick(1);
      net.deliverAll();
    }
    expect(net.node(3).snapshotsInstalled).toBe(0);
    const refusals = net.delivered.filter((m) => m.type === MessageType.SnapResp && m.from === 3 && m.reject);
    expect(refusals.length).toBeGreaterThan(0);
  });

  it('completes while the leader keeps taking newer snapshots (the transfer is pinned)', () => {
    const { net, leader } = laggingFollower();
    // Under steady load the leader snapshots every few entries. Before the fix, every new
    // snapshot restarted the transfer, so a slow follower never finished one.
    for (let round = 0; round < 200 && net.node(3).snapshotsInstalled === 0; round++) {
      net.propose(1, `load${round}`);
      net.tick(1);
      // Everything but the snapshot chunks flows; of those, one per round: a slow transfer.
      net.deliverAll(snapTo3);
      const chunk = net.queue.find(snapTo3);
      if (chunk !== undefined) net.deliverWhere((m) => m === chunk);
      if (leader.log.applied > net.node(1).storage.snapshot().meta.index) {
        net.node(1).storage.createSnapshot(leader.log.applied, leader.conf, bigState(leader.log.applied));
      }
    }
    expect(net.node(3).snapshotsInstalled).toBeGreaterThanOrEqual(1);
    const installed = net.node(3).storage.snapshot();
    expect(installed.data).toEqual(bigState(installed.meta.index));
    net.deliverAll();
    net.propose(1, 'after');
    for (let i = 0; i < 5; i++) {
      net.tick(1);
      net.deliverAll();
    }
    expect(net.raft(3).log.committed).toBe(leader.log.committed);
  });
});
