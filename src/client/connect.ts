/**
 * `connect({ endpoints, clusterToken })`: a key-value client of a cluster of `ringraft serve`
 * processes, with the API and guarantees of `cluster.client()` (cluster/client.ts: put, get
 * at each consistency, delete, cas, watch, exactly-once writes through sessions, `signal` and
 * `timeoutMs` on every call, typed errors) over the client port, failing over between
 * endpoints (network-endpoint.ts).
 *
 * ```ts
 * const kv = await connect({ endpoints: ['10.0.0.1:7101', '10.0.0.2:7101'], clusterToken: 'orders-prod' });
 * await kv.put('a', '1');
 * await kv.close();
 * ```
 */
import { checkKnown, invalidArgument, resolveSettings } from '../base/index.ts';
import { CLIENT_SETTINGS, KvClient, type ClientSettingsInput } from '../cluster/index.ts';
import { clusterIdOf, resolveClientPortSettings, type ClientPortSettingsInput, type TlsFiles } from '../transport/index.ts';
import { parseEndpoint, type EndpointAddress } from './endpoint-address.ts';
import { NetworkEndpoint, type EndpointState } from './network-endpoint.ts';

/** What {@link connect} needs: the endpoints and the cluster's token; the rest has defaults. */
export interface ConnectOptions {
  /** The nodes' client ports, `HOST:PORT` with HOST an IP address; at least one, each once. */
  readonly endpoints: readonly string[];
  /** The cluster's token, as its nodes were started with (`--cluster-token`): a node of another cluster refuses the connection. */
  readonly clusterToken: string;
  /** `requestTimeoutMs` (default 5,000) and `requestsInFlightMax` (default 65,536), as for `createCluster`. */
  readonly client?: ClientSettingsInput;
  /** The connections' own settings (frames, queues, keepalive, idle timeout); see `CLIENT_PORT_SETTINGS`. */
  readonly clientPort?: ClientPortSettingsInput;
  /** The cluster's election timeout as the client should assume it; an attempt at one node waits four before trying another. Default 1,000 ms. */
  readonly electionTimeoutMs?: number;
  /** How long `connect` waits for a first endpoint to answer. Default: the client port's idle timeout (5,000 ms). */
  readonly connectTimeoutMs?: number;
  /** TLS: `caFile`, the CA the nodes' certificates chain to, and `certFile` and `keyFile` if the nodes require a client certificate. */
  readonly tls?: TlsFiles;
}

const OPTION_NAMES = { endpoints: 0, clusterToken: 0, client: 0, clientPort: 0, electionTimeoutMs: 0, connectTimeoutMs: 0, tls: 0 };
const ELECTION_TIMEOUT_MS_DEFAULT = 1_000;

/** A `KvClient` over TCP, with what a network client adds: its endpoints, and `close()`. */
export class NetworkClient extends KvClient {
  /** A client over `endpoint`'s connections. Use {@link connect}, which makes the endpoint and waits for a node to answer. */
  constructor(private readonly endpoint: NetworkEndpoint) {
    super(endpoint);
  }

  /** Each endpoint: the node behind it (once it answered), whether it is up, what it has in flight, why it is down. */
  endpoints(): EndpointState[] {
    return this.endpoint.states();
  }

  /** Fails what is in flight with CLOSED and closes every connection; nothing of the client keeps the process alive after. */
  close(): Promise<void> {
    return this.endpoint.close();
  }
}

/**
 * Connects to the endpoints; resolves once one answers (the others are dialled meanwhile and
 * redialled while down). Rejects with INVALID_ARGUMENT for a bad option (naming it),
 * HANDSHAKE_REFUSED when every endpoint refused (another cluster's token), CONNECTION_FAILED
 * when none could be reached, TIMEOUT when none answered in time; each endpoint's reason is
 * in the message.
 */
export async function connect(options: ConnectOptions): Promise<NetworkClient> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalidArgument('connect options must be an object');
  checkKnown(OPTION_NAMES, options);
  if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) throw invalidArgument('endpoints must be a non-empty array of HOST:PORT strings');
  const addresses: [string, EndpointAddress][] = [];
  const seen = new Set<string>();
  options.endpoints.forEach((text, i) => {
    const address = parseEndpoint(text, `endpoints[${i}]`);
    const key = `${address.host}:${address.port}`;
    if (seen.has(key)) throw invalidArgument(`endpoints lists ${text} twice`);
    seen.add(key);
    addresses.push([text, address]);
  });
  if (typeof options.clusterToken !== 'string' || options.clusterToken.length === 0) throw invalidArgument('clusterToken must be a non-empty string');
  const client = resolveSettings(CLIENT_SETTINGS, options.client, 'client.');
  const clientPort = resolveClientPortSettings(options.clientPort, 'clientPort.');
  const electionTimeoutMs = positiveMs(options.electionTimeoutMs, 'electionTimeoutMs') ?? ELECTION_TIMEOUT_MS_DEFAULT;
  const connectTimeoutMs = positiveMs(options.connectTimeoutMs, 'connectTimeoutMs') ?? clientPort.idleTimeoutMs;
  const endpoint = new NetworkEndpoint(addresses, {
    clusterId: clusterIdOf(options.clusterToken),
    requestTimeoutMs: client.requestTimeoutMs,
    requestsInFlightMax: client.requestsInFlightMax,
    electionTimeoutMs,
    clientPort: options.clientPort,
    tls: options.tls,
  });
  try {
    await endpoint.start(connectTimeoutMs);
  } catch (error) {
    await endpoint.close();
    throw error;
  }
  return new NetworkClient(endpoint);
}

function positiveMs(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!(typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 2 ** 31 - 1)) throw invalidArgument(`${name} must be an integer number of milliseconds in [1, 2^31 - 1], got ${String(value)}`);
  return value;
}
