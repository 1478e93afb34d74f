// Proves the NodeHost's contract by driving three (and four) hosts by hand on a tiny network
// (test/runtime/helpers.ts): writes are answered once, after commit, and only by the leader;
// followers refuse with a leader hint; the reads queued before one flush() share one
// ReadIndex round, and a read released ahead of the state machine waits for apply; stale
// reads are answered at once anywhere; a leader that loses its role fails what it was
// serving with the right `proposed` flag; a retried write applies once; watches report
// matching changes in index order after a watch-start, resume from history, end with
// COMPACTED below the history floor and with CLOSED on unwatch, and are refused at once with
// INVALID_ARGUMENT after an index the node cannot expect to reach; snapshots compact the log,
// survive a restart and catch up a node added later; the watch history and the entries kept
// behind a snapshot are bounded in bytes, not only in count, and a write over the protocol's
// limit is refused before it can spoil its batch; a leader's snapshot keeps the entries a
// live follower still needs (within the byte bound), but not for a follower gone silent; and
// each Ready is persisted before the messages that depend on it leave.
import { ErrorCode } from '../../src/base/index.ts';
import { describe, expect, it, vi } from 'vitest';
import { EntryType, MessageType, NONE, type Message } from '../../src/core/index.ts';
import { encodeKvRequest } from '../../src/kv/index.ts';
import { WATCH_BYTES_MAX, WATCHES_MAX, WRITE_REQUEST_BYTES_MAX, type ClientReply } from '../../src/runtime/index.ts';
import { bytesOf, del, HostNetwork, put, readReq, textOf, watchReq, writeReq } from './helpers.ts';

/** A three-node cluster whose leader is node 1, with every node caught up. */
function cluster(options: ConstructorParameters<typeof HostNetwork>[1] = {}): HostNetwork {
  const net = new HostNetwork([1, 2, 3], options);
  net.elect(1);
  return net;
}

/** Writes `key = value` through node `id` (the leader) and delivers until it is answered; returns its index. */
function write(net: HostNetwork, id: number, requestId: number, clientId: number, key: string, value: string): number {
  net.request(id, writeReq(requestId, clientId, 1, put(key, value)));
  net.deliverAll();
  const [reply] = net.repliesTo(id, requestId);
  if (reply?.kind !== 'write') throw new Error(`write ${requestId} not answered: ${JSON.stringify(reply)}`);
  return reply.index;
}

/** The watch replies to `requestId` as [kind, index, key, value] rows, easy to compare. */
function watchLog(replies: readonly ClientReply[], requestId: number): (string | number | undefined)[][] {
  return replies
    .filter((r) => r.requestId === requestId)
    .map((r) => {
      switch (r.kind) {
        case 'watch-start':
          return ['start', r.index];
        case 'watch-event':
          return ['event', r.index, textOf(r.key), textOf(r.value)];
        case 'watch-end':
          return ['end', r.code];
        default:
          return [r.kind];
      }
    });
}

const heartbeatsWithContext = (sent: readonly Message[]): Message[] => sent.filter((m) => m.type === MessageType.Heartbeat && m.context !== 0);

