/**
 * A single-producer single-consumer ring of variable-size binary frames in a
 * SharedArrayBuffer, for moving encoded messages between two threads without copying
 * them through `postMessage` (DESIGN.md, "Threads and rings").
 *
 * One thread owns the {@link RingProducer}, one other thread owns the {@link RingConsumer};
 * both wrap the same buffer made by {@link createRing}. The producer reserves space and
 * encodes straight into ring memory, then publishes the frame with one `Atomics.store`
 * (or stages several frames and publishes them with one store); the consumer decodes
 * frames in place and releases their space with one `Atomics.store` per batch. A full ring
 * pushes back on the producer (nothing is dropped, memory is fixed); an empty ring lets a
 * consumer that serves this one ring sleep in `Atomics.wait`. A {@link Doorbell} lets one
 * thread sleep on one word for many inbound rings, and lets the main thread, which must
 * never block, await them: that is how the runtime waits.
 *
 * The API is what the runtime uses plus a few plain forms, each kept for a stated use:
 *
 * | producer                         | consumer                    | for                                  |
 * | -------------------------------- | --------------------------- | ------------------------------------ |
 * | `tryReserve`, `stage`, `publish` | `drainRanges`, `hasData`    | the runtime's hot paths              |
 * | reservation `commit`, `cancel`   |                             | one frame; an encoder that failed    |
 * | `tryPush`                        | `drain`, `tryPop`           | a Uint8Array per frame: copy or view |
 * | `waitForRoom`                    | `waitForData`               | a thread that serves only this ring  |
 * | `usedBytes`                      |                             | diagnostics: the ring's occupancy    |
 *
 * Hot paths allocate nothing: `tryReserve` hands out one reused reservation with an offset
 * into {@link RingProducer.memory}, and `drainRanges` hands the consumer offsets into
 * {@link RingConsumer.memory}. The plain forms make a Uint8Array per frame (`drain` a view,
 * `tryPush` and `tryPop` a copy), which about doubles the ring's own cost per 150-byte frame
 * (measured in one thread: some 70 ns against 140 ns for a stage and a drain), so the hot
 * paths of the runtime do not use them.
 *
 * ## Buffer layout
 *
 * ```
 *  byte 0          128                  256                  384                 384 + capacity
 *  ┌───────────────┬────────────────────┬────────────────────┬──────────────────────────┐
 *  │ meta          │ producer line      │ consumer line      │ data (capacity bytes)    │
 *  │ magic, version│ writeIndex,        │ readIndex,         │ frames, 8-byte aligned   │
 *  │ capacityBytes │ producerWaiting    │ consumerWaiting    │                          │
 *  └───────────────┴────────────────────┴────────────────────┴──────────────────────────┘
 * ```
 *
 * Each index lives on its own 128-byte line with the flag its owner writes, so that the
 * producer's stores and the consumer's stores do not fight over one cache line (128, not
 * 64, because x86 prefetches lines in adjacent pairs).
 *
 * ## Indices
 *
 * `writeIndex` and `readIndex` are byte counters that only grow, modulo 2^32: the producer
 * alone advances `writeIndex`, the consumer alone advances `readIndex`. They are stored as
 * Int32 words and compared only by their difference taken modulo 2^32 (`(w - r) | 0`), so
 * wrapping of the counters past 2^32 needs no special case: capacity is a power of two of
 * at most 2^30, so it divides 2^32 and `counter & (capacity - 1)` is the position in the
 * data region on both sides of a counter wrap.
 *
 * ```
 *                  readIndex & mask           writeIndex & mask
 *                        │                          │
 *  data  ┌───────────────▼──────────────────────────▼────────────────┐
 *        │   free        │ published frames, oldest first │   free    │
 *        └───────────────┴────────────────────────────────┴───────────┘
 *        0                                                   capacity
 *  (or, wrapped: published frames at both ends, free space in the middle)
 * ```
 *
 * Invariant: 0 <= (writeIndex - readIndex) mod 2^32 <= capacityBytes, and both counters
 * are multiples of 8. Bytes in [readIndex, writeIndex) hold published frames, which only
 * the consumer reads; the rest is free and only the producer writes it.
 *
 * ## Frames
 *
 * ```
 *  ┌──────────────────┬──────────────────┬──────────────────────────┬──────────┐
 *  │ u32 lengthBytes  │ u32 check        │ payload (lengthBytes)    │ 0..7 pad │
 *  └──────────────────┴──────────────────┴──────────────────────────┴──────────┘
 *   8-byte header; the next frame starts at the next multiple of 8.
 * ```
 *
 * | header | word 0 (`lengthBytes`) | word 1 (`check`)                    |
 * | ------ | ---------------------- | ----------------------------------- |
 * | frame  | payload length n       | n XOR FRAME_MAGIC                   |
 * | wrap   | bytes to the data end  | that count XOR WRAP_MAGIC           |
 *
 * The kind of a header is `word0 XOR word1`; zeroed or stale memory gives neither magic,
 * so it never parses as a frame. A frame never straddles the end of the data region: when
 * it would not fit before the end, the producer writes a wrap header there (which runs to
 * the end exactly) and the frame at position 0, and publishes both with the same store, so
 * a published wrap header is always followed by a frame. The consumer checks every header before it
 * uses the length in it: the kind, `lengthBytes <= frameBytesMax`, that the frame lies
 * within the published bytes, and that it does not cross the end of the data region. A
 * header that fails a check throws a {@link RingError} with code CORRUPT_RING.
 *
 * A frame's payload is at most `capacityBytes / 2 - 8` bytes ({@link ringFrameBytesMax}):
 * a frame of at most half the capacity always fits into an empty ring, wherever the
 * indices stand (either it fits before the end, or the position is past the middle and it
 * fits at 0 after a wrap header). Larger payloads are refused with FRAME_TOO_LARGE.
 *
 * ## Waking
 *
 * A side that sleeps sets its `*Waiting` flag, checks the other side's index again, and
 * then waits on that index word with the value it saw; the other side stores its index
 * and then loads the flag, and notifies only if it is set. Atomics are sequentially
 * consistent, so either the sleeper sees the new index or the waker sees the flag, and
 * `Atomics.wait` returns at once if the index word changed: no wake-up is lost, and a busy
 * pair never pays for `Atomics.notify`. Staged frames are not published, so they wake no
 * one: a producer about to wait for room publishes them first, or it would wait on a
 * consumer that cannot see them.
 */
