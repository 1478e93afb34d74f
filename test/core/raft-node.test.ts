// Proves RaftNode follows the Raft paper (and the thesis' extensions) by scenario tests on a
// deterministic in-memory network (test/core/helpers/network.ts), each naming the section it
// checks: elections and terms, log matching and repair, the commit rule, pre-vote,
// check-quorum, ReadIndex and lease reads, leadership transfer, membership changes, snapshots,
// restarts from storage, and the typed refusals of the public API. A seeded run of random
// faults and operations then checks Election Safety and State Machine Safety (in the
// network helper) and that no read is answered below an index committed before it began.
import { ErrorCode, RingraftError } from '../../src/base/index.ts';
import { describe, expect, it } from 'vitest';
import { EntryType, MessageType, NotLeaderError, RaftNode, Rand, makeMessage } from '../../src/core/index.ts';
import type { Message, NodeId } from '../../src/core/index.ts';
import { MemoryStorage } from '../../src/storage/index.ts';
import { expectCode } from './helpers/errors.ts';
import { Network } from './helpers/network.ts';

const E = 10; // electionTimeoutTicks used by every network here.

const isType =
  (type: MessageType, from?: NodeId, to?: NodeId) =>
  (m: Message): boolean =>
    m.type === type && (from === undefined || m.from === from) && (to === undefined || m.to === to);

const bytes = (n: number): Uint8Array => new Uint8Array(n);

describe('elections (§5.2)', () => {
  it('elects exactly one leader, known to all, and never two in one term', () => {
    for (let seedBase = 0; seedBase < 12; seedBase++) {
      const net = new Network([1, 2, 3, 4, 5], { checkQuorum: true, seedBase });
      const leadersByTerm = new Map<number, Set<NodeId>>();
      const record = (): void => {
        for (const id of net.leaders()) {
          const term = net.raft(id).term;
          const set = leadersByTerm.get(term) ?? new Set<NodeId>();
          set.add(id);
          leadersByTerm.set(term, set);
        }
      };
      for (let round = 0; round < 6 * E; round++) {
        net.tickAll();
        record();
      }
      for (const [term, ids] of leadersByTerm) expect(ids.size, `term ${term}, seedBase ${seedBase}`).toBe(1);
      const leaders = net.leaders();
      expect(leaders).toHaveLength(1);
      const leader = net.raft(leaders[0]!);
      for (const n of net.nodes.values()) {
        expect(n.raft.term).toBe(leader.term);
        expect(n.raft.leaderId).toBe(leader.id);
      }
    }
  });

  it('a single-voter cluster elects itself and commits alone', () => {
    const net = new Network([1]);
    net.elect(1);
    const index = net.propose(1, 'solo');
    net.deliverAll();
    expect(net.raft(1).log.committed).toBe(index);
    expect(net.appliedTexts(1)).toEqual(['solo']);
  });

  it('a candidate with a stale log is refused (§5.4.1), with pre-vote and without', () => {
    for (const preVote of [true, false]) {
      const net = new Network([1, 2, 3], { preVote });
      net.elect(1);
      net.cut(1, 3);
      for (const t of ['a', 'b', 'c']) net.propose(1, t);
      net.deliverAll();
      expect(net.raft(3).log.lastIndex()).toBeLessThan(net.raft(2).log.lastIndex());
      net.isolate(1);

      const termBefore = net.raft(3).term;
      expect(net.campaign(3, 4 * E)).toBe(false);
      const respType = preVote ? MessageType.PreVoteResp : MessageType.VoteResp;
      const answers = net.delivered.filter(isType(respType, 2, 3));
      expect(answers.length).toBeGreaterThan(0);
      expect(answers.every((m) => m.reject)).toBe(true);
      // A pre-vote changes no term; a real campaign does, but still wins nothing.
      if (preVote) expect(net.raft(3).term).toBe(termBefore);
      else expect(net.raft(3).term).toBeGreaterThan(termBefore);

      // The up-to-date node wins with the stale node's vote and brings it up to date.
      net.elect(2);
      net.tick(2);
      net.deliverAll();
      expect(net.appliedTexts(3)).toEqual(['a', 'b', 'c']);
    }
  });
});

describe('terms (§5.1)', () => {
  it('a leader that sees a higher term steps down, and its lone proposals are lost', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const oldTerm = net.raft(1).term;
    net.isolate(1);
    net.propose(1, 'lost'); // Cannot commit: no majority hears it.
    net.elect(2);
    expect(net.raft(2).term).toBeGreaterThan(oldTerm);
    expect(net.raft(1).role).toBe('leader'); // It has not heard yet.

    net.recover();
    net.propose(2, 'kept');
    net.tick(2);
    net.deliverAll();
    net.tick(2); // One more heartbeat carries the commit index to node 1.
    net.deliverAll();
    expect(net.raft(1).role).toBe('follower');
    expect(net.raft(1).term).toBe(net.raft(2).term);
    expect(net.raft(1).leaderId).toBe(2);
    for (const id of [1, 2, 3]) expect(net.appliedTexts(id)).toEqual(['kept']);
  });

  it('any message of a higher term turns a leader into a follower of that term', () => {
    const net = new Network([1, 2, 3]);
    const leader = net.elect(1);
    const term = leader.term;
    leader.step(makeMessage({ type: MessageType.Heartbeat, from: 3, to: 1, term: term + 5 }));
    expect(leader.role).toBe('follower');
    expect(leader.term).toBe(term + 5);
    expect(leader.leaderId).toBe(3);
    expect(leader.vote).toBe(0);
  });

  it('a message of a lower term is answered with the current term and changes nothing', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const follower = net.raft(2);
    const term = follower.term;
    follower.step(makeMessage({ type: MessageType.App, from: 3, to: 2, term: term - 1, index: 1, logTerm: 1 }));
    expect(follower.term).toBe(term);
    expect(follower.leaderId).toBe(1);
    const rd = follower.ready();
    expect(rd.messages.some((m) => m.to === 3 && m.term === term)).toBe(true);
    follower.advance(rd);
  });
});

