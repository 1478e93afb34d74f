/**
 * The systems under test behind one small interface: each hands out the operation a
 * closed loop calls for a cell (a put or a get at some concurrency), through the client a
 * Node.js user of that system would use: ringraft's embedding API, `etcd3` (gRPC) for
 * etcd, `ioredis` for Redis. Every request carries a timeout.
 */

import { Etcd3 } from 'etcd3';
import { Redis } from 'ioredis';
import { connect, createCluster, type Cluster, type KvClient } from '../../src/index.ts';
import type { Operation } from '../load/loops.ts';
import { checkValue, type Cell } from './workload.ts';

/** `ringraft`: 3 nodes on worker threads in this process; `ringraft-tcp`: 3 `ringraft serve` processes, the network client here. */
export type SystemName = 'ringraft' | 'ringraft-tcp' | 'etcd' | 'redis';

/** Whether a system is ringraft (the rows others are compared with). */
export function isRingraft(system: SystemName): boolean {
  return system === 'ringraft' || system === 'ringraft-tcp';
}

export interface Target {
  readonly system: SystemName;
  /** What ran, e.g. 'etcd 3.4.23, 3 members'. */
  readonly name: string;
  readonly nodes: number;
  /** Whether an acknowledged write is on disk (fsynced) before the reply. */
  readonly durable: boolean;
  /** The operation a closed loop runs for `cell`; `i` picks the key. */
  operation(cell: Cell): Operation;
  close(): Promise<void>;
}

export interface TargetData {
  readonly keys: readonly Buffer[];
  readonly value: Buffer;
  readonly requestTimeoutMs: number;
}

// ─── ringraft ────────────────────────────────────────────────────────────────────

/** Three nodes on worker threads over WALs in `dataDir`, each write fsynced before it is acknowledged. */
export async function startRingraft(dataDir: string, data: TargetData): Promise<Target> {
  const cluster: Cluster = await createCluster({ nodes: 3, dataDir, node: { fsync: 'always' }, client: { requestTimeoutMs: data.requestTimeoutMs } });
  try {
    const kv = cluster.client();
    // The first write waits for the first election.
    await kv.put(data.keys[0]!, data.value);
    return ringraftTarget('ringraft', "ringraft, 3 nodes on worker threads, fsync 'always'", kv, () => cluster.close(), data);
  } catch (error) {
    await cluster.close();
    throw error;
  }
}

/**
 * Three `ringraft serve` processes (fsync 'always'), driven through the network client from
 * this process: the same shape as etcd's run, each node its own process, every request over
 * loopback TCP. The client sends each request to the node it believes leads (learned from
 * the first reply's hint), as etcd's gRPC client balances over its endpoints.
 */
export async function ringraftTcpTarget(endpoints: readonly string[], clusterToken: string, data: TargetData): Promise<Target> {
  const kv = await connect({ endpoints, clusterToken, client: { requestTimeoutMs: data.requestTimeoutMs } });
  try {
    await kv.put(data.keys[0]!, data.value);
    return ringraftTarget('ringraft-tcp', "ringraft, 3 serve processes over TCP, fsync 'always'", kv, () => kv.close(), data);
  } catch (error) {
    await kv.close();
    throw error;
  }
}

function ringraftTarget(system: 'ringraft' | 'ringraft-tcp', name: string, kv: KvClient, close: () => Promise<void>, data: TargetData): Target {
  const { keys, value } = data;
  const n = keys.length;
  return {
    system,
    name,
    nodes: 3,
    durable: true,
    operation(cell) {
      if (cell.pipelineDepth !== undefined) throw new Error('ringraft has no pipelined cells');
      if (cell.op === 'put') return (i) => kv.put(keys[i % n]!, value);
      return async (i) => checkValue(await kv.get(keys[i % n]!, { consistency: 'linearizable' }), value);
    },
    close,
  };
}

// ─── etcd ────────────────────────────────────────────────────────────────────────

/**
 * One `etcd3` client over all members' endpoints (it picks one at random per call, as
 * etcd's own client balances over its endpoints); gets are linearizable (`serializable`
 * false, the default), so a member confirms its leader's commit index before answering.
 */
