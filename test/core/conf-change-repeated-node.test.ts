// Proves that a conf change naming one node twice applies its changes in order, so that the
// last change naming a node decides its role: nextConf on its own for three orders of
// changes, and through a RaftNode whose leader then stops tracking the removed node. Each
// case failed before its fix (a node ended a voter and a learner at once, or stayed a learner).
import { describe, expect, it } from 'vitest';
import { emptyConfState, nextConf } from '../../src/core/index.ts';
import type { ConfState } from '../../src/core/index.ts';
import { Network } from './helpers/network.ts';

const leave = (conf: ConfState): ConfState => nextConf(conf, { changes: [] });

describe('nextConf: a node named twice in one change (src/core/conf-change.ts, the loop over cc.changes)', () => {
  // Changes apply in order, so the last one naming a node decides its role (as in etcd's
  // confchange, where makeVoter and remove also clear the node from LearnersNext).
  const c123 = emptyConfState([1, 2, 3]);

  it('[addLearner 2, addVoter 2] leaves 2 a voter, not a voter and a learner at once', () => {
    const joint = nextConf(c123, {
      changes: [
        { op: 'addLearner', nodeId: 2 },
        { op: 'addVoter', nodeId: 2 },
      ],
    });
    expect(joint.learnersNext).toEqual([]); // Before the fix: [2] — addVoter does not clear learnersNext.
    const final = leave(joint);
    expect(final.voters).toContain(2);
    expect(final.learners).not.toContain(2); // Before the fix: learners [2] while voters [1, 2, 3].
  });

  it('[addLearner 2, removeNode 2] removes 2, instead of keeping it as a learner', () => {
    const final = leave(
      nextConf(c123, {
        changes: [
          { op: 'addLearner', nodeId: 2 },
          { op: 'removeNode', nodeId: 2 },
        ],
      }),
    );
    expect(final.voters).toEqual([1, 3]);
    expect(final.learners).toEqual([]); // Before the fix: [2] — removeNode does not clear learnersNext.
  });

  it('[removeNode 3, addLearner 3] demotes 3 through learnersNext; it is not a learner while still an outgoing voter', () => {
    const joint = nextConf(c123, {
      changes: [
        { op: 'removeNode', nodeId: 3 },
        { op: 'addLearner', nodeId: 3 },
      ],
    });
    expect(joint.votersOutgoing).toContain(3);
    // Before the fix: learners [3], learnersNext [] — 3 is a learner and a voter of the outgoing half.
    expect(joint.learners).not.toContain(3);
    expect(joint.learnersNext).toEqual([3]);
    expect(leave(joint).learners).toEqual([3]);
  });

  it('through RaftNode: [addLearner 3, removeNode 3] takes node 3 out of the leader\'s progress', () => {
    const net = new Network([1, 2, 3]);
    const leader = net.elect(1);
    leader.proposeConfChange({
      changes: [
        { op: 'addLearner', nodeId: 3 },
        { op: 'removeNode', nodeId: 3 },
      ],
    });
    for (let i = 0; i < 3; i++) {
      net.tick(1);
      net.deliverAll();
    }
    expect(leader.conf.votersOutgoing).toEqual([]);
    expect(leader.progress.has(3)).toBe(false); // Before the fix: 3 is still tracked, as a learner.
  });
});
