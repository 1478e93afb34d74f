/**
 * The fault injector: what goes wrong in a simulated run, and when. One fault of
 * `options.faults` (FAULT_KINDS) at a time, at random intervals around
 * `faultMeanIntervalMs`, until the quiet period at the end heals everything:
 *
 * - the network: a partition, a one-way cut, an isolated leader, a burst of loss and
 *   duplication, each healed after a while;
 * - nodes: pauses (a stopped process: no tick, message or request, then the missed ticks at
 *   once), crashes (now, or armed at the next vote, commit or won election), restarts, and
 *   crash points taken at random inside the Ready cycle; a crash may tear the write under way,
 *   flip a bit of the log or wipe the disk, at most one node's disk per run;
 * - the operator: membership changes, leadership transfers, and starts of nodes with a
 *   configuration the cluster does not have.
 *
 * At most a minority of the first cluster is down at once. Every draw comes from the run's
 * one generator, in a fixed order, so a seed replays.
 */
import { ErrorCode, RingraftError } from '../base/index.ts';
import { isVoter, type ConfChange, type RaftNode, type Rand, type Ready } from '../core/index.ts';
import { bootstrapVotersOf, type ClusterManifest } from '../storage/index.ts';
import type { Invariants } from './invariants.ts';
import type { SimNetwork } from './network.ts';
import { addSimMember } from './operator.ts';
import { FAULT_KINDS, type SimOptions } from './options.ts';
import { SimNode } from './sim-node.ts';
import type { SimStats } from './stats.ts';
import { CLUSTER_WIDE, type SimOwnEvent, type TraceRecorder } from './trace-recorder.ts';

/** Where a crash point armed by the 'crash' fault stops its node: after its next vote, commit advance, or won election. */
type ArmedCrashPoint = 'vote' | 'commit' | 'leader';

/** What the fault injector needs of the simulation around it. */
export interface FaultHost {
  readonly options: SimOptions;
  readonly rand: Rand;
  readonly network: SimNetwork;
  readonly nodes: Map<number, SimNode>;
  readonly stats: SimStats;
  readonly invariants: Invariants;
  /** The cluster's record, as the operator keeps it (see operator.ts). */
  readonly record: ClusterManifest;
  readonly recorder: TraceRecorder;
  /** Simulated time now, in ms. */
  readonly time: number;
  at(delayMs: number, run: () => void): void;
  leader(): SimNode | undefined;
  /** Starts node `id` through the start guard; the guard's refusal, if it refused. */
  startNode(id: number, initialVoters: readonly number[]): RingraftError | undefined;
  /** Runs the node's host loop until it has no Ready left. */
  drain(node: SimNode): void;
  /** Notes a rare fault, or what came of one, in the run's fault log. */
  note(what: string): void;
}

export class FaultInjector {
  /** The quiet period at the end: no new faults, no crash points. */
  private quiet = false;
  /** Crashed nodes waiting for their restart, and when they crashed. */
  private readonly crashedAt = new Map<number, number>();
  /**
   * A node's disk was corrupted (a bit flip) or wiped. At most one per run, so that a
   * majority stays whole; until the lost node is out of the configuration, no membership
   * change may shrink the cluster.
   */
  private nodeLost = false;
  /**
   * Crash points: nodes to crash right after their next Ready that changes term or vote
   * ('vote'), that advances their commit index ('commit'), or that makes them leader
   * ('leader', before its first entry has spread). These are the moments where a
   * persistence or commit-rule bug does its damage.
   */
  private readonly crashPoints = new Map<number, ArmedCrashPoint>();
  /** The next node id to hand out: ids are never used twice, not even for a node that was refused. */
  private nodeIdNext: number;

  constructor(private readonly sim: FaultHost) {
    this.nodeIdNext = sim.record.nodeIdNext;
  }

  /** Schedules the next fault, and after it the one after, until the quiet period. */
  schedule(): void {
    const mean = this.sim.options.faultMeanIntervalMs;
    this.sim.at(this.sim.rand.int(mean / 2, (mean * 3) / 2), () => {
      if (this.quiet) return;
      this.inject();
      this.schedule();
    });
  }

  /** The quiet period begins: the network heals and every crashed node restarts. */
  beginQuiet(): void {
    const sim = this.sim;
    this.quiet = true;
    this.crashPoints.clear();
    sim.recorder.add({ kind: 'quiet', node: CLUSTER_WIDE });
    sim.network.heal();
    sim.network.options = { ...sim.options.network, packetLossProbability: 0, packetDuplicateProbability: 0 };
    for (const id of [...this.crashedAt.keys()]) this.restart(id);
  }

