// Proves the ring's edge cases in one thread, by driving a producer and a consumer over one
// SharedArrayBuffer and looking at the documented layout: empty and full rings, frames of
// exactly the capacity, wrap headers at the end of the data region, 32-bit counter wrap,
// FRAME_TOO_LARGE refusals that write nothing, the zero-copy paths (reservations, staged
// frames, drains by view and by range), blocking and doorbell waits and their timeouts, and
// that a corrupted header or index is detected (CORRUPT_RING) before use.
import { describe, expect, it } from 'vitest';
import {
  Doorbell,
  RING_CONTROL_BYTES,
  RingConsumer,
  RingErrorCode,
  RingProducer,
  createRing,
  ringFrameBytesMax,
} from '../../src/transport/index.ts';
import {
  READ_INDEX_WORD,
  WRITE_INDEX_WORD,
  caught,
  dataWords,
  expectRingCode,
  frameTotalBytes,
  pattern,
  setRingIndices,
} from './helpers.ts';

function ring(capacityBytes: number, startIndex?: number): { buffer: SharedArrayBuffer; producer: RingProducer; consumer: RingConsumer } {
  const buffer = createRing(capacityBytes);
  if (startIndex !== undefined) setRingIndices(buffer, startIndex);
  return { buffer, producer: new RingProducer(buffer), consumer: new RingConsumer(buffer) };
}

describe('ring buffer creation', () => {
  it('accepts power-of-two capacities from 64 and states the frame maximum as capacity / 2 - 8', () => {
    const { producer, consumer, buffer } = ring(64);
    expect(buffer.byteLength).toBe(RING_CONTROL_BYTES + 64);
    expect(producer.frameBytesMax).toBe(24);
    expect(consumer.frameBytesMax).toBe(24);
    expect(ringFrameBytesMax(1 << 20)).toBe((1 << 19) - 8);
  });

  it('refuses capacities that are not a power of two or out of bounds, as bugs', () => {
    expect(() => createRing(96)).toThrow(/power of two/);
    expect(() => createRing(32)).toThrow(/>= 64/);
    expect(() => createRing(2 ** 31)).toThrow(/<= 1073741824/);
  });

  it('refuses a buffer that is not a ring with INVALID_BUFFER', () => {
    expectRingCode(() => new RingProducer(new SharedArrayBuffer(RING_CONTROL_BYTES + 64)), RingErrorCode.INVALID_BUFFER);
    expectRingCode(() => new RingConsumer(new SharedArrayBuffer(8)), RingErrorCode.INVALID_BUFFER);
    const good = createRing(64);
    const grown = new SharedArrayBuffer(RING_CONTROL_BYTES + 128);
    new Uint8Array(grown).set(new Uint8Array(good));
    expectRingCode(() => new RingConsumer(grown), RingErrorCode.INVALID_BUFFER);
    expectRingCode(() => new Doorbell(new SharedArrayBuffer(16)), RingErrorCode.INVALID_BUFFER);
  });
});

