// Proves how the TCP transport behaves when the far side fails, on real sockets. A peer with
// nothing listening: sends queue up to the lane's bounds (count, then bytes) and past them are
// dropped and counted, `onUnreachable` reports the peer once per turn, memory stays bounded
// however much is sent, and dials are retried with a jittered back-off that doubles up to its
// cap. A listener that accepts and then never reads: writes stall, the stall timeout tears the
// connection down, and it is redialled with growing back-off (it never proves itself). A
// listener that reads but never answers the keepalive, and a dialler that says nothing: the
// idle timeout tears each half-open connection down.
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../src/base/index.ts';
import { closeAfterEach, closedOf, expectLogged, freePort, hello, logsOf, message, rawClient, rawPeerServer, sleep, waitFor } from './helpers.ts';

const { node, keep } = closeAfterEach();

/** Asserts that the k-th redial (k from 1) waited within [ceiling/2, ceiling], the ceiling doubling from minMs to maxMs. */
function expectBackoff(delaysMs: readonly number[], minMs: number, maxMs: number): void {
  delaysMs.forEach((delayMs, k) => {
    const ceilingMs = Math.min(maxMs, minMs * 2 ** k);
    expect(delayMs, `redial ${k + 1}`).toBeGreaterThanOrEqual(Math.floor(ceilingMs / 2));
    expect(delayMs, `redial ${k + 1}`).toBeLessThanOrEqual(ceilingMs);
  });
}