describe('log replication (§5.3)', () => {
  it('replicates proposals to every node, commits and applies them in order', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const indexes = ['x', 'y', 'z'].map((t) => net.propose(1, t));
    expect(indexes).toEqual([indexes[0], indexes[0]! + 1, indexes[0]! + 2]);
    net.deliverAll();
    for (const id of [1, 2, 3]) {
      expect(net.appliedTexts(id)).toEqual(['x', 'y', 'z']);
      expect(net.raft(id).log.committed).toBe(indexes[2]);
      expect(net.node(id).storage.allEntries()).toEqual(net.node(1).storage.allEntries());
    }
  });

  it('a follower that missed entries catches up after one rejection', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.isolate(3);
    for (let i = 0; i < 50; i++) net.propose(1, `e${i}`);
    net.deliverAll();
    net.recover();
    const rejectionsBefore = net.countDelivered((m) => m.type === MessageType.AppResp && m.reject);
    net.tickAll(3);
    expect(net.appliedTexts(3)).toHaveLength(50);
    const rejections = net.countDelivered((m) => m.type === MessageType.AppResp && m.reject) - rejectionsBefore;
    expect(rejections).toBeLessThanOrEqual(1);
  });

  it('repairs a follower with a long conflicting suffix in few round trips', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.propose(1, 'base');
    net.deliverAll();
    const divergence = net.raft(1).log.lastIndex() + 1;
    // The old leader, cut off, appends 40 entries nobody else will ever have.
    net.isolate(1);
    for (let i = 0; i < 40; i++) net.propose(1, `stale${i}`);
    net.deliverAll();
    // Two later terms write 30 entries over the same indexes, so that the newest leader
    // first probes node 1 far beyond the point where the logs diverge.
    net.elect(2);
    for (let i = 0; i < 30; i++) net.propose(2, `n${i}`);
    net.deliverAll();
    // A live leader's followers disregard campaigns (§6), so the next term comes by transfer.
    net.raft(2).transferLeadership(3);
    net.deliverAll();
    const leader = net.raft(3);
    expect(leader.role).toBe('leader');
    net.propose(3, 'last');
    net.deliverAll();
    expect(leader.progress.get(1)!.next - 1 - divergence).toBeGreaterThanOrEqual(30);
    expect(net.raft(1).log.lastIndex()).toBeGreaterThan(leader.log.lastIndex());

    net.recover();
    const isRejectFrom1 = (m: Message): boolean => isType(MessageType.AppResp, 1, 3)(m) && m.reject;
    const rejectionsBefore = net.countDelivered(isRejectFrom1);
    for (let i = 0; i < 3; i++) {
      net.tick(3);
      net.deliverAll();
    }
    const rejections = net.countDelivered(isRejectFrom1) - rejectionsBefore;
    // Naive backtracking would take one rejection per index between the probe and the divergence.
    expect(rejections).toBeGreaterThan(0);
    expect(rejections).toBeLessThanOrEqual(2);
    expect(net.node(1).storage.allEntries()).toEqual(net.node(3).storage.allEntries());
    expect(net.appliedTexts(1)).toEqual(['base', ...Array.from({ length: 30 }, (_, i) => `n${i}`), 'last']);
  });
});

describe('the commit rule (§5.4.2, Figure 8)', () => {
  it('an old-term entry on a majority commits only once an entry of the current term does', () => {
    // One entry per AppendEntries, so the old entry and the new leader's entry travel apart.
    const net = new Network([1, 2, 3], { appendBytesMax: 1 });
    net.elect(1);
    const oldTerm = net.raft(1).term;
    net.isolate(1);
    const x = net.propose(1, 'x'); // Only node 1 has it.

    // Node 2 leads a term whose entries never leave it.
    net.drop((m) => m.from === 2 && m.type === MessageType.App);
    net.elect(2);
    expect(net.raft(3).log.lastIndex()).toBe(x - 1);

    // Node 1 comes back and wins a later term with node 3; its new empty entry (x + 1) is lost.
    net.recover();
    net.isolate(2);
    // Lose the message that carries the new entry to node 3, once node 3 holds x (before
    // that, node 3 must see it to refuse it and make the leader back up to x).
    net.drop((m) => m.type === MessageType.App && m.from === 1 && m.entries.some((e) => e.index === x + 1) && net.raft(3).log.lastIndex() >= x);
    net.elect(1);
    const leader = net.raft(1);
    expect(leader.term).toBeGreaterThan(oldTerm + 1);
    net.tick(1);
    net.deliverAll();

    // x (of the old term) is now on a majority, 1 and 3 ...
    expect(leader.log.term(x)).toBe(oldTerm);
    expect(net.raft(3).log.term(x)).toBe(oldTerm);
    expect(leader.progress.get(3)!.match).toBe(x);
    // ... and yet not committed: counting replicas only commits entries of the current term.
    expect(leader.log.committed).toBeLessThan(x);

    net.recover();
    for (let i = 0; i < 5 && leader.log.committed < x + 1; i++) {
      net.tick(1);
      net.deliverAll();
    }
    expect(leader.log.committed).toBeGreaterThanOrEqual(x + 1);
    net.tick(1, 2); // Heartbeats carry the commit index to the followers.
    net.deliverAll();
    for (const id of [1, 2, 3]) expect(net.appliedTexts(id)).toEqual(['x']);
  });
});

describe('pre-vote (thesis §9.6)', () => {
  it('an isolated node with a stale log rejoins without raising its term or unseating the leader', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const term = net.raft(1).term;
    net.isolate(3);
    net.propose(1, 'while-away');
    net.deliverAll();
    net.tick(3, 5 * E); // Several pre-vote rounds that nobody answers.
    expect(net.raft(3).term).toBe(term);

    net.recover();
    net.tickAll(3 * E);
    expect(net.leader()).toBe(1);
    for (const id of [1, 2, 3]) expect(net.raft(id).term).toBe(term);
    expect(net.appliedTexts(3)).toEqual(['while-away']);
  });

  it('with check-quorum, even an up-to-date node cannot unseat a leader its peers hear from', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true });
    const leaderId = net.tickUntilLeader();
    net.tickAll(2);
    const term = net.raft(leaderId).term;
    const away = [1, 2, 3].find((id) => id !== leaderId)!;
    net.isolate(away);
    net.tickAll(5 * E);
    expect(net.raft(away).term).toBe(term);
    expect(net.raft(away).log.lastIndex()).toBe(net.raft(leaderId).log.lastIndex());

    // It rejoins and its next pre-vote reaches the others before any heartbeat reaches it.
    net.recover();
    const sentBefore = net.sent.length;
    const preVoted = (): boolean => net.sent.slice(sentBefore).some(isType(MessageType.PreVote, away));
    for (let i = 0; i < 3 * E && !preVoted(); i++) {
      net.tick(away);
      net.deliverAll();
    }
    expect(preVoted()).toBe(true);
    // Whoever heard from the leader within an election timeout ignores it (thesis §4.2.3).
    expect(net.delivered.slice(sentBefore).some((m) => m.type === MessageType.PreVoteResp && !m.reject)).toBe(false);
    net.tickAll(5 * E);
    expect(net.leader()).toBe(leaderId);
    for (const id of [1, 2, 3]) expect(net.raft(id).term).toBe(term);
  });

  it('without pre-vote the same rejoin raises the term and unseats the leader', () => {
    const net = new Network([1, 2, 3], { preVote: false });
    net.elect(1);
    const term = net.raft(1).term;
    net.isolate(3);
    net.tick(3, 5 * E);
    expect(net.raft(3).term).toBeGreaterThan(term);
    net.recover();
    net.tick(1);
    net.deliverAll();
    expect(net.raft(1).role).not.toBe('leader');
    expect(net.raft(1).term).toBeGreaterThan(term);
  });
});

