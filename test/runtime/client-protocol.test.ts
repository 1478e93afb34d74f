// Proves that the client protocol round-trips every request and reply kind exactly (fast-check
// over random fields, the write reply of a client registration with its u64 first id among
// them, each frame sized exactly by encoded*Bytes, also when it sits inside a
// larger buffer as it does in ring memory), that decoded byte fields are copies (the input is
// overwritten after decoding and the result must not change), and that the decoders refuse
// malformed frames with a ProtocolError and nothing else: a table of named cases (unknown
// kinds, tags and flags, truncation, trailing bytes, lengths over their maximum), every
// truncation of a valid frame, and random bytes.
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ERROR_CODE_WIRE_MAX, ErrorCode, errorCodeWire } from '../../src/base/index.ts';
import { COPY_POOL_ITEM_BYTES_MAX, CopyPool } from '../../src/codec/index.ts';
import { KV_KEY_BYTES_MAX, KV_RANGE_ENTRIES_MAX, KV_VALUE_BYTES_MAX, REDIS_READ_REPLY_BYTES_MAX, type KvWriteResult } from '../../src/kv/index.ts';
import {
  ADMIN_BODY_BYTES_MAX,
  decodeReply,
  decodeReplyAt,
  decodeRequest,
  encodedReplyBytes,
  encodedRequestBytes,
  ProtocolError,
  READ_REPLY_VALUE_BYTES_MAX,
  writeReply,
  writeRequest,
  WRITE_REQUEST_BYTES_MAX,
  type ClientReply,
  type ClientRequest,
} from '../../src/runtime/index.ts';
import { caught } from '../core/helpers/errors.ts';

// ---------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------