import { performance } from 'node:perf_hooks';
import { fail, pickCodes, RingraftError } from '../base/index.ts';

/**
 * The ring's codes, from the one list in base/errors.ts. FRAME_TOO_LARGE: a frame's payload
 * exceeds the ring's {@link ringFrameBytesMax}; nothing was written. CORRUPT_RING: shared memory
 * does not hold what the ring protocol allows (a bad header or index). INVALID_BUFFER: a buffer
 * handed to a ring constructor is not a ring (or doorbell) of this version.
 */
export const RingErrorCode = pickCodes('FRAME_TOO_LARGE', 'CORRUPT_RING', 'INVALID_BUFFER');
export type RingErrorCode = (typeof RingErrorCode)[keyof typeof RingErrorCode];

/** An expected refusal of the ring. A broken invariant is a bug: an `AssertionError`. */
export class RingError extends RingraftError {
  declare readonly code: RingErrorCode;
  constructor(code: RingErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'RingError';
  }
}

/** Smallest data region: room for a few small frames. The lower bound {@link createRing} checks. */
export const RING_CAPACITY_BYTES_MIN = 64;
/** Largest data region: 2^30, so that the capacity divides 2^32 and fits an Int32 difference. */
export const RING_CAPACITY_BYTES_MAX = 2 ** 30;
/**
 * Bytes of every frame header (and of a wrap header): what each frame costs in a ring beyond
 * its payload and padding, for sizing a ring to a number of frames.
 */
export const RING_FRAME_HEADER_BYTES = 8;
/**
 * Bytes before the data region: meta, producer line, consumer line. A ring's buffer is this
 * plus its capacity, which is what a ring costs in memory; the data region starts here.
 */
export const RING_CONTROL_BYTES = 384;

const FRAME_ALIGN_BYTES = 8;
const RING_MAGIC = 0x52_49_4e_47; // "RING"
const RING_VERSION = 1;
/** XOR of a frame header's two words. */
const FRAME_MAGIC = 0x46_52_4d_31; // "FRM1"
/** XOR of a wrap header's two words. */
const WRAP_MAGIC = 0x57_52_50_31; // "WRP1"

// Int32 word indexes of the control block (byte offset / 4).
const META_MAGIC = 0;
const META_VERSION = 1;
const META_CAPACITY = 2;
const WRITE_INDEX = 128 / 4;
const PRODUCER_WAITING = WRITE_INDEX + 1;
const READ_INDEX = 256 / 4;
const CONSUMER_WAITING = READ_INDEX + 1;
const DATA_WORD = RING_CONTROL_BYTES / 4;

/** setTimeout refuses delays above 2^31 - 1 ms; longer async waits re-arm. */
const TIMER_DELAY_MS_MAX = 0x7fff_ffff;

/** Largest payload a ring of `capacityBytes` accepts in one frame: capacity / 2 - 8. */
export function ringFrameBytesMax(capacityBytes: number): number {
  return capacityBytes / 2 - RING_FRAME_HEADER_BYTES;
}

/**
 * A zeroed, initialised ring buffer with `capacityBytes` of data region (a power of two
 * from {@link RING_CAPACITY_BYTES_MIN} to {@link RING_CAPACITY_BYTES_MAX}). Send it to the
 * other thread (postMessage shares, not copies, a SharedArrayBuffer) and wrap it there.
 */
