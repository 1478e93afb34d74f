/** Helpers for the client port tests: a server that records requests and logs, clients that record replies, all closed after each test. */
import { afterEach } from 'vitest';
import type { RingraftError } from '../../../src/base/index.ts';
import {
  ClientPortConnection,
  ClientPortServer,
  type ClientConnectionHandle,
  type ClientPortLogEntry,
  type ClientPortServerOptions,
  type ClientPortSettingsInput,
  clusterIdOf,
} from '../../../src/transport/tcp/index.ts';
import { encodedRequestBytes, writeRequest, type ClientRequest } from '../../../src/runtime/client-protocol.ts';

export const CLIENT_CLUSTER_ID = clusterIdOf('client-port-tests');
export const FAST_CLIENT: ClientPortSettingsInput = { keepaliveIntervalMs: 100, idleTimeoutMs: 3_000, writeStallTimeoutMs: 3_000 };

export interface TestServer {
  readonly server: ClientPortServer;
  readonly requests: { conn: ClientConnectionHandle; frame: Uint8Array }[];
  readonly logs: ClientPortLogEntry[];
}

export interface TestClient {
  readonly conn: ClientPortConnection;
  readonly replies: Uint8Array[];
  readonly closes: RingraftError[];
}

/** A real request frame (runtime/client-protocol.ts). */
export function readFrame(requestId: number, key = `key-${requestId}`): Uint8Array {
  const req: ClientRequest = { kind: 'read', requestId, consistency: 'stale', key: new TextEncoder().encode(key) };
  const bytes = new Uint8Array(encodedRequestBytes(req));
  writeRequest(req, bytes);
  return bytes;
}

export function requestIdOf(frame: Uint8Array): number {
  return new DataView(frame.buffer, frame.byteOffset, frame.length).getUint32(1, true);
}

export function clientPortResources(): {
  serve: (options?: Partial<ClientPortServerOptions>) => Promise<TestServer>;
  dial: (server: ClientPortServer, settings?: ClientPortSettingsInput, clusterId?: bigint) => Promise<TestClient>;
} {
  const servers: ClientPortServer[] = [];
  const clients: ClientPortConnection[] = [];
  afterEach(async () => {
    await Promise.all([...clients.splice(0).map((c) => c.close()), ...servers.splice(0).map((s) => s.close())]);
  });
  return {
    serve: async (options = {}) => {
      const requests: TestServer['requests'] = [];
      const logs: ClientPortLogEntry[] = [];
      const server = await ClientPortServer.start({
        clusterId: CLIENT_CLUSTER_ID,
        nodeId: 7,
        listen: { host: '127.0.0.1', port: 0 },
        onRequest: (conn, frame) => requests.push({ conn, frame: Uint8Array.from(frame) }),
        onLog: (entry) => logs.push(entry),
        ...options,
        settings: { ...FAST_CLIENT, ...options.settings },
      });
      servers.push(server);
      return { server, requests, logs };
    },
    dial: async (server, settings = {}, clusterId = CLIENT_CLUSTER_ID) => {
      const replies: Uint8Array[] = [];
      const closes: RingraftError[] = [];
      const conn = await ClientPortConnection.connect(server.address, {
        clusterId,
        settings: { ...FAST_CLIENT, ...settings },
        onReply: (frame) => replies.push(Uint8Array.from(frame)),
        onClose: (error) => closes.push(error),
      });
      clients.push(conn);
      return { conn, replies, closes };
    },
  };
}