describe('writes', () => {
  it('a write to the leader is answered with kind write once it commits, exactly once', () => {
    const net = cluster();
    const leader = net.host(1);
    // Check at the moment of the reply that the entry is committed and durable on the leader.
    const commitAtReply: number[] = [];
    const replies = net.node(1).replies;
    const push = replies.push.bind(replies);
    replies.push = (...rs: ClientReply[]) => {
      commitAtReply.push(leader.raft.log.committed);
      return push(...rs);
    };
    net.request(1, writeReq(7, 100, 1, put('k', 'v')));
    // Proposed and persisted on the leader, sent, but not acknowledged by anyone: no answer yet.
    expect(net.repliesTo(1, 7)).toEqual([]);
    expect(net.queue.some((m) => m.type === MessageType.App && m.entries.length > 0)).toBe(true);
    net.deliverAll();
    const answered = net.repliesTo(1, 7);
    expect(answered).toEqual([{ kind: 'write', requestId: 7, result: { op: 'put' }, index: expect.any(Number) }]);
    const index = (answered[0] as { index: number }).index;
    expect(commitAtReply[0]).toBeGreaterThanOrEqual(index);
    expect(net.node(1).storage.lastIndex()).toBeGreaterThanOrEqual(index);
    // More rounds (commit propagation, heartbeats) answer nothing again; every node applied it.
    net.tickAll(5);
    expect(net.repliesTo(1, 7)).toHaveLength(1);
    for (const id of [1, 2, 3]) expect(textOf(net.host(id).kv.get(bytesOf('k')))).toBe('v');
    // Followers answer nothing for writes they only applied.
    expect(net.node(2).replies).toEqual([]);
    expect(net.node(3).replies).toEqual([]);
  });

  it('results follow the command: delete of a present and an absent key, cas kept and swapped', () => {
    const net = cluster();
    net.request(
      1,
      writeReq(1, 5, 1, put('a', '1')),
      writeReq(2, 6, 1, del('a')),
      writeReq(3, 7, 1, del('a')),
      writeReq(4, 8, 1, { op: 'cas', key: bytesOf('b'), expected: bytesOf('x'), value: bytesOf('y') }),
      writeReq(5, 9, 1, { op: 'cas', key: bytesOf('b'), expected: undefined, value: bytesOf('y') }),
    );
    net.deliverAll();
    const results = [1, 2, 3, 4, 5].map((id) => {
      const [r] = net.repliesTo(1, id);
      return r?.kind === 'write' ? r.result : r;
    });
    expect(results).toEqual([
      { op: 'put' },
      { op: 'delete', existed: true },
      { op: 'delete', existed: false },
      { op: 'cas', swapped: false },
      { op: 'cas', swapped: true },
    ]);
  });

  it('a write sent to a follower is refused NOT_LEADER with a leaderHint, and nothing is proposed', () => {
    const net = cluster();
    const lastIndex = net.host(2).raft.log.lastIndex();
    net.request(2, writeReq(9, 100, 1, put('k', 'v')));
    expect(net.repliesTo(2, 9)).toEqual([{ kind: 'error', requestId: 9, code: ErrorCode.NOT_LEADER, leaderHint: 1, proposed: false }]);
    net.deliverAll();
    expect(net.host(2).raft.log.lastIndex()).toBe(lastIndex);
    expect(net.host(1).raft.log.lastIndex()).toBe(lastIndex);
  });

  it('a write whose bytes are not a KV request fails alone with INVALID_ARGUMENT, on every replica the same', () => {
    const net = cluster();
    net.request(1, { kind: 'write', requestId: 4, data: Uint8Array.of(1, 1, 0, 0) }, writeReq(5, 42, 1, put('k', 'v')));
    net.deliverAll();
    expect(net.repliesTo(1, 4)).toEqual([{ kind: 'error', requestId: 4, code: ErrorCode.INVALID_ARGUMENT, leaderHint: NONE, proposed: true }]);
    // The good write in the same batch applied everywhere.
    expect(net.repliesTo(1, 5)).toMatchObject([{ kind: 'write', result: { op: 'put' } }]);
    net.tickAll(2);
    for (const id of [1, 2, 3]) expect(net.host(id).kv.get(bytesOf('k'))).toEqual(bytesOf('v'));
  });

  it('a duplicate write (same clientId and seq, proposed twice) applies once and the latest request is answered', () => {
    const net = cluster();
    net.request(1, watchReq(50, 'k'));
    const data = encodeKvRequest({ clientId: 42, seq: 1, command: put('k', 'v') });
    net.request(1, { kind: 'write', requestId: 10, data });
    net.request(1, { kind: 'write', requestId: 11, data });
    net.deliverAll();
    net.tickAll(2);
    // Both copies are in the log (two batch entries), but the state machine ran the command once.
    const entries = net.node(1).storage.allEntries().filter((e) => e.type === EntryType.Normal && e.data.length > 0);
    expect(entries).toHaveLength(2);
    const events = net.node(1).replies.filter((r) => r.kind === 'watch-event');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ index: entries[0]!.index });
    // Each request is answered when its own entry applies: the first ran, the second got the
    // cached result, and the index where the write ran (not its copy's).
    expect(net.repliesTo(1, 10)).toEqual([{ kind: 'write', requestId: 10, result: { op: 'put' }, index: entries[0]!.index }]);
    expect(net.repliesTo(1, 11)).toEqual([{ kind: 'write', requestId: 11, result: { op: 'put' }, index: entries[0]!.index }]);
    for (const id of [2, 3]) expect(net.node(id).replies).toEqual([]);
  });

  it('a write from a session the state machine does not know (seq > 1) is answered SESSION_EXPIRED, proposed', () => {
    const net = cluster();
    net.request(1, writeReq(5, 77, 3, put('k', 'v')));
    net.deliverAll();
    expect(net.repliesTo(1, 5)).toEqual([{ kind: 'error', requestId: 5, code: ErrorCode.SESSION_EXPIRED, leaderHint: NONE, proposed: true }]);
    expect(net.host(1).kv.get(bytesOf('k'))).toBeUndefined();
  });

  it('a write retried after it applied is answered with the cached result and does not run again', () => {
    const net = cluster();
    net.request(1, watchReq(50, ''));
    net.request(1, writeReq(1, 42, 1, { op: 'cas', key: bytesOf('k'), expected: undefined, value: bytesOf('first') }));
    net.deliverAll();
    net.request(1, writeReq(2, 43, 1, put('k', 'second')));
    net.deliverAll();
    // The retry of request 1 would now find 'second' there and not swap, if it ran again.
    net.request(1, writeReq(3, 42, 1, { op: 'cas', key: bytesOf('k'), expected: undefined, value: bytesOf('first') }));
    net.deliverAll();
    expect(net.repliesTo(1, 3)).toMatchObject([{ kind: 'write', result: { op: 'cas', swapped: true } }]);
    expect(textOf(net.host(1).kv.get(bytesOf('k')))).toBe('second');
    expect(net.node(1).replies.filter((r) => r.kind === 'watch-event')).toHaveLength(2);
  });
});

