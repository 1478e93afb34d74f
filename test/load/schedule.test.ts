/**
 * The open loops' schedule (src/load/schedule.ts): every operation started once, in order,
 * never before its due time; a schedule that is behind starts a bounded part of it per turn,
 * so that other work of the thread (the client's pump, which takes replies) runs between
 * turns; the bound on operations in flight holds; and it gives up at its time.
 */
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/base/index.ts';
import { runSchedule, SCHEDULE_TURN_MS } from '../../src/load/schedule.ts';

/** Counts the turns of the event loop: a setImmediate chain, as the client's pump runs between its turns. */
function turnCounter(): { readonly turn: () => number; readonly stop: () => void } {
  let turn = 0;
  let stopped = false;
  const bump = (): void => {
    turn++;
    if (!stopped) setImmediate(bump);
  };
  setImmediate(bump);
  return { turn: () => turn, stop: () => void (stopped = true) };
}

describe('runSchedule', () => {
  it('starts every operation once, in order, at or after its due time', async () => {
    const now = (): number => performance.now();
    const startAt = now() + 5;
    const rate = 20_000;
    const starts: { i: number; dueAt: number; at: number }[] = [];
    // 100 ms at 20,000/s: 2,000 operations.
    const result = await runSchedule({ ratePerSec: rate, startAt, durationMs: 100, giveUpAt: startAt + 10_000, now, mayStart: () => true, start: (i, dueAt) => starts.push({ i, dueAt, at: now() }) });
    expect(result).toEqual({ count: 2_000, started: 2_000 });
    expect(starts.map((s) => s.i)).toEqual(Array.from({ length: 2_000 }, (_, i) => i));
    for (const s of starts) {
      expect(s.dueAt).toBeCloseTo(startAt + (s.i * 1000) / rate, 6);
      expect(s.at).toBeGreaterThanOrEqual(s.dueAt);
    }
  });

  it('when behind, starts at most its turn\'s share at once, and the thread\'s other work runs between turns', async () => {
    const now = (): number => performance.now();
    const rate = 100_000;
    // 200 ms behind from the start: 20,000 operations due at the first turn.
    const startAt = now() - 200;
    const turns = turnCounter();
    const byTurn = new Map<number, number>();
    const result = await runSchedule({
      ratePerSec: rate,
      startAt,
      durationMs: 200,
      giveUpAt: now() + 60_000,
      now,
      mayStart: () => true,
      start: () => byTurn.set(turns.turn(), (byTurn.get(turns.turn()) ?? 0) + 1),
    });
    turns.stop();
    expect(result).toEqual({ count: 20_000, started: 20_000 });
    const perTurnMax = Math.ceil((rate * SCHEDULE_TURN_MS) / 1000);
    expect(Math.max(...byTurn.values())).toBeLessThanOrEqual(perTurnMax);
    // Many turns, each with the pump's chance in between.
    expect(byTurn.size).toBeGreaterThanOrEqual(20_000 / perTurnMax);
  });

  it('keeps to the bound on operations in flight, and gives up at its time with the rest not started', async () => {
    const now = (): number => performance.now();
    const startAt = now();
    let inFlight = 0;
    let peak = 0;
    const result = await runSchedule({
      ratePerSec: 50_000,
      startAt,
      durationMs: 20_000,
      giveUpAt: startAt + 100,
      now,
      mayStart: () => inFlight < 50,
      start: () => {
        peak = Math.max(peak, ++inFlight);
        // Nothing ever finishes: the bound stops the schedule.
      },
    });
    expect(peak).toBe(50);
    expect(result).toEqual({ count: 1_000_000, started: 50 });
    expect(now() - startAt).toBeGreaterThanOrEqual(100);
  });

  it('refuses a rate that is not a positive number with INVALID_ARGUMENT', () => {
    const base = { startAt: 0, durationMs: 1, giveUpAt: 0, now: () => 0, mayStart: () => true, start: () => undefined };
    for (const ratePerSec of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => runSchedule({ ...base, ratePerSec })).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    }
  });
});