describe('empty and full', () => {
  it('an empty ring yields nothing on every read path', () => {
    const { producer, consumer } = ring(64);
    expect(consumer.hasData()).toBe(false);
    expect(consumer.tryPop()).toBeUndefined();
    expect(consumer.drain(() => expect.unreachable())).toBe(0);
    expect(consumer.drainRanges(() => expect.unreachable())).toBe(0);
    expect(consumer.waitForData(0)).toBe(false);
    expect(producer.usedBytes).toBe(0);
  });

  it('round-trips frames of every length up to the maximum, zero included', () => {
    const { producer, consumer } = ring(256);
    for (let length = 0; length <= producer.frameBytesMax; length++) {
      expect(producer.tryPush(pattern(length, length))).toBe(true);
      // The frame alone, or behind a wrap header shorter than itself.
      const total = frameTotalBytes(length);
      const used = producer.usedBytes;
      expect(used === total || (used > total && used < 2 * total)).toBe(true);
      expect(consumer.tryPop()).toEqual(pattern(length, length));
      expect(consumer.hasData()).toBe(false);
    }
  });

  it('a full ring refuses a push until the consumer releases space, and loses nothing', () => {
    const { producer, consumer } = ring(64);
    // Four frames of 8 payload bytes take 16 bytes each: exactly the capacity.
    for (let i = 0; i < 4; i++) expect(producer.tryPush(pattern(8, i))).toBe(true);
    expect(producer.usedBytes).toBe(64);
    expect(producer.tryPush(new Uint8Array(0))).toBe(false);
    expect(producer.tryReserve(0)).toBeUndefined();
    expect(producer.waitForRoom(1, 5)).toBe(false);

    expect(consumer.tryPop()).toEqual(pattern(8, 0));
    expect(producer.tryPush(pattern(8, 4))).toBe(true);
    expect(producer.tryPush(pattern(8, 5))).toBe(false);
    for (let i = 1; i <= 4; i++) expect(consumer.tryPop()).toEqual(pattern(8, i));
    expect(consumer.tryPop()).toBeUndefined();
  });

  it('two frames of the maximum size fill the ring exactly, again and again', () => {
    const { producer, consumer } = ring(64);
    const max = producer.frameBytesMax;
    for (let round = 0; round < 5; round++) {
      expect(producer.tryPush(pattern(max, 2 * round))).toBe(true);
      expect(producer.tryPush(pattern(max, 2 * round + 1))).toBe(true);
      expect(producer.usedBytes).toBe(64);
      expect(producer.tryPush(new Uint8Array(0))).toBe(false);
      expect(consumer.tryPop()).toEqual(pattern(max, 2 * round));
      expect(consumer.tryPop()).toEqual(pattern(max, 2 * round + 1));
    }
  });

  it('a frame of the maximum size fits an empty ring wherever the indices stand', () => {
    for (let start = 0; start < 256; start += 8) {
      const { producer, consumer } = ring(128, start);
      expect(producer.tryPush(pattern(producer.frameBytesMax, start))).toBe(true);
      expect(consumer.tryPop()).toEqual(pattern(producer.frameBytesMax, start));
    }
  });
});

describe('frames too large', () => {
  it('are refused with FRAME_TOO_LARGE on every write path, and nothing is written', () => {
    const { producer, consumer } = ring(64);
    const tooLarge = new Uint8Array(producer.frameBytesMax + 1);
    expectRingCode(() => producer.tryPush(tooLarge), RingErrorCode.FRAME_TOO_LARGE);
    expectRingCode(() => producer.tryReserve(tooLarge.length), RingErrorCode.FRAME_TOO_LARGE);
    expectRingCode(() => producer.waitForRoom(tooLarge.length, 10), RingErrorCode.FRAME_TOO_LARGE);
    expect(producer.usedBytes).toBe(0);
    expect(consumer.hasData()).toBe(false);
    // The ring still works.
    expect(producer.tryPush(pattern(producer.frameBytesMax, 1))).toBe(true);
    expect(consumer.tryPop()).toEqual(pattern(producer.frameBytesMax, 1));
  });
});

