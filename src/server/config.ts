/**
 * The configuration of `ringraft serve`, the command that runs one node as its own process,
 * talking to its peers and clients over TCP: what it holds, its defaults, and its checks,
 * done before anything is opened or bound. The settings of the nested groups are defined once
 * in the layers that use them (base/settings.ts explains how) and are only gathered here:
 * `raft` (core/settings.ts), `node` (runtime/settings.ts; `tickMs` and `fsync` among them),
 * `peerTransport` (transport/tcp/settings.ts) and `clientPort`
 * (transport/tcp/client-port-settings.ts).
 *
 * The configuration file (`--config FILE`) is one JSON object with the keys below, the
 * command's flags in camelCase, and the nested groups as objects; every key is optional in the
 * file, flags override the file's values, and the keys marked required must come from one or
 * the other. An unknown key or a bad value, at any level, is an INVALID_ARGUMENT naming its
 * path (`raft.electionTimeoutTicks`, `initialCluster`).
 *
 * | key             | flag                | value                                                        |
 * | --------------- | ------------------- | ------------------------------------------------------------ |
 * | `id`            | `--id`              | this node's id, a positive integer (required)                |
 * | `dataDir`       | `--data-dir`        | the node's directory, a non-empty string (required)          |
 * | `listenPeer`    | `--listen-peer`     | `HOST:PORT` for peers (required)                             |
 * | `listenClient`  | `--listen-client`   | `HOST:PORT` for clients (required)                           |
 * | `listenMetrics` | `--listen-metrics`  | `HOST:PORT` for metrics; none if left out                    |
 * | `listenResp`    | `--listen-resp`     | `HOST:PORT` for Redis clients (RESP, server/resp-port.ts); none if left out |
 * | `respPassword`  | `--resp-password`   | the password Redis clients give with AUTH (or HELLO ... AUTH); none: no AUTH |
 * | `respMoved`     | `--resp-moved`      | `ID=HOST:PORT,...`, every node's RESP address: a node that does not lead answers what needs the leader `-MOVED 0 HOST:PORT` (the leader's) instead of forwarding it |
 * | `initialCluster`| `--initial-cluster` | `ID=HOST:PORT,...`, every node's peer address (required)     |
 * | `clusterToken`  | `--cluster-token`   | a non-empty string naming the cluster (required)             |
 * | `join`          | `--join`            | true for a node added to a running cluster; default false    |
 * | `logLevel`      | `--log-level`       | `debug`, `info`, `warn` or `error`; default `info`           |
 * | `tlsCert`, `tlsKey`, `tlsCa` | `--tls-cert`, `--tls-key`, `--tls-ca` | PEM files: this node's certificate (its CN or a DNS name `node-<id>`) and key, and the cluster's CA; all three or none. With them, peers talk mutual TLS and clients TLS |
 * | `clientCertRequired` | `--client-cert-required` | clients must present a certificate from the CA; default false (needs TLS) |
 * | `raft`          |                     | Raft settings, an object                                     |
 * | `node`          |                     | the node's host settings, an object                          |
 * | `peerTransport` |                     | TCP peer transport settings, an object                       |
 * | `clientPort`    |                     | client port settings, an object                              |
 *
 * A host is an IP literal, never a name, and an IPv6 one is bracketed (`[::1]:7000`). The
 * node's own id must be in `initialCluster`, with `listenPeer` as its address; a node that
 * listens on every interface (`0.0.0.0` or `::`) lists the address its peers dial, on the
 * same port. For example (`ringraft serve --config node1.json --log-level debug`):
 *
 * ```json
 * {
 *   "id": 1,
 *   "dataDir": "/var/lib/ringraft/node1",
 *   "listenPeer": "10.0.0.1:7001",
 *   "listenClient": "0.0.0.0:7101",
 *   "listenMetrics": "127.0.0.1:9101",
 *   "initialCluster": "1=10.0.0.1:7001,2=10.0.0.2:7001,3=[2001:db8::3]:7001",
 *   "clusterToken": "orders-prod",
 *   "logLevel": "info",
 *   "raft": { "electionTimeoutTicks": 20, "appendBytesMax": 524288 },
 *   "node": { "tickMs": 20, "fsync": "always" },
 *   "peerTransport": { "idleTimeoutMs": 3000 },
 *   "clientPort": { "connectionsMax": 4096 }
 * }
 * ```
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { boolean, checkKnown, choice, CLUSTER_NODES_MAX, integer, RingraftError, resolveSettings, type Setting } from '../base/index.ts';
import { resolveRaftSettings, type RaftSettings, type RaftSettingsInput } from '../core/index.ts';
import { REQUEST_HEADER_BYTES, resolveNodeSettings, resolveStateMachineSpec, WRITE_REQUEST_BYTES_MAX, type NodeSettings, type NodeSettingsInput, type StateMachineInput, type StateMachineSpec } from '../runtime/index.ts';
import {
  clusterIdOf,
  messageBytesMaxOf,
  resolveClientPortSettings,
  resolveTcpTransportSettings,
  type ClientPortSettings,
  type ClientPortSettingsInput,
  type TcpTransportSettings,
  type TcpTransportSettingsInput,
} from '../transport/index.ts';
import { ServeConfigError, ServeConfigErrorReason } from './errors.ts';
import { formatHostPort, isWildcardHost, parseHostPort, type HostPort } from './host-port.ts';
import { jsonErrorPosition } from './json-position.ts';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The top-level settings that have a default, in the schema of base/settings.ts. */
export const SERVE_SETTINGS = {
  /** A node added to a running cluster (by a membership change) starts with `join`: it waits to hear from the cluster instead of bootstrapping it. Default false. */
  join: boolean(false),
  /** The least severe log lines written. Default `info`. */
  logLevel: choice(LOG_LEVELS, 'info'),
} as const;

