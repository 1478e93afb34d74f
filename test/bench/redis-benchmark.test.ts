// bench:peers' redis-benchmark cells (bench/peers/redis-benchmark.ts): against a real
// redis-server, every cell of a small plan runs and is read from redis-benchmark's CSV (its
// requests per second and p50/p99), and the table puts ringraft's figure beside each Redis row.
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
});