describe('wrap at the end of the data region', () => {
  it('writes a wrap header in the tail and the frame at position 0, never splitting it', () => {
    const { buffer, producer, consumer } = ring(64);
    // Two frames of 16 payload bytes (24 each) put the write position at 48.
    producer.tryPush(pattern(16, 0));
    producer.tryPush(pattern(16, 1));
    consumer.tryPop();
    consumer.tryPop();
    // A frame of 24 payload bytes takes 32: it does not fit in the 16 bytes left before the end.
    expect(producer.tryPush(pattern(24, 2))).toBe(true);
    expect(producer.usedBytes).toBe(16 + 32);
    const words = dataWords(buffer);
    expect(words[48 / 4]).toBe(16); // the wrap header's length: the bytes to the end
    expect(words[0]).toBe(24); // the frame header at position 0
    expect(consumer.drain((view) => {
      expect(view.byteOffset).toBe(RING_CONTROL_BYTES + 8);
      expect(view).toEqual(pattern(24, 2));
    })).toBe(1);
    expect(producer.usedBytes).toBe(0);
  });

  it('a frame that needs a wrap waits for the wrap header room too, not only its own', () => {
    const { producer, consumer } = ring(64);
    for (let i = 0; i < 3; i++) producer.tryPush(pattern(8, i)); // write position 48
    consumer.tryPop(); // 32 bytes used, 32 free, but only 16 before the end
    expect(producer.tryPush(pattern(24, 9))).toBe(false);
    consumer.tryPop(); // 48 free: 16 of wrap header and 32 of frame
    expect(producer.tryPush(pattern(24, 9))).toBe(true);
    expect(producer.usedBytes).toBe(64);
    expect(consumer.tryPop()).toEqual(pattern(8, 2));
    expect(consumer.tryPop()).toEqual(pattern(24, 9));
    expect(consumer.tryPop()).toBeUndefined();
  });

  it('a frame that ends exactly at the end needs no wrap header', () => {
    const { buffer, producer, consumer } = ring(64);
    producer.tryPush(pattern(16, 0)); // 24 bytes
    consumer.tryPop();
    expect(producer.tryPush(pattern(32 - 8, 1))).toBe(true); // 32 bytes: position 24..56
    expect(producer.tryPush(new Uint8Array(0))).toBe(true); // 8 bytes: position 56..64, exactly
    expect(producer.tryPush(pattern(8, 2))).toBe(true); // at 0, no wrap header
    expect(dataWords(buffer)[0]).toBe(8);
    expect(producer.usedBytes).toBe(32 + 8 + 16);
    expect(consumer.tryPop()).toEqual(pattern(24, 1));
    expect(consumer.tryPop()).toEqual(new Uint8Array(0));
    expect(consumer.tryPop()).toEqual(pattern(8, 2));
  });

  it('keeps working across the wrap of the 32-bit counters', () => {
    // Start 1 KiB below 2^32: the counters pass 2^32 (and the Int32 sign flip at 2^31 is
    // covered by starting at -1024 too) while frames also wrap the data region.
    for (const start of [2 ** 32 - 1024, 2 ** 31 - 1024]) {
      const { buffer, producer, consumer } = ring(128, start);
      let sent = 0;
      let received = 0;
      for (let step = 0; step < 400; step++) {
        const length = (step * 7) % (producer.frameBytesMax + 1);
        while (!producer.tryPush(pattern(length, sent))) {
          expect(consumer.tryPop()).toEqual(pattern((received * 7) % (producer.frameBytesMax + 1), received));
          received++;
        }
        sent++;
      }
      while (received < sent) {
        expect(consumer.tryPop()).toEqual(pattern((received * 7) % (producer.frameBytesMax + 1), received));
        received++;
      }
      const words = new Int32Array(buffer, 0, RING_CONTROL_BYTES / 4);
      const passed = (Atomics.load(words, WRITE_INDEX_WORD) - (start | 0)) >>> 0;
      expect(passed).toBeGreaterThan(2048); // well past the counter wrap
      expect(Atomics.load(words, READ_INDEX_WORD)).toBe(Atomics.load(words, WRITE_INDEX_WORD));
    }
  });
});

