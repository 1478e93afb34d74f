// Proves the client port's bounds and failures on real sockets: a client that never reads
// (its socket paused) is cut off with QUEUE_FULL at the reply byte bound while the server's
// ArrayBuffer memory stays within a few bounds' worth; requests past requestsInFlightMax cut
// the client off with TOO_MANY_REQUESTS; a full send queue refuses with QUEUE_FULL; garbage,
// an oversized frame, a bad CRC and half a frame each close only their connection with a typed
// error logged while another client is still served; a silent connection is closed by the
// idle timeout; and close() leaves no TCP handle behind.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../src/base/index.ts';
import { encodeBatchFrame, encodeClientHandshake, FrameType } from '../../../src/transport/tcp/index.ts';
import { closedOf, rawClient, sleep, waitFor } from './helpers.ts';
import { CLIENT_CLUSTER_ID, clientPortResources, readFrame, requestIdOf } from './client-port-helpers.ts';

const { serve, dial } = clientPortResources();

function tcpHandles(): number {
  return process.getActiveResourcesInfo().filter((t) => t.startsWith('TCP')).length;
}

describe('client port bounds', () => {
  it('cuts off a client that never reads at the reply byte bound, with bounded memory', async () => {
    const replyQueueBytesMax = 1 << 20;
    const { server, requests, logs } = await serve({ settings: { replyQueueBytesMax, replyQueueCountMax: 1 << 20 } });
    const client = await dial(server);
    client.conn.send(readFrame(1));
    await waitFor(() => requests.length === 1, 'a request');
    (client.conn as unknown as { link: { socket: { pause(): void } } }).link.socket.pause();
    const conn = requests[0]!.conn;
    const reply = new Uint8Array(16 << 10);
    reply.set(readFrame(1).subarray(0, 5));
    const before = process.memoryUsage().arrayBuffers;
    let peak = before;
    let sent = 0;
    // Offer 256 MiB of replies, a turn at a time, until the server cuts the client off.
    for (let turn = 0; turn < 1024 && !conn.isClosed; turn++) {
      for (let i = 0; i < 16 && conn.reply(reply, false); i++) sent++;
      await sleep(1);
      peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    }
    expect(conn.isClosed).toBe(true);
    expect(logs.find((e) => e.kind === 'cut-off')?.error?.code).toBe(ErrorCode.QUEUE_FULL);
    expect(conn.reply(reply, false)).toBe(false);
    expect(sent * reply.length).toBeLessThan(64 << 20);
    expect(peak - before).toBeLessThan(32 << 20);
  });

  it('cuts off a client that floods past requestsInFlightMax', async () => {
    const { server, requests, logs } = await serve({ settings: { requestsInFlightMax: 100 } });
    const flood = await dial(server);
    const other = await dial(server);
    for (let i = 1; i <= 500; i++) flood.conn.send(readFrame(i));
    await waitFor(() => flood.closes.length === 1, 'the flood cut off');
    expect(flood.closes[0]!.code).toBe(ErrorCode.TOO_MANY_REQUESTS);
    expect(requests.length).toBe(100);
    expect(logs.find((e) => e.kind === 'cut-off')?.error?.code).toBe(ErrorCode.TOO_MANY_REQUESTS);
    other.conn.send(readFrame(7));
    await waitFor(() => requests.length === 101, 'the other client served');
  });

  it('refuses a send past the send queue with QUEUE_FULL', async () => {
    const { server } = await serve();
    const client = await dial(server, { sendQueueCountMax: 10 });
    for (let i = 1; i <= 10; i++) client.conn.send(readFrame(i));
    expect(() => client.conn.send(readFrame(11))).toThrow(expect.objectContaining({ code: ErrorCode.QUEUE_FULL }) as Error);
  });

  const hello = (): Buffer => encodeClientHandshake(FrameType.HELLO, CLIENT_CLUSTER_ID, 1 << 20, 0);
  const good = (): Buffer => encodeBatchFrame([readFrame(1)], 0, 1, 4 + readFrame(1).length);
  const cases: [string, () => Buffer, ErrorCode][] = [
    ['garbage', () => Buffer.from('GET / HTTP/1.1\r\n\r\n'), ErrorCode.CORRUPT_FRAME],
    ['an oversized frame', () => Buffer.concat([hello(), Buffer.from([0xff, 0xff, 0xff, 0x7f, 4, 0, 0, 0])]), ErrorCode.FRAME_TOO_LARGE],
    ['a bad CRC', () => { const b = Buffer.concat([hello(), good()]); b[b.length - 1]! ^= 1; return b; }, ErrorCode.CORRUPT_FRAME],
    ['a request of kind 0', () => { const f = readFrame(1); f[0] = 0; return Buffer.concat([hello(), encodeBatchFrame([f], 0, 1, 4 + f.length)]); }, ErrorCode.CORRUPT_FRAME],
  ];
  for (const [name, bytes, code] of cases) {
    it(`closes only the connection that sends ${name}`, async () => {
      const { server, requests, logs } = await serve({ settings: { frameBytesMax: 1 << 20 } });
      const other = await dial(server);
      const raw = await rawClient(server.address);
      raw.resume(); // read the WELCOME, so that the end of the stream (and 'close') can come
      raw.write(bytes());
      await closedOf(raw);
      await waitFor(() => logs.some((e) => e.kind === 'corrupt'), 'a corrupt log');
      expect(logs.find((e) => e.kind === 'corrupt')!.error!.code).toBe(code);
      expect(requests.length).toBe(0);
      other.conn.send(readFrame(9));
      await waitFor(() => requests.length === 1, 'the other client served');
    });
  }

  it('closes a connection that ends half-way into a frame', async () => {
    const { server, logs } = await serve();
    const raw = await rawClient(server.address);
    raw.end(Buffer.concat([hello(), good().subarray(0, 10)]));
    await waitFor(() => logs.some((e) => e.kind === 'corrupt'), 'a corrupt log');
    expect(logs.find((e) => e.kind === 'corrupt')!.error!.code).toBe(ErrorCode.CORRUPT_FRAME);
    raw.destroy();
  });

  it('closes a silent connection after the idle timeout, and a pinging client stays up', async () => {
    const { server, logs } = await serve({ settings: { idleTimeoutMs: 300, keepaliveIntervalMs: 50 } });
    const pinging = await dial(server, { idleTimeoutMs: 300, keepaliveIntervalMs: 50 });
    const silent = await rawClient(server.address);
    silent.resume();
    await closedOf(silent);
    expect(logs.find((e) => e.kind === 'idle')?.error?.code).toBe(ErrorCode.TIMEOUT);
    await sleep(400);
    expect(pinging.conn.isClosed).toBe(false);
  });

  it('close() leaves no TCP handle', async () => {
    const before = tcpHandles();
    const { server, requests } = await serve();
    const client = await dial(server);
    client.conn.send(readFrame(1));
    await waitFor(() => requests.length === 1, 'a request');
    expect(requestIdOf(requests[0]!.frame)).toBe(1);
    await client.conn.close();
    await server.close();
    await waitFor(() => tcpHandles() === before, 'handles gone', 2_000);
    expect(client.closes.map((e) => e.code)).toEqual([ErrorCode.CLOSED]);
  });
});