  private inject(): void {
    const sim = this.sim;
    const rand = sim.rand;
    const kind = rand.pick(sim.options.faults);
    const ids = [...sim.nodes.keys()];
    const leader = sim.leader();
    sim.stats.faultsByKind[kind]++;
    switch (kind) {
      case 'partition': {
        this.heal();
        const shuffled = rand.shuffle(ids.slice());
        const cut = rand.int(1, shuffled.length);
        const groups = [shuffled.slice(0, cut), shuffled.slice(cut)];
        sim.network.partition(groups);
        sim.recorder.add({ kind: 'partition', node: CLUSTER_WIDE, fault: 'partition', groups });
        sim.at(rand.int(100, 1500), () => this.heal());
        break;
      }
      case 'asymmetric': {
        const a = rand.pick(ids);
        const to: number[] = [];
        for (const b of ids) {
          if (b !== a && rand.chance(0.6)) {
            sim.network.cutOneWay(a, b);
            to.push(b);
          }
        }
        sim.recorder.add({ kind: 'cut-one-way', node: CLUSTER_WIDE, from: a, to });
        sim.at(rand.int(100, 1500), () => this.heal());
        break;
      }
      case 'isolate': {
        const victim = leader?.id ?? rand.pick(ids);
        const groups = [[victim], ids.filter((i) => i !== victim)];
        sim.network.partition(groups);
        sim.recorder.add({ kind: 'partition', node: CLUSTER_WIDE, fault: 'isolate', groups });
        sim.at(rand.int(100, 1500), () => this.heal());
        break;
      }
      case 'crash': {
        const alive = ids.filter((i) => sim.nodes.get(i)!.alive);
        if (alive.length === 0 || this.downCount() >= this.downMax()) {
          const [first] = this.crashedAt.keys();
          if (first !== undefined) this.restart(first);
          break;
        }
        const victim = leader !== undefined && rand.chance(0.5) ? leader.id : rand.pick(alive);
        if (rand.chance(0.4)) {
          const at = rand.pick(['vote', 'commit', 'leader'] as const);
          this.crashPoints.set(victim, at);
          sim.recorder.add({ kind: 'crash-armed', node: victim, at });
          break;
        }
        this.crash(victim);
        sim.at(rand.int(20, 1000), () => {
          if (this.crashedAt.has(victim)) this.restart(victim);
        });
        break;
      }
      case 'drop': {
        const loss = rand.pick([0.05, 0.2, 0.5]);
        sim.network.options = { ...sim.options.network, packetLossProbability: loss, packetDuplicateProbability: 0.05 };
        this.recordPacketLoss();
        sim.at(rand.int(100, 800), () => {
          if (this.quiet) return;
          sim.network.options = sim.options.network;
          this.recordPacketLoss();
        });
        break;
      }
      case 'membership':
        this.changeMembership(leader);
        break;
      case 'transfer': {
        const raft = leader?.raft;
        if (raft === undefined) break;
        const targets = raft.conf.voters.filter((v) => v !== leader!.id);
        if (targets.length === 0) break;
        const target = rand.pick(targets);
        this.asLeader(leader!, (r) => r.transferLeadership(target), (refusal) => ({ kind: 'transfer-requested', node: leader!.id, target, refusal }));
        break;
      }
      case 'misconfigure':
        this.misconfigure();
        break;
      case 'pause': {
        const victim = leader !== undefined && rand.chance(0.5) ? leader : sim.nodes.get(rand.pick(ids));
        const ms = rand.int(50, 800);
        if (victim?.host === undefined || victim.pausedUntil > sim.time) break;
        victim.pausedUntil = sim.time + ms;
        sim.recorder.add({ kind: 'pause', node: victim.id, ms });
        break;
      }
    }
  }

