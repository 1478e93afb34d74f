// Proves that every Raft message type has a TCP lane, and that the messages that keep a
// cluster's leadership alive (votes, heartbeats, transfers) never share a lane with appends or
// snapshot chunks, which could hold them back behind bulk data.
import { describe, expect, it } from 'vitest';
import { MessageType } from '../../src/core/index.ts';
import { peerLaneOf } from '../../src/runtime/peer-lanes.ts';

describe('peer lanes', () => {
  it('give every message type a lane, and keep elections and heartbeats off the bulk lanes', () => {
    const lanes = new Map(Object.entries(MessageType).map(([name, type]) => [name, peerLaneOf(type)]));
    expect(lanes.size).toBe(13);
    for (const name of ['PreVote', 'PreVoteResp', 'Vote', 'VoteResp', 'Heartbeat', 'HeartbeatResp', 'TimeoutNow', 'ReadIndex', 'ReadIndexResp']) expect(lanes.get(name), name).toBe('control');
    expect(lanes.get('App')).toBe('append');
    expect(lanes.get('Snap')).toBe('snapshot');
    for (const lane of lanes.values()) expect(['control', 'append', 'snapshot']).toContain(lane);
  });
});
