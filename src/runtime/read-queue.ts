/**
 * Read batching: the linearizable reads a leader takes between two flushes share one
 * ReadIndex round, and so do its lease reads; a round's reads wait for its ReadState and
 * then for the state machine to apply up to the state's index, and are answered from it
 * then. Stale reads are answered at once, by any node, from whatever it has applied.
 *
 * ```
 *   queue() ──> batchSafe / batchLease ──flush()──> rounds (by round id, awaiting a ReadState)
 *                                                     │ noteReadStates()
 *                                                     v
 *                 answered <──serve(appliedIndex)── waiting (by index, oldest first)
 * ```
 *
 * A leader that loses its role fails every read it holds with NOT_LEADER ({@link failAll}),
 * so its clients retry elsewhere.
 *
 * Lease keep-alives and time-to-lives ride the linearizable rounds too: answered once a round
 * that started after they arrived confirmed this node still leads (lease-keeper.ts says why).
 *
 * Follower reads ('follower' consistency) are linearizable reads that any node serves: on the
 * leader they join the linearizable batch; on a follower, their batch asks the leader for a
 * read index (the core sends a ReadIndex message) and waits, as a leader's round does, for
 * the answer and then for apply to reach that index. The answer may be lost, or the leader
 * gone: a follower round not answered within `followerRoundTicksMax` ticks fails with
 * NOT_LEADER, and the client tries again.
 */
import type { RaftNode, ReadState } from '../core/index.ts';
import { NotLeaderError } from '../core/index.ts';
import { CopyPool } from '../codec/index.ts';
import type { KvRangeQuery, KvStateMachine } from '../kv/index.ts';
import { ErrorCode } from '../base/index.ts';
import { NONE } from '../core/index.ts';
import type { LeaseOp, WireConsistency } from './client-protocol.ts';
import type { LeaseTimes } from './lease-keeper.ts';
import { notLeaderReply, refusalOf } from './host-replies.ts';
import type { HostSink } from './node-host.ts';

/** A read of one key, of a range of keys (its query checked: kv/range.ts), a lease request, or a query of the cluster's own state machine. */
type PendingRead =
  | { readonly requestId: number; /** A copy of the key's bytes (from the queue's pool: no string, one view). */ readonly key: Uint8Array; readonly range?: undefined; readonly lease?: undefined; readonly query?: undefined; readonly redis?: undefined }
  | { readonly requestId: number; readonly range: KvRangeQuery; readonly lease?: undefined; readonly query?: undefined; readonly redis?: undefined }
  | { readonly requestId: number; readonly range?: undefined; readonly lease: { readonly op: LeaseOp; readonly id: number }; readonly query?: undefined; readonly redis?: undefined }
  /** A query of the cluster's own state machine (kv/app-machine.ts). */
  | { readonly requestId: number; readonly range?: undefined; readonly lease?: undefined; readonly query: Uint8Array; readonly redis?: undefined }
  /** Redis commands that only read (kv/redis.ts), run on one state. */
  | { readonly requestId: number; readonly range?: undefined; readonly lease?: undefined; readonly query?: undefined; readonly redis: readonly (readonly Uint8Array[])[] };

export interface ReadQueueOptions {
  /** Only for the simulator's planted bug (NodeHost.rangeReadsServedLocally): range reads skip the leader and ReadIndex. */
  readonly rangeReadsLocal?: boolean;
  /** Only for the simulator's planted bug (NodeHost.followerReadsWaitForApply): a follower read is answered as soon as its read index arrives. */
  readonly followerReadsUnapplied?: boolean;
  /** How long a follower round may wait for its leader's answer, in ticks. */
  readonly followerRoundTicksMax: number;
}

