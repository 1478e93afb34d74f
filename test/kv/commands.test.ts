// Proves that the KV request codec round-trips every valid request exactly (fast-check over
// random requests, register-clients among them, including the limits: client ids up to
// 2^53 - 1), that it still reads the format of earlier builds (u32 client ids), that encode
// refuses requests outside the limits with INVALID_ARGUMENT, and that decode refuses every
// malformed input with CORRUPT_COMMAND wrapping a DecodeError: each truncation, trailing
// bytes, unknown version/op/flag, zero ids and counts, and lengths over the maxima (checked
// before any allocation), and never throws anything else on random bytes. The in-place put
// reader (the state machine's fast path) accepts exactly what decode reads as a plain put,
// with the same fields, on valid and mutated bytes at any offset.
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../src/codec/index.ts';
import type { DecodeErrorReason } from '../../src/codec/index.ts';
import {
  decodeKvRequest,
  decodeKvRequestInPlace,
  encodeKvRequest,
  readKvPutInPlace,
  isKvRegisterClientsRequest,
  isKvSessionRequest,
  KV_KEY_BYTES_MAX,
  KV_REGISTER_CLIENTS_COUNT_MAX,
  KV_REGISTER_CLIENTS_REQUEST_BYTES,
  KV_VALUE_BYTES_MAX,
  KvError,
  setKvRequestSession,
} from '../../src/kv/index.ts';
import type { KvCommand, KvErrorCode, KvLogRequest, KvPutFields, KvRegisterClientsRequest, KvRequest } from '../../src/kv/index.ts';

const keyArb = fc.uint8Array({ minLength: 1, maxLength: 64 });
const valueArb = fc.uint8Array({ maxLength: 64 });
const commandArb: fc.Arbitrary<KvCommand> = fc.oneof(
  fc.record({ op: fc.constant('put' as const), key: keyArb, value: valueArb }),
  fc.record({ op: fc.constant('delete' as const), key: keyArb }),
  fc.record({ op: fc.constant('cas' as const), key: keyArb, expected: fc.option(valueArb, { nil: undefined }), value: valueArb }),
  fc.record({ op: fc.constant('delete-range' as const), key: fc.uint8Array({ maxLength: 64 }), end: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }) }),
);
const sessionRequestArb: fc.Arbitrary<KvRequest> = fc.record({
  clientId: fc.oneof(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom(1, 0xffff_ffff, 2 ** 32, Number.MAX_SAFE_INTEGER)),
  seq: fc.oneof(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom(1, Number.MAX_SAFE_INTEGER)),
  command: commandArb,
});
const registerArb: fc.Arbitrary<KvRegisterClientsRequest> = fc.record({
  op: fc.constant('register-clients' as const),
  count: fc.oneof(fc.integer({ min: 1, max: KV_REGISTER_CLIENTS_COUNT_MAX }), fc.constantFrom(1, 4096, KV_REGISTER_CLIENTS_COUNT_MAX)),
});
const requestArb: fc.Arbitrary<KvLogRequest> = fc.oneof({ weight: 4, arbitrary: sessionRequestArb }, { weight: 1, arbitrary: registerArb });

function kvErrorOf(run: () => unknown): KvError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(KvError);
    return error as KvError;
  }
  throw new Error('expected a KvError, but nothing was thrown');
}

function expectKvError(run: () => unknown, code: KvErrorCode): KvError {
  const error = kvErrorOf(run);
  expect(error.code).toBe(code);
  return error;
}

function expectCorrupt(bytes: Uint8Array, reason?: DecodeErrorReason): void {
  const error = expectKvError(() => decodeKvRequest(bytes), 'CORRUPT_COMMAND');
  expect(error.cause).toBeInstanceOf(DecodeError);
  if (reason !== undefined) expect((error.cause as DecodeError).reason).toBe(reason);
}

const sample: KvRequest = {
  clientId: 7,
  seq: 3,
  command: { op: 'cas', key: Uint8Array.of(1, 2), expected: Uint8Array.of(3), value: Uint8Array.of(4, 5) },
};

