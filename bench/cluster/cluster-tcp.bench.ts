/**
 * The cluster over TCP: 3 `ringraft serve` processes on 127.0.0.1 (WAL with fsync 'always' in
 * a temporary directory), driven by the network client in this process (a fourth), with the
 * same closed loops as the worker-thread cluster, each figure beside its limit measured in the
 * same run:
 *
 * 1. limit: the loopback TCP round trip and pipelined throughput between this process and a
 *    child echo process, frames the size of a put's request (`echoLimit`);
 * 2. the cluster started, a leader awaited, every key written once;
 * 3. closed loops of puts at each level of requests in flight, then at 256 in flight:
 *    linearizable gets at the leader, linearizable gets from any node (follower reads: the
 *    leader only confirms a read index), and transactions (a compare and two puts); for each
 *    loop, the CPU time per operation of every thread of every node process, and of the
 *    leader's process alone, from `/proc/<pid>/task/<tid>/schedstat` over the loop's window
 *    (steadier than throughput on a shared machine), the busiest threads named;
 * 4. the leader's memory with a follower stopped (SIGSTOP) under load at the highest level,
 *    sampled every 250 ms, then the follower resumed (SIGCONT) and the catch-up awaited.
 *
 *   npm run bench -- --scenario cluster-tcp [--quick]
 *   node dist/bench/cluster/cluster-tcp.bench.js [--quick] [--tls] [--stop-ms N] [--reads-ab N]
 *
 * `--reads-ab N`: only gets at the leader and follower reads, alternating, N times each, then
 * the medians (ops/s, CPU per read in the leader and in all nodes) side by side; no put levels,
 * sync or memory measurement.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { adminCall, connect, type NetworkClient } from '../../src/client/index.ts';
import { closedLoop, type LoopResult } from '../load/loops.ts';
import { threadTimes, totalNs } from '../shared/thread-cpu.ts';

const HOST = '127.0.0.1';
const TOKEN = 'bench-tcp';
const KEY_SPACE = 10_000;
const VALUE_BYTES = 128;
const BIN = path.resolve(import.meta.dirname, import.meta.url.endsWith('.ts') ? '../../bin/ringraft.js' : '../../../bin/ringraft.js');

export interface TcpBenchOptions {
  readonly quick?: boolean;
  /** Mutual TLS between the nodes and TLS to the client, with certificates made by openssl in the run's directory. */
  readonly tls?: boolean;
  /** How long a follower stays stopped in the memory measurement. */
  readonly stopMs?: number;
  /** Only leader gets and follower reads at 256 in flight, alternating this many times each (see the module comment). */
  readonly readsAb?: number;
  readonly log?: (line: string) => void;
}

export interface TcpLoopRow {
  /** 'get-any': a linearizable get served by whichever node it reaches (follower reads); 'txn': a transaction of a compare and two puts. */
  readonly op: 'put' | 'get' | 'get-any' | 'txn';
  readonly inFlight: number;
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  /** CPU µs per operation, all threads of all three node processes. */
  readonly cpuUsPerOp: number;
  /** CPU µs per operation of this process, the client (all its threads). */
  readonly clientCpuUsPerOp: number;
  /** CPU µs per operation of the leader's process (all its threads). */
  readonly leaderCpuUsPerOp: number;
  /** The busiest threads: process (node id, L for the leader) and thread name, CPU µs per operation. */
  readonly threads: readonly { readonly who: string; readonly usPerOp: number }[];
  /** The limit: pipelined loopback TCP echoes per second at this many in flight. */
  readonly tcpLimitOpsPerSec: number;
}

export interface TcpBenchResult {
  readonly loopbackRoundTripMs: number;
  readonly rows: readonly TcpLoopRow[];
  /** What a sync costs the node's thread, against how late the socket thread ran meanwhile. */
  readonly sync: SyncAgainstSockets;
  readonly memory: { readonly stoppedMs: number; readonly leaderRssBeforeMiB: number; readonly leaderRssMaxMiB: number; readonly putsWhileStopped: number; readonly catchUpMs: number } | undefined;
}

