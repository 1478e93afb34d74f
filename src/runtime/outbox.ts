/**
 * The sending side of one ring, with a bounded queue in front of it: a sender that must
 * never block (a node's loop, the main thread) hands items here, they are encoded straight
 * into ring memory while the ring has room, and queued (in order) while it has none.
 * Frames written in one turn are staged and published together by {@link flush}, so a
 * burst costs one publishing store and one wake-up of the consumer.
 *
 * The queue holds at most `queueMax` items. Beyond that the oldest item is discarded and
 * counted in `dropped`: for Raft messages to a peer that does not drain its ring (crashed,
 * or stalled), that is message loss, which the protocol tolerates; senders whose items must
 * not be lost bound their own in-flight count below `queueMax` instead.
 */

import { ByteWriter } from '../codec/index.ts';
import type { RingProducer } from '../transport/index.ts';

export interface FrameCodec<T> {
  encodedBytes(item: T): number;
  /**
   * Writes the item into ring memory at [offsetBytes, offsetBytes + encodedBytes(item)):
   * `writer` is a writer over that memory, already windowed to exactly those bytes.
   */
  write(item: T, writer: ByteWriter, memory: Uint8Array, offsetBytes: number): void;
}

export class Outbox<T> {
  /** Items discarded because the queue was full. */
  dropped = 0;
  /** Queued items are queue[head..]; compacted when the head passes half the array. */
  private queue: T[] = [];
  private head = 0;
  private staged = false;
  /** One writer over the ring's memory for every frame. */
  private readonly writer: ByteWriter;

  constructor(
    private readonly producer: RingProducer,
    private readonly codec: FrameCodec<T>,
    private readonly queueMax: number,
  ) {
    this.writer = new ByteWriter(producer.memory);
  }

  get queuedCount(): number {
    return this.queue.length - this.head;
  }

  /** Sends `item` now if the ring has room and nothing is queued, else queues it. */
  send(item: T): void {
    if (this.queuedCount === 0 && this.tryWrite(item)) return;
    if (this.queuedCount >= this.queueMax) {
      this.queue[this.head] = undefined as unknown as T;
      this.head++;
      this.dropped++;
    }
    this.queue.push(item);
  }

  /** Moves queued items into the ring while it has room, then publishes what was staged. */
  flush(): void {
    while (this.head < this.queue.length && this.tryWrite(this.queue[this.head]!)) {
      this.queue[this.head] = undefined as unknown as T;
      this.head++;
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > this.queue.length / 2 && this.head > 1024) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (this.staged) {
      this.staged = false;
      this.producer.publish();
    }
  }

  /** Forgets everything queued (the consumer is gone for good). */
  clear(): void {
    this.queue = [];
    this.head = 0;
  }

  private tryWrite(item: T): boolean {
    const lengthBytes = this.codec.encodedBytes(item);
    const r = this.producer.tryReserve(lengthBytes);
    if (r === undefined) return false;
    try {
      this.writer.window(r.offsetBytes, lengthBytes);
      this.codec.write(item, this.writer, r.memory, r.offsetBytes);
    } catch (error) {
      r.cancel();
      throw error;
    }
    r.stage();
    this.staged = true;
    return true;
  }
}
