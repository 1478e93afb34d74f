/**
 * ringraft: a Raft consensus engine and replicated key-value store for Node.js.
 *
 * The embedding API is `createCluster()`; the pure Raft core, the storage and the
 * simulator are reachable through their own layers for those who build on them.
 *
 * Stability: the embedding API exported here is the package's supported surface;
 * `ringraft/core`, `ringraft/storage` and `ringraft/sim` are experimental until 1.0.
 *
 * @module ringraft
 */
export { Cluster, connectEndpoint, createCluster, defaultNodeThreads, KvClient, CLUSTER_NODES_MAX, WATCH_BUFFER_MAX } from './cluster/index.ts';
export type {
  Bytes,
  CallOptions,
  ClusterNodeStatus,
  ClusterOptions,
  ClusterStatus,
  EndpointDescriptor,
  Election,
  GetOptions,
  KeepAliveOptions,
  Leader,
  LockHandle,
  LockOptions,
  LeaseStatus,
  PutOptions,
  RangeOptions,
  RangeSpec,
  RemoteEndpoint,
  TxnCompareSpec,
  TxnOpSpec,
  TxnSpec,
  WatchEvent,
  WatchOptions,
} from './cluster/index.ts';
export { AssertionError, ErrorCode, RingraftError } from './base/index.ts';
export { connect, NetworkClient, type ConnectOptions, type EndpointState } from './client/index.ts';
export { createNode, type CreateNodeOptions, type RingraftNode } from './server/index.ts';
export { NotLeaderError, RAFT_SETTINGS, formatTraceEvent, type RaftSettingsInput, type TraceEvent } from './core/index.ts';
export { NODE_CHANNEL, NODE_SETTINGS, RAFT_CHANNEL, type NodeEvent, type NodeSettingsInput } from './runtime/index.ts';
export type { ReadConsistency } from './runtime/index.ts';
export { KV_KEY_BYTES_MAX, KV_LEASE_TTL_MS_MAX, KV_LEASE_TTL_MS_MIN, KV_RANGE_BYTES_MAX, KV_RANGE_ENTRIES_MAX, KV_TXN_COMPARES_MAX, KV_TXN_OPS_MAX, KV_TXN_READ_BYTES_MAX, KV_VALUE_BYTES_MAX } from './kv/index.ts';
export type { KvRangeEntry, KvRangeResult, KvTxnResult, SnapshotChunks, StateMachine, StateMachineFactory, TxnGetEntry, TxnOpResult } from './kv/index.ts';
