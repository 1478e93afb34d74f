// Proves the membership-change rules: the ConfChange byte form round-trips (fast-check) and
// malformed bytes are refused with INVALID_ARGUMENT; nextConf makes learner-only changes
// directly, voter changes through an auto-left joint configuration, moves demoted voters to
// the learners on leaving, refuses a change while joint and an empty voter set, and
// bootstraps from an empty configuration without a joint step; checked by fixed cases and a
// property over random changes of distinct nodes; a change is in force only once its joint
// step is left, and not before it applied (unless it changed nothing).
import { ErrorCode, RingraftError } from '../../src/base/index.ts';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allMembers, confChangeInForce, decodeConfChange, emptyConfState, encodeConfChange, isJoint, isVoter, nextConf } from '../../src/core/index.ts';
import { expectCode } from './helpers/errors.ts';
import type { ConfChange, ConfChangeItem, ConfState } from '../../src/core/index.ts';

const itemArb: fc.Arbitrary<ConfChangeItem> = fc.record({
  op: fc.constantFrom('addVoter' as const, 'removeNode' as const, 'addLearner' as const),
  nodeId: fc.integer({ min: 1, max: 0xffffffff }),
});

describe('ConfChange encoding', () => {
  it('round-trips any change of up to 64 items', () => {
    fc.assert(
      fc.property(fc.array(itemArb, { maxLength: 64 }), (changes) => {
        const cc: ConfChange = { changes };
        const bytes = encodeConfChange(cc);
        expect(bytes.length).toBe(3 + 5 * changes.length);
        expect(decodeConfChange(bytes)).toEqual(cc);
      }),
    );
  });

  it('decodes from a view into a larger buffer', () => {
    const bytes = encodeConfChange({ changes: [{ op: 'addLearner', nodeId: 7 }] });
    const big = new Uint8Array(bytes.length + 10);
    big.set(bytes, 5);
    expect(decodeConfChange(big.subarray(5, 5 + bytes.length))).toEqual({ changes: [{ op: 'addLearner', nodeId: 7 }] });
  });

  it('refuses to encode more than 64 changes', () => {
    const changes = Array.from({ length: 65 }, (_, i) => ({ op: 'addVoter' as const, nodeId: i + 1 }));
    expectCode(() => encodeConfChange({ changes }), ErrorCode.INVALID_ARGUMENT);
  });

  it('refuses to encode what would not decode as it is: an unknown op, a node id outside [1, 2^32 - 1]', () => {
    for (const item of [{ op: 'promote', nodeId: 2 }, { op: 'toString', nodeId: 2 }, { op: 'addVoter', nodeId: 0 }, { op: 'addVoter', nodeId: 2 ** 32 }, { op: 'addVoter', nodeId: 1.5 }]) {
      expectCode(() => encodeConfChange({ changes: [item as ConfChangeItem] }), ErrorCode.INVALID_ARGUMENT);
    }
    expect(decodeConfChange(encodeConfChange({ changes: [{ op: 'addLearner', nodeId: 2 ** 32 - 1 }] }))).toEqual({ changes: [{ op: 'addLearner', nodeId: 2 ** 32 - 1 }] });
  });

  it('refuses malformed bytes with INVALID_ARGUMENT', () => {
    const good = encodeConfChange({ changes: [{ op: 'addVoter', nodeId: 2 }, { op: 'removeNode', nodeId: 3 }] });
    const cases: [string, Uint8Array][] = [
      ['empty', new Uint8Array(0)],
      ['header cut short', good.subarray(0, 2)],
      ['unknown version', Uint8Array.from([2, ...good.subarray(1)])],
      ['version 0', Uint8Array.from([0, ...good.subarray(1)])],
      ['body cut short', good.subarray(0, good.length - 1)],
      ['trailing byte', Uint8Array.from([...good, 0])],
      ['count over 64', Uint8Array.from([1, 65, 0, ...new Uint8Array(65 * 5)])],
    ];
    const badOp = good.slice();
    badOp[3] = 0;
    cases.push(['op 0', badOp]);
    const badOp4 = good.slice();
    badOp4[8] = 4;
    cases.push(['op 4', badOp4]);
    for (const [name, bytes] of cases) {
      expect(() => decodeConfChange(bytes), name).toThrow(RingraftError);
      expectCode(() => decodeConfChange(bytes), ErrorCode.INVALID_ARGUMENT);
    }
  });

  it('refuses any truncation of a valid encoding', () => {
    fc.assert(
      fc.property(fc.array(itemArb, { minLength: 1, maxLength: 10 }), fc.nat(), (changes, cut) => {
        const bytes = encodeConfChange({ changes });
        const n = cut % bytes.length;
        expectCode(() => decodeConfChange(bytes.subarray(0, n)), ErrorCode.INVALID_ARGUMENT);
      }),
    );
  });
});