/** The median of each figure over the alternating runs of `--reads-ab`. */
function abMedians(rows: readonly TcpLoopRow[], log: (line: string) => void): void {
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const of = (op: TcpLoopRow['op']) => rows.filter((r) => r.op === op);
  const lines: [string, (r: TcpLoopRow) => number][] = [
    ['ops/s', (r) => r.opsPerSec],
    ['leader CPU µs/read', (r) => r.leaderCpuUsPerOp],
    ['all nodes CPU µs/read', (r) => r.cpuUsPerOp],
  ];
  log(`medians of ${of('get').length} alternating runs each, 256 in flight: leader reads | follower reads | ratio`);
  for (const [name, f] of lines) {
    const a = median(of('get').map(f));
    const b = median(of('get-any').map(f));
    log(`  ${name.padEnd(22)} ${a.toFixed(1).padStart(9)} | ${b.toFixed(1).padStart(9)} | ${(b / a).toFixed(2)}`);
  }
}

/** Runs the whole benchmark and returns its figures; every process it started is stopped by PID. */
export async function runClusterTcp(options: TcpBenchOptions = {}): Promise<TcpBenchResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const quick = options.quick === true;
  const levels = quick ? [1, 64, 256] : [1, 16, 64, 256];
  const loopMs = quick ? 2_000 : 5_000;
  const stopMs = options.stopMs ?? (quick ? 5_000 : 60_000);
  const putFrame = 5 + 40 + 16 + VALUE_BYTES;

  const tls = options.tls === true;
  log(`limit: loopback TCP echo to a child process, ${putFrame} B frames${tls ? ' (plain TCP: the limit of the wire, not of TLS)' : ''}`);
  const echo = await echoLimit(putFrame, levels, quick ? 1_000 : 2_000);
  log(`  round trip ${echo.roundTripMs.toFixed(3)} ms; ${levels.map((l) => `${l} in flight ${Math.round(echo.opsPerSec.get(l)!)}/s`).join(', ')}`);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'ringraft-bench-tcp-'));
  const nodes: ChildProcess[] = [];
  const removeDir = (): void => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  let kv: NetworkClient | undefined;
  try {
    const peer = await freePorts(3);
    const client = await freePorts(3);
    const metrics = await freePorts(3);
    const initial = peer.map((p, i) => `${i + 1}=${HOST}:${p}`).join(',');
    const tlsArgs = (i: number): string[] => (tls ? ['--tls-cert', path.join(dir, `node-${i + 1}.crt`), '--tls-key', path.join(dir, `node-${i + 1}.key`), '--tls-ca', path.join(dir, 'ca.crt')] : []);
    if (tls) makeCertificates(dir, 3);
    for (let i = 0; i < 3; i++) {
      nodes.push(
        spawn(process.execPath, [BIN, 'serve', '--id', String(i + 1), '--data-dir', path.join(dir, `n${i + 1}`), '--listen-peer', `${HOST}:${peer[i]}`, '--listen-client', `${HOST}:${client[i]}`, '--initial-cluster', initial, '--cluster-token', TOKEN, '--listen-metrics', `${HOST}:${metrics[i]}`, '--log-level', 'warn', ...tlsArgs(i)], {
          stdio: ['ignore', 'ignore', 'inherit'],
        }),
      );
    }
    // The processes take a moment to listen: connect until one answers.
    const startedAt = performance.now();
    for (;;) {
      try {
        kv = await connect({ endpoints: client.map((p) => `${HOST}:${p}`), clusterToken: TOKEN, ...(tls ? { tls: { caFile: path.join(dir, 'ca.crt') } } : {}) });
        break;
      } catch (error) {
        if (performance.now() - startedAt > 20_000) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const keys = Array.from({ length: KEY_SPACE }, (_, i) => `k${String(i).padStart(15, '0')}`);
    const value = new Uint8Array(VALUE_BYTES).fill(7);
    log(`cluster: 3 serve processes, WAL in ${dir}; writing each of ${KEY_SPACE} keys once`);
    const client0: NetworkClient = kv;
    await closedLoop((i) => client0.put(keys[i % KEY_SPACE]!, value), { inFlight: 256, durationMs: 60_000, opsMax: KEY_SPACE });
    const leaderIndex = await leaderOf(client.map((p) => `${HOST}:${p}`), tls ? { caFile: path.join(dir, 'ca.crt') } : undefined);
    const pids = nodes.map((n) => n.pid!);
    const rows: TcpLoopRow[] = [];
    const runs = {
      put: (i: number): Promise<unknown> => client0.put(keys[i % KEY_SPACE]!, value),
      get: (i: number): Promise<unknown> => client0.get(keys[i % KEY_SPACE]!),
      'get-any': (i: number): Promise<unknown> => client0.get(keys[i % KEY_SPACE]!, { readFrom: 'any' }),
      txn: (i: number): Promise<unknown> =>
        client0.txn({
          if: [{ key: keys[(i * 7) % KEY_SPACE]!, target: 'version', op: '>', value: 0 }],
          then: [
            { op: 'put', key: keys[i % KEY_SPACE]!, value },
            { op: 'put', key: keys[(i + 1) % KEY_SPACE]!, value },
          ],
        }),
    };
    const loops: [keyof typeof runs, number][] =
      options.readsAb === undefined
        ? [...levels.map((l): [keyof typeof runs, number] => ['put', l]), ['get', 256], ['get-any', 256], ['txn', 256]]
        : Array.from({ length: options.readsAb }, (): [keyof typeof runs, number][] => [['get', 256], ['get-any', 256]]).flat();
    for (const [op, inFlight] of loops) {
      {
        const run = runs[op];
        await closedLoop(run, { inFlight, durationMs: Math.min(1_000, loopMs / 2) });
        const before = pids.map(threadTimes);
        const clientBefore = processTime(process.pid);
        const r: LoopResult = await closedLoop(run, { inFlight, durationMs: loopMs });
        const clientAfter = processTime(process.pid);
        const after = pids.map(threadTimes);
        const threads: { who: string; usPerOp: number }[] = [];
        let total = 0;
        let leaderNs = 0;
        after.forEach((m, n) => {
          for (const [tid, t] of m) {
            const ns = t.ns - (before[n]!.get(tid)?.ns ?? 0);
            total += ns;
            if (n === leaderIndex) leaderNs += ns;
            threads.push({ who: `${n === leaderIndex ? 'L' : ''}${n + 1}/${t.name}`, usPerOp: ns / 1000 / Math.max(1, r.ops) });
          }
        });
        threads.sort((a, b) => b.usPerOp - a.usPerOp);
        const row: TcpLoopRow = {
          op,
          inFlight,
          opsPerSec: r.opsPerSec,
          p50Ms: r.latencyMs.p50,
          p99Ms: r.latencyMs.p99,
          errors: r.errors,
          cpuUsPerOp: total / 1000 / Math.max(1, r.ops),
          clientCpuUsPerOp: (clientAfter - clientBefore) / 1000 / Math.max(1, r.ops),
          leaderCpuUsPerOp: leaderNs / 1000 / Math.max(1, r.ops),
          threads: threads.slice(0, 4),
          tcpLimitOpsPerSec: echo.opsPerSec.get(inFlight) ?? echo.opsPerSec.get(levels[levels.length - 1]!)!,
        };
        rows.push(row);
        log(
          `  ${op} ${String(inFlight).padStart(3)} in flight: ${Math.round(r.opsPerSec).toLocaleString('en-US')} ops/s (TCP echo limit ${Math.round(row.tcpLimitOpsPerSec).toLocaleString('en-US')}/s, ratio ${(r.opsPerSec / row.tcpLimitOpsPerSec).toFixed(3)}), p50 ${r.latencyMs.p50.toFixed(2)} ms, p99 ${r.latencyMs.p99.toFixed(2)} ms, errors ${r.errors}; CPU ${row.cpuUsPerOp.toFixed(1)} µs/op in the nodes, ${row.leaderCpuUsPerOp.toFixed(1)} in the leader (client ${row.clientCpuUsPerOp.toFixed(1)}): ${row.threads.map((t) => `${t.who} ${t.usPerOp.toFixed(1)}`).join(', ')}`,
        );
      }
    }
    if (options.readsAb !== undefined) {
      abMedians(rows, log);
      return { loopbackRoundTripMs: echo.roundTripMs, rows, sync: { walP50Ms: 0, walP99Ms: 0, walWrites: 0, loopP50Ms: 0, loopP99Ms: 0, loopMaxMs: 0 }, memory: undefined };
    }
    const sync = await syncAgainstSockets(metrics[leaderIndex]!);
    log(`sync against sockets (the leader, over every loop): WAL write (writev + fdatasync) p50 <= ${sync.walP50Ms} ms, p99 <= ${sync.walP99Ms} ms, ${sync.walWrites} writes; the socket thread's event-loop delay p50 ${sync.loopP50Ms.toFixed(2)} ms, p99 ${sync.loopP99Ms.toFixed(2)} ms, max ${sync.loopMaxMs.toFixed(2)} ms`);
    const memory = await followerStopped(client0, keys, value, nodes, leaderIndex, stopMs, log);
    return { loopbackRoundTripMs: echo.roundTripMs, rows, sync, memory };
  } finally {
    await kv?.close();
    for (const n of nodes) {
      if (n.exitCode === null && n.signalCode === null) {
        n.kill('SIGCONT');
        n.kill('SIGTERM');
      }
    }
    await Promise.all(nodes.map((n) => (n.exitCode !== null || n.signalCode !== null ? undefined : new Promise((r) => n.once('exit', r)))));
    process.off('exit', removeDir);
    removeDir();
  }
}

/** The leader's RSS while a follower is stopped (SIGSTOP) for `stopMs` under puts at 256 in flight, and the follower's catch-up after SIGCONT. */
async function followerStopped(kv: NetworkClient, keys: string[], value: Uint8Array, nodes: ChildProcess[], leaderIndex: number, stopMs: number, log: (line: string) => void): Promise<TcpBenchResult['memory']> {
  const follower = [0, 1, 2].find((i) => i !== leaderIndex)!;
  const leaderPid = nodes[leaderIndex]!.pid!;
  const rssBefore = rssMiB(leaderPid);
  log(`memory: node ${follower + 1} stopped for ${stopMs} ms under puts at 256 in flight; leader (node ${leaderIndex + 1}) RSS ${rssBefore.toFixed(0)} MiB before`);
  nodes[follower]!.kill('SIGSTOP');
  let rssMax = rssBefore;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssMiB(leaderPid))), 250);
  let r: LoopResult;
  try {
    r = await closedLoop((i) => kv.put(keys[i % KEY_SPACE]!, value), { inFlight: 256, durationMs: stopMs });
  } finally {
    clearInterval(sampler);
    nodes[follower]!.kill('SIGCONT');
  }
  const resumedAt = performance.now();
  let catchUpMs = -1;
  for (;;) {
    const s = await kv.get(keys[0]!, { consistency: 'stale', nodeId: follower + 1 }).then(
      () => true,
      () => false,
    );
    const st = kv.endpoints().find((e) => e.nodeId === follower + 1);
    if (s && st?.up === true) {
      catchUpMs = performance.now() - resumedAt;
      break;
    }
    if (performance.now() - resumedAt > 60_000) break;
    await new Promise((res) => setTimeout(res, 50));
  }
  log(`  leader RSS max ${rssMax.toFixed(0)} MiB (before ${rssBefore.toFixed(0)}); ${Math.round(r.opsPerSec).toLocaleString('en-US')} puts/s meanwhile, ${r.ops} puts; follower answering again ${catchUpMs.toFixed(0)} ms after SIGCONT`);
  return { stoppedMs: stopMs, leaderRssBeforeMiB: rssBefore, leaderRssMaxMiB: rssMax, putsWhileStopped: r.ops, catchUpMs };
}

