/**
 * The servers the comparison starts itself: 3 `ringraft serve` processes, a 3-member etcd cluster and a Redis, on
 * 127.0.0.1 with ports the kernel hands out and data in a temporary directory.
 *
 * Every process started here is owned by one {@link ServerSet}, which stops it by its PID
 * (SIGTERM, then SIGKILL if it lingers) and never by name. `killAllSync` is for the last
 * moment of a process (`exit` handler): it cannot wait, so it sends SIGKILL at once.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, mkdirSync, openSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { adminCall } from '../../src/client/index.ts';

/** How long a server may take to answer after it starts. etcd elects a leader in about 1 s. */
export const SERVER_START_TIMEOUT_MS = 20_000;
/** How long a server may take to exit after SIGTERM before it gets SIGKILL. */
export const SERVER_STOP_TIMEOUT_MS = 5_000;
/** Lines of a server's log quoted in an error when it fails to start. */
const LOG_TAIL_LINES = 20;
const HOST = '127.0.0.1';

/** A peer system's binary and the Debian package that installs it. */
export interface PeerBinary {
  readonly command: string;
  readonly debianPackage: string;
}

export const ETCD_BINARY: PeerBinary = { command: 'etcd', debianPackage: 'etcd-server' };
export const REDIS_BINARY: PeerBinary = { command: 'redis-server', debianPackage: 'redis-server' };

/** The binary's path on `searchPath` (default: $PATH, then /usr/bin), or undefined. */
export function findBinary(binary: PeerBinary, searchPath: readonly string[] = defaultSearchPath()): string | undefined {
  for (const dir of searchPath) {
    const candidate = path.join(dir, binary.command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; try the next directory.
    }
  }
  return undefined;
}

function defaultSearchPath(): string[] {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d.length > 0);
  return [...dirs, '/usr/bin'];
}

/** What to print when a binary is missing. */
export function notInstalledMessage(binary: PeerBinary): string {
  return `${binary.command} is not installed; install it with \`apt-get install ${binary.debianPackage}\` (skipped)`;
}

/** `count` distinct free TCP ports on 127.0.0.1, all held open at once so that none repeats. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, HOST, () => resolve());
      });
    }
    return servers.map((s) => {
      const address = s.address();
      if (address === null || typeof address === 'string') throw new Error('assertion failed: a TCP server has a port');
      return address.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** One server process, its output going to a log file. */
export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Resolves when the process has exited (and been reaped). */
  readonly exited: Promise<void>;
  hasExited(): boolean;
}

interface Owned {
  readonly server: ServerProcess;
  readonly child: ChildProcess;
}

/** The processes one run started; each is stopped by its PID. */
export class ServerSet {
  private readonly owned = new Map<number, Owned>();

