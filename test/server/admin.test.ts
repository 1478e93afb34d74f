// The admin commands' membership changes answer only once the change is in force: a change
// of voters is reported after its joint step is left (not with both halves' voters), and a
// change whose entry was lost to a new leader's log is proposed again instead of being
// reported done. Driven against a scripted target whose status moves one step per read.
import { describe, expect, it } from 'vitest';
import type { ConfChange } from '../../src/core/index.ts';
import type { NodeStatus } from '../../src/runtime/index.ts';
import { runAdmin, type AdminTarget } from '../../src/server/admin.ts';

interface Step {
  readonly appliedIndex: number;
  readonly voters: readonly number[];
  readonly joint: boolean;
}

/** A leader whose status reads walk through `steps` (the last one stays), and whose proposals return `indexes` in turn. */
function scripted(steps: readonly Step[], indexes: readonly number[]) {
  const proposed: ConfChange[] = [];
  let read = 0;
  const target: AdminTarget = {
    status: () => {
      const s = steps[Math.min(read++, steps.length - 1)]!;
      return Promise.resolve({ id: 2, role: 'leader', term: 3, leaderId: 2, commitIndex: s.appliedIndex, lastIndex: s.appliedIndex, learners: [], matchIndex: {}, ...s } as unknown as NodeStatus);
    },
    stats: () => ({}) as never,
    transferLeadership: () => Promise.resolve(),
    proposeConfChange: (cc) => {
      proposed.push(cc);
      return Promise.resolve(indexes[proposed.length - 1]!);
    },
    applyMembers: () => undefined,
    broadcastMembers: () => undefined,
    memberAddresses: () => new Map(),
    reachablePeers: () => [1, 3],
  };
  return { target, proposed };
}

describe('admin member-remove', () => {
  it('answers after the joint step is left, with the voters left', async () => {
    const { target, proposed } = scripted(
      [
        { appliedIndex: 9, voters: [1, 2, 3], joint: false }, // the leader check
        { appliedIndex: 9, voters: [1, 2, 3], joint: false },
        { appliedIndex: 10, voters: [2, 3, 1], joint: true }, // entered joint: not done
        { appliedIndex: 10, voters: [2, 3, 1], joint: true },
        { appliedIndex: 11, voters: [2, 3], joint: false },
      ],
      [10],
    );
    const answer = JSON.parse(await runAdmin(target, JSON.stringify({ op: 'member-remove', id: 1 }))) as { voters: number[] };
    expect(answer.voters).toEqual([2, 3]);
    expect(proposed).toHaveLength(1);
  });

  it('proposes again a change applied at its index but not in force (its entry was replaced)', async () => {
    const { target, proposed } = scripted(
      [
        { appliedIndex: 9, voters: [1, 2, 3], joint: false }, // the leader check
        { appliedIndex: 10, voters: [1, 2, 3], joint: false }, // index 10 applied, node 1 still a voter: lost
        { appliedIndex: 12, voters: [2, 3, 1], joint: true },
        { appliedIndex: 13, voters: [2, 3], joint: false },
      ],
      [10, 12],
    );
    const answer = JSON.parse(await runAdmin(target, JSON.stringify({ op: 'member-remove', id: 1 }))) as { voters: number[] };
    expect(proposed).toHaveLength(2);
    expect(proposed[1]).toEqual({ changes: [{ op: 'removeNode', nodeId: 1 }] });
    expect(answer.voters).toEqual([2, 3]);
  });
});