export function createRing(capacityBytes: number): SharedArrayBuffer {
  if (!(Number.isSafeInteger(capacityBytes))) fail(`ring capacity ${capacityBytes} is an integer`);
  if (!(capacityBytes >= RING_CAPACITY_BYTES_MIN)) fail(`ring capacity ${capacityBytes} >= ${RING_CAPACITY_BYTES_MIN}`);
  if (!(capacityBytes <= RING_CAPACITY_BYTES_MAX)) fail(`ring capacity ${capacityBytes} <= ${RING_CAPACITY_BYTES_MAX}`);
  if (!((capacityBytes & (capacityBytes - 1)) === 0)) fail(`ring capacity ${capacityBytes} is a power of two`);
  const buffer = new SharedArrayBuffer(RING_CONTROL_BYTES + capacityBytes);
  const words = new Int32Array(buffer, 0, DATA_WORD);
  words[META_CAPACITY] = capacityBytes;
  words[META_VERSION] = RING_VERSION;
  // The magic goes last, with a store that publishes the words before it.
  Atomics.store(words, META_MAGIC, RING_MAGIC);
  return buffer;
}

/** Checks that `buffer` came from {@link createRing}; returns its capacity in bytes. */
function ringCapacityOf(buffer: SharedArrayBuffer): number {
  if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < RING_CONTROL_BYTES + RING_CAPACITY_BYTES_MIN) {
    throw new RingError(RingErrorCode.INVALID_BUFFER, 'not a ring buffer: expected a SharedArrayBuffer from createRing');
  }
  const words = new Int32Array(buffer, 0, DATA_WORD);
  if (Atomics.load(words, META_MAGIC) !== RING_MAGIC || words[META_VERSION] !== RING_VERSION) {
    throw new RingError(RingErrorCode.INVALID_BUFFER, 'not a ring buffer of version 1: bad magic or version');
  }
  const capacityBytes = words[META_CAPACITY]!;
  const powerOfTwo = capacityBytes > 0 && (capacityBytes & (capacityBytes - 1)) === 0;
  if (!powerOfTwo || capacityBytes < RING_CAPACITY_BYTES_MIN || buffer.byteLength !== RING_CONTROL_BYTES + capacityBytes) {
    throw new RingError(RingErrorCode.INVALID_BUFFER, `ring buffer of ${buffer.byteLength} bytes does not match its capacity ${capacityBytes}`);
  }
  return capacityBytes;
}

/** Bytes a frame with a payload of `lengthBytes` takes in the ring: header, payload, padding. */
function frameTotalBytes(lengthBytes: number): number {
  return (RING_FRAME_HEADER_BYTES + lengthBytes + FRAME_ALIGN_BYTES - 1) & ~(FRAME_ALIGN_BYTES - 1);
}

function checkTimeout(timeoutMs: number): void {
  if (!(timeoutMs >= 0)) fail(`timeout ${timeoutMs} ms is >= 0 (Infinity waits for ever)`);
}

/** `Atomics.waitAsync` (ES2024; in Node.js since 16), typed here because the build's lib is ES2023. */
interface AtomicsWithWaitAsync {
  waitAsync(
    words: Int32Array,
    index: number,
    expected: number,
    timeoutMs: number,
  ): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
}
const atomicsWithWaitAsync = Atomics as unknown as AtomicsWithWaitAsync;

/**
 * Resolves when the word at `index` may no longer hold `expected` (notified, or changed
 * before the wait began) or after `timeoutMs`. In Node.js 20 a pending `Atomics.waitAsync`
 * does not keep its thread alive (the main thread or a worker would exit under it), so a
 * ref'd timer with the same timeout runs beside it and settles the wait if it fires first.
 */
export function waitWordAsync(words: Int32Array, index: number, expected: number, timeoutMs: number): Promise<void> {
  const result = atomicsWithWaitAsync.waitAsync(words, index, expected, timeoutMs);
  if (!result.async) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, Math.min(timeoutMs, TIMER_DELAY_MS_MAX));
    void result.value.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Milliseconds left until `deadline` (a performance.now() time, or Infinity), never negative. */
function remainingMs(deadline: number): number {
  return Math.max(0, deadline - performance.now());
}

/**
 * The producer's one outstanding reservation (see {@link RingProducer.tryReserve}). The
 * same object is handed out again for the next reservation, so do not keep it.
 */
export interface RingReservation {
  /**
   * The whole ring buffer as bytes; write the frame's payload into [offsetBytes,
   * offsetBytes + lengthBytes), where an encoder that writes at an offset puts it directly.
   */
  readonly memory: Uint8Array;
  readonly offsetBytes: number;
  /** Payload bytes reserved. */
  readonly lengthBytes: number;
  /**
   * Publishes the frame (and any staged before it) and wakes a sleeping consumer: the form
   * for one frame on its own, as {@link RingProducer.tryPush} writes it.
   * `lengthBytes` (at most the reserved length; the reserved length if omitted) lets an
   * encoder reserve a bound and use less. The frame keeps the place its reservation got:
   * if that needed a wrap header, a shorter frame keeps it too.
   */
  commit(lengthBytes?: number): void;
  /**
   * Like {@link commit}, but leaves the frame staged: the consumer sees it at the next
   * {@link RingProducer.publish} (or commit, or blocking wait for room), so that a batch of
   * frames costs one publishing store and one check for a sleeping consumer.
   */
  stage(lengthBytes?: number): void;
  /** Gives the reserved space back unpublished. */
  cancel(): void;
}