describe('encodeKvRequest / decodeKvRequest', () => {
  it('lays out the documented format', () => {
    expect([...encodeKvRequest(sample)]).toEqual([
      3, // version
      3, // op cas
      7, 0, 0, 0, 0, 0, 0, 0, // clientId
      3, 0, 0, 0, 0, 0, 0, 0, // seq
      2, 0, 0, 0, 1, 2, // key
      1, // expected present
      1, 0, 0, 0, 3, // expected
      2, 0, 0, 0, 4, 5, // value
    ]);
    const register = encodeKvRequest({ op: 'register-clients', count: 4096 });
    expect([...register]).toEqual([
      3, // version
      4, // op register-clients
      0, 0x10, 0, 0, // count
    ]);
    expect(register.length).toBe(KV_REGISTER_CLIENTS_REQUEST_BYTES);
  });

  it('carries client ids above 2^32 (up to 2^53 - 1) whole', () => {
    for (const clientId of [2 ** 32, 2 ** 32 + 1, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER]) {
      const req: KvRequest = { clientId, seq: 1, command: { op: 'delete', key: Uint8Array.of(1) } };
      expect(decodeKvRequest(encodeKvRequest(req))).toEqual(req);
    }
  });

  it('reads requests in the format of earlier builds (version 1, u32 client ids)', () => {
    const v1 = Uint8Array.of(
      1, // version
      3, // op cas
      7, 0, 0, 0, // clientId (u32)
      3, 0, 0, 0, 0, 0, 0, 0, // seq
      2, 0, 0, 0, 1, 2, // key
      1, // expected present
      1, 0, 0, 0, 3, // expected
      2, 0, 0, 0, 4, 5, // value
    );
    expect(decodeKvRequest(v1)).toEqual(sample);
    // Version 1 knows no register-clients.
    expectCorrupt(Uint8Array.of(1, 4, 0, 0x10, 0, 0), 'invalid');
  });

  it('tells register-clients requests from session requests', () => {
    expect(isKvRegisterClientsRequest({ op: 'register-clients', count: 1 })).toBe(true);
    expect(isKvRegisterClientsRequest(sample)).toBe(false);
  });

  it('round-trips random requests exactly', () => {
    fc.assert(
      fc.property(requestArb, (req) => {
        expect(decodeKvRequest(encodeKvRequest(req))).toEqual(req);
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips a key and values at their maxima', () => {
    const req: KvRequest = {
      clientId: 1,
      seq: 1,
      command: {
        op: 'cas',
        key: new Uint8Array(KV_KEY_BYTES_MAX).fill(1),
        expected: new Uint8Array(KV_VALUE_BYTES_MAX).fill(2),
        value: new Uint8Array(KV_VALUE_BYTES_MAX).fill(3),
      },
    };
    const decoded = decodeKvRequest(encodeKvRequest(req));
    if (!isKvSessionRequest(decoded)) throw new Error('decoded a request without a session');
    // Compared with Buffer.equals: a deep toEqual over megabytes is needlessly slow.
    expect(decoded.command.op).toBe('cas');
    if (decoded.command.op !== 'cas' || req.command.op !== 'cas') return;
    expect(Buffer.from(decoded.command.key).equals(req.command.key)).toBe(true);
    expect(Buffer.from(decoded.command.expected!).equals(req.command.expected!)).toBe(true);
    expect(Buffer.from(decoded.command.value).equals(req.command.value)).toBe(true);
  });

  it('decodes copies that do not alias the input bytes', () => {
    const bytes = encodeKvRequest({ clientId: 1, seq: 1, command: { op: 'put', key: Uint8Array.of(1), value: Uint8Array.of(2) } });
    const req = decodeKvRequest(bytes);
    bytes.fill(0);
    expect(req).toMatchObject({ command: { op: 'put', key: Uint8Array.of(1), value: Uint8Array.of(2) } });
  });
});

describe('encodeKvRequest refuses requests outside the limits', () => {
  const put = (key: Uint8Array, value: Uint8Array): KvCommand => ({ op: 'put', key, value });
  const ok = put(Uint8Array.of(1), Uint8Array.of());
  const cases: [string, KvLogRequest][] = [
    ['an empty key', { clientId: 1, seq: 1, command: put(new Uint8Array(0), Uint8Array.of()) }],
    ['a key over the maximum', { clientId: 1, seq: 1, command: put(new Uint8Array(KV_KEY_BYTES_MAX + 1), Uint8Array.of()) }],
    ['a value over the maximum', { clientId: 1, seq: 1, command: put(Uint8Array.of(1), new Uint8Array(KV_VALUE_BYTES_MAX + 1)) }],
    [
      'an expected value over the maximum',
      {
        clientId: 1,
        seq: 1,
        command: { op: 'cas', key: Uint8Array.of(1), expected: new Uint8Array(KV_VALUE_BYTES_MAX + 1), value: Uint8Array.of() },
      },
    ],
    ['clientId 0', { clientId: 0, seq: 1, command: ok }],
    ['clientId 2^53', { clientId: 2 ** 53, seq: 1, command: ok }],
    ['a negative clientId', { clientId: -1, seq: 1, command: ok }],
    ['a fractional clientId', { clientId: 1.5, seq: 1, command: ok }],
    ['seq 0', { clientId: 1, seq: 0, command: ok }],
    ['a fractional seq', { clientId: 1, seq: 1.5, command: ok }],
    ['seq 2^53', { clientId: 1, seq: 2 ** 53, command: ok }],
    ['an unknown op', { clientId: 1, seq: 1, command: { op: 'nope', key: Uint8Array.of(1) } as unknown as KvCommand }],
    ['a key that is not bytes', { clientId: 1, seq: 1, command: put('k' as unknown as Uint8Array, Uint8Array.of()) }],
    ['a registration of 0 ids', { op: 'register-clients', count: 0 }],
    ['a registration over KV_REGISTER_CLIENTS_COUNT_MAX', { op: 'register-clients', count: KV_REGISTER_CLIENTS_COUNT_MAX + 1 }],
    ['a registration of a fractional count', { op: 'register-clients', count: 1.5 }],
  ];
  it.each(cases)('refuses %s with INVALID_ARGUMENT', (_, req) => {
    expectKvError(() => encodeKvRequest(req), 'INVALID_ARGUMENT');
  });
});

describe('decodeKvRequest refuses malformed input', () => {
  it('refuses every truncation of random valid requests', () => {
    fc.assert(
      fc.property(requestArb, (req) => {
        const bytes = encodeKvRequest(req);
        for (let length = 0; length < bytes.length; length++) {
          expectCorrupt(bytes.subarray(0, length), 'truncated');
        }
      }),
      { numRuns: 100 },
    );
  });

  it('refuses trailing bytes', () => {
    const bytes = encodeKvRequest(sample);
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expectCorrupt(longer, 'trailing_bytes');
  });

  it('refuses an unknown version, an unknown op, zero ids and a bad expected flag', () => {
    const patched = (offset: number, value: number): Uint8Array => {
      const bytes = encodeKvRequest(sample);
      bytes[offset] = value;
      return bytes;
    };
    expectCorrupt(patched(0, 2), 'invalid'); // version (2 is a batch, not a request)
    expectCorrupt(patched(0, 4), 'invalid');
    expectCorrupt(patched(0, 0), 'invalid');
    expectCorrupt(patched(1, 0), 'invalid'); // op
    expectCorrupt(patched(1, 6), 'invalid');
    expectCorrupt(patched(2, 0), 'invalid'); // clientId 7 -> 0
    expectCorrupt(patched(9, 0x20), 'out_of_range'); // clientId above 2^53 - 1
    expectCorrupt(patched(10, 0), 'invalid'); // seq 3 -> 0
    expectCorrupt(patched(24, 2), 'invalid'); // expected-present flag
    expectCorrupt(patched(17, 0x20), 'out_of_range'); // seq above 2^53 - 1
  });

  it('carries a delete-range: an empty start, an end or none; refuses a bad end flag, and a delete-range in the u32-id format', () => {
    const range = (key: Uint8Array, end: Uint8Array | undefined): Uint8Array => encodeKvRequest({ clientId: 7, seq: 3, command: { op: 'delete-range', key, end } });
    expect(decodeKvRequest(range(new Uint8Array(), undefined))).toEqual({ clientId: 7, seq: 3, command: { op: 'delete-range', key: new Uint8Array(), end: undefined } });
    expect(decodeKvRequest(range(Uint8Array.of(1), Uint8Array.of(2)))).toEqual({ clientId: 7, seq: 3, command: { op: 'delete-range', key: Uint8Array.of(1), end: Uint8Array.of(2) } });
    const flagged = range(Uint8Array.of(1), undefined);
    flagged[flagged.length - 1] = 2;
    expectCorrupt(flagged, 'invalid');
    const old = range(Uint8Array.of(1), undefined);
    old[0] = 1;
    expectCorrupt(old, 'invalid');
    expect(() => range(new Uint8Array(KV_KEY_BYTES_MAX + 1), undefined)).toThrow(/start of 4097 bytes is over KV_KEY_BYTES_MAX/);
    expect(() => range(Uint8Array.of(1), new Uint8Array(KV_KEY_BYTES_MAX + 1))).toThrow(/end of 4097 bytes/);
  });

  it('refuses a registration of 0 ids or over the maximum, and trailing bytes after it', () => {
    const withCount = (count: number): Uint8Array => {
      const bytes = Uint8Array.of(3, 4, 0, 0, 0, 0);
      new DataView(bytes.buffer).setUint32(2, count, true);
      return bytes;
    };
    expect(decodeKvRequest(withCount(KV_REGISTER_CLIENTS_COUNT_MAX))).toEqual({ op: 'register-clients', count: KV_REGISTER_CLIENTS_COUNT_MAX });
    expectCorrupt(withCount(0), 'invalid');
    expectCorrupt(withCount(KV_REGISTER_CLIENTS_COUNT_MAX + 1), 'invalid');
    expectCorrupt(Uint8Array.of(...withCount(1), 0), 'trailing_bytes');
  });

  it('refuses an empty key', () => {
    const bytes = encodeKvRequest({ clientId: 1, seq: 1, command: { op: 'delete', key: Uint8Array.of(9) } });
    // Key length 1 -> 0, and drop the key byte.
    bytes[18] = 0;
    expectCorrupt(bytes.subarray(0, bytes.length - 1), 'invalid');
  });

  it('refuses lengths over the maxima before allocating for them', () => {
    const putBytes = encodeKvRequest({ clientId: 1, seq: 1, command: { op: 'put', key: Uint8Array.of(9), value: Uint8Array.of() } });
    const view = new DataView(putBytes.buffer, putBytes.byteOffset, putBytes.byteLength);
    // Key length 4097 and 2^32 - 1: over KV_KEY_BYTES_MAX, with only a few bytes behind it.
    for (const length of [KV_KEY_BYTES_MAX + 1, 0xffff_ffff]) {
      const bytes = putBytes.slice();
      new DataView(bytes.buffer).setUint32(18, length, true);
      expectCorrupt(bytes, 'length_over_max');
    }
    // Value length 2^32 - 1: over KV_VALUE_BYTES_MAX.
    view.setUint32(23, 0xffff_ffff, true);
    expectCorrupt(putBytes, 'length_over_max');
    // A value length within the maximum but beyond the input is a truncation.
    view.setUint32(23, KV_VALUE_BYTES_MAX, true);
    expectCorrupt(putBytes, 'truncated');
  });

  it('throws nothing but CORRUPT_COMMAND on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodeKvRequest(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(KvError);
          expect((error as KvError).code).toBe('CORRUPT_COMMAND');
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('readKvPutInPlace', () => {
  /** What decode makes of the bytes: the request, or undefined when it refuses them. */
  const decoded = (bytes: Uint8Array): KvLogRequest | undefined => {
    try {
      return decodeKvRequest(bytes);
    } catch (error) {
      expect(error).toBeInstanceOf(KvError);
      return undefined;
    }
  };
  const leasedPutArb: fc.Arbitrary<KvRequest> = fc.record({
    clientId: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    command: fc.record({ op: fc.constant('put' as const), key: keyArb, value: valueArb, lease: fc.integer({ min: 1, max: 2 ** 40 }) }),
  });
  const mutationArb = fc.oneof(
    fc.constant({ kind: 'none' as const }),
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('grow' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  );

  it('accepts exactly the plain puts decode reads, with the same fields, wherever the bytes lie', () => {
    fc.assert(
      fc.property(fc.oneof(requestArb, leasedPutArb), mutationArb, fc.nat({ max: 16 }), fc.uint8Array({ maxLength: 8 }), (request, mutation, offset, tail) => {
        let bytes = encodeKvRequest(request);
        if (mutation.kind === 'set' && bytes.length > 0) {
          bytes = bytes.slice();
          bytes[mutation.at % bytes.length] = mutation.byte;
        } else if (mutation.kind === 'cut') {
          bytes = bytes.subarray(0, mutation.at % (bytes.length + 1));
        } else if (mutation.kind === 'grow') {
          bytes = Uint8Array.from([...bytes, ...mutation.bytes]);
        }
        // Inside a larger buffer, as a request inside a batch entry is.
        const buffer = new Uint8Array(offset + bytes.length + tail.length).fill(0xee);
        buffer.set(bytes, offset);
        buffer.set(tail, offset + bytes.length);
        const fields: KvPutFields = { clientId: 0, seq: 0, keyAt: 0, keyLength: 0, valueAt: 0, valueLength: 0 };
        const inPlace = readKvPutInPlace(buffer, offset, bytes.length, fields);
        const d = decoded(bytes);
        const plainPut = d !== undefined && isKvSessionRequest(d) && d.command.op === 'put' && d.command.lease === undefined;
        expect(inPlace).toBe(plainPut);
        if (!plainPut || !isKvSessionRequest(d) || d.command.op !== 'put') return;
        expect(fields.clientId).toBe(d.clientId);
        expect(fields.seq).toBe(d.seq);
        expect(buffer.subarray(fields.keyAt, fields.keyAt + fields.keyLength)).toEqual(d.command.key);
        expect(buffer.subarray(fields.valueAt, fields.valueAt + fields.valueLength)).toEqual(d.command.value);
        // The in-place decoder reads the same request, as views.
        expect(decodeKvRequestInPlace(bytes)).toEqual(d);
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses a put whose client id or seq is past 2^53 - 1, as decode does', () => {
    const bytes = encodeKvRequest({ clientId: Number.MAX_SAFE_INTEGER, seq: 5, command: { op: 'put', key: Uint8Array.of(1), value: Uint8Array.of(2) } });
    const fields: KvPutFields = { clientId: 0, seq: 0, keyAt: 0, keyLength: 0, valueAt: 0, valueLength: 0 };
    expect(readKvPutInPlace(bytes, 0, bytes.length, fields)).toBe(true);
    expect(fields.clientId).toBe(Number.MAX_SAFE_INTEGER);
    const over = bytes.slice();
    over[2] = 0; // clientId 2^53 - 1 - 0xff: still safe
    over[8] = 0x20; // high half 0x20_ffff... : past 2^53 - 1
    expect(readKvPutInPlace(over, 0, over.length, fields)).toBe(false);
    expect(decoded(over)).toBeUndefined();
    // A zero client id, or a zero seq: both refused.
    const one = encodeKvRequest({ clientId: 1, seq: 1, command: { op: 'put', key: Uint8Array.of(1), value: Uint8Array.of(2) } });
    for (const at of [2, 10]) {
      const zero = one.slice();
      zero[at] = 0;
      expect(readKvPutInPlace(zero, 0, zero.length, fields)).toBe(false);
      expect(decoded(zero)).toBeUndefined();
    }
  });
});

describe('setKvRequestSession', () => {
  it('gives an encoded request the session it would have been encoded with', () => {
    fc.assert(
      fc.property(sessionRequestArb, sessionRequestArb, (req, other) => {
        const bytes = encodeKvRequest(req);
        setKvRequestSession(bytes, other.clientId, other.seq);
        expect(bytes).toEqual(encodeKvRequest({ ...req, clientId: other.clientId, seq: other.seq }));
        expect(decodeKvRequest(bytes)).toMatchObject({ clientId: other.clientId, seq: other.seq, command: req.command });
      }),
    );
  });

  it('refuses a session out of range, and a request without a session', () => {
    const bytes = encodeKvRequest({ clientId: 5, seq: 1, command: { op: 'delete', key: new Uint8Array([1]) } });
    for (const [clientId, seq] of [[0, 1], [1, 0], [2 ** 53, 1], [1, 1.5]] as const) expect(() => setKvRequestSession(bytes, clientId, seq)).toThrow(/session/);
    expect(() => setKvRequestSession(encodeKvRequest({ op: 'register-clients', count: 3 }), 1, 1)).toThrow(/session request/);
  });
});
