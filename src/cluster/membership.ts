/**
 * Membership changes of a running cluster, one at a time: adding a node (started empty,
 * added as a learner, made a voter once it has caught up with the leader), removing one
 * (refused when the voters left would have no live majority), and replacing one (a removal,
 * then an addition). Each change is proposed at the leader through a control call and
 * awaited until the leader has applied it; the cluster's record, with a dataDir, is
 * rewritten before a new node exists and after a removed one is gone.
 */
import { performance } from 'node:perf_hooks';
import { CLUSTER_NODES_MAX, ErrorCode, invalidArgument, RingraftError } from '../base/index.ts';
import { confChangeInForce, type ConfChange } from '../core/index.ts';
import { publishNodeEvent, type NodeStatus } from '../runtime/index.ts';
import type { ControlChannel } from './control-channel.ts';
import type { DataDirectory } from './data-directory.ts';
import type { NodeWorkers } from './node-workers.ts';
import { type ResolvedOptions } from './options.ts';
import { LIVENESS_IDS_MAX, type RingWiring } from './ring-wiring.ts';

/** Time a membership change may take by default. */
const CHANGE_TIMEOUT_MS = 30_000;
/** Time a replacement (a removal and an addition) may take by default. */
const REPLACE_TIMEOUT_MS = 60_000;

/** What membership changes need of the rest of the cluster. */
export interface MembershipContext {
  readonly options: ResolvedOptions;
  readonly workers: NodeWorkers;
  readonly wiring: RingWiring;
  readonly control: ControlChannel;
  readonly dataDir: DataDirectory | undefined;
  isClosed(): boolean;
  /** Throws CLOSED if the cluster is closed. */
  checkOpen(): void;
}