export interface RingProducerOptions {
  /** Rung after every publish, for a consumer that sleeps on it for many rings. */
  readonly doorbell?: Doorbell;
}

/**
 * The writing end of a ring. Exactly one thread may own the producer of a ring.
 *
 * Invariants: `cachedReadIndex` is a value `readIndex` held at some time, so the free space
 * computed from it is never more than the true free space. `publishedIndex` is the value
 * of the shared `writeIndex`; frames in [publishedIndex, writeIndex) are staged: written,
 * counted as used, not yet visible to the consumer.
 */
export class RingProducer {
  readonly capacityBytes: number;
  /** Largest payload of one frame: capacityBytes / 2 - 8. */
  readonly frameBytesMax: number;
  /** The whole ring buffer as bytes (see {@link RingReservation.offsetBytes}). */
  readonly memory: Uint8Array;
  private readonly words: Int32Array;
  private readonly mask: number;
  private readonly doorbell: Doorbell | undefined;
  /** End of the staged frames: where the next frame goes. */
  private writeIndex: number;
  private publishedIndex: number;
  private cachedReadIndex: number;
  private readonly reservation: ProducerReservation;

  constructor(buffer: SharedArrayBuffer, options: RingProducerOptions = {}) {
    this.capacityBytes = ringCapacityOf(buffer);
    this.frameBytesMax = ringFrameBytesMax(this.capacityBytes);
    this.memory = new Uint8Array(buffer);
    this.words = new Int32Array(buffer);
    this.mask = this.capacityBytes - 1;
    this.doorbell = options.doorbell;
    this.writeIndex = Atomics.load(this.words, WRITE_INDEX);
    this.publishedIndex = this.writeIndex;
    this.cachedReadIndex = Atomics.load(this.words, READ_INDEX);
    this.checkUsedBytes(this.cachedReadIndex);
    this.reservation = new ProducerReservation(this.memory, (wrapBytes, lengthBytes, publish) => {
      this.stageFrame(wrapBytes, lengthBytes);
      if (publish) this.publish();
    });
  }

  /**
   * Bytes published or staged and not yet released by the consumer (a snapshot): the ring's
   * occupancy, for diagnostics and tests. The runtime decides nothing by it; a full ring
   * shows as a refused {@link tryReserve}.
   */
  get usedBytes(): number {
    return this.checkUsedBytes(Atomics.load(this.words, READ_INDEX));
  }

  /**
   * Reserves room for a frame of `lengthBytes` payload bytes, or returns undefined if the
   * ring has no room for it now. Throws FRAME_TOO_LARGE above {@link frameBytesMax}. One
   * reservation at a time: commit, stage or cancel it before the next.
   */
  tryReserve(lengthBytes: number): RingReservation | undefined {
    this.checkLength(lengthBytes);
    if (this.reservation.active) fail('no other reservation is outstanding');
    const totalBytes = frameTotalBytes(lengthBytes);
    const wrapBytes = this.wrapBytesFor(totalBytes);
    if (!this.hasRoom(wrapBytes + totalBytes)) return undefined;
    const frameIndex = (this.writeIndex + wrapBytes) | 0;
    const offsetBytes = RING_CONTROL_BYTES + (frameIndex & this.mask) + RING_FRAME_HEADER_BYTES;
    this.reservation.open(offsetBytes, lengthBytes, wrapBytes);
    return this.reservation;
  }

  /**
   * Copies `bytes` into the ring as one frame and publishes it; false if there is no room now.
   * For a frame already encoded in ordinary memory (a request a tool or a test builds first);
   * an encoder on a hot path writes in place through {@link tryReserve} instead.
   */
  tryPush(bytes: Uint8Array): boolean {
    const reservation = this.tryReserve(bytes.length);
    if (reservation === undefined) return false;
    this.memory.set(bytes, reservation.offsetBytes);
    reservation.commit();
    return true;
  }

