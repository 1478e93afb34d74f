// bench:peers' redis-benchmark cells (bench/peers/redis-benchmark.ts): against a real
// redis-server, every cell of a small plan runs and is read from redis-benchmark's CSV (its
// requests per second and p50/p99), and the table puts ringraft's figure beside each Redis row.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { benchmarkTarget, formatRedisBenchmark, type RedisBenchmarkRow } from '../../bench/peers/redis-benchmark.ts';
import { HOST, redisServer } from '../server/helpers.ts';

const redis = redisServer();

describe('redis-benchmark cells', () => {
  it('run every test and pipeline depth of a plan, read from the CSV, and tabulate with ratios', () => {
    const said: string[] = [];
    const plan = { clients: 4, pipelines: [1, 4], secondsPerCell: 0.2, probeRequests: 300, requestsMax: 3_000 };
    const rows = benchmarkTarget('redis-benchmark', 'redis appendfsync everysec', HOST, redis.port(), plan, (line) => said.push(line));
    expect(rows.map((r) => `${r.test} -P ${r.pipeline}`)).toEqual(['SET -P 1', 'GET -P 1', 'SET -P 4', 'GET -P 4']);
    for (const r of rows) {
      expect(r.requestsPerSec).toBeGreaterThan(0);
      expect(r.p99Ms).toBeGreaterThanOrEqual(r.p50Ms);
      expect(r.requests).toBeGreaterThanOrEqual(plan.probeRequests);
      expect(r.requests).toBeLessThanOrEqual(plan.requestsMax);
    }
    expect(said).toHaveLength(4);
    // A ringraft row at half Redis's rate: the ratio column says 0.50.
    const ours: RedisBenchmarkRow = { ...rows[0]!, target: 'ringraft RESP (3 serve, fsync always)', requestsPerSec: rows[0]!.requestsPerSec / 2 };
    const table = formatRedisBenchmark([ours, ...rows]);
    expect(table.split('\n')[3]).toMatch(/\| redis appendfsync everysec \| SET \| 1 \| [0-9,]+ \| [0-9.]+ \| [0-9.]+ \| 0\.50 \|$/);
  }, 60_000);

  it('runs a cell again, ten times longer, when it ends too soon to time (a rate of "inf"), and gives up at the bound', () => {
    // A stand-in for redis-benchmark: "inf" below 5,000 requests, a rate from there on.
    const dir = mkdtempSync(join(tmpdir(), 'ringraft-fake-rb-'));
    try {
      const bin = join(dir, 'redis-benchmark');
      writeFileSync(
        bin,
        [
          '#!/bin/sh',
          'n=0; while [ $# -gt 0 ]; do if [ "$1" = "-n" ]; then n=$2; fi; shift; done',
          'echo \'"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"\'',
          'if [ "$n" -lt 5000 ]; then rps=inf; else rps=1000.00; fi',
          'echo "\\"SET\\",\\"$rps\\",\\"0.1\\",\\"0.1\\",\\"0.1\\",\\"0.2\\",\\"0.3\\",\\"0.3\\""',
          '',
        ].join('\n'),
      );
      chmodSync(bin, 0o755);
      const plan = { clients: 1, pipelines: [1], secondsPerCell: 1, probeRequests: 100, requestsMax: 100_000 };
      const rows = benchmarkTarget(bin, 'redis appendfsync everysec', HOST, 1, plan, () => undefined);
      expect(rows[0]!.requestsPerSec).toBe(1000);
      expect(rows[0]!.requests).toBe(10_000);
      expect(() => benchmarkTarget(bin, 'redis appendfsync everysec', HOST, 1, { ...plan, requestsMax: 1_000 }, () => undefined)).toThrow(/end too soon to time/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
