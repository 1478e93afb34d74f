/**
 * RaftNode.ticksUntilDue(): a host may sleep that many ticks and then tick them all at
 * once. Checked against the node itself: one tick fewer does nothing, the last one acts
 * (a follower campaigns, a leader sends its heartbeats).
 */
import { describe, expect, it } from 'vitest';
import { MessageType, type Message, type RaftConfig, type RaftNode } from '../../src/core/index.ts';
import { ReadyDriver } from '../../src/sim/ready-driver.ts';

const drivers = new WeakMap<RaftNode, ReadyDriver>();

/** One node on the shared Ready loop, its peers absent: what it sends stays in the mailbox. */
function node(config: Omit<RaftConfig, 'storage'>): RaftNode {
  const { id, seed, ...options } = config;
  const driver = new ReadyDriver({ seedOf: () => seed });
  const n = driver.addNode(id, options).raft;
  drivers.set(n, driver);
  return n;
}

/** Processes every Ready as a host would, and returns the messages sent meanwhile. */
function settle(n: RaftNode): Message[] {
  const driver = drivers.get(n)!;
  driver.settle(n.id);
  return driver.mailbox.splice(0);
}

describe('ticksUntilDue', () => {
  it('a follower campaigns exactly when the ticks it announced have passed', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const n = node({ id: 1, voters: [1, 2, 3], seed, electionTimeoutTicks: 10, preVote: false });
      settle(n);
      const due = n.ticksUntilDue();
      expect(due).toBeGreaterThanOrEqual(1);
      expect(due).toBeLessThan(20);
      for (let i = 0; i < due - 1; i++) n.tick();
      expect(n.role).toBe('follower');
      n.tick();
      expect(n.role).toBe('candidate');
    }
  });

  it('a leader is due at its next heartbeat', () => {
    const l = node({ id: 1, voters: [1, 2, 3], seed: 3, electionTimeoutTicks: 10, heartbeatIntervalTicks: 4, preVote: false });
    settle(l);
    while (l.role !== 'candidate') l.tick();
    settle(l);
    l.step({ type: MessageType.VoteResp, from: 2, to: 1, term: l.term, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, context: 0, sentTick: 0, snapshot: undefined });
    settle(l);
    expect(l.role).toBe('leader');
    const due = l.ticksUntilDue();
    expect(due).toBeLessThanOrEqual(4);
    for (let i = 0; i < due - 1; i++) l.tick();
    expect(settle(l).filter((m) => m.type === MessageType.Heartbeat)).toEqual([]);
    l.tick();
    expect(settle(l).filter((m) => m.type === MessageType.Heartbeat).length).toBe(2);
  });
});
