/**
 * Write batching: the client writes a leader takes between two flushes share one log entry
 * (a `KvBatchBuilder` batch, cut at `writeBatchBytesMax`), and each is answered when that
 * entry applies, with the entry's term checked: a different entry at the batch's index
 * means the batch was replaced by another leader's, and its writes fail with NOT_LEADER,
 * `proposed: true` (they may or may not have applied elsewhere; the client's session makes
 * a retry safe).
 *
 * The batcher proposes to the Raft node and answers through the host's sink; the host
 * checks each request's bytes before it comes here, and tells the batcher what applied.
 */
import type { Entry, RaftNode } from '../core/index.ts';
import { NotLeaderError } from '../core/index.ts';
import { KvBatchBuilder, type KvApplyOutcome } from '../kv/index.ts';
import { notLeaderReply, refusalOf, writeReplyOf } from './host-replies.ts';
import type { HostSink } from './node-host.ts';

/** Writes proposed in one batch entry, answered when the entry at their index and `term` applies. */
interface PendingBatch {
  readonly term: number;
  readonly requestIds: readonly number[];
}

export class WriteBatcher {
  /** Writes that arrived since the last flush, and their request ids in batch order. */
  private readonly batch = new KvBatchBuilder();
  private batchRequestIds: number[] = [];
  /** Batches this node proposed as leader, by log index, waiting to be applied. */
  private readonly pending = new Map<number, PendingBatch>();

  constructor(
    private readonly raft: RaftNode,
    private readonly sink: HostSink,
    /** A batch is proposed as soon as it holds this many bytes (writeBatchBytesMax). */
    private readonly batchBytesMax: number,
  ) {}

  /**
   * Adds the encoded KV request memory[offset, offset + length) to the current batch,
   * copying it (`memory` may be ring memory about to be reused), or refuses it with
   * NOT_LEADER on a node that does not lead. The caller has checked its length.
   */
  add(requestId: number, memory: Uint8Array, offset: number, length: number): void {
    if (this.raft.role !== 'leader') {
      this.sink.reply(refusalOf(requestId, new NotLeaderError(this.raft.leaderId)));
      return;
    }
    this.batch.add(memory, offset, length);
    this.batchRequestIds.push(requestId);
    if (this.batch.sizeBytes >= this.batchBytesMax) this.flush();
  }

  /** Proposes the writes batched since the last call as one entry; refuses them all if the node cannot propose. */
  flush(): void {
    if (this.batch.count === 0) return;
    const data = this.batch.finish();
    const requestIds = this.batchRequestIds;
    this.batchRequestIds = [];
    let index: number;
    try {
      index = this.raft.propose(data);
    } catch (error) {
      for (const requestId of requestIds) this.sink.reply(refusalOf(requestId, error));
      return;
    }
    this.pending.set(index, { term: this.raft.term, requestIds });
  }

  /** Whether this node proposed a batch at `index` that is not settled yet: its writes wait for their outcomes. */
  proposedAt(index: number): boolean {
    return this.pending.has(index);
  }

  /**
   * Answers the writes of the batch entry `e`, now applied with `outcomes` (one per write),
   * if this node proposed it: each with its outcome if `e` is the entry it proposed, with
   * NOT_LEADER if another entry took its index.
   */
  settle(e: Entry, outcomes: readonly KvApplyOutcome[]): void {
    const pending = this.pending.get(e.index);
    if (pending === undefined) return;
    this.pending.delete(e.index);
    // Ours only if the term matches: a different entry at our index means ours was replaced.
    for (let i = 0; i < pending.requestIds.length; i++) {
      const requestId = pending.requestIds[i]!;
      if (pending.term !== e.term) {
        this.sink.reply(notLeaderReply(requestId, this.raft.leaderId, true));
      } else {
        this.sink.reply(writeReplyOf(requestId, outcomes[i]!, e.index));
      }
    }
  }

  /** Fails every proposed write with NOT_LEADER (`proposed: true`), pointing at `leaderHint`: the node lost its role. */
  failProposed(leaderHint: number): void {
    for (const pending of this.pending.values()) {
      for (const requestId of pending.requestIds) this.sink.reply(notLeaderReply(requestId, leaderHint, true));
    }
    this.pending.clear();
  }
}
