/** Helpers for the ring tests: typed-error checks and access to the documented layout. */
import { expect } from 'vitest';
import { RING_CONTROL_BYTES, RingError, type RingErrorCode } from '../../src/transport/index.ts';
import { caught } from '../core/helpers/errors.ts';

export { caught };

/** Int32 word of `writeIndex`: byte 128 of the control block (ring.ts, "Buffer layout"). */
export const WRITE_INDEX_WORD = 128 / 4;
/** Int32 word of `readIndex`: byte 256 of the control block. */
export const READ_INDEX_WORD = 256 / 4;
/** Int32 word of `consumerWaiting`, right after `readIndex`. */
export const CONSUMER_WAITING_WORD = READ_INDEX_WORD + 1;
/** Int32 word of `producerWaiting`, right after `writeIndex`. */
export const PRODUCER_WAITING_WORD = WRITE_INDEX_WORD + 1;

/** Asserts that `fn` throws a RingError with `code`, and returns it. */
export function expectRingCode(fn: () => unknown, code: RingErrorCode): RingError {
  const error = caught(fn);
  expect(error).toBeInstanceOf(RingError);
  expect((error as RingError).code).toBe(code);
  return error as RingError;
}

/**
 * Sets both indices of a fresh ring to `index` (a multiple of 8, taken modulo 2^32), so
 * that a test can start just below the point where the 32-bit counters wrap. Call before
 * the producer and consumer are made.
 */
export function setRingIndices(buffer: SharedArrayBuffer, index: number): void {
  const words = new Int32Array(buffer, 0, RING_CONTROL_BYTES / 4);
  Atomics.store(words, WRITE_INDEX_WORD, index | 0);
  Atomics.store(words, READ_INDEX_WORD, index | 0);
}

/** Int32 view of the data region's header word at data byte `position`. */
export function dataWords(buffer: SharedArrayBuffer): Int32Array {
  return new Int32Array(buffer, RING_CONTROL_BYTES);
}

/** `length` bytes whose values derive from `seed`, so that a mix-up of frames shows. */
export function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

/** Bytes a frame of `lengthBytes` takes in a ring: an 8-byte header, the payload, aligned to 8. */
export function frameTotalBytes(lengthBytes: number): number {
  return Math.ceil((8 + lengthBytes) / 8) * 8;
}
