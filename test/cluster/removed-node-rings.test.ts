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
    const peerRings = (cluster as unknown as { wiring: { peerRings: Map<string, SharedArrayBuffer> } }).wiring.peerRings;
    // Pairing the new node with removed ones too (RingWiring.addNode), or keeping a removed
    // node's rings (RingWiring.removeNode), would add 2 rings (8 MiB each by default) per
    // node ever created at each replacement.
    const toRemoved = [...peerRings.keys()].filter((k) => k.split('>').includes('3'));
    expect(added).toBe(4);
    expect(toRemoved).toEqual([]);
  });
});