  /**
   * Blocks in `Atomics.wait` until a frame of `lengthBytes` fits (true) or `timeoutMs`
   * passes (false): the back-pressure wait of a worker thread that produces into this one
   * ring (the ring benchmark's sender, say). The runtime never blocks on a full ring: its
   * Outbox queues what does not fit. Never on the main thread. Staged frames are published
   * first: the consumer could not free space for them otherwise.
   */
  waitForRoom(lengthBytes: number, timeoutMs: number): boolean {
    this.checkLength(lengthBytes);
    checkTimeout(timeoutMs);
    if (this.reservation.active) fail('no reservation is outstanding while waiting for room');
    this.publish();
    const neededBytes = this.neededBytesFor(lengthBytes);
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const observed = Atomics.load(this.words, READ_INDEX);
      Atomics.store(this.words, PRODUCER_WAITING, 1);
      // Checked after the flag is up: a release from now on will notify (see "Waking").
      if (this.hasRoom(neededBytes)) break;
      const waitMs = remainingMs(deadline);
      if (waitMs === 0) break;
      Atomics.wait(this.words, READ_INDEX, observed, waitMs);
    }
    Atomics.store(this.words, PRODUCER_WAITING, 0);
    return this.hasRoom(neededBytes);
  }

  /**
   * Makes the staged frames visible to the consumer with one store, and wakes it if it
   * sleeps (on the ring or on the doorbell). Does nothing if no frame is staged.
   */
  publish(): void {
    if (this.publishedIndex === this.writeIndex) return;
    this.publishedIndex = this.writeIndex;
    // The store publishes the headers and payloads written before it (release order).
    Atomics.store(this.words, WRITE_INDEX, this.writeIndex);
    if (Atomics.load(this.words, CONSUMER_WAITING) !== 0) Atomics.notify(this.words, WRITE_INDEX);
    if (this.doorbell !== undefined) this.doorbell.ring();
  }

  /** Writes the headers of the reserved frame (and its wrap header) and stages it. */
  private stageFrame(wrapBytes: number, lengthBytes: number): void {
    const words = this.words;
    if (wrapBytes > 0) {
      const wrapWord = DATA_WORD + ((this.writeIndex & this.mask) >> 2);
      words[wrapWord] = wrapBytes;
      words[wrapWord + 1] = wrapBytes ^ WRAP_MAGIC;
    }
    const frameIndex = (this.writeIndex + wrapBytes) | 0;
    const frameWord = DATA_WORD + ((frameIndex & this.mask) >> 2);
    words[frameWord] = lengthBytes;
    words[frameWord + 1] = lengthBytes ^ FRAME_MAGIC;
    this.writeIndex = (frameIndex + frameTotalBytes(lengthBytes)) | 0;
  }

  private checkLength(lengthBytes: number): void {
    if (!Number.isSafeInteger(lengthBytes)) fail(`frame length ${lengthBytes} is an integer`);
    if (lengthBytes < 0) fail(`frame length ${lengthBytes} is >= 0`);
    if (lengthBytes > this.frameBytesMax) {
      throw new RingError(
        RingErrorCode.FRAME_TOO_LARGE,
        `frame of ${lengthBytes} bytes exceeds the ring's maximum of ${this.frameBytesMax} (capacity ${this.capacityBytes})`,
      );
    }
  }

  /** Bytes of wrap header needed before a frame of `totalBytes` at the write position. */
  private wrapBytesFor(totalBytes: number): number {
    const toEndBytes = this.capacityBytes - (this.writeIndex & this.mask);
    return totalBytes <= toEndBytes ? 0 : toEndBytes;
  }

  private neededBytesFor(lengthBytes: number): number {
    const totalBytes = frameTotalBytes(lengthBytes);
    return this.wrapBytesFor(totalBytes) + totalBytes;
  }

  /** Whether `bytes` are free; reloads the consumer's index only when the cached one says no. */
  private hasRoom(bytes: number): boolean {
    if (this.capacityBytes - ((this.writeIndex - this.cachedReadIndex) | 0) >= bytes) return true;
    const readIndex = Atomics.load(this.words, READ_INDEX);
    this.checkUsedBytes(readIndex);
    this.cachedReadIndex = readIndex;
    return this.capacityBytes - ((this.writeIndex - readIndex) | 0) >= bytes;
  }

  /** The consumer's index is data from another thread: check it before trusting it. */
  private checkUsedBytes(readIndex: number): number {
    const usedBytes = (this.writeIndex - readIndex) | 0;
    if (usedBytes < 0 || usedBytes > this.capacityBytes || (readIndex & (FRAME_ALIGN_BYTES - 1)) !== 0) {
      throw new RingError(
        RingErrorCode.CORRUPT_RING,
        `ring read index ${readIndex >>> 0} is inconsistent with write index ${this.writeIndex >>> 0} (capacity ${this.capacityBytes})`,
      );
    }
    return usedBytes;
  }
}

type FinishReservation = (wrapBytes: number, lengthBytes: number, publish: boolean) => void;

class ProducerReservation implements RingReservation {
  readonly memory: Uint8Array;
  offsetBytes = 0;
  lengthBytes = 0;
  active = false;
  private wrapBytes = 0;
  private readonly finish: FinishReservation;

  constructor(memory: Uint8Array, finish: FinishReservation) {
    this.memory = memory;
    this.finish = finish;
  }

  open(offsetBytes: number, lengthBytes: number, wrapBytes: number): void {
    this.offsetBytes = offsetBytes;
    this.lengthBytes = lengthBytes;
    this.wrapBytes = wrapBytes;
    this.active = true;
  }

  commit(lengthBytes: number = this.lengthBytes): void {
    this.close(lengthBytes);
    this.finish(this.wrapBytes, lengthBytes, true);
  }

  stage(lengthBytes: number = this.lengthBytes): void {
    this.close(lengthBytes);
    this.finish(this.wrapBytes, lengthBytes, false);
  }

  cancel(): void {
    if (!this.active) fail('cancel of an outstanding reservation');
    this.active = false;
  }