  /**
   * The operator starts nodes with a configuration the cluster does not have, one of:
   * - a wrong node count: it believes the cluster has one or two nodes more than its record
   *   says (reopening a 3-node cluster with `nodes: 5`), and starts the missing ones with
   *   the voters that count implies;
   * - a new member (recorded, as addNode does) started as if it founded a cluster: with
   *   itself alone, or the first configuration and itself, as voters.
   * Started, such a node bootstraps a configuration of its own. The start guard must refuse
   * each (CONFIG_MISMATCH); a refused node stays out. New nodes take ids never used before.
   */
  private misconfigure(): void {
    const rand = this.sim.rand;
    const first = this.sim.record.bootstrapVoters;
    if (rand.chance(0.5)) {
      const extra = Array.from({ length: rand.int(1, 3) }, () => this.nodeIdNext++);
      const voters = [...first, ...extra];
      for (const id of extra) this.startMisconfigured(id, voters, `a wrong node count, ${voters.length} for ${first.length}`);
      return;
    }
    const id = this.nodeIdNext++;
    addSimMember(this.sim.record, id);
    const voters = rand.chance(0.5) ? [id] : [...first, id];
    this.startMisconfigured(id, voters, 'a new member given voters of its own');
  }

  private startMisconfigured(id: number, voters: readonly number[], what: string): void {
    const sim = this.sim;
    sim.stats.misconfiguredStarts++;
    sim.recorder.add({ kind: 'misconfigured-start', node: id, voters, what });
    sim.nodes.set(id, new SimNode(id, sim.options.storage));
    const refusal = sim.startNode(id, voters);
    if (refusal === undefined) {
      sim.note(`node ${id} started with bootstrap voters [${voters.join(', ')}] (${what}), not refused`);
      return;
    }
    sim.nodes.delete(id);
    if (refusal.code !== ErrorCode.CONFIG_MISMATCH) {
      sim.invariants.fail(`start guard: node ${id}, started with the wrong configuration (${what}), refused with ${refusal.code}, not CONFIG_MISMATCH: ${refusal.message}`);
      return;
    }
    sim.stats.misconfiguredRefusals++;
  }

  private changeMembership(leader: SimNode | undefined): void {
    const sim = this.sim;
    const raft = leader?.raft;
    if (raft === undefined) return;
    const conf = raft.conf;
    const n = sim.options.nodes;
    const choices: ConfChange[] = [];
    const voters = conf.voters;
    // The operator's first job: remove a node that stopped on a corrupt log or a lost disk,
    // and shrink nothing else while it still holds a vote.
    const stopped = [...sim.nodes.values()].find((x) => x.stopped && (isVoter(conf, x.id) || conf.learners.includes(x.id)));
    if (stopped !== undefined) {
      this.proposeConfChange(leader!, { changes: [{ op: 'removeNode', nodeId: stopped.id }] });
      return;
    }
    // After a loss, nothing may shrink the cluster: it could leave the dead node holding a
    // quorum. Once the dead node is out of the configuration, growing back (a new member
    // replacing it) is safe; before that (not yet known dead, or a bit flip that recovery
    // did not notice), no churn at all.
    if (this.nodeLost && !this.anyStopped()) return;
    const shrink = !this.nodeLost;
    if (shrink && voters.length > Math.max(2, n - 1)) {
      for (const v of voters) choices.push({ changes: [{ op: 'removeNode', nodeId: v }] });
      for (const v of voters) choices.push({ changes: [{ op: 'addLearner', nodeId: v }] });
    }
    for (const l of conf.learners) {
      if (voters.length < n + 2) choices.push({ changes: [{ op: 'addVoter', nodeId: l }] });
      if (shrink) choices.push({ changes: [{ op: 'removeNode', nodeId: l }] });
    }
    if (conf.learners.length === 0 && sim.nodes.size < n + 3) {
      // A new member, recorded before it starts (as the embedding API's addNode does).
      const id = this.nodeIdNext++;
      addSimMember(sim.record, id);
      sim.nodes.set(id, new SimNode(id, sim.options.storage));
      const refusal = sim.startNode(id, []);
      if (refusal !== undefined) {
        sim.invariants.fail(`start guard: new member ${id} refused: ${refusal.message}`);
        return;
      }
      choices.push({ changes: [{ op: 'addLearner', nodeId: id }] });
    }
    if (choices.length === 0) return;
    this.proposeConfChange(leader!, sim.rand.pick(choices));
  }

  private proposeConfChange(leader: SimNode, change: ConfChange): void {
    this.asLeader(leader, (r) => r.proposeConfChange(change), (refusal) => ({ kind: 'conf-change-requested', node: leader.id, change, refusal }));
  }

  /**
   * An operator's request to the leader: a typed refusal (a change pending, a transfer under
   * way) just means not now; anything else is a bug. The request is recorded (`request`
   * describes it, given the refusal's code if refused), then the host loop runs.
   */
  private asLeader(leader: SimNode, action: (raft: RaftNode) => void, request: (refusal: string | undefined) => SimOwnEvent): void {
    let refusal: string | undefined;
    try {
      action(leader.raft!);
    } catch (error) {
      if (!(error instanceof RingraftError)) throw error;
      refusal = error.code;
    }
    this.sim.recorder.add(request(refusal));
    this.sim.drain(leader);
  }

