/** The TCP peer transport and the client port: their public names (tcp-transport.ts and client-port.ts describe them; frame.ts, handshake.ts and client-handshake.ts specify the wire). */
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
export {
  CLIENT_FRAME_HEADER_BYTES,
  CLIENT_HANDSHAKE_MAGIC,
  CLIENT_PROTOCOL_VERSION,
  clientBatchProblem,
  decodeClientHandshake,
  decodeClientRefusal,
  decodeGoaway,
  encodeClientHandshake,
  encodeClientRefusal,
  encodeGoaway,
  type ClientHandshake,
  type ClientRefusalReason,
} from './client-handshake.ts';
export { ClientPortError, ClientPortErrorCode } from './client-port-errors.ts';
export { CLIENT_PORT_SETTINGS, resolveClientPortSettings, type ClientPortSettings, type ClientPortSettingsInput } from './client-port-settings.ts';
export {
  ClientPortServer,
  type ClientConnectionHandle,
  type ClientPortAddress,
  type ClientPortLogEntry,
  type ClientPortLogKind,
  type ClientPortServerOptions,
} from './client-port.ts';
export { ClientPortConnection, type ClientPortConnectOptions } from './client-connection.ts';
export { certificateNamesNode, nodeCertificateName, TlsMaterial, type TlsFiles } from './tls.ts';
