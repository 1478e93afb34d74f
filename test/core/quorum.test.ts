// Proves the quorum math (majorityCommitted, majorityVoteResult, jointCommitted,
// jointVoteResult) right by checking fixed cases and fast-check properties against naive
// brute-force references written here: the committed index is the largest candidate value a
// majority has reached, and a vote result is decided by counting grants and rejections.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jointCommitted, jointVoteResult, majorityCommitted, majorityVoteResult } from '../../src/core/index.ts';
import type { NodeId, VoteResult } from '../../src/core/index.ts';

// ─── Naive references ───────────────────────────────────────────────────────────

/** Whether `count` of `n` voters is a majority (strictly more than half). */
function isMajority(count: number, n: number): boolean {
  return 2 * count > n;
}

/**
 * The largest v such that a majority of `voters` have a value >= v, found by trying every
 * value anyone holds (and 0, which everyone has reached). Empty: no constraint, Infinity.
 */
function refCommitted(voters: readonly NodeId[], values: ReadonlyMap<NodeId, number>): number {
  if (voters.length === 0) return Infinity;
  const candidates = [0, ...voters.map((id) => values.get(id) ?? 0)];
  let best = 0;
  for (const v of candidates) {
    const reached = voters.filter((id) => (values.get(id) ?? 0) >= v).length;
    if (isMajority(reached, voters.length) && v > best) best = v;
  }
  return best;
}

function refJointCommitted(incoming: readonly NodeId[], outgoing: readonly NodeId[], values: ReadonlyMap<NodeId, number>): number {
  if (incoming.length === 0 && outgoing.length === 0) return Infinity;
  const all = [...incoming, ...outgoing];
  const candidates = [0, ...all.map((id) => values.get(id) ?? 0)];
  let best = 0;
  for (const v of candidates) {
    const ok = (half: readonly NodeId[]): boolean =>
      half.length === 0 || isMajority(half.filter((id) => (values.get(id) ?? 0) >= v).length, half.length);
    if (ok(incoming) && ok(outgoing) && v > best) best = v;
  }
  return best;
}

/** Won if grants alone are a majority, lost if even every missing vote could not make one. */
function refVote(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return 'won';
  const granted = voters.filter((id) => votes.get(id) === true).length;
  const rejected = voters.filter((id) => votes.get(id) === false).length;
  if (isMajority(granted, voters.length)) return 'won';
  // Even if every missing vote were a grant, the grants could not be a majority.
  if (!isMajority(voters.length - rejected, voters.length)) return 'lost';
  return 'pending';
}

function refJointVote(incoming: readonly NodeId[], outgoing: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const a = refVote(incoming, votes);
  const b = refVote(outgoing, votes);
  if (a === 'lost' || b === 'lost') return 'lost';
  if (a === 'won' && b === 'won') return 'won';
  return 'pending';
}

// ─── Generators ─────────────────────────────────────────────────────────────────

const idsArb = fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { maxLength: 9 });
/** Values for some of the ids 1..12 (the others are missing and count as 0). */
const valuesArb = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 20 })), { maxLength: 12 })
  .map((pairs) => new Map<NodeId, number>(pairs));
const votesArb = fc.array(fc.tuple(fc.integer({ min: 1, max: 12 }), fc.boolean()), { maxLength: 12 }).map((pairs) => new Map(pairs));

describe('majorityCommitted', () => {
  it('an empty configuration places no constraint', () => {
    expect(majorityCommitted([], () => 5)).toBe(Infinity);
  });

  it('is the value a majority has reached', () => {
    const m = new Map([
      [1, 5],
      [2, 3],
      [3, 9],
    ]);
    expect(majorityCommitted([1, 2, 3], (id) => m.get(id))).toBe(5);
    expect(majorityCommitted([1, 2, 3, 4], (id) => m.get(id))).toBe(3); // 4 is missing: 0.
    expect(majorityCommitted([3], (id) => m.get(id))).toBe(9);
    expect(majorityCommitted([7], (id) => m.get(id))).toBe(0);
  });

  it('matches the brute-force reference', () => {
    fc.assert(
      fc.property(idsArb, valuesArb, (voters, values) => {
        expect(majorityCommitted(voters, (id) => values.get(id))).toBe(refCommitted(voters, values));
      }),
      { numRuns: 500 },
    );
  });

  it('does not depend on the order of the voters', () => {
    fc.assert(
      fc.property(idsArb, valuesArb, (voters, values) => {
        const reversed = [...voters].reverse();
        expect(majorityCommitted(reversed, (id) => values.get(id))).toBe(majorityCommitted(voters, (id) => values.get(id)));
      }),
    );
  });
});

