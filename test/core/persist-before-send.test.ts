// Proves that a leader's messages leave only after what the Ready they came with must make
// durable (its new term and vote): a single-voter leader with a learner crashes before its
// first Ready is persisted, campaigns again into the same term, and the learner must still
// apply what the leader applies, because the Ready said its messages had to wait
// (messagesBeforePersist false). Driven through the in-memory Network, crash included; it
// failed before the Ready carried that flag.
import { describe, expect, it } from 'vitest';
import { Network } from './helpers/network.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (d: Uint8Array) => new TextDecoder().decode(d);

describe('sending before persisting', () => {
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
});