describe('check-quorum (thesis §6.2)', () => {
  it('an isolated leader steps down within two election timeouts', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true });
    const leaderId = net.tickUntilLeader();
    net.tickAll(3);
    net.isolate(leaderId);
    let steppedDownAfter = -1;
    for (let t = 1; t <= 2 * E; t++) {
      net.tick(leaderId);
      net.deliverAll();
      if (net.raft(leaderId).role !== 'leader') {
        steppedDownAfter = t;
        break;
      }
    }
    expect(steppedDownAfter).toBeGreaterThan(0);
    expect(net.raft(leaderId).role).toBe('follower');
  });

  it('a leader that hears from a quorum stays', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true });
    const leaderId = net.tickUntilLeader();
    const term = net.raft(leaderId).term;
    net.isolate([1, 2, 3].find((id) => id !== leaderId)!); // One follower is enough.
    net.tickAll(5 * E);
    expect(net.raft(leaderId).role).toBe('leader');
    expect(net.raft(leaderId).term).toBe(term);
  });
});

describe('ReadIndex (thesis §6.4)', () => {
  it('releases a read only after a quorum acknowledged a heartbeat round sent after it', () => {
    const net = new Network([1, 2, 3]);
    const leader = net.elect(1);
    net.propose(1, 'v');
    net.deliverAll();
    const commit = leader.log.committed;
    const sentBefore = net.sent.length;

    leader.readIndex(42);
    net.process(1);
    const round = net.sent.slice(sentBefore).filter((m) => m.type === MessageType.Heartbeat && m.context !== 0);
    expect(round.map((m) => m.to).sort()).toEqual([2, 3]);
    expect(net.node(1).readStates).toEqual([]);

    // The heartbeats arrive; their answers do not yet.
    net.deliverWhere(isType(MessageType.Heartbeat, 1));
    expect(net.node(1).readStates).toEqual([]);
    // One answer makes a quorum of three with the leader itself.
    net.deliverWhere(isType(MessageType.HeartbeatResp, 2, 1));
    expect(net.node(1).readStates).toEqual([{ requestId: 42, index: commit }]);
    net.deliverAll();
    expect(net.node(1).readStates).toHaveLength(1);
  });

  it('serves a follower read: the follower asks its leader, which confirms its leadership and answers with its commit index', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.propose(1, 'v');
    net.deliverAll();
    const follower = net.raft(2);
    const commit = net.raft(1).log.committed;
    const sentBefore = net.sent.length;
    follower.readIndex(7);
    net.process(2);
    // Sent under an id of the follower's own (numbered from its seed: see followerReads), not 7.
    expect(net.sent.slice(sentBefore).filter((m) => m.type === MessageType.ReadIndex).map((m) => [m.from, m.to])).toEqual([[2, 1]]);
    // The leader takes it and starts a heartbeat round; until a quorum answers, no reply.
    net.deliverWhere(isType(MessageType.ReadIndex, 2, 1));
    expect(net.sent.slice(sentBefore).some((m) => m.type === MessageType.ReadIndexResp)).toBe(false);
    net.deliverAll();
    expect(net.node(2).readStates).toEqual([{ requestId: 7, index: commit }]);
    // The leader's own reads are not confused with it.
    expect(net.node(1).readStates).toEqual([]);
  });

  it('confirms the reads taken before its next Ready with one heartbeat round: its own and its followers\' alike', () => {
    const net = new Network([1, 2, 3]);
    const leader = net.elect(1);
    net.propose(1, 'v');
    net.deliverAll();
    net.raft(2).readIndex(1);
    net.raft(3).readIndex(2);
    net.process(2);
    net.process(3);
    const sentBefore = net.sent.length;
    // Both ReadIndex messages reach the leader before it takes a Ready (as a host drains its
    // peers first), and so does a read of its own.
    const asks = net.sent.filter((m) => m.type === MessageType.ReadIndex);
    net.drop(isType(MessageType.ReadIndex));
    net.deliverAll();
    net.recover();
    for (const m of asks) leader.step(m);
    leader.readIndex(3);
    net.process(1);
    const rounds = net.sent.slice(sentBefore).filter((m) => m.type === MessageType.Heartbeat && m.context !== 0);
    expect(rounds.map((m) => m.to).sort()).toEqual([2, 3]);
    expect(new Set(rounds.map((m) => m.context)).size).toBe(1);
    net.deliverAll();
    const commit = leader.log.committed;
    expect(net.node(1).readStates).toEqual([{ requestId: 3, index: commit }]);
    expect(net.node(2).readStates).toEqual([{ requestId: 1, index: commit }]);
    expect(net.node(3).readStates).toEqual([{ requestId: 2, index: commit }]);
  });

  it('never answers a follower read when the leader cannot confirm its leadership, and refuses one with no leader known', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.drop(isType(MessageType.HeartbeatResp));
    net.raft(2).readIndex(1);
    net.process(2);
    net.tick(1, 3);
    net.deliverAll();
    expect(net.node(2).readStates).toEqual([]);
    expect(net.sent.some((m) => m.type === MessageType.ReadIndexResp)).toBe(false);
    const alone = new Network([1, 2, 3]);
    expectCode(() => alone.raft(2).readIndex(1), 'NOT_LEADER');
  });

  it('is never released when the answers are lost, nor by an isolated leader', () => {
    const net = new Network([1, 2, 3]);
    const leader = net.elect(1);
    net.drop(isType(MessageType.HeartbeatResp));
    leader.readIndex(1);
    net.tick(1, 3);
    net.deliverAll();
    expect(net.node(1).readStates).toEqual([]);

    net.recover();
    net.isolate(1);
    leader.readIndex(2);
    net.tick(1, 2 * E);
    net.deliverAll();
    expect(net.node(1).readStates).toEqual([]);
    expect(leader.role).toBe('leader'); // checkQuorum is off: it still believes it leads.
  });

  it('a new leader delays reads until it has committed an entry of its own term', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.propose(1, 'old');
    net.deliverAll();
    net.drop(isType(MessageType.App, 2)); // Node 2 will win but cannot replicate.
    const leader = net.elect(2);
    expect(leader.log.term(leader.log.committed)).toBeLessThan(leader.term);
    const sentBefore = net.sent.length;
    leader.readIndex(9);
    net.tick(2, 3);
    net.deliverAll();
    expect(net.node(2).readStates).toEqual([]);
    // Not even a read round was started: the commit index is not known to be current.
    expect(net.sent.slice(sentBefore).some((m) => m.type === MessageType.Heartbeat && m.context !== 0)).toBe(false);

    net.recover();
    for (let i = 0; i < 5 && net.node(2).readStates.length === 0; i++) {
      net.tick(2);
      net.deliverAll();
    }
    expect(net.node(2).readStates).toHaveLength(1);
    const rs = net.node(2).readStates[0]!;
    expect(rs.requestId).toBe(9);
    expect(leader.log.term(rs.index)).toBe(leader.term);
  });

  it('serves lease reads at once while the lease holds, then falls back to a heartbeat round', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true });
    const leaderId = net.tickUntilLeader();
    net.tickAll(2);
    const leader = net.raft(leaderId);
    const node = net.node(leaderId);

    let sentBefore = net.sent.length;
    leader.readIndex(100, 'lease');
    net.process(leaderId);
    expect(node.readStates.map((r) => r.requestId)).toEqual([100]);
    expect(net.sent.slice(sentBefore).some((m) => m.context !== 0)).toBe(false);

    // The leader stops hearing from its followers.
    net.isolate(leaderId);
    const immediate: boolean[] = [];
    let fellBack = false;
    for (let t = 1; t <= E && leader.role === 'leader'; t++) {
      net.tick(leaderId);
      net.deliverAll();
      const id = 100 + t;
      sentBefore = net.sent.length;
      leader.readIndex(id, 'lease');
      net.process(leaderId);
      const answered = node.readStates.some((r) => r.requestId === id);
      immediate.push(answered);
      if (!answered) {
        // The fallback: a read-index heartbeat round, which nobody can answer.
        expect(net.sent.slice(sentBefore).filter((m) => m.type === MessageType.Heartbeat && m.context !== 0)).toHaveLength(2);
        fellBack = true;
        break;
      }
    }
    expect(immediate[0]).toBe(true);
    expect(fellBack).toBe(true);
    expect(leader.role).toBe('leader');
    // The lease is shorter than an election timeout: it lapses before anyone else may lead.
    expect(immediate.length).toBeLessThan(E);
  });

  it('without check-quorum a lease read is always a heartbeat round', () => {
    const net = new Network([1, 2, 3]);
    const leader = net.elect(1);
    net.tickAll(2);
    leader.readIndex(5, 'lease');
    net.process(1);
    expect(net.node(1).readStates).toEqual([]);
    net.deliverAll();
    expect(net.node(1).readStates.map((r) => r.requestId)).toEqual([5]);
  });
});