/** The range of a node id (a u64 on the wire that must be a safe integer); it has no default: `id` is required. */
const NODE_ID = integer(1, 1, Number.MAX_SAFE_INTEGER);
/** Longest cluster token, in characters: it is a name, not a document. */
export const CLUSTER_TOKEN_CHARS_MAX = 1_024;
/** Largest configuration file: checked before it is read. */
export const CONFIG_FILE_BYTES_MAX = 1 << 20;
/** Longest RESP password, in characters. */
const RESP_PASSWORD_CHARS_MAX = 1024;
/**
 * Room in a peer message beyond the entry or snapshot bytes it carries: the message header,
 * the entries' headers and the varints of the codec. Generous on purpose: it is a bound that
 * must hold, not an estimate.
 */
export const PEER_MESSAGE_HEADROOM_BYTES = 64 << 10;

/** What the operator writes: flags and file keys alike (see the module comment); each top-level value is checked when resolved. */
export interface ServeConfigInput {
  /** This node's id, a positive integer (required). */
  readonly id?: number;
  /** The node's directory, a non-empty string (required): its lock, identity and WAL. */
  readonly dataDir?: string;
  /** `HOST:PORT` to listen on for peers (required): this node's address in `initialCluster`, or a wildcard host on its port. */
  readonly listenPeer?: string;
  /** `HOST:PORT` to listen on for clients (required); port 0 takes a free port. */
  readonly listenClient?: string;
  /** `HOST:PORT` to serve metrics on; none if left out. */
  readonly listenMetrics?: string;
  /** `HOST:PORT` where Redis clients connect (the RESP port); none if left out. */
  readonly listenResp?: string;
  /** The password Redis clients must give with AUTH before anything else; none if left out. */
  readonly respPassword?: string;
  /** Every node's RESP address, `ID=HOST:PORT,...`: given, a follower sends Redis clients to the leader with `-MOVED` instead of forwarding for them. */
  readonly respMoved?: string;
  /** Every node's peer address, `ID=HOST:PORT,...` (required): 1 to CLUSTER_NODES_MAX entries, this node's among them. */
  readonly initialCluster?: string;
  /** The cluster's name, a non-empty string of at most 1,024 characters (required): nodes and clients with another are refused. */
  readonly clusterToken?: string;
  /** A node added to a running cluster waits to hear from it instead of bootstrapping it. Default false. */
  readonly join?: boolean;
  /** The least severe log lines written: `debug`, `info`, `warn` or `error`. Default `info`. */
  readonly logLevel?: LogLevel;
  /** PEM file of this node's certificate (its CN or a DNS name `node-<id>`). TLS takes `tlsCert`, `tlsKey` and `tlsCa`, all three or none: then peers talk mutual TLS, and clients TLS. */
  readonly tlsCert?: string;
  /** PEM file of this node's private key (TLS, with `tlsCert` and `tlsCa`). */
  readonly tlsKey?: string;
  /** PEM file of the cluster's CA (TLS, with `tlsCert` and `tlsKey`). */
  readonly tlsCa?: string;
  /** Clients must present a certificate from the CA; it needs TLS. Default false. */
  readonly clientCertRequired?: boolean;
  /** The Raft settings, by the names and ranges of `RAFT_SETTINGS`. */
  readonly raft?: RaftSettingsInput;
  /** The node's host settings (`tickMs`, `fsync`, snapshots, queues), by the names and ranges of `NODE_SETTINGS`. */
  readonly node?: NodeSettingsInput;
  /** The TCP peer transport's settings: queues, frames, timeouts, keepalive and redial back-off. */
  readonly peerTransport?: TcpTransportSettingsInput;
  /** The client port's settings: connections, requests in flight, queues, frames, timeouts and keepalive. */
  readonly clientPort?: ClientPortSettingsInput;
  /** A state machine of the cluster's own, beside the store: its module (a path from the current directory, or a file URL) and its factory's options. */
  readonly stateMachine?: StateMachineInput;
}
export type ServeConfigKey = keyof ServeConfigInput;

