// The cluster benchmark end to end, on tiny time budgets: `node dist/bench/run.js` with both
// cluster scenarios writes JSON in the contract other tools read (machine, scenarios, peers),
// every row's limit is the tightest limit measured for its op in the same run (for durable
// puts, the disk loop at the WAL batch the row reports), every ratio is opsPerSec over that
// limit, the HTML report holds SVG charts, and the durable scenario's temporary directory is
// gone afterwards. Then the target verdicts and limit choice on rows made up by hand.
// Needs the build (npm test builds first): worker threads run dist/.

import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { targets } from '../../bench.config.ts';
import { diskBatchOf, limitsFor } from '../../bench/cluster/cluster.bench.ts';
import { defaultNodeThreads } from '../../src/index.ts';
import { evaluateTargets, tightestLimit, withLimit, type BenchJson, type BenchRow, type LimitRecord } from '../../bench/shared/result.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
/** Each loop and limit of the run takes this long. */
const LOOP_MS = 150;
const RUN_TIMEOUT_MS = 90_000;

function benchTempDirs(): Set<string> {
  return new Set(readdirSync(os.tmpdir()).filter((n) => n.startsWith('ringraft-bench-')));
}

describe('cluster bench', () => {
  it('writes the JSON contract, with every ratio taken from the tightest limit of the same run', { timeout: RUN_TIMEOUT_MS + 10_000 }, async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'ringraft-cluster-bench-test-'));
    const dirsBefore = benchTempDirs();
    try {
      const json = path.join(out, 'result.json');
      const args = ['dist/bench/run.js', '--quick', '--time-ms', String(LOOP_MS), '--scenario', 'cluster-memory', '--scenario', 'cluster-durable', '--json', json];
      const { stdout } = await run(process.execPath, args, { cwd: ROOT, timeout: RUN_TIMEOUT_MS, maxBuffer: 16 << 20 });
      expect(stdout).toContain(`report: ${path.join(out, 'report.html')}`);

      const result = JSON.parse(readFileSync(json, 'utf8')) as BenchJson;
      expect(result.machine).toEqual({ cores: expect.any(Number), cpu: expect.any(String), node: process.version });
      expect(result.peers).toEqual([]);
      const rows = result.scenarios;
      const limits = result.limits!;

      // Both durabilities, every op at both quick levels, and an open loop of puts in each.
      for (const durable of [false, true]) {
        for (const op of ['put', 'get-linearizable', 'get-lease']) {
          const levels = rows.filter((r) => r.durable === durable && r.op === op && r.loop === 'closed').map((r) => r.inFlight);
          expect(levels).toEqual([1, 256]);
        }
        const open = rows.filter((r) => r.durable === durable && r.loop === 'open');
        expect(open.map((r) => r.op)).toEqual(['put']);
        expect(open[0]!.offeredOpsPerSec).toBeGreaterThan(0);
      }

      for (const r of rows) {
        expect(Object.keys(r).slice(0, 9)).toEqual(['name', 'nodes', 'durable', 'inFlight', 'op', 'opsPerSec', 'latencyMs', 'limit', 'ratio']);
        expect(r.nodes).toBe(3);
        expect(r.name).toBe(r.durable ? 'cluster-durable' : 'cluster-memory');
        expect(r.errors).toBe(0);
        expect(r.opsPerSec).toBeGreaterThan(0);
        // Each thread's CPU per operation: the client, the leader's thread, each other node
        // thread (the cluster's default nodeThreads: one for all three nodes on 2 cores), and
        // the sum of all threads.
        expect(r.cpu!.clientUs).toBeGreaterThan(0);
        expect(r.cpu!.leaderUs).toBeGreaterThan(0);
        expect(r.cpu!.followersUs).toHaveLength(Math.min(3, defaultNodeThreads()) - 1);
        expect(r.cpu!.totalUs).toBeCloseTo(r.cpu!.clientUs + r.cpu!.leaderUs + r.cpu!.followersUs.reduce((a, b) => a + b, 0) + r.cpu!.restUs, 6);
        const l = r.latencyMs;
        expect(l.p50).toBeGreaterThan(0);
        expect(l.p50).toBeLessThanOrEqual(l.p99);
        expect(l.p99).toBeLessThanOrEqual(l.p999);
        expect(l.max).toBeGreaterThan(0);

        // The limit is a measured limit of this scenario that bounds this op, the tightest of them.
        let diskBatch: number | undefined;
        if (r.durable && r.op === 'put') {
          expect(r.wal!.batch).toBeGreaterThan(0);
          diskBatch = diskBatchOf(r.wal!);
        }
        const candidates = limitsFor(limits, r.name, r.op, diskBatch);
        expect(candidates.map((c) => c.kind).sort()).toEqual(diskBatch === undefined ? ['map', 'ring'] : ['disk', 'map', 'ring']);
        const min = Math.min(...candidates.map((c) => c.opsPerSec));
        expect(r.limit).toEqual({ name: candidates.find((c) => c.opsPerSec === min)!.name, opsPerSec: min });
        expect(r.ratio).toBeCloseTo(r.opsPerSec / min, 12);
      }
      // One disk limit per WAL batch the durable puts reached, at that batch.
      const diskBatches = new Set(rows.filter((r) => r.wal !== undefined).map((r) => diskBatchOf(r.wal!)));
      expect(new Set(limits.filter((l) => l.kind === 'disk').map((l) => l.batch))).toEqual(diskBatches);

      expect(result.targets!.map((t) => t.name)).toEqual(targets.map((t) => t.name));
      for (const t of result.targets!) expect(['met', 'missed']).toContain(t.status);

      const html = readFileSync(path.join(out, 'report.html'), 'utf8');
      expect(html.match(/<svg/g)?.length).toBe(1 + 6); // throughput, then one curve chart per scenario and op
      expect([...benchTempDirs()].filter((d) => !dirsBefore.has(d))).toEqual([]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  const row = (over: Partial<BenchRow>): BenchRow => ({
    name: 'cluster-durable',
    nodes: 3,
    durable: true,
    inFlight: 256,
    op: 'put',
    opsPerSec: 300_000,
    latencyMs: { p50: 2, p99: 5, p999: 8, max: 9 },
    limit: null,
    ratio: null,
    loop: 'closed',
    ...over,
  });

  it('takes the tightest limit and divides by it', () => {
    const limits = [
      { name: 'ring', opsPerSec: 4_000_000 },
      { name: 'disk', opsPerSec: 600_000 },
      { name: 'map', opsPerSec: 2_000_000 },
    ];
    expect(tightestLimit(limits)).toEqual({ name: 'disk', opsPerSec: 600_000 });
    expect(tightestLimit([])).toBeNull();
    const r = withLimit(row({}), limits);
    expect(r.limit).toEqual({ name: 'disk', opsPerSec: 600_000 });
    expect(r.ratio).toBe(0.5);
    expect(withLimit(row({}), []).ratio).toBeNull();

    const record = (kind: LimitRecord['kind'], ops: string[], batch?: number): LimitRecord => ({
      scenario: 'cluster-durable',
      kind,
      name: `${kind} ${batch ?? ''}`,
      ops,
      opsPerSec: 1,
      bytesPerOp: 1,
      ...(batch === undefined ? {} : { batch }),
    });
    const all = [record('ring', ['put']), record('map', ['get-lease']), record('disk', ['put'], 64), record('disk', ['put'], 1024)];
    expect(limitsFor(all, 'cluster-durable', 'put', 64).map((l) => l.name)).toEqual(['ring ', 'disk 64']);
    expect(limitsFor(all, 'cluster-memory', 'put', undefined)).toEqual([]);
    expect(diskBatchOf({ batch: 63.6, fsyncsPerSec: 1, source: 'log-entries' })).toBe(64);
    expect(diskBatchOf({ batch: 0.4, fsyncsPerSec: 1, source: 'log-entries' })).toBe(1);
    expect(diskBatchOf({ batch: 5000, fsyncsPerSec: 1, source: 'log-entries' })).toBe(1024);
  });

  it('reports each target as met, missed or not measured, from closed-loop rows only', () => {
    const status = (rows: BenchRow[]) => evaluateTargets(rows, targets).map((t) => t.status);
    // Durable: fast enough at 256 but p99 too high at 256 and fine at 4096; 1 in flight too slow.
    const rows = [
      row({ inFlight: 256, opsPerSec: 300_000, latencyMs: { p50: 2, p99: 12, p999: 20, max: 30 } }),
      row({ inFlight: 4096, opsPerSec: 260_000, latencyMs: { p50: 3, p99: 9, p999: 20, max: 30 } }),
      row({ inFlight: 1, opsPerSec: 3_000, latencyMs: { p50: 0.6, p99: 1, p999: 2, max: 3 } }),
      row({ name: 'cluster-memory', durable: false, inFlight: 16, opsPerSec: 900_000 }),
      row({ name: 'cluster-memory', durable: false, inFlight: 256, opsPerSec: 400_000, loop: 'open' }),
    ];
    expect(status(rows)).toEqual(['not measured', 'met', 'missed', 'not measured']);
    const fast = [...rows, row({ name: 'cluster-memory', durable: false, inFlight: 256, opsPerSec: 500_000 }), row({ op: 'get-linearizable', opsPerSec: 1_000_000 })];
    expect(status(fast)).toEqual(['met', 'met', 'missed', 'met']);
    const verdicts = evaluateTargets(fast, targets);
    expect(verdicts[1]!.detail).toContain('at 4096 in flight');
    expect(verdicts[2]!.detail).toContain('p50 0.600 ms');
  });
});
