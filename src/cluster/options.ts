/**
 * The options of {@link createCluster}, their defaults and their checks. Every limit is
 * named; an unknown option, or one outside its range, is refused with INVALID_ARGUMENT naming
 * it, before any thread starts.
 */

import { availableParallelism } from 'node:os';
import { checkKnown, CLUSTER_NODES_MAX, integer, invalidArgument, resolveSettings, type Settings, type SettingsInput } from '../base/index.ts';
import { resolveRaftSettings, type RaftSettings, type RaftSettingsInput } from '../core/index.ts';
import { KV_KEY_BYTES_MAX, KV_VALUE_BYTES_MAX } from '../kv/index.ts';
import { resolveNodeSettings, resolveStateMachineSpec, WRITE_REQUEST_BYTES_MAX, type NodeSettings, type NodeSettingsInput, type StateMachineInput, type StateMachineSpec } from '../runtime/index.ts';
import { RING_CAPACITY_BYTES_MAX, ringFrameBytesMax } from '../transport/index.ts';

/**
 * The options of {@link createCluster}: the cluster's own (`nodes`, `dataDir`, `seed`,
 * `ringBytes`), and the settings of each group, defined once where they belong: `raft` (the
 * core's, core/settings.ts), `node` (each node's host, runtime/settings.ts) and `client`
 * (this process's clients, below). The same nested options are what the worker and the
 * simulator take, and what the coming `serve` command reads from its configuration file.
 */
export interface ClusterOptions {
  /** Number of nodes, 1 to {@link CLUSTER_NODES_MAX}. Default 3; with a dataDir that has a cluster, the number it records. */
  readonly nodes?: number;
  /** A directory for the nodes' logs (one subdirectory each); omit for logs in memory. */
  readonly dataDir?: string;
  /** Seeds the nodes' election timers. Default: random. */
  readonly seed?: number;
  /** Bytes of each ring between threads (a power of two), large enough for the largest request (a cas with two 1 MiB values). Default 8 MiB. */
  readonly ringBytes?: number;
  /**
   * The most worker threads that host the nodes, 1 to {@link CLUSTER_NODES_MAX}: node k (in
   * the order made) runs on thread k mod nodeThreads, so with fewer threads than nodes some
   * share one. Default: {@link defaultNodeThreads} (one per node on a machine with a core for
   * each besides the client's; fewer on a smaller one). BENCHMARKS.md has the measurements.
   */
  readonly nodeThreads?: number;
  /**
   * The cluster's own state machine, replicated beside the key-value store: each node's
   * thread imports `module` (a file URL, or a path taken from the current directory; a
   * TypeScript module once built to JavaScript) and calls its default export with `options`
   * (anything `structuredClone` copies) to make the node's machine (kv/app-machine.ts has the
   * interface and its determinism rules). Clients then call `propose` and `query`. A module
   * that does not load, or exports no function, fails `createCluster` with INVALID_ARGUMENT
   * naming it. Every node of the cluster runs the same module.
   */
  readonly stateMachine?: StateMachineInput;
  /** The Raft settings (core/settings.ts). */
  readonly raft?: RaftSettingsInput;
  /** Each node's host settings (runtime/settings.ts). */
  readonly node?: NodeSettingsInput;
  /** This process's clients' settings. */
  readonly client?: ClientSettingsInput;
}

/**
 * The most client requests one process (one endpoint) has in flight. Each write in flight
 * has a client session of its own, and the state machine keeps 100,000 sessions (evicting the
 * least recently used): this bound stays well below it, leaving room for the sessions failed
 * writes leave behind and for a smaller second endpoint.
 */
export const REQUESTS_IN_FLIGHT_MAX = 65_536;

export const CLIENT_SETTINGS = {
  /** Default timeout of a client call, in ms (a call's own `timeoutMs` overrides it). Default 5,000. */
  requestTimeoutMs: integer(5_000, 1, 2 ** 31 - 1),
  /** Client requests in flight at once from this process's clients; more wait for a slot. Default and most 65,536. */
  requestsInFlightMax: integer(REQUESTS_IN_FLIGHT_MAX, 1, REQUESTS_IN_FLIGHT_MAX),
} as const;
export type ClientSettings = Settings<typeof CLIENT_SETTINGS>;
export type ClientSettingsInput = SettingsInput<typeof CLIENT_SETTINGS>;

