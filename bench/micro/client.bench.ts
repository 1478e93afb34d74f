/**
 * What a call costs the client's thread: a {@link KvClient} on a {@link ClientEndpoint}
 * against a fake node in a worker thread that answers every request at once
 * (client-responder.ts), so that no Raft, no state machine and no other thread's work is
 * in the figure. For each number in flight, a plain loop of awaited calls (what a user
 * writes: `for (;;) await kv.put(k, v)` in N async functions) runs for a fixed window, and
 * the main thread's CPU time over that window (from /proc/self/task/<pid>/schedstat) is
 * divided by the calls completed.
 *
 *   node dist/bench/micro/client.bench.js [--op put,get,get-string,put-timeout,put-signal] [--ms N] [--in-flight 1,16,256] [--rounds N]
 *
 * --rounds repeats the whole sweep and reports medians (the machine is shared and noisy).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { ClientEndpoint } from '../../src/cluster/endpoint.ts';
import { KvClient } from '../../src/cluster/index.ts';
import { createRing, Doorbell } from '../../src/transport/index.ts';
import type { ResponderData } from './client-responder.ts';

const RING_BYTES = 8 << 20;
const KEY_BYTES = 16;
const VALUE_BYTES = 128;
const KEYS = 1024;

/**
 * put, get; get-string: a get of a key given as a string (ASCII, as most keys are);
 * put-timeout: a put with `{ timeoutMs }`; put-signal: a put with
 * `{ signal: AbortSignal.timeout(ms) }`, a timer and a listener per call; put-shared-signal:
 * one AbortController's signal for every call (a listener per call, no timer).
 */
type Op = 'put' | 'get' | 'get-string' | 'put-timeout' | 'put-signal' | 'put-shared-signal';
const OPS: readonly Op[] = ['put', 'get', 'get-string', 'put-timeout', 'put-signal', 'put-shared-signal'];

export interface ClientBenchRow {
  readonly op: Op;
  readonly inFlight: number;
  readonly callsPerSec: number;
  /** CPU of the client's thread per call, µs. */
  readonly clientCpuUs: number;
}

/** CPU ns this process's main thread has used so far. */
function mainThreadCpuNs(): number {
  return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);
}

export interface ClientBench {
  readonly kv: KvClient;
  close(): Promise<void>;
}

/** A client wired to a responder thread. */
export async function startClientBench(): Promise<ClientBench> {
  const requestRing = createRing(RING_BYTES);
  const replyRing = createRing(RING_BYTES);
  const nodeDoorbell = Doorbell.create();
  const endpoint = new ClientEndpoint(
    { requestTimeoutMs: 5_000, electionTimeoutMs: 1_000, requestsInFlightMax: 4096 },
    { nodeIds: () => [1], isAlive: () => true },
  );
  endpoint.addLink({ nodeId: 1, requestRing, replyRing, nodeDoorbell: nodeDoorbell.buffer });
  const stop = new SharedArrayBuffer(4);
  const data: ResponderData = { requestRing, replyRing, nodeDoorbell: nodeDoorbell.buffer, clientDoorbell: endpoint.doorbell.buffer, stop };
  const worker = new Worker(new URL('./client-responder.js', import.meta.url), { workerData: data });
  await new Promise<void>((resolve, reject) => {
    worker.once('online', resolve);
    worker.once('error', reject);
  });
  return {
    kv: new KvClient(endpoint),
    async close() {
      endpoint.close();
      Atomics.store(new Int32Array(stop), 0, 1);
      nodeDoorbell.ring();
      await worker.terminate();
    },
  };
}

/** `inFlight` async loops of awaited calls for `ms`; the calls completed and the main thread's CPU over the window. */
export async function plainLoops(call: (i: number) => Promise<unknown>, inFlight: number, ms: number): Promise<{ calls: number; cpuNs: number; elapsedMs: number }> {
  let calls = 0;
  let stopped = false;
  const start = performance.now();
  const cpuBefore = mainThreadCpuNs();
  const timer = setTimeout(() => {
    stopped = true;
  }, ms);
  const loop = async (seed: number): Promise<void> => {
    for (let i = seed; !stopped; i += inFlight) {
      await call(i);
      calls++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, (_, seed) => loop(seed)));
  clearTimeout(timer);
  return { calls, cpuNs: mainThreadCpuNs() - cpuBefore, elapsedMs: performance.now() - start };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      op: { type: 'string', default: 'put,get' },
      ms: { type: 'string', default: '2000' },
      'in-flight': { type: 'string', default: '1,16,256' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const ms = Number(values.ms);
  const rounds = Number(values.rounds);
  const levels = values['in-flight'].split(',').map(Number);
  const ops = values.op.split(',') as Op[];
  if (!(ms > 0) || !(Number.isInteger(rounds) && rounds >= 1) || !ops.every((op) => OPS.includes(op)) || !levels.every((n) => Number.isInteger(n) && n >= 1 && n <= 4096)) {
    console.error(`usage: node dist/bench/micro/client.bench.js [--op ${OPS.join(',')}] [--ms N>0] [--in-flight 1,16,256] [--rounds N>=1]`);
    process.exitCode = 2;
    return;
  }
  const bench = await startClientBench();
  try {
    const keyStrings = Array.from({ length: KEYS }, (_, i) => `key-${String(i).padStart(KEY_BYTES - 4, '0')}`);
    const keys = keyStrings.map((k) => new TextEncoder().encode(k));
    const value = new Uint8Array(VALUE_BYTES).fill(7);
    const shared = new AbortController();
    const call: Record<Op, (i: number) => Promise<unknown>> = {
      put: (i) => bench.kv.put(keys[i % KEYS]!, value),
      get: (i) => bench.kv.get(keys[i % KEYS]!),
      'get-string': (i) => bench.kv.get(keyStrings[i % KEYS]!),
      'put-timeout': (i) => bench.kv.put(keys[i % KEYS]!, value, { timeoutMs: 5_000 }),
      'put-signal': (i) => bench.kv.put(keys[i % KEYS]!, value, { signal: AbortSignal.timeout(5_000) }),
      'put-shared-signal': (i) => bench.kv.put(keys[i % KEYS]!, value, { signal: shared.signal }),
    };
    const samples = new Map<string, { perSec: number[]; cpuUs: number[] }>();
    for (const op of ops) await plainLoops(call[op], 16, 300); // warm up (and register the client ids)
    for (let round = 0; round < rounds; round++) {
      for (const op of ops) {
        for (const inFlight of levels) {
          const r = await plainLoops(call[op], inFlight, ms);
          const key = `${op} ${inFlight}`;
          const s = samples.get(key) ?? { perSec: [], cpuUs: [] };
          s.perSec.push((r.calls / r.elapsedMs) * 1000);
          s.cpuUs.push(r.cpuNs / 1000 / r.calls);
          samples.set(key, s);
          process.stderr.write(`round ${round + 1}/${rounds} ${key}: ${Math.round((r.calls / r.elapsedMs) * 1000)}/s, ${(r.cpuNs / 1000 / r.calls).toFixed(2)} µs\n`);
        }
      }
    }
    console.log(`client CPU per call against a node that answers at once (median of ${rounds}, ${ms} ms windows)`);
    console.log(`${'op'.padEnd(17)} in flight   calls/s   client µs/call`);
    for (const [key, s] of samples) {
      const [op, inFlight] = key.split(' ');
      console.log(`${op!.padEnd(17)} ${inFlight!.padStart(9)} ${String(Math.round(median(s.perSec))).padStart(9)} ${median(s.cpuUs).toFixed(2).padStart(16)}`);
    }
  } finally {
    await bench.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
