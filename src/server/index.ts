/** The `serve` layer: one ringraft node running as its own process over TCP: its configuration, its log, the node server. */
export {
  CLUSTER_TOKEN_CHARS_MAX,
  CONFIG_FILE_BYTES_MAX,
  LOG_LEVELS,
  PEER_MESSAGE_HEADROOM_BYTES,
  SERVE_SETTINGS,
  parseInitialCluster,
  readServeConfigFile,
  resolveServeConfig,
  type LogLevel,
  type ServeConfig,
  type ServeConfigInput,
  type ServeConfigKey,
  type ServeConfigNames,
} from './config.ts';
export { ServeConfigError, ServeConfigErrorCode, ServeConfigErrorReason } from './errors.ts';
export { formatHostPort, isWildcardHost, parseHostPort, type HostPort } from './host-port.ts';
export { SERVE_USAGE, parseServeArgs, type ServeArgs } from './serve-args.ts';
export { createLogger, type LogFields, type Logger } from './log.ts';
export { DRAIN_TIMEOUT_MS, NodeServer, type NodeServerStats } from './node-server.ts';
export { REQUEST_QUEUE_BYTES_MAX } from './client-bridge.ts';
export { MetricsServer, type MetricsSnapshot, type MetricsSource } from './metrics.ts';
export { runAdmin, type AdminStatus, type AdminTarget } from './admin.ts';
export { createNode, type CreateNodeOptions, type RingraftNode } from './create-node.ts';
