// Proves that ByteWriter and ByteReader agree on a little-endian layout (fixed examples plus
// fast-check round trips of random field sequences), and that the reader refuses bad input
// with a typed DecodeError: every truncation, a length prefix over its maximum (before
// slicing anything), a u64 above 2^53 - 1 read as a number, and trailing bytes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter, DecodeError, U32_MAX, U64_MAX } from '../../src/codec/index.ts';
import type { DecodeErrorReason } from '../../src/codec/index.ts';

type Field =
  | { kind: 'u8'; value: number }
  | { kind: 'u32'; value: number }
  | { kind: 'u64'; value: bigint }
  | { kind: 'u64Number'; value: number }
  | { kind: 'bytes'; value: Uint8Array };

const fieldArb: fc.Arbitrary<Field> = fc.oneof(
  fc.integer({ min: 0, max: 0xff }).map((value) => ({ kind: 'u8' as const, value })),
  fc.integer({ min: 0, max: U32_MAX }).map((value) => ({ kind: 'u32' as const, value })),
  fc.bigInt({ min: 0n, max: U64_MAX }).map((value) => ({ kind: 'u64' as const, value })),
  fc.maxSafeNat().map((value) => ({ kind: 'u64Number' as const, value })),
  fc.uint8Array({ maxLength: 40 }).map((value) => ({ kind: 'bytes' as const, value })),
);

function fieldBytes(field: Field): number {
  switch (field.kind) {
    case 'u8':
      return 1;
    case 'u32':
      return 4;
    case 'u64':
    case 'u64Number':
      return 8;
    case 'bytes':
      return 4 + field.value.length;
  }
}

function writeFields(fields: readonly Field[]): Uint8Array {
  const writer = new ByteWriter(fields.reduce((sum, field) => sum + fieldBytes(field), 0));
  for (const field of fields) {
    switch (field.kind) {
      case 'u8':
        writer.u8(field.value);
        break;
      case 'u32':
        writer.u32(field.value);
        break;
      case 'u64':
        writer.u64(field.value);
        break;
      case 'u64Number':
        writer.u64Number(field.value);
        break;
      case 'bytes':
        writer.bytes(field.value);
        break;
    }
  }
  expect(writer.offset).toBe(writer.capacityBytes);
  return writer.finish();
}

function readFields(bytes: Uint8Array, shape: readonly Field[]): Field[] {
  const reader = new ByteReader(bytes);
  const fields = shape.map((field): Field => {
    switch (field.kind) {
      case 'u8':
        return { kind: 'u8', value: reader.u8() };
      case 'u32':
        return { kind: 'u32', value: reader.u32() };
      case 'u64':
        return { kind: 'u64', value: reader.u64() };
      case 'u64Number':
        return { kind: 'u64Number', value: reader.u64Number() };
      case 'bytes':
        return { kind: 'bytes', value: reader.bytes(40) };
    }
  });
  reader.expectEnd();
  return fields;
}

function decodeErrorOf(run: () => unknown): DecodeError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(DecodeError);
    return error as DecodeError;
  }
  throw new Error('expected a DecodeError, but nothing was thrown');
}

function expectDecodeError(run: () => unknown, reason: DecodeErrorReason): void {
  const error = decodeErrorOf(run);
  expect(error.code).toBe('DECODE_ERROR');
  expect(error.reason).toBe(reason);
}

