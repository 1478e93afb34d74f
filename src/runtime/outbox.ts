/**
 * The sending side of one ring, with a bounded queue in front of it: a sender that must
 * never block (a node's loop, the main thread) hands items here, they are encoded straight
 * into ring memory while the ring has room, and queued (in order) while it has none.
 * Frames written in one turn are staged and published together by {@link flush}, so a
 * burst costs one publishing store and one wake-up of the consumer.
 *
 * The queue holds at most `queueMax` items and at most `queueBytesMax` bytes (items counted
 * by their encoded size, the bytes they will take in the ring). Beyond either bound the
 * oldest items are discarded and counted in `dropped`; an item larger than `queueBytesMax`
 * on its own is discarded too. For Raft messages to a peer that does not drain its ring
 * (crashed, or stalled), that is message loss, which the protocol tolerates; senders whose
 * items must not be lost keep their own in-flight count and bytes below the bounds instead.
 *
 * Queued items are `queue[head..]`, and the encoded size of `queue[i]` is `sizes[i]`:
 *
 * ```
 *   queue:  0        head                     queue.length
 *           ├ sent ───┼──── queued, oldest first ───┤
 * ```
 *
 * Invariant: queuedBytes is the sum of sizes[head..]; queuedCount <= queueMax and
 * queuedBytes <= queueBytesMax after every send.
 */

import { fail } from '../base/index.ts';
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
  /** The encoded size of each item in `queue`, slot for slot (computed once per item). */
  private sizes: number[] = [];
  private head = 0;
  private bytes = 0;
  private staged = false;
  /** One writer over the ring's memory for every frame. */
  private readonly writer: ByteWriter;

  constructor(
    private readonly producer: RingProducer,
    private readonly codec: FrameCodec<T>,
    private readonly queueMax: number,
    private readonly queueBytesMax: number = Number.POSITIVE_INFINITY,
  ) {
    if (!(queueMax >= 0)) fail(`queueMax ${queueMax} is not negative`);
    if (!(queueBytesMax >= 0)) fail(`queueBytesMax ${queueBytesMax} is not negative`);
    this.writer = new ByteWriter(producer.memory);
  }

  get queuedCount(): number {
    return this.queue.length - this.head;
  }

  /** Encoded bytes of the queued items. */
  get queuedBytes(): number {
    return this.bytes;
  }

  /**
   * Sends `item` now if the ring has room and nothing is queued, else queues it, or what
   * `keep(item)` returns: an item that is a view valid only during the call (a socket's read
   * buffer) is copied only when it has to wait.
   */
  send(item: T, keep?: (item: T) => T): void {
    const lengthBytes = this.codec.encodedBytes(item);
    if (this.queuedCount === 0 && this.tryWrite(item, lengthBytes)) return;
    if (keep !== undefined) item = keep(item);
    while (this.queuedCount > 0 && (this.queuedCount >= this.queueMax || this.bytes + lengthBytes > this.queueBytesMax)) this.dropOldest();
    if (lengthBytes > this.queueBytesMax || this.queueMax === 0) {
      this.dropped++;
      return;
    }
    this.queue.push(item);
    this.sizes.push(lengthBytes);
    this.bytes += lengthBytes;
  }

  /** Moves queued items into the ring while it has room, then publishes what was staged. */
  flush(): void {
    while (this.head < this.queue.length && this.tryWrite(this.queue[this.head]!, this.sizes[this.head]!)) {
      this.bytes -= this.sizes[this.head]!;
      this.queue[this.head] = undefined as unknown as T;
      this.head++;
    }
    this.compact();
    if (this.staged) {
      this.staged = false;
      this.producer.publish();
    }
  }

  /** Forgets everything queued (the consumer is gone for good). */
  clear(): void {
    this.queue = [];
    this.sizes = [];
    this.head = 0;
    this.bytes = 0;
  }

  private dropOldest(): void {
    this.bytes -= this.sizes[this.head]!;
    this.queue[this.head] = undefined as unknown as T;
    this.head++;
    this.dropped++;
    this.compact();
  }

  /** Starts the arrays over when emptied; drops the sent part once it is most of them. */
  private compact(): void {
    if (this.head === 0) return;
    if (this.head === this.queue.length) {
      this.clear();
    } else if (this.head > this.queue.length / 2 && this.head > 1024) {
      this.queue = this.queue.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }

  private tryWrite(item: T, lengthBytes: number): boolean {
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