describe('zero-copy paths', () => {
  it('a reservation is ring memory; commit publishes, a shorter commit publishes less, cancel nothing', () => {
    const { buffer, producer, consumer } = ring(128);
    const r = producer.tryReserve(20)!;
    expect(r.memory.buffer).toBe(buffer);
    expect(r.lengthBytes).toBe(20);
    r.memory.set(pattern(20, 1), r.offsetBytes);
    expect(consumer.hasData()).toBe(false); // not published before commit
    r.commit(5);
    expect(producer.usedBytes).toBe(16);

    // An encoder that fails cancels its reservation: nothing of it is published.
    const c = producer.tryReserve(40)!;
    c.memory.fill(0xee, c.offsetBytes, c.offsetBytes + c.lengthBytes);
    c.cancel();
    expect(producer.usedBytes).toBe(16);

    const w = producer.tryReserve(3)!;
    w.memory.set([7, 8, 9], w.offsetBytes);
    w.commit();

    expect(consumer.tryPop()).toEqual(pattern(20, 1).subarray(0, 5));
    expect(consumer.tryPop()).toEqual(new Uint8Array([7, 8, 9]));
    expect(consumer.tryPop()).toBeUndefined();
  });

  it('a reservation addresses the payload bytes right after its frame header in the data region', () => {
    const { buffer, producer, consumer } = ring(128);
    producer.tryPush(pattern(16, 0)); // 24 bytes: the next frame's header is at data byte 24
    const r = producer.tryReserve(6)!;
    expect(r.memory.buffer).toBe(buffer);
    expect(r.offsetBytes).toBe(RING_CONTROL_BYTES + 24 + 8);
    r.memory.set([1, 2, 3], r.offsetBytes);
    r.memory.set([4, 5, 6], r.offsetBytes + 3);
    r.commit();
    expect(dataWords(buffer)[24 / 4]).toBe(6); // the frame header's length
    expect(consumer.tryPop()).toEqual(pattern(16, 0));
    expect(consumer.tryPop()).toEqual(new Uint8Array([1, 2, 3, 4, 5, 6]));
  });

  it('staged frames count as used but stay invisible until publish, then arrive in order', () => {
    const { producer, consumer } = ring(128);
    for (let i = 0; i < 3; i++) {
      const r = producer.tryReserve(8)!;
      r.memory.set(pattern(8, i), r.offsetBytes);
      r.stage();
    }
    expect(producer.usedBytes).toBe(48);
    expect(consumer.hasData()).toBe(false);
    expect(consumer.tryPop()).toBeUndefined();
    producer.publish();
    producer.publish(); // nothing more staged: no effect
    // A commit publishes what was staged before it, too.
    producer.tryReserve(8)!.stage();
    const r = producer.tryReserve(1)!;
    r.memory[r.offsetBytes] = 9;
    r.commit();
    const got: Uint8Array[] = [];
    expect(consumer.drain((view) => got.push(view.slice()))).toBe(5);
    expect(got).toEqual([pattern(8, 0), pattern(8, 1), pattern(8, 2), new Uint8Array(8), new Uint8Array([9])]);
  });

  it('waiting for room publishes the staged frames first, so the consumer can free it', () => {
    const { producer, consumer } = ring(64);
    for (let i = 0; i < 4; i++) {
      const r = producer.tryReserve(8)!;
      r.memory.set(pattern(8, i), r.offsetBytes);
      r.stage();
    }
    expect(consumer.hasData()).toBe(false);
    expect(producer.waitForRoom(8, 0)).toBe(false);
    expect(consumer.hasData()).toBe(true);
    expect(consumer.tryPop()).toEqual(pattern(8, 0));
    expect(producer.waitForRoom(8, 0)).toBe(true);
  });

  it('misuse of a reservation is a bug that crashes', () => {
    const { producer } = ring(128);
    const r = producer.tryReserve(8)!;
    expect(() => producer.tryReserve(8)).toThrow(/no other reservation/);
    expect(() => producer.waitForRoom(8, 0)).toThrow(/no reservation is outstanding/);
    expect(() => producer.tryPush(new Uint8Array(1))).toThrow(/no other reservation/);
    expect(() => r.commit(9)).toThrow(/<= reserved/);
    r.commit();
    expect(() => r.commit()).toThrow(/outstanding reservation/);
    expect(() => r.cancel()).toThrow(/outstanding reservation/);
    expect(() => producer.tryReserve(-1)).toThrow(/frame length/);
    expect(() => producer.tryReserve(1.5)).toThrow(/frame length/);
  });

  it('drain gives views into ring memory; tryPop gives a copy', () => {
    const { buffer, producer, consumer } = ring(128);
    producer.tryPush(pattern(10, 1));
    producer.tryPush(pattern(10, 2));
    expect(consumer.drain((view) => {
      expect(view.buffer).toBe(buffer);
      expect(view).toEqual(pattern(10, 1));
    }, 1)).toBe(1);
    const copy = consumer.tryPop()!;
    expect(copy.buffer).toBeInstanceOf(ArrayBuffer);
    expect(copy).toEqual(pattern(10, 2));
    producer.tryPush(pattern(10, 3)); // may reuse the memory the copy came from
    expect(copy).toEqual(pattern(10, 2));
  });

  it('a read handler that reads the same ring again is a bug that crashes', () => {
    const { producer, consumer } = ring(128);
    producer.tryPush(pattern(4, 1));
    producer.tryPush(pattern(4, 2));
    expect(() => consumer.drain(() => consumer.tryPop(), 1)).toThrow(/inside its read handler/);
    expect(() => consumer.drainRanges(() => consumer.drain(() => {}), 1)).toThrow(/inside its read handler/);
    expect(consumer.hasData()).toBe(false); // both frames were handed to a handler, and released
  });

  it('a drain of one frame releases it even when the handler throws', () => {
    const { producer, consumer } = ring(128);
    producer.tryPush(pattern(4, 1));
    producer.tryPush(pattern(4, 2));
    expect(() => consumer.drain(() => {
      throw new Error('bad message');
    }, 1)).toThrow('bad message');
    expect(consumer.tryPop()).toEqual(pattern(4, 2));
  });

  it('drain reads everything published, oldest first, up to framesMax, and releases it', () => {
    const { producer, consumer } = ring(256);
    for (let i = 0; i < 10; i++) producer.tryPush(pattern(i, i));
    const seen: Uint8Array[] = [];
    expect(consumer.drain((view) => seen.push(view.slice()), 4)).toBe(4);
    expect(consumer.drain((view) => seen.push(view.slice()))).toBe(6);
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => pattern(i, i)));
    expect(producer.usedBytes).toBe(0);
  });

  it('drainRanges hands out ranges of the ring memory instead of views', () => {
    const { buffer, producer, consumer } = ring(256);
    for (let i = 0; i < 5; i++) producer.tryPush(pattern(i * 3, i));
    const got: Uint8Array[] = [];
    expect(consumer.memory.buffer).toBe(buffer);
    expect(consumer.drainRanges((memory, offsetBytes, lengthBytes) => {
      expect(memory).toBe(consumer.memory);
      got.push(memory.slice(offsetBytes, offsetBytes + lengthBytes));
    })).toBe(5);
    expect(got).toEqual(Array.from({ length: 5 }, (_, i) => pattern(i * 3, i)));
    expect(producer.usedBytes).toBe(0);
  });

  it('drain releases the frames before a throwing handler and that frame, and keeps the rest', () => {
    const { producer, consumer } = ring(256);
    for (let i = 0; i < 5; i++) producer.tryPush(pattern(4, i));
    let calls = 0;
    expect(() => consumer.drain(() => {
      if (++calls === 3) throw new Error('bad message');
    })).toThrow('bad message');
    expect(producer.usedBytes).toBe(2 * 16);
    expect(consumer.tryPop()).toEqual(pattern(4, 3));
    expect(consumer.tryPop()).toEqual(pattern(4, 4));
  });

  it('a long drain releases space as it goes, so the producer can refill the ring during it', () => {
    const { producer, consumer } = ring(256);
    let pushed = 0;
    while (producer.tryPush(pattern(8, pushed))) pushed++;
    let read = 0;
    let refilled = 0;
    consumer.drain((view) => {
      expect(view).toEqual(pattern(8, read));
      read++;
      if (producer.tryPush(pattern(8, pushed))) {
        pushed++;
        refilled++;
      }
    }, 16);
    expect(refilled).toBeGreaterThan(0);
    consumer.drain((view) => {
      expect(view).toEqual(pattern(8, read));
      read++;
    });
    expect(read).toBe(pushed);
  });
});

