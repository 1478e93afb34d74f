/**
 * The safety checks the simulator runs after every event (Raft paper, Figure 3):
 *
 * - Election Safety: at most one leader per term.
 * - Log Matching: two logs holding an entry with the same index and term hold the same
 *   entry there, preceded by the same entry. Checked inductively as entries are persisted:
 *   every copy of (index, term) must carry the same bytes and follow the same previous term.
 * - Leader Completeness: a new leader's log holds every entry committed so far.
 * - State Machine Safety: no two nodes commit or apply different entries at one index, and
 *   none runs with another configuration than the others once it has applied the same index
 *   (the configuration is state the log's entries and the snapshots make: a conf change
 *   applied differently, or a snapshot that carries the wrong one, shows here).
 * - Commit and apply indexes never go backwards within one incarnation of a node, and
 *   entries are applied one after another without gaps.
 *
 * A check that fails records a violation; the simulator stops the run at the first one.
 */
import type { ConfState, Entry } from '../core/index.ts';

interface EntryIdentity {
  readonly type: number;
  readonly data: Uint8Array;
  readonly prevTerm: number;
}

export class Invariants {
  private leaders = new Map<number, number>();
  private entries = new Map<string, EntryIdentity>();
  /** term of the entry committed at each index, as first seen committed anywhere. */
  private committedTerms: number[] = [0];
  /**
   * The lowest current term of a node seen holding each index committed: the term it was
   * committed in, or later (a leader sees its own commits first, in its term).
   */
  private commitSeenTerms: number[] = [0];
  maxCommitted = 0;
  violation: string | undefined;
  /** The configuration the first node to stand at each applied index ran with there, and that node. */
  private confsApplied = new Map<number, { readonly conf: string; readonly node: number }>();

  /** Records a violation found by a check of the simulator's own (the first one wins). */
  fail(what: string): void {
    if (this.violation === undefined) this.violation = what;
  }

  /** Election Safety and Leader Completeness, when `node` becomes leader of `term`. */
  onLeader(node: number, term: number, termAt: (i: number) => number | undefined, lastIndex: number): void {
    const other = this.leaders.get(term);
    if (other !== undefined && other !== node) {
      this.fail(`election safety: nodes ${other} and ${node} are both leaders of term ${term}`);
      return;
    }
    this.leaders.set(term, node);
    // Leader Completeness binds leaders of later terms than the commit's: a leader of an older
    // term (its election's votes arriving late, past a one-way cut) need not hold an entry a
    // newer leader committed. So: the highest index committed in a term before this one.
    let c = this.maxCommitted;
    while (c > 0 && !((this.commitSeenTerms[c] ?? Infinity) < term)) c--;
    if (c === 0) return;
    if (lastIndex < c) {
      this.fail(`leader completeness: leader ${node} of term ${term} has last index ${lastIndex} < committed ${c}`);
      return;
    }
    const t = termAt(c);
    // undefined: compacted into a snapshot, which only ever holds committed entries.
    if (t !== undefined && t !== this.committedTerms[c]) {
      this.fail(`leader completeness: leader ${node} of term ${term} has term ${t} at committed index ${c} (committed term ${this.committedTerms[c]})`);
    }
  }

  get leaderCount(): number {
    return this.leaders.size;
  }

  /** Log Matching, as `node` persists `e` after an entry of term `prevTerm`. */
  onPersist(node: number, e: Entry, prevTerm: number | undefined): void {
    const key = `${e.index}:${e.term}`;
    const seen = this.entries.get(key);
    if (seen === undefined) {
      this.entries.set(key, { type: e.type, data: e.data, prevTerm: prevTerm ?? -1 });
      return;
    }
    if (seen.type !== e.type || !sameBytes(seen.data, e.data)) {
      this.fail(`log matching: node ${node} holds a different entry at index ${e.index} term ${e.term}`);
    } else if (prevTerm !== undefined && seen.prevTerm !== -1 && prevTerm !== seen.prevTerm) {
      this.fail(`log matching: node ${node} holds (${e.index}, ${e.term}) after term ${prevTerm}, elsewhere after term ${seen.prevTerm}`);
    }
  }

  /** State Machine Safety on commit: index i committed with term t, seen by a node whose current term is `nodeTerm`. */
  onCommit(node: number, index: number, term: number, nodeTerm: number): void {
    const seen = this.commitSeenTerms[index];
    if (seen === undefined || nodeTerm < seen) this.commitSeenTerms[index] = nodeTerm;
    const known = this.committedTerms[index];
    if (known === undefined) {
      if (index !== this.committedTerms.length) {
        // Commit indexes can jump (a snapshot); fill in as unknown.
        while (this.committedTerms.length < index) this.committedTerms.push(-1);
      }
      this.committedTerms[index] = term;
    } else if (known === -1) {
      this.committedTerms[index] = term;
    } else if (known !== term) {
      this.fail(`state machine safety: node ${node} committed term ${term} at index ${index}, another node term ${known}`);
    }
    if (index > this.maxCommitted) this.maxCommitted = index;
  }

  /** State Machine Safety on apply, and gap-free monotonic apply. */
  onApply(node: number, e: Entry, previousApplied: number): void {
    if (e.index !== previousApplied + 1) {
      this.fail(`apply order: node ${node} applied index ${e.index} after ${previousApplied}`);
      return;
    }
    const known = this.committedTerms[e.index];
    if (known !== undefined && known !== -1 && known !== e.term) {
      this.fail(`state machine safety: node ${node} applied term ${e.term} at index ${e.index}, committed term is ${known}`);
    }
    const id = this.entries.get(`${e.index}:${e.term}`);
    if (id !== undefined && !sameBytes(id.data, e.data)) {
      this.fail(`state machine safety: node ${node} applied bytes at index ${e.index} that differ from the entry persisted`);
    }
  }

  /** Configuration safety: `node` has applied through `appliedIndex` and runs with `conf`. */
  onConf(node: number, appliedIndex: number, conf: ConfState): void {
    const text = confText(conf);
    const first = this.confsApplied.get(appliedIndex);
    if (first === undefined) this.confsApplied.set(appliedIndex, { conf: text, node });
    else if (first.conf !== text) this.fail(`configuration safety: node ${node} runs with ${text} at applied index ${appliedIndex}, node ${first.node} ran with ${first.conf}`);
  }

  onMonotonic(node: number, what: 'commit' | 'apply', before: number, after: number): void {
    if (after < before) this.fail(`monotonic ${what}: node ${node} went from ${before} back to ${after}`);
  }
}

/** A configuration as text that two equal configurations share (each list sorted). */
function confText(c: ConfState): string {
  const list = (ids: readonly number[]): string => [...ids].sort((a, b) => a - b).join(',');
  return `voters [${list(c.voters)}] outgoing [${list(c.votersOutgoing)}] learners [${list(c.learners)}] next [${list(c.learnersNext)}]${c.autoLeave ? ' auto-leave' : ''}`;
}

/** Whether two byte arrays hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
