/**
 * Helpers for the TCP transport tests: transports on 127.0.0.1 with fast timers that record
 * what they receive and log, raw servers and clients that speak (or break) the wire format,
 * and a bounded wait.
 */
import { Buffer } from 'node:buffer';
import { type AddressInfo, type Server, type Socket, connect, createServer } from 'node:net';
import { afterEach, expect } from 'vitest';
import type { ErrorCode } from '../../../src/base/index.ts';
import {
  FrameDecoder,
  FrameType,
  type PeerAddress,
  type TcpLane,
  type TcpLogEntry,
  type TcpLogKind,
  TcpTransport,
  type TcpTransportOptions,
  type TcpTransportSettingsInput,
  clusterIdOf,
  decodeHandshake,
  encodeHandshake,
} from '../../../src/transport/tcp/index.ts';

export const HOST = '127.0.0.1';
export const CLUSTER_ID = clusterIdOf('tcp-transport-tests');

/** Timers short enough for tests, long enough not to fire by accident on a loaded 2-core machine. */
export const FAST: TcpTransportSettingsInput = {
  keepaliveIntervalMs: 100,
  idleTimeoutMs: 3_000,
  writeStallTimeoutMs: 3_000,
  redialBackoffMsMin: 10,
  redialBackoffMsMax: 200,
};

export interface Received {
  readonly from: number;
  readonly lane: TcpLane;
  /** A copy: the transport's view is valid only during onMessage. */
  readonly bytes: Uint8Array;
}

/** A started transport and what it reported. */
export interface TestNode {
  readonly id: number;
  readonly transport: TcpTransport;
  readonly address: PeerAddress;
  readonly received: Received[];
  readonly logs: TcpLogEntry[];
  readonly unreachable: number[];
}

export type NodeOptions = Partial<Omit<TcpTransportOptions, 'nodeId' | 'onMessage' | 'onLog' | 'onUnreachable'>>;

/** Starts a transport for node `id` on 127.0.0.1 (a free port unless `listen` says otherwise); `tap` sees each message as it arrives. */
export async function startNode(id: number, options: NodeOptions = {}, tap?: (received: Received) => void): Promise<TestNode> {
  const received: Received[] = [];
  const logs: TcpLogEntry[] = [];
  const unreachable: number[] = [];
  const transport = await TcpTransport.start({
    clusterId: CLUSTER_ID,
    listen: { host: HOST, port: 0 },
    ...options,
    settings: { ...FAST, ...options.settings },
    nodeId: id,
    onMessage: (from, bytes, lane) => {
      const r = { from, lane, bytes: Uint8Array.from(bytes) };
      received.push(r);
      tap?.(r);
    },
    onLog: (entry) => logs.push(entry),
    onUnreachable: (peerId) => unreachable.push(peerId),
  });
  return { id, transport, address: transport.address, received, logs, unreachable };
}

/** Makes every node a peer of every other. */
export function meshPeers(nodes: readonly TestNode[]): void {
  for (const a of nodes) for (const b of nodes) if (a !== b) a.transport.setPeer(b.id, b.address);
}

/** Waits until `condition` holds, polling; fails with `what` after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A message whose bytes say who sent it, on which lane, and its sequence number. */
export function message(from: number, lane: TcpLane, seq: number, sizeBytes = 24): Uint8Array {
  const bytes = new Uint8Array(Math.max(12, sizeBytes));
  const view = new DataView(bytes.buffer);
  view.setUint32(0, from, true);
  view.setUint32(4, ['control', 'append', 'snapshot'].indexOf(lane), true);
  view.setUint32(8, seq, true);
  for (let i = 12; i < bytes.length; i++) bytes[i] = (seq + i) & 0xff;
  return bytes;
}

export function seqOf(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
}

/** The log entries of `kind`. */
export function logsOf(node: TestNode, kind: TcpLogKind): TcpLogEntry[] {
  return node.logs.filter((e) => e.kind === kind);
}

/** Asserts that `node` logged an entry of `kind` whose error has `code`; returns it. */
export function expectLogged(node: TestNode, kind: TcpLogKind, code: ErrorCode): TcpLogEntry {
  const entry = node.logs.find((e) => e.kind === kind && e.error?.code === code);
  expect(entry, `${kind} ${code} in ${JSON.stringify(node.logs.map((e) => `${e.kind} ${e.error?.code ?? ''}`))}`).toBeDefined();
  return entry!;
}

/** A port nothing listens on (taken and released; good enough for one test). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen({ host: HOST, port: 0 }, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A raw TCP client to `address`, connected. */
export async function rawClient(address: PeerAddress): Promise<Socket> {
  const socket = connect({ host: address.host, port: address.port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => {});
  return socket;
}

/** Resolves when `socket` is closed (whoever closed it). */
export function closedOf(socket: Socket): Promise<void> {
  return socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}

/** The HELLO frame of node `from` to node `to` on `lane`, as a dialler sends it. */
export function hello(from: number, to: number, lane: TcpLane = 'control', clusterId = CLUSTER_ID): Buffer {
  return encodeHandshake(FrameType.HELLO, lane, clusterId, from, to);
}

/**
 * A raw server that plays a peer's listener: it answers each HELLO with the matching
 * WELCOME, then does what `afterWelcome` says with the socket (pause it, read and ignore...).
 * Records the time of each connection.
 */
export interface RawServer {
  readonly server: Server;
  readonly address: PeerAddress;
  readonly sockets: Socket[];
  readonly acceptedAtMs: number[];
  close(): Promise<void>;
}

export async function rawPeerServer(peerId: number, afterWelcome: (socket: Socket) => void): Promise<RawServer> {
  const sockets: Socket[] = [];
  const acceptedAtMs: number[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    acceptedAtMs.push(performance.now());
    socket.on('error', () => {});
    const decoder = new FrameDecoder(1 << 20);
    let welcomed = false;
    const onData = (chunk: Buffer): void => {
      decoder.push(chunk, (type, payload) => {
        if (welcomed || type !== FrameType.HELLO) return true;
        const h = decodeHandshake(payload);
        socket.write(encodeHandshake(FrameType.WELCOME, (['control', 'append', 'snapshot'] as const)[h.laneWire - 1]!, h.clusterId, peerId, h.senderId));
        welcomed = true;
        socket.off('data', onData);
        afterWelcome(socket);
        return false;
      });
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen({ host: HOST, port: 0 }, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    address: { host: HOST, port },
    sockets,
    acceptedAtMs,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * What a test file opened, closed after each test: `node` starts a transport as `startNode`
 * does, `keep` takes a raw server or socket.
 */
export function closeAfterEach(): {
  node: (...args: Parameters<typeof startNode>) => Promise<TestNode>;
  keep: <T extends RawServer | Socket>(resource: T) => T;
} {
  const nodes: TestNode[] = [];
  const others: (RawServer | Socket)[] = [];
  afterEach(async () => {
    const closing = nodes.splice(0).map((n) => n.transport.close());
    for (const r of others.splice(0)) closing.push('destroy' in r ? Promise.resolve(void r.destroy()) : r.close());
    await Promise.all(closing);
  });
  return {
    node: async (...args) => {
      const n = await startNode(...args);
      nodes.push(n);
      return n;
    },
    keep: (resource) => {
      others.push(resource);
      return resource;
    },
  };
}