export class ReadQueue {
  /** Reads that arrived since the last flush(), by mode. */
  private batchSafe: PendingRead[] = [];
  private batchLease: PendingRead[] = [];
  /** Follower reads taken on a follower since the last flush(). */
  private batchFollower: PendingRead[] = [];
  /** Read batches waiting for their ReadState, by the batch's read request id. */
  private readonly rounds = new Map<number, PendingRead[]>();
  /** Of those, the follower rounds: the tick each was started at. */
  private readonly followerRounds = new Map<number, number>();
  private ticks = 0;
  private readonly rangeReadsLocal: boolean;
  /** Read batches whose ReadState arrived, waiting for apply to reach `index`, oldest first. */
  private waiting: { index: number; reads: PendingRead[] }[] = [];
  private roundNext = 1;
  /** Where the keys of reads of one key are copied to while they wait. */
  private readonly keys = new CopyPool();

  constructor(
    private readonly raft: RaftNode,
    private readonly sink: HostSink,
    /** The state machine reads are served from (the host replaces it when it installs a snapshot). */
    private readonly kv: () => KvStateMachine,
    /** Answers a lease request on the leader (lease-keeper.ts); undefined: no such lease. */
    private readonly leases: (op: LeaseOp, id: number) => LeaseTimes | undefined,
    private readonly options: ReadQueueOptions,
  ) {
    this.rangeReadsLocal = options.rangeReadsLocal === true;
  }

  /** Takes a read of `key`: a stale one is answered now, others join their mode's batch (on the leader only). */
  queue(requestId: number, consistency: WireConsistency, key: Uint8Array): void {
    this.queueKeyAt(requestId, consistency, key, 0, key.length);
  }

  /**
   * {@link queue} of the key memory[at, at + length), copied: the caller's bytes (a frame in
   * a ring) may be written over once it returns.
   */
  queueKeyAt(requestId: number, consistency: WireConsistency, memory: Uint8Array, at: number, length: number): void {
    this.take({ requestId, key: this.keys.copy(memory, at, at + length) }, consistency);
  }

  /** Takes a range read (its query checked), as {@link queue} takes a read of one key. */
  queueRange(requestId: number, consistency: WireConsistency, range: KvRangeQuery): void {
    this.take({ requestId, range }, consistency);
  }

  /** Takes a query of the cluster's own state machine, as {@link queue} takes a read of one key. */
  queueQuery(requestId: number, consistency: WireConsistency, query: Uint8Array): void {
    this.take({ requestId, query }, consistency);
  }

  /** Takes Redis commands that only read (checked: kv/redis.ts), as {@link queue} takes a read of one key. */
  queueRedis(requestId: number, consistency: WireConsistency, commands: readonly (readonly Uint8Array[])[]): void {
    this.take({ requestId, redis: commands }, consistency);
  }

  /** Takes a lease keep-alive or time-to-live: on the leader, into the next linearizable round. */
  queueLease(requestId: number, op: LeaseOp, id: number): void {
    this.take({ requestId, lease: { op, id } }, 'linearizable');
  }

  private take(read: PendingRead, consistency: WireConsistency): void {
    if (consistency === 'stale' || (this.rangeReadsLocal && read.range !== undefined)) {
      this.answer(read, this.kv().appliedIndex);
      return;
    }
    if (consistency === 'follower' && this.raft.role === 'follower' && this.raft.leaderId !== NONE) {
      this.batchFollower.push(read);
      return;
    }
    if (this.raft.role !== 'leader') {
      this.sink.reply(refusalOf(read.requestId, new NotLeaderError(this.raft.leaderId)));
      return;
    }
    (consistency === 'lease' ? this.batchLease : this.batchSafe).push(read);
  }

  /** One tick: a follower round unanswered for too long fails with NOT_LEADER (its leader may be gone, or the answer lost). */
  tick(): void {
    this.ticks++;
    for (const [roundId, startedAt] of this.followerRounds) {
      if (this.ticks - startedAt < this.options.followerRoundTicksMax) break;
      this.followerRounds.delete(roundId);
      const reads = this.rounds.get(roundId) ?? [];
      this.rounds.delete(roundId);
      for (const r of reads) this.sink.reply(notLeaderReply(r.requestId, this.raft.leaderId, false));
    }
  }

