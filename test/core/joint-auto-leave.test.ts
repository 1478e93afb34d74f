// Proves that leaving a joint configuration automatically is not refused by the uncommitted
// budget: a leader near uncommittedBytesMax applies a conf change that enters a joint
// configuration, and advance(), which proposes the entry that leaves it, must not throw
// PROPOSALS_FULL. Driven on the in-memory Network by hand; it failed before its fix.
import { describe, expect, it } from 'vitest';
import { MessageType } from '../../src/core/index.ts';
import { Network } from './helpers/network.ts';

describe('leaving a joint configuration automatically', () => {
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
