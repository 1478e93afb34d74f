// Seeds that found bugs, kept as tests (each failed before its fix):
// - 82286: a follower restarted in the same term took a ReadIndex answer delayed past its
//   crash, to a request of its previous incarnation, for its own, and served a follower read
//   at a stale index (follower read ids now count on from the node's seed);
// - 81230: the Leader Completeness check held a leader of term 2, whose votes arrived after a
//   term-3 leader committed, to that commit (it now binds leaders of later terms only);
// - 301167: a follower behind by a snapshot never caught up: a chunk late past an election
//   timeout restarted the transfer with a newer snapshot, a late chunk of an older one threw
//   away the follower's partial copy, and a transfer that did finish was followed by another,
//   the leader having compacted the entries after it (a chunk is now sent again, a partial
//   copy kept against older chunks, and the entries live followers need kept);
// - 940897: the simulator wiped a crashed leader's disk judging by a stale leader's
//   configuration ([1, 2, 3]) while the newest was [1, 3], leaving no quorum ever again (a
//   wipe now needs every node's configuration to survive it).
import { describe, expect, it } from 'vitest';
import { defaultSimOptions, runSimulation } from '../../src/sim/simulation.ts';

describe('simulator regressions', () => {
  for (const seed of [82286, 81230, 301167, 940897]) {
    it(`seed ${seed} on 3 nodes finds no violation`, () => {
      const r = runSimulation(defaultSimOptions(seed, { nodes: 3 }));
      expect(r.violation).toBeUndefined();
      expect(r.ok).toBe(true);
    });
  }
});
