// Proves that `close()` leaves nothing behind: transports with connections up on every lane,
// one dialling a dead port (a back-off timer pending), one connection stalled against a
// listener that never reads, and an accepted connection still in its handshake, are closed;
// afterwards every socket, server and timer made since they started is gone (async_hooks,
// which sees unref'd timers too) and the process holds the TCP handles it held before, `send` and `setPeer` throw CLOSED, and a second
// close() resolves as the first did. Also: start() refuses bad options with INVALID_ARGUMENT
// naming them, and an address it cannot bind with CONNECTION_FAILED.
import { createHook } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { ErrorCode, RingraftError } from '../../../src/base/index.ts';
import { TcpTransport, TcpTransportError } from '../../../src/transport/tcp/index.ts';
import { expectCode } from '../../core/helpers/errors.ts';
import { CLUSTER_ID, freePort, logsOf, meshPeers, message, rawClient, rawPeerServer, startNode, waitFor } from './helpers.ts';

/** TCP handles that keep the process alive, by type, e.g. { TCPSocketWrap: 2, TCPServerWrap: 1 }. */
function tcpHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) if (type.startsWith('TCP')) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

/**
 * Records every socket, server, timer and immediate made while it is on, and which of them
 * are gone: `alive()` lists the rest. This sees unref'd timers too, which
 * getActiveResourcesInfo does not (they do not keep the process alive, but close() must clear
 * them all the same). After `freeze()` it records no new ones (the test's own waiting), only
 * the end of those it has.
 */
function trackResources(): { alive: () => { type: string; stack: string }[]; freeze: () => void; stop: () => void } {
  const live = new Map<number, { type: string; stack: string }>();
  let frozen = false;
  const hook = createHook({
    init: (asyncId, type) => {
      if (!frozen && /^(TCPWRAP|TCPSERVERWRAP|TCPCONNECTWRAP|Timeout|Immediate)$/.test(type)) live.set(asyncId, { type, stack: new Error().stack ?? '' });
    },
    destroy: (asyncId) => void live.delete(asyncId),
  });
  hook.enable();
  return { alive: () => [...live.values()], freeze: () => void (frozen = true), stop: () => hook.disable() };
}

async function expectRejectedWith(promise: Promise<unknown>, code: ErrorCode): Promise<RingraftError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RingraftError);
  expect((error as RingraftError).code).toBe(code);
  return error as RingraftError;
}

