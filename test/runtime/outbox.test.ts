// Proves the Outbox against a real ring (createRing, RingProducer, RingConsumer) in one
// thread: items are encoded into the ring in send order and stay invisible to the consumer
// until flush() publishes them; while the ring is full they queue, in order, and later sends
// queue behind them; flush() moves them into the ring once the consumer has drained; beyond
// queueMax items or queueBytesMax encoded bytes the oldest queued items are discarded and
// counted in `dropped` (an item larger than queueBytesMax on its own too); a codec that throws
// leaves nothing published and the ring's space unused; a burst of sends costs one
// publishing store at flush(). A fast-check property runs random sends, drains and flushes
// against the rule that the consumer sees the sent items in order with exactly `dropped` of
// them missing and the queued bytes within their bound, and a long run crosses the queue's
// compaction.
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { Outbox, type FrameCodec } from '../../src/runtime/index.ts';
import { createRing, RingConsumer, RingProducer } from '../../src/transport/index.ts';

/** Items are numbered; each is framed as `sizeBytes` bytes that start with its number. */
interface Item {
  readonly n: number;
  readonly sizeBytes: number;
}

const itemCodec: FrameCodec<Item> = {
  encodedBytes: (item) => item.sizeBytes,
  write: (item, writer, memory, offsetBytes) => {
    const lengthBytes = writer.remainingBytes;
    expect(lengthBytes).toBe(item.sizeBytes);
    const view = new DataView(memory.buffer, memory.byteOffset + offsetBytes, lengthBytes);
    view.setUint32(0, item.n, true);
    for (let i = 4; i < lengthBytes; i++) view.setUint8(i, (item.n + i) & 0xff);
  },
};

/** A ring of 64 bytes holds four frames of 8 bytes (16 bytes each with the header). */
const RING_BYTES = 64;
const FRAMES_PER_RING = 4;
const item = (n: number, sizeBytes = 8): Item => ({ n, sizeBytes });

