// A NodeHost over storage whose writes become durable later (HostStorage.persistLater, as a
// WAL with a sync thread): the host goes on while a write syncs, and holds back what depends
// on it. A follower's acknowledgement leaves only once its write is durable; a leader counts
// itself toward commit only then (a single voter answers no write before its sync), but it
// applies and answers what its followers committed without waiting for its own newer write;
// Readys finish in the order they were taken. A leader sends nothing early while the Ready
// that changed its term or vote still syncs; a snapshot from the leader is stepped only once
// every Ready taken before it is finished.
import { describe, expect, it } from 'vitest';
import { makeMessage, MessageType, type Message } from '../../src/core/index.ts';
import { NodeHost } from '../../src/runtime/index.ts';
import { StorageError, StorageErrorCode, type PersistBatch } from '../../src/storage/index.ts';
import { HostNetwork, MemoryStorage, put, writeReq } from './helpers.ts';

/** MemoryStorage whose writes, while `holding`, become durable only when the test lands them. */
class DeferredStorage extends MemoryStorage {
  holding = false;
  /** Thrown by durableSequence once set: a sync that failed. */
  failure: Error | undefined;
  private written = 0;
  private landed = 0;

  persistLater(batch: PersistBatch): number {
    this.persist(batch);
    this.written++;
    if (!this.holding) this.landed = this.written;
    return this.written;
  }

  durableSequence(): number {
    if (this.failure !== undefined) throw this.failure;
    return this.landed;
  }

  syncNow(): void {
    this.landed = this.written;
  }

  /** Whether writes wait to be landed. */
  get waiting(): boolean {
    return this.landed < this.written;
  }

  land(): void {
    this.landed = this.written;
  }
}

/** Three nodes, leader 1, where the nodes in `deferred` write through a DeferredStorage. */
function cluster(deferred: readonly number[], voters = [1, 2, 3]): { net: HostNetwork; storage: Map<number, DeferredStorage> } {
  const net = new HostNetwork(voters);
  const storage = new Map<number, DeferredStorage>();
  for (const id of deferred) {
    const s = new DeferredStorage();
    storage.set(id, s);
    net.start(id, s);
  }
  net.elect(1);
  for (const s of storage.values()) s.holding = true;
  return { net, storage };
}

describe('a host whose writes sync later', () => {
  it("a follower's acknowledgement leaves only once its write is durable", () => {
    const { net, storage } = cluster([2]);
    const last = net.host(1).raft.log.lastIndex();
    net.request(1, writeReq(1, 7, 1, put('k', 'v')));
    net.deliverAll();
    // Node 3 acknowledged, so the write committed and was answered; node 2 has not.
    expect(net.repliesTo(1, 1).map((r) => r.kind)).toEqual(['write']);
    const acks = (): number[] => net.sent.filter((m) => m.from === 2 && m.type === MessageType.AppResp && !m.reject && m.index > last).map((m) => m.index);
    expect(storage.get(2)!.waiting).toBe(true);
    expect(acks()).toEqual([]);
    expect(net.host(2).raft.log.lastIndex()).toBeGreaterThan(last);
    storage.get(2)!.land();
    expect(net.host(2).hasSettledWork).toBe(true);
    net.host(2).processReady();
    expect(acks().length).toBeGreaterThan(0);
    expect(Math.max(...acks())).toBe(last + 1);
  });

  it('a leader answers what its followers committed before its own write is durable, and counts itself only after', () => {
    const { net, storage } = cluster([1]);
    const last = net.host(1).raft.log.lastIndex();
    net.request(1, writeReq(1, 7, 1, put('k', 'v')));
    net.deliverAll();
    expect(storage.get(1)!.waiting).toBe(true);
    expect(net.repliesTo(1, 1).map((r) => r.kind)).toEqual(['write']);
    expect(net.host(1).appliedIndex).toBe(last + 1);
    const self = (): number => net.host(1).raft.progress.get(1)!.match;
    expect(self()).toBe(last);
    storage.get(1)!.land();
    net.host(1).processReady();
    expect(self()).toBe(last + 1);
  });

  it('a single voter answers a write only once its own write is durable', () => {
    const { net, storage } = cluster([1], [1]);
    net.request(1, writeReq(1, 7, 1, put('k', 'v')));
    net.deliverAll();
    expect(net.repliesTo(1, 1)).toEqual([]);
    // More writes while the first syncs: taken, written, and held too.
    net.request(1, writeReq(2, 7, 2, put('k', 'w')));
    net.deliverAll();
    expect(net.repliesTo(1, 2)).toEqual([]);
    storage.get(1)!.land();
    net.host(1).processReady();
    // The commit is applied at the next Ready, which has nothing to wait for.
    net.deliverAll();
    expect(net.repliesTo(1, 1).map((r) => r.kind)).toEqual(['write']);
    expect(net.repliesTo(1, 2).map((r) => r.kind)).toEqual(['write']);
    const [first, second] = [net.repliesTo(1, 1)[0]!, net.repliesTo(1, 2)[0]!];
    expect(first.kind === 'write' && second.kind === 'write' && first.index < second.index).toBe(true);
  });

  it('a failed sync fails the node in processReady, and asking whether work is settled does not throw', () => {
    const { net, storage } = cluster([2]);
    net.request(1, writeReq(1, 7, 1, put('k', 'v')));
    net.deliverAll();
    const failure = new StorageError(StorageErrorCode.IO_ERROR, 'EIO');
    storage.get(2)!.failure = failure;
    // Asked from a thread's wait for input, shared with other nodes: it must not throw.
    expect(net.host(2).hasSettledWork).toBe(true);
    expect(() => net.host(2).processReady()).toThrow(failure);
  });

  it("sends nothing under a term before the Ready that took it is durable, early sends included (a single voter's election)", () => {
    // Voter 1 and learner 2: node 1 elects itself in one Ready, then leads at once.
    const storage = new DeferredStorage();
    storage.holding = true;
    const sent: Message[] = [];
    const host = new NodeHost(
      { raft: { id: 1, seed: 17, voters: [1], learners: [2], electionTimeoutTicks: 10, heartbeatIntervalTicks: 1, preVote: false, checkQuorum: false }, storage },
      { sendRaft: (m) => sent.push(m), reply: () => undefined },
    );
    for (let i = 0; i < 40 && host.raft.role !== 'leader'; i++) {
      host.tick();
      host.processReady();
    }
    expect(host.raft.role).toBe('leader');
    const term = host.raft.term;
    host.handleRequest(writeReq(1, 7, 1, put('k', 'v')));
    host.flush();
    for (let i = 0; i < 3; i++) {
      host.tick();
      host.processReady();
    }
    expect(storage.waiting).toBe(true);
    expect(sent.filter((m) => m.term === term)).toEqual([]);
    storage.land();
    host.processReady();
    host.tick();
    host.processReady();
    expect(sent.filter((m) => m.term === term && m.to === 2).length).toBeGreaterThan(0);
  });

  it('finishes every Ready taken before it steps a snapshot from the leader', () => {
    const { net, storage } = cluster([2]);
    net.request(1, writeReq(1, 7, 1, put('k', 'v')));
    net.deliverAll();
    const host = net.host(2);
    expect(host.readysWaitingForSync).toBeGreaterThan(0);
    // Any snapshot message (this one of an old term, which the core then disregards).
    host.step(makeMessage({ type: MessageType.Snap, from: 1, to: 2, term: host.raft.term - 1 }));
    expect(host.readysWaitingForSync).toBe(0);
    expect(storage.get(2)!.waiting).toBe(false);
  });
});