describe('TcpTransport when the peer fails', () => {
  it('a peer that is down: sends drop past the count and byte bounds, onUnreachable fires, memory stays bounded', async () => {
    const settings = { queueMessagesMax: 10, queueBytesMax: 1000, redialBackoffMsMin: 10, redialBackoffMsMax: 80 };
    const a = await node(1, { settings, peers: [[2, { host: '127.0.0.1', port: await freePort() }]] });

    // Count bound: 10 of 25 small messages are queued, 15 dropped, in one turn.
    const results = [...Array(25).keys()].map((i) => a.transport.send(2, message(1, 'control', i, 24), 'control'));
    expect(results.filter((ok) => ok).length).toBe(10);
    expect(results.slice(10).every((ok) => !ok)).toBe(true);
    // onUnreachable comes after the turn, once for the burst.
    expect(a.unreachable).toEqual([]);
    await sleep(0);
    expect(a.unreachable).toEqual([2]);

    // Byte bound: three 300-byte messages fit in 1,000 bytes, the fourth does not.
    const bulk = [...Array(4).keys()].map((i) => a.transport.send(2, message(1, 'append', i, 300), 'append'));
    expect(bulk).toEqual([true, true, true, false]);

    let lanes = a.transport.stats().peers[0]!.lanes;
    expect(lanes.control).toMatchObject({ messagesDropped: 15, bytesDropped: 15 * 24, queuedMessages: 10, queuedBytes: 240, connected: false });
    expect(lanes.append).toMatchObject({ messagesDropped: 1, bytesDropped: 300, queuedMessages: 3, queuedBytes: 900 });

    // However much is sent, what is held stays within the bound: 200 MiB offered in 100 KiB
    // messages (one buffer, reused) is all dropped, and nothing of it is copied.
    const big = new Uint8Array(100 << 10);
    const arrayBuffersBefore = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 2048; i++) expect(a.transport.send(2, big, 'snapshot')).toBe(false);
    expect(process.memoryUsage().arrayBuffers - arrayBuffersBefore).toBeLessThan(4 << 20);
    lanes = a.transport.stats().peers[0]!.lanes;
    expect(lanes.snapshot).toMatchObject({ messagesDropped: 2048, queuedMessages: 0, queuedBytes: 0 });

    // Meanwhile it redials with back-off: each dial fails (CONNECTION_FAILED), each delay doubles up to the cap.
    await waitFor(() => logsOf(a, 'redial').filter((e) => e.lane === 'control').length >= 6, 'six redials');
    expectLogged(a, 'dial-failed', ErrorCode.CONNECTION_FAILED);
    expectBackoff(logsOf(a, 'redial').filter((e) => e.lane === 'control').map((e) => e.delayMs!), 10, 80);
    expect(a.transport.stats().peers[0]!.lanes.control.queuedMessages).toBe(10);
  });

  it('a listener that accepts but never reads: the write stall timeout tears down, and redials back off', async () => {
    const stalled = keep(await rawPeerServer(2, (socket) => socket.pause()));
    const settings = {
      writeStallTimeoutMs: 300,
      idleTimeoutMs: 60_000,
      keepaliveIntervalMs: 100,
      queueBytesMax: 64 << 20,
      queueMessagesMax: 1 << 16,
      redialBackoffMsMin: 40,
      redialBackoffMsMax: 400,
    };
    const a = await node(1, { settings, peers: [[2, stalled.address]] });
    // Far more than the socket buffers of a few connections hold.
    const chunk = new Uint8Array(1 << 20).fill(7);
    for (let i = 0; i < 64; i++) expect(a.transport.send(2, chunk, 'snapshot')).toBe(true);
    await waitFor(() => logsOf(a, 'write-stall').length >= 3, 'three stalls', 30_000);
    const stall = expectLogged(a, 'write-stall', ErrorCode.TIMEOUT);
    expect(stall.lane).toBe('snapshot');
    expect(stall.direction).toBe('out');
    expect(stalled.acceptedAtMs.length).toBeGreaterThanOrEqual(3);
    // A stalled connection never answered a keepalive, so the failures add up and the delay grows.
    expectBackoff(logsOf(a, 'redial').map((e) => e.delayMs!), 40, 400);
    const s = a.transport.stats().peers[0]!.lanes.snapshot;
    expect(s.connects).toBeGreaterThanOrEqual(3);
    expect(s.sendFailures).toBeGreaterThan(0);
    expect(a.unreachable.length).toBeGreaterThanOrEqual(1);
  });

  it('a listener that reads but never answers the keepalive: the idle timeout tears the half-open connection down and it is redialled', async () => {
    const deaf = keep(await rawPeerServer(2, (socket) => socket.on('data', () => {})));
    const settings = { keepaliveIntervalMs: 50, idleTimeoutMs: 400 };
    const a = await node(1, { settings, peers: [[2, deaf.address]] });
    // A heartbeat every poll, as Raft's control lane has: a lane is redialled when it has something to send.
    let seq = 0;
    await waitFor(() => {
      a.transport.send(2, message(1, 'control', seq++), 'control');
      return logsOf(a, 'idle').length >= 1 && deaf.acceptedAtMs.length >= 2;
    }, 'an idle teardown and a redial', 10_000);
    const idle = expectLogged(a, 'idle', ErrorCode.TIMEOUT);
    expect(idle.lane).toBe('control');
    expect(a.logs.indexOf(idle)).toBeGreaterThan(a.logs.findIndex((e) => e.kind === 'connected'));
    // Torn down no sooner than the idle timeout after it connected.
    expect(deaf.acceptedAtMs[1]! - deaf.acceptedAtMs[0]!).toBeGreaterThanOrEqual(400);
  });

  it('a dialler that connects and says nothing, or stops after its handshake: the acceptor’s idle timeout closes it', async () => {
    const target = await node(2, { settings: { keepaliveIntervalMs: 50, idleTimeoutMs: 300 }, peers: [[7, { host: '127.0.0.1', port: 9 }]] });
    const silent = keep(await rawClient(target.address));
    const quiet = keep(await rawClient(target.address));
    quiet.write(hello(7, 2, 'append'));
    quiet.resume(); // read (and drop) the WELCOME, so that the end of stream is seen
    const startedMs = performance.now();
    await Promise.all([closedOf(silent), closedOf(quiet)]);
    expect(performance.now() - startedMs).toBeGreaterThanOrEqual(250);
    await waitFor(() => logsOf(target, 'idle').length === 2, 'two idle teardowns');
    expect(logsOf(target, 'idle').every((e) => e.error?.code === ErrorCode.TIMEOUT && e.direction === 'in')).toBe(true);
    expect(logsOf(target, 'idle').map((e) => e.peerId ?? 0).sort()).toEqual([0, 7]);
  });
});
