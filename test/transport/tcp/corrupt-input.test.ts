// Proves that bytes which are not frames cost one connection and nothing else: on raw sockets
// to a transport, garbage before any handshake, a first frame that is not a HELLO, and (after
// a good handshake as a known peer) a frame length over frameBytesMax, a bad CRC, a malformed
// batch, and half a frame followed by the end of the stream, each make the transport close that
// connection and log 'corrupt' with the typed code (CORRUPT_FRAME or FRAME_TOO_LARGE), deliver
// nothing from the bad frame, and go on serving a good peer's messages.
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../src/base/index.ts';
import { FrameType, encodeBatchFrame, encodeFrame } from '../../../src/transport/tcp/index.ts';
import { type TestNode, closeAfterEach, closedOf, hello, logsOf, message, rawClient, waitFor } from './helpers.ts';

const RAW_ID = 7;
const { node, keep } = closeAfterEach();

/** A target transport (node 2) that knows node 3 (a good transport) and node 7 (a raw socket). */
async function setUp(): Promise<{ target: TestNode; good: TestNode }> {
  const target = await node(2, { settings: { frameBytesMax: 64 << 10, batchBytesMax: 16 << 10 } });
  const good = await node(3, { peers: [[2, target.address]] });
  target.transport.setPeer(3, good.address);
  target.transport.setPeer(RAW_ID, { host: '127.0.0.1', port: 9 });
  return { target, good };
}

/** A raw socket to `target`; with `handshake`, past a good HELLO as node 7 on the append lane. */
async function rawSocket(target: TestNode, handshake: boolean): Promise<Socket> {
  const socket = keep(await rawClient(target.address));
  if (!handshake) return socket;
  const welcome = new Promise<void>((resolve) => socket.once('data', () => resolve()));
  socket.write(hello(RAW_ID, 2, 'append'));
  await welcome;
  return socket;
}

function batch(messages: Uint8Array[]): Buffer {
  return encodeBatchFrame(messages, 0, messages.length, messages.reduce((n, m) => n + 4 + m.length, 0));
}

interface Case {
  readonly name: string;
  /** Whether the raw socket passes the handshake first. */
  readonly handshake: boolean;
  readonly code: ErrorCode;
  /** What the raw socket sends. */
  readonly send: (socket: Socket, target: TestNode) => Promise<void>;
  /** A phrase the logged error's message must hold. */
  readonly detail?: string;
}

const CASES: readonly Case[] = [
  {
    name: 'garbage before any handshake',
    handshake: false,
    code: ErrorCode.CORRUPT_FRAME,
    send: async (socket) => void socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')),
  },
  {
    name: 'a first frame that is not a HELLO',
    handshake: false,
    code: ErrorCode.CORRUPT_FRAME,
    send: async (socket) => void socket.write(batch([message(RAW_ID, 'append', 0)])),
    detail: 'not HELLO',
  },
  {
    // The header alone: the transport must not wait for (or allocate) the 2 GiB it announces.
    name: 'a frame length over frameBytesMax, refused on its header',
    handshake: true,
    code: ErrorCode.FRAME_TOO_LARGE,
    send: async (socket) => {
      const header = Buffer.alloc(8);
      header.writeUInt32LE(0x7fff_fff0, 0);
      header[4] = FrameType.BATCH;
      socket.write(header);
    },
  },
  {
    // A good frame first: it is delivered; nothing of the bad one is.
    name: 'a bad CRC after a good frame',
    handshake: true,
    code: ErrorCode.CORRUPT_FRAME,
    send: async (socket, target) => {
      socket.write(batch([message(RAW_ID, 'append', 1)]));
      await waitFor(() => target.received.length === 1, 'the good frame');
      target.received.length = 0;
      const bad = batch([message(RAW_ID, 'append', 2)]);
      bad[bad.length - 1] ^= 0xff;
      socket.write(bad);
    },
    detail: 'CRC',
  },
  {
    name: 'a batch whose message length overruns it (CRC intact)',
    handshake: true,
    code: ErrorCode.CORRUPT_FRAME,
    send: async (socket) => void socket.write(encodeFrame(FrameType.BATCH, Buffer.from([3, 0, 0, 0, 1, 2, 3, 200, 0, 0, 0, 1]))),
    detail: 'overruns',
  },
  {
    name: 'half a frame, then the end of the stream',
    handshake: true,
    code: ErrorCode.CORRUPT_FRAME,
    send: async (socket) => void socket.end(batch([message(RAW_ID, 'append', 1, 1000)]).subarray(0, 500)),
    detail: '500 bytes into a frame',
  },
  {
    name: 'a frame type the acceptor never receives (a PONG)',
    handshake: true,
    code: ErrorCode.CORRUPT_FRAME,
    send: async (socket) => void socket.write(encodeFrame(FrameType.PONG)),
    detail: 'PONG',
  },
];

describe('TcpTransport on bytes that are not frames', () => {
  for (const c of CASES) {
    it(`${c.name}: ${c.code}, that connection closed and logged, nothing delivered from it, a good peer served`, async () => {
      const { target, good } = await setUp();
      const socket = await rawSocket(target, c.handshake);
      await c.send(socket, target);
      await closedOf(socket);
      await waitFor(() => logsOf(target, 'corrupt').length > 0, 'a corrupt log entry');
      const entry = logsOf(target, 'corrupt')[0]!;
      expect(entry.error?.code).toBe(c.code);
      expect(entry.level).toBe('error');
      if (c.detail !== undefined) expect(entry.error!.message).toContain(c.detail);
      expect(target.transport.stats().connectionsCorrupt).toBe(1);
      expect(target.received.filter((r) => r.from === RAW_ID)).toEqual([]);
      // The good peer's messages still arrive.
      for (let i = 0; i < 10; i++) good.transport.send(2, message(3, 'append', i), 'append');
      await waitFor(() => target.received.filter((r) => r.from === 3).length === 10, 'the good peer’s messages');
    });
  }
});
