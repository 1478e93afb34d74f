/**
 * The bounded queue of messages waiting for one peer and lane: `send` puts a copy in (or
 * refuses it when either bound would be passed), a flush takes a batch out as one frame.
 *
 * Queued messages are `items[head..]`, oldest first:
 *
 * ```
 *   items:  0        head                        items.length
 *           ├ taken ──┼──── queued, oldest first ────┤
 * ```
 *
 * Invariant: queuedBytes is the sum of the lengths of items[head..]; queuedCount <=
 * messagesMax and queuedBytes <= bytesMax at all times.
 */
import { Buffer } from 'node:buffer';
import { fail } from '../../base/index.ts';
import { encodeBatchFrame, FRAME_OVERHEAD_BYTES, MESSAGE_PREFIX_BYTES } from './frame.ts';

/** Taken slots are cut from the front of the array once there are this many and they are half of it. */
const COMPACT_AFTER_ITEMS = 1024;

/** A batch taken from a queue: its frame, and what it carries. */
export interface TakenBatch {
  readonly frame: Buffer;
  readonly messages: number;
  /** Bytes of the messages themselves (no framing). */
  readonly messageBytes: number;
}

export class MessageQueue {
  private items: Uint8Array[] = [];
  private head = 0;
  private bytes = 0;

  constructor(
    readonly messagesMax: number,
    readonly bytesMax: number,
  ) {
    if (!(messagesMax >= 1 && bytesMax >= 1)) fail(`queue bounds ${messagesMax} messages and ${bytesMax} bytes are positive`);
  }

  get queuedCount(): number {
    return this.items.length - this.head;
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  /**
   * Queues a copy of `message` (the caller may reuse its buffer at once), or returns false,
   * queuing nothing, if it would pass either bound.
   */
  tryPush(message: Uint8Array): boolean {
    if (this.queuedCount >= this.messagesMax || message.length > this.bytesMax - this.bytes) return false;
    // Buffer.from copies; small copies come from Node's shared pool, which is cheaper per
    // message than an ArrayBuffer each.
    this.items.push(Buffer.from(message));
    this.bytes += message.length;
    return true;
  }

  /**
   * Takes the oldest messages, as many as fit a frame of `batchBytesMax` (at least one: a
   * larger message travels alone), and encodes them as one BATCH frame.
   */
  takeBatch(batchBytesMax: number): TakenBatch {
    const count = this.queuedCount;
    if (count === 0) fail('takeBatch on an empty queue');
    const start = this.head;
    let end = start;
    let payloadBytes = 0;
    const payloadBudget = batchBytesMax - FRAME_OVERHEAD_BYTES;
    do {
      payloadBytes += MESSAGE_PREFIX_BYTES + this.items[end]!.length;
      end++;
    } while (end < this.items.length && payloadBytes + MESSAGE_PREFIX_BYTES + this.items[end]!.length <= payloadBudget);
    const frame = encodeBatchFrame(this.items, start, end, payloadBytes);
    const messages = end - start;
    const messageBytes = payloadBytes - messages * MESSAGE_PREFIX_BYTES;
    this.release(end);
    this.bytes -= messageBytes;
    return { frame, messages, messageBytes };
  }

  /** Drops everything queued; returns how many messages that was. */
  clear(): number {
    const dropped = this.queuedCount;
    this.items = [];
    this.head = 0;
    this.bytes = 0;
    return dropped;
  }

  /** Lets go of items[head..end): their slots are emptied, and cut off once they are many. */
  private release(end: number): void {
    for (let i = this.head; i < end; i++) this.items[i] = EMPTY;
    this.head = end;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER_ITEMS && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

const EMPTY = new Uint8Array(0);