/** The configuration of one `serve` process, checked, with every default filled in. */
export interface ServeConfig {
  readonly id: number;
  readonly dataDir: string;
  readonly listenPeer: HostPort;
  readonly listenClient: HostPort;
  readonly listenMetrics: HostPort | undefined;
  /** The RESP port's address, if the node speaks Redis. */
  readonly listenResp: HostPort | undefined;
  readonly respPassword: string | undefined;
  /** Every node's RESP address by id, if followers answer `-MOVED` (the RESP port's redirect mode); undefined: they forward. */
  readonly respMoved: ReadonlyMap<number, HostPort> | undefined;
  /** Every node's peer address by id, in ascending id order; holds `id`. At most CLUSTER_NODES_MAX entries, no port 0, no wildcard host, no address twice. */
  readonly initialCluster: ReadonlyMap<number, HostPort>;
  readonly clusterToken: string;
  /** The id the TCP handshakes carry, derived from `clusterToken` (`clusterIdOf`). */
  readonly clusterId: bigint;
  readonly join: boolean;
  readonly logLevel: LogLevel;
  /** TLS on both ports, or undefined for plain TCP. */
  readonly tls: { readonly certFile: string; readonly keyFile: string; readonly caFile: string; readonly clientCertRequired: boolean } | undefined;
  readonly raft: RaftSettings;
  readonly node: NodeSettings;
  readonly peerTransport: TcpTransportSettings;
  readonly clientPort: ClientPortSettings;
  /** The cluster's own state machine: its module's href and its factory's options. */
  readonly stateMachine: StateMachineSpec | undefined;
}

/** Every top-level key, with `true` if it is required: checkKnown's schema for the top level. */
const KEYS: { readonly [K in ServeConfigKey]-?: boolean } = {
  id: true,
  dataDir: true,
  listenPeer: true,
  listenClient: true,
  listenMetrics: false,
  listenResp: false,
  respPassword: false,
  respMoved: false,
  initialCluster: true,
  clusterToken: true,
  join: false,
  logLevel: false,
  tlsCert: false,
  tlsKey: false,
  tlsCa: false,
  clientCertRequired: false,
  raft: false,
  node: false,
  peerTransport: false,
  clientPort: false,
  stateMachine: false,
};

/** How a key is named in messages: the key itself by default; `parseServeArgs` names the flag a value came from. */
export type ServeConfigNames = (key: ServeConfigKey) => string;

/**
 * Checks `input` and fills in the defaults. An unknown key or a bad value is an
 * INVALID_ARGUMENT naming it (through `nameOf`); a missing required key, a malformed
 * address or initial cluster, or settings that do not go together is a
 * {@link ServeConfigError} with its reason. Reads and binds nothing.
 */
