// The check of a cluster's own state machine's history against a sequential model
// (sim/app-history.ts): orders that explain every answer are found, concurrent commands may
// take effect in either order, a command never answered may apply or not, and a history no
// order explains is refused, with the longest order that fits.
import { describe, expect, it } from 'vitest';
import { runApp, type StateMachine } from '../../src/kv/index.ts';
import { checkAppHistory } from '../../src/sim/app-history.ts';
import type { AppOp } from '../../src/sim/workload.ts';

/** A register: a command sets it, and apply answers the value it held before. */
const register = (): StateMachine => {
  let value = 0;
  return {
    apply: (c) => {
      const before = value;
      value = c[0]!;
      return Uint8Array.of(before);
    },
    query: () => Uint8Array.of(value),
    snapshot: () => Uint8Array.of(value),
    restore: (chunks) => {
      value = [...chunks][0]![0]!;
    },
  };
};
const answer = (before: number): Uint8Array => runApp(() => Uint8Array.of(before));
const op = (call: number, ret: number | null, set: number, before: number | null): AppOp => ({ client: 1, call, return: ret, command: Uint8Array.of(set), outcome: before === null ? null : answer(before) });

describe('the history of a cluster\'s own state machine against a model', () => {
  it('finds the order of sequential commands', () => {
    expect(checkAppHistory([op(0, 1, 5, 0), op(2, 3, 7, 5), op(4, 5, 9, 7)], register, undefined)).toEqual({ ok: true, ops: 3 });
  });

  it('lets concurrent commands take effect in either order', () => {
    // Both overlap: 7 went first (8 saw 7 before it), though 8 was called first.
    expect(checkAppHistory([op(0, 10, 8, 7), op(1, 9, 7, 0)], register, undefined).ok).toBe(true);
  });

  it('lets a command never answered apply, or not', () => {
    // The pending 4 applied between the two: the second saw 4.
    expect(checkAppHistory([op(0, 1, 5, 0), op(1, null, 4, null), op(3, 4, 9, 4)], register, undefined).ok).toBe(true);
    // Or it did not: the second saw 5.
    expect(checkAppHistory([op(0, 1, 5, 0), op(1, null, 4, null), op(3, 4, 9, 5)], register, undefined).ok).toBe(true);
  });

  it('refuses a history no order explains', () => {
    // Sequential, and the second saw a value nobody wrote.
    const r = checkAppHistory([op(0, 1, 5, 0), op(2, 3, 7, 6)], register, undefined);
    expect(r.ok).toBe(false);
    expect((r as { report: string }).report).toMatch(/longest that does places 1, and then client 1's command called at 2 ms, answered at 3 ms, fits nowhere/);
    // Answers in the wrong order: the first saw what only the second wrote.
    expect(checkAppHistory([op(0, 1, 5, 7), op(2, 3, 7, 0)], register, undefined).ok).toBe(false);
  });

  it("says 'unknown' past its step bound rather than guess", () => {
    // Eleven concurrent sets of 1, one of them first (it saw 0), and one that saw a 5 nobody
    // wrote: every order of the eleven is tried before the answer is no.
    const many = [op(0, 100, 1, 0), ...Array.from({ length: 10 }, () => op(0, 100, 1, 1)), op(0, 100, 1, 5)];
    expect(checkAppHistory(many, register, undefined, 50).ok).toBe('unknown');
    expect(checkAppHistory(many, register, undefined).ok).toBe(false);
  });
});
