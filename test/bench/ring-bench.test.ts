// Proves that the ring benchmark runs end to end with tiny time budgets: both throughput
// cases and both round-trip cases start their workers, move messages (the receivers check
// every sequence number, so a lost or reordered message fails the run), report positive
// figures, and leave no worker behind. It asserts no speed: figures from a 50 ms run are noise.
import { describe, expect, it } from 'vitest';
import { formatRingBench, latencyOf, runRingBench } from '../../dist/bench/micro/ring.bench.js';

describe('ring benchmark', () => {
  it('reports throughput and round-trip figures for the ring and postMessage', async () => {
    const lines: string[] = [];
    const result = await runRingBench({ timeMs: 50, warmupMs: 20, onProgress: (line) => lines.push(line) });
    expect(lines.length).toBe(5);
    const t = result.throughput;
    for (const case_ of [t.ring, t.ringBatched, t.postMessage]) {
      expect(case_.messages).toBeGreaterThan(0);
      expect(case_.messagesPerSec).toBeGreaterThan(0);
    }
    expect(t.ringOverPostMessage).toBeCloseTo(t.ring.messagesPerSec / t.postMessage.messagesPerSec);
    for (const l of [result.latency.ring, result.latency.postMessage]) {
      expect(l.samples).toBeGreaterThan(0);
      expect(l.p50Us).toBeGreaterThan(0);
      expect(l.p99Us).toBeGreaterThanOrEqual(l.p50Us);
    }
    expect(formatRingBench(result).join('\n')).toMatch(/postMessage/);
  });

  it('takes percentiles from sorted samples', () => {
    const samplesMs = Float64Array.from({ length: 100 }, (_, i) => (100 - i) / 1000); // 0.1 ms down to 0.001 ms
    const l = latencyOf(samplesMs);
    expect(l.samples).toBe(100);
    expect(l.p50Us).toBeCloseTo(51);
    expect(l.p99Us).toBeCloseTo(100);
    expect(l.meanUs).toBeCloseTo(50.5);
    expect(() => latencyOf(new Float64Array(0))).toThrow(/no round trip/);
  });
});