export function resolveServeConfig(input: ServeConfigInput, nameOf: ServeConfigNames = (key) => key): ServeConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new ServeConfigError(ServeConfigErrorReason.BAD_VALUE, 'the configuration must be an object');
  checkKnown(KEYS, input);
  for (const key of Object.keys(KEYS) as ServeConfigKey[]) {
    if (KEYS[key] && input[key] === undefined) throw new ServeConfigError(ServeConfigErrorReason.MISSING, `${nameOf(key)} is required`);
  }
  const id = settingValue(NODE_ID, input.id, nameOf('id')) as number;
  const listenPeer = parseHostPort(input.listenPeer!, nameOf('listenPeer'));
  const clusterToken = nonEmptyString(input.clusterToken, nameOf('clusterToken'), CLUSTER_TOKEN_CHARS_MAX);
  const config: ServeConfig = {
    id,
    dataDir: nonEmptyString(input.dataDir, nameOf('dataDir'), Infinity),
    listenPeer,
    listenClient: parseHostPort(input.listenClient!, nameOf('listenClient')),
    listenMetrics: input.listenMetrics === undefined ? undefined : parseHostPort(input.listenMetrics, nameOf('listenMetrics')),
    listenResp: input.listenResp === undefined ? undefined : parseHostPort(input.listenResp, nameOf('listenResp')),
    respPassword: input.respPassword === undefined ? undefined : nonEmptyString(input.respPassword, nameOf('respPassword'), RESP_PASSWORD_CHARS_MAX),
    respMoved: input.respMoved === undefined ? undefined : parseInitialCluster(input.respMoved, nameOf('respMoved')),
    initialCluster: parseInitialCluster(input.initialCluster!, nameOf('initialCluster')),
    clusterToken,
    clusterId: clusterIdOf(clusterToken),
    join: settingValue(SERVE_SETTINGS.join, input.join, nameOf('join')) as boolean,
    logLevel: settingValue(SERVE_SETTINGS.logLevel, input.logLevel, nameOf('logLevel')) as LogLevel,
    tls: resolveTls(input, nameOf),
    raft: resolveRaftSettings(input.raft, `${nameOf('raft')}.`),
    node: resolveNodeSettings(input.node, `${nameOf('node')}.`),
    peerTransport: resolveTcpTransportSettings(input.peerTransport, `${nameOf('peerTransport')}.`),
    clientPort: resolveClientPortSettings(input.clientPort, `${nameOf('clientPort')}.`),
    stateMachine: input.stateMachine === undefined ? undefined : resolveStateMachineSpec(input.stateMachine, nameOf('stateMachine')),
  };
  checkOwnEntry(config, nameOf);
  checkListeners(config, nameOf);
  checkFrames(config);
  checkRedial(config);
  return config;
}

/**
 * Parses `ID=HOST:PORT,ID=HOST:PORT,...`: one entry per node, each a positive integer id and
 * the address its peers dial (so no port 0 and no wildcard host); ids and addresses unique;
 * 1 to CLUSTER_NODES_MAX entries. Returns the addresses in ascending id order.
 */
export function parseInitialCluster(text: string, name = 'initialCluster'): ReadonlyMap<number, HostPort> {
  if (typeof text !== 'string' || text.length === 0) throw clusterError(`${name} must be a non-empty string ID=HOST:PORT,...`);
  const entries = text.split(',');
  if (entries.length > CLUSTER_NODES_MAX) throw clusterError(`${name} lists ${entries.length} nodes; a cluster has at most ${CLUSTER_NODES_MAX}`);
  const byId = new Map<number, HostPort>();
  const seen = new Map<string, number>();
  for (const entry of entries) {
    const m = /^([0-9]{1,16})=(.*)$/s.exec(entry);
    const id = m === null ? NaN : Number(m[1]);
    if (!Number.isSafeInteger(id) || id < 1) throw clusterError(`${name} entry ${JSON.stringify(entry)} is not ID=HOST:PORT with ID a positive integer`);
    const address = parseHostPort(m![2]!, `${name} entry ${id}`);
    if (address.port === 0) throw new ServeConfigError(ServeConfigErrorReason.ADDRESS_PORT, `${name} entry ${id}: port 0 cannot be dialled`);
    if (isWildcardHost(address.host)) throw clusterError(`${name} entry ${id}: ${address.host} cannot be dialled; list the address peers reach node ${id} at`);
    if (byId.has(id)) throw clusterError(`${name} lists node ${id} twice`);
    const shown = formatHostPort(address);
    if (seen.has(shown)) throw clusterError(`${name} gives nodes ${seen.get(shown)} and ${id} the same address ${shown}`);
    byId.set(id, address);
    seen.set(shown, id);
  }
  return new Map([...byId].sort(([a], [b]) => a - b));
}

/**
 * The JSON object in the configuration file at `path`, unchecked (resolveServeConfig checks
 * it). A file that cannot be read, is larger than CONFIG_FILE_BYTES_MAX, is not JSON (the
 * message gives its line and column) or holds no object is a {@link ServeConfigError}
 * naming the file.
 */
