// Proves the simulator's checks can fail: with a classic Raft protocol bug planted in the
// core, one at a time, a bounded number of seeds finds a violation, and it is the kind of
// violation that bug causes. The same seeds pass without the bug (see the smoke runs).
import { describe, expect, it } from 'vitest';
import { huntBug } from './planted-bugs.ts';

const SEEDS_MAX = 400;

describe('planted protocol bugs are caught', () => {
  it('votes granted without the log up-to-date check (§5.4.1)', () => {
    const found = huntBug('vote-ignores-log', SEEDS_MAX, /leader completeness|state machine safety|linearizability|log matching/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
  });

  it('entries of an earlier term committed by counting replicas (Figure 8)', () => {
    const found = huntBug('commit-old-term', SEEDS_MAX, /leader completeness|state machine safety/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
  });

  it('a conflicting suffix not truncated', () => {
    const found = huntBug('no-truncate', SEEDS_MAX, /log matching|state machine safety|leader completeness/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
  });

  it('AppendEntries accepted from a stale term', () => {
    const found = huntBug('stale-term-append', SEEDS_MAX, /election safety|state machine safety|log matching|leader completeness|exception/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
  });

  it('a conf change applied by some nodes only (even ids skip adding learners): their configurations part', () => {
    const found = huntBug('learner-add-ignored', SEEDS_MAX, /^configuration safety: node \d+ runs with .* at applied index \d+, node \d+ ran with/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
  });
});