describe('reads', () => {
  it('many reads queued before one flush() share ONE ReadIndex round and are all answered with the value', () => {
    const net = cluster();
    write(net, 1, 1, 100, 'k', 'v');
    const leader = net.host(1);
    const readIndex = vi.spyOn(leader.raft, 'readIndex');
    const sentBefore = net.sent.length;
    const ids = [20, 21, 22, 23, 24, 25];
    for (const id of ids) leader.handleRequest(readReq(id, 'k'));
    leader.handleRequest(readReq(26, 'absent'));
    expect(readIndex).not.toHaveBeenCalled();
    leader.flush();
    leader.processReady();
    expect(readIndex).toHaveBeenCalledTimes(1);
    const rounds = heartbeatsWithContext(net.sent.slice(sentBefore));
    // One heartbeat per follower, all of the same round.
    expect(rounds.map((m) => m.to).sort()).toEqual([2, 3]);
    expect(new Set(rounds.map((m) => m.context)).size).toBe(1);
    // No answer before a quorum has acknowledged the round.
    expect(net.node(1).replies.filter((r) => r.kind === 'read')).toEqual([]);
    net.deliverAll();
    const index = leader.appliedIndex;
    for (const id of ids) expect(net.repliesTo(1, id)).toEqual([{ kind: 'read', requestId: id, index, value: bytesOf('v') }]);
    expect(net.repliesTo(1, 26)).toEqual([{ kind: 'read', requestId: 26, index, value: undefined }]);
    expect(heartbeatsWithContext(net.sent.slice(sentBefore))).toHaveLength(2);
  });

  it('reads queued across two flush() make two rounds, and a read sees the writes answered before it', () => {
    const net = cluster();
    const leader = net.host(1);
    const readIndex = vi.spyOn(leader.raft, 'readIndex');
    write(net, 1, 1, 100, 'k', 'v1');
    net.request(1, readReq(2, 'k'));
    write(net, 1, 3, 101, 'k', 'v2');
    net.request(1, readReq(4, 'k'));
    net.deliverAll();
    expect(readIndex).toHaveBeenCalledTimes(2);
    expect(net.repliesTo(1, 2)).toMatchObject([{ kind: 'read', value: bytesOf('v1') }]);
    expect(net.repliesTo(1, 4)).toMatchObject([{ kind: 'read', value: bytesOf('v2') }]);
  });

  it('a stale read is answered at once by a follower, from what it has applied', () => {
    const net = cluster();
    write(net, 1, 1, 100, 'k', 'v');
    net.tickAll(1);
    const follower = net.host(2);
    follower.handleRequest(readReq(30, 'k', 'stale'));
    expect(net.repliesTo(2, 30)).toEqual([{ kind: 'read', requestId: 30, index: follower.appliedIndex, value: bytesOf('v') }]);
  });

  it('a linearizable or lease read sent to a follower is refused NOT_LEADER with a leaderHint', () => {
    const net = cluster();
    net.request(3, readReq(31, 'k'), readReq(32, 'k', 'lease'));
    for (const requestId of [31, 32]) {
      expect(net.repliesTo(3, requestId)).toEqual([{ kind: 'error', requestId, code: ErrorCode.NOT_LEADER, leaderHint: 1, proposed: false }]);
    }
  });

  it('a read whose ReadState arrives before the state machine reaches its index waits for apply', () => {
    // A lease read is released at once at the commit index; with one entry applied per Ready
    // the state machine is still behind it in the Ready that carries the ReadState.
    const net = cluster({ raft: { checkQuorum: true, applyBytesMax: 1 } });
    write(net, 1, 1, 100, 'k', 'a');
    net.tickAll(2);
    const leader = net.host(1);
    // Two turns of the loop, so two batch entries.
    net.request(1, writeReq(2, 101, 1, put('k', 'b')));
    net.request(1, writeReq(3, 102, 1, put('k', 'c')));
    // The followers append and acknowledge; the leader takes the acknowledgements (its commit
    // index moves past both writes) but has not processed a Ready since.
    net.deliverWhere((m) => m.to !== 1);
    net.deliverWhere((m) => m.to === 1, false);
    const committed = leader.raft.log.committed;
    expect(committed).toBeGreaterThanOrEqual(leader.appliedIndex + 2);
    const readIndex = vi.spyOn(leader.raft, 'readIndex');
    leader.handleRequest(readReq(4, 'k', 'lease'));
    leader.flush();
    leader.processReady();
    expect(readIndex).toHaveBeenCalledWith(expect.any(Number), 'lease');
    // Served from the lease (no heartbeat round), at the commit index, with what it holds there.
    expect(heartbeatsWithContext(net.queue)).toEqual([]);
    expect(net.repliesTo(1, 4)).toEqual([{ kind: 'read', requestId: 4, index: committed, value: bytesOf('c') }]);
  });
});

describe('a leader that loses leadership', () => {
  it('fails its pending writes with NOT_LEADER proposed=true and its pending reads with proposed=false', () => {
    const net = cluster();
    write(net, 1, 1, 100, 'k', 'old');
    net.isolated.add(1);
    net.request(1, writeReq(40, 101, 1, put('k', 'lost')));
    net.request(1, readReq(41, 'k'));
    // A read queued but not yet flushed when the role is lost.
    net.host(1).handleRequest(readReq(42, 'k'));
    const newLeader = net.awaitLeader(1);
    expect(newLeader).not.toBe(1);
    expect(net.host(1).raft.role).toBe('leader');
    expect(net.node(1).replies.filter((r) => r.requestId >= 40)).toEqual([]);
    // Healed: the old leader hears the new term and steps down.
    net.isolated.delete(1);
    net.tickAll(3);
    expect(net.host(1).raft.role).toBe('follower');
    expect(net.repliesTo(1, 40)).toEqual([{ kind: 'error', requestId: 40, code: ErrorCode.NOT_LEADER, leaderHint: newLeader, proposed: true }]);
    for (const requestId of [41, 42]) {
      expect(net.repliesTo(1, requestId)).toEqual([{ kind: 'error', requestId, code: ErrorCode.NOT_LEADER, leaderHint: newLeader, proposed: false }]);
    }
    // The uncommitted write was overwritten by the new leader's log; nothing answers it again.
    net.tickAll(5);
    expect(textOf(net.host(1).kv.get(bytesOf('k')))).toBe('old');
    expect(net.node(1).replies.filter((r) => r.requestId >= 40)).toHaveLength(3);
  });
});