export function readServeConfigFile(path: string): ServeConfigInput {
  let text: string;
  try {
    const bytes = statSync(path).size;
    if (bytes > CONFIG_FILE_BYTES_MAX) throw new ServeConfigError(ServeConfigErrorReason.FILE_UNREADABLE, `${path}: ${bytes} bytes; a configuration file has at most ${CONFIG_FILE_BYTES_MAX}`);
    text = readFileSync(path, 'utf8').replace(/^\uFEFF/, '');
  } catch (error) {
    if (error instanceof ServeConfigError) throw error;
    const e = error as NodeJS.ErrnoException;
    throw new ServeConfigError(ServeConfigErrorReason.FILE_UNREADABLE, `cannot read ${path}: ${e.code ?? e.message}`, { cause: error });
  }
  const at = jsonErrorPosition(text);
  if (at !== undefined) {
    const found = at.offset === text.length ? 'the file ends' : `unexpected ${JSON.stringify(text[at.offset])}`;
    throw new ServeConfigError(ServeConfigErrorReason.FILE_NOT_JSON, `${path}:${at.line}:${at.column}: not valid JSON: ${found} at line ${at.line}, column ${at.column}`);
  }
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ServeConfigError(ServeConfigErrorReason.FILE_NOT_JSON, `${path}: a configuration file holds one JSON object, got ${Array.isArray(value) ? 'an array' : typeof value}`);
  }
  return value as ServeConfigInput;
}

/** The node's own entry in the initial cluster is where it listens for peers. */
function checkOwnEntry(c: ServeConfig, nameOf: ServeConfigNames): void {
  const own = c.initialCluster.get(c.id);
  const listen = formatHostPort(c.listenPeer);
  if (own === undefined) {
    throw clusterError(`${nameOf('initialCluster')} has no entry for this node, ${nameOf('id')} ${c.id} (it lists ${[...c.initialCluster.keys()].join(', ')})`);
  }
  const samePlace = isWildcardHost(c.listenPeer.host) ? own.port === c.listenPeer.port : own.host === c.listenPeer.host && own.port === c.listenPeer.port;
  if (!samePlace) {
    const want = isWildcardHost(c.listenPeer.host) ? `port ${c.listenPeer.port}` : listen;
    throw clusterError(`${nameOf('initialCluster')} gives node ${c.id} the address ${formatHostPort(own)}, but ${nameOf('listenPeer')} is ${listen}: it must list ${want}`);
  }
}

/**
 * Two listeners must not share a port on one address. A wildcard host counts as every address
 * (on Linux `::` also takes IPv4), so it conflicts with any listener on its port. Port 0
 * (any free port) never conflicts.
 */
function checkListeners(c: ServeConfig, nameOf: ServeConfigNames): void {
  const listeners: [ServeConfigKey, HostPort | undefined][] = [
    ['listenPeer', c.listenPeer],
    ['listenClient', c.listenClient],
    ['listenMetrics', c.listenMetrics],
    ['listenResp', c.listenResp],
  ];
  for (let i = 0; i < listeners.length; i++) {
    for (let j = i + 1; j < listeners.length; j++) {
      const [aKey, a] = listeners[i]!;
      const [bKey, b] = listeners[j]!;
      if (a === undefined || b === undefined || a.port === 0 || a.port !== b.port) continue;
      if (a.host === b.host || isWildcardHost(a.host) || isWildcardHost(b.host)) {
        throw new ServeConfigError(ServeConfigErrorReason.RELATION, `${nameOf(aKey)} ${formatHostPort(a)} and ${nameOf(bKey)} ${formatHostPort(b)} would listen on the same port`);
      }
    }
  }
}

/**
 * What each connection must carry fits its frames. A peer frame holds the largest append
 * (at most raft.appendBytesMax of entries, but always at least one entry, so up to
 * raft.proposalBytesMax) and the largest snapshot chunk, each with its message framing; a
 * client frame holds the largest write request, which must also be proposable.
 */
