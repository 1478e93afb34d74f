export { Cluster, createCluster } from './cluster.ts';
export type { ClusterNodeStatus, ClusterStatus } from './cluster.ts';
export { KvClient, WATCH_BUFFER_MAX } from './client.ts';
export type { Bytes, CallOptions, GetOptions, WatchEvent, WatchOptions } from './client.ts';
export { CLUSTER_NODES_MAX } from './options.ts';
export type { ClusterOptions } from './options.ts';