describe('leadership transfer (thesis §3.10)', () => {
  it('catches the target up, then the target campaigns and wins; proposals wait meanwhile', () => {
    const net = new Network([1, 2, 3]);
    const leader = net.elect(1);
    const term = leader.term;
    net.cut(1, 3);
    for (const t of ['a', 'b', 'c']) net.propose(1, t);
    net.deliverAll();
    net.recover();
    expect(net.raft(3).log.lastIndex()).toBeLessThan(leader.log.lastIndex());

    leader.transferLeadership(3);
    expectCode(() => net.propose(1, 'refused'), ErrorCode.TRANSFER_IN_PROGRESS);
    expectCode(() => leader.transferLeadership(2), ErrorCode.TRANSFER_IN_PROGRESS);
    leader.transferLeadership(3); // The same target again is fine.

    net.deliverAll();
    for (let i = 0; i < 3 && net.raft(3).role !== 'leader'; i++) {
      net.tick(1);
      net.deliverAll();
    }
    expect(net.raft(3).role).toBe('leader');
    expect(net.raft(3).term).toBe(term + 1);
    expect(leader.role).toBe('follower');
    expect(net.countDelivered(isType(MessageType.TimeoutNow, 1, 3))).toBe(1);
    // The TimeoutNow left only once node 3 had everything.
    const timeoutAt = net.delivered.findIndex(isType(MessageType.TimeoutNow));
    const lastAck = net.delivered.slice(0, timeoutAt).filter((m) => isType(MessageType.AppResp, 3, 1)(m) && !m.reject).pop();
    expect(lastAck?.index).toBe(net.raft(1).log.lastIndex() - 1); // Then the new leader's empty entry.

    net.propose(3, 'd');
    net.deliverAll();
    for (const id of [1, 2, 3]) expect(net.appliedTexts(id)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('with check-quorum, the target wins though its peers still hear from the old leader', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true });
    const leaderId = net.tickUntilLeader();
    net.tickAll(3);
    const leader = net.raft(leaderId);
    const term = leader.term;
    const target = [1, 2, 3].find((id) => id !== leaderId)!;
    leader.transferLeadership(target);
    net.deliverAll();
    expect(net.raft(target).role).toBe('leader');
    expect(net.raft(target).term).toBe(term + 1);
    const votes = net.delivered.filter(isType(MessageType.Vote, target));
    expect(votes.length).toBeGreaterThan(0);
    expect(votes.every((m) => m.context === 1)).toBe(true);
  });

  it('once a TimeoutNow has left, the old leader serves no lease reads for the rest of its term', () => {
    const net = new Network([1, 2, 3], { checkQuorum: true });
    const leaderId = net.tickUntilLeader();
    net.tickAll(3);
    const leader = net.raft(leaderId);
    const node = net.node(leaderId);
    leader.readIndex(1, 'lease');
    net.process(leaderId);
    expect(node.readStates.map((r) => r.requestId)).toEqual([1]);

    const target = [1, 2, 3].find((id) => id !== leaderId)!;
    net.drop(isType(MessageType.TimeoutNow)); // The target never campaigns...
    leader.transferLeadership(target);
    net.deliverAll();
    expect(net.sent.some(isType(MessageType.TimeoutNow, leaderId, target))).toBe(true);
    net.tickAll(E + 1); // ... and the transfer is abandoned.
    expect(leader.role).toBe('leader');
    expect(leader.leadTransferee).toBe(0);
    // The followers still ack every heartbeat, yet the lease may no longer be trusted.
    leader.readIndex(2, 'lease');
    net.process(leaderId);
    expect(node.readStates.map((r) => r.requestId)).toEqual([1]);
    net.deliverAll();
    expect(node.readStates.map((r) => r.requestId)).toEqual([1, 2]);
  });

  it('is abandoned after an election timeout if the target does not answer', () => {
    const net = new Network([1, 2, 3]);
    const leader = net.elect(1);
    net.isolate(3);
    leader.transferLeadership(3);
    expectCode(() => net.propose(1, 'no'), ErrorCode.TRANSFER_IN_PROGRESS);
    net.tick(1, E);
    net.deliverAll();
    expect(leader.leadTransferee).toBe(0);
    expect(leader.role).toBe('leader');
    net.propose(1, 'yes');
  });

  it('refuses a target that is not a voter; transferring to itself does nothing', () => {
    const net = new Network([1, 2, 3], { learners: [4] });
    const leader = net.elect(1);
    expectCode(() => leader.transferLeadership(4), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => leader.transferLeadership(9), ErrorCode.INVALID_ARGUMENT);
    leader.transferLeadership(1);
    expect(leader.leadTransferee).toBe(0);
  });
});

