/**
 * Quorum math for majority and joint configurations.
 *
 * A majority configuration is a set of voters; a joint configuration is two of them
 * (incoming and outgoing), and a decision needs a majority in each. An empty majority
 * configuration agrees to everything, so that a joint configuration whose outgoing half is
 * empty behaves exactly like its incoming half.
 */
import type { NodeId } from './types.ts';

export type VoteResult = 'won' | 'lost' | 'pending';

/**
 * The largest value that a majority of `voters` have reached: with values sorted
 * descending, the one at position floor(n/2). Missing values count as 0.
 * An empty configuration returns +Infinity (it places no constraint).
 */
export function majorityCommitted(voters: readonly NodeId[], valueOf: (id: NodeId) => number | undefined): number {
  const n = voters.length;
  if (n === 0) return Infinity;
  if (n === 1) return valueOf(voters[0]!) ?? 0;
  // This runs on every acknowledgement the leader receives: sort in a reused buffer
  // (insertion sort, descending; configurations are small) instead of allocating.
  if (scratch.length < n) scratch = new Float64Array(Math.max(n, scratch.length * 2));
  for (let i = 0; i < n; i++) {
    const v = valueOf(voters[i]!) ?? 0;
    let j = i;
    while (j > 0 && scratch[j - 1]! < v) {
      scratch[j] = scratch[j - 1]!;
      j--;
    }
    scratch[j] = v;
  }
  return scratch[n >> 1]!;
}

let scratch = new Float64Array(16);

export function majorityVoteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return 'won';
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const quorum = (voters.length >> 1) + 1;
  if (granted >= quorum) return 'won';
  if (granted + missing >= quorum) return 'pending';
  return 'lost';
}

export function jointCommitted(
  incoming: readonly NodeId[],
  outgoing: readonly NodeId[],
  valueOf: (id: NodeId) => number | undefined,
): number {
  return Math.min(majorityCommitted(incoming, valueOf), majorityCommitted(outgoing, valueOf));
}

export function jointVoteResult(
  incoming: readonly NodeId[],
  outgoing: readonly NodeId[],
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  const a = majorityVoteResult(incoming, votes);
  const b = majorityVoteResult(outgoing, votes);
  if (a === b) return a;
  if (a === 'lost' || b === 'lost') return 'lost';
  return 'pending';
}