const requestIdArb = fc.integer({ min: 0, max: 0xffff_ffff });
const indexArb = fc.oneof(fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER), fc.maxSafeNat());
const bytesArb = fc.uint8Array({ maxLength: 40 });
const optionalBytesArb = fc.option(bytesArb, { nil: undefined });
/** Error and watch-end codes: every code of the one list (they travel as numbers). */
const codeArb = fc.constantFrom(...Object.values(ErrorCode));
const resultArb: fc.Arbitrary<KvWriteResult> = fc.oneof(
  fc.constantFrom<KvWriteResult>(
    { op: 'put' },
    { op: 'delete', existed: true },
    { op: 'delete', existed: false },
    { op: 'cas', swapped: true },
    { op: 'cas', swapped: false },
  ),
  fc.record({
    op: fc.constant('register-clients' as const),
    clientIdFirst: fc.oneof(fc.constantFrom(1, 2 ** 32, Number.MAX_SAFE_INTEGER), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
  }),
);

const requestArb: fc.Arbitrary<ClientRequest> = fc.oneof(
  fc.record({ kind: fc.constant('write' as const), requestId: requestIdArb, data: bytesArb }),
  fc.record({
    kind: fc.constant('read' as const),
    requestId: requestIdArb,
    consistency: fc.constantFrom('linearizable' as const, 'lease' as const, 'stale' as const),
    key: bytesArb,
  }),
  fc.record({ kind: fc.constant('watch' as const), requestId: requestIdArb, afterIndex: fc.option(indexArb, { nil: undefined }), prefix: bytesArb }),
  fc.record({ kind: fc.constant('unwatch' as const), requestId: requestIdArb }),
  fc.record({ kind: fc.constant('admin' as const), requestId: requestIdArb, body: fc.string({ unit: 'grapheme', maxLength: 40 }) }),
  fc.record({
    kind: fc.constant('range' as const),
    requestId: requestIdArb,
    consistency: fc.constantFrom('linearizable' as const, 'lease' as const, 'stale' as const),
    // Any shape the wire can carry (the node checks the query's sense, not the codec).
    query: fc.record(
      {
        prefix: bytesArb,
        start: bytesArb,
        end: bytesArb,
        limit: fc.integer({ min: 1, max: KV_RANGE_ENTRIES_MAX }),
        keysOnly: fc.constant(true),
        countOnly: fc.constant(true),
        reverse: fc.constant(true),
      },
      { requiredKeys: [] },
    ),
  }),
);

const rangeEntryArb = fc.record({ key: bytesArb, value: optionalBytesArb, createIndex: indexArb, modIndex: indexArb, version: indexArb });

const replyArb: fc.Arbitrary<ClientReply> = fc.oneof(
  fc.record({ kind: fc.constant('write' as const), requestId: requestIdArb, result: resultArb, index: indexArb }),
  fc.record({ kind: fc.constant('read' as const), requestId: requestIdArb, index: indexArb, value: optionalBytesArb }),
  fc.record({
    kind: fc.constant('error' as const),
    requestId: requestIdArb,
    code: codeArb,
    leaderHint: fc.integer({ min: 0, max: 0xffff_ffff }),
    proposed: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('watch-event' as const),
    requestId: requestIdArb,
    index: indexArb,
    position: fc.integer({ min: 0, max: 0xffff_ffff }),
    key: bytesArb,
    value: optionalBytesArb,
    createIndex: indexArb,
    version: indexArb,
  }),
  fc.record({ kind: fc.constant('watch-end' as const), requestId: requestIdArb, code: codeArb }),
  fc.record({ kind: fc.constant('watch-start' as const), requestId: requestIdArb, index: indexArb }),
  fc.record({ kind: fc.constant('admin' as const), requestId: requestIdArb, body: fc.string({ unit: 'grapheme', maxLength: 40 }) }),
  fc.record({ kind: fc.constant('leader' as const), requestId: requestIdArb, leaderId: fc.integer({ min: 1, max: 0xffff_ffff }) }),
  fc.record({
    kind: fc.constant('range' as const),
    requestId: requestIdArb,
    result: fc.array(rangeEntryArb, { maxLength: 4 }).chain((entries) =>
      fc.record({ entries: fc.constant(entries), more: fc.boolean(), count: fc.integer({ min: entries.length, max: 0xffff_ffff }), index: indexArb }),
    ),
  }),
);

// ---------------------------------------------------------------------------------------
// Encoding helpers
// ---------------------------------------------------------------------------------------

/** One direction of the protocol: how its frames are sized, written and decoded. */
interface Codec<T> {
  readonly sizeBytes: (value: T) => number;
  readonly write: (value: T, target: Uint8Array) => void;
  readonly decode: (bytes: Uint8Array) => T;
}

const requestCodec: Codec<ClientRequest> = { sizeBytes: encodedRequestBytes, write: writeRequest, decode: decodeRequest };
const replyCodec: Codec<ClientReply> = { sizeBytes: encodedReplyBytes, write: writeReply, decode: decodeReply };

function encode<T>(codec: Codec<T>, value: T): Uint8Array {
  const bytes = new Uint8Array(codec.sizeBytes(value));
  codec.write(value, bytes);
  return bytes;
}

const encodeRequest = (req: ClientRequest): Uint8Array => encode(requestCodec, req);
const encodeReply = (reply: ClientReply): Uint8Array => encode(replyCodec, reply);

/** `frame` placed at `offset` inside a larger buffer of junk, as a view (like ring memory). */
function embedded(frame: Uint8Array, offset: number): Uint8Array {
  const memory = new Uint8Array(offset + frame.length + 13).fill(0xa5);
  memory.set(frame, offset);
  return memory.subarray(offset, offset + frame.length);
}

/** The byte fields of a request or reply, to check that decoding copied them. */
function byteFields(x: ClientRequest | ClientReply): Uint8Array[] {
  switch (x.kind) {
    case 'write':
      return 'data' in x ? [x.data] : [];
    case 'read':
      return 'key' in x ? [x.key] : x.value === undefined ? [] : [x.value];
    case 'watch':
      return [x.prefix];
    case 'watch-event':
      return x.value === undefined ? [x.key] : [x.key, x.value];
    default:
      return [];
  }
}

/**
 * The properties every frame of `codec` must have: it decodes to what was written, also from
 * inside a larger buffer, into fields that do not alias that buffer (overwritten after
 * decoding, the result must not change); and encoded*Bytes is exact (a buffer one byte
 * longer or shorter is refused as a bug).
 */
function roundTripProperties<T extends ClientRequest | ClientReply>(codec: Codec<T>, arb: fc.Arbitrary<T>): void {
  it('round-trip every kind exactly, at any offset in a larger buffer, and decode to copies', () => {
    fc.assert(
      fc.property(arb, fc.nat({ max: 17 }), (value, offset) => {
        const view = embedded(encode(codec, value), offset);
        const decoded = codec.decode(view);
        expect(decoded).toEqual(value);
        for (const field of byteFields(decoded)) expect(field.buffer).not.toBe(view.buffer);
        new Uint8Array(view.buffer).fill(0x5a);
        expect(decoded).toEqual(value);
      }),
      { numRuns: 2000 },
    );
  });

  it('are sized exactly: writing into a buffer one byte too long or short is refused as a bug', () => {
    fc.assert(
      fc.property(arb, (value) => {
        const size = codec.sizeBytes(value);
        expect(() => codec.write(value, new Uint8Array(size + 1))).toThrow(/assertion failed/);
        expect(() => codec.write(value, new Uint8Array(size - 1))).toThrow(/assertion failed/);
      }),
    );
  });
}

/** A frame built field by field: numbers are [value, size in bytes] (little-endian), arrays are raw bytes. */
function frame(...fields: (readonly [number, 1 | 2 | 4 | 8] | Uint8Array)[]): Uint8Array {
  const size = fields.reduce((n, f) => n + (f instanceof Uint8Array ? f.length : f[1]), 0);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  let at = 0;
  for (const f of fields) {
    if (f instanceof Uint8Array) {
      bytes.set(f, at);
      at += f.length;
      continue;
    }
    const [value, width] = f;
    if (width === 1) view.setUint8(at, value);
    else if (width === 2) view.setUint16(at, value, true);
    else if (width === 4) view.setUint32(at, value, true);
    else view.setBigUint64(at, BigInt(value), true);
    at += width;
  }
  return bytes;
}

const u8 = (v: number) => [v, 1] as const;
const u16 = (v: number) => [v, 2] as const;
const u32 = (v: number) => [v, 4] as const;
const u64 = (v: number) => [v, 8] as const;
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

function expectProtocolError(decode: () => unknown): void {
  const error = caught(decode);
  expect(error).toBeInstanceOf(ProtocolError);
}

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

describe('requests', () => {
  roundTripProperties(requestCodec, requestArb);

  it('start a watch at afterIndex 0 distinctly from a watch with no afterIndex', () => {
    const at0 = decodeRequest(encodeRequest({ kind: 'watch', requestId: 1, afterIndex: 0, prefix: new Uint8Array() }));
    const fromNow = decodeRequest(encodeRequest({ kind: 'watch', requestId: 1, afterIndex: undefined, prefix: new Uint8Array() }));
    expect(at0).toMatchObject({ kind: 'watch', afterIndex: 0 });
    expect(fromNow).toMatchObject({ kind: 'watch', afterIndex: undefined });
  });

  it('carry a write of the largest size a node accepts', () => {
    const data = new Uint8Array(WRITE_REQUEST_BYTES_MAX).fill(7);
    const decoded = decodeRequest(encodeRequest({ kind: 'write', requestId: 9, data }));
    // Buffer.equals, because toEqual walks 2 MiB element by element for seconds.
    expect(decoded.kind === 'write' && Buffer.from(decoded.data).equals(Buffer.from(data))).toBe(true);
    expect(decoded.requestId).toBe(9);
  });
});

describe('replies', () => {
  roundTripProperties(replyCodec, replyArb);

  it('tell an empty value from an absent one', () => {
    const empty = decodeReply(encodeReply({ kind: 'read', requestId: 1, index: 5, value: new Uint8Array() }));
    const absent = decodeReply(encodeReply({ kind: 'read', requestId: 1, index: 5, value: undefined }));
    expect(empty).toEqual({ kind: 'read', requestId: 1, index: 5, value: new Uint8Array() });
    expect(absent).toEqual({ kind: 'read', requestId: 1, index: 5, value: undefined });
  });

  it('carry the largest value a node reads out: Redis reads\' replies, past a key\'s value, both ways of decoding', () => {
    expect(READ_REPLY_VALUE_BYTES_MAX).toBeGreaterThanOrEqual(REDIS_READ_REPLY_BYTES_MAX);
    expect(READ_REPLY_VALUE_BYTES_MAX).toBeGreaterThan(KV_VALUE_BYTES_MAX);
    const value = new Uint8Array(READ_REPLY_VALUE_BYTES_MAX).fill(3);
    const frame = encodeReply({ kind: 'read', requestId: 2, index: 9, value });
    for (const decoded of [decodeReply(frame), decodeReplyAt(frame, new DataView(frame.buffer, frame.byteOffset, frame.byteLength), 0, frame.length, new CopyPool())]) {
      expect(decoded.kind === 'read' && decoded.value !== undefined && Buffer.from(decoded.value).equals(Buffer.from(value))).toBe(true);
    }
    expect(caught(() => decodeReply(encodeReply({ kind: 'read', requestId: 2, index: 9, value: new Uint8Array(READ_REPLY_VALUE_BYTES_MAX + 1) })))).toBeInstanceOf(ProtocolError);
  });
});

// ---------------------------------------------------------------------------------------
// Malformed frames
// ---------------------------------------------------------------------------------------

const key = ascii('key');
/** The zero bytes between a read reply's present flag and its value's length. */
const readPad = new Uint8Array(6);
/** NOT_LEADER's number on the wire. */
const code = u16(errorCodeWire(ErrorCode.NOT_LEADER));

/** Request frames a decoder must refuse, by name. Each differs from a valid frame in one field. */
const malformedRequests: readonly (readonly [string, Uint8Array])[] = [
  ['empty frame', new Uint8Array()],
  ['kind 0 (invalid)', frame(u8(0), u32(1))],
  ['unknown kind 8', frame(u8(8), u32(1))],
  ['lease: no op or id', frame(u8(7), u32(1))],
  ['lease: unknown op 3', frame(u8(7), u32(1), u8(3), u32(1), u32(0))],
  ['lease: id 0', frame(u8(7), u32(1), u8(1), u32(0), u32(0))],
  ['admin: body not UTF-8', frame(u8(5), u32(1), u32(2), u8(0xff), u8(0xfe))],
  ['admin: body length over ADMIN_BODY_BYTES_MAX', frame(u8(5), u32(1), u32(ADMIN_BODY_BYTES_MAX + 1), new Uint8Array(ADMIN_BODY_BYTES_MAX + 1).fill(0x20))],
  ['admin: trailing byte', frame(u8(5), u32(1), u32(2), u8(0x7b), u8(0x7d), u8(0))],
  ['range: unknown consistency', frame(u8(6), u32(1), u8(5), u8(0), u32(0))],
  ['range: unknown flag bit', frame(u8(6), u32(1), u8(1), u8(64), u32(0))],
  ['range: limit over the maximum', frame(u8(6), u32(1), u8(1), u8(0), u32(KV_RANGE_ENTRIES_MAX + 1))],
  ['range: prefix flag without a prefix', frame(u8(6), u32(1), u8(1), u8(8), u32(0))],
  ['range: trailing byte', frame(u8(6), u32(1), u8(1), u8(0), u32(0), u8(0))],
  ['kind 255', frame(u8(255), u32(1), u8(1), u32(0))],
  ['truncated request id', frame(u8(4), u8(1), u8(0))],
  ['read: consistency tag 0', frame(u8(2), u32(1), u8(0), u32(3), key)],
  ['read: consistency tag 5', frame(u8(2), u32(1), u8(5), u32(3), key)],
  ['read: no consistency byte', frame(u8(2), u32(1))],
  ['read: key shorter than its length', frame(u8(2), u32(1), u8(1), u32(4), key)],
  ['read: key length truncated', frame(u8(2), u32(1), u8(1), u8(3), u8(0))],
  ['read: trailing byte', frame(u8(2), u32(1), u8(1), u32(3), key, u8(0))],
  ['read: key length over KV_KEY_BYTES_MAX', frame(u8(2), u32(1), u8(1), u32(KV_KEY_BYTES_MAX + 1), new Uint8Array(KV_KEY_BYTES_MAX + 1))],
  ['read: key length 2^32 - 1', frame(u8(2), u32(1), u8(1), u32(0xffff_ffff))],
  ['watch: start flag 2', frame(u8(3), u32(1), u8(2), u64(0), u32(0))],
  ['watch: start flag 255', frame(u8(3), u32(1), u8(255), u64(7), u32(0))],
  ['watch: afterIndex above 2^53 - 1', frame(u8(3), u32(1), u8(1), u64(2 ** 53), u32(0))],
  ['watch: afterIndex truncated', frame(u8(3), u32(1), u8(1), u32(7))],
  ['watch: prefix shorter than its length', frame(u8(3), u32(1), u8(0), u64(0), u32(9), key)],
  ['watch: trailing byte', frame(u8(3), u32(1), u8(0), u64(0), u32(3), key, u8(1))],
  ['watch: prefix length over KV_KEY_BYTES_MAX', frame(u8(3), u32(1), u8(0), u64(0), u32(KV_KEY_BYTES_MAX + 1), new Uint8Array(KV_KEY_BYTES_MAX + 1))],
  ['unwatch: trailing byte', frame(u8(4), u32(1), u8(0))],
  ['write: over WRITE_REQUEST_BYTES_MAX', frame(u8(1), u32(1), new Uint8Array(WRITE_REQUEST_BYTES_MAX + 1))],
];

/** Reply frames a decoder must refuse, by name. */
const malformedReplies: readonly (readonly [string, Uint8Array])[] = [
  ['empty frame', new Uint8Array()],
  ['kind 0 (invalid)', frame(u8(0), u32(1), u64(0))],
  ['unknown kind 9', frame(u8(9), u32(1), u64(0))],
  ['admin: body not UTF-8', frame(u8(7), u32(1), u32(1), u8(0xc3))],
  ['admin: body shorter than its length', frame(u8(7), u32(1), u32(3), u8(0x7b))],
  ['truncated request id', frame(u8(6), u8(1))],
  ['write: result tag 0', frame(u8(1), u32(1), u8(0), u64(3))],
  ['write: result tag 7', frame(u8(1), u32(1), u8(7), u64(3))],
  ['write: registration without its clientIdFirst', frame(u8(1), u32(1), u8(6), u64(3))],
  ['write: registration with clientIdFirst 0', frame(u8(1), u32(1), u8(6), u64(3), u64(0))],
  ['write: registration with clientIdFirst above 2^53 - 1', frame(u8(1), u32(1), u8(6), u64(3), u64(2 ** 53))],
  ['write: registration with a trailing byte', frame(u8(1), u32(1), u8(6), u64(3), u64(2 ** 32), u8(0))],
  ['write: a put result followed by a clientIdFirst', frame(u8(1), u32(1), u8(1), u64(3), u64(2 ** 32))],
  ['write: index truncated', frame(u8(1), u32(1), u8(1), u32(3))],
  ['write: trailing byte', frame(u8(1), u32(1), u8(1), u64(3), u8(0))],
  ['write: index above 2^53 - 1', frame(u8(1), u32(1), u8(1), u64(2 ** 60))],
  ['read: present flag 2', frame(u8(2), u32(1), u64(3), u8(2), u32(0))],
  ['read: no present flag', frame(u8(2), u32(1), u64(3))],
  ['read: value shorter than its length', frame(u8(2), u32(1), u64(3), u8(1), readPad, u32(5), key)],
  ['read: a padding byte not zero', frame(u8(2), u32(1), u64(3), u8(1), Uint8Array.of(0, 0, 0, 0, 1, 0), u32(3), key)],
  ['read: no padding before the value', frame(u8(2), u32(1), u64(3), u8(1), u32(3), key)],
  ['read: trailing byte after an absent value', frame(u8(2), u32(1), u64(3), u8(0), u8(0))],
  ['read: value length over READ_REPLY_VALUE_BYTES_MAX', frame(u8(2), u32(1), u64(3), u8(1), readPad, u32(READ_REPLY_VALUE_BYTES_MAX + 1), new Uint8Array(READ_REPLY_VALUE_BYTES_MAX + 1))],
  ['error: proposed flag 2', frame(u8(3), u32(1), code, u32(2), u8(2))],
  ['error: no proposed flag', frame(u8(3), u32(1), code, u32(2))],
  ['error: trailing byte', frame(u8(3), u32(1), code, u32(2), u8(0), u8(0))],
  ['error: code 0 (no code)', frame(u8(3), u32(1), u16(0), u32(2), u8(0))],
  ['error: a code number past the list', frame(u8(3), u32(1), u16(ERROR_CODE_WIRE_MAX + 1), u32(2), u8(0))],
  ['error: code truncated', frame(u8(3), u32(1), u8(1))],
  ['watch-event: present flag 3', frame(u8(4), u32(1), u64(3), u32(0), u32(3), key, u8(3))],
  ['watch-event: key length over KV_KEY_BYTES_MAX', frame(u8(4), u32(1), u64(3), u32(0), u32(KV_KEY_BYTES_MAX + 1), new Uint8Array(KV_KEY_BYTES_MAX + 1), u8(0))],
  ['watch-event: value length over KV_VALUE_BYTES_MAX', frame(u8(4), u32(1), u64(3), u32(0), u32(3), key, u8(1), u32(KV_VALUE_BYTES_MAX + 1))],
  ['watch-event: trailing byte', frame(u8(4), u32(1), u64(3), u32(0), u32(3), key, u8(0), u64(0), u64(0), u8(9))],
  ['watch-event: revisions truncated', frame(u8(4), u32(1), u64(3), u32(0), u32(3), key, u8(0), u64(0), u32(0))],
  ['watch-end: code 65535', frame(u8(5), u32(1), u16(0xffff))],
  ['watch-end: trailing byte', frame(u8(5), u32(1), code, u8(0))],
  ['watch-start: index truncated', frame(u8(6), u32(1), u32(0))],
  ['watch-start: trailing byte', frame(u8(6), u32(1), u64(0), u8(0))],
  ['leader: id truncated', frame(u8(8), u32(1), u8(2))],
  ['range: more flag 2', frame(u8(9), u32(1), u64(1), u32(0), u8(2), u32(0))],
  ['range: more entries than its count', frame(u8(9), u32(1), u64(1), u32(0), u8(0), u32(1), u32(1), u8(0x61), u8(0), u64(1), u64(1), u64(1))],
  ['range: entry value flag 2', frame(u8(9), u32(1), u64(1), u32(1), u8(0), u32(1), u32(1), u8(0x61), u8(2), u64(1), u64(1), u64(1))],
  ['range: trailing byte', frame(u8(9), u32(1), u64(1), u32(0), u8(0), u32(0), u8(0))],
  ['leader: trailing byte', frame(u8(8), u32(1), u32(2), u8(0))],
];

describe('malformed frames', () => {
  it.each(malformedRequests)('request refused with ProtocolError: %s', (_name, bytes) => {
    expectProtocolError(() => decodeRequest(bytes));
  });

  it.each(malformedReplies)('reply refused with ProtocolError: %s', (_name, bytes) => {
    expectProtocolError(() => decodeReply(bytes));
  });

  it('the table cases differ from valid frames in one field only (their valid twins decode)', () => {
    // If these did not decode, the table above could pass for the wrong reason.
    expect(decodeRequest(frame(u8(2), u32(1), u8(1), u32(3), key))).toMatchObject({ kind: 'read', consistency: 'linearizable' });
    expect(decodeRequest(frame(u8(3), u32(1), u8(0), u64(0), u32(3), key))).toMatchObject({ kind: 'watch', afterIndex: undefined });
    expect(decodeRequest(frame(u8(3), u32(1), u8(1), u64(2 ** 53 - 1), u32(0)))).toMatchObject({ afterIndex: 2 ** 53 - 1 });
    expect(decodeRequest(frame(u8(4), u32(1)))).toEqual({ kind: 'unwatch', requestId: 1 });
    expect(decodeRequest(frame(u8(1), u32(1), new Uint8Array(WRITE_REQUEST_BYTES_MAX)))).toMatchObject({ kind: 'write' });
    expect(decodeRequest(frame(u8(2), u32(1), u8(3), u32(KV_KEY_BYTES_MAX), new Uint8Array(KV_KEY_BYTES_MAX)))).toMatchObject({ consistency: 'stale' });
    expect(decodeReply(frame(u8(1), u32(1), u8(5), u64(3)))).toMatchObject({ result: { op: 'cas', swapped: false } });
    expect(decodeReply(frame(u8(1), u32(1), u8(6), u64(3), u64(2 ** 32)))).toEqual({
      kind: 'write',
      requestId: 1,
      index: 3,
      result: { op: 'register-clients', clientIdFirst: 2 ** 32 },
    });
    expect(decodeReply(frame(u8(2), u32(1), u64(3), u8(1), readPad, u32(3), key))).toMatchObject({ value: key });
    expect(decodeReply(frame(u8(3), u32(1), code, u32(2), u8(1)))).toMatchObject({ code: 'NOT_LEADER', proposed: true });
    expect(decodeReply(frame(u8(3), u32(1), u16(ERROR_CODE_WIRE_MAX), u32(2), u8(0)))).toMatchObject({ kind: 'error' });
    expect(decodeReply(frame(u8(4), u32(1), u64(3), u32(0), u32(3), key, u8(0), u64(0), u64(0)))).toMatchObject({ kind: 'watch-event', value: undefined, createIndex: 0, version: 0 });
    expect(decodeReply(frame(u8(5), u32(1), code))).toMatchObject({ kind: 'watch-end', code: 'NOT_LEADER' });
    expect(decodeReply(frame(u8(6), u32(1), u64(0)))).toMatchObject({ kind: 'watch-start', index: 0 });
  });

  it('every truncation of a valid frame is refused with ProtocolError', () => {
    fc.assert(
      fc.property(requestArb, replyArb, fc.nat(), fc.nat(), (req, reply, cutRequest, cutReply) => {
        const reqBytes = encodeRequest(req);
        // A write's body is raw bytes to the end, so only its header can be cut short.
        const reqCutMax = req.kind === 'write' ? 5 : reqBytes.length;
        expectProtocolError(() => decodeRequest(reqBytes.subarray(0, cutRequest % reqCutMax)));
        const replyBytes = encodeReply(reply);
        expectProtocolError(() => decodeReply(replyBytes.subarray(0, cutReply % replyBytes.length)));
      }),
    );
  });

  it('random bytes either decode or are refused with ProtocolError, never another error', () => {
    const framesArb = fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      // Random bytes after a valid kind reach deeper into each decoder.
      fc.tuple(fc.integer({ min: 0, max: 7 }), fc.uint8Array({ maxLength: 40 })).map(([kind, rest]) => Uint8Array.of(kind, ...rest)),
    );
    fc.assert(
      fc.property(framesArb, (bytes) => {
        for (const decode of [decodeRequest, decodeReply]) {
          try {
            decode(bytes);
          } catch (error) {
            expect(error).toBeInstanceOf(ProtocolError);
          }
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('a decode error keeps the byte reader error as its cause', () => {
    const error = caught(() => decodeReply(frame(u8(6), u32(1), u32(0))));
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).cause).toBeInstanceOf(Error);
  });
});

describe('decodeReplyAt (replies read in place from ring memory)', () => {
  const values = new CopyPool();

  it('decodes every reply as decodeReply does, at any offset of a larger buffer', () => {
    fc.assert(
      fc.property(replyArb, fc.nat({ max: 64 }), (reply, offset) => {
        const bytes = encodeReply(reply);
        const memory = new Uint8Array(offset + bytes.length + 8).fill(0xa5);
        memory.set(bytes, offset);
        const view = new DataView(memory.buffer);
        const decoded = decodeReplyAt(memory, view, offset, bytes.length, values);
        expect(decoded).toEqual(decodeReply(bytes));
        // A value is a copy: the ring memory is about to be written again.
        memory.fill(0x5a);
        expect(decoded).toEqual(decodeReply(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  it('finds a read reply\'s value 8-aligned in the frame, and refuses padding that is not zero like decodeReply', () => {
    // The value starts 24 bytes in: ring frames start 8-aligned, and so do copies (CopyPool),
    // so the copy out of ring memory moves words.
    const value = Uint8Array.from({ length: 40 }, (_, i) => i + 1);
    const good = encodeReply({ kind: 'read', requestId: 7, index: 3, value });
    expect(good.subarray(24)).toEqual(value);
    expect(good.subarray(14, 20)).toEqual(new Uint8Array(6));
    for (let at = 14; at < 20; at++) {
      const bad = good.slice();
      bad[at] = 1;
      expect(() => decodeReplyAt(bad, new DataView(bad.buffer), 0, bad.length, values)).toThrow(ProtocolError);
      expect(() => decodeReply(bad)).toThrow(ProtocolError);
    }
  });

  it('refuses a write reply with a bad result tag or an index above 2^53 - 1 like decodeReply', () => {
    const good = encodeReply({ kind: 'write', requestId: 7, result: { op: 'put' }, index: 3 });
    const badTag = good.slice();
    badTag[5] = 9;
    const hugeIndex = good.slice();
    hugeIndex.fill(0xff, 6, 14);
    for (const bad of [badTag, hugeIndex]) {
      expect(() => decodeReplyAt(bad, new DataView(bad.buffer), 0, bad.length, values)).toThrow(ProtocolError);
    }
  });
});

describe('CopyPool', () => {
  it('copies ranges that stay as they were, never share bytes with another copy, and take memory of their own when long', () => {
    const pool = new CopyPool();
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: COPY_POOL_ITEM_BYTES_MAX + 200 }), { maxLength: 200 }), (sources) => {
        const copies = sources.map((src) => {
          const framed = new Uint8Array(src.length + 10).fill(0xee);
          framed.set(src, 3);
          const copy = pool.copy(framed, 3, 3 + src.length);
          framed.fill(0);
          return copy;
        });
        copies.forEach((copy, i) => {
          expect(copy).toEqual(sources[i]);
          expect(copy.byteOffset % 8).toBe(0);
          if (copy.length > COPY_POOL_ITEM_BYTES_MAX) expect(copy.buffer.byteLength).toBe(copy.length);
        });
        // Writing each copy whole leaves every other copy as it was.
        copies.forEach((copy, i) => copy.fill(i + 1));
        copies.forEach((copy, i) => expect(copy.every((b) => b === i + 1)).toBe(true));
      }),
      { numRuns: 200 },
    );
  });
});