describe('corruption is detected before use', () => {
  function oneFrame(): { buffer: SharedArrayBuffer; words: Int32Array; producer: RingProducer; consumer: RingConsumer } {
    const r = ring(128);
    r.producer.tryPush(pattern(12, 1));
    return { ...r, words: dataWords(r.buffer) };
  }

  it('a length field beyond the maximum', () => {
    const { words, consumer } = oneFrame();
    const check = words[1]! ^ words[0]!; // keep the header's check consistent: only the length is wrong
    words[0] = 0x7fff_0000;
    words[1] = 0x7fff_0000 ^ check;
    expectRingCode(() => consumer.tryPop(), RingErrorCode.CORRUPT_RING);
  });

  it('a length field that disagrees with its check word', () => {
    const { words, consumer } = oneFrame();
    words[0] = 13;
    expectRingCode(() => consumer.drainRanges(() => expect.unreachable()), RingErrorCode.CORRUPT_RING);
  });

  it('a length within the maximum that overruns the published bytes', () => {
    const { words, consumer } = oneFrame();
    const check = words[1]! ^ words[0]!;
    words[0] = 40;
    words[1] = 40 ^ check;
    expectRingCode(() => consumer.drain(() => expect.unreachable(), 1), RingErrorCode.CORRUPT_RING);
  });

  it('zeroed memory where a header should be', () => {
    const { words, consumer } = oneFrame();
    words[0] = 0;
    words[1] = 0;
    expectRingCode(() => consumer.drain(() => expect.unreachable()), RingErrorCode.CORRUPT_RING);
  });

  it('a wrap header that does not run to the end of the data region', () => {
    const { buffer, producer, consumer } = ring(64);
    producer.tryPush(pattern(16, 0));
    producer.tryPush(pattern(16, 1));
    consumer.tryPop();
    consumer.tryPop();
    producer.tryPush(pattern(24, 2)); // wrap header at 48
    const words = dataWords(buffer);
    const check = words[48 / 4 + 1]! ^ words[48 / 4]!;
    words[48 / 4] = 8;
    words[48 / 4 + 1] = 8 ^ check;
    expectRingCode(() => consumer.tryPop(), RingErrorCode.CORRUPT_RING);
  });

  it('a write index beyond the capacity, or unaligned', () => {
    for (const bad of [1000, 12, -8]) {
      const { buffer, consumer } = ring(128);
      Atomics.store(new Int32Array(buffer, 0, RING_CONTROL_BYTES / 4), WRITE_INDEX_WORD, bad);
      const error = caught(() => consumer.hasData());
      expect(error).toMatchObject({ code: RingErrorCode.CORRUPT_RING });
    }
  });

  it('a read index ahead of the write index, seen by the producer', () => {
    const { buffer, producer } = ring(64);
    for (let i = 0; i < 4; i++) producer.tryPush(pattern(8, i)); // full: the producer must look
    Atomics.store(new Int32Array(buffer, 0, RING_CONTROL_BYTES / 4), READ_INDEX_WORD, 200);
    expectRingCode(() => producer.tryPush(new Uint8Array(1)), RingErrorCode.CORRUPT_RING);
  });
});