function setup(queueMax = 1000, codec: FrameCodec<Item> = itemCodec, queueBytesMax = Number.POSITIVE_INFINITY) {
  const buffer = createRing(RING_BYTES);
  const producer = new RingProducer(buffer);
  const consumer = new RingConsumer(buffer);
  const outbox = new Outbox(producer, codec, queueMax, queueBytesMax);
  /** Numbers of every frame the consumer can see now, checked byte for byte. */
  const drain = (): number[] => {
    const seen: number[] = [];
    consumer.drain((view) => {
      const n = new DataView(view.buffer, view.byteOffset, view.byteLength).getUint32(0, true);
      for (let i = 4; i < view.length; i++) expect(view[i]).toBe((n + i) & 0xff);
      seen.push(n);
    });
    return seen;
  };
  return { producer, consumer, outbox, drain };
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

describe('Outbox', () => {
  it('writes items into the ring in order and publishes nothing before flush()', () => {
    const { producer, consumer, outbox, drain } = setup();
    for (const n of [1, 2, 3]) outbox.send(item(n));
    expect(outbox.queuedCount).toBe(0);
    // Written (the space is taken) but staged: the consumer sees nothing yet.
    expect(producer.usedBytes).toBe(3 * 16);
    expect(consumer.hasData()).toBe(false);
    expect(drain()).toEqual([]);
    outbox.flush();
    expect(drain()).toEqual([1, 2, 3]);
  });

  it('queues items while the ring is full and flushes them in order once the consumer drains', () => {
    const { outbox, drain } = setup();
    for (let n = 1; n <= 10; n++) outbox.send(item(n));
    expect(outbox.queuedCount).toBe(10 - FRAMES_PER_RING);
    outbox.flush();
    expect(outbox.queuedCount).toBe(10 - FRAMES_PER_RING);
    expect(drain()).toEqual([1, 2, 3, 4]);
    // The ring has room again, but a new item must not overtake the queued ones.
    outbox.send(item(11));
    expect(outbox.queuedCount).toBe(7);
    expect(drain()).toEqual([]);
    outbox.flush();
    expect(drain()).toEqual([5, 6, 7, 8]);
    outbox.flush();
    expect(drain()).toEqual([9, 10, 11]);
    expect(outbox.queuedCount).toBe(0);
    expect(outbox.dropped).toBe(0);
  });

  it('beyond queueMax discards the oldest queued items and counts them in dropped', () => {
    const { outbox, drain } = setup(2);
    for (let n = 1; n <= 8; n++) outbox.send(item(n));
    // 1-4 went into the ring; of 5-8 only the newest two stay queued.
    expect(outbox.dropped).toBe(2);
    expect(outbox.queuedCount).toBe(2);
    outbox.flush();
    expect(drain()).toEqual([1, 2, 3, 4]);
    outbox.flush();
    expect(drain()).toEqual([7, 8]);
    expect(outbox.dropped).toBe(2);
  });

  it('beyond queueBytesMax discards the oldest queued items, by their encoded bytes, and counts them', () => {
    const { outbox, drain } = setup(1000, itemCodec, 20);
    // 1-4 (8 bytes each) fill the ring; then 5 (8), 6 (8) queue: 16 bytes.
    for (let n = 1; n <= 6; n++) outbox.send(item(n));
    expect(outbox.queuedBytes).toBe(16);
    expect(outbox.dropped).toBe(0);
    // 7 (12 bytes) needs room: 5 goes (8 + 12 = 20 fits).
    outbox.send(item(7, 12));
    expect(outbox.dropped).toBe(1);
    expect(outbox.queuedCount).toBe(2);
    expect(outbox.queuedBytes).toBe(20);
    // 8 (8 bytes): 6 goes too.
    outbox.send(item(8));
    expect(outbox.dropped).toBe(2);
    expect(outbox.queuedBytes).toBe(20);
    outbox.flush();
    expect(drain()).toEqual([1, 2, 3, 4]);
    outbox.flush();
    expect(drain()).toEqual([7, 8]);
    expect(outbox.queuedBytes).toBe(0);
    expect(outbox.dropped).toBe(2);
  });

  it('an item larger than queueBytesMax on its own is discarded and counted, and what was queued stays', () => {
    const { outbox, drain } = setup(1000, itemCodec, 16);
    for (let n = 1; n <= 5; n++) outbox.send(item(n));
    expect(outbox.queuedCount).toBe(1);
    outbox.send(item(6, 24));
    expect(outbox.dropped).toBe(2);
    expect(outbox.queuedCount).toBe(0);
    expect(outbox.queuedBytes).toBe(0);
    outbox.send(item(7));
    outbox.flush();
    expect(drain()).toEqual([1, 2, 3, 4]);
    outbox.flush();
    expect(drain()).toEqual([7]);
  });

  it('a codec that throws on send leaves nothing published and the ring space free', () => {
    const poison = 666;
    const throwing: FrameCodec<Item> = {
      encodedBytes: itemCodec.encodedBytes,
      write: (it, writer, memory, offset) => {
        if (it.n === poison) {
          memory.fill(0xee, offset, offset + writer.remainingBytes);
          throw new Error('encoder failure');
        }
        itemCodec.write(it, writer, memory, offset);
      },
    };
    const { producer, consumer, outbox, drain } = setup(1000, throwing);
    expect(() => outbox.send(item(poison))).toThrow('encoder failure');
    expect(producer.usedBytes).toBe(0);
    outbox.flush();
    expect(consumer.hasData()).toBe(false);

    outbox.send(item(1));
    expect(() => outbox.send(item(poison))).toThrow('encoder failure');
    expect(producer.usedBytes).toBe(16);
    outbox.send(item(2));
    outbox.flush();
    expect(drain()).toEqual([1, 2]);
    expect(outbox.queuedCount).toBe(0);
  });

  it('a burst costs one publishing store at flush(), and a flush with nothing staged none', () => {
    const { producer, consumer, outbox, drain } = setup();
    const publish = vi.spyOn(producer, 'publish');
    outbox.flush();
    expect(publish).toHaveBeenCalledTimes(0);
    for (let n = 1; n <= 6; n++) outbox.send(item(n));
    expect(publish).toHaveBeenCalledTimes(0);
    outbox.flush();
    expect(publish).toHaveBeenCalledTimes(1);
    // The ring is full and nothing new could be written: nothing to publish.
    outbox.flush();
    expect(publish).toHaveBeenCalledTimes(1);
    expect(drain()).toEqual([1, 2, 3, 4]);
    outbox.flush();
    expect(publish).toHaveBeenCalledTimes(2);
    expect(drain()).toEqual([5, 6]);
    expect(consumer.hasData()).toBe(false);
  });

  it('clear() forgets what is queued', () => {
    const { outbox, drain } = setup();
    for (let n = 1; n <= 6; n++) outbox.send(item(n));
    outbox.clear();
    expect(outbox.queuedCount).toBe(0);
    outbox.flush();
    expect(drain()).toEqual([1, 2, 3, 4]);
    outbox.flush();
    expect(drain()).toEqual([]);
  });

  it('keeps order across the compaction of a long queue', () => {
    const { outbox, drain } = setup(1 << 20);
    const count = 5000;
    for (let n = 0; n < count; n++) outbox.send(item(n));
    const seen: number[] = [];
    for (let rounds = 0; seen.length < count; rounds++) {
      if (rounds > count) throw new Error('the outbox does not drain');
      outbox.flush();
      seen.push(...drain());
      // Sends between flushes go behind the queue.
      if (rounds === 700) outbox.send(item(count));
    }
    outbox.flush();
    seen.push(...drain());
    expect(seen).toEqual(range(0, count + 1));
  });

  it('random sends, drains and flushes: the consumer sees the sent items in order, less exactly the dropped ones', () => {
    type Op = { op: 'send'; sizeBytes: number } | { op: 'flush' } | { op: 'drain' };
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      { weight: 5, arbitrary: fc.integer({ min: 4, max: 24 }).map((sizeBytes) => ({ op: 'send' as const, sizeBytes })) },
      { weight: 2, arbitrary: fc.constant({ op: 'flush' as const }) },
      { weight: 2, arbitrary: fc.constant({ op: 'drain' as const }) },
    );
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 200 }), fc.integer({ min: 1, max: 8 }), fc.oneof(fc.constant(Number.POSITIVE_INFINITY), fc.integer({ min: 0, max: 80 })), (ops, queueMax, queueBytesMax) => {
        const { consumer, outbox, drain } = setup(queueMax, itemCodec, queueBytesMax);
        const seen: number[] = [];
        let sent = 0;
        for (const op of ops) {
          if (op.op === 'send') {
            const visible = consumer.hasData();
            outbox.send(item(sent++, op.sizeBytes));
            // A send never publishes: what the consumer can see is unchanged.
            expect(consumer.hasData()).toBe(visible);
            expect(outbox.queuedCount).toBeLessThanOrEqual(queueMax);
            expect(outbox.queuedBytes).toBeLessThanOrEqual(queueBytesMax);
            expect(outbox.queuedBytes).toBeGreaterThanOrEqual(4 * outbox.queuedCount);
          } else if (op.op === 'flush') {
            outbox.flush();
          } else {
            seen.push(...drain());
          }
        }
        for (let rounds = 0; outbox.queuedCount > 0 || consumer.hasData(); rounds++) {
          if (rounds > 1000) throw new Error('the outbox does not drain');
          outbox.flush();
          seen.push(...drain());
        }
        outbox.flush();
        seen.push(...drain());
        // In order, each at most once, and exactly `dropped` missing.
        for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!);
        expect(seen.length + outbox.dropped).toBe(sent);
        expect(outbox.queuedBytes).toBe(0);
      }),
      { numRuns: 500 },
    );
  });
});
