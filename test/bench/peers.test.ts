// Proves that the peer comparison (bench/peers) measures real servers that it starts and
// stops itself: with redis-server and etcd installed, a tiny workload against each gives rows
// of the contract's shape, ratios against ringraft where ringraft ran the same cell, and no
// server process outlives the run, including when the CLI is interrupted with SIGINT. Where
// a binary is missing, the same tests assert the "not installed" path instead: the system is
// skipped with the apt-get line to install it, and nothing is started. No timing is asserted.
// ringraft's nodes run the build on worker threads (npm test builds first).

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runPeers, withRatios, type PeerRow, type PeersResult } from '../../bench/peers/peers.ts';
import { ETCD_BINARY, findBinary, isRunning, REDIS_BINARY, ServerSet, type ServerProcess } from '../../bench/peers/servers.ts';
import type { SystemName } from '../../bench/peers/targets.ts';
import { QUICK_PLAN, type Plan } from '../../bench/peers/workload.ts';

/** A few hundred milliseconds per system: two concurrencies, one pipelined Redis cell. */
const TINY: Plan = {
  ...QUICK_PLAN,
  durationMs: 150,
  warmupMs: 0,
  rounds: 1,
  keysCount: 16,
  preloadInFlight: 4,
  inFlights: [1, 8],
  extraCells: { ringraft: [], etcd: [], redis: [{ op: 'put', inFlight: 8, pipelineDepth: 4 }] },
  etcdInFlightMax: 4,
  requestTimeoutMs: 5_000,
};

/** Remembers every process it starts, to check afterwards that each is gone. */
class RecordingSet extends ServerSet {
  readonly started: ServerProcess[] = [];
  override start(name: string, bin: string, args: readonly string[], logPath: string): ServerProcess {
    const server = super.start(name, bin, args, logPath);
    this.started.push(server);
    return server;
  }
}

let tempParents: string[] = [];
afterEach(() => {
  for (const d of tempParents) rmSync(d, { recursive: true, force: true });
  tempParents = [];
});

function tempParent(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'ringraft-peers-test-'));
  tempParents.push(d);
  return d;
}

async function tiny(only: SystemName[], searchPath?: readonly string[]): Promise<{ result: PeersResult; servers: RecordingSet; parent: string }> {
  const servers = new RecordingSet();
  const parent = tempParent();
  const result = await runPeers({ plan: TINY, only: new Set(only), servers, searchPath, tempParent: parent, onProgress: () => undefined });
  return { result, servers, parent };
}

/** The contract's fields, with the types a reader relies on. */
function expectRowShape(row: PeerRow): void {
  expect(Object.keys(row)).toEqual(expect.arrayContaining(['system', 'name', 'nodes', 'durable', 'inFlight', 'op', 'opsPerSec', 'latencyMs', 'limit', 'ratio']));
  expect(['ringraft', 'ringraft-tcp', 'etcd', 'redis']).toContain(row.system);
  expect(typeof row.name).toBe('string');
  expect(Number.isInteger(row.nodes) && row.nodes >= 1).toBe(true);
  expect(typeof row.durable).toBe('boolean');
  expect(Number.isInteger(row.inFlight) && row.inFlight >= 1).toBe(true);
  expect(['put', 'get']).toContain(row.op);
  expect(row.opsPerSec).toBeGreaterThan(0);
  expect(Object.keys(row.latencyMs).sort()).toEqual(['max', 'p50', 'p99', 'p999']);
  expect(row.latencyMs.p50).toBeGreaterThan(0);
  expect(row.latencyMs.p50).toBeLessThanOrEqual(row.latencyMs.p99);
  expect(row.latencyMs.p99).toBeLessThanOrEqual(row.latencyMs.p999);
  // A percentile is reported as the top of its histogram bucket (3 significant digits), so it
  // may pass the exact maximum by up to 0.1%.
  expect(row.latencyMs.p999).toBeLessThanOrEqual(row.latencyMs.max * 1.001);
  expect(row.errors).toBe(0);
  if (row.limit === null) {
    expect(row.ratio).toBeNull();
  } else {
    expect(typeof row.limit.name).toBe('string');
    expect(row.limit.opsPerSec).toBeGreaterThan(0);
    expect(row.ratio).toBeCloseTo(row.limit.opsPerSec / row.opsPerSec, 9);
  }
}

/** ringraft's rows of one kind: every cell of the tiny plan, 3 durable nodes, compared with nothing. */
function ringraftRows(result: PeersResult, system: 'ringraft' | 'ringraft-tcp'): PeerRow[] {
  const rows = result.rows.filter((r) => r.system === system);
  expect(rows.map((r) => `${r.op}@${r.inFlight}`)).toEqual(['put@1', 'put@8', 'get@1', 'get@8']);
  for (const r of rows) {
    expectRowShape(r);
    expect(r.nodes).toBe(3);
    expect(r.durable).toBe(true);
    expect(r.limit).toBeNull();
  }
  return rows;
}