function checkFrames(c: ServeConfig): void {
  const peerMessageMax = messageBytesMaxOf(c.peerTransport.frameBytesMax);
  const needs: [string, number][] = [
    ['raft.appendBytesMax', c.raft.appendBytesMax],
    ['raft.proposalBytesMax (an append carries at least one entry)', c.raft.proposalBytesMax],
    ['raft.snapshotChunkBytes', c.raft.snapshotChunkBytes],
  ];
  for (const [name, bytes] of needs) {
    if (bytes + PEER_MESSAGE_HEADROOM_BYTES > peerMessageMax) {
      throw relation(`peerTransport.frameBytesMax (${c.peerTransport.frameBytesMax}) is too small for ${name} (${bytes}): a message of ${bytes} bytes and ${PEER_MESSAGE_HEADROOM_BYTES} of framing needs frames of at least ${c.peerTransport.frameBytesMax - peerMessageMax + bytes + PEER_MESSAGE_HEADROOM_BYTES} bytes`);
    }
  }
  const clientRequestMax = REQUEST_HEADER_BYTES + WRITE_REQUEST_BYTES_MAX;
  if (clientRequestMax > messageBytesMaxOf(c.clientPort.frameBytesMax)) {
    throw relation(`clientPort.frameBytesMax (${c.clientPort.frameBytesMax}) is too small for the largest client request (WRITE_REQUEST_BYTES_MAX, ${WRITE_REQUEST_BYTES_MAX} bytes and its header): frames of at least ${c.clientPort.frameBytesMax - messageBytesMaxOf(c.clientPort.frameBytesMax) + clientRequestMax} bytes are needed`);
  }
  if (c.raft.proposalBytesMax < WRITE_REQUEST_BYTES_MAX) {
    throw relation(`raft.proposalBytesMax (${c.raft.proposalBytesMax}) must be at least ${WRITE_REQUEST_BYTES_MAX}, the largest write request (WRITE_REQUEST_BYTES_MAX)`);
  }
}

/** The TLS files, all three or none, each a readable file; `clientCertRequired` only with them. */
function resolveTls(input: ServeConfigInput, nameOf: ServeConfigNames): ServeConfig['tls'] {
  const keys = ['tlsCert', 'tlsKey', 'tlsCa'] as const;
  const given = keys.filter((k) => input[k] !== undefined);
  const clientCertRequired = settingValue(boolean(false), input.clientCertRequired, nameOf('clientCertRequired')) as boolean;
  if (given.length === 0) {
    if (clientCertRequired) throw new ServeConfigError(ServeConfigErrorReason.RELATION, `${nameOf('clientCertRequired')} needs TLS: give ${keys.map(nameOf).join(', ')}`);
    return undefined;
  }
  if (given.length < keys.length) {
    const missing = keys.filter((k) => input[k] === undefined).map(nameOf);
    throw new ServeConfigError(ServeConfigErrorReason.MISSING, `TLS needs ${keys.map(nameOf).join(', ')} together; ${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} missing`);
  }
  const files = keys.map((k) => {
    const path = nonEmptyString(input[k], nameOf(k), Infinity);
    let problem: string | undefined;
    try {
      if (!statSync(path).isFile()) problem = 'not a file';
      else accessSync(path, constants.R_OK);
    } catch (error) {
      problem = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    }
    if (problem !== undefined) throw new ServeConfigError(ServeConfigErrorReason.FILE_UNREADABLE, `${nameOf(k)} ${path}: cannot read it (${problem})`);
    return path;
  });
  return { certFile: files[0]!, keyFile: files[1]!, caFile: files[2]!, clientCertRequired };
}

/**
 * A peer back from a restart must be redialled before the others could time out on it: the
 * longest redial delay is at most half the shortest election timeout.
 */
function checkRedial(c: ServeConfig): void {
  const electionMs = c.node.tickMs * c.raft.electionTimeoutTicks;
  if (c.peerTransport.redialBackoffMsMax * 2 > electionMs) {
    throw relation(
      `peerTransport.redialBackoffMsMax (${c.peerTransport.redialBackoffMsMax} ms) must be at most half the election timeout (node.tickMs ${c.node.tickMs} × raft.electionTimeoutTicks ${c.raft.electionTimeoutTicks} = ${electionMs} ms)`,
    );
  }
}

/** One setting's value checked by the schema machinery, its refusals named `name` (a key or a flag). */
function settingValue(setting: Setting, value: unknown, name: string): unknown {
  try {
    return resolveSettings({ [name]: setting }, { [name]: value })[name];
  } catch (error) {
    throw error instanceof RingraftError ? new ServeConfigError(ServeConfigErrorReason.BAD_VALUE, error.message, { cause: error }) : error;
  }
}

function nonEmptyString(value: unknown, name: string, charsMax: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > charsMax) {
    const range = charsMax === Infinity ? '' : ` of at most ${charsMax} characters`;
    throw new ServeConfigError(ServeConfigErrorReason.BAD_VALUE, `${name} must be a non-empty string${range}, got ${typeof value === 'string' ? `${value.length} characters` : typeof value}`);
  }
  return value;
}

function clusterError(message: string): ServeConfigError {
  return new ServeConfigError(ServeConfigErrorReason.INITIAL_CLUSTER, message);
}

function relation(message: string): ServeConfigError {
  return new ServeConfigError(ServeConfigErrorReason.RELATION, message);
}
