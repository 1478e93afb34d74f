/**
 * The core micro-benchmark: the Raft core alone, three RaftNodes in memory (see
 * core-cluster.ts), with no I/O, codec or threads. What it measures:
 *
 * - commit: committed entries per second. A round proposes `batch` entries of
 *   `payloadBytes` on the leader, then drives the cluster until the leader has applied
 *   them all. One op is one entry; at batch 1, one op is also one whole round.
 * - step-leader-AppResp: one `step` of an AppResp on the leader, each acknowledging one
 *   new entry and so advancing the commit index (the leader's hot path).
 * - step-follower-App: one `step` on a follower of an App carrying `stepAppEntries`
 *   entries (the follower's hot path).
 *
 * Set-up work in the step tasks (proposing, building the messages, settling the cluster
 * afterwards) is outside the timed part.
 */
import { performance } from 'node:perf_hooks';
import type { CoreScenario } from '../../bench.config.ts';
import type { Message, NodeId } from '../../src/core/index.ts';
import { CoreCluster, makePayloads } from './core-cluster.ts';
import { measure, type MeasureOptions, type ResultRow, type Timed } from '../shared/measure.ts';

/** The node every task elects as its leader. */
const LEADER_ID: NodeId = 1;
/** The follower whose messages the step tasks time. */
const TIMED_FOLLOWER_ID: NodeId = 2;
/** AppResps timed per sample in step-leader-AppResp (one sample is their mean). */
const LEADER_STEPS_PER_SAMPLE = 64;

export interface CoreRunOptions {
  readonly timeMs: number;
  /** Called before each task with a line saying what is being measured. */
  readonly onProgress?: (line: string) => void;
}

export async function runCoreScenario(scenario: CoreScenario, options: CoreRunOptions): Promise<ResultRow[]> {
  const measureOptions: MeasureOptions = { timeMs: options.timeMs, warmupTimeMs: Math.min(250, options.timeMs / 4) };
  const progress = options.onProgress ?? (() => {});
  const rows: ResultRow[] = [];
  const row = (task: string, batch: number, op: string, nsPerOp: number, m: { rmePercent: number; samples: number }): ResultRow => ({
    name: scenario.name,
    kind: scenario.kind,
    task,
    batch,
    op,
    opsPerSec: 1e9 / nsPerOp,
    nsPerOp,
    rmePercent: m.rmePercent,
    samples: m.samples,
  });

  for (const batch of scenario.batchSizes) {
    progress(`${scenario.name}: commit, rounds of ${batch} × ${scenario.payloadBytes} B proposed on the leader until applied there`);
    const cluster = newCluster(scenario);
    const payloads = makePayloads(batch, scenario.payloadBytes);
    const m = await measure(`commit-${batch}`, () => cluster.proposeRound(payloads), measureOptions);
    const nsPerRound = m.meanMs * 1e6;
    rows.push({ ...row('commit', batch, 'entry committed', nsPerRound / batch, m), nsPerRound });
  }

  progress(`${scenario.name}: step-leader-AppResp, leader steps an AppResp acknowledging 1 new entry`);
  {
    const cluster = newCluster(scenario);
    const payload = makePayloads(1, scenario.payloadBytes)[0]!;
    const m = await measure('step-leader-AppResp', () => stepLeaderAppResp(cluster, payload), measureOptions);
    rows.push(row('step-leader-AppResp', 1, 'step call', m.meanMs * 1e6, m));
  }

  progress(`${scenario.name}: step-follower-App, follower steps an App carrying ${scenario.stepAppEntries} entries`);
  {
    const cluster = newCluster(scenario);
    const payloads = makePayloads(scenario.stepAppEntries, scenario.payloadBytes);
    const m = await measure('step-follower-App', () => stepFollowerApp(cluster, payloads), measureOptions);
    rows.push(row('step-follower-App', scenario.stepAppEntries, 'step call', m.meanMs * 1e6, m));
  }
  return rows;
}

/** A cluster of the scenario's shape with node 1 elected and everything applied. */
export function newCluster(scenario: CoreScenario): CoreCluster {
  const cluster = new CoreCluster({
    clusterSize: scenario.clusterSize,
    node: scenario.node,
    compactionEntriesMax: scenario.compactionEntriesMax,
  });
  cluster.elect(LEADER_ID);
  return cluster;
}

/**
 * Times the leader stepping LEADER_STEPS_PER_SAMPLE AppResps from one follower. Set-up:
 * the leader proposes one entry at a time, and each one's App reaches both followers;
 * their AppResps are held back. Timed: the leader steps the first follower's AppResps,
 * each of which advances the commit index by one. Then the rest is delivered.
 */
function stepLeaderAppResp(cluster: CoreCluster, payload: Uint8Array): Timed {
  const leader = cluster.node(LEADER_ID);
  const timedAcks: Message[] = [];
  const otherAcks: Message[] = [];
  const holdAck = (m: Message) => (m.from === TIMED_FOLLOWER_ID && m.to === LEADER_ID ? timedAcks : otherAcks).push(m);
  const apps: Message[] = [];
  for (let k = 0; k < LEADER_STEPS_PER_SAMPLE; k++) {
    leader.propose(payload);
    cluster.processReady(LEADER_ID, (m) => apps.push(m));
    for (const app of apps) {
      cluster.node(app.to).step(app);
      cluster.processReady(app.to, holdAck);
    }
    apps.length = 0;
  }
  const start = performance.now();
  for (const m of timedAcks) leader.step(m);
  const elapsed = performance.now() - start;
  for (const m of otherAcks) cluster.node(m.to).step(m);
  cluster.stabilize();
  cluster.maybeCompact();
  return { ms: elapsed / timedAcks.length };
}

/**
 * Times one follower stepping an App with `payloads.length` entries. Set-up: the leader
 * proposes them all and its Ready yields one App per follower. Timed: the first follower
 * steps its App. Then the other follower gets its App and the cluster settles.
 */
function stepFollowerApp(cluster: CoreCluster, payloads: readonly Uint8Array[]): Timed {
  const leader = cluster.node(LEADER_ID);
  for (const p of payloads) leader.propose(p);
  const apps: Message[] = [];
  cluster.processReady(LEADER_ID, (m) => apps.push(m));
  const timed = apps.find((m) => m.to === TIMED_FOLLOWER_ID);
  if (timed === undefined || timed.entries.length !== payloads.length) {
    throw new Error(`expected one App with ${payloads.length} entries for node ${TIMED_FOLLOWER_ID}`);
  }
  const follower = cluster.node(TIMED_FOLLOWER_ID);
  const start = performance.now();
  follower.step(timed);
  const elapsed = performance.now() - start;
  for (const m of apps) if (m !== timed) cluster.node(m.to).step(m);
  cluster.stabilize();
  cluster.maybeCompact();
  return { ms: elapsed };
}
