/** The TCP transport's counters, per peer and lane, kept for metrics, and the shapes `stats()` returns. */
import type { TcpLane } from './handshake.ts';

/** What happened on one lane to and from one peer since the peer was added. */
export interface TcpLaneStats {
  /** Messages handed to the socket (in frames written to the connection). */
  readonly messagesSent: number;
  /** Bytes of those messages (without framing). */
  readonly bytesSent: number;
  /** Messages `send` dropped because the lane's queue was full (count or bytes): network loss. */
  readonly messagesDropped: number;
  /** Bytes of those messages. */
  readonly bytesDropped: number;
  /** Messages in frames the socket had not handed to the kernel when their connection ended: lost. */
  readonly sendFailures: number;
  /** Dialled connections the peer accepted (WELCOME received). */
  readonly connects: number;
  /** Connections the peer dialled here and this transport accepted. */
  readonly accepts: number;
  /** Handshakes of this transport the peer refused. */
  readonly refusalsReceived: number;
  /** Handshakes of the peer this transport refused (or whose WELCOME it refused). */
  readonly refusalsSent: number;
  /** Frames received on this lane from the peer, either direction's connection. */
  readonly framesReceived: number;
  /** Messages received from the peer and handed to `onMessage`. */
  readonly messagesReceived: number;
  /** Bytes of those messages. */
  readonly bytesReceived: number;
  /** Messages waiting in the lane's queue now. */
  readonly queuedMessages: number;
  /** Bytes of those messages. */
  readonly queuedBytes: number;
  /** Whether the dialled connection is up and accepted now. */
  readonly connected: boolean;
}

/** One peer's lanes. */
export interface TcpPeerStats {
  readonly peerId: number;
  /** Where this transport dials it; undefined for a peer that only dials in. */
  readonly address: { readonly host: string; readonly port: number } | undefined;
  readonly lanes: { readonly [L in TcpLane]: TcpLaneStats };
}

export interface TcpTransportStats {
  readonly peers: readonly TcpPeerStats[];
  /** TCP connections the listener took (before any handshake). */
  readonly connectionsAccepted: number;
  /** Inbound handshakes refused, from any sender (known or not). */
  readonly connectionsRefused: number;
  /** Connections, either direction, closed for bytes that were not frames. */
  readonly connectionsCorrupt: number;
  /** Inbound connections dropped on accept because `inboundConnectionsMax` were open. */
  readonly connectionsDropped: number;
}

/** The names of the counters behind {@link TcpLaneStats} (all but the queue and connection state). */
const LANE_COUNTER_NAMES = [
  'messagesSent',
  'bytesSent',
  'messagesDropped',
  'bytesDropped',
  'sendFailures',
  'connects',
  'accepts',
  'refusalsReceived',
  'refusalsSent',
  'framesReceived',
  'messagesReceived',
  'bytesReceived',
] as const satisfies readonly (keyof TcpLaneStats)[];

/** The mutable counters of one peer's lane. */
export type LaneCounters = { -readonly [K in (typeof LANE_COUNTER_NAMES)[number]]: number };

/** A lane's counters, all zero. */
export function newLaneCounters(): LaneCounters {
  return Object.fromEntries(LANE_COUNTER_NAMES.map((name) => [name, 0])) as LaneCounters;
}
