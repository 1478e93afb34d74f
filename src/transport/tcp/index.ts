/** The TCP peer transport: its public names (tcp-transport.ts describes it; frame.ts and handshake.ts specify the wire). */
export type { TcpLogEntry, TcpLogKind, TcpLogLevel } from './context.ts';
export { TcpTransportError, TcpTransportErrorCode } from './errors.ts';
export {
  FRAME_BYTES_LIMIT,
  FRAME_BYTES_MIN,
  FRAME_OVERHEAD_BYTES,
  FrameDecoder,
  FrameType,
  MESSAGE_PREFIX_BYTES,
  batchProblem,
  encodeBatchFrame,
  encodeFrame,
  forEachBatchMessage,
  type FrameHandler,
} from './frame.ts';
export {
  HANDSHAKE_MAGIC,
  PROTOCOL_VERSION,
  TCP_LANES,
  clusterIdOf,
  decodeHandshake,
  decodeRefusal,
  encodeHandshake,
  encodeRefusal,
  type Handshake,
  type RefusalReason,
  type TcpLane,
} from './handshake.ts';
export { redialDelayMs, type PeerAddress } from './outbound.ts';
export { TCP_TRANSPORT_SETTINGS, messageBytesMaxOf, resolveTcpTransportSettings, type TcpTransportSettings, type TcpTransportSettingsInput } from './settings.ts';
export type { TcpLaneStats, TcpPeerStats, TcpTransportStats } from './stats.ts';
export { TcpTransport, type TcpTransportOptions } from './tcp-transport.ts';