describe('membership (§6, joint consensus and learners)', () => {
  it('a learner receives the log but never votes, campaigns or counts toward commit', () => {
    const net = new Network([1, 2, 3]);
    const leader = net.elect(1);
    net.propose(1, 'a');
    net.deliverAll();
    net.addNode(4); // Empty storage, no configuration: it learns everything from the leader.
    leader.proposeConfChange({ changes: [{ op: 'addLearner', nodeId: 4 }] });
    net.deliverAll();
    net.tick(1);
    net.deliverAll();
    expect(leader.conf).toEqual({ voters: [1, 2, 3], votersOutgoing: [], learners: [4], learnersNext: [], autoLeave: false });
    // A learner-only change is simple: no joint step, no entry to leave one.
    expect(net.storedConfChanges(1).filter((cc) => cc.changes.length === 0)).toEqual([]);
    expect(net.appliedTexts(4)).toEqual(['a']);
    expect(net.raft(4).conf).toEqual(leader.conf);

    // Leader plus learner are not a quorum of {1, 2, 3}.
    net.isolate(2);
    net.isolate(3);
    const b = net.propose(1, 'b');
    net.deliverAll();
    expect(net.raft(4).log.lastIndex()).toBe(b);
    expect(leader.log.committed).toBeLessThan(b);

    // However long it hears nothing, it never campaigns.
    net.recover();
    net.isolate(4);
    net.tick(4, 5 * E);
    expect(net.raft(4).role).toBe('follower');
    expect(net.sent.some((m) => m.from === 4 && (m.type === MessageType.PreVote || m.type === MessageType.Vote))).toBe(false);
    // And nobody asks it for a vote.
    net.recover();
    net.elect(2);
    expect(net.sent.some((m) => m.to === 4 && (m.type === MessageType.PreVote || m.type === MessageType.Vote))).toBe(false);
  });

  it('promotes a learner through a joint configuration that is left automatically', () => {
    const net = new Network([1, 2, 3], { learners: [4] });
    const leader = net.elect(1);
    leader.proposeConfChange({ changes: [{ op: 'addVoter', nodeId: 4 }] });
    for (let i = 0; i < 3; i++) {
      net.tick(1);
      net.deliverAll();
    }
    const expected = { voters: [1, 2, 3, 4], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };
    for (const id of [1, 2, 3, 4]) expect(net.raft(id).conf).toEqual(expected);
    // The log shows both steps: enter the joint configuration, then leave it.
    expect(net.storedConfChanges(1).slice(-2)).toEqual([{ changes: [{ op: 'addVoter', nodeId: 4 }] }, { changes: [] }]);

    // Node 4 now counts: with 2 away, 1, 3 and 4 are three of four ...
    net.isolate(2);
    const c = net.propose(1, 'c');
    net.deliverAll();
    expect(leader.log.committed).toBe(c);
    // ... and with 3 away too, two of four are not a majority.
    net.isolate(3);
    const d = net.propose(1, 'd');
    net.deliverAll();
    expect(leader.log.committed).toBeLessThan(d);
  });

  it('demotes a voter to a learner: it votes in the outgoing half until the joint configuration is left', () => {
    const net = new Network([1, 2, 3]);
    const leader = net.elect(1);
    leader.proposeConfChange({ changes: [{ op: 'addLearner', nodeId: 3 }] });
    for (let i = 0; i < 3; i++) {
      net.tick(1);
      net.deliverAll();
    }
    const expected = { voters: [1, 2], votersOutgoing: [], learners: [3], learnersNext: [], autoLeave: false };
    for (const id of [1, 2, 3]) expect(net.raft(id).conf).toEqual(expected);
    expect(net.raft(3).promotable()).toBe(false);
    const x = net.propose(1, 'x');
    net.deliverAll();
    net.tick(1);
    net.deliverAll();
    expect(net.appliedTexts(3)).toEqual(['x']); // Still gets the log.
    // And 1 and 2 are the whole quorum now: without 2 nothing commits, 3 does not count.
    net.isolate(2);
    const y = net.propose(1, 'y');
    net.deliverAll();
    expect(leader.log.committed).toBe(x);
    expect(net.raft(3).log.lastIndex()).toBe(y);
  });

  it('refuses a second change while one is pending, and any change while joint', () => {
    const net = new Network([1, 2, 3]);
    const leader = net.elect(1);
    net.addNode(4);
    net.addNode(5);
    leader.proposeConfChange({ changes: [{ op: 'addLearner', nodeId: 4 }] });
    expectCode(() => leader.proposeConfChange({ changes: [{ op: 'addLearner', nodeId: 5 }] }), ErrorCode.CONF_CHANGE_PENDING);
    net.deliverAll();
    // Applied: the next may go.
    leader.proposeConfChange({ changes: [{ op: 'addVoter', nodeId: 5 }] });
    // Drop the answers, so the joint configuration is entered (on the leader) but not left.
    net.drop((m) => m.type === MessageType.AppResp);
    net.deliverAll();
    expectCode(() => leader.proposeConfChange({ changes: [{ op: 'removeNode', nodeId: 4 }] }), ErrorCode.CONF_CHANGE_PENDING);
    expectCode(() => leader.proposeConfChange({ changes: [] }), ErrorCode.CONF_CHANGE_PENDING);
    net.recover();
    for (let i = 0; i < 3; i++) {
      net.tick(1);
      net.deliverAll();
    }
    expect(leader.conf.voters).toEqual([1, 2, 3, 5]);
    expect(leader.conf.votersOutgoing).toEqual([]);
    expectCode(() => leader.proposeConfChange({ changes: [] }), ErrorCode.INVALID_ARGUMENT);
  });

  it('removes a voter: it stops receiving the log', () => {
    const net = new Network([1, 2, 3]);
    const leader = net.elect(1);
    leader.proposeConfChange({ changes: [{ op: 'removeNode', nodeId: 3 }] });
    for (let i = 0; i < 3; i++) {
      net.tick(1);
      net.deliverAll();
    }
    expect(leader.conf.voters).toEqual([1, 2]);
    expect(leader.conf.votersOutgoing).toEqual([]);
    expect(leader.progress.has(3)).toBe(false);
    const lastOf3 = net.raft(3).log.lastIndex();
    const z = net.propose(1, 'z');
    net.deliverAll();
    expect(leader.log.committed).toBe(z);
    expect(net.raft(3).log.lastIndex()).toBe(lastOf3);
    expect(net.sent.some((m) => m.to === 3 && m.type === MessageType.App && m.entries.some((e) => e.index === z))).toBe(false);
  });

  it('removes the leader: it leads through the joint phase, then hands leadership to a caught-up voter', () => {
    const net = new Network([1, 2, 3]);
    const leader = net.elect(1);
    const term = leader.term;
    leader.proposeConfChange({ changes: [{ op: 'removeNode', nodeId: 1 }] });
    for (let i = 0; i < 3; i++) {
      net.tick(1);
      net.deliverAll();
    }
    // The entry leaving the joint configuration was proposed by node 1 in its own term: it
    // still led while it was a voter of the outgoing half.
    const confEntries = net.node(2).storage.allEntries().filter((e) => e.type === EntryType.ConfChange);
    expect(net.storedConfChanges(2).slice(-2)).toEqual([{ changes: [{ op: 'removeNode', nodeId: 1 }] }, { changes: [] }]);
    expect(confEntries.at(-1)!.term).toBe(term);
    // Once removed, node 1 sent TimeoutNow to a voter of the new configuration, which won
    // a new term; node 1 is a follower that will never campaign again.
    const timeoutNow = net.sent.filter((m) => m.type === MessageType.TimeoutNow && m.from === 1);
    expect(timeoutNow.length).toBe(1);
    expect([2, 3]).toContain(timeoutNow[0]!.to);
    expect(leader.role).toBe('follower');
    expect(leader.conf.voters).toEqual([2, 3]);
    expect(leader.promotable()).toBe(false);
    const newLeader = timeoutNow[0]!.to;
    expect(net.raft(newLeader).role).toBe('leader');
    expect(net.raft(newLeader).term).toBe(term + 1);
    for (const id of [2, 3]) expect(net.raft(id).conf.voters).toEqual([2, 3]);

    const sentBefore = net.sent.length;
    net.tickAll(5 * E);
    expect(net.raft(1).role).toBe('follower');
    expect(net.raft(newLeader).role).toBe('leader');
    const campaignsByOne = net.sent.slice(sentBefore).filter((m) => (m.type === MessageType.PreVote || m.type === MessageType.Vote) && m.from === 1);
    expect(campaignsByOne).toEqual([]);
    net.propose(newLeader, 'after');
    net.deliverAll();
    expect(net.appliedTexts(2)).toEqual(['after']);
    expect(net.appliedTexts(3)).toEqual(['after']);
  });

});

