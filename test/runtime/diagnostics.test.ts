// Proves that a NodeHost publishes its core's decisions on its own thread's `ringraft:raft`
// channel while someone subscribes, and also hands them to the trace sink its caller gave
// (both, the same events), by electing a leader on the hand-driven network of
// test/runtime/helpers.ts with a subscriber and a sink attached.
import diagnostics_channel from 'node:diagnostics_channel';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { TraceEvent } from '../../src/core/index.ts';
import { RAFT_CHANNEL } from '../../src/runtime/index.ts';
import { HostNetwork } from './helpers.ts';

/** Subscribes to `ringraft:raft` for the rest of the test; returns what it receives. */
function subscribeRaft(): TraceEvent[] {
  const received: TraceEvent[] = [];
  const listen = (message: unknown): void => void received.push(message as TraceEvent);
  diagnostics_channel.subscribe(RAFT_CHANNEL, listen);
  onTestFinished(() => void diagnostics_channel.unsubscribe(RAFT_CHANNEL, listen));
  return received;
}

describe('NodeHost diagnostics', () => {
  it('publishes the core decisions on ringraft:raft in its thread while subscribed: the election of a leader', () => {
    const received = subscribeRaft();
    const net = new HostNetwork([1, 2, 3]);
    net.elect(2);
    expect(received.some((e) => e.kind === 'campaign')).toBe(true);
    expect(received.some((e) => e.kind === 'vote' && e.granted)).toBe(true);
    expect(received).toContainEqual(expect.objectContaining({ kind: 'role', node: 2, role: 'leader', leader: 2 }));
    // Each event names the node that decided, and every node of the network reported.
    expect(new Set(received.map((e) => e.node))).toEqual(new Set([1, 2, 3]));
  });

  it('publishes nothing once unsubscribed', () => {
    const received: unknown[] = [];
    const listen = (message: unknown): void => void received.push(message);
    diagnostics_channel.subscribe(RAFT_CHANNEL, listen);
    diagnostics_channel.unsubscribe(RAFT_CHANNEL, listen);
    new HostNetwork([1, 2, 3]).elect(1);
    expect(received).toEqual([]);
  });

  it('calls the trace sink given in options.raft.trace, subscribed or not, with the events it publishes', () => {
    const sunk: TraceEvent[] = [];
    const trace = (e: TraceEvent): void => void sunk.push(e);
    // No subscriber: the sink alone hears.
    new HostNetwork([1, 2, 3], { raft: { trace } }).elect(1);
    expect(sunk).toContainEqual(expect.objectContaining({ kind: 'role', node: 1, role: 'leader' }));
    // With a subscriber: both hear the same events, in the same order.
    sunk.length = 0;
    const published = subscribeRaft();
    new HostNetwork([1, 2, 3], { raft: { trace } }).elect(3);
    expect(sunk).toContainEqual(expect.objectContaining({ kind: 'role', node: 3, role: 'leader' }));
    expect(published).toEqual(sunk);
  });
});