describe('ByteWriter and ByteReader', () => {
  it('write little-endian fields at the documented offsets', () => {
    const writer = new ByteWriter(1 + 4 + 8 + 8 + 4 + 2);
    writer.u8(0xab);
    writer.u32(0x0102_0304);
    writer.u64(0x0102_0304_0506_0708n);
    writer.u64Number(Number.MAX_SAFE_INTEGER);
    writer.bytes(Uint8Array.of(9, 8));
    expect([...writer.finish()]).toEqual([
      0xab,
      0x04, 0x03, 0x02, 0x01,
      0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0x00,
      0x02, 0x00, 0x00, 0x00,
      9, 8,
    ]);
  });

  it('round-trip random field sequences exactly', () => {
    fc.assert(
      fc.property(fc.array(fieldArb, { maxLength: 20 }), (fields) => {
        expect(readFields(writeFields(fields), fields)).toEqual(fields);
      }),
    );
  });

  it('read from a view that does not start at offset 0 of its buffer', () => {
    const backing = new Uint8Array(16);
    backing.set([0x78, 0x56, 0x34, 0x12], 5);
    expect(new ByteReader(backing.subarray(5, 9)).u32()).toBe(0x1234_5678);
  });

  it('write into given memory, and finish() returns only what was written', () => {
    const slot = new Uint8Array(10);
    const writer = new ByteWriter(slot.subarray(2));
    writer.u8(7);
    writer.u32(1);
    expect(writer.finish()).toEqual(Uint8Array.of(7, 1, 0, 0, 0));
    expect(slot[2]).toBe(7);
  });
});

describe('ByteReader refuses bad input', () => {
  it('throws truncated at every prefix length of a valid encoding', () => {
    fc.assert(
      fc.property(fc.array(fieldArb, { minLength: 1, maxLength: 8 }), (fields) => {
        const bytes = writeFields(fields);
        for (let length = 0; length < bytes.length; length++) {
          expectDecodeError(() => readFields(bytes.subarray(0, length), fields), 'truncated');
        }
      }),
    );
  });

  it('checks a length prefix against its maximum before anything else', () => {
    // A length of 2^32 - 1 with a 4-byte input: the maximum check fires first, and no
    // slice of that length is ever attempted.
    const huge = Uint8Array.of(0xff, 0xff, 0xff, 0xff);
    const error = decodeErrorOf(() => new ByteReader(huge).bytes(4096));
    expect(error.reason).toBe('length_over_max');
    expect(error.offset).toBe(0);
    expect(decodeErrorOf(() => new ByteReader(Uint8Array.of(5, 0, 0, 0, 1, 2)).bytes(4)).reason).toBe('length_over_max');
  });

  it('accepts a length exactly at its maximum, and reports truncation when the bytes are missing', () => {
    expect(new ByteReader(Uint8Array.of(2, 0, 0, 0, 1, 2)).bytes(2)).toEqual(Uint8Array.of(1, 2));
    expectDecodeError(() => new ByteReader(Uint8Array.of(3, 0, 0, 0, 1, 2)).bytes(3), 'truncated');
  });

  it('refuses a u64 above Number.MAX_SAFE_INTEGER when a number is asked for', () => {
    const writer = new ByteWriter(8);
    writer.u64(BigInt(Number.MAX_SAFE_INTEGER) + 1n);
    expectDecodeError(() => new ByteReader(writer.finish()).u64Number(), 'out_of_range');
    expect(new ByteReader(writer.finish()).u64()).toBe(2n ** 53n);
  });

  it('refuses trailing bytes', () => {
    const reader = new ByteReader(Uint8Array.of(1, 2));
    reader.u8();
    expectDecodeError(() => reader.expectEnd(), 'trailing_bytes');
  });
});

describe('ByteWriter crashes on programmer errors', () => {
  it('throws a plain Error, not a DecodeError, on overflow or out-of-range values', () => {
    const cases: (() => void)[] = [
      () => new ByteWriter(3).u32(1),
      () => new ByteWriter(1).u8(256),
      () => new ByteWriter(4).u32(-1),
      () => new ByteWriter(4).u32(U32_MAX + 1),
      () => new ByteWriter(8).u64Number(Number.MAX_SAFE_INTEGER + 1),
      () => new ByteWriter(8).u64(U64_MAX + 1n),
    ];
    for (const run of cases) {
      let thrown: unknown;
      try {
        run();
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(Error);
      expect(thrown).not.toBeInstanceOf(DecodeError);
      expect((thrown as Error).message).toMatch(/^assertion failed/);
    }
  });
});
