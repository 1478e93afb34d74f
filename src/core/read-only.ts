/**
 * Pending ReadIndex requests on the leader (Raft thesis §6.4). Each request records the
 * commit index when it arrived and waits for a quorum to acknowledge a heartbeat round sent
 * after it; acknowledging a later round also confirms every earlier one, so requests are
 * released in arrival order. Requests that arrive before a round's heartbeats are sent share
 * that round (they are confirmed by the same acknowledgements).
 */
import type { NodeId, ReadState } from './types.ts';

interface PendingRead {
  readonly round: number;
  readonly requestId: number;
  readonly index: number;
  /** Who asked: this leader, or a follower (a follower read, answered with a ReadIndexResp). */
  readonly from: NodeId;
  /** Who acknowledged the round: the shape the quorum functions count. */
  readonly acks: Map<NodeId, boolean>;
}

export class ReadOnly {
  private queue: PendingRead[] = [];
  private roundNext = 1;

  constructor(readonly pendingMax: number) {}

  get size(): number {
    return this.queue.length;
  }

  /**
   * Queues a read at `index` asked by `from`; returns the heartbeat round that must confirm it:
   * `open`, a round whose heartbeats have not been sent yet, or else a new one.
   */
  add(requestId: number, index: number, self: NodeId, from: NodeId = self, open?: number): number {
    const last = this.queue[this.queue.length - 1];
    if (open !== undefined && last !== undefined && last.round === open) {
      this.queue.push({ round: open, requestId, index, from, acks: last.acks });
      return open;
    }
    const round = this.roundNext++;
    this.queue.push({ round, requestId, index, from, acks: new Map([[self, true]]) });
    return round;
  }

  /** Records `from`'s acknowledgement of `round`; returns the acks of that round, if pending. */
  recvAck(from: NodeId, round: number): ReadonlyMap<NodeId, boolean> | undefined {
    const pending = this.queue.find((p) => p.round === round);
    if (pending === undefined) return undefined;
    pending.acks.set(from, true);
    return pending.acks;
  }

  /** Releases `round` and every earlier request, with who asked each. */
  release(round: number): (ReadState & { readonly from: NodeId })[] {
    let i = -1;
    for (let j = this.queue.length - 1; j >= 0; j--) {
      if (this.queue[j]!.round === round) {
        i = j;
        break;
      }
    }
    if (i < 0) return [];
    const released = this.queue.splice(0, i + 1);
    return released.map((p) => ({ requestId: p.requestId, index: p.index, from: p.from }));
  }

  reset(): void {
    this.queue = [];
  }
}