/** Every option with its value. */
export interface ResolvedOptions {
  readonly nodes: number;
  readonly nodeThreads: number;
  /** The cluster's directory (each node has a subdirectory). */
  readonly dataDir: string | undefined;
  readonly seed: number;
  readonly ringBytes: number;
  readonly raft: RaftSettings;
  readonly node: NodeSettings;
  readonly client: ClientSettings;
  /** The cluster's own state machine: its module's href and the options for its factory. */
  readonly stateMachine: StateMachineSpec | undefined;
}

const CLUSTER_SETTINGS = {
  nodes: integer(3, 1, CLUSTER_NODES_MAX),
  seed: integer(0, 0, 2 ** 32 - 1),
  ringBytes: integer(8 << 20, 64 << 10, RING_CAPACITY_BYTES_MAX),
  nodeThreads: integer(CLUSTER_NODES_MAX, 1, CLUSTER_NODES_MAX),
} as const;
const GROUPS = ['dataDir', 'raft', 'node', 'client', 'stateMachine'];

/** Room in a frame beyond the payload bytes it carries: message header, entry headers. */
const FRAME_OVERHEAD_BYTES = 64 << 10;

/** Checks `o` and fills in the defaults; an unknown option or a bad value is an INVALID_ARGUMENT naming it. */
export function resolveOptions(o: ClusterOptions = {}): ResolvedOptions {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw invalidArgument('options must be an object');
  checkKnown(CLUSTER_SETTINGS, o, '', GROUPS);
  const { dataDir, raft, node, client, stateMachine, ...own } = o;
  const top = resolveSettings(CLUSTER_SETTINGS, { ...own, seed: own.seed ?? Math.floor(Math.random() * 2 ** 32), nodeThreads: own.nodeThreads ?? defaultNodeThreads() });
  if (dataDir !== undefined && (typeof dataDir !== 'string' || dataDir.length === 0)) throw invalidArgument('dataDir must be a non-empty string');
  const r: ResolvedOptions = {
    ...top,
    dataDir,
    raft: resolveRaftSettings(raft, 'raft.'),
    node: resolveNodeSettings(node, 'node.'),
    client: resolveSettings(CLIENT_SETTINGS, client, 'client.'),
    stateMachine: stateMachine === undefined ? undefined : resolveStateMachineSpec(stateMachine, 'stateMachine'),
  };
  if ((r.ringBytes & (r.ringBytes - 1)) !== 0) throw invalidArgument(`ringBytes ${r.ringBytes} is not a power of two`);
  // Every frame must fit a ring: the largest batch or chunk (a batch always carries at least
  // one entry, so the largest request too), plus headers.
  const payloadMax = Math.max(r.raft.appendBytesMax, r.raft.snapshotChunkBytes, KV_KEY_BYTES_MAX + 2 * KV_VALUE_BYTES_MAX);
  if (payloadMax + FRAME_OVERHEAD_BYTES > ringFrameBytesMax(r.ringBytes)) {
    throw invalidArgument(`ringBytes ${r.ringBytes} is too small for frames of ${payloadMax} bytes; use at least ${nextPowerOfTwo(2 * (payloadMax + FRAME_OVERHEAD_BYTES + 8))}`);
  }
  // The largest write request must be proposable.
  if (r.raft.proposalBytesMax < WRITE_REQUEST_BYTES_MAX) {
    throw invalidArgument(`raft.proposalBytesMax (${r.raft.proposalBytesMax}) must be at least ${WRITE_REQUEST_BYTES_MAX}, the largest write request`);
  }
  return r;
}

/**
 * The default of `nodeThreads` on a machine of `cores` (os.availableParallelism()): one
 * thread for the nodes per core beyond the one the client's thread keeps busy, at least one.
 * On this project's 2-core machine that puts three nodes on one thread, which measured best
 * (BENCHMARKS.md, "Threads for the nodes").
 */
export function defaultNodeThreads(cores: number = availableParallelism()): number {
  return Math.max(1, Math.min(CLUSTER_NODES_MAX, cores - 1));
}

/** The election timeout in milliseconds (its lower end). */
export function electionTimeoutMs(o: ResolvedOptions): number {
  return o.node.tickMs * o.raft.electionTimeoutTicks;
}

function nextPowerOfTwo(n: number): number {
  return 2 ** Math.ceil(Math.log2(n));
}

