/**
 * How call arguments become bytes (src/cluster/client-args.ts): a string is its UTF-8,
 * whichever way it is encoded (a loop for short ASCII, TextEncoder otherwise), and one
 * holding a lone surrogate is refused, never silently changed. A read's key may go out as
 * the string itself (outgoingKey, an AsciiKey): its request frame is byte for byte the one its
 * UTF-8 makes, and what it refuses is what keyBytes refuses. A put goes out the same way
 * (writeKvPut), byte for byte the request writeKvRequest makes of its command.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isWellFormed, keyBytes, outgoingKey, valueBytes } from '../../src/cluster/client-args.ts';
import { ByteWriter } from '../../src/codec/index.ts';
import { encodedKvPutBytes, encodedKvRequestBytes, writeKvPut, writeKvRequest } from '../../src/kv/index.ts';
import { encodedRequestBytes, writeRequestTo, type OutgoingRequest } from '../../src/runtime/index.ts';
import { ErrorCode } from '../../src/index.ts';
import { expectCode } from '../core/helpers/errors.ts';

const utf8 = new TextEncoder();

const stringArb = fc.oneof(
      fc.string({ minLength: 1, maxLength: 80, unit: fc.constantFrom(...'ak09 ~\x7f\x00') }),
      // Mostly ASCII, with the first code points past it (Latin-1, two bytes each), and wider ones.
      fc.string({ minLength: 1, maxLength: 80, unit: fc.constantFrom(...Array.from('aaaaz\x7f\x80\u00e9\u00ff\u0100\u20ac\u{1f600}')) }),
      fc.string({ minLength: 1, maxLength: 80, unit: 'grapheme' }),
      fc.string({ minLength: 1, maxLength: 80, unit: 'binary' }).filter(isWellFormed),
    );

describe('string arguments', () => {
  it('are their UTF-8, ASCII or not, short or long', () => {
    fc.assert(
      fc.property(stringArb, (s) => {
        expect(keyBytes(s)).toEqual(utf8.encode(s));
        expect(valueBytes(s, 'value')).toEqual(utf8.encode(s));
      }),
      { numRuns: 2000 },
    );
  });

  it('holding a lone surrogate are refused, short or long', () => {
    for (const s of ['a\uD800', '\uDC00', 'k'.repeat(70) + '\uD83D']) {
      expect(expectCode(() => keyBytes(s), ErrorCode.INVALID_ARGUMENT).message).toMatch(/lone surrogate/);
    }
  });
});

/** The request frame of a linearizable read of `key`, with request id 7. */
function readFrame(key: (OutgoingRequest & { kind: 'read' })['key']): Uint8Array {
  const req: OutgoingRequest = { kind: 'read', requestId: 7, consistency: 'linearizable', key };
  const w = new ByteWriter(encodedRequestBytes(req));
  writeRequestTo(w, req);
  return w.finish();
}

describe('a read key as it goes out', () => {
  it('makes the frame its UTF-8 makes, whether it goes as a string or as bytes', () => {
    fc.assert(
      fc.property(fc.oneof(stringArb, fc.constantFrom('k', 'a'.repeat(64), 'a'.repeat(65), 'é', '\x7f\x80')), (s) => {
        const key = outgoingKey(s);
        expect(readFrame(key)).toEqual(readFrame(utf8.encode(s)));
        // A string goes as it is only when it is short ASCII.
        expect(typeof key === 'string').toBe(s.length <= 64 && /^[\x00-\x7f]+$/.test(s));
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses what keyBytes refuses: empty, lone surrogates, over the limit, not a string or bytes', () => {
    for (const bad of ['', 'a\uD800', 'k'.repeat(5000), 42, undefined]) {
      const expected = expectCode(() => keyBytes(bad as string), ErrorCode.INVALID_ARGUMENT).message;
      expect(expectCode(() => outgoingKey(bad as string), ErrorCode.INVALID_ARGUMENT).message).toBe(expected);
    }
    const bytes = Uint8Array.of(1, 2, 3);
    expect(outgoingKey(bytes)).toBe(bytes);
  });
});

describe('a put as it goes out', () => {
  it('is the request writeKvRequest makes of its command, whether the key goes as a string or as bytes', () => {
    fc.assert(
      fc.property(stringArb, fc.uint8Array({ maxLength: 300 }), fc.option(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), { nil: undefined }), (s, value, lease) => {
        const key = outgoingKey(s);
        const put = new ByteWriter(encodedKvPutBytes(key.length, value.length, lease));
        writeKvPut(put, key, value, lease);
        const command = { op: 'put' as const, key: utf8.encode(s), value, lease };
        const expected = new ByteWriter(encodedKvRequestBytes(command));
        writeKvRequest(expected, { clientId: 1, seq: 1, command });
        expect(put.remainingBytes).toBe(0);
        expect(put.finish()).toEqual(expected.finish());
      }),
      { numRuns: 1000 },
    );
  });
});