  /** Every cut of the network heals (the network knows no other way); recorded only if there was one. */
  private heal(): void {
    const network = this.sim.network;
    if (network.cutLinks > 0) this.sim.recorder.add({ kind: 'heal', node: CLUSTER_WIDE });
    network.heal();
  }

  private recordPacketLoss(): void {
    const o = this.sim.network.options;
    this.sim.recorder.add({ kind: 'packet-loss', node: CLUSTER_WIDE, probability: o.packetLossProbability, duplicateProbability: o.packetDuplicateProbability });
  }

  private crash(id: number): void {
    const sim = this.sim;
    const node = sim.nodes.get(id)!;
    sim.recorder.add({ kind: 'crash', node: id, at: node.crashPoint });
    this.crashPoints.delete(id);
    sim.stats.crashes++;
    if ((node.host?.readysWaitingForSync ?? 0) > 0) sim.stats.crashesWithSyncPending++;
    // Every configuration a node runs with now, the crashing one's too (it may be the leader
    // that just applied the newest): losing this node for good must leave a quorum in each.
    const rafts = [...sim.nodes.values()].flatMap((n) => (n.raft === undefined ? [] : [n.raft]));
    node.host = undefined;
    node.incarnation++;
    node.forgetRequests();
    node.lateStorage = undefined;
    node.crashPoint = undefined;
    this.crashedAt.set(id, sim.time);
    // Media corruption and lost disks, at most one node per run, so a majority stays whole.
    // Only where the cluster survives losing this node for good: a voter's disk is damaged
    // only while there are at least three voters, so a quorum remains without it.
    // The view of one node is not enough: a stale leader (one removed, say) may still hold an
    // older configuration in which the node looks expendable (seed 940897: the leader that had
    // just applied voters [1, 3] crashed, a stale leader still had [1, 2, 3], and the wipe left
    // voters [1, 3] with node 3 gone for good: no quorum ever again).
    const survivable =
      sim.leader() !== undefined &&
      rafts.every((r) => {
        const conf = r.conf;
        const settled = r.role !== 'leader' || r.pendingConfIndex <= r.log.applied;
        return settled && (!isVoter(conf, id) || (conf.voters.length >= 3 && conf.votersOutgoing.length === 0));
      });
    if (node.fs !== undefined) {
      node.fs.crash(sim.rand);
      if (survivable && sim.rand.chance(sim.options.bitFlipProbability) && !this.anyStopped() && !this.nodeLost) {
        const segments = node.fs.paths().filter((p) => p.startsWith(node.dir + '/') && p.endsWith('.wal'));
        if (segments.length > 0 && node.fs.flipDurableBit(sim.rand.pick(segments), sim.rand) !== undefined) {
          this.nodeLost = true;
          node.mediaFaulted = true;
          sim.stats.bitFlips++;
          sim.note(`a bit of node ${id}'s log flipped in a crash`);
          sim.recorder.add({ kind: 'bit-flip', node: id });
        }
      }
    }
    const wipe = sim.options.diskWipeProbability;
    if (survivable && wipe > 0 && !this.anyStopped() && !this.nodeLost && sim.rand.chance(wipe)) this.wipeDisk(node);
  }

  private wipeDisk(node: SimNode): void {
    node.wipeDisk(this.sim.time);
    this.nodeLost = true;
    this.sim.stats.diskWipes++;
    this.sim.note(`node ${node.id} crashed and its disk was wiped`);
    this.sim.recorder.add({ kind: 'disk-wiped', node: node.id });
  }

  private anyStopped(): boolean {
    for (const n of this.sim.nodes.values()) if (n.stopped) return true;
    return false;
  }

