// createNode: three nodes of one cluster inside this process, as three instances of a user's
// service would run them, each with its own client.
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ErrorCode, RingraftError } from '../../src/base/index.ts';
import { createNode, type CreateNodeOptions, type RingraftNode } from '../../src/index.ts';
import { FAST_SERVE, HOST, portsFor, tempDirs, waitFor } from './helpers.ts';

const dirs = tempDirs();

/** Starts three nodes of one cluster into `nodes` (so the caller closes what started), each with `extra(id)`; returns their ports. */
async function startThree(nodes: RingraftNode[], clusterToken: string, extra: (id: number) => Partial<CreateNodeOptions> = () => ({})): Promise<{ peer: number[]; client: number[] }> {
  const ports = await portsFor(3);
  const initialCluster = ports.peer.map((p, i) => `${i + 1}=${HOST}:${p}`).join(',');
  for (let id = 1; id <= 3; id++) {
    nodes.push(
      await createNode({
        ...FAST_SERVE,
        id,
        dataDir: dirs(),
        listenPeer: `${HOST}:${ports.peer[id - 1]}`,
        listenClient: `${HOST}:${ports.client[id - 1]}`,
        initialCluster,
        clusterToken,
        ...extra(id),
      }),
    );
  }
  return ports;
}

describe('createNode', () => {
  it('runs a state machine of its own on every node: proposals and queries over the network client, through a leader change', async () => {
    const module = new URL('../fixtures/ledger-machine.mjs', import.meta.url).href;
    const nodes: RingraftNode[] = [];
    const text = (x: string): Uint8Array => new TextEncoder().encode(x);
    const json = (b: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(b));
    try {
      await startThree(nodes, 'create-node-machine', (id) => ({ stateMachine: { module, options: { node: id } } }));
      const leader = await waitFor(async () => (await Promise.all(nodes.map((n) => n.status()))).find((s) => s.role === 'leader')?.id, 'a leader');
      const client = await nodes[0]!.client();
      for (let i = 1; i <= 5; i++) expect(new TextDecoder().decode(await client.propose(text(String(i))))).toBe(String(i));
      const target = leader === 3 ? 2 : 3;
      await nodes[leader - 1]!.transferLeadership(target);
      await waitFor(async () => ((await nodes[target - 1]!.status()).role === 'leader' ? true : undefined), 'the new leader');
      await client.propose(text('6'));
      expect(json(await client.query(text('ids')))).toEqual([1, 2, 3, 4, 5, 6]);
      const failed = await client.propose(text('throw:nope')).then(() => undefined, (e: unknown) => e);
      expect(failed).toMatchObject({ code: ErrorCode.APPLY_FAILED, message: 'Error: nope' });
      await client.close();
    } finally {
      for (const n of nodes) await n.close();
    }
  });

  it('speaks Redis on listenResp: a write through one node\'s RESP port is read through another\'s', async () => {
    const nodes: RingraftNode[] = [];
    /** One command over a fresh connection: the raw reply. */
    const call = (address: string, command: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
        const s = connect(port, host, () => s.write(`${command}\r\n`));
        let got = '';
        s.on('data', (d) => {
          got += d.toString();
          if (got.endsWith('\r\n')) {
            s.end();
            resolve(got);
          }
        });
        s.on('error', reject);
      });
    try {
      await startThree(nodes, 'create-node-resp', () => ({ listenResp: `${HOST}:0` }));
      const addresses = nodes.map((n) => n.respAddress!);
      expect(addresses.every((a) => /:\d+$/.test(a) && !a.endsWith(':0'))).toBe(true);
      await waitFor(async () => (await call(addresses[0]!, 'SET k v')) === '+OK\r\n' || undefined, 'a write through node 1');
      expect(await call(addresses[2]!, 'GET k')).toBe('$1\r\nv\r\n');
      expect(await call(addresses[1]!, 'INCR n')).toBe(':1\r\n');
    } finally {
      for (const n of nodes) await n.close();
    }
  });

  it('refuses a state machine module that does not load, naming it, before it opens anything', async () => {
    const ports = await portsFor(1);
    const dataDir = dirs();
    const module = new URL('../fixtures/no-such-machine.mjs', import.meta.url).href;
    const attempt = createNode({ ...FAST_SERVE, id: 1, dataDir, listenPeer: `${HOST}:${ports.peer[0]}`, listenClient: `${HOST}:${ports.client[0]}`, initialCluster: `1=${HOST}:${ports.peer[0]}`, clusterToken: 't', stateMachine: { module } });
    await expect(attempt).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringContaining(module) });
  });


  it('three nodes form one cluster: a write through one is read through another, leadership moves, close stops each', async () => {
    const nodes: RingraftNode[] = [];
    try {
      const ports = await startThree(nodes, 'create-node-tests');
      expect(nodes.map((n) => n.clientAddress)).toEqual(ports.client.map((p) => `${HOST}:${p}`));
      const leader = await waitFor(async () => (await Promise.all(nodes.map((n) => n.status()))).find((s) => s.role === 'leader')?.id, 'a leader');
      const a = await nodes[0]!.client();
      const b = await nodes[1]!.client();
      await a.put('shared', 'from node 1');
      expect(new TextDecoder().decode(await b.get('shared'))).toBe('from node 1');
      const target = leader === 3 ? 2 : 3;
      await nodes[leader - 1]!.transferLeadership(target);
      await waitFor(async () => ((await nodes[target - 1]!.status()).role === 'leader' ? true : undefined), 'the new leader');
      await b.put('after', 'move');
      expect(new TextDecoder().decode(await a.get('after'))).toBe('move');
      // Membership from the embedding API, on the leader; elsewhere NOT_LEADER.
      const other = [1, 2, 3].find((id) => id !== target)!;
      const refused = await nodes[other - 1]!.removeMember(1).then(() => undefined, (e: unknown) => e);
      expect((refused as RingraftError).code).toBe(ErrorCode.NOT_LEADER);
      const victim = [1, 2, 3].find((id) => id !== target)!;
      expect(await nodes[target - 1]!.removeMember(victim)).toEqual([1, 2, 3].filter((id) => id !== victim));
    } finally {
      for (const n of nodes) await n.close();
    }
  });

  it('refuses a bad configuration with INVALID_ARGUMENT naming the key, before anything opens', async () => {
    const attempt = createNode({ id: 1, dataDir: dirs(), listenPeer: `${HOST}:1`, listenClient: `${HOST}:2`, initialCluster: `1=${HOST}:1`, clusterToken: 't', raft: { electionTicks: 3 } as never });
    const error = await attempt.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RingraftError);
    expect((error as RingraftError).code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect((error as RingraftError).message).toMatch(/raft\.electionTicks/);
  });
});