describe('snapshots (§7)', () => {
  it('a follower behind the compacted log receives a snapshot and catches up', () => {
    const net = new Network([1, 2, 3]);
    const leader = net.elect(1);
    net.isolate(3);
    for (let i = 0; i < 10; i++) net.propose(1, `s${i}`);
    net.deliverAll();
    const applied = leader.log.applied;
    expect(applied).toBe(leader.log.committed);
    const data = new TextEncoder().encode('state at ' + applied);
    net.node(1).storage.createSnapshot(applied, leader.conf, data);
    expect(leader.log.firstIndex()).toBe(applied + 1);

    net.recover();
    for (let i = 0; i < 5 && net.node(3).snapshotsInstalled === 0; i++) {
      net.tick(1);
      net.deliverAll();
    }
    expect(net.countDelivered(isType(MessageType.Snap, 1, 3))).toBe(1);
    const follower = net.node(3);
    expect(follower.snapshotsInstalled).toBe(1);
    expect(follower.storage.snapshot().data).toEqual(data);
    expect(follower.storage.firstIndex()).toBe(applied + 1);
    expect(follower.raft.conf).toEqual(leader.conf);
    expect(follower.raft.log.committed).toBeGreaterThanOrEqual(applied);

    const after = net.propose(1, 'after');
    net.deliverAll();
    expect(net.raft(3).log.committed).toBe(after);
    expect(net.appliedTexts(3)).toEqual(['after']);
    expect(leader.progress.get(3)!.state).toBe('replicate');
  });

  it('a learner added after compaction starts from the snapshot', () => {
    const net = new Network([1, 2, 3]);
    const leader = net.elect(1);
    for (let i = 0; i < 5; i++) net.propose(1, `p${i}`);
    net.deliverAll();
    net.node(1).storage.createSnapshot(leader.log.applied, leader.conf, new Uint8Array([1]));
    net.addNode(4);
    leader.proposeConfChange({ changes: [{ op: 'addLearner', nodeId: 4 }] });
    for (let i = 0; i < 3; i++) {
      net.tick(1);
      net.deliverAll();
    }
    expect(net.node(4).snapshotsInstalled).toBe(1);
    expect(net.raft(4).conf.learners).toEqual([4]);
    expect(net.raft(4).log.lastIndex()).toBe(leader.log.lastIndex());
  });
});

describe('the Ready contract', () => {
  it('a granted vote is in the hard state to persist, with mustSync, in the Ready that carries the answer', () => {
    const net = new Network([1, 2, 3], { preVote: false });
    net.elect(1);
    const voter = net.raft(3);
    const term = voter.term + 1;
    // The voter has waited out its leader for an election timeout (else it disregards the campaign).
    voter.electionElapsed = voter.electionTimeoutTicks;
    voter.step(makeMessage({ type: MessageType.Vote, from: 2, to: 3, term, index: voter.log.lastIndex(), logTerm: voter.log.lastTerm() }));
    const rd = voter.ready();
    expect(rd.messages).toEqual([expect.objectContaining({ type: MessageType.VoteResp, to: 2, reject: false, term })]);
    expect(rd.hardState).toMatchObject({ term, vote: 2 });
    expect(rd.mustSync).toBe(true);
    voter.advance(rd);
    expect(voter.hasReady()).toBe(false);
  });

  it('appended entries and the acknowledgement leave in one Ready; no new Ready until advance', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const index = net.propose(1, 'p');
    net.process(1);
    const app = net.queue.find(isType(MessageType.App, 1, 2))!;
    net.queue = [];
    const follower = net.raft(2);
    follower.step(app);
    const rd = follower.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([index]);
    expect(rd.mustSync).toBe(true);
    expect(rd.messages).toEqual([expect.objectContaining({ type: MessageType.AppResp, index, reject: false })]);
    // Until advance, nothing new is handed out: the entries are in flight to storage.
    expect(follower.hasReady()).toBe(false);
    follower.advance(rd);
    expect(follower.log.unstable.entries).toEqual([]);
  });
});

