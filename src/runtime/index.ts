export {
  decodeReply,
  decodeReplyAt,
  decodeRequest,
  encodedReplyBytes,
  encodedRequestBytes,
  ProtocolError,
  QUERY_BYTES_MAX,
  READ_REPLY_VALUE_BYTES_MAX,
  REQUEST_HEADER_BYTES,
  REQUEST_KIND_WRITE,
  REQUEST_KIND_ADMIN,
  REQUEST_KIND,
  isForwardedToLeader,
  REPLY_KIND,
  CONSISTENCY_TAG,
  ERROR_REPLY_BYTES,
  ADMIN_BODY_BYTES_MAX,
  writeReply,
  writeReplyTo,
  writeRequest,
  writeRequestTo,
  WRITE_REQUEST_BYTES_MAX,
} from './client-protocol.ts';
export type { AsciiKey, ClientReply, ClientRequest, LeaseOp, OutgoingRequest, ReadConsistency, WireConsistency } from './client-protocol.ts';
export { NodeHost } from './node-host.ts';
export { WATCH_BYTES_MAX, WATCHES_MAX } from './watch-set.ts';
export {
  hasRaftSubscribers,
  NODE_CHANNEL,
  publishForwarded,
  publishNodeEvent,
  publishRaftEvent,
  publishingTraceSink,
  RAFT_CHANNEL,
  type NodeEvent,
} from './diagnostics.ts';
export { peerLaneOf } from './peer-lanes.ts';
export { NODE_SETTINGS, SNAPSHOT_RETAIN_ENTRIES_MAX, resolveNodeSettings, type NodeSettings, type NodeSettingsInput } from './settings.ts';
export { WATCH_CHANGE_OVERHEAD_BYTES, WatchHistory } from './watch-history.ts';
export type { HostHooks, HostSink, HostStorage, NodeHostOptions, NodeStatus } from './node-host.ts';
export { Outbox } from './outbox.ts';
export type { FrameCodec } from './outbox.ts';
export { plainError, signalControl } from './worker-protocol.ts';
export { checkedMachine, importFactory, resolveStateMachineSpec, type StateMachineInput } from './state-machine-module.ts';
export { LATENCY_BUCKETS_SECONDS, LatencyHistogram, type LatencySnapshot } from './latency.ts';
export type { NodeTimings } from './worker-protocol.ts';
export type { ClientLinkData, ControlReply, ControlRequest, ForwardedDiagnostic, NodeThreadData, NodeWorkerData, PeerLink, PlainError, StateMachineSpec, ThreadRequest, WorkerSettings } from './worker-protocol.ts';

/**
 * The worker entry file, for `new Worker(...)`. Worker threads run JavaScript, so code
 * loaded from the TypeScript sources (the tests) starts the built worker.
 */
export const NODE_WORKER_URL = import.meta.url.endsWith('.ts')
  ? new URL('../../dist/src/runtime/node-worker.js', import.meta.url)
  : new URL('./node-worker.js', import.meta.url);
export { LeaseKeeper, type LeaseTimes } from './lease-keeper.ts';
