/**
 * Write batching: the client writes a leader takes between two flushes share one log entry
 * (a `KvBatchBuilder` batch, cut at `writeBatchBytesMax`), and each is answered when that
 * entry applies, with the entry's term checked: a different entry at the batch's index
 * means the batch was replaced by another leader's, and its writes fail with NOT_LEADER,
 * `proposed: true` (they may or may not have applied elsewhere; the client's session makes
 * a retry safe). So do the writes of a batch whose index an entry that is no batch took
 * (a new leader's empty entry, a configuration change): the host tells the batcher of
 * every such entry (`skipped`), and a batch is never left waiting for an index gone by.
 *
 * The batcher proposes to the Raft node and answers through the host's sink; the host
 * checks each request's bytes before it comes here, and tells the batcher what applied.
 */
import { F64Deque, fail } from '../base/index.ts';
import type { Entry, RaftNode } from '../core/index.ts';
import { NotLeaderError } from '../core/index.ts';
import { KvApplyOutcomes, KvBatchBuilder, type KvStateMachine } from '../kv/index.ts';
import { notLeaderReply, refusalOf, writeReplyOf } from './host-replies.ts';
import type { HostSink } from './node-host.ts';

/**
 * What the batcher keeps per write and per batch makes no object: the request ids wait in
 * one deque in proposal order, and each batch proposed is three numbers in another (its
 * index, its term, how many ids are its), since a leader's batches apply in the order of
 * their indexes. The outcomes of the batch applying are written into one reused
 * KvApplyOutcomes, and a put that applied is answered through the sink's replyWrite.
 */
const BATCH_FIELDS = 3;

export class WriteBatcher {
  /** Writes that arrived since the last flush; their request ids are the last batchCount of `ids`. */
  private readonly batch = new KvBatchBuilder();
  private batchCount = 0;
  /** The request ids of the proposed batches, oldest first, then those of the current batch. */
  private readonly ids = new F64Deque(1024);
  /** (index, term, count) of each batch this node proposed as leader and that is not settled, by index. */
  private readonly batches = new F64Deque(64);
  private readonly outcomes = new KvApplyOutcomes();

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
    this.ids.push(requestId);
    this.batchCount++;
    if (this.batch.sizeBytes >= this.batchBytesMax) this.flush();
  }

  /** Proposes the writes batched since the last call as one entry; refuses them all if the node cannot propose. */
  flush(): void {
    if (this.batch.count === 0) return;
    const data = this.batch.finish();
    const count = this.batchCount;
    this.batchCount = 0;
    let index: number;
    try {
      index = this.raft.propose(data);
    } catch (error) {
      // Taken out of the queue before anyone is told: a reply may not find them still there.
      const refused = this.ids.slice(this.ids.length - count, this.ids.length);
      this.ids.dropLast(count);
      for (const id of refused) this.sink.reply(refusalOf(id, error));
      return;
    }
    this.batches.push(index);
    this.batches.push(this.raft.term);
    this.batches.push(count);
  }

  /**
   * Applies the batch entry `e` to `kv` and answers its writes if this node
   * proposed it: each with its outcome if `e` is the entry it proposed, with NOT_LEADER if
   * another entry took its index. A replica that proposed nothing at `e.index` records no
   * outcomes.
   */
  apply(e: Entry, kv: KvStateMachine): void {
    this.settleBefore(e.index);
    const ours = this.batches.length > 0 && this.batches.at(0) === e.index;
    kv.applyBatchInto(e.index, e.data, ours ? this.outcomes : undefined);
    if (!ours) return;
    const term = this.batches.at(1);
    const count = this.batches.at(2);
    this.batches.dropFirst(BATCH_FIELDS);
    const outcomes = this.outcomes;
    // Ours only if the term matches: a different entry at our index means ours was replaced.
    const replaced = term !== e.term;
    if (!replaced && outcomes.count !== count) fail(`batch at ${e.index} applied ${outcomes.count} outcomes for ${count} writes`);
    for (let i = 0; i < count; i++) {
      const requestId = this.ids.at(i);
      if (replaced) this.sink.reply(notLeaderReply(requestId, this.raft.leaderId, true));
      else if (outcomes.isPutApplied(i) && this.sink.replyWrite !== undefined) this.sink.replyWrite(requestId, outcomes.putResult, e.index);
      else this.sink.reply(writeReplyOf(requestId, outcomes.outcome(i), e.index));
    }
    this.ids.dropFirst(count);
    outcomes.clear();
  }

  /**
   * Answers NOT_LEADER (`proposed: true`) to the batches proposed below `index`, which will
   * not apply as ours now that an entry at or past `index` applies (another entry took
   * each one's index, and it applied without being a batch).
   */
  private settleBefore(index: number): void {
    while (this.batches.length > 0 && this.batches.at(0) < index) {
      const count = this.batches.at(2);
      this.batches.dropFirst(BATCH_FIELDS);
      for (let i = 0; i < count; i++) this.sink.reply(notLeaderReply(this.ids.at(i), this.raft.leaderId, true));
      this.ids.dropFirst(count);
    }
  }

  /**
   * Notes that the entry at `index`, which carries no batch, applied: any batch this node
   * proposed at or below it did not apply and fails with NOT_LEADER (`proposed: true`).
   */
  skipped(index: number): void {
    this.settleBefore(index + 1);
  }

  /** Fails every proposed write with NOT_LEADER (`proposed: true`), pointing at `leaderHint`: the node lost its role. */
  failProposed(leaderHint: number): void {
    // Taken out of the queue before anyone is told, as flush does.
    const proposed = this.ids.slice(0, this.ids.length - this.batchCount);
    this.ids.dropFirst(proposed.length);
    this.batches.clear();
    for (const id of proposed) this.sink.reply(notLeaderReply(id, leaderHint, true));
  }
}