describe('waiting in one thread', () => {
  it('blocking waits time out when nothing happens', () => {
    const { producer, consumer } = ring(64);
    for (let i = 0; i < 4; i++) producer.tryPush(pattern(8, i));
    const start = performance.now();
    expect(producer.waitForRoom(8, 20)).toBe(false);
    expect(producer.waitForRoom(8, 0)).toBe(false);
    expect(performance.now() - start).toBeGreaterThanOrEqual(19);
    expect(consumer.waitForData(0)).toBe(true);
    consumer.drain(() => {});
    expect(consumer.waitForData(20)).toBe(false);
    expect(() => consumer.waitForData(-1)).toThrow(/>= 0/);
    expect(() => consumer.waitForData(Number.NaN)).toThrow(/>= 0/);
  });

  it('a doorbell wakes an async waiter on any of its rings, and times out when none is rung', async () => {
    const bell = Doorbell.create();
    const buffers = [createRing(64), createRing(64), createRing(64)];
    const producers = buffers.map((b) => new RingProducer(b, { doorbell: bell }));
    const consumers = buffers.map((b) => new RingConsumer(b));
    const anyData = (): boolean => consumers.some((c) => c.hasData());
    expect(bell.wait(10, anyData)).toBe(false);
    expect(await bell.waitAsync(10, anyData)).toBe(false);
    setTimeout(() => producers[2]!.tryPush(pattern(5, 5)), 20);
    expect(await bell.waitAsync(5000, anyData)).toBe(true);
    expect(consumers[2]!.tryPop()).toEqual(pattern(5, 5));
    expect(bell.wait(0, anyData)).toBe(false);
    expect(new Doorbell(bell.buffer).wait(0, () => true)).toBe(true);
  });
});
