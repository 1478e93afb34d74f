// The simulator's Leader Completeness check on hand-made histories: it binds leaders of terms
// after the commit's, and not a leader of an older term whose election finished late.
import { describe, expect, it } from 'vitest';
import { Invariants } from '../../src/sim/invariants.ts';

describe('leader completeness', () => {
  /** Index 2 committed with an entry of term 3 by the leader of term 3 (which sees it first). */
  function committedInTerm3(): Invariants {
    const inv = new Invariants();
    inv.onCommit(2, 1, 1, 3);
    inv.onCommit(2, 2, 3, 3);
    inv.onCommit(3, 2, 3, 3);
    return inv;
  }

  it('lets a leader of an older term lack an entry a newer leader committed (its votes came late)', () => {
    const inv = committedInTerm3();
    // Node 1 wins term 2 with votes cast before term 3 began; its log has term 2 at index 2.
    inv.onLeader(1, 2, (i) => (i === 2 ? 2 : 1), 2);
    expect(inv.violation).toBeUndefined();
  });

  it('reports a leader of a later term without it', () => {
    const inv = committedInTerm3();
    inv.onLeader(1, 4, (i) => (i === 2 ? 2 : 1), 2);
    expect(inv.violation).toMatch(/^leader completeness: leader 1 of term 4 has term 2 at committed index 2 \(committed term 3\)/);
    const short = committedInTerm3();
    short.onLeader(1, 4, () => 1, 1);
    expect(short.violation).toMatch(/^leader completeness: leader 1 of term 4 has last index 1 < committed 2/);
  });

  it('still checks an older leader against what was committed before its term', () => {
    // Index 1 committed in term 1, index 2 in term 3: a leader of term 2 must hold index 1.
    const early = new Invariants();
    early.onCommit(1, 1, 1, 1);
    early.onCommit(2, 2, 3, 3);
    early.onLeader(3, 2, () => undefined, 0);
    expect(early.violation).toMatch(/^leader completeness: leader 3 of term 2 has last index 0 < committed 1/);
  });
});
