// The load loops' latency log (src/load/latency-log.ts, used by bench/load/loops.ts and load/workload.ts): every value recorded reaches the
// histogram exactly once, whether it was moved there at the end or because the log reached
// its bound (which keeps its memory bounded; then one chunk at a time, so a loop never stops
// for the whole log), and a closed loop counts and times each operation once.
import { describe, expect, it } from 'vitest';
import { closedLoop, newHistogram } from '../../bench/load/loops.ts';
import { LatencyLog } from '../../src/load/latency-log.ts';

describe('LatencyLog', () => {
  it('puts every value into the histogram once, at the end or at its bound, and keeps at most its bound', () => {
    for (const valuesMax of [1, 3, 1000, 1 << 21]) {
      const log = new LatencyLog(newHistogram(), valuesMax);
      const reference = newHistogram();
      let keptMax = 0;
      for (let i = 0; i < 2500; i++) {
        const us = 1 + ((i * 7919) % 5000);
        log.record(1000, 1000 + us / 1000);
        reference.recordValue(us);
        keptMax = Math.max(keptMax, log.keptCount);
      }
      expect(keptMax).toBeLessThanOrEqual(valuesMax);
      log.flush();
      expect(log.keptCount).toBe(0);
      expect(log.histogram.totalCount).toBe(2500);
      for (const p of [0, 50, 90, 99, 100]) expect(log.histogram.getValueAtPercentile(p)).toBe(reference.getValueAtPercentile(p));
      log.flush();
      expect(log.histogram.totalCount).toBe(2500);
      log.histogram.destroy();
      reference.destroy();
    }
  });

  it('at its bound moves one chunk at a time, its oldest, so a loop never stops for the whole log', () => {
    const chunk = 1 << 16;
    const log = new LatencyLog(newHistogram(), 2 * chunk);
    let movedMax = 0;
    let before = 0;
    for (let i = 0; i < 5 * chunk; i++) {
      log.record(0, 1 + (i % 1000) / 1000);
      movedMax = Math.max(movedMax, log.histogram.totalCount - before);
      before = log.histogram.totalCount;
      if (i >= 2 * chunk) expect(log.keptCount).toBeGreaterThan(chunk);
    }
    expect(movedMax).toBe(chunk);
    expect(log.histogram.totalCount + log.keptCount).toBe(5 * chunk);
    log.flush();
    expect(log.histogram.totalCount).toBe(5 * chunk);
    log.histogram.destroy();
  });

  it('keeps a latency of hours exactly, and refuses a bound below one value', () => {
    const log = new LatencyLog(newHistogram());
    const hoursUs = 3 * 3600 * 1_000_000;
    log.record(0, hoursUs / 1000);
    log.flush();
    expect(log.histogram.maxValue).toBeGreaterThanOrEqual(hoursUs * 0.999);
    log.histogram.destroy();
    for (const bad of [0, -1, 1.5]) expect(() => new LatencyLog(newHistogram(), bad)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('records at least 1 µs', () => {
    const log = new LatencyLog(newHistogram());
    log.record(5, 5);
    log.flush();
    expect(log.histogram.minNonZeroValue).toBe(1);
    log.histogram.destroy();
  });
});

describe('closedLoop', () => {
  it('counts each operation once, its failures by code, and times the successes', async () => {
    const r = await closedLoop(
      async (i) => {
        await new Promise((resolve) => setTimeout(resolve, 2));
        if (i % 10 === 9) throw Object.assign(new Error('no'), { code: 'REFUSED' });
      },
      { inFlight: 4, durationMs: 10_000, opsMax: 200 },
    );
    expect(r.ops + r.errors).toBe(200);
    expect(r.errorsByCode).toEqual({ REFUSED: 20 });
    expect(r.ops).toBe(180);
    expect(r.latencyMs.p50).toBeGreaterThanOrEqual(1.5);
    expect(r.inFlightPeak).toBe(4);
  });
});
