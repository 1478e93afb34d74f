// Proves the handshake's refusals on real sockets: a dialler of another cluster, a dialler
// that reaches the wrong node, a sender the acceptor does not know, and a member removed after
// it had connected are each refused with HANDSHAKE_REFUSED and the reason, logged on the
// refusing side ('refused') and seen and logged by the refused dialler ('refused-by-peer'),
// which backs off and redials; a listener that answers as another node is refused by the
// dialler; and throughout, a good peer of the refusing node keeps exchanging messages.
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../src/base/index.ts';
import { clusterIdOf } from '../../../src/transport/tcp/index.ts';
import { type TestNode, closeAfterEach, expectLogged, logsOf, message, rawPeerServer, waitFor } from './helpers.ts';

const { node, keep } = closeAfterEach();

/** A target node and a good peer of it, each the other's peer. */
async function targetAndGoodPeer(targetId: number, goodId: number): Promise<{ target: TestNode; good: TestNode }> {
  const target = await node(targetId);
  const good = await node(goodId, { peers: [[targetId, target.address]] });
  target.transport.setPeer(goodId, good.address);
  return { target, good };
}

/** Node 3, a good peer of `target`, sends `count` control messages to it, and they all arrive. */
async function goodPeerStillServed(target: TestNode, good: TestNode, count = 20): Promise<void> {
  const before = target.received.filter((r) => r.from === good.id).length;
  for (let i = 0; i < count; i++) good.transport.send(target.id, message(good.id, 'control', i), 'control');
  await waitFor(() => target.received.filter((r) => r.from === good.id).length === before + count, 'the good peer’s messages');
}

/** Sends from `from` to `to` until `from` has seen `count` refusals (each refusal is followed by a back-off and a redial). */
async function sendUntilRefused(from: TestNode, to: number, count: number): Promise<void> {
  let seq = 0;
  await waitFor(() => {
    from.transport.send(to, message(from.id, 'control', seq++), 'control');
    return logsOf(from, 'refused-by-peer').length >= count;
  }, `${count} refusals`);
}

describe('TcpTransport handshake refusals', () => {
  it('refuses a dialler of another cluster (reason cluster), which logs it and backs off; a good peer is served', async () => {
    const { target, good } = await targetAndGoodPeer(2, 3);
    const stranger = await node(1, { clusterId: clusterIdOf('another-cluster'), peers: [[2, target.address]] });
    target.transport.setPeer(1, stranger.address);
    await sendUntilRefused(stranger, 2, 2);
    const refused = expectLogged(target, 'refused', ErrorCode.HANDSHAKE_REFUSED);
    expect(refused.refusalReason).toBe('cluster');
    expect(refused.direction).toBe('in');
    const seen = expectLogged(stranger, 'refused-by-peer', ErrorCode.HANDSHAKE_REFUSED);
    expect(seen.refusalReason).toBe('cluster');
    expect(seen.peerId).toBe(2);
    expect(logsOf(stranger, 'redial').length).toBeGreaterThanOrEqual(2);
    expect(target.received.filter((r) => r.from === 1)).toEqual([]);
    expect(stranger.transport.stats().peers[0]!.lanes.control.refusalsReceived).toBeGreaterThanOrEqual(2);
    expect(target.transport.stats().connectionsRefused).toBeGreaterThanOrEqual(2);
    expect(target.transport.stats().peers.find((p) => p.peerId === 1)!.lanes.control.refusalsSent).toBeGreaterThanOrEqual(2);
    await goodPeerStillServed(target, good);
  });

  it('refuses a dialler that reached the wrong node (reason receiver); a good peer is served', async () => {
    const { target, good } = await targetAndGoodPeer(3, 4);
    // Node 1 believes node 2 listens where node 3 does.
    const lost = await node(1, { peers: [[2, target.address]] });
    target.transport.setPeer(1, lost.address);
    await sendUntilRefused(lost, 2, 1);
    expect(expectLogged(target, 'refused', ErrorCode.HANDSHAKE_REFUSED).refusalReason).toBe('receiver');
    expect(expectLogged(lost, 'refused-by-peer', ErrorCode.HANDSHAKE_REFUSED).refusalReason).toBe('receiver');
    await goodPeerStillServed(target, good);
  });

  it('refuses an unknown sender, and a member once it is removed (reason sender); a good peer is served', async () => {
    const { target, good } = await targetAndGoodPeer(2, 3);
    const unknown = await node(1, { peers: [[2, target.address]] });
    await sendUntilRefused(unknown, 2, 1);
    const refused = expectLogged(target, 'refused', ErrorCode.HANDSHAKE_REFUSED);
    expect(refused.refusalReason).toBe('sender');
    expect(refused.peerId).toBe(1);
    await goodPeerStillServed(target, good);

    // Node 3 was a member and connected; once removed, its connections close and it is refused.
    target.transport.removePeer(3);
    await sendUntilRefused(good, 2, 1);
    expect(logsOf(target, 'refused').filter((e) => e.peerId === 3 && e.refusalReason === 'sender').length).toBeGreaterThan(0);
    expect(target.transport.stats().peers.map((p) => p.peerId)).not.toContain(3);
  });

  it('asks the caller’s acceptPeer predicate, not the address book, when one is given', async () => {
    let accept = true;
    const target = await node(2, { acceptPeer: (id) => id === 1 && accept });
    const sender = await node(1, { peers: [[2, target.address]] });
    sender.transport.send(2, message(1, 'append', 0), 'append');
    await waitFor(() => target.received.length === 1, 'a message from a peer only the predicate knows');
    expect(target.transport.stats().peers.map((p) => p.peerId)).toEqual([1]);
    accept = false;
    // A second connection on another lane is now refused.
    sender.transport.send(2, message(1, 'snapshot', 0), 'snapshot');
    await waitFor(() => logsOf(sender, 'refused-by-peer').length > 0, 'the refusal');
    expect(logsOf(sender, 'refused-by-peer')[0]!.lane).toBe('snapshot');
  });

  it('the dialler refuses a listener that answers as another node, and backs off', async () => {
    const impostor = keep(await rawPeerServer(5, () => {}));
    const dialler = await node(1, { peers: [[2, impostor.address]] });
    let seq = 0;
    await waitFor(() => {
      dialler.transport.send(2, message(1, 'control', seq++), 'control');
      return logsOf(dialler, 'refused').length >= 2;
    }, 'two refusals of the impostor');
    const entry = expectLogged(dialler, 'refused', ErrorCode.HANDSHAKE_REFUSED);
    expect(entry.refusalReason).toBe('sender');
    expect(entry.direction).toBe('out');
    expect(logsOf(dialler, 'redial').length).toBeGreaterThanOrEqual(2);
    expect(dialler.transport.stats().peers[0]!.lanes.control.connects).toBe(0);
  });
});
