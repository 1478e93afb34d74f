/**
 * What the leader knows about one follower's log, and how it paces replication to it.
 *
 * - probe: the leader does not know where the follower's log matches. It sends one
 *   AppendEntries at a time and waits for the answer (or a heartbeat round) before the next.
 * - replicate: the follower is keeping up; the leader streams AppendEntries optimistically,
 *   advancing `next` as it sends, bounded by the in-flight window.
 * - snapshot: the follower needs a snapshot; nothing else is sent until it is installed (or
 *   refused). The snapshot is pinned, and sent one chunk at a time from where the follower
 *   says it is; a chunk unanswered for an election timeout is sent again, never the
 *   transfer restarted, so that every chunk delivered counts however many are lost or late.
 */
import { Inflights } from './inflights.ts';
import type { Snapshot } from './types.ts';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  /** Highest index known to match the leader's log. Invariant: 0 <= match < next. */
  match = 0;
  /** Next index to send. */
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: a message was sent and we wait for its answer or the next heartbeat. */
  probeSent = false;
  /** In snapshot state: the index of the snapshot sent. */
  pendingSnapshot = 0;
  /** In snapshot state: ticks since the follower last acknowledged a chunk (to resend it). */
  snapshotElapsedTicks = 0;
  /**
   * In snapshot state: the offset of the chunk last sent, the first byte the follower is not
   * known to hold. It only moves forward, but to 0 when the follower has lost what it held.
   */
  snapshotOffset = 0;
  /**
   * In snapshot state: the snapshot being sent, pinned for the whole transfer, so that
   * newer snapshots taken meanwhile do not restart it (under steady load they would,
   * forever).
   */
  snapshot: Snapshot | undefined = undefined;
  /** Whether the follower was heard from since the last check-quorum round. */
  recentActive = false;
  /** Heartbeat answers in a row, in replicate state, with messages in flight and no ack. */
  stalledHeartbeats = 0;
  /** The newest `sentTick` of a heartbeat of this term the follower acknowledged. */
  ackedSentTick = -Infinity;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, inflightMessagesMax: number, inflightBytesMax: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(inflightMessagesMax, inflightBytesMax);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotElapsedTicks = 0;
    this.snapshotOffset = 0;
    this.snapshot = undefined;
    this.stalledHeartbeats = 0;
    this.state = state;
    this.inflights.reset();
  }

  /** The snapshot transfer failed or was abandoned: probe from what is known to match. */
  snapshotFailed(): void {
    this.pendingSnapshot = 0;
    this.becomeProbe();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      // The follower has (or will have) the snapshot: continue after it, or after what matches.
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshot: Snapshot): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshot.meta.index;
    this.snapshot = snapshot;
  }

  /**
   * In snapshot state: the follower holds the first `received` bytes of the snapshot being
   * sent. Returns whether that moved `snapshotOffset`, and so whether the chunk there is to
   * be sent: the follower got further (the answer to the chunk in flight), or holds nothing
   * although it held some (it restarted). Any other answer is late or a duplicate, of a chunk
   * delayed or resent: the chunk at snapshotOffset is in flight already, and answering it
   * too would send every chunk from then on twice.
   */
  maybeUpdateSnapshotOffset(received: number): boolean {
    if (received > this.snapshotOffset || (received === 0 && this.snapshotOffset > 0)) {
      this.snapshotOffset = received;
      this.snapshotElapsedTicks = 0;
      return true;
    }
    return false;
  }

  /** Records an acknowledgement up to `index`; returns whether it taught us anything. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /** After sending entries up to `lastIndex` optimistically (replicate state). */
  sentEntries(lastIndex: number, bytes: number): void {
    if (this.state === 'replicate') {
      this.next = lastIndex + 1;
      this.inflights.add(lastIndex, bytes);
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /**
   * A rejection of an AppendEntries whose previous index was `rejected`; `matchHint` is the
   * highest index that may still match. Returns whether the rejection was news (not stale).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      // A rejection below what is known to match is stale: an old message, reordered.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe state only the answer to the message we sent (prevIndex next-1) counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Whether the leader should hold back entries for now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