describe('watches', () => {
  it('report changes under the prefix only, in index order, after a watch-start at the applied index', () => {
    const net = cluster();
    const start = net.host(2).appliedIndex;
    net.request(2, watchReq(60, 'a/'));
    // Two batch entries: start + 1 and start + 2.
    net.request(1, writeReq(1, 10, 1, put('a/1', 'x')), writeReq(2, 11, 1, put('b/1', 'y')));
    net.request(1, writeReq(3, 12, 1, put('a/2', 'z')), writeReq(4, 13, 1, del('a/1')), writeReq(5, 14, 1, put('a', 'not under a/')));
    net.deliverAll();
    net.tickAll(2);
    const log = watchLog(net.node(2).replies, 60);
    expect(log).toEqual([
      ['start', start],
      ['event', start + 1, 'a/1', 'x'],
      ['event', start + 2, 'a/2', 'z'],
      ['event', start + 2, 'a/1', undefined],
    ]);
    // Within an entry, positions follow the batch order.
    const positions = net.node(2).replies.flatMap((r) => (r.kind === 'watch-event' && r.requestId === 60 ? [r.position] : []));
    expect(positions).toEqual([0, 0, 1]);
  });

  it('resuming with afterIndex replays the history after it, then goes on live', () => {
    const net = cluster();
    const i1 = write(net, 1, 1, 10, 'p/1', 'a');
    const i2 = write(net, 1, 2, 11, 'q/1', 'b');
    const i3 = write(net, 1, 3, 12, 'p/2', 'c');
    net.request(1, watchReq(61, 'p/', i1));
    net.request(1, watchReq(62, '', i1 - 1));
    const i4 = write(net, 1, 4, 13, 'p/3', 'd');
    expect(watchLog(net.node(1).replies, 61)).toEqual([
      ['start', i1],
      ['event', i3, 'p/2', 'c'],
      ['event', i4, 'p/3', 'd'],
    ]);
    expect(watchLog(net.node(1).replies, 62)).toEqual([
      ['start', i1 - 1],
      ['event', i1, 'p/1', 'a'],
      ['event', i2, 'q/1', 'b'],
      ['event', i3, 'p/2', 'c'],
      ['event', i4, 'p/3', 'd'],
    ]);
  });

  it('afterIndex below the history floor ends with watch-end COMPACTED; at the floor it resumes', () => {
    const net = cluster({ node: { watchHistoryChangesMax: 2 } });
    const indexes = ['a', 'b', 'c', 'd'].map((k, i) => write(net, 1, i + 1, 10 + i, k, k));
    // History holds the last two changes (c, d): the floor is b's index.
    const floor = indexes[1]!;
    net.request(1, watchReq(70, '', floor - 1), watchReq(71, '', 0), watchReq(72, '', floor));
    expect(watchLog(net.node(1).replies, 70)).toEqual([['end', ErrorCode.COMPACTED]]);
    expect(watchLog(net.node(1).replies, 71)).toEqual([['end', ErrorCode.COMPACTED]]);
    expect(watchLog(net.node(1).replies, 72)).toEqual([
      ['start', floor],
      ['event', indexes[2], 'c', 'c'],
      ['event', indexes[3], 'd', 'd'],
    ]);
    // A COMPACTED watch is not live: later changes reach only watch 72.
    const i5 = write(net, 1, 5, 20, 'e', 'e');
    expect(watchLog(net.node(1).replies, 70)).toHaveLength(1);
    expect(watchLog(net.node(1).replies, 72).at(-1)).toEqual(['event', i5, 'e', 'e']);
  });

  it('the history floor follows the changes, not the log entries (a write that changes nothing does not count)', () => {
    const net = cluster({ node: { watchHistoryChangesMax: 2 } });
    const i1 = write(net, 1, 1, 10, 'a', 'a');
    // A delete of an absent key changes nothing: it takes a log index but no place in the history.
    net.request(1, writeReq(2, 11, 1, del('never-there')));
    net.deliverAll();
    const i3 = write(net, 1, 3, 12, 'b', 'b');
    const i4 = write(net, 1, 4, 13, 'c', 'c');
    // History: b, c; a was pushed out, so the floor is a's index.
    net.request(1, watchReq(73, '', i1), watchReq(74, '', i1 - 1));
    expect(watchLog(net.node(1).replies, 73)).toEqual([
      ['start', i1],
      ['event', i3, 'b', 'b'],
      ['event', i4, 'c', 'c'],
    ]);
    expect(watchLog(net.node(1).replies, 74)).toEqual([['end', ErrorCode.COMPACTED]]);
  });

  it('unwatch ends the watch with CLOSED and no event follows; unwatch of an unknown watch says nothing', () => {
    const net = cluster();
    net.request(1, watchReq(80, 'k'));
    write(net, 1, 1, 10, 'k1', 'a');
    net.request(1, { kind: 'unwatch', requestId: 80 }, { kind: 'unwatch', requestId: 81 });
    write(net, 1, 2, 11, 'k2', 'b');
    const log = watchLog(net.node(1).replies, 80);
    expect(log.map((row) => row[0])).toEqual(['start', 'event', 'end']);
    expect(log.at(-1)).toEqual(['end', ErrorCode.CLOSED]);
    expect(net.repliesTo(1, 81)).toEqual([]);
  });

  it('endWatches() ends every watch with the given code, and they hear nothing more', () => {
    const net = cluster();
    net.request(2, watchReq(85, 'a'), watchReq(86, 'b'));
    net.host(2).endWatches(ErrorCode.WATCH_LAGGING);
    write(net, 1, 1, 10, 'a', '1');
    net.tickAll(1);
    expect(watchLog(net.node(2).replies, 85).slice(1)).toEqual([['end', ErrorCode.WATCH_LAGGING]]);
    expect(watchLog(net.node(2).replies, 86).slice(1)).toEqual([['end', ErrorCode.WATCH_LAGGING]]);
  });

  it('a watch resumed after an index the node has not applied yet reports only the changes after it', () => {
    // A client moves its watch to a node that lags behind the one it watched before.
    const net = cluster();
    const applied = net.host(3).appliedIndex;
    net.request(3, watchReq(90, '', applied + 2));
    // Three turns of the leader's loop: three entries.
    net.request(1, writeReq(1, 10, 1, put('a', '1')));
    net.request(1, writeReq(2, 11, 1, put('b', '2')));
    net.request(1, writeReq(3, 12, 1, put('c', '3')));
    net.deliverAll();
    net.tickAll(2);
    expect(net.host(3).appliedIndex).toBe(applied + 3);
    expect(watchLog(net.node(3).replies, 90)).toEqual([
      ['start', applied + 2],
      ['event', applied + 3, 'c', '3'],
    ]);
  });
});

