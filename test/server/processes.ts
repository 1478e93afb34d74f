// A cluster of real `ringraft serve` processes on 127.0.0.1, ports found free at run time,
// each process stopped by its PID after the test (SIGKILL if it outlives a SIGTERM).
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach } from 'vitest';
import type { NodeStatus } from '../../src/runtime/index.ts';
import { FaultProxy } from './fault-proxy.ts';
import { FAST_SERVE, HOST, portsFor, statusOver, tempDirs, waitFor } from './helpers.ts';

const BIN = resolve(import.meta.dirname, '../../bin/ringraft.js');
const TOKEN = 'serve-tests';

export interface ServeProcess {
  readonly id: number;
  child: ChildProcess;
  /** Parsed JSON log lines, in order; non-JSON lines as { text }. */
  readonly lines: Record<string, unknown>[];
  /** Resolves with the exit code (or 128 + signal) when the current process exits. */
  exited: Promise<number>;
}

export interface ProcessCluster {
  readonly nodes: Map<number, ServeProcess>;
  readonly ports: { readonly peer: number[]; readonly client: number[] };
  readonly dataDirs: string[];
  /** `HOST:PORT` of every node's client port. */
  endpoints(): string[];
  /** Starts node `id` (again) from its data directory; resolves when it logs 'ready'. */
  start(id: number, extraArgs?: readonly string[]): Promise<ServeProcess>;
  signal(id: number, signal: NodeJS.Signals): void;
  /** The node that every live node reports as leader, once they agree. */
  leader(ids?: readonly number[], timeoutMs?: number): Promise<number>;
  status(id: number): Promise<NodeStatus>;
  /** With `proxied`: cuts node `id` off from every peer, both ways (its sockets stay open, bytes vanish). */
  isolate(id: number): void;
  /** With `proxied`: every proxy passes everything again. */
  heal(): void;
}

/** Makes process clusters for one test file; every process is stopped by PID after each test. */
export function processClusters(): (
  n: number,
  extraArgs?: readonly string[],
  config?: { readonly raft?: object; readonly node?: object },
  /**
   * `proxied`: every peer connection through its own fault proxy (node i to node j:
   * proxies[i][j]). `members`: only nodes 1..members form the cluster and start; the others
   * get ports and directories, and are started later (with --join) to be added. `argsOf`:
   * flags of each node's own (a port of its own, say).
   */
  options?: { readonly proxied?: boolean; readonly members?: number; readonly argsOf?: (id: number) => readonly string[] },
) => Promise<ProcessCluster> {
  const dirs = tempDirs();
  const live: ServeProcess[] = [];
  const proxies: FaultProxy[] = [];
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    const all = live.splice(0);
    for (const p of all) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(all.map((p) => p.exited));
  });
  return async (n, extraArgs = [], config = {}, options = {}) => {
    const ports = await portsFor(n);
    // proxyOf[i][j]: node i+1's way to node j+1.
    const proxyOf: (FaultProxy | undefined)[][] = [];
    for (let i = 0; i < n; i++) {
      proxyOf.push([]);
      for (let j = 0; j < n; j++) {
        const proxy = options.proxied === true && i !== j ? await FaultProxy.start({ host: HOST, port: ports.peer[j]! }) : undefined;
        if (proxy !== undefined) proxies.push(proxy);
        proxyOf[i]!.push(proxy);
      }
    }
    const members = options.members ?? n;
    // Original members list the original members; a node added later lists every node.
    const initialClusterOf = (id: number): string =>
      ports.peer
        .slice(0, id <= members ? members : n)
        .map((p, j) => `${j + 1}=${HOST}:${proxyOf[id - 1]![j]?.port ?? p}`)
        .join(',');
    const dataDirs = Array.from({ length: n }, () => dirs());
    // Short ticks and timeouts, durable writes: through --config, as an operator would.
    const configFile = join(dirs(), 'fast.json');
    writeFileSync(configFile, JSON.stringify({ ...FAST_SERVE, raft: { ...FAST_SERVE.raft, ...config.raft }, node: { ...FAST_SERVE.node, fsync: 'always', ...config.node } }));
    const nodes = new Map<number, ServeProcess>();
    const cluster: ProcessCluster = {
      nodes,
      ports,
      dataDirs,
      endpoints: () => ports.client.map((p) => `${HOST}:${p}`),
      start: async (id, more = []) => {
        const args = [
          BIN, 'serve', '--id', String(id), '--data-dir', dataDirs[id - 1]!,
          '--listen-peer', `${HOST}:${ports.peer[id - 1]}`, '--listen-client', `${HOST}:${ports.client[id - 1]}`,
          '--initial-cluster', initialClusterOf(id), '--cluster-token', TOKEN, '--config', configFile, ...extraArgs, ...(options.argsOf?.(id) ?? []), ...more,
        ];
        const p = spawnServe(id, args);
        live.push(p);
        nodes.set(id, p);
        await waitFor(() => (p.lines.some((l) => l['kind'] === 'ready') ? true : exitedEarly(p)), `node ${id} ready`, 20_000);
        return p;
      },
      signal: (id, signal) => {
        nodes.get(id)!.child.kill(signal);
      },
      leader: async (ids = [...nodes.keys()], timeoutMs = 15_000) =>
        waitFor(async () => {
          const leaders = new Set<number>();
          for (const id of ids) {
            try {
              const s = await statusOver(ports.client[id - 1]!);
              leaders.add(s.leaderId);
            } catch {
              return undefined;
            }
          }
          const [only] = leaders;
          return leaders.size === 1 && only !== 0 ? only : undefined;
        }, 'one leader all agree on', timeoutMs),
      status: (id) => statusOver(ports.client[id - 1]!),
      isolate: (id) => {
        for (let k = 0; k < n; k++) {
          proxyOf[id - 1]![k]?.blackhole();
          proxyOf[k]![id - 1]?.blackhole();
        }
      },
      heal: () => {
        for (const row of proxyOf) for (const p of row) p?.heal();
      },
    };
    await Promise.all([...Array(members).keys()].map((i) => cluster.start(i + 1)));
    return cluster;
  };
}

function spawnServe(id: number, args: readonly string[]): ServeProcess {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let rest = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    rest += chunk;
    let at: number;
    while ((at = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, at);
      rest = rest.slice(at + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ text: line });
      }
    }
  });
  child.stdout!.resume();
  const exited = new Promise<number>((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : signal === 'SIGINT' ? 2 : 1)));
  });
  return { id, child, lines, exited };
}

function exitedEarly(p: ServeProcess): undefined {
  if (p.child.exitCode !== null) throw new Error(`node ${p.id} exited with ${p.child.exitCode}: ${JSON.stringify(p.lines.slice(-5))}`);
  return undefined;
}