function expectAllGone(servers: RecordingSet, parent: string): void {
  expect(servers.pids()).toEqual([]);
  for (const s of servers.started) {
    expect(s.hasExited()).toBe(true);
    expect(isRunning(s.pid)).toBe(false);
  }
  // The run's temporary directory (data, logs) is removed too.
  expect(readdirSync(parent)).toEqual([]);
}

/** The "not installed" path: allowed on a developer's machine, not in CI, which installs both (.ci/run). */
function expectSkipped(result: PeersResult, started: readonly ServerProcess[], system: SystemName, debianPackage: string): void {
  expect(process.env.CI, `CI must install ${debianPackage} so that this test measures a real server`).toBeUndefined();
  expect(result.rows).toEqual([]);
  expect(result.skipped).toHaveLength(1);
  expect(result.skipped[0]!.system).toBe(system);
  expect(result.skipped[0]!.reason).toContain(`apt-get install ${debianPackage}`);
  expect(started).toEqual([]);
}

describe('peers bench', () => {
  it('skips a system whose binary is not installed, saying how to install it, and starts nothing', async () => {
    const { result, servers, parent } = await tiny(['etcd', 'redis'], [path.join(os.tmpdir(), 'no-such-dir-for-peers')]);
    expect(result.rows).toEqual([]);
    expect(result.skipped.map((s) => s.system)).toEqual(['etcd', 'redis']);
    expect(result.skipped[0]!.reason).toContain('apt-get install etcd-server');
    expect(result.skipped[1]!.reason).toContain('apt-get install redis-server');
    expectAllGone(servers, parent);
  });

  it('runs ringraft and a real redis-server (always and everysec), gives ratios, and stops the server', async () => {
    const { result, servers, parent } = await tiny(['ringraft', 'redis']);
    const ringraft = ringraftRows(result, 'ringraft');
    if (findBinary(REDIS_BINARY) === undefined) {
      expectSkipped({ ...result, rows: result.rows.filter((r) => r.system === 'redis') }, servers.started, 'redis', 'redis-server');
      return;
    }
    expect(servers.started.map((s) => s.name)).toEqual(['redis (appendfsync always)', 'redis (appendfsync everysec)']);
    const redis = result.rows.filter((r) => r.system === 'redis');
    expect(redis.map((r) => `${r.durable ? 'always' : 'everysec'} ${r.op}@${r.inFlight}`)).toEqual(
      ['always', 'everysec'].flatMap((m) => [`${m} put@1`, `${m} put@8`, `${m} put@8`, `${m} get@1`, `${m} get@8`]),
    );
    for (const r of redis) {
      expectRowShape(r);
      expect(r.nodes).toBe(1);
      // Every Redis cell has a ringraft cell of the same op and concurrency.
      const mine = ringraft.find((x) => x.op === r.op && x.inFlight === r.inFlight)!;
      expect(r.limit).toEqual({ name: `ringraft ${r.op} at ${r.inFlight} in flight`, opsPerSec: mine.opsPerSec });
    }
    expect(redis.filter((r) => r.note?.includes('2 clients × 4-deep pipeline'))).toHaveLength(2);
    expectAllGone(servers, parent);
  });

  it('runs 3 ringraft serve processes and a real 3-member etcd cluster (with the client cap), compares them, and stops every process', async () => {
    const { result, servers, parent } = await tiny(['ringraft-tcp', 'etcd']);
    const ringraft = ringraftRows(result, 'ringraft-tcp');
    expect(servers.started.slice(0, 3).map((s) => s.name)).toEqual(['ringraft1', 'ringraft2', 'ringraft3']);
    if (findBinary(ETCD_BINARY) === undefined) {
      expectSkipped({ ...result, rows: result.rows.filter((r) => r.system === 'etcd') }, servers.started.slice(3), 'etcd', 'etcd-server');
      expectAllGone(servers, parent);
      return;
    }
    expect(servers.started.slice(3).map((s) => s.name)).toEqual(['etcd1', 'etcd2', 'etcd3']);
    const etcd = result.rows.filter((r) => r.system === 'etcd');
    expect(etcd.map((r) => `${r.op}@${r.inFlight}`)).toEqual(['put@1', 'put@4', 'get@1', 'get@4']);
    for (const r of etcd) {
      expectRowShape(r);
      expect(r.nodes).toBe(3);
      expect(r.durable).toBe(true);
      // Compared with ringraft over TCP at the concurrency asked for.
      const asked = r.inFlightAsked ?? r.inFlight;
      const mine = ringraft.find((x) => x.op === r.op && x.inFlight === asked)!;
      expect(r.limit).toEqual({ name: `ringraft over TCP ${r.op} at ${asked} in flight`, opsPerSec: mine.opsPerSec });
    }
    // The cells that asked for 8 in flight ran at the cap of 4, and say so.
    const capped = etcd.filter((r) => r.inFlight === 4);
    expect(capped).toHaveLength(2);
    for (const r of capped) {
      expect(r.inFlightAsked).toBe(8);
      expect(r.note).toContain('asked 8 in flight, capped at 4');
    }
    expectAllGone(servers, parent);
  });

  it('compares with ringraft over TCP where it ran, else with ringraft on worker threads', () => {
    const base = { nodes: 3, durable: true, op: 'put', inFlight: 16, latencyMs: { p50: 1, p99: 2, p999: 3, max: 4 }, limit: null, ratio: null, errors: 0, errorsByCode: {} } as const;
    const threads = { ...base, system: 'ringraft', name: 'r', opsPerSec: 90_000 } as const;
    const tcp = { ...base, system: 'ringraft-tcp', name: 't', opsPerSec: 30_000 } as const;
    const etcd = { ...base, system: 'etcd', name: 'e', opsPerSec: 3_000 } as const;
    expect(withRatios([threads, tcp, etcd])[2]!.ratio).toBe(10);
    expect(withRatios([threads, tcp, etcd])[2]!.limit!.name).toBe('ringraft over TCP put at 16 in flight');
    expect(withRatios([threads, etcd])[1]!.ratio).toBe(30);
    expect(withRatios([threads, tcp, etcd]).slice(0, 2).map((r) => r.ratio)).toEqual([null, null]);
  });

  it('matches a capped row to ringraft by the concurrency asked for', () => {
    const base = { nodes: 3, durable: true, op: 'put', latencyMs: { p50: 1, p99: 2, p999: 3, max: 4 }, limit: null, ratio: null, errors: 0, errorsByCode: {} } as const;
    const rows = withRatios([
      { ...base, system: 'ringraft', name: 'r', inFlight: 4096, opsPerSec: 60_000 },
      { ...base, system: 'etcd', name: 'e', inFlight: 1024, inFlightAsked: 4096, opsPerSec: 4_000 },
      { ...base, system: 'etcd', name: 'e', inFlight: 16, opsPerSec: 1_000 },
    ]);
    expect(rows[0]!.limit).toBeNull();
    expect(rows[1]!.limit).toEqual({ name: 'ringraft put at 4096 in flight', opsPerSec: 60_000 });
    expect(rows[1]!.ratio).toBe(15);
    expect(rows[2]!.limit).toBeNull();
    expect(rows[2]!.ratio).toBeNull();
  });

  it('the CLI stops its server by PID on SIGINT, or prints how to install redis-server', async () => {
    const installed = findBinary(REDIS_BINARY) !== undefined;
    const cli = spawn(process.execPath, ['dist/bench/peers/run.js', '--quick', '--only', 'redis'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let pid: number | undefined;
    const sawPid = new Promise<void>((resolve) => {
      cli.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /redis \(appendfsync always\): up, PID (\d+)/.exec(out);
        if (match !== null && pid === undefined) {
          pid = Number(match[1]);
          resolve();
        }
      });
    });
    cli.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
    if (!installed) {
      expect(await exited).toBe(0);
      expect(out).toContain('apt-get install redis-server');
      return;
    }
    await Promise.race([sawPid, exited]);
    expect(pid, out).toBeDefined();
    expect(isRunning(pid!)).toBe(true);
    cli.kill('SIGINT');
    expect(await exited, out).toBe(130);
    expect(out).toContain(`SIGINT: stopping servers ${pid}`);
    expect(isRunning(pid!)).toBe(false);
  });

  it('the CLI writes the machine, an empty scenarios list, the peer rows and the redis-benchmark rows as JSON', async () => {
    const dir = tempParent();
    const file = path.join(dir, 'peers.json');
    // ringraft alone keeps this short; the Redis and etcd rows are checked above.
    const cli = spawn(process.execPath, ['dist/bench/peers/run.js', '--quick', '--only', 'ringraft', '--json', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    cli.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    cli.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => cli.once('exit', (c) => resolve(c)));
    expect(code, out).toBe(0);
    expect(out).toContain('ringraft: round 1/1 put at 1 in flight');
    const json = JSON.parse(readFileSync(file, 'utf8')) as { machine: Record<string, unknown>; scenarios: unknown[]; peers: PeerRow[]; redisBenchmark: unknown[] };
    expect(Object.keys(json).sort()).toEqual(['machine', 'peers', 'redisBenchmark', 'scenarios']);
    // redis-benchmark runs against the RESP port (ringraft-tcp) and redis-server only: neither ran here.
    expect(json.redisBenchmark).toEqual([]);
    expect(Object.keys(json.machine).sort()).toEqual(['cores', 'cpu', 'node']);
    expect(json.scenarios).toEqual([]);
    expect(json.peers.length).toBeGreaterThan(0);
    for (const row of json.peers) {
      expect(row.system).toBe('ringraft');
      expect(Object.keys(row.latencyMs).sort()).toEqual(['max', 'p50', 'p99', 'p999']);
      expect(row.limit).toBeNull();
    }
  });
});
