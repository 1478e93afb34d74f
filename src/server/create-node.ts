/**
 * `createNode`: one node of a cluster inside the caller's own service, so that three
 * instances of that service form one cluster over TCP. It is `ringraft serve` without the
 * command line: the same configuration (checked the same way, nested setting groups
 * included), the same node server, and a network client of its own node.
 *
 * ```ts
 * const node = await createNode({ id: 1, dataDir: './data', listenPeer: '10.0.0.1:7001', listenClient: '10.0.0.1:7101',
 *   initialCluster: '1=10.0.0.1:7001,2=10.0.0.2:7001,3=10.0.0.3:7001', clusterToken: 'orders' });
 * const kv = await node.client();   // any node serves: a follower forwards to its leader
 * await kv.put('a', '1');
 * await node.close();                // hands leadership off first if it leads
 * ```
 *
 * Logs go nowhere unless `log` is given (a function taking each JSON line).
 */
import { ErrorCode, RingraftError } from '../base/index.ts';
import { connect, type ConnectOptions, type NetworkClient } from '../client/index.ts';
import type { NodeStatus } from '../runtime/index.ts';
import { runAdmin } from './admin.ts';
import { resolveServeConfig, type ServeConfigInput } from './config.ts';
import { formatHostPort } from './host-port.ts';
import { createLogger } from './log.ts';
import { NodeServer } from './node-server.ts';

/** The configuration of `ringraft serve`, by the same keys and checks, and where log lines go. */
export interface CreateNodeOptions extends ServeConfigInput {
  /** Each log line (a JSON object and a newline); none written if left out. */
  readonly log?: (line: string) => void;
}

/** A node started by {@link createNode}, running in this process. */
export interface RingraftNode {
  /** The node's id, as configured. */
  readonly id: number;
  /** Where the node listens for peers (`HOST:PORT`). */
  readonly peerAddress: string;
  /** Where it listens for clients (`HOST:PORT`, the port it took if given 0). */
  readonly clientAddress: string;
  /** Where it listens for Redis clients (`listenResp`; `HOST:PORT`, the port it took if given 0), if it does. */
  readonly respAddress: string | undefined;
  /** A network client of this node (its own client port): the whole KvClient API; close it when done. */
  client(options?: Omit<ConnectOptions, 'endpoints' | 'clusterToken'>): Promise<NetworkClient>;
  /** This node's state as its thread reports it: role, term, leader, indexes, configuration and counters. */
  status(): Promise<NodeStatus>;
  /** Asks this node, if it leads, to hand leadership to `target`. */
  transferLeadership(target: number): Promise<void>;
  /**
   * Adds node `id`, which listens for peers at `peerAddress` and was started with `join`:
   * as a learner, then a voter once it has caught up. Resolves to the voters. Run it on the
   * leader (another node rejects with NOT_LEADER, naming the leader in its message).
   */
  addMember(id: number, peerAddress: string): Promise<readonly number[]>;
  /** Removes node `id` from the cluster (on the leader, as addMember). Resolves to the voters. */
  removeMember(id: number): Promise<readonly number[]>;
  /** Stops gracefully, as SIGTERM stops `ringraft serve`: hand-off, drain, the WAL closed. */
  close(): Promise<void>;
}

/**
 * Starts one node. Rejects with the configuration's typed refusal (INVALID_ARGUMENT, naming
 * the key) before anything is opened, or the node's own (DATA_DIR_LOCKED, CONFIG_MISMATCH,
 * STATE_LOST, CONNECTION_FAILED for an address it cannot bind, ...).
 */
export async function createNode(options: CreateNodeOptions): Promise<RingraftNode> {
  if (typeof options !== 'object' || options === null) throw new RingraftError(ErrorCode.INVALID_ARGUMENT, 'createNode options must be an object');
  const { log: write, ...input } = options;
  if (write !== undefined && typeof write !== 'function') throw new RingraftError(ErrorCode.INVALID_ARGUMENT, 'log must be a function');
  const config = resolveServeConfig(input);
  const server = await NodeServer.start(config, createLogger(config.id, config.logLevel, write ?? (() => {})));
  const clients = new Set<NetworkClient>();
  return {
    id: config.id,
    peerAddress: formatHostPort(server.peerAddress),
    clientAddress: formatHostPort(server.clientAddress),
    respAddress: server.respAddress === undefined ? undefined : formatHostPort(server.respAddress),
    client: async (more = {}) => {
      const kv = await connect({ ...more, endpoints: [formatHostPort(server.clientAddress)], clusterToken: config.clusterToken });
      clients.add(kv);
      return kv;
    },
    status: () => server.status(),
    transferLeadership: (target) => server.transferLeadership(target),
    addMember: async (id, peerAddress) => (JSON.parse(await runAdmin(server, JSON.stringify({ op: 'member-add', id, peerAddress }))) as { voters: number[] }).voters,
    removeMember: async (id) => (JSON.parse(await runAdmin(server, JSON.stringify({ op: 'member-remove', id }))) as { voters: number[] }).voters,
    close: async () => {
      await server.shutdown();
      await Promise.all([...clients].map((c) => c.close()));
    },
  };
}