describe('jointCommitted', () => {
  it('with an empty outgoing half equals the incoming majority', () => {
    fc.assert(
      fc.property(idsArb, valuesArb, (voters, values) => {
        expect(jointCommitted(voters, [], (id) => values.get(id))).toBe(majorityCommitted(voters, (id) => values.get(id)));
        expect(jointCommitted([], voters, (id) => values.get(id))).toBe(majorityCommitted(voters, (id) => values.get(id)));
      }),
    );
  });

  it('both halves empty: Infinity', () => {
    expect(jointCommitted([], [], () => 1)).toBe(Infinity);
  });

  it('needs a majority in each half', () => {
    const m = new Map([
      [1, 10],
      [2, 10],
      [3, 1],
      [4, 1],
      [5, 1],
    ]);
    // Incoming {1,2,3} has 10 on a majority; outgoing {3,4,5} only 1.
    expect(jointCommitted([1, 2, 3], [3, 4, 5], (id) => m.get(id))).toBe(1);
  });

  it('matches the brute-force reference', () => {
    fc.assert(
      fc.property(idsArb, idsArb, valuesArb, (incoming, outgoing, values) => {
        expect(jointCommitted(incoming, outgoing, (id) => values.get(id))).toBe(refJointCommitted(incoming, outgoing, values));
      }),
      { numRuns: 500 },
    );
  });
});

describe('majorityVoteResult', () => {
  it('an empty configuration wins', () => {
    expect(majorityVoteResult([], new Map())).toBe('won');
  });

  it('decides by counting', () => {
    const votes = (pairs: [number, boolean][]): Map<number, boolean> => new Map(pairs);
    expect(majorityVoteResult([1, 2, 3], votes([[1, true]]))).toBe('pending');
    expect(majorityVoteResult([1, 2, 3], votes([[1, true], [2, true]]))).toBe('won');
    expect(majorityVoteResult([1, 2, 3], votes([[1, true], [2, false], [3, false]]))).toBe('lost');
    // Two of four against: at most two for, never three.
    expect(majorityVoteResult([1, 2, 3, 4], votes([[1, false], [2, false]]))).toBe('lost');
    expect(majorityVoteResult([1, 2, 3, 4], votes([[1, true], [2, true], [3, false]]))).toBe('pending');
    // Votes of non-voters do not count.
    expect(majorityVoteResult([1, 2, 3], votes([[1, true], [9, true]]))).toBe('pending');
  });

  it('matches the counting reference', () => {
    fc.assert(
      fc.property(idsArb, votesArb, (voters, votes) => {
        expect(majorityVoteResult(voters, votes)).toBe(refVote(voters, votes));
      }),
      { numRuns: 500 },
    );
  });
});

describe('jointVoteResult', () => {
  it('needs both halves; a loss in either loses', () => {
    const votes = new Map<number, boolean>([
      [1, true],
      [2, true],
      [4, false],
      [5, false],
    ]);
    expect(jointVoteResult([1, 2, 3], [3, 4, 5], votes)).toBe('lost');
    expect(jointVoteResult([1, 2, 3], [], votes)).toBe('won');
    expect(jointVoteResult([1, 2, 3], [1, 2, 6], votes)).toBe('won');
    expect(jointVoteResult([1, 2, 3], [3, 6, 7], votes)).toBe('pending');
    expect(jointVoteResult([], [], votes)).toBe('won');
  });

  it('matches the counting reference', () => {
    fc.assert(
      fc.property(idsArb, idsArb, votesArb, (incoming, outgoing, votes) => {
        expect(jointVoteResult(incoming, outgoing, votes)).toBe(refJointVote(incoming, outgoing, votes));
      }),
      { numRuns: 500 },
    );
  });
});