describe('snapshots', () => {
  it('are also taken once snapshotEveryBytes of entries are applied, however few the entries', () => {
    // Batch entries are large: three writes of 300-byte values pass 600 bytes long before 1000 entries.
    const net = cluster({ node: { snapshotEveryEntries: 1000, snapshotEveryBytes: 600, snapshotRetainEntries: 0 } });
    const value = 'x'.repeat(300);
    for (let i = 0; i < 6; i++) write(net, 1, i + 1, 10 + i, `k${i}`, value);
    net.tickAll(2);
    for (const id of [1, 2, 3]) {
      const snapIndex = net.node(id).storage.snapshot().meta.index;
      expect(snapIndex).toBeGreaterThan(0);
      expect(net.host(id).appliedIndex - snapIndex).toBeLessThan(3);
    }
    // Without the byte threshold, no snapshot yet.
    const quiet = cluster({ node: { snapshotEveryEntries: 1000, snapshotRetainEntries: 0 } });
    for (let i = 0; i < 6; i++) write(quiet, 1, i + 1, 10 + i, `k${i}`, value);
    expect(quiet.node(1).storage.snapshot().meta.index).toBe(0);
  });

  it('are taken every snapshotEveryEntries entries, compact the log, and the state survives a restart from the same storage', () => {
    const net = cluster({ node: { snapshotEveryEntries: 3, snapshotRetainEntries: 1 } });
    const snapIndexes: number[] = [];
    for (let i = 0; i < 10; i++) {
      write(net, 1, i + 1, 10 + i, `k${i}`, `v${i}`);
      snapIndexes.push(net.node(1).storage.snapshot().meta.index);
    }
    net.tickAll(2);
    // The snapshot index advances, in steps of at least snapshotEveryEntries.
    const distinct = [...new Set(snapIndexes)].filter((i) => i > 0);
    expect(distinct.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < distinct.length; i++) expect(distinct[i]! - distinct[i - 1]!).toBeGreaterThanOrEqual(3);
    for (const id of [1, 2, 3]) {
      const storage = net.node(id).storage;
      const snapIndex = storage.snapshot().meta.index;
      expect(net.host(id).appliedIndex - snapIndex).toBeLessThan(3);
      // Compacted, keeping one entry behind the snapshot.
      expect(storage.firstIndex()).toBe(snapIndex);
    }
    // Node 2 restarts from its storage: snapshot plus the log after it.
    const before = net.host(2).appliedIndex;
    net.host(2).close();
    const restarted = net.start(2).host;
    expect(restarted.appliedIndex).toBe(net.node(2).storage.snapshot().meta.index);
    restarted.processReady();
    net.tickAll(2);
    expect(restarted.appliedIndex).toBeGreaterThanOrEqual(before);
    for (let i = 0; i < 10; i++) expect(textOf(restarted.kv.get(bytesOf(`k${i}`)))).toBe(`v${i}`);
    // A watch on the restarted node cannot reach behind its snapshot.
    const snapIndex = net.node(2).storage.snapshot().meta.index;
    net.request(2, watchReq(95, '', snapIndex - 1), watchReq(96, '', snapIndex));
    expect(watchLog(net.node(2).replies, 95)).toEqual([['end', ErrorCode.COMPACTED]]);
    expect(watchLog(net.node(2).replies, 96)[0]).toEqual(['start', snapIndex]);
  });

  it('a node added later catches up from a snapshot; its watches end COMPACTED when it installs one', () => {
    const net = cluster({ node: { snapshotEveryEntries: 3, snapshotRetainEntries: 0 } });
    for (let i = 0; i < 8; i++) write(net, 1, i + 1, 10 + i, `k${i}`, `v${i}`);
    expect(net.node(1).storage.firstIndex()).toBeGreaterThan(2);
    const joiner = net.start(4);
    net.request(4, watchReq(97, ''));
    expect(watchLog(joiner.replies, 97)).toEqual([['start', 0]]);
    net.host(1).proposeConfChange({ changes: [{ op: 'addLearner', nodeId: 4 }] });
    net.deliverAll();
    net.tickAll(5);
    expect(joiner.storage.snapshot().meta.index).toBeGreaterThan(0);
    for (let i = 0; i < 8; i++) expect(textOf(joiner.host.kv.get(bytesOf(`k${i}`)))).toBe(`v${i}`);
    expect(joiner.host.appliedIndex).toBe(net.host(1).appliedIndex);
    // The snapshot jumped over the changes the watch would have reported.
    expect(watchLog(joiner.replies, 97)).toEqual([['start', 0], ['end', ErrorCode.COMPACTED]]);
  });
});