  /** Starts `bin args...` with stdout and stderr appended to `logPath`. */
  start(name: string, bin: string, args: readonly string[], logPath: string): ServerProcess {
    mkdirSync(path.dirname(logPath), { recursive: true });
    const logFd = openSync(logPath, 'a');
    let child: ChildProcess;
    try {
      child = spawn(bin, args, { stdio: ['ignore', logFd, logFd] });
    } finally {
      // The child holds its own copy of the descriptor.
      closeSync(logFd);
    }
    if (child.pid === undefined) throw new Error(`${name}: ${bin} did not start`);
    const pid = child.pid;
    let done = false;
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        done = true;
        this.owned.delete(pid);
        resolve();
      });
    });
    // A spawn failure after the PID is known (rare) arrives as 'error'; the exit promise covers the rest.
    child.once('error', () => undefined);
    const server: ServerProcess = { name, pid, logPath, exited, hasExited: () => done };
    this.owned.set(pid, { server, child });
    return server;
  }

  /** PIDs of the processes still running. */
  pids(): number[] {
    return [...this.owned.keys()];
  }

  /** SIGTERM, then SIGKILL after {@link SERVER_STOP_TIMEOUT_MS}; resolves once it has exited. */
  async stop(server: ServerProcess): Promise<void> {
    const owned = this.owned.get(server.pid);
    if (owned === undefined || server.hasExited()) return;
    signal(server.pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), SERVER_STOP_TIMEOUT_MS)));
    const outcome = await Promise.race([server.exited.then(() => 'exited' as const), late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      signal(server.pid, 'SIGKILL');
      await server.exited;
    }
  }

  /**
   * Stops every process still running, one after the other in the order they started. One at
   * a time because an etcd leader stopped together with its followers waits for a leadership
   * transfer that cannot happen (measured: the whole SIGTERM grace period, then SIGKILL);
   * stopped one by one, each member exits within some 100 ms.
   */
  async stopAll(): Promise<void> {
    for (const o of [...this.owned.values()]) await this.stop(o.server);
  }

  /** For an `exit` handler, which cannot wait: SIGKILL to every process still running. */
  killAllSync(): void {
    for (const pid of this.owned.keys()) signal(pid, 'SIGKILL');
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    // ESRCH: it has exited already, which is what we want.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** Whether a process with this PID exists (signal 0 checks without sending anything). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The last lines of a server's log, for an error message. */
export function logTail(server: ServerProcess): string {
  try {
    const lines = readFileSync(server.logPath, 'utf8').trimEnd().split('\n');
    return lines.slice(-LOG_TAIL_LINES).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Polls `ready` every 50 ms until it resolves to true, failing when a server exits first
 * or after `timeoutMs`.
 */
export async function waitUntilReady(servers: readonly ServerProcess[], ready: () => Promise<boolean>, timeoutMs = SERVER_START_TIMEOUT_MS): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const dead = servers.find((s) => s.hasExited());
    if (dead !== undefined) throw new Error(`${dead.name} exited while starting; its log ends:\n${logTail(dead)}`);
    if (await ready().catch(() => false)) return;
    if (performance.now() > deadline) {
      throw new Error(`${servers.map((s) => s.name).join(', ')} not ready after ${timeoutMs} ms; the log of ${servers[0]!.name} ends:\n${logTail(servers[0]!)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// ─── ringraft serve ──────────────────────────────────────────────────────────────

/** `bin/ringraft.js`, from the sources (`bench/peers`) or from the build (`dist/bench/peers`). */
export const RINGRAFT_BIN = path.resolve(import.meta.dirname, import.meta.url.endsWith('.ts') ? '../../bin/ringraft.js' : '../../../bin/ringraft.js');

export interface RingraftServe {
  readonly members: readonly ServerProcess[];
  /** Client addresses (HOST:PORT), one per node. */
  readonly endpoints: readonly string[];
  /** RESP ports, one per node (`--listen-resp`). */
  readonly respPorts: readonly number[];
  readonly clusterToken: string;
  /** The node that leads now (1-based). */
  leader(): Promise<number>;
}

/**
 * Starts `size` `ringraft serve` processes (fsync 'always', the default), each with its data
 * directory and log under `dataDir`, and waits until every node names the same leader.
 * On failure the processes started so far are stopped before the error is thrown.
 */
export async function startRingraftServe(set: ServerSet, dataDir: string, size = 3): Promise<RingraftServe> {
  const clusterToken = 'ringraft-peers';
  const ports = await freePorts(3 * size);
  const respPorts = Array.from({ length: size }, (_, i) => ports[2 * size + i]!);
  const peer = (i: number) => `${HOST}:${ports[2 * i + 1]!}`;
  const endpoints = Array.from({ length: size }, (_, i) => `${HOST}:${ports[2 * i]!}`);
  const initialCluster = endpoints.map((_, i) => `${i + 1}=${peer(i)}`).join(',');
  const members = endpoints.map((client, i) =>
    set.start(
      `ringraft${i + 1}`,
      process.execPath,
      [RINGRAFT_BIN, 'serve', '--id', String(i + 1), '--data-dir', path.join(dataDir, `n${i + 1}`), '--listen-peer', peer(i), '--listen-client', client, '--initial-cluster', initialCluster, '--cluster-token', clusterToken, '--listen-resp', `${HOST}:${respPorts[i]!}`, '--log-level', 'warn'],
      path.join(dataDir, `ringraft${i + 1}.log`),
    ),
  );
  try {
    await waitUntilReady(members, () => oneLeader(endpoints, clusterToken));
  } catch (error) {
    for (const m of members) await set.stop(m);
    throw error;
  }
  const leader = async (): Promise<number> => ((await adminCall(endpoints[0]!, clusterToken, { op: 'status' }, 5_000)) as { node: { leaderId: number } }).node.leaderId;
  return { members, endpoints, respPorts, clusterToken, leader };
}

/** Whether every node answers `status` and all name the same leader. */
async function oneLeader(endpoints: readonly string[], clusterToken: string): Promise<boolean> {
  const answers = await Promise.all(endpoints.map((e) => adminCall(e, clusterToken, { op: 'status' }, 1_000)));
  const leaders = new Set(answers.map((a) => (a as { node: { leaderId: number } }).node.leaderId));
  return leaders.size === 1 && !leaders.has(0);
}

// ─── etcd ────────────────────────────────────────────────────────────────────────

export interface EtcdCluster {
  readonly members: readonly ServerProcess[];
  /** Client URLs, one per member. */
  readonly endpoints: readonly string[];
}

/**
 * Starts a cluster of `size` etcd members, each with its own data directory under
 * `dataDir`, and waits until every member reports healthy (which needs a leader).
 * On failure the members started so far are stopped before the error is thrown.
 */
export async function startEtcdCluster(set: ServerSet, bin: string, dataDir: string, size = 3): Promise<EtcdCluster> {
  const ports = await freePorts(2 * size);
  const names = Array.from({ length: size }, (_, i) => `etcd${i + 1}`);
  const clientUrl = (i: number) => `http://${HOST}:${ports[2 * i]!}`;
  const peerUrl = (i: number) => `http://${HOST}:${ports[2 * i + 1]!}`;
  const initialCluster = names.map((n, i) => `${n}=${peerUrl(i)}`).join(',');
  const members = names.map((name, i) =>
    set.start(
      name,
      bin,
      [
        `--name=${name}`,
        `--data-dir=${path.join(dataDir, name)}`,
        `--listen-client-urls=${clientUrl(i)}`,
        `--advertise-client-urls=${clientUrl(i)}`,
        `--listen-peer-urls=${peerUrl(i)}`,
        `--initial-advertise-peer-urls=${peerUrl(i)}`,
        `--initial-cluster=${initialCluster}`,
        '--initial-cluster-state=new',
        '--initial-cluster-token=ringraft-peers',
        '--logger=zap',
        '--log-outputs=stderr',
        '--log-level=warn',
      ],
      path.join(dataDir, `${name}.log`),
    ),
  );
  const endpoints = names.map((_, i) => clientUrl(i));
  try {
    await waitUntilReady(members, async () => (await Promise.all(endpoints.map(isEtcdHealthy))).every((h) => h));
  } catch (error) {
    // One by one: see ServerSet.stopAll.
    for (const m of members) await set.stop(m);
    throw error;
  }
  return { members, endpoints };
}

/** etcd's /health answers {"health":"true"} once the member has a leader and serves. */
async function isEtcdHealthy(endpoint: string): Promise<boolean> {
  const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1_000) });
  if (!response.ok) return false;
  const body = (await response.json()) as { health?: unknown };
  return body.health === 'true';
}

// ─── Redis ───────────────────────────────────────────────────────────────────────

export type RedisFsync = 'always' | 'everysec';

export interface RedisServer {
  readonly server: ServerProcess;
  readonly port: number;
}

/**
 * Starts one Redis with an append-only file synced per `appendfsync` (`always`: before
 * replying, one fsync per event-loop turn; `everysec`: once a second, so up to a second of
 * acknowledged writes can be lost) and no RDB snapshots. `isReady` is how the caller checks
 * that it answers (a PING through its client).
 */
export async function startRedis(set: ServerSet, bin: string, dataDir: string, fsync: RedisFsync, isReady: (port: number) => Promise<boolean>): Promise<RedisServer> {
  const [port] = await freePorts(1);
  mkdirSync(dataDir, { recursive: true });
  const server = set.start(
    `redis (appendfsync ${fsync})`,
    bin,
    [
      '--port', String(port),
      '--bind', HOST,
      '--dir', dataDir,
      '--appendonly', 'yes',
      '--appendfsync', fsync,
      '--save', '',
      '--daemonize', 'no',
      '--loglevel', 'warning',
    ],
    path.join(dataDir, 'redis.log'),
  );
  try {
    await waitUntilReady([server], () => isReady(port!));
  } catch (error) {
    await set.stop(server);
    throw error;
  }
  return { server, port: port! };
}