describe('restart from storage', () => {
  it('keeps term, vote and log, and re-applies committed entries', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    for (const t of ['a', 'b']) net.propose(1, t);
    net.deliverAll();
    const before = net.raft(3);
    const hs = before.hardState;
    const last = before.log.lastIndex();
    expect(hs.vote).toBe(1);

    const after = net.restart(3);
    expect(after.term).toBe(hs.term);
    expect(after.vote).toBe(hs.vote);
    expect(after.log.committed).toBe(hs.commit);
    expect(after.log.lastIndex()).toBe(last);
    expect(after.conf.voters).toEqual([1, 2, 3]); // Rebuilt by re-applying the log.
    expect(net.appliedTexts(3)).toEqual(['a', 'b']);
    net.propose(1, 'c');
    net.deliverAll();
    expect(net.appliedTexts(3)).toEqual(['a', 'b', 'c']);
  });

  it('a node that voted in term T does not vote for another candidate in T after restart', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const voter = net.raft(3);
    const term = voter.term;
    expect(voter.vote).toBe(1);
    const restarted = net.restart(3);
    const ask = (from: NodeId): Message =>
      makeMessage({ type: MessageType.Vote, from, to: 3, term, index: restarted.log.lastIndex(), logTerm: restarted.log.lastTerm() });

    restarted.step(ask(2));
    let rd = restarted.ready();
    expect(rd.messages).toHaveLength(1);
    expect(rd.messages[0]).toMatchObject({ type: MessageType.VoteResp, to: 2, reject: true });
    restarted.advance(rd);
    // The candidate it did vote for gets the same answer again.
    restarted.step(ask(1));
    rd = restarted.ready();
    expect(rd.messages[0]).toMatchObject({ type: MessageType.VoteResp, to: 1, reject: false });
    restarted.advance(rd);
    expect(restarted.vote).toBe(1);
  });

  it('restarts from a compacted storage with the snapshot configuration', () => {
    const net = new Network([1, 2, 3]);
    const leader = net.elect(1);
    for (let i = 0; i < 4; i++) net.propose(1, `q${i}`);
    net.deliverAll();
    const snapIndex = leader.log.applied;
    net.node(1).storage.createSnapshot(snapIndex, leader.conf, new Uint8Array(0));
    const restarted = net.restart(1);
    expect(restarted.role).toBe('follower');
    expect(restarted.log.firstIndex()).toBe(snapIndex + 1);
    expect(restarted.log.committed).toBe(snapIndex);
    expect(restarted.conf.voters).toEqual([1, 2, 3]);
    expect(restarted.promotable()).toBe(true);
    const newLeader = net.tickUntilLeader();
    net.propose(newLeader, 'later');
    net.deliverAll();
    expect(net.appliedTexts(1)).toEqual(['later']);
  });
});

describe('typed refusals', () => {
  it('a follower refuses leader-only requests with NotLeaderError and a leader hint', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const follower = net.raft(2);
    const err = expectCode(() => follower.propose(bytes(1)), ErrorCode.NOT_LEADER);
    expect(err).toBeInstanceOf(NotLeaderError);
    expect((err as NotLeaderError).leaderId).toBe(1);
    // (readIndex on a follower that knows its leader is a follower read: see ReadIndex above.)
    expectCode(() => follower.transferLeadership(3), ErrorCode.NOT_LEADER);
    expectCode(() => follower.proposeConfChange({ changes: [{ op: 'addLearner', nodeId: 9 }] }), ErrorCode.NOT_LEADER);
  });

  it('with no leader known the hint is 0', () => {
    const net = new Network([1, 2, 3]);
    const err = expectCode(() => net.propose(1, 'x'), ErrorCode.NOT_LEADER) as NotLeaderError;
    expect(err.leaderId).toBe(0);
  });

  it('refuses a proposal over proposalBytesMax with PROPOSAL_TOO_LARGE', () => {
    const net = new Network([1, 2, 3], { proposalBytesMax: 100 });
    const leader = net.elect(1);
    expectCode(() => leader.propose(bytes(101)), ErrorCode.PROPOSAL_TOO_LARGE);
    const index = leader.propose(bytes(100));
    net.deliverAll();
    expect(leader.log.committed).toBe(index);
  });

  it('refuses proposals with PROPOSALS_FULL while too many bytes are uncommitted', () => {
    // Each proposal counts its payload plus its framing (entryBytes: 24 bytes).
    const net = new Network([1, 2, 3], { uncommittedBytesMax: 300 });
    const leader = net.elect(1);
    leader.propose(bytes(100));
    leader.propose(bytes(100));
    expectCode(() => leader.propose(bytes(100)), ErrorCode.PROPOSALS_FULL);
    leader.propose(bytes(28)); // 124 + 124 + 52 = 300: still fits exactly.
    expectCode(() => leader.propose(bytes(0)), ErrorCode.PROPOSALS_FULL);
    net.deliverAll(); // Commits: the budget frees up.
    leader.propose(bytes(100));
    leader.propose(bytes(100));
  });

  it('counts empty proposals too, so a leader without a quorum cannot pile them up', () => {
    const net = new Network([1, 2, 3], { uncommittedBytesMax: 50 });
    const leader = net.elect(1);
    net.isolate(1);
    leader.propose(bytes(0));
    leader.propose(bytes(0));
    expectCode(() => leader.propose(bytes(0)), ErrorCode.PROPOSALS_FULL);
  });

  it('lets one oversized proposal through when nothing is uncommitted', () => {
    const net = new Network([1, 2, 3], { uncommittedBytesMax: 50 });
    const leader = net.elect(1);
    leader.propose(bytes(80));
    expectCode(() => leader.propose(bytes(1)), ErrorCode.PROPOSALS_FULL);
  });

  it('refuses reads with PROPOSALS_FULL past readsPendingMax', () => {
    const net = new Network([1, 2, 3], { readsPendingMax: 2 });
    const leader = net.elect(1);
    leader.readIndex(1);
    leader.readIndex(2);
    expectCode(() => leader.readIndex(3), ErrorCode.PROPOSALS_FULL);
    net.deliverAll();
    leader.readIndex(4);
    expect(net.node(1).readStates.map((r) => r.requestId)).toEqual([1, 2]);
  });

  it('refuses an empty conf change and a bad configuration', () => {
    const net = new Network([1, 2, 3]);
    const leader = net.elect(1);
    expectCode(() => leader.proposeConfChange({ changes: [] }), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => leader.proposeConfChange({ changes: [{ op: 'removeNode', nodeId: 1 }, { op: 'removeNode', nodeId: 2 }, { op: 'removeNode', nodeId: 3 }] }), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => new RaftNode({ id: 1, storage: new MemoryStorage(), seed: 1, electionTimeoutTicks: 5, heartbeatIntervalTicks: 5 }), ErrorCode.INVALID_ARGUMENT);
  });
});