export function etcdTarget(endpoints: readonly string[], version: string, data: TargetData): Target {
  const client = new Etcd3({
    hosts: [...endpoints],
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + data.requestTimeoutMs }),
  });
  const { keys, value } = data;
  const n = keys.length;
  return {
    system: 'etcd',
    name: `etcd ${version}, ${endpoints.length} members, etcd3 client`,
    nodes: endpoints.length,
    durable: true,
    operation(cell) {
      if (cell.pipelineDepth !== undefined) throw new Error('etcd has no pipelined cells');
      if (cell.op === 'put') return (i) => client.put(keys[i % n]!).value(value).exec();
      return async (i) => checkValue(await client.get(keys[i % n]!).buffer(), value);
    },
    close: async () => client.close(),
  };
}

// ─── Redis ───────────────────────────────────────────────────────────────────────

/**
 * `connectionsMax` ioredis connections, opened up front. A cell with N requests in flight
 * uses min(N, connectionsMax) of them: a request takes an idle connection if there is one
 * (so with N up to connectionsMax each request has its own, like redis-benchmark's
 * clients), and otherwise queues on the next in turn behind what is on its socket, as a
 * pipelining client does. A pipelined cell sends `pipelineDepth` SETs per call.
 */
export async function startRedisTarget(port: number, fsync: 'always' | 'everysec', version: string, connectionsMax: number, data: TargetData): Promise<Target> {
  const connections = Array.from({ length: connectionsMax }, () => redisConnection(port, data.requestTimeoutMs));
  try {
    await Promise.all(connections.map((c) => c.connect()));
  } catch (error) {
    for (const c of connections) c.disconnect();
    throw error;
  }
  const { keys, value } = data;
  const n = keys.length;
  return {
    system: 'redis',
    name: `redis ${version}, appendfsync ${fsync}, ioredis`,
    nodes: 1,
    durable: fsync === 'always',
    operation(cell) {
      const depth = cell.pipelineDepth ?? 1;
      const callers = cell.inFlight / depth;
      if (!Number.isInteger(callers)) throw new Error(`inFlight ${cell.inFlight} is not a multiple of the pipeline depth ${depth}`);
      const on = connectionPicker(connections.slice(0, Math.min(callers, connections.length)));
      if (depth > 1) {
        if (cell.op !== 'put') throw new Error('only puts are pipelined');
        return (i) =>
          on(async (c) => {
            const pipeline = c.pipeline();
            for (let j = 0; j < depth; j++) pipeline.set(keys[(i * depth + j) % n]!, value);
            const results = (await pipeline.exec()) ?? [];
            const failed = results.find(([error]) => error !== null);
            if (failed !== undefined) throw failed[0];
          });
      }
      if (cell.op === 'put') return (i) => on((c) => c.set(keys[i % n]!, value));
      return (i) => on(async (c) => checkValue(await c.getBuffer(keys[i % n]!), value));
    },
    close: async () => {
      await Promise.all(connections.map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}

/**
 * Runs each call on an idle connection while there is one, else on the next in turn.
 *
 *   idle: [c4, c1, c7]   ← a call pops one and pushes it back when it settles
 *   all busy             → round robin over `used`, queuing behind the socket's requests
 */
function connectionPicker(used: readonly Redis[]): <T>(call: (c: Redis) => Promise<T>) => Promise<T> {
  const idle = [...used].reverse();
  let turn = 0;
  return async (call) => {
    const own = idle.pop();
    if (own === undefined) return call(used[turn++ % used.length]!);
    try {
      return await call(own);
    } finally {
      idle.push(own);
    }
  };
}

/** A connection that fails fast instead of queuing or retrying while it is down. */
export function redisConnection(port: number, requestTimeoutMs: number): Redis {
  return new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    commandTimeout: requestTimeoutMs,
    connectTimeout: requestTimeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  }).on('error', () => {
    // Failed commands reject on their own, and a refused connect rejects connect(); without
    // a listener ioredis would print each 'error' event as unhandled.
  });
}