describe('snapshots on a leader with a follower behind (seed 301167)', () => {
  const entriesTo3 = (m: Message): boolean => m.type === MessageType.App && m.to === 3 && m.entries.length > 0;

  /** Ticks every node, then delivers until quiet, losing the messages `lost` selects. */
  function tickLosing(net: HostNetwork, lost: (m: Message) => boolean): void {
    for (const node of net.nodes.values()) node.host.tick();
    for (const node of net.nodes.values()) node.host.processReady();
    for (let rounds = 0; net.queue.length > 0; rounds++) {
      if (rounds > 1000) throw new Error('the network does not settle');
      net.queue = net.queue.filter((m) => !lost(m));
      net.deliverWhere(() => true);
    }
  }

  /** Ten writes through node 1, answered, each followed by a tick, while node 3 loses every entry sent to it. */
  function writeWhileBehind(net: HostNetwork, value: (i: number) => string): void {
    for (let i = 0; i < 10; i++) {
      net.request(1, writeReq(i + 1, 10 + i, 1, put(`k${i}`, value(i))));
      tickLosing(net, entriesTo3);
      expect(net.repliesTo(1, i + 1).map((r) => r.kind)).toEqual(['write']);
    }
  }

  const snapshotsTo3 = (net: HostNetwork): number => net.sent.filter((m) => m.type === MessageType.Snap && m.to === 3).length;

  it('keeps the entries a live follower still needs, which then catches up from the log, not from a snapshot', () => {
    const net = cluster({ node: { snapshotEveryEntries: 3, snapshotRetainEntries: 0 } });
    const match3 = net.host(1).status().matchIndex[3]!;
    writeWhileBehind(net, (i) => `v${i}`);
    const storage = net.node(1).storage;
    expect(storage.snapshot().meta.index).toBeGreaterThan(match3 + 3);
    // Node 3 answered every heartbeat: the leader kept what it lacks.
    expect(storage.firstIndex()).toBeLessThanOrEqual(match3 + 1);
    net.tickAll(5);
    expect(snapshotsTo3(net)).toBe(0);
    expect(net.host(3).appliedIndex).toBe(net.host(1).appliedIndex);
    for (let i = 0; i < 10; i++) expect(textOf(net.host(3).kv.get(bytesOf(`k${i}`)))).toBe(`v${i}`);
  });

  it('keeps nothing for a follower silent for an election timeout, nor past snapshotRetainBytes: that one gets a snapshot', () => {
    const down = cluster({ node: { snapshotEveryEntries: 3, snapshotRetainEntries: 0 } });
    const match3 = down.host(1).status().matchIndex[3]!;
    down.isolated.add(3);
    down.tickAll(12, [1, 2]);
    writeWhileBehind(down, (i) => `v${i}`);
    expect(down.node(1).storage.firstIndex()).toBeGreaterThan(match3 + 1);
    down.isolated.delete(3);
    down.tickAll(5);
    expect(snapshotsTo3(down)).toBeGreaterThan(0);
    expect(down.host(3).appliedIndex).toBe(down.host(1).appliedIndex);
    // Live, but behind by more than 200 KiB of entries of 64 KiB: the bound wins.
    const big = cluster({ node: { snapshotEveryEntries: 3, snapshotRetainEntries: 0, snapshotRetainBytes: 200 << 10 } });
    const bigMatch3 = big.host(1).status().matchIndex[3]!;
    writeWhileBehind(big, (i) => String(i % 10).repeat(64 << 10));
    expect(big.node(1).storage.firstIndex()).toBeGreaterThan(bigMatch3 + 1);
    expect(big.node(1).storage.sizeBytes).toBeLessThanOrEqual((200 << 10) + 3 * ((64 << 10) + 200));
  });
});

describe('watches after an index far ahead', () => {
  it('the leader refuses at once, with INVALID_ARGUMENT, a watch after an index past its last log index', () => {
    const net = cluster();
    write(net, 1, 1, 10, 'a', '1');
    const last = net.host(1).raft.log.lastIndex();
    net.request(1, watchReq(100, '', last + 1), watchReq(101, '', 2 ** 40), watchReq(102, '', last));
    expect(watchLog(net.node(1).replies, 100)).toEqual([['end', ErrorCode.INVALID_ARGUMENT]]);
    expect(watchLog(net.node(1).replies, 101)).toEqual([['end', ErrorCode.INVALID_ARGUMENT]]);
    // At its last index: the watch starts and reports what comes next.
    const next = write(net, 1, 2, 11, 'b', '2');
    expect(watchLog(net.node(1).replies, 102)).toEqual([
      ['start', last],
      ['event', next, 'b', '2'],
    ]);
    expect(net.host(1).status().requestsRefusedInvalid).toBe(2);
  });

  it('a follower waits for an index it may still reach, and refuses one past what the leader\'s log can hold', () => {
    const net = cluster({ node: { snapshotEveryEntries: 100, snapshotRetainEntries: 10 } });
    const last = net.host(3).raft.log.lastIndex();
    net.request(3, watchReq(110, '', last + 110), watchReq(111, '', last + 111));
    expect(watchLog(net.node(3).replies, 110)).toEqual([['start', last + 110]]);
    expect(watchLog(net.node(3).replies, 111)).toEqual([['end', ErrorCode.INVALID_ARGUMENT]]);
  });
});

