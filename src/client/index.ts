/** The network client: `connect` to `ringraft serve` processes over their client ports. */
export { adminCall } from './admin-call.ts';
export { connect, NetworkClient, type ConnectOptions } from './connect.ts';
export { parseEndpoint, type EndpointAddress } from './endpoint-address.ts';
export type { EndpointState } from './network-endpoint.ts';
export type { TlsFiles } from '../transport/index.ts';
export type { TxnSpec } from '../cluster/index.ts';
