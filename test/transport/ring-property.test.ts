// Proves the ring equivalent to a FIFO queue with a byte budget, in one thread: fast-check
// generates a capacity, a starting counter (often just below the 32-bit wrap) and a random
// interleaving of writes (copying push, reservation committed in full or shorter, canceled
// reservation, staged frames and publishes) and reads (tryPop, a drain of one frame, drains
// by view and by range with a limit) of random sizes. A naive model (a queue, and byte
// counters that grow without bound) says whether each write must fit; after every step the
// ring must agree on that, on every frame's bytes and order, and on the bytes in use; and a
// frame of the maximum size must always fit an empty ring.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RingConsumer, RingProducer, createRing } from '../../src/transport/index.ts';
import { frameTotalBytes, pattern, setRingIndices } from './helpers.ts';

type PushOp = { kind: 'push'; size: number; how: 'copy' | 'reserve' | 'shorter' | 'cancel' | 'stage' };
type Op =
  | PushOp
  | { kind: 'publish' }
  | { kind: 'pop'; how: 'pop' | 'view' }
  | { kind: 'drain'; framesMax: number; ranges: boolean };

/** Frame sizes as fractions of the maximum, so that one arbitrary suits every capacity. */
const sizeArb = fc.oneof(
  // Whole permille: fc.double favours values near 0.
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 1000 }).map((p) => p / 1000) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1) },
);

const pushHows: readonly PushOp['how'][] = ['copy', 'reserve', 'shorter', 'cancel', 'stage'];
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('push' as const), size: sizeArb, how: fc.constantFrom(...pushHows) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'publish' as const }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('pop' as const), how: fc.constantFrom('pop' as const, 'view' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drain' as const), framesMax: fc.integer({ min: 1, max: 8 }), ranges: fc.boolean() }) },
);

/**
 * The model: the queue of frames and what the ring should have done with its bytes,
 * computed the simple way. A frame takes its aligned size, plus the bytes left before the
 * end of the data region if it does not fit there.
 */
class Model {
  /** Published frames, oldest first. */
  readonly frames: { bytes: Uint8Array; advanceBytes: number }[] = [];
  /** Staged frames: written and counted as used, not yet visible to the consumer. */
  readonly staged: { bytes: Uint8Array; advanceBytes: number }[] = [];
  writeCounter: number;
  usedBytes = 0;
  constructor(
    readonly capacityBytes: number,
    start: number,
  ) {
    this.writeCounter = start;
  }

  /** Bytes a frame of `length` takes at the current write position, wrap header included. */
  neededBytes(length: number): number {
    const total = frameTotalBytes(length);
    const toEnd = this.capacityBytes - (this.writeCounter % this.capacityBytes);
    return total <= toEnd ? total : toEnd + total;
  }

  fits(length: number): boolean {
    return this.capacityBytes - this.usedBytes >= this.neededBytes(length);
  }

  /**
   * A frame of `bytes`, reserved as `reservedLength`: the ring decides on a wrap header when
   * the space is reserved, so a shorter commit keeps the wrap that its reservation needed.
   */
  push(bytes: Uint8Array, reservedLength: number, publish: boolean): void {
    const total = frameTotalBytes(bytes.length);
    const advanceBytes = this.neededBytes(reservedLength) - frameTotalBytes(reservedLength) + total;
    this.staged.push({ bytes, advanceBytes });
    if (publish) this.publish();
    this.writeCounter += advanceBytes;
    this.usedBytes += advanceBytes;
  }

  publish(): void {
    this.frames.push(...this.staged.splice(0));
  }

  pop(): Uint8Array | undefined {
    const frame = this.frames.shift();
    if (frame !== undefined) this.usedBytes -= frame.advanceBytes;
    return frame?.bytes;
  }
}

/**
 * Writes `bytes` the way `how` says. `granted`: the ring had room; `published`: the bytes
 * it now holds as a frame (none for a canceled reservation, a prefix for a shorter commit).
 */
function pushOne(producer: RingProducer, how: PushOp['how'], bytes: Uint8Array): { granted: boolean; published?: Uint8Array } {
  switch (how) {
    case 'copy':
      return producer.tryPush(bytes) ? { granted: true, published: bytes } : { granted: false };
    case 'cancel': {
      const r = producer.tryReserve(bytes.length);
      if (r === undefined) return { granted: false };
      r.memory.fill(0xaa, r.offsetBytes, r.offsetBytes + r.lengthBytes);
      r.cancel();
      return { granted: true };
    }
    case 'stage': {
      const r = producer.tryReserve(bytes.length);
      if (r === undefined) return { granted: false };
      r.memory.set(bytes, r.offsetBytes);
      r.stage();
      return { granted: true, published: bytes };
    }
    case 'reserve':
    case 'shorter': {
      const r = producer.tryReserve(bytes.length);
      if (r === undefined) return { granted: false };
      const committed = how === 'shorter' ? bytes.subarray(0, bytes.length >> 1) : bytes;
      r.memory.set(committed, r.offsetBytes);
      r.commit(committed.length);
      return { granted: true, published: committed };
    }
  }
}

describe('ring against a queue model', () => {
  it('agrees with the model on every step of random interleavings', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(64, 128, 256, 1024),
        fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 ** 29 - 1 }).map((n) => n * 8), fc.integer({ min: 1, max: 64 }).map((n) => 2 ** 32 - n * 8)),
        fc.array(opArb, { minLength: 1, maxLength: 300 }),
        (capacityBytes, start, ops) => {
          const buffer = createRing(capacityBytes);
          setRingIndices(buffer, start);
          const producer = new RingProducer(buffer);
          const consumer = new RingConsumer(buffer);
          const model = new Model(capacityBytes, start);
          let seq = 0;
          for (const op of ops) {
            if (op.kind === 'push') {
              const length = Math.round(op.size * producer.frameBytesMax);
              const bytes = pattern(length, seq++);
              const expected = model.fits(length);
              const { granted, published } = pushOne(producer, op.how, bytes);
              expect(granted).toBe(expected);
              if (published !== undefined) model.push(published, length, op.how !== 'stage');
            } else if (op.kind === 'publish') {
              producer.publish();
              model.publish();
            } else if (op.kind === 'pop') {
              const expected = model.pop();
              let got: Uint8Array | undefined;
              if (op.how === 'pop') got = consumer.tryPop();
              else consumer.drain((view) => (got = view.slice()), 1);
              expect(got).toEqual(expected);
            } else {
              const expected: Uint8Array[] = [];
              for (let i = 0; i < op.framesMax; i++) {
                const bytes = model.pop();
                if (bytes === undefined) break;
                expected.push(bytes);
              }
              const got: Uint8Array[] = [];
              const drained = op.ranges
                ? consumer.drainRanges((memory, offset, length) => got.push(memory.slice(offset, offset + length)), op.framesMax)
                : consumer.drain((view) => got.push(view.slice()), op.framesMax);
              expect(drained).toBe(expected.length);
              expect(got).toEqual(expected);
            }
            expect(producer.usedBytes).toBe(model.usedBytes);
            expect(consumer.hasData()).toBe(model.frames.length > 0);
            if (model.frames.length + model.staged.length === 0) expect(model.fits(producer.frameBytesMax)).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
