/**
 * Whether the commands clients sent to a cluster's own state machine are linearizable against
 * a sequential model of it: some order of them, each placed between its call and its return,
 * in which a fresh model applying them one after another answers each completed command as
 * the cluster did. A command whose client never learned its outcome may have applied or not,
 * anywhere after its call, with any answer.
 *
 * The model is a state machine of the same interface (often the machine itself, built fresh):
 * its state is held as the bytes of its `snapshot()` and restored to try each next command, so
 * the search can back up. It is the Wing & Gong search with Lowe's memoization, as
 * linearizability.ts runs it per key, on one object here: from the state reached, try each
 * command that may come next (its call before the earliest return of those not yet placed),
 * remember each (set placed, state) tried, and back up when none fits. The model is called
 * with the command's position in the order (1, 2, ...) as its index, not the log's: a model
 * must not depend on it.
 *
 * Cost: exponential in the worst case, cut by the memo; bounded by `stepsMax`, past which the
 * answer is 'unknown', never a guess.
 */
import { appSnapshotBytesNow, KvError, KvErrorCode, restoreApp, runApp, type StateMachineFactory } from '../kv/index.ts';
import { sameBytes } from './invariants.ts';
import type { AppOp } from './workload.ts';

export type AppHistoryResult = { readonly ok: true; readonly ops: number } | { readonly ok: false; readonly report: string } | { readonly ok: 'unknown'; readonly reason: string };

/** Search steps at most before the answer is 'unknown'. */
export const APP_HISTORY_STEPS_MAX = 1_000_000;


function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function checkAppHistory(history: readonly AppOp[], model: StateMachineFactory, options: unknown, stepsMax = APP_HISTORY_STEPS_MAX): AppHistoryResult {
  const ops = [...history].sort((a, b) => a.call - b.call);
  const n = ops.length;
  const returns = ops.map((o) => (o.return === null ? Infinity : o.return));
  const completed = ops.filter((o) => o.return !== null).length;
  /** Applies op `i` to the model in state `state` at position `position`: the state after and the outcome. */
  const step = (state: Uint8Array | undefined, i: number, position: number): { state: Uint8Array; outcome: Uint8Array } => {
    const m = model(structuredClone(options));
    const restoring = state === undefined ? undefined : restoreApp(m, state);
    if (restoring !== undefined) {
      restoring.catch(() => undefined);
      throw new KvError(KvErrorCode.APPLY_FAILED, 'the model: its restore() returned a promise; a model must restore at once');
    }
    const outcome = runApp(() => m.apply(ops[i]!.command, position));
    return { state: appSnapshotBytesNow(m, 'the model'), outcome };
  };
  const placed = new Uint8Array(n);
  const seen = new Set<string>();
  let steps = 0;
  let deepest: number[] = [];
  const order: number[] = [];

  const search = (state: Uint8Array | undefined, placedCompleted: number): boolean | 'unknown' => {
    if (placedCompleted === completed) return true;
    const memo = `${hex(placed)}|${state === undefined ? '' : hex(state)}`;
    if (seen.has(memo)) return false;
    seen.add(memo);
    let earliestReturn = Infinity;
    for (let i = 0; i < n; i++) if (placed[i] === 0 && returns[i]! < earliestReturn) earliestReturn = returns[i]!;
    // Completed commands first: a pending one can always wait (it may come at the very end, or never).
    const candidates: number[] = [];
    for (let i = 0; i < n; i++) if (placed[i] === 0 && ops[i]!.call <= earliestReturn && ops[i]!.return !== null) candidates.push(i);
    for (let i = 0; i < n; i++) if (placed[i] === 0 && ops[i]!.call <= earliestReturn && ops[i]!.return === null) candidates.push(i);
    for (const i of candidates) {
      if (++steps > stepsMax) return 'unknown';
      const op = ops[i]!;
      const next = step(state, i, order.length + 1);
      if (op.outcome !== null && !sameBytes(next.outcome, op.outcome)) continue;
      placed[i] = 1;
      order.push(i);
      if (order.length > deepest.length) deepest = [...order];
      const found = search(next.state, placedCompleted + (op.return !== null ? 1 : 0));
      if (found !== false) return found;
      order.pop();
      placed[i] = 0;
    }
    return false;
  };

  const found = search(undefined, 0);
  if (found === 'unknown') return { ok: 'unknown', reason: `more than ${stepsMax} search steps over ${n} commands` };
  if (found) return { ok: true, ops: n };
  const stuck = ops.filter((_, i) => !deepest.includes(i) && ops[i]!.return !== null).sort((a, b) => (a.return ?? 0) - (b.return ?? 0))[0];
  return {
    ok: false,
    report: `no order of the ${n} commands explains their answers: the longest that does places ${deepest.length}, and then client ${stuck?.client}'s command called at ${stuck?.call} ms, answered at ${stuck?.return} ms, fits nowhere`,
  };
}
