/**
 * The load harness: its argument parsing, the key distribution, the recovery measure, and
 * one short real run (load generator threads on a piscina pool, a leader crash, the
 * history checked for linearizability). The threads run the build (npm test builds first).
 */

import { describe, expect, it } from 'vitest';
import { keyName, OpPicker, recoveryMs, runLoad, type WorkloadSpec } from '../../src/load/index.ts';
import { parseDurationMs, parseFaults, parseMix } from '../../src/cli/load-command.ts';

const spec = (over: Partial<WorkloadSpec> = {}): WorkloadSpec => ({
  mix: { put: 50, get: 50 },
  keys: 1000,
  distribution: 'uniform',
  zipfExponent: 0.99,
  keyBytes: 16,
  valueBytes: 128,
  concurrency: 8,
  ratePerSec: undefined,
  durationMs: 1000,
  bucketMs: 100,
  recordHistory: false,
  timeoutMs: 5000,
  ...over,
});

describe('load harness arguments', () => {
  it('parses mixes, faults and durations, and refuses nonsense with a usage error', () => {
    expect(parseMix('put=50,get=45,cas=5')).toEqual({ put: 50, get: 45, cas: 5 });
    expect(parseFaults('crash-leader@10s,heal@2500ms')).toEqual([
      { kind: 'crash-leader', atMs: 10_000 },
      { kind: 'heal', atMs: 2500 },
    ]);
    expect(parseDurationMs('1.5s', 'x')).toBe(1500);
    for (const bad of [() => parseMix('jump=3'), () => parseMix('put=-1'), () => parseMix('put=0'), () => parseFaults('crash@1s'), () => parseFaults('heal'), () => parseDurationMs('soon', 'x')]) {
      expect(bad).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });
});

describe('workload', () => {
  it('keys have the asked size; a Zipfian distribution is skewed and a uniform one is not', () => {
    expect(keyName(7, 16)).toHaveLength(16);
    const hot = (s: WorkloadSpec): number => {
      const p = new OpPicker(s, 42);
      let first = 0;
      for (let i = 0; i < 20_000; i++) if (p.key() < 10) first++;
      return first / 20_000;
    };
    expect(hot(spec({ distribution: 'zipf' }))).toBeGreaterThan(0.25);
    expect(hot(spec())).toBeLessThan(0.03);
  });

  it('picks operations by weight', () => {
    const p = new OpPicker(spec({ mix: { put: 90, cas: 10 } }), 7);
    let puts = 0;
    for (let i = 0; i < 10_000; i++) if (p.kind() === 'put') puts++;
    expect(puts / 10_000).toBeGreaterThan(0.85);
    expect(puts / 10_000).toBeLessThan(0.95);
  });

  it('recovery is the time until throughput is back to half of the second before the fault', () => {
    const buckets = [10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 0, 0, 2, 6, 10];
    expect(recoveryMs(buckets, 100, 1000)).toBe(400);
    expect(recoveryMs([0, 0, 0, 5], 100, 200)).toBeUndefined();
    expect(recoveryMs([10, 10, 0, 0], 100, 200)).toBeUndefined();
  });
});

describe('a short real run', () => {
  it('drives a cluster from a thread pool through a leader crash, and the history is linearizable', async () => {
    const report = await runLoad({
      nodes: 3,
      durable: false,
      fsync: 'always',
      threads: 2,
      faults: [{ kind: 'crash-leader', atMs: 700 }],
      check: true,
      historyFile: undefined,
      // 2.3 s after the crash: an election takes up to twice the default timeout (500 ms) and a
      // pre-vote round, and the machine may be busy with other tests.
      spec: spec({ mix: { put: 40, get: 40, cas: 10, delete: 10 }, keys: 20, durationMs: 3000 }),
    });
    expect(report.ops).toBeGreaterThan(100);
    expect(report.linearizability).toMatchObject({ result: 'ok' });
    expect(report.faults).toHaveLength(1);
    expect(report.faults[0]!.detail).toMatch(/^crashed node \d$/);
    expect(report.faults[0]!.recoveryMs).toBeGreaterThan(0);
    expect(report.latencyMs.p50).toBeGreaterThan(0);
    expect(report.latencyMs.max).toBeGreaterThanOrEqual(report.latencyMs.p999);
    expect(report.timeline.length).toBeGreaterThanOrEqual(20);
  });
});
