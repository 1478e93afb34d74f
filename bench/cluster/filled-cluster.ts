/**
 * What the in-process cluster benches share: the CPU time of every thread of this process,
 * and a 3-node cluster on worker threads in memory with 10,000 keys of 16 bytes written once
 * (128-byte values).
 */
import { closedLoop } from '../load/loops.ts';
import { threadTimes, totalNs } from '../shared/thread-cpu.ts';

export const KEYS = 10_000;

/** CPU time of every thread of this process so far, in ns (from `/proc/self/task/<tid>/schedstat`). */
export function processCpuNs(): number {
  return totalNs(threadTimes());
}

/** The cluster `createCluster` (of this build or another) makes, as far as the benches use it. */
export interface BenchCluster<C> {
  client(): C;
  close(): Promise<void>;
}

/** A 3-node cluster with every key written once, its client, the keys and the value. */
export async function filledCluster<C extends { put(key: string, value: Uint8Array): Promise<unknown> }>(
  createCluster: (options: { nodes: number }) => Promise<BenchCluster<C>>,
): Promise<{ cluster: BenchCluster<C>; kv: C; keys: string[]; value: Uint8Array }> {
  const cluster = await createCluster({ nodes: 3 });
  const kv = cluster.client();
  const keys = Array.from({ length: KEYS }, (_, i) => `k${String(i).padStart(15, '0')}`);
  const value = new Uint8Array(128).fill(7);
  await closedLoop((i) => kv.put(keys[i]!, value), { inFlight: 256, durationMs: 60_000, opsMax: KEYS });
  return { cluster, kv, keys, value };
}