  private close(lengthBytes: number): void {
    if (!this.active) fail('commit of an outstanding reservation');
    if (!Number.isSafeInteger(lengthBytes)) fail(`committed length ${lengthBytes} is an integer`);
    if (lengthBytes < 0) fail(`committed length ${lengthBytes} is >= 0`);
    if (lengthBytes > this.lengthBytes) fail(`committed length ${lengthBytes} <= reserved ${this.lengthBytes}`);
    this.active = false;
  }
}

/**
 * The reading end of a ring. Exactly one thread may own the consumer of a ring.
 *
 * Invariant: `cachedWriteIndex` is a value `writeIndex` held at some time (checked to be
 * within capacity of `readIndex` when loaded), so the bytes in [readIndex, cachedWriteIndex)
 * are published.
 */
export class RingConsumer {
  readonly capacityBytes: number;
  /** Largest payload of one frame: capacityBytes / 2 - 8. */
  readonly frameBytesMax: number;
  /** The whole ring buffer as bytes (see {@link drainRanges}). */
  readonly memory: Uint8Array;
  private readonly words: Int32Array;
  private readonly mask: number;
  /** Mirrors `readIndex`: only this consumer writes it. */
  private readIndex: number;
  private cachedWriteIndex: number;
  /** Set by {@link nextFrame}: where the frame at the read position is. */
  private frameOffsetBytes = 0;
  private frameLengthBytes = 0;
  /** Bytes the frame found by {@link nextFrame} frees: wrap header, header, payload, padding. */
  private frameAdvanceBytes = 0;
  /** True while a read handler runs: a handler must not read this ring again. */
  private inHandler = false;

  constructor(buffer: SharedArrayBuffer) {
    this.capacityBytes = ringCapacityOf(buffer);
    this.frameBytesMax = ringFrameBytesMax(this.capacityBytes);
    this.memory = new Uint8Array(buffer);
    this.words = new Int32Array(buffer);
    this.mask = this.capacityBytes - 1;
    this.readIndex = Atomics.load(this.words, READ_INDEX);
    this.cachedWriteIndex = this.readIndex;
  }

  /** Whether a frame is published and not yet read. */
  hasData(): boolean {
    return this.availableBytes(0) > 0;
  }

  /**
   * Calls `handler` with a view of every published frame, up to `framesMax`, oldest first;
   * returns how many. Each view is valid only during its call. The form for a decoder that
   * takes a Uint8Array (one view per frame); see {@link drainRanges} for when space is
   * released, also after a throwing handler's frame (a frame that cannot be decoded now
   * cannot be decoded later either).
   */
  drain(handler: (view: Uint8Array) => void, framesMax = Number.POSITIVE_INFINITY): number {
    const buffer = this.memory.buffer;
    return this.drainRanges((_memory, offsetBytes, lengthBytes) => handler(new Uint8Array(buffer, offsetBytes, lengthBytes)), framesMax);
  }

  /**
   * Like {@link drain}, but hands each frame over as a range of {@link memory}, the whole
   * ring buffer, without making a view: payload bytes [offsetBytes, offsetBytes + lengthBytes).
   * For decoders that read at an offset. Space is released once for the whole batch (and
   * after a throwing handler's frame), or every quarter of the capacity in a long batch, so
   * that a full ring refills early.
   */
  drainRanges(handler: (memory: Uint8Array, offsetBytes: number, lengthBytes: number) => void, framesMax = Number.POSITIVE_INFINITY): number {
    if (this.inHandler) fail('no read of the ring from inside its read handler');
    const releaseBytesMin = this.capacityBytes >> 2;
    let frames = 0;
    let releaseBytes = 0;
    this.inHandler = true;
    try {
      while (frames < framesMax && this.nextFrame(releaseBytes)) {
        releaseBytes += this.frameAdvanceBytes;
        frames++;
        handler(this.memory, this.frameOffsetBytes, this.frameLengthBytes);
        if (releaseBytes >= releaseBytesMin) {
          this.advance(releaseBytes);
          releaseBytes = 0;
        }
      }
    } finally {
      this.inHandler = false;
      if (releaseBytes > 0) this.advance(releaseBytes);
    }
    return frames;
  }

  /**
   * A copy of the next frame (in ordinary memory), released from the ring; or undefined if
   * the ring is empty. For a caller that keeps the frame past the call (a tool, a test); it
   * allocates, so hot paths use {@link drainRanges}.
   */
  tryPop(): Uint8Array | undefined {
    let copy: Uint8Array | undefined;
    this.drainRanges((memory, offsetBytes, lengthBytes) => {
      copy = memory.slice(offsetBytes, offsetBytes + lengthBytes);
    }, 1);
    return copy;
  }