  /**
   * Restarts a crashed node, with no bootstrap voters (it has run: its log knows its
   * configuration). The start guard must refuse it exactly when its disk was wiped
   * (STATE_LOST); then it stays down for the rest of the run, and the membership faults
   * replace it by a new member.
   */
  private restart(id: number): void {
    const sim = this.sim;
    this.crashedAt.delete(id);
    const node = sim.nodes.get(id)!;
    if (node.stopped) return;
    const wipedAt = node.wipedAt;
    node.wipedAt = undefined;
    // As the embedding API does: an original member gets the first configuration, which it
    // uses only if its log is pristine (its first batch never became durable).
    const refusal = sim.startNode(id, bootstrapVotersOf(sim.record, id));
    if (refusal === undefined) {
      // Noted even if it crashed again at once (a crash point in its first Ready): it started, and its next start finds no wipe to refuse.
      if (wipedAt !== undefined) sim.note(`node ${id} rejoined with an empty log under its old identity (its disk was wiped at ${wipedAt} ms)`);
      return;
    }
    if (wipedAt !== undefined && refusal.code === ErrorCode.STATE_LOST) {
      node.stopped = true;
      sim.stats.stateLostStops++;
      sim.note(`node ${id} refused on restart (STATE_LOST): stays down`);
      sim.recorder.add({ kind: 'stopped', node: id, why: 'state-lost' });
      return;
    }
    sim.invariants.fail(`start guard: node ${id} refused on restart (its disk ${wipedAt === undefined ? 'was not' : 'was'} wiped): ${refusal.message}`);
  }

  /** A node crashed at a crash point in its Ready cycle: it restarts a little later. */
  crashAndRestartSoon(id: number): void {
    this.crash(id);
    this.sim.at(this.sim.rand.int(1, 300), () => {
      if (this.crashedAt.has(id)) this.restart(id);
    });
  }

  /**
   * Whether to crash at this Ready, and when: 'before-send' (durable, but none of its
   * messages left) or 'after-send'. A node armed by the fault scheduler crashes at its kind
   * of point; otherwise any Ready that persists entries, changes term, vote or commit, or
   * makes a leader is a crash point taken with `crashPointProbability`.
   */
  crashPointReached(id: number, rd: Ready): 'mid-write' | 'before-send' | 'after-send' | undefined {
    const sim = this.sim;
    if (this.quiet) return undefined;
    const armed = this.crashPoints.get(id);
    const leader = rd.softState?.role === 'leader';
    const vote = rd.hardState !== undefined && rd.mustSync;
    const commit = rd.hardState !== undefined && rd.hardState.commit > sim.nodes.get(id)!.lastCommit;
    if (armed !== undefined) {
      if (armed === 'vote') return vote ? 'after-send' : undefined;
      return (armed === 'leader' ? leader : commit) ? 'before-send' : undefined;
    }
    const p = sim.options.crashPointProbability;
    if (p === 0 || !sim.options.faults.includes('crash') || this.downCount() >= this.downMax()) return undefined;
    if (!(leader || vote || commit || rd.entries.length > 0)) return undefined;
    if (!sim.rand.chance(p)) return undefined;
    sim.stats.faultsByKind.crash++;
    if (rd.entries.length > 0 && sim.rand.chance(0.3)) return 'mid-write';
    return sim.rand.chance(0.5) ? 'before-send' : 'after-send';
  }

  /**
   * Nodes down now: crashed, or stopped for good (a corrupt log, or a wiped disk the start
   * guard refused). A stopped node keeps counting even once a new member has replaced it,
   * which keeps the budget simple and on the safe side.
   */
  private downCount(): number {
    let stopped = 0;
    for (const n of this.sim.nodes.values()) if (n.stopped) stopped++;
    return this.crashedAt.size + stopped;
  }

  /** How many nodes may be down at once: a minority of the initial cluster (at least one). */
  private downMax(): number {
    return Math.max(1, Math.floor((this.sim.options.nodes - 1) / 2));
  }
}

/** The faults of a run in one line: counts by kind, then the rare ones in order (`faultLog`). */
export function describeFaults(stats: SimStats, faultLog: readonly string[]): string {
  const st = stats;
  const byKind = FAULT_KINDS.filter((k) => st.faultsByKind[k] > 0).map((k) => `${k} ${st.faultsByKind[k]}`);
  const rare: [string, number][] = [
    ['torn writes', st.tornWrites],
    ['crashes at a directory sync', st.dirSyncCrashes],
    ['bit flips', st.bitFlips],
    ['corrupt-log stops', st.corruptLogStops],
    ['disk wipes', st.diskWipes],
    ['state-lost stops', st.stateLostStops],
    ['misconfigured starts', st.misconfiguredStarts],
    ['refused', st.misconfiguredRefusals],
  ];
  const counts = [...byKind, ...rare.filter(([, n]) => n > 0).map(([what, n]) => `${what} ${n}`)].join(', ');
  const log = faultLog.length === 0 ? '' : `; in order: ${faultLog.join('; ')}`;
  return `faults in this run: ${counts === '' ? 'none' : counts}${log}`;
}