describe('nextConf', () => {
  const c123 = emptyConfState([1, 2, 3]);

  it('bootstraps from an empty configuration without a joint step', () => {
    const conf = nextConf(emptyConfState(), {
      changes: [
        { op: 'addVoter', nodeId: 1 },
        { op: 'addVoter', nodeId: 2 },
        { op: 'addLearner', nodeId: 4 },
      ],
    });
    expect(conf).toEqual({ voters: [1, 2], votersOutgoing: [], learners: [4], learnersNext: [], autoLeave: false });
    expect(isJoint(conf)).toBe(false);
  });

  it('applies a learner-only change directly', () => {
    const added = nextConf(c123, { changes: [{ op: 'addLearner', nodeId: 4 }] });
    expect(added).toEqual({ voters: [1, 2, 3], votersOutgoing: [], learners: [4], learnersNext: [], autoLeave: false });
    const removed = nextConf(added, { changes: [{ op: 'removeNode', nodeId: 4 }] });
    expect(removed).toEqual(c123);
    // Re-adding a voter that is already one changes no voters: no joint step either.
    expect(isJoint(nextConf(c123, { changes: [{ op: 'addVoter', nodeId: 2 }] }))).toBe(false);
  });

  it('takes a voter change through a joint configuration that leaves itself', () => {
    const joint = nextConf(c123, { changes: [{ op: 'addVoter', nodeId: 4 }] });
    expect(joint).toEqual({ voters: [1, 2, 3, 4], votersOutgoing: [1, 2, 3], learners: [], learnersNext: [], autoLeave: true });
    expect(isJoint(joint)).toBe(true);
    const left = nextConf(joint, { changes: [] });
    expect(left).toEqual({ voters: [1, 2, 3, 4], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false });

    const removal = nextConf(c123, { changes: [{ op: 'removeNode', nodeId: 3 }] });
    expect(removal.voters).toEqual([1, 2]);
    expect(removal.votersOutgoing).toEqual([1, 2, 3]);
    expect(isVoter(removal, 3)).toBe(true); // Still votes in the outgoing half.
    expect(isVoter(nextConf(removal, { changes: [] }), 3)).toBe(false);
  });

  it('promotes a learner through a joint configuration', () => {
    const withLearner = nextConf(c123, { changes: [{ op: 'addLearner', nodeId: 4 }] });
    const joint = nextConf(withLearner, { changes: [{ op: 'addVoter', nodeId: 4 }] });
    expect(joint.voters).toEqual([1, 2, 3, 4]);
    expect(joint.learners).toEqual([]);
    expect(joint.autoLeave).toBe(true);
  });

  it('demotes a voter to learnersNext, and to the learners on leaving', () => {
    const joint = nextConf(c123, { changes: [{ op: 'addLearner', nodeId: 3 }] });
    expect(joint).toEqual({ voters: [1, 2], votersOutgoing: [1, 2, 3], learners: [], learnersNext: [3], autoLeave: true });
    expect(allMembers(joint)).toEqual([1, 2, 3]);
    const left = nextConf(joint, { changes: [] });
    expect(left).toEqual({ voters: [1, 2], votersOutgoing: [], learners: [3], learnersNext: [], autoLeave: false });
  });

  it('refuses a change while joint with CONF_CHANGE_PENDING', () => {
    const joint = nextConf(c123, { changes: [{ op: 'addVoter', nodeId: 4 }] });
    expectCode(() => nextConf(joint, { changes: [{ op: 'addLearner', nodeId: 5 }] }), ErrorCode.CONF_CHANGE_PENDING);
  });

  it('refuses to leave a configuration that is not joint', () => {
    expectCode(() => nextConf(c123, { changes: [] }), ErrorCode.INVALID_ARGUMENT);
  });

  it('refuses an empty voter set', () => {
    expectCode(() => nextConf(emptyConfState([1]), { changes: [{ op: 'removeNode', nodeId: 1 }] }), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => nextConf(emptyConfState([1]), { changes: [{ op: 'addLearner', nodeId: 1 }] }), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => nextConf(emptyConfState(), { changes: [{ op: 'addLearner', nodeId: 1 }] }), ErrorCode.INVALID_ARGUMENT);
  });

  it('refuses bad node ids', () => {
    for (const nodeId of [0, -1, 1.5, 2 ** 32]) {
      expectCode(() => nextConf(c123, { changes: [{ op: 'addVoter', nodeId }] }), ErrorCode.INVALID_ARGUMENT);
    }
  });

  // Random changes, each node touched at most once per change, from random simple configs.
  const confArb: fc.Arbitrary<ConfState> = fc
    .uniqueArray(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 8 })
    .chain((ids) => fc.integer({ min: 1, max: ids.length }).map((nVoters) => emptyConfState(ids.slice(0, nVoters), ids.slice(nVoters))));
  const changeArb: fc.Arbitrary<ConfChange> = fc
    .uniqueArray(
      fc.record({ op: fc.constantFrom('addVoter' as const, 'removeNode' as const, 'addLearner' as const), nodeId: fc.integer({ min: 1, max: 8 }) }),
      { minLength: 1, maxLength: 5, selector: (c) => c.nodeId },
    )
    .map((changes) => ({ changes }));

  it('keeps voters and learners apart, and leaving lands on what the change asked for', () => {
    fc.assert(
      fc.property(confArb, changeArb, (conf, cc) => {
        let next: ConfState;
        try {
          next = nextConf(conf, cc);
        } catch (error) {
          // The only refusal from a simple configuration with valid ids: no voter left.
          expect((error as RingraftError).code).toBe(ErrorCode.INVALID_ARGUMENT);
          const voters = new Set(conf.voters);
          for (const c of cc.changes) {
            if (c.op === 'addVoter') voters.add(c.nodeId);
            else voters.delete(c.nodeId);
          }
          expect(voters.size).toBe(0);
          return;
        }
        const disjoint = (a: readonly number[], b: readonly number[]): boolean => a.every((x) => !b.includes(x));
        expect(disjoint(next.voters, next.learners)).toBe(true);
        expect(disjoint(next.votersOutgoing, next.learners)).toBe(true);
        expect(disjoint(next.voters, next.learnersNext)).toBe(true);
        expect(next.learnersNext.every((id) => next.votersOutgoing.includes(id))).toBe(true);
        const final = isJoint(next) ? nextConf(next, { changes: [] }) : next;
        expect(isJoint(final)).toBe(false);
        for (const c of cc.changes) {
          expect(final.voters.includes(c.nodeId)).toBe(c.op === 'addVoter');
          expect(final.learners.includes(c.nodeId)).toBe(c.op === 'addLearner');
        }
        // Untouched members keep their role.
        for (const id of allMembers(conf)) {
          if (cc.changes.some((c) => c.nodeId === id)) continue;
          expect(final.voters.includes(id)).toBe(conf.voters.includes(id));
          expect(final.learners.includes(id)).toBe(conf.learners.includes(id));
        }
        // In force once left, never while joint, and before only if it changed nothing.
        const view = (c: ConfState) => ({ voters: [...new Set([...c.voters, ...c.votersOutgoing])], learners: [...c.learners, ...c.learnersNext], joint: isJoint(c) });
        expect(confChangeInForce(cc, view(final))).toBe(true);
        expect(confChangeInForce(cc, view(next))).toBe(!isJoint(next));
        const sorted = (ids: readonly number[]) => [...ids].sort((x, y) => x - y).join();
        const same = (a: ConfState, b: ConfState) => sorted(a.voters) === sorted(b.voters) && sorted(a.learners) === sorted(b.learners);
        expect(confChangeInForce(cc, view(conf))).toBe(same(conf, final));
      }),
      { numRuns: 500 },
    );
  });
});