  /**
   * Blocks in `Atomics.wait` until a frame is published (true) or `timeoutMs` passes
   * (false); returns at once if one is already there. For a worker thread that consumes
   * this one ring (the ring benchmark's receiver, say); a thread that consumes many rings,
   * as every runtime thread does, sleeps on a {@link Doorbell} instead. Never on the main
   * thread.
   */
  waitForData(timeoutMs: number): boolean {
    checkTimeout(timeoutMs);
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const observed = Atomics.load(this.words, WRITE_INDEX);
      Atomics.store(this.words, CONSUMER_WAITING, 1);
      // Checked after the flag is up: a publish from now on will notify (see "Waking").
      if (this.hasData()) break;
      const waitMs = remainingMs(deadline);
      if (waitMs === 0) break;
      Atomics.wait(this.words, WRITE_INDEX, observed, waitMs);
    }
    Atomics.store(this.words, CONSUMER_WAITING, 0);
    return this.hasData();
  }

  /**
   * Published bytes past the read position plus `skipBytes` (bytes a drain has read but not
   * yet released); reloads the producer's index only when the cached one is used up.
   */
  private availableBytes(skipBytes: number): number {
    const cachedBytes = ((this.cachedWriteIndex - this.readIndex) | 0) - skipBytes;
    if (cachedBytes > 0) return cachedBytes;
    const writeIndex = Atomics.load(this.words, WRITE_INDEX);
    const publishedBytes = (writeIndex - this.readIndex) | 0;
    // The producer's index is data from another thread: check it before trusting it.
    if (publishedBytes < skipBytes || publishedBytes > this.capacityBytes || (writeIndex & (FRAME_ALIGN_BYTES - 1)) !== 0) {
      throw new RingError(
        RingErrorCode.CORRUPT_RING,
        `ring write index ${writeIndex >>> 0} is inconsistent with read index ${this.readIndex >>> 0} (capacity ${this.capacityBytes})`,
      );
    }
    this.cachedWriteIndex = writeIndex;
    return publishedBytes - skipBytes;
  }

  /**
   * Finds the frame `skipBytes` past the read position (bytes a drain has read but not yet
   * released), checks its header, and sets frameOffsetBytes, frameLengthBytes and
   * frameAdvanceBytes. False if no frame is published there.
   */
  private nextFrame(skipBytes = 0): boolean {
    let availableBytes = this.availableBytes(skipBytes);
    if (availableBytes === 0) return false;
    let position = (this.readIndex + skipBytes) & this.mask;
    let advanceBytes = 0;
    let word0 = this.words[DATA_WORD + (position >> 2)]!;
    let word1 = this.words[DATA_WORD + (position >> 2) + 1]!;
    if ((word0 ^ word1) === WRAP_MAGIC) {
      const wrapBytes = word0;
      // A wrap header runs to the end exactly and is always published with a frame after it.
      if (wrapBytes !== this.capacityBytes - position || wrapBytes >= availableBytes) {
        throw this.corrupt(position, `wrap header of ${wrapBytes} bytes, ${this.capacityBytes - position} to the end, ${availableBytes} published`);
      }
      advanceBytes = wrapBytes;
      availableBytes -= wrapBytes;
      position = 0;
      word0 = this.words[DATA_WORD]!;
      word1 = this.words[DATA_WORD + 1]!;
    }
    if ((word0 ^ word1) !== FRAME_MAGIC) {
      throw this.corrupt(position, `header words ${hex(word0)} ${hex(word1)} are not a frame header`);
    }
    const lengthBytes = word0;
    if (lengthBytes < 0 || lengthBytes > this.frameBytesMax) {
      throw this.corrupt(position, `frame length ${lengthBytes >>> 0} exceeds the maximum ${this.frameBytesMax}`);
    }
    const totalBytes = frameTotalBytes(lengthBytes);
    if (totalBytes > availableBytes || position + totalBytes > this.capacityBytes) {
      throw this.corrupt(position, `frame of ${totalBytes} bytes overruns the ${availableBytes} published bytes or the data end`);
    }
    this.frameOffsetBytes = RING_CONTROL_BYTES + position + RING_FRAME_HEADER_BYTES;
    this.frameLengthBytes = lengthBytes;
    this.frameAdvanceBytes = advanceBytes + totalBytes;
    return true;
  }

  /** Releases `bytes` to the producer, waking it if it sleeps on a full ring. */
  private advance(bytes: number): void {
    this.readIndex = (this.readIndex + bytes) | 0;
    Atomics.store(this.words, READ_INDEX, this.readIndex);
    if (Atomics.load(this.words, PRODUCER_WAITING) !== 0) Atomics.notify(this.words, READ_INDEX);
  }

  private corrupt(position: number, what: string): RingError {
    return new RingError(RingErrorCode.CORRUPT_RING, `corrupt ring at data byte ${position} (read index ${this.readIndex >>> 0}): ${what}`);
  }
}

function hex(x: number): string {
  return `0x${(x >>> 0).toString(16).padStart(8, '0')}`;
}

const DOORBELL_MAGIC = 0x44_4f_4f_52; // "DOOR"
const DOORBELL_BYTES = 16;
const BELL_MAGIC = 0;
/** Counts rings of the bell while someone waits; waiters sleep on it. */
const BELL_SEQUENCE = 1;
/** How many threads are between announcing a wait and ending it. */
const BELL_WAITERS = 2;
/**
 * 1 once a ring has notified the waiters and they have not yet looked again: further rings
 * until then skip the `Atomics.notify` system call (a busy producer publishes many times
 * while its consumer is waking up). A waiter clears it before each look at its predicate.
 */
