// createNode: three nodes of one cluster inside this process, as three instances of a user's
// service would run them, each with its own client.
import { describe, expect, it } from 'vitest';
import { ErrorCode, RingraftError } from '../../src/base/index.ts';
import { createNode, type RingraftNode } from '../../src/index.ts';
import { FAST_SERVE, HOST, portsFor, tempDirs, waitFor } from './helpers.ts';

const dirs = tempDirs();

describe('createNode', () => {
  it('three nodes form one cluster: a write through one is read through another, leadership moves, close stops each', async () => {
    const ports = await portsFor(3);
    const initialCluster = ports.peer.map((p, i) => `${i + 1}=${HOST}:${p}`).join(',');
    const nodes: RingraftNode[] = [];
    try {
      for (let id = 1; id <= 3; id++) {
        nodes.push(
          await createNode({
            ...FAST_SERVE,
            id,
            dataDir: dirs(),
            listenPeer: `${HOST}:${ports.peer[id - 1]}`,
            listenClient: `${HOST}:${ports.client[id - 1]}`,
            initialCluster,
            clusterToken: 'create-node-tests',
          }),
        );
      }
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