  /** Answers a read from the state machine as it is now, which has applied at least `index`. */
  private answer(read: PendingRead, index: number): void {
    const kv = this.kv();
    if (read.lease !== undefined) {
      const times = this.leases(read.lease.op, read.lease.id);
      if (times === undefined) this.sink.reply({ kind: 'error', requestId: read.requestId, code: ErrorCode.LEASE_NOT_FOUND, leaderHint: NONE, proposed: false });
      else this.sink.reply({ kind: 'lease', requestId: read.requestId, id: read.lease.id, ...times });
    } else if (read.query !== undefined) this.sink.reply({ kind: 'read', requestId: read.requestId, index, value: kv.query(read.query) });
    else if (read.redis !== undefined) this.sink.reply({ kind: 'read', requestId: read.requestId, index, value: kv.redisRead(read.redis) });
    else if (read.range === undefined) {
      if (this.sink.replyRead !== undefined) this.sink.replyRead(read.requestId, index, kv.getTransient(read.key));
      else this.sink.reply({ kind: 'read', requestId: read.requestId, index, value: kv.getShared(read.key) });
    }
    else this.sink.reply({ kind: 'range', requestId: read.requestId, result: kv.range(read.range) });
  }

  /** Starts one ReadIndex round per mode for the reads batched since the last call. */
  flush(): void {
    if (this.batchSafe.length > 0) {
      const batch = this.batchSafe;
      this.batchSafe = [];
      this.startRound(batch, 'safe');
    }
    if (this.batchLease.length > 0) {
      const batch = this.batchLease;
      this.batchLease = [];
      this.startRound(batch, 'lease');
    }
    if (this.batchFollower.length > 0) {
      const batch = this.batchFollower;
      this.batchFollower = [];
      // A follower that became leader since takes them as its own reads.
      const roundId = this.startRound(batch, 'safe');
      if (roundId !== undefined && this.raft.role === 'follower') this.followerRounds.set(roundId, this.ticks);
    }
  }

  private startRound(batch: PendingRead[], mode: 'safe' | 'lease'): number | undefined {
    const roundId = this.roundNext++;
    try {
      this.raft.readIndex(roundId, mode);
    } catch (error) {
      for (const r of batch) this.sink.reply(refusalOf(r.requestId, error));
      return undefined;
    }
    this.rounds.set(roundId, batch);
    return roundId;
  }

  /** Moves the rounds a Ready released to the waiting line, each at the index it must wait for. */
  noteReadStates(readStates: readonly ReadState[]): void {
    for (const rs of readStates) {
      const reads = this.rounds.get(rs.requestId);
      if (reads === undefined) continue;
      this.rounds.delete(rs.requestId);
      const follower = this.followerRounds.delete(rs.requestId);
      if (follower && this.options.followerReadsUnapplied === true) {
        // The planted bug: answered from whatever is applied, the read index not reached.
        for (const r of reads) this.answer(r, rs.index);
        continue;
      }
      this.waiting.push({ index: rs.index, reads });
    }
  }

  /** Serves read batches whose index the state machine has reached (they arrive in index order). */
  serve(): void {
    const kv = this.kv();
    let served = 0;
    for (const w of this.waiting) {
      if (w.index > kv.appliedIndex) break;
      served++;
      for (const r of w.reads) this.answer(r, w.index);
    }
    if (served > 0) this.waiting.splice(0, served);
  }

  /** Fails every read held (batched, in a round, waiting), oldest first, with NOT_LEADER pointing at `leaderHint`. */
  failAll(leaderHint: number): void {
    const reads = [...this.batchSafe, ...this.batchLease, ...this.batchFollower];
    for (const batch of this.rounds.values()) reads.push(...batch);
    for (const w of this.waiting) reads.push(...w.reads);
    for (const r of reads) this.sink.reply(notLeaderReply(r.requestId, leaderHint, false));
    this.batchSafe = [];
    this.batchLease = [];
    this.batchFollower = [];
    this.rounds.clear();
    this.followerRounds.clear();
    this.waiting = [];
  }
}