describe('the number of watches', () => {
  it('is bounded in bytes and in count: past either, a watch is refused with UNAVAILABLE; a watch ended makes room', () => {
    const net = cluster();
    const prefix = 'p'.repeat(4096);
    const fits = Math.floor(WATCH_BYTES_MAX / (4096 + 128));
    expect(fits).toBeLessThan(WATCHES_MAX);
    for (let i = 0; i < fits; i++) net.request(1, watchReq(1000 + i, prefix));
    net.request(1, watchReq(900, prefix));
    expect(watchLog(net.node(1).replies, 1000 + fits - 1)[0]).toEqual(['start', net.host(1).raft.log.lastIndex()]);
    expect(watchLog(net.node(1).replies, 900)).toEqual([['end', ErrorCode.UNAVAILABLE]]);
    net.request(1, { kind: 'unwatch', requestId: 1000 });
    net.request(1, watchReq(901, prefix));
    expect(watchLog(net.node(1).replies, 901)[0]![0]).toBe('start');
    // Short prefixes: the count bound.
    const small = cluster();
    for (let i = 0; i < WATCHES_MAX; i++) small.request(1, watchReq(10_000 + i, 'k'));
    small.request(1, watchReq(902, 'k'));
    expect(watchLog(small.node(1).replies, 902)).toEqual([['end', ErrorCode.UNAVAILABLE]]);
  });
});

describe('limits in bytes', () => {
  const bigValue = (n: number): string => String(n % 10).repeat(64 << 10);

  it('the watch history is bounded in bytes: with large values an older afterIndex is COMPACTED, a recent one resumes', () => {
    // Room for three changes of 64 KiB values (with their keys and overhead), not four.
    const net = cluster({ node: { watchHistoryBytesMax: 3 * ((64 << 10) + 200) } });
    const indexes = Array.from({ length: 8 }, (_, i) => write(net, 1, i + 1, 10 + i, `k${i}`, bigValue(i)));
    // The history holds the last three changes: the floor is the index of the one before them.
    net.request(1, watchReq(120, '', indexes[3]!), watchReq(121, '', indexes[4]!));
    expect(watchLog(net.node(1).replies, 120)).toEqual([['end', ErrorCode.COMPACTED]]);
    expect(watchLog(net.node(1).replies, 121)).toEqual([
      ['start', indexes[4]],
      ['event', indexes[5], 'k5', bigValue(5)],
      ['event', indexes[6], 'k6', bigValue(6)],
      ['event', indexes[7], 'k7', bigValue(7)],
    ]);
  });

  it('entries kept behind a snapshot are bounded in bytes as well as in count', () => {
    // Snapshots every 4 entries; keep up to 1000 entries behind, but at most 200 KiB: three entries of 64 KiB.
    const retainBytes = 200 << 10;
    const net = cluster({ node: { snapshotEveryEntries: 4, snapshotRetainEntries: 1000, snapshotRetainBytes: retainBytes } });
    for (let i = 0; i < 24; i++) write(net, 1, i + 1, 10 + i, `k${i}`, bigValue(i));
    net.tickAll(2);
    for (const id of [1, 2, 3]) {
      const storage = net.node(id).storage;
      const snapIndex = storage.snapshot().meta.index;
      expect(snapIndex).toBeGreaterThan(20);
      // At most three entries behind the snapshot, and fewer than four entries after it.
      expect(snapIndex - storage.firstIndex() + 1).toBeLessThanOrEqual(3);
      expect(snapIndex - storage.firstIndex() + 1).toBeGreaterThanOrEqual(2);
      expect(storage.sizeBytes).toBeLessThanOrEqual(retainBytes + 4 * ((64 << 10) + 200));
    }
    // The count bound still holds when it is the smaller.
    const few = cluster({ node: { snapshotEveryEntries: 4, snapshotRetainEntries: 1, snapshotRetainBytes: 64 << 20 } });
    for (let i = 0; i < 8; i++) write(few, 1, i + 1, 10 + i, `k${i}`, bigValue(i));
    const storage = few.node(1).storage;
    expect(storage.firstIndex()).toBe(storage.snapshot().meta.index);
  });

  it('a write over WRITE_REQUEST_BYTES_MAX is refused before it is proposed; the writes batched with it go through', () => {
    const net = cluster();
    const lastIndex = net.host(1).raft.log.lastIndex();
    // Larger than a proposal may be: proposed in a batch, it would fail the batch's other writes too.
    const huge = new Uint8Array(9 << 20);
    huge[0] = 1;
    net.request(
      1,
      { kind: 'write', requestId: 1, data: huge },
      { kind: 'write', requestId: 2, data: new Uint8Array(WRITE_REQUEST_BYTES_MAX + 1) },
      { kind: 'write', requestId: 3, data: new Uint8Array(0) },
      writeReq(4, 42, 1, put('k', 'v')),
    );
    net.deliverAll();
    for (const requestId of [1, 2, 3]) {
      expect(net.repliesTo(1, requestId)).toEqual([{ kind: 'error', requestId, code: ErrorCode.INVALID_ARGUMENT, leaderHint: NONE, proposed: false }]);
    }
    expect(net.repliesTo(1, 4)).toMatchObject([{ kind: 'write', result: { op: 'put' }, index: lastIndex + 1 }]);
    expect(net.host(1).status().requestsRefusedInvalid).toBe(3);
  });

  it('endWatches() with a range of request ids ends only the watches of that client link', () => {
    const net = cluster();
    const link = 2 ** 32;
    net.request(1, watchReq(5, 'a'), watchReq(link + 5, 'a'), watchReq(2 * link + 5, 'a'));
    net.host(1).endWatches(ErrorCode.WATCH_LAGGING, link, 2 * link);
    const index = write(net, 1, 1, 10, 'a1', 'x');
    expect(watchLog(net.node(1).replies, link + 5)).toEqual([
      ['start', index - 1],
      ['end', ErrorCode.WATCH_LAGGING],
    ]);
    for (const requestId of [5, 2 * link + 5]) expect(watchLog(net.node(1).replies, requestId).at(-1)).toEqual(['event', index, 'a1', 'x']);
  });
});

