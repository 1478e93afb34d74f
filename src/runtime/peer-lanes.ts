/**
 * Which TCP lane (transport/tcp) each Raft message travels on between node processes. Votes,
 * heartbeats and leadership transfers take the control lane, so that they never wait behind
 * bulk appends or a snapshot: a heartbeat stuck behind a megabyte of entries would let the
 * followers' election timers run out under load. Appends and their acknowledgements take the
 * append lane, snapshot chunks and their acknowledgements the snapshot lane, so that a large
 * snapshot never delays either. Raft tolerates the reordering across lanes (any message may be
 * delayed or lost); within a lane order is kept, which keeps pipelined appends in order.
 */
import { MessageType } from '../core/index.ts';
import type { TcpLane } from '../transport/index.ts';

const LANE_BY_TYPE: Readonly<Record<MessageType, TcpLane>> = {
  [MessageType.PreVote]: 'control',
  [MessageType.PreVoteResp]: 'control',
  [MessageType.Vote]: 'control',
  [MessageType.VoteResp]: 'control',
  [MessageType.Heartbeat]: 'control',
  [MessageType.HeartbeatResp]: 'control',
  [MessageType.TimeoutNow]: 'control',
  [MessageType.ReadIndex]: 'control',
  [MessageType.ReadIndexResp]: 'control',
  [MessageType.App]: 'append',
  [MessageType.AppResp]: 'append',
  [MessageType.Snap]: 'snapshot',
  [MessageType.SnapResp]: 'snapshot',
};

/** The lane a message of `type` travels on. */
export function peerLaneOf(type: MessageType): TcpLane {
  return LANE_BY_TYPE[type];
}
