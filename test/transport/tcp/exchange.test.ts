// Proves that TCP transports on 127.0.0.1 deliver what they are sent: two and then three
// transports send to each other on all three lanes at once, and every message arrives once,
// intact and in order per sender and lane, with the counters agreeing; a peer that restarts on
// the same port is redialled and traffic resumes; and a multi-megabyte transfer on the
// snapshot lane does not hold back the control lane: control messages sent while the bulk is
// under way arrive before it ends (on one shared connection they would queue behind it).
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { TCP_LANES, type TcpLane } from '../../../src/transport/tcp/index.ts';
import { type TestNode, closeAfterEach, logsOf, meshPeers, message, seqOf, waitFor } from './helpers.ts';

const { node } = closeAfterEach();

/** Sends `count` messages from every node to every other on every lane, interleaved. */
function sendAll(nodes: readonly TestNode[], count: number, sizeOf: (seq: number) => number): void {
  for (let seq = 0; seq < count; seq++) {
    for (const a of nodes) for (const b of nodes) if (a !== b) for (const lane of TCP_LANES) expect(a.transport.send(b.id, message(a.id, lane, seq, sizeOf(seq)), lane)).toBe(true);
  }
}

/** Checks that `to` got exactly `count` messages from each other node on each lane, in order and intact. */
function expectInOrder(nodes: readonly TestNode[], to: TestNode, count: number, sizeOf: (seq: number) => number): void {
  for (const from of nodes) {
    if (from === to) continue;
    for (const lane of TCP_LANES) {
      const got = to.received.filter((r) => r.from === from.id && r.lane === lane);
      expect(got.map((r) => seqOf(r.bytes)), `${from.id}→${to.id} ${lane}`).toEqual([...Array(count).keys()]);
      // Buffer.equals, not toEqual: deep equality element by element is slow on large arrays.
      const intact = got.filter((r, seq) => Buffer.from(r.bytes).equals(message(from.id, lane, seq, sizeOf(seq)))).length;
      expect(intact, `${from.id}→${to.id} ${lane} intact`).toBe(count);
    }
  }
}

