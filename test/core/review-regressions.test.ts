// Regression tests for three defects a review of the core found, each failing before its fix:
// a single-voter leader whose first messages could leave before its new term was durable
// (the Ready now says when early sending is allowed), a removed leader that retried its
// hand-off with the same dead voter forever, and advance() throwing PROPOSALS_FULL when
// leaving a joint configuration near the uncommitted budget.
import { describe, expect, it } from 'vitest';
import { MessageType } from '../../src/core/index.ts';
import { Network } from './helpers/network.ts';

const E = 10;
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (d: Uint8Array) => new TextDecoder().decode(d);

describe('review findings', () => {
  it('a single-voter leader may not send before its new term is durable, so a crash cannot make a learner diverge', () => {
    const net = new Network([1], { learners: [2] });
    net.elect(1);
    net.propose(1, 'base');
    net.deliverAll();
    // Restart 1 cleanly; then let it campaign again on its own, driving the host loop by hand.
    net.restart(1);
    net.deliverAll();
    let raft = net.raft(1);
    for (let i = 0; i < 100 && raft.role !== 'leader'; i++) raft.tick();
    expect(raft.role).toBe('leader');
    const x = raft.propose(enc('X'));
    const rd = raft.ready();
    // This Ready makes the node leader and changes its term and vote: its messages must
    // wait for the write. A host following the contract sends early only when allowed.
    expect(rd.softState?.role).toBe('leader');
    expect(rd.hardState?.term).toBe(raft.term);
    expect(rd.messages.length).toBeGreaterThan(0);
    expect(rd.messagesBeforePersist).toBe(false);
    if (rd.messagesBeforePersist) for (const m of rd.messages) net.queue.push(m);
    net.restart(1); // crash before persisting anything of rd
    // The learner receives the App of the lost term; its answer is lost (or late).
    net.drop((m) => m.from === 2);
    net.deliverAll();
    expect(net.raft(1).term).toBe(rd.hardState!.term - 1);
    raft = net.raft(1);
    for (let i = 0; i < 100 && raft.role !== 'leader'; i++) {
      raft.tick();
      net.process(1);
    }
    expect(raft.role).toBe('leader');
    const y = raft.propose(enc('Y'));
    expect(y).toBe(x);
    expect(raft.term).toBe(rd.hardState!.term); // the same term again
    net.recover();
    net.deliverAll();
    for (let i = 0; i < 3; i++) net.tickAll();
    const at = (id: number) => net.node(id).applied.find((e) => e.index === x);
    expect(at(1) && dec(at(1)!.data)).toBe('Y');
    // State Machine Safety: the learner must apply the same entry at x.
    expect(at(2) && dec(at(2)!.data)).toBe('Y');
  });

  for (const checkQuorum of [false, true]) {
    it(`a removed leader does not retry its hand-off with the same dead voter forever (checkQuorum ${checkQuorum})`, () => {
      const net = new Network([1, 2, 3, 4, 5], { checkQuorum });
      for (const n of net.nodes.values()) n.raft.tickCount = E; // past the start-up lease
      const leader = net.elect(1);
      net.drop((m) => m.type === MessageType.TimeoutNow);
      leader.proposeConfChange({ changes: [{ op: 'removeNode', nodeId: 1 }] });
      for (let i = 0; i < 3; i++) {
        net.tick(1);
        net.deliverAll();
      }
      expect(leader.conf.voters).toEqual([2, 3, 4, 5]);
      expect(leader.role).toBe('leader');
      expect(leader.leadTransferee).toBe(2);
      // Node 2 crashes (for good). Voters 3, 4, 5 are a quorum of the new configuration.
      net.recover();
      net.isolate(2);
      net.tickAll(30 * E);
      const targets = new Set(net.sent.filter((m) => m.type === MessageType.TimeoutNow).map((m) => m.to));
      // Liveness: some live voter should lead by now.
      expect([3, 4, 5]).toContain(net.leader());
      expect(targets).not.toEqual(new Set([2]));
    });
  }

  it('advance() does not throw when auto-leaving a joint configuration near the uncommitted limit', () => {
    const net = new Network([1, 2, 3], { uncommittedBytesMax: 100 });
    const leader = net.elect(1);
    leader.proposeConfChange({ changes: [{ op: 'addVoter', nodeId: 4 }] });
    net.process(1);
    net.deliverWhere((m) => m.type === MessageType.App);
    // The acknowledgements commit the conf change; a proposal arrives before the host loop runs.
    const acks = net.queue.filter((m) => m.to === 1);
    net.queue = net.queue.filter((m) => m.to !== 1);
    for (const m of acks) leader.step(m);
    expect(leader.log.committed).toBeGreaterThan(leader.log.applied);
    leader.propose(new Uint8Array(99));
    // Applying the conf change enters the joint configuration and auto-leaves it from advance().
    expect(() => net.process(1)).not.toThrow();
  });
});