export interface SyncAgainstSockets {
  /** Upper bounds of the histogram buckets holding the median and the 99th percentile WAL write. */
  readonly walP50Ms: number;
  readonly walP99Ms: number;
  readonly walWrites: number;
  readonly loopP50Ms: number;
  readonly loopP99Ms: number;
  readonly loopMaxMs: number;
}

/**
 * From the leader's /metrics: its WAL writes (on the node's thread) and its socket thread's
 * event-loop delay. Were the sockets on the node's thread, each write would hold them for its
 * whole length; here they wait only for their own thread's work.
 */
async function syncAgainstSockets(metricsPort: number): Promise<SyncAgainstSockets> {
  const text = await (await fetch(`http://${HOST}:${metricsPort}/metrics`)).text();
  const buckets = [...text.matchAll(/^ringraft_wal_write_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map((m) => ({ le: m[1] === '+Inf' ? Infinity : Number(m[1]), count: Number(m[2]) }));
  const total = buckets[buckets.length - 1]?.count ?? 0;
  const at = (q: number): number => (buckets.find((b) => b.count >= q * total)?.le ?? Infinity) * 1000;
  const gauge = (quantile: string): number => Number(new RegExp(`^ringraft_event_loop_delay_seconds\\{quantile="${quantile.replace('.', '\\.')}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) * 1000;
  return { walP50Ms: at(0.5), walP99Ms: at(0.99), walWrites: total, loopP50Ms: gauge('0.5'), loopP99Ms: gauge('0.99'), loopMaxMs: gauge('1') };
}

/** The index (node id - 1) of the node all reachable nodes report as leader. */
async function leaderOf(endpoints: readonly string[], tls: { caFile: string } | undefined): Promise<number> {
  for (;;) {
    const leaders = new Set<number>();
    for (const e of endpoints) {
      const answer = (await adminCall(e, TOKEN, { op: 'status' }, 2_000, tls).catch(() => undefined)) as { node: { leaderId: number } } | undefined;
      if (answer !== undefined) leaders.add(answer.node.leaderId);
    }
    const [only] = leaders;
    if (leaders.size === 1 && only !== undefined && only !== 0) return only - 1;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A CA and a certificate per node (CN node-<id>) in `dir`, made with the openssl command. */
function makeCertificates(dir: string, nodes: number): void {
  const run = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=bench-ca', '-days', '2']);
  for (let id = 1; id <= nodes; id++) {
    run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `node-${id}.key`, '-out', `node-${id}.csr`, '-subj', `/CN=node-${id}`]);
    run(['x509', '-req', '-in', `node-${id}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', String(id + 1), '-out', `node-${id}.crt`, '-days', '2']);
  }
}

/** CPU time (ns) of every thread of process `pid`, summed. */
function processTime(pid: number): number {
  return totalNs(threadTimes(pid));
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => {
      const s = createServer();
      return new Promise<ReturnType<typeof createServer>>((resolve) => s.listen({ host: HOST, port: 0 }, () => resolve(s)));
    }),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/**
 * The network's own limit on loopback: a child process echoes frames of `frameBytes`; the
 * round trip at one in flight, and echoes per second with `levels` frames in flight
 * (pipelined, each answered as it arrives), `timeMs` each.
 */
async function echoLimit(frameBytes: number, levels: readonly number[], timeMs: number): Promise<{ roundTripMs: number; opsPerSec: Map<number, number> }> {
  const child = spawn(process.execPath, ['-e', ECHO_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    const { connect: netConnect } = await import('node:net');
    const socket = netConnect({ host: HOST, port, noDelay: true });
    await new Promise((r) => socket.once('connect', r));
    let received = 0;
    let pending = 0;
    let onEcho: (() => void) | undefined;
    socket.on('data', (d: Buffer) => {
      pending += d.length;
      while (pending >= frameBytes) {
        pending -= frameBytes;
        received++;
        onEcho?.();
      }
    });
    const frame = Buffer.alloc(frameBytes, 1);
    const run = (inFlight: number, ms: number): Promise<number> =>
      new Promise((resolve) => {
        const start = performance.now();
        const base = received;
        for (let i = 0; i < inFlight; i++) socket.write(frame);
        onEcho = () => {
          if (performance.now() - start >= ms) {
            if (received - base >= inFlight) {
              onEcho = undefined;
              resolve(((received - base - inFlight) / (performance.now() - start)) * 1000);
            }
            return;
          }
          socket.write(frame);
        };
      });
    const rt = await run(1, timeMs);
    const opsPerSec = new Map<number, number>();
    for (const l of levels) opsPerSec.set(l, await run(l, timeMs));
    socket.destroy();
    return { roundTripMs: 1000 / rt, opsPerSec };
  } finally {
    child.kill('SIGKILL');
  }
}

const ECHO_SERVER = `
const net = require('node:net');
const s = net.createServer({ noDelay: true }, (c) => c.on('data', (d) => c.write(d)));
s.listen({ host: '127.0.0.1', port: 0 }, () => process.stdout.write(String(s.address().port) + '\\n'));
`;

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const quick = process.argv.includes('--quick');
  const tlsOn = process.argv.includes('--tls');
  const stopAt = process.argv.indexOf('--stop-ms');
  const stopMs = stopAt >= 0 ? Number(process.argv[stopAt + 1]) : undefined;
  const abAt = process.argv.indexOf('--reads-ab');
  const readsAb = abAt >= 0 ? Number(process.argv[abAt + 1]) : undefined;
  if (readsAb !== undefined && !(Number.isInteger(readsAb) && readsAb >= 1 && readsAb <= 20)) throw new RangeError('--reads-ab takes a count from 1 to 20');
  const result = await runClusterTcp({ quick, stopMs, tls: tlsOn, ...(readsAb === undefined ? {} : { readsAb }) });
  console.log(JSON.stringify(result));
}
