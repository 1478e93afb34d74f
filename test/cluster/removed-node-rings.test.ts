// Proves that a node added after a removal gets no rings to the removed node, so that memory
// stays bounded when members are replaced: a real 3-node cluster removes node 3, adds node 4,
// and no peer ring (read from the cluster's private map) names node 3 any more.
import { describe, expect, it } from 'vitest';
import { start, stopAfterEach } from './helpers.ts';

stopAfterEach();

describe('membership churn', () => {
  it('a node added after a removal gets no rings to the removed node (memory stays bounded under replacement)', async () => {
    const cluster = await start();
    const kv = cluster.client();
    await kv.put('a', 'b');
    await cluster.removeNode(3, { timeoutMs: 20_000 });
    const added = await cluster.addNode({ timeoutMs: 20_000 });
    await kv.put('c', 'd');
    const peerRings = (cluster as unknown as { peerRings: Map<string, SharedArrayBuffer> }).peerRings;
    // makeSlot (cluster.ts:387) pairs the new node with every slot, removed ones included,
    // and nothing frees a removed node's rings: each replacement adds 2 rings (8 MiB each by
    // default) per node ever created.
    const toRemoved = [...peerRings.keys()].filter((k) => k.split('>').includes('3'));
    expect(added).toBe(4);
    expect(toRemoved).toEqual([]);
  });
});
