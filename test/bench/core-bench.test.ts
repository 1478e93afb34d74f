// Proves that the core benchmark's cluster driver is correct, so that what it times is real
// replication: after node 1 is elected, one round of 64 proposals leaves exactly 64 new
// entries committed and applied on each of the three nodes, holding the proposed payloads
// in order, identical everywhere. No timing is asserted.

import { describe, expect, it } from 'vitest';
import { scenarios } from '../../bench.config.ts';
import { CoreCluster, isProposal, makePayloads } from '../../bench/micro/core-cluster.ts';
import type { Entry, NodeId } from '../../src/core/index.ts';

describe('core bench cluster driver', () => {
  it('commits and applies one round of 64 entries identically on all three nodes', () => {
    const scenario = scenarios.find((s) => s.kind === 'core')!;
    const applied = new Map<NodeId, Entry[]>([[1, []], [2, []], [3, []]]);
    const cluster = new CoreCluster({
      clusterSize: 3,
      node: scenario.node,
      compactionEntriesMax: scenario.compactionEntriesMax,
      onApply: (id, e) => applied.get(id)!.push(e),
    });
    cluster.elect(1);
    expect(cluster.leaderId()).toBe(1);
    const before = [...cluster.appliedCounts];
    for (const list of applied.values()) list.length = 0;

    const payloads = makePayloads(64, scenario.payloadBytes);
    expect(cluster.proposeRound(payloads)).toBe(64);
    // The round ends once the leader has applied the entries; let the followers finish.
    cluster.stabilize();

    for (const id of [1, 2, 3]) {
      expect(cluster.appliedCounts[id - 1]! - before[id - 1]!).toBe(64);
      const entries = applied.get(id)!;
      expect(entries).toHaveLength(64);
      expect(entries.every(isProposal)).toBe(true);
      expect(entries.map((e) => e.data)).toEqual(payloads);
      expect(cluster.node(id).log.committed).toBe(entries[63]!.index);
      expect(cluster.node(id).log.applied).toBe(entries[63]!.index);
    }
    const [a, b, c] = [applied.get(1)!, applied.get(2)!, applied.get(3)!];
    expect(b.map((e) => [e.index, e.term])).toEqual(a.map((e) => [e.index, e.term]));
    expect(c.map((e) => [e.index, e.term])).toEqual(a.map((e) => [e.index, e.term]));
    // Consecutive indexes: nothing was skipped or applied twice.
    expect(a.map((e) => e.index)).toEqual(Array.from({ length: 64 }, (_, i) => a[0]!.index + i));
  });
});