const BELL_PENDING = 3;

/**
 * One wake-up word that many rings share, so that a thread consuming many inbound rings
 * sleeps on one word: producers made with `{ doorbell }` ring it after every publish, and
 * the consumer waits on it with a predicate that looks at all its rings.
 *
 * ```
 *  Int32 word  0        1            2         3
 *            ┌────────┬────────────┬─────────┬─────────┐
 *            │ magic  │ sequence   │ waiters │ pending │
 *            └────────┴────────────┴─────────┴─────────┘
 * ```
 *
 * A waiter counts itself in `waiters`, reads `sequence`, checks its predicate, and sleeps
 * on `sequence` only if the predicate is false. A ring after a publish bumps `sequence`
 * and notifies only if `waiters` is non-zero, so ringing an unwatched bell costs one load.
 * The publish precedes that load, and the waiter's count precedes its predicate, so either
 * the waiter sees the frame or the producer sees the waiter (Atomics are sequentially
 * consistent), and a bumped `sequence` makes a late `Atomics.wait` return at once.
 *
 * `pending` saves the system call of redundant rings: the first ring after a waiter's look
 * sets it and notifies; later rings see it set and return. That is safe because the waiter
 * clears it before it reads `sequence` and checks its predicate. A ring that finds it set
 * either came after the clear, and then the ring that set it bumps `sequence` (so the wait
 * on the value read after the clear returns at once), or came before the clear, and then its
 * publish precedes the predicate check, which sees the frame.
 */
export class Doorbell {
  readonly buffer: SharedArrayBuffer;
  private readonly words: Int32Array;

  /** Wraps a doorbell made by {@link Doorbell.create} (in another thread, say). */
  constructor(buffer: SharedArrayBuffer) {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength !== DOORBELL_BYTES) {
      throw new RingError(RingErrorCode.INVALID_BUFFER, 'not a doorbell: expected a SharedArrayBuffer from Doorbell.create');
    }
    this.words = new Int32Array(buffer);
    if (Atomics.load(this.words, BELL_MAGIC) !== DOORBELL_MAGIC) {
      throw new RingError(RingErrorCode.INVALID_BUFFER, 'not a doorbell: bad magic');
    }
    this.buffer = buffer;
  }

  static create(): Doorbell {
    const buffer = new SharedArrayBuffer(DOORBELL_BYTES);
    Atomics.store(new Int32Array(buffer), BELL_MAGIC, DOORBELL_MAGIC);
    return new Doorbell(buffer);
  }

  /** Wakes the waiters, if any. Producers with this doorbell call it after each publish. */
  ring(): void {
    if (Atomics.load(this.words, BELL_WAITERS) === 0) return;
    if (Atomics.exchange(this.words, BELL_PENDING, 1) === 1) return;
    Atomics.add(this.words, BELL_SEQUENCE, 1);
    Atomics.notify(this.words, BELL_SEQUENCE);
  }

  /**
   * Blocks in `Atomics.wait` until `isReady()` is true (true) or `timeoutMs` passes
   * (false). `isReady` must look only at things whose producers ring this bell after they
   * change them (e.g. `() => rings.some((r) => r.hasData())`); it is called again after
   * every wake-up, so a spurious wake-up costs one check.
   */
  wait(timeoutMs: number, isReady: () => boolean): boolean {
    checkTimeout(timeoutMs);
    const deadline = performance.now() + timeoutMs;
    Atomics.add(this.words, BELL_WAITERS, 1);
    try {
      for (;;) {
        const observed = this.look(isReady);
        if (observed === undefined) return true;
        const waitMs = remainingMs(deadline);
        if (waitMs === 0) return false;
        Atomics.wait(this.words, BELL_SEQUENCE, observed, waitMs);
      }
    } finally {
      Atomics.sub(this.words, BELL_WAITERS, 1);
    }
  }

  /** Like {@link wait}, but never blocks the thread: for the main thread. */
  async waitAsync(timeoutMs: number, isReady: () => boolean): Promise<boolean> {
    checkTimeout(timeoutMs);
    const deadline = performance.now() + timeoutMs;
    Atomics.add(this.words, BELL_WAITERS, 1);
    try {
      for (;;) {
        const observed = this.look(isReady);
        if (observed === undefined) return true;
        const waitMs = remainingMs(deadline);
        if (waitMs === 0) return false;
        await waitWordAsync(this.words, BELL_SEQUENCE, observed, waitMs);
      }
    } finally {
      Atomics.sub(this.words, BELL_WAITERS, 1);
    }
  }

  /**
   * A waiter's look, in the order the protocol above needs: clear `pending`, read
   * `sequence`, check the predicate. Undefined if ready; else the sequence value to sleep on.
   */
  private look(isReady: () => boolean): number | undefined {
    Atomics.store(this.words, BELL_PENDING, 0);
    const observed = Atomics.load(this.words, BELL_SEQUENCE);
    return isReady() ? undefined : observed;
  }
}
