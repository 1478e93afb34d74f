export {
  decodeReply,
  decodeReplyAt,
  decodeRequest,
  encodedReplyBytes,
  encodedRequestBytes,
  ProtocolError,
  REQUEST_HEADER_BYTES,
  REQUEST_KIND_WRITE,
  writeReply,
  writeReplyTo,
  writeRequest,
  writeRequestTo,
  WRITE_REQUEST_BYTES_MAX,
} from './client-protocol.ts';
export type { ClientReply, ClientRequest, ReadConsistency } from './client-protocol.ts';
export {
  NodeHost,
  SNAPSHOT_EVERY_ENTRIES_DEFAULT,
  SNAPSHOT_EVERY_BYTES_DEFAULT,
  SNAPSHOT_RETAIN_BYTES_DEFAULT,
  SNAPSHOT_RETAIN_ENTRIES_DEFAULT,
  SNAPSHOT_RETAIN_ENTRIES_MAX,
  WATCH_HISTORY_MAX_DEFAULT,
  WATCH_BYTES_MAX,
  WATCHES_MAX,
  WRITE_BATCH_BYTES_MAX_DEFAULT,
} from './node-host.ts';
export { WATCH_CHANGE_OVERHEAD_BYTES, WATCH_HISTORY_BYTES_MAX_DEFAULT, WATCH_HISTORY_CHANGES_MAX_DEFAULT, WatchHistory } from './watch-history.ts';
export type { HostHooks, HostSink, HostStorage, NodeHostOptions, NodeStatus } from './node-host.ts';
export { MemoryHostStorage } from './memory-host-storage.ts';
export { Outbox } from './outbox.ts';
export type { FrameCodec } from './outbox.ts';
export { INFLIGHT_BYTES_MAX_DEFAULT, PEER_QUEUE_BYTES_MAX_DEFAULT, REPLY_QUEUE_BYTES_MAX_DEFAULT, signalControl } from './worker-protocol.ts';
export type { ClientLinkData, ControlReply, ControlRequest, NodeSettings, NodeWorkerData, PeerLink } from './worker-protocol.ts';

/**
 * The worker entry file, for `new Worker(...)`. Worker threads run JavaScript, so code
 * loaded from the TypeScript sources (the tests) starts the built worker.
 */
export const NODE_WORKER_URL = import.meta.url.endsWith('.ts')
  ? new URL('../../dist/src/runtime/node-worker.js', import.meta.url)
  : new URL('./node-worker.js', import.meta.url);