describe('TcpTransport exchange', () => {
  it('two transports exchange messages on all lanes, in order per lane, with matching counters', async () => {
    const nodes = [await node(1), await node(2)];
    meshPeers(nodes);
    const count = 500;
    const sizeOf = (seq: number): number => 12 + ((seq * 37) % 3000);
    sendAll(nodes, count, sizeOf);
    await waitFor(() => nodes.every((n) => n.received.length === count * 3), 'all messages');
    for (const n of nodes) expectInOrder(nodes, n, count, sizeOf);
    const stats = nodes[0]!.transport.stats();
    const toTwo = stats.peers.find((p) => p.peerId === 2)!;
    for (const lane of TCP_LANES) {
      const s = toTwo.lanes[lane];
      expect(s.messagesSent).toBe(count);
      expect(s.messagesReceived).toBe(count);
      expect(s.messagesDropped).toBe(0);
      expect(s.connects).toBe(1);
      expect(s.accepts).toBe(1);
      expect(s.connected).toBe(true);
      expect(s.queuedMessages).toBe(0);
      expect(s.bytesSent).toBe([...Array(count).keys()].reduce((n, seq) => n + sizeOf(seq), 0));
    }
    expect(nodes.every((n) => n.unreachable.length === 0)).toBe(true);
    expect(nodes.flatMap((n) => n.logs.filter((e) => e.level !== 'info'))).toEqual([]);
  });

  it('three transports exchange messages on all lanes, large and small, in order per sender and lane', async () => {
    const nodes = [await node(1), await node(2), await node(3)];
    meshPeers(nodes);
    const count = 60;
    // Some messages larger than a batch (256 KiB) and larger than a socket read.
    const sizeOf = (seq: number): number => (seq % 20 === 7 ? 300_000 + seq : 16 + seq);
    sendAll(nodes, count, sizeOf);
    await waitFor(() => nodes.every((n) => n.received.length === count * 3 * 2), 'all messages');
    for (const n of nodes) expectInOrder(nodes, n, count, sizeOf);
  });

  it('redials a peer that restarts on the same port, and traffic resumes', async () => {
    const a = await node(1);
    const b = await node(2);
    meshPeers([a, b]);
    a.transport.send(2, message(1, 'control', 0), 'control');
    await waitFor(() => b.received.length === 1, 'first message');
    const port = b.address.port;
    await b.transport.close();
    // b stopped gracefully: it said so (a GOAWAY), so a logs peer-stopping rather than closed.
    await waitFor(() => logsOf(a, 'peer-stopping').length > 0, 'a sees the connection end');
    expect(a.unreachable).toContain(2);
    const b2 = await node(2, { listen: { host: '127.0.0.1', port }, peers: [[1, a.address]] });
    // Keep sending as Raft would (a heartbeat a tick) until the restarted peer hears one.
    let seq = 1;
    await waitFor(() => {
      a.transport.send(2, message(1, 'control', seq++), 'control');
      return b2.received.length > 0;
    }, 'a message to reach the restarted peer', 10_000);
    const stats = a.transport.stats().peers.find((p) => p.peerId === 2)!.lanes.control;
    expect(stats.connects).toBe(2);
    expect(logsOf(a, 'redial').length).toBeGreaterThan(0);
    // Back-off stayed under its cap (200 ms in these tests).
    for (const e of logsOf(a, 'redial')) expect(e.delayMs!).toBeLessThanOrEqual(200);
  });

  it('a multi-megabyte snapshot transfer does not hold back control messages', async () => {
    const chunkBytes = 256 << 10;
    const chunks = 128; // 32 MiB
    const settings = { queueBytesMax: 64 << 20, queueMessagesMax: 4096 };
    const arrivals: { lane: TcpLane; seq: number; atMs: number }[] = [];
    const sentAtMs = new Map<number, number>();
    let a: TestNode | undefined;
    let measuring = false;
    const sendControl = (seq: number): void => {
      sentAtMs.set(seq, performance.now());
      a!.transport.send(2, message(1, 'control', seq), 'control');
    };
    const b = await node(2, { settings }, (r) => {
      if (!measuring) return;
      const seq = seqOf(r.bytes);
      arrivals.push({ lane: r.lane, seq, atMs: performance.now() });
      // The moment the bulk is seen under way, and again at every fourth chunk while it lasts,
      // a control message leaves: it must not wait for the rest of the bulk.
      if (r.lane === 'snapshot' && seq < chunks && seq % 4 === 1) sendControl(sentAtMs.size + 1);
    });
    a = await node(1, { settings });
    meshPeers([a, b]);
    // Both connections up first, so that neither lane waits for a handshake.
    for (const lane of ['control', 'snapshot'] as const) a.transport.send(2, message(1, lane, 0), lane);
    await waitFor(() => b.received.length === 2, 'both lanes up');
    measuring = true;
    for (let i = 1; i <= chunks; i++) a.transport.send(2, message(1, 'snapshot', i, chunkBytes), 'snapshot');
    await waitFor(() => arrivals.filter((r) => r.lane === 'snapshot').length === chunks, 'the snapshot transfer', 30_000);
    await waitFor(() => arrivals.filter((r) => r.lane === 'control').length === sentAtMs.size, 'every control message');
    const snapshotDoneMs = arrivals.find((r) => r.lane === 'snapshot' && r.seq === chunks)!.atMs;
    const control = arrivals.filter((r) => r.lane === 'control');
    const latenciesMs = control.map((r) => r.atMs - sentAtMs.get(r.seq)!);
    console.log(
      `control latency during a ${(chunks * chunkBytes) >> 20} MiB snapshot transfer: max ${Math.max(...latenciesMs).toFixed(1)} ms ` +
        `over ${latenciesMs.length} messages; the transfer took ${(snapshotDoneMs - arrivals[0]!.atMs).toFixed(0)} ms after its first chunk`,
    );
    // The first control message was sent when the first chunk arrived, with the rest of the bulk
    // (some 32 MiB) still to come: on a shared connection it would arrive after the last chunk.
    expect(control.length).toBeGreaterThan(0);
    expect(control[0]!.atMs).toBeLessThan(snapshotDoneMs);
    expect(arrivals.filter((r) => r.lane === 'snapshot').map((r) => r.seq)).toEqual([...Array(chunks).keys()].map((i) => i + 1));
    expect(control.map((r) => r.seq)).toEqual([...Array(control.length).keys()].map((i) => i + 1));
  });
});