describe('TcpTransport close', () => {
  it('closes every listener, connection and timer: no handle outlives it', async () => {
    const before = tcpHandles();
    const tracked = trackResources();
    const stalled = await rawPeerServer(9, (socket) => socket.pause());
    const nodes = [await startNode(1), await startNode(2), await startNode(3)];
    meshPeers(nodes);
    for (const from of nodes) for (const to of nodes) if (from !== to) for (const lane of ['control', 'append', 'snapshot'] as const) from.transport.send(to.id, message(from.id, lane, 0), lane);
    await waitFor(() => nodes.every((n) => n.received.length === 6), 'every lane up');
    // A dead peer (a back-off timer), a stalled one (a socket with unwritten data), a half-done inbound handshake.
    nodes[0]!.transport.setPeer(8, { host: '127.0.0.1', port: await freePort() });
    nodes[0]!.transport.send(8, message(1, 'control', 0), 'control');
    nodes[0]!.transport.setPeer(9, stalled.address);
    for (let i = 0; i < 16; i++) nodes[0]!.transport.send(9, new Uint8Array(1 << 20), 'snapshot');
    const dangling = await rawClient(nodes[1]!.address);
    await waitFor(() => logsOf(nodes[0]!, 'redial').some((e) => e.peerId === 8) && logsOf(nodes[0]!, 'connected').some((e) => e.peerId === 9), 'a pending redial and a stalled connection');
    expect(tracked.alive().filter((r) => r.type === 'Timeout').length).toBeGreaterThanOrEqual(4);
    expect(tcpHandles()).not.toEqual(before);

    const closed = Promise.all(nodes.map((n) => n.transport.close()));
    tracked.freeze();
    await closed;
    dangling.destroy();
    await stalled.close();
    // Destroy hooks run after the handles' close callbacks; give them a few turns.
    await waitFor(() => tracked.alive().length === 0, 'every handle and timer gone', 2_000).catch(() => undefined);
    tracked.stop();
    expect(tracked.alive().map((r) => r.type), tracked.alive().map((r) => r.stack).join('\n\n')).toEqual([]);
    expect(tcpHandles()).toEqual(before);

    // Closed is closed: a second close resolves, calls throw CLOSED.
    await nodes[0]!.transport.close();
    expectCode(() => nodes[0]!.transport.send(2, new Uint8Array(1), 'control'), ErrorCode.CLOSED);
    expectCode(() => nodes[0]!.transport.setPeer(4, { host: '127.0.0.1', port: 1 }), ErrorCode.CLOSED);
  });

  it('start refuses bad options with INVALID_ARGUMENT naming them, and an address in use with CONNECTION_FAILED', async () => {
    const base = { nodeId: 1, clusterId: CLUSTER_ID, listen: { host: '127.0.0.1', port: 0 }, onMessage: () => {} };
    const bad: [object, string][] = [
      [{ ...base, listen: { host: 'localhost', port: 0 } }, 'listen.host'],
      [{ ...base, nodeId: 0 }, 'nodeId'],
      [{ ...base, clusterId: 0n }, 'clusterId'],
      [{ ...base, onMesage: () => {} }, 'unknown option onMesage'],
      [{ ...base, settings: { idleTimeout: 5 } }, 'unknown option settings.idleTimeout'],
      [{ ...base, peers: [[1, { host: '127.0.0.1', port: 5 }]] }, "this node's own id"],
      [{ ...base, peers: [[2, { host: '127.0.0.1', port: 0 }]] }, 'address of peer 2.port'],
    ];
    for (const [options, names] of bad) {
      const error = await expectRejectedWith(TcpTransport.start(options as never), ErrorCode.INVALID_ARGUMENT);
      expect(error.message).toContain(names);
    }
    const first = await TcpTransport.start(base);
    await expectRejectedWith(TcpTransport.start({ ...base, listen: first.address }), ErrorCode.CONNECTION_FAILED);
    await first.close();
    // A message over the frame limit is refused where it is sent.
    const small = await TcpTransport.start({ ...base, settings: { frameBytesMax: 4096, batchBytesMax: 4096 }, peers: [[2, { host: '127.0.0.1', port: 9 }]] });
    expect(expectCode(() => small.send(2, new Uint8Array(4096 - 15), 'append'), ErrorCode.FRAME_TOO_LARGE)).toBeInstanceOf(TcpTransportError);
    expect(small.send(2, new Uint8Array(small.messageBytesMax), 'append')).toBe(true);
    await small.close();
  });
});

describe('TcpTransport close, seen from its peers', () => {
  it('tells its peers it is stopping: they log the close and the failed dials after it at info, not as faults', async () => {
    const nodes = [await startNode(1), await startNode(2)];
    meshPeers(nodes);
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    for (const lane of ['control', 'append', 'snapshot'] as const) {
      a.transport.send(2, message(1, lane, 0), lane);
      b.transport.send(1, message(2, lane, 0), lane);
    }
    await waitFor(() => a.received.length === 3 && b.received.length === 3, 'every lane up both ways');
    const before = a.logs.length;
    await b.transport.close();
    // Both ways: node 1's dialled connections and those node 2 dialled to it.
    await waitFor(() => logsOf(a, 'peer-stopping').length === 6, 'six connections told');
    // Node 1 redials the stopped node (as Raft keeps sending): those failures are expected, so logged at info.
    let seq = 1;
    await waitFor(() => {
      a.transport.send(2, message(1, 'control', seq++), 'control');
      return a.logs.slice(before).some((e) => e.kind === 'dial-failed');
    }, 'a redial failed');
    const after = a.logs.slice(before);
    expect(after.filter((e) => e.level === 'warn' || e.level === 'error'), JSON.stringify(after.map((e) => `${e.level} ${e.kind}`))).toEqual([]);
    expect(logsOf(a, 'peer-stopping').every((e) => e.level === 'info' && e.peerId === 2)).toBe(true);
    await a.transport.close();
  });
});
