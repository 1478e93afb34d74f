// The client's in-flight slots: calls beyond the bound wait in line, oldest first, and a slot
// released goes straight to the next; a wait ends at its deadline (within one sweep) or on its
// signal; the line costs no timer per call (one sweep for all of them), and calls that gave up
// are skipped, not searched for. Fake timers: the sweep and the clock are driven by hand.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SLOT_SWEEP_INTERVAL_MS, SlotGate } from '../../src/cluster/slot-gate.ts';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Settles what is already resolved (the promises' callbacks). */
const flush = () => vi.advanceTimersByTimeAsync(0);

describe('SlotGate', () => {
  it('refuses a release of a slot nobody holds, which would let more calls in than its bound', () => {
    const gate = new SlotGate(1);
    expect(() => gate.release()).toThrow(/released is one held/);
    expect(gate.tryAcquire()).toBe(true);
    gate.release();
    expect(() => gate.release()).toThrow(/released is one held/);
    expect(gate.tryAcquire()).toBe(true);
    expect(gate.tryAcquire()).toBe(false);
  });

  it('hands a released slot to the oldest waiting call, and frees it when nobody waits', async () => {
    const gate = new SlotGate(1);
    expect(gate.tryAcquire()).toBe(true);
    expect(gate.tryAcquire()).toBe(false);
    const order: string[] = [];
    const far = performance.now() + 60_000;
    void gate.acquire(far, undefined, false).then((g) => order.push(`a:${g}`));
    void gate.acquire(far, undefined, false).then((g) => order.push(`b:${g}`));
    expect(gate.waitingCount).toBe(2);
    gate.release();
    await flush();
    expect(order).toEqual(['a:true']);
    // While b waits, a free slot is not taken past it.
    expect(gate.tryAcquire()).toBe(false);
    gate.release();
    await flush();
    expect(order).toEqual(['a:true', 'b:true']);
    gate.release();
    expect(gate.tryAcquire()).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ends a wait at its deadline, within one sweep, and one that aborts at once; the next in line still gets the slot', async () => {
    const gate = new SlotGate(1);
    gate.tryAcquire();
    const got: string[] = [];
    const ac = new AbortController();
    void gate.acquire(performance.now() + 100, undefined, false).then((g) => got.push(`short:${g}`));
    void gate.acquire(performance.now() + 60_000, ac.signal, false).then((g) => got.push(`aborted:${g}`));
    void gate.acquire(performance.now() + 60_000, undefined, false).then((g) => got.push(`last:${g}`));
    ac.abort();
    await flush();
    expect(got).toEqual(['aborted:false']);
    await vi.advanceTimersByTimeAsync(100 + SLOT_SWEEP_INTERVAL_MS);
    expect(got).toEqual(['aborted:false', 'short:false']);
    expect(gate.waitingCount).toBe(1);
    gate.release();
    await flush();
    expect(got).toEqual(['aborted:false', 'short:false', 'last:true']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps 20,000 waiting calls with one timer, and ends them all at their deadline', async () => {
    const gate = new SlotGate(1);
    gate.tryAcquire();
    let refused = 0;
    for (let i = 0; i < 20_000; i++) void gate.acquire(performance.now() + 50 + (i % 7), undefined, false).then((g) => void (g || refused++));
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(60 + SLOT_SWEEP_INTERVAL_MS);
    expect(refused).toBe(20_000);
    expect(gate.waitingCount).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    // The slot is still held: released, it is free again.
    gate.release();
    expect(gate.tryAcquire()).toBe(true);
  });

  it('gives up every waiting call when the endpoint closes, and refuses new ones', async () => {
    const gate = new SlotGate(1);
    gate.tryAcquire();
    const got: boolean[] = [];
    for (let i = 0; i < 3; i++) void gate.acquire(performance.now() + 60_000, undefined, false).then((g) => got.push(g));
    gate.failWaiters();
    await flush();
    expect(got).toEqual([false, false, false]);
    expect(await gate.acquire(performance.now() + 60_000, undefined, true)).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });
});
