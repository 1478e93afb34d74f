// What the cluster tests share: quick timers, clusters and directories that are stopped and
// removed after each test (plus any clean-up a test registers), and waiting for a leader.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { createCluster, RingraftError, type Cluster, type ClusterOptions } from '../../src/index.ts';

/**
 * Quick timers, so elections take some 200-400 ms: short enough for quick tests, long
 * enough that a starved machine (the suite runs test files in parallel) does not hold
 * elections all the time.
 */
export const FAST: ClusterOptions = { node: { tickMs: 10 }, raft: { electionTimeoutTicks: 20, heartbeatIntervalTicks: 2 } };
export const ELECTION_TIMEOUT_MS = 200;

let open: Cluster[] = [];
let dirs: string[] = [];
let cleanups: (() => Promise<void> | void)[] = [];

/** Call once at the top of a test file: stops what each test started. */
export function stopAfterEach(): void {
  afterEach(async () => {
    for (const f of cleanups.splice(0)) await f();
    await Promise.all(open.map((c) => c.close()));
    open = [];
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    dirs = [];
  });
}

/** A cluster with FAST timers (unless overridden), closed after the test. */
export async function start(options: ClusterOptions = {}): Promise<Cluster> {
  const c = await createCluster(fast(options));
  open.push(c);
  return c;
}

/** `options` over FAST: each settings group merged, so `{ raft: { checkQuorum: false } }` keeps FAST's timers. */
export function fast(options: ClusterOptions = {}): ClusterOptions {
  return {
    ...FAST,
    ...options,
    raft: { ...FAST.raft, ...options.raft },
    node: { ...FAST.node, ...options.node },
  };
}

/** A temporary directory, removed after the test. */
export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ringraft-cluster-'));
  dirs.push(d);
  return d;
}

/** Runs `f` after the test, before the clusters close. */
export function afterTest(f: () => Promise<void> | void): void {
  cleanups.push(f);
}

export async function leaderOf(cluster: Cluster, timeoutMs = 5_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await cluster.status();
    if (st.leaderId !== undefined) return st.leaderId;
    if (Date.now() > deadline) throw new Error('no leader');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The RingraftError `p` rejects with; fails the test if it resolves. */
export async function refused(p: Promise<unknown>): Promise<RingraftError> {
  try {
    await p;
  } catch (error) {
    if (error instanceof RingraftError) return error;
    throw error;
  }
  throw new Error('expected a refusal, the call succeeded');
}

/** Damages a byte in the middle of node `id`'s first WAL segment (not a torn tail): the node must refuse to start with CORRUPT_LOG. */
export function corruptFirstSegment(dataDir: string, id: number): void {
  const dir = join(dataDir, `node-${id}`);
  const segment = join(dir, readdirSync(dir).filter((f) => f.endsWith('.wal')).sort()[0]!);
  const bytes = readFileSync(segment);
  bytes[200] ^= 0xff;
  writeFileSync(segment, bytes);
}