export class Membership {
  /** The membership change under way, if any: the next one starts after it (see {@link oneAtATime}). */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly cx: MembershipContext) {}

  /**
   * Adds a node: starts it empty, adds it as a learner, waits until it has caught up with
   * the leader, then makes it a voter. Resolves to its id (never one used before).
   */
  add(options: { timeoutMs?: number } = {}): Promise<number> {
    return this.oneAtATime(() => this.addNow(options));
  }

  /**
   * Removes node `id` from the configuration, then stops its thread. Refused with NO_QUORUM
   * when the voters left would not have a live majority (the cluster could never elect a
   * leader again). Its directory is left as it is; its id is never used again.
   */
  remove(id: number, options: { timeoutMs?: number } = {}): Promise<void> {
    return this.oneAtATime(() => this.removeNow(id, options));
  }

  /** Removes node `id` and adds a new, empty node in its place; resolves to the new node's id. */
  replace(id: number, options: { timeoutMs?: number } = {}): Promise<number> {
    const deadline = performance.now() + (options.timeoutMs ?? REPLACE_TIMEOUT_MS);
    return this.oneAtATime(async () => {
      await this.removeNow(id, { timeoutMs: deadline - performance.now() });
      return this.addNow({ timeoutMs: Math.max(1, deadline - performance.now()) });
    });
  }

  /**
   * Runs membership changes one at a time: each checks the configuration it changes (a live
   * quorum left after a removal), and two at once would both check the one before either.
   */
  private oneAtATime<T>(change: () => Promise<T>): Promise<T> {
    const run = this.queue.then(change, change);
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async addNow(options: { timeoutMs?: number }): Promise<number> {
    const { workers, dataDir } = this.cx;
    this.cx.checkOpen();
    if (workers.nodeIds().length >= CLUSTER_NODES_MAX) throw invalidArgument(`the cluster has ${CLUSTER_NODES_MAX} nodes, the most it may have`);
    const deadline = performance.now() + (options.timeoutMs ?? CHANGE_TIMEOUT_MS);
    // Ids are never used twice, removed nodes' included.
    const idNext = dataDir?.nodeIdNext ?? Math.max(...workers.slots.keys()) + 1;
    // Ids index the liveness words other threads read: refused before anything is recorded.
    if (idNext >= LIVENESS_IDS_MAX) throw invalidArgument(`node ids up to ${LIVENESS_IDS_MAX - 1} are used up; a new cluster is needed for more`);
    // Recorded before anything of the node exists, so its id is never handed out again.
    const id = dataDir?.addMember() ?? idNext;
    workers.makeSlot(id);
    for (const other of workers.slots.values()) {
      if (other.id === id || !other.alive) continue;
      await this.cx.control.call(other.id, { type: 'add-peer', callId: 0, link: this.cx.wiring.peerLink(other.id, id) });
    }
    await workers.startNode(id, []);
    await this.changeMembership({ changes: [{ op: 'addLearner', nodeId: id }] }, deadline);
    for (;;) {
      const leader = await this.leaderStatus(deadline);
      const match = leader.matchIndex[id] ?? 0;
      if (match >= leader.commitIndex) break;
      await sleep(this.cx.options.node.tickMs);
    }
    await this.changeMembership({ changes: [{ op: 'addVoter', nodeId: id }] }, deadline);
    publishNodeEvent({ kind: 'added', node: id });
    return id;
  }

  private async removeNow(id: number, options: { timeoutMs?: number }): Promise<void> {
    const { workers } = this.cx;
    this.cx.checkOpen();
    const slot = workers.slotOf(id);
    const deadline = performance.now() + (options.timeoutMs ?? CHANGE_TIMEOUT_MS);
    const before = await this.leaderStatus(deadline).catch((error: unknown) => {
      throw error instanceof RingraftError && error.code === ErrorCode.TIMEOUT ? workers.noQuorum(`cannot remove node ${id}: no leader`) : error;
    });
    const remaining = before.voters.filter((v) => v !== id);
    const live = remaining.filter((v) => workers.isAlive(v));
    if (before.voters.includes(id) && live.length < Math.floor(remaining.length / 2) + 1) {
      throw workers.noQuorum(
        `removing node ${id} would leave voters ${remaining.join(', ')}, of which only ${live.length} ${live.length === 1 ? 'is' : 'are'} live (${live.join(', ') || 'none'}), ` +
          `fewer than the ${Math.floor(remaining.length / 2) + 1} a quorum needs: the cluster could never elect a leader; restart or replace the down nodes first`,
      );
    }
    await this.changeMembership({ changes: [{ op: 'removeNode', nodeId: id }] }, deadline);
    // A removed leader hands leadership off; wait until someone else leads.
    for (;;) {
      let leader;
      try {
        leader = await this.leaderStatus(deadline);
      } catch (error) {
        if (!(error instanceof RingraftError && error.code === ErrorCode.TIMEOUT)) throw error;
        throw new RingraftError(ErrorCode.TIMEOUT, `node ${id} was removed from the configuration, but no leader was elected after it in time`, { cause: error });
      }
      if (leader.id !== id && !leader.voters.includes(id) && !leader.learners.includes(id)) break;
      await sleep(this.cx.options.node.tickMs);
    }
    slot.removed = true;
    workers.cancelRecovery(slot);
    await workers.terminate(slot);
    this.cx.wiring.removeNode(id);
    // After close() the directory is no longer ours to write (its lock is released).
    if (!this.cx.isClosed()) this.cx.dataDir?.removeMember(id);
    publishNodeEvent({ kind: 'removed', node: id });
  }

  /** The status of the leader with the highest term among the live nodes; TIMEOUT if none leads by `deadline`. */
  private async leaderStatus(deadline: number): Promise<NodeStatus> {
    const { workers, control } = this.cx;
    for (;;) {
      this.cx.checkOpen();
      const statuses = await Promise.all(workers.nodeIds().filter((id) => workers.isAlive(id)).map((id) => control.status(id).catch(() => undefined)));
      let leader: NodeStatus | undefined;
      for (const s of statuses) if (s !== undefined && s.role === 'leader' && (leader === undefined || s.term > leader.term)) leader = s;
      if (leader !== undefined) return leader;
      if (performance.now() > deadline) throw new RingraftError(ErrorCode.TIMEOUT, 'no leader');
      await sleep(this.cx.options.node.tickMs);
    }
  }

  /** Proposes `change` at the leader (retrying while another change is pending) and waits until it is applied. */
  private async changeMembership(change: ConfChange, deadline: number): Promise<void> {
    const { control } = this.cx;
    for (;;) {
      if (performance.now() > deadline) throw new RingraftError(ErrorCode.TIMEOUT, 'membership change did not complete in time');
      const leader = await this.leaderStatus(deadline);
      let index: number;
      try {
        index = (await control.call(leader.id, { type: 'conf-change', callId: 0, change })).index!;
      } catch (error) {
        if (error instanceof RingraftError && error.code !== ErrorCode.INVALID_ARGUMENT) {
          await sleep(this.cx.options.node.tickMs);
          continue;
        }
        throw error;
      }
      // In force on the leader: applied, out of its joint step; applied but not in force and
      // not joint, it was lost to a new leader's log, and is proposed again.
      for (;;) {
        const st = await this.leaderStatus(deadline);
        if (st.appliedIndex >= index) {
          if (confChangeInForce(change, st)) return;
          if (!st.joint) break;
        }
        if (performance.now() > deadline) throw new RingraftError(ErrorCode.TIMEOUT, 'membership change did not complete in time');
        await sleep(this.cx.options.node.tickMs);
      }
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