describe('random faults (seeded)', () => {
  /** Runs `fn`, ignoring the typed refusals a random operation may meet. */
  function attempt(fn: () => unknown): void {
    try {
      fn();
    } catch (error) {
      if (!(error instanceof RingraftError)) throw error;
    }
  }

  it('keeps Election Safety, State Machine Safety and fresh reads under drops, partitions, restarts and membership changes', () => {
    let appliedTotal = 0;
    let readsChecked = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const rand = new Rand(seed);
      const net = new Network([1, 2, 3, 4, 5], {
        seedBase: seed,
        preVote: rand.chance(0.7),
        checkQuorum: rand.chance(0.5),
        appendBytesMax: rand.pick([1, 100, 1 << 20]),
        inflightMessagesMax: rand.pick([1, 4, 256]),
      });
      const lossy = (): void => net.drop(() => rand.chance(0.1));
      lossy();
      /** For each read, the highest commit index anywhere when it was asked. */
      const readFloor = new Map<number, number>();
      let nextNodeId = 6;
      const leaderNow = (): RaftNode | undefined => {
        const id = net.leader();
        return id === undefined ? undefined : net.raft(id);
      };
      for (let step = 0; step < 300; step++) {
        const ids = [...net.nodes.keys()];
        const action = rand.int(0, 100);
        const leader = leaderNow();
        if (action < 50) net.tickAll();
        else if (action < 65) attempt(() => leader?.propose(new TextEncoder().encode(`v${step}`)));
        else if (action < 69) {
          net.recover();
          lossy();
        } else if (action < 73) net.isolate(rand.pick(ids));
        else if (action < 76) net.cut(rand.pick(ids), rand.pick(ids));
        else if (action < 79) net.restart(rand.pick(ids));
        else if (action < 83 && leader !== undefined) {
          const target = rand.chance(0.3) ? nextNodeId : rand.pick([...leader.progress.keys()]);
          if (!net.nodes.has(target)) {
            net.addNode(target);
            nextNodeId++;
          }
          const op = rand.pick(['addVoter', 'removeNode', 'addLearner'] as const);
          attempt(() => leader.proposeConfChange({ changes: [{ op, nodeId: target }] }));
        } else if (action < 87) {
          const n = net.node(rand.pick(ids));
          const applied = n.raft.log.applied;
          if (applied > n.storage.snapshot().meta.index && applied === n.appliedIndex) {
            n.storage.createSnapshot(applied, n.raft.conf, new Uint8Array(0));
          }
        } else if (action < 90) attempt(() => leader?.transferLeadership(rand.pick(ids)));
        else if (action < 96 && leader !== undefined) {
          readFloor.set(step, Math.max(...[...net.nodes.values()].map((n) => n.raft.log.committed)));
          attempt(() => leader.readIndex(step, rand.chance(0.5) ? 'lease' : 'safe'));
        } else net.deliverAll();
      }
      net.recover();
      net.tickAll(50);
      for (const n of net.nodes.values()) {
        appliedTotal += n.applied.length;
        for (const rs of n.readStates) {
          const floor = readFloor.get(rs.requestId);
          if (floor === undefined) continue;
          readsChecked++;
          expect(rs.index, `seed ${seed}: read ${rs.requestId} on node ${n.id}`).toBeGreaterThanOrEqual(floor);
        }
      }
    }
    // The run did real work: entries were applied and reads were answered.
    expect(appliedTotal).toBeGreaterThan(1000);
    expect(readsChecked).toBeGreaterThan(50);
  });
});

describe('disregarding campaigns against a live leader (§6)', () => {
  it('a follower that hears from its leader ignores a higher-term vote request, then grants it once the leader is silent', () => {
    const net = new Network([1, 2, 3], { preVote: false, checkQuorum: false });
    net.elect(1);
    const voter = net.raft(3);
    const term = voter.term;
    const request = () =>
      makeMessage({ type: MessageType.Vote, from: 2, to: 3, term: term + 1, index: voter.log.lastIndex(), logTerm: voter.log.lastTerm() });
    voter.step(request());
    expect(voter.term).toBe(term);
    expect(voter.hasReady()).toBe(false);
    // An election timeout without the leader: the request is now heard and granted.
    for (let i = 0; i < E; i++) voter.tick();
    voter.step(request());
    expect(voter.term).toBe(term + 1);
    const rd = voter.ready();
    expect(rd.messages).toEqual([expect.objectContaining({ type: MessageType.VoteResp, to: 2, reject: false })]);
  });

  it('a node whose term ran ahead answers the stale leader with its term, so the leader steps down', () => {
    const net = new Network([1, 2, 3], { preVote: false, checkQuorum: false });
    const leader = net.elect(1);
    const follower = net.raft(3);
    const ahead = leader.term + 5;
    follower.becomeFollower(ahead, 0);
    net.tick(1);
    net.deliverAll();
    expect(net.delivered.some((m) => m.type === MessageType.AppResp && m.from === 3 && m.to === 1 && m.term === ahead)).toBe(true);
    // The stale leader stepped down into the newer term; nobody has campaigned yet.
    expect(leader.role).toBe('follower');
    expect(leader.term).toBe(ahead);
  });

  it('a removed voter that missed its removal cannot unseat the leader, without pre-vote or check-quorum', () => {
    const net = new Network([1, 2, 3], { preVote: false, checkQuorum: false });
    const leader = net.elect(1);
    net.isolate(3);
    leader.proposeConfChange({ changes: [{ op: 'removeNode', nodeId: 3 }] });
    for (let i = 0; i < 3; i++) {
      net.tick(1);
      net.deliverAll();
    }
    expect(leader.conf.voters).toEqual([1, 2]);
    const term = leader.term;
    // Node 3 still thinks it is a voter and campaigns again and again.
    net.recover();
    for (let i = 0; i < 10 * E; i++) {
      net.tick(3);
      net.tick(1);
      net.tick(2);
      net.deliverAll();
    }
    expect(net.raft(3).term).toBeGreaterThan(term);
    expect(leader.role).toBe('leader');
    expect(leader.term).toBe(term);
    net.propose(1, 'still serving');
    net.deliverAll();
    expect(net.appliedTexts(2)).toContain('still serving');
  });
});
