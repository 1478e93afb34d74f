export {
  Doorbell,
  RING_CAPACITY_BYTES_MAX,
  RING_CAPACITY_BYTES_MIN,
  RING_CONTROL_BYTES,
  RING_FRAME_HEADER_BYTES,
  RingConsumer,
  RingError,
  RingErrorCode,
  RingProducer,
  createRing,
  ringFrameBytesMax,
} from './ring.ts';
export type { RingProducerOptions, RingReservation } from './ring.ts';
// The TCP peer transport (tcp/tcp-transport.ts). Its wire helpers (frames, handshakes) stay in
// tcp/index.ts, for its tests and tools; a host needs only these.
export {
  TCP_LANES,
  TCP_TRANSPORT_SETTINGS,
  TcpTransport,
  TcpTransportError,
  TcpTransportErrorCode,
  clusterIdOf,
  messageBytesMaxOf,
  resolveTcpTransportSettings,
} from './tcp/index.ts';
export type {
  PeerAddress,
  RefusalReason,
  TcpLane,
  TcpLaneStats,
  TcpLogEntry,
  TcpLogKind,
  TcpLogLevel,
  TcpPeerStats,
  TcpTransportOptions,
  TcpTransportSettings,
  TcpTransportSettingsInput,
  TcpTransportStats,
} from './tcp/index.ts';
