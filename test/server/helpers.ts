// Helpers for tests of the node server: free ports, configurations, an admin client over
// the client port that asks one node for its status, and a redis-server to compare with.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { decodeReply, encodedRequestBytes, writeRequest, type ClientReply, type NodeStatus } from '../../src/runtime/index.ts';
import { createLogger, NodeServer, resolveServeConfig, type Logger, type ServeConfig, type ServeConfigInput } from '../../src/server/index.ts';
import { ClientPortConnection, clusterIdOf } from '../../src/transport/index.ts';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { HOST } from '../transport/tcp/helpers.ts';

export { HOST };

/**
 * A port to listen on later, free now. Chosen below the kernel's ephemeral range: a port
 * the kernel hands out (port 0) can be taken by any outgoing connection between the check
 * and the listen (a node's peers dial all the time), one below the range only by another
 * listener. Random, and checked by a bind, so concurrent test files rarely collide.
 */
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const top = Math.min(low ?? 32768, 65536) - 1;
  const bottom = Math.max(1024, top - 12_000);
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = bottom + Math.floor(Math.random() * (top - bottom));
    // Free now, but perhaps handed out a moment ago and not listened on yet.
    if (handedOut.has(port)) continue;
    const server = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen({ host: HOST, port }, () => resolve(true));
    });
    if (ok) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port found below the ephemeral range');
}

/**
 * A redis-server of the test file's own (nothing persisted) on a free port of HOST, started
 * before the file's tests (ready once it answers PING) and stopped by its PID after them;
 * `port()` says where it listens.
 */
export function redisServer(): { port(): number } {
  let port = 0;
  let pid: number | undefined;
  beforeAll(async () => {
    for (const [tool, pkg] of [['redis-server', 'redis-server'], ['redis-cli', 'redis-tools']] as const) {
      if (spawnSync(tool, ['--version']).error !== undefined) throw new Error(`${tool} is not installed: apt-get install ${pkg} (.ci/run installs it)`);
    }
    port = await freePort();
    pid = spawn('redis-server', ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' }).pid;
    for (let i = 0; i < 200; i++) {
      if (spawnSync('redis-cli', ['-h', HOST, '-p', String(port), 'ping'], { encoding: 'utf8' }).stdout?.trim() === 'PONG') return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('redis-server did not start');
  }, 20_000);
  afterAll(() => {
    if (pid !== undefined) process.kill(pid);
  });
  return { port: () => port };
}

/** Settings that make a test cluster quick: short ticks and timeouts. */
export const FAST_SERVE: ServeConfigInput = {
  raft: { electionTimeoutTicks: 10 },
  node: { tickMs: 20, fsync: 'none' },
  peerTransport: { idleTimeoutMs: 2_000, keepaliveIntervalMs: 200, redialBackoffMsMin: 10, redialBackoffMsMax: 80 },
};

/** Makes a fresh directory per call, removed after each test. */
export function tempDirs(): () => string {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const d = mkdtempSync(join(tmpdir(), 'ringraft-serve-'));
    dirs.push(d);
    return d;
  };
}

/** Peer and client ports for nodes 1..n, found free now. */
export async function portsFor(n: number): Promise<{ peer: number[]; client: number[] }> {
  const peer: number[] = [];
  const client: number[] = [];
  for (let i = 0; i < n; i++) {
    peer.push(await freePort());
    client.push(await freePort());
  }
  return { peer, client };
}

/** Node `id`'s configuration in a cluster of `ports.peer.length` nodes. */
export function configOf(id: number, dataDir: string, ports: { peer: number[]; client: number[] }, extra: ServeConfigInput = {}): ServeConfig {
  return resolveServeConfig({
    ...FAST_SERVE,
    id,
    dataDir,
    listenPeer: `${HOST}:${ports.peer[id - 1]}`,
    listenClient: `${HOST}:${ports.client[id - 1]}`,
    initialCluster: ports.peer.map((p, i) => `${i + 1}=${HOST}:${p}`).join(','),
    clusterToken: 'serve-tests',
    ...extra,
  });
}

/** A logger that keeps its lines (parsed) for the test to look at. */
export function memoryLogger(id: number): Logger & { readonly lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return Object.assign(createLogger(id, 'debug', (line) => lines.push(JSON.parse(line) as Record<string, unknown>)), { lines });
}

/** Started servers, shut down after each test. */
export function servers(): (config: ServeConfig, log?: Logger) => Promise<NodeServer> {
  const started: NodeServer[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((s) => s.shutdown()));
  });
  return async (config, log = memoryLogger(config.id)) => {
    const s = await NodeServer.start(config, log);
    started.push(s);
    return s;
  };
}

/** Sends one admin command to the client port at `port` and resolves with the reply. */
export async function admin(port: number, command: object, token = 'serve-tests'): Promise<ClientReply> {
  let resolveReply!: (r: ClientReply) => void;
  const reply = new Promise<ClientReply>((resolve) => (resolveReply = resolve));
  const conn = await ClientPortConnection.connect({ host: HOST, port }, { clusterId: clusterIdOf(token), onReply: (f) => resolveReply(decodeReply(f)) });
  try {
    const req = { kind: 'admin' as const, requestId: 1, body: JSON.stringify(command) };
    const frame = new Uint8Array(encodedRequestBytes(req));
    writeRequest(req, frame);
    conn.send(frame);
    return await reply;
  } finally {
    await conn.close();
  }
}

/** Node status through the client port's admin command. */
export async function statusOver(port: number): Promise<NodeStatus> {
  const r = await admin(port, { op: 'status' });
  if (r.kind !== 'admin') throw new Error(`status refused: ${JSON.stringify(r)}`);
  return (JSON.parse(r.body) as { node: NodeStatus }).node;
}

export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
