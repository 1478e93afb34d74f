export { Cluster, createCluster } from './cluster.ts';
export type { ClusterNodeStatus, ClusterSeams, ClusterStatus, EndpointDescriptor } from './cluster.ts';
export { connectEndpoint, type RemoteEndpoint } from './remote.ts';
export { KvClient, WATCH_BUFFER_MAX } from './client.ts';
export type { Bytes, CallOptions, GetOptions, WatchEvent, WatchOptions } from './client.ts';
export { CLUSTER_NODES_MAX } from '../base/index.ts';
export { CLIENT_SETTINGS, REQUESTS_IN_FLIGHT_MAX, type ClientSettings, type ClientSettingsInput } from './options.ts';
export type { ClusterOptions } from './options.ts';
