// The node server in this process (the node's thread is a worker, as in `ringraft serve`): its
// data directory (locked, its identity and lost state checked), its admin commands, its
// restart from its log, and a peer that sends what is not a Raft message.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode, RingraftError } from '../../src/base/index.ts';
import { encodeMessage } from '../../src/codec/index.ts';
import { MessageType, type Message } from '../../src/core/index.ts';
import { NodeServer } from '../../src/server/index.ts';
import { clusterIdOf, TcpTransport } from '../../src/transport/index.ts';
import { admin, configOf, HOST, memoryLogger, portsFor, servers, statusOver, tempDirs, waitFor } from './helpers.ts';

const dirs = tempDirs();
const start = servers();

async function caught(p: Promise<unknown>): Promise<RingraftError> {
  try {
    await p;
  } catch (error) {
    if (error instanceof RingraftError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('NodeServer', () => {
  it('a one-node cluster elects itself, answers status over the client port, and keeps its term and log across a restart', async () => {
    const dir = dirs();
    const ports = await portsFor(1);
    const config = configOf(1, dir, ports);
    const s = await start(config);
    const first = await waitFor(async () => {
      const st = await statusOver(ports.client[0]!);
      return st.role === 'leader' ? st : undefined;
    }, 'node 1 to lead');
    expect(first).toMatchObject({ id: 1, leaderId: 1, voters: [1] });
    await s.shutdown();
    const again = await start(config);
    const second = await waitFor(async () => {
      const st = await statusOver(ports.client[0]!);
      return st.role === 'leader' ? st : undefined;
    }, 'node 1 to lead again');
    // Recovered, not bootstrapped again: a later term, every entry of before still there.
    expect(second.term).toBeGreaterThan(first.term);
    expect(second.commitIndex).toBeGreaterThan(first.commitIndex);
    expect(await again.status()).toMatchObject({ id: 1, voters: [1] });
  });

  it('a second server on a directory in use is refused with DATA_DIR_LOCKED; the lock is released at shutdown', async () => {
    const dir = dirs();
    const ports = await portsFor(1);
    const s = await start(configOf(1, dir, ports));
    const other = await portsFor(1);
    const error = await caught(NodeServer.start(configOf(1, dir, other), memoryLogger(1)));
    expect(error.code).toBe(ErrorCode.DATA_DIR_LOCKED);
    await s.shutdown();
    const t = await start(configOf(1, dir, other));
    expect((await t.status()).id).toBe(1);
  });

  it('a directory of another cluster is refused with CONFIG_MISMATCH; one that lost its log after running, with STATE_LOST', async () => {
    const dir = dirs();
    const ports = await portsFor(1);
    const s = await start(configOf(1, dir, ports));
    await s.shutdown();
    const foreign = await caught(NodeServer.start(configOf(1, dir, ports, { clusterToken: 'another-cluster' }), memoryLogger(1)));
    expect(foreign.code).toBe(ErrorCode.CONFIG_MISMATCH);
    // The log goes; its identity and the record that it ran stay.
    for (const name of readdirSync(dir)) if (!['IDENTITY', 'STARTED'].includes(name)) rmSync(join(dir, name), { recursive: true, force: true });
    const lost = await caught(NodeServer.start(configOf(1, dir, ports), memoryLogger(1)));
    expect(lost.code).toBe(ErrorCode.STATE_LOST);
  });

  it('an unknown admin command is refused with INVALID_ARGUMENT and the server serves on', async () => {
    const ports = await portsFor(1);
    await start(configOf(1, dirs(), ports));
    expect(await admin(ports.client[0]!, { op: 'launch' })).toMatchObject({ kind: 'error', code: ErrorCode.INVALID_ARGUMENT });
    expect(await admin(ports.client[0]!, { op: 'status', extra: 1 })).toMatchObject({ kind: 'error', code: ErrorCode.INVALID_ARGUMENT });
    expect(await admin(ports.client[0]!, { op: 'transfer-leadership', target: 'x' })).toMatchObject({ kind: 'error', code: ErrorCode.INVALID_ARGUMENT });
    expect((await statusOver(ports.client[0]!)).id).toBe(1);
  });

  it('a peer that sends bytes that are not a message, or a message in another node\'s name, has them dropped and counted; the node serves on', async () => {
    const ports = await portsFor(2);
    const s = await start(configOf(1, dirs(), ports));
    // Node 2 is this test, speaking the transport's protocol with the cluster's token.
    const fake = await TcpTransport.start({
      nodeId: 2,
      clusterId: clusterIdOf('serve-tests'),
      listen: { host: HOST, port: ports.peer[1]! },
      peers: [[1, { host: HOST, port: ports.peer[0]! }]],
      onMessage: () => {},
    });
    try {
      const heartbeat = (from: number, to: number): Message => ({
        type: MessageType.Heartbeat, from, to, term: 1, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, context: 0, sentTick: 0, snapshot: undefined,
      });
      fake.send(1, Uint8Array.of(1, 99, 0, 0), 'control'); // type 99
      fake.send(1, Uint8Array.of(0xde, 0xad, 0xbe, 0xef, 1, 2, 3), 'control');
      fake.send(1, encodeMessage(heartbeat(3, 1)), 'control'); // claims to be node 3
      fake.send(1, encodeMessage(heartbeat(2, 5)), 'control'); // meant for node 5
      const st = await waitFor(async () => {
        const v = await s.status();
        return v.peerMessagesRefused >= 4 ? v : undefined;
      }, 'the four messages refused');
      expect(st.peerMessagesRefused).toBe(4);
      expect(st.role).not.toBe('leader');
    } finally {
      await fake.close();
    }
    expect((await statusOver(ports.client[0]!)).id).toBe(1);
  });
});