describe('status and processReady', () => {
  it('status() reports role, leader, indexes and members, and match indexes on the leader only', () => {
    const net = cluster();
    const index = write(net, 1, 1, 10, 'k', 'v');
    net.tickAll(1);
    const leader = net.host(1).status();
    expect(leader).toMatchObject({ id: 1, role: 'leader', leaderId: 1, commitIndex: index, appliedIndex: index, lastIndex: index, learners: [] });
    expect([...leader.voters].sort()).toEqual([1, 2, 3]);
    expect(leader.matchIndex).toEqual({ 1: index, 2: index, 3: index });
    const follower = net.host(3).status();
    expect(follower).toMatchObject({ id: 3, role: 'follower', leaderId: 1, term: leader.term, appliedIndex: index, matchIndex: {} });
  });

  it('processReady() says whether it had anything to do', () => {
    const net = cluster();
    net.deliverAll();
    expect(net.host(2).processReady()).toBe(false);
    net.host(1).handleRequest(writeReq(1, 10, 1, put('k', 'v')));
    // Writes wait in the batch until flush().
    expect(net.host(1).processReady()).toBe(false);
    net.host(1).flush();
    expect(net.host(1).processReady()).toBe(true);
    expect(net.host(1).processReady()).toBe(false);
  });
});

describe('the Ready order', () => {
  /** Records persist and send calls of node `id`, with the ready() boundaries. */
  function recordOrder(net: HostNetwork, id: number): string[] {
    const calls: string[] = [];
    const node = net.node(id);
    const persist = node.storage.persist.bind(node.storage);
    vi.spyOn(node.storage, 'persist').mockImplementation((batch) => {
      calls.push('persist');
      persist(batch);
    });
    const ready = node.host.raft.ready.bind(node.host.raft);
    vi.spyOn(node.host.raft, 'ready').mockImplementation(() => {
      const rd = ready();
      calls.push(rd.messagesBeforePersist ? 'ready early' : 'ready');
      return rd;
    });
    net.sendHooks.push((m) => {
      if (m.from === id) calls.push(`send ${m.type}`);
    });
    net.flushHooks.push((from) => {
      if (from === id) calls.push('flush');
    });
    return calls;
  }

  it('a leader\'s early sends are made visible before its own write starts, and any Ready\'s before it applies', () => {
    const net = new HostNetwork([1, 2, 3]);
    net.elect(1);
    const calls = recordOrder(net, 1);
    write(net, 1, 1, 10, 'k', 'v');
    const early = calls.indexOf('ready early');
    expect(early).toBeGreaterThanOrEqual(0);
    // ready early, send App (one per follower), flush, then persist.
    const persistAt = calls.indexOf('persist', early);
    expect(calls.slice(early, persistAt).at(-1)).toBe('flush');
    const followerCalls = recordOrder(net, 2);
    write(net, 1, 2, 11, 'k', 'w');
    const ack = followerCalls.indexOf(`send ${MessageType.AppResp}`);
    expect(ack).toBeGreaterThan(0);
    expect(followerCalls[ack + 1]).toBe('flush');
  });

  it('a vote and an append acknowledgement leave only after the state they depend on is persisted', () => {
    const net = new HostNetwork([1, 2, 3]);
    // Every message checks, as it leaves, the sender's durable state.
    net.sendHooks.push((m) => {
      const storage = net.node(m.from).storage;
      const hs = storage.getHardState();
      if (m.type === MessageType.VoteResp && !m.reject) expect(hs).toMatchObject({ term: m.term, vote: m.to });
      if (m.type === MessageType.Vote) expect(hs).toMatchObject({ term: m.term, vote: m.from });
      if (m.type === MessageType.AppResp && !m.reject) expect(storage.lastIndex()).toBeGreaterThanOrEqual(m.index);
    });
    net.elect(1);
    write(net, 1, 1, 10, 'k', 'v');
    const types = new Set(net.sent.map((m) => m.type));
    for (const t of [MessageType.Vote, MessageType.VoteResp, MessageType.AppResp]) expect(types.has(t)).toBe(true);
  });

  it('persist comes before the sends of a Ready unless it allows early sending (a leader in a settled term)', () => {
    const net = new HostNetwork([1, 2, 3]);
    const calls = recordOrder(net, 2);
    // Node 2 votes for node 1: the vote must be persisted before the response leaves.
    net.elect(1);
    const voteAt = calls.indexOf(`send ${MessageType.VoteResp}`);
    expect(voteAt).toBeGreaterThan(0);
    expect(calls.slice(calls.lastIndexOf('ready', voteAt), voteAt)).toContain('persist');

    // A follower's Ready never sends early; a leader's Ready with new entries may.
    const leaderCalls = recordOrder(net, 1);
    write(net, 1, 1, 10, 'k', 'v');
    const early = leaderCalls.indexOf('ready early');
    expect(early).toBeGreaterThanOrEqual(0);
    expect(leaderCalls[early + 1]).toBe(`send ${MessageType.App}`);
    expect(calls.filter((c) => c === 'ready early')).toEqual([]);

    // With sendEarly off, the leader persists before it sends as well.
    leaderCalls.length = 0;
    net.host(1).handleRequest(writeReq(2, 11, 1, put('k', 'w')));
    net.host(1).flush();
    net.host(1).processReady(false);
    expect(leaderCalls.slice(0, 3)).toEqual(['ready early', 'persist', `send ${MessageType.App}`]);
  });
});
