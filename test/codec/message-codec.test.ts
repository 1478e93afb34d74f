// Proves that the message codec round-trips every valid Message exactly (fast-check over all
// message types with random fields, entries and snapshot chunks, sized exactly by
// encodedMessageBytes, also when written at an offset inside a larger buffer), and that its
// decoder refuses everything else with a DecodeError and nothing but a DecodeError: every
// truncation, each stated maximum (checked before allocating), unknown versions and types,
// non-canonical spellings, trailing bytes, random bytes and random mutations of valid
// encodings. It also proves that decoded payloads are copies unless `copyPayloads: false`.
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CONF_NODES_MAX,
  DecodeError,
  ENTRY_DATA_BYTES_MAX,
  MESSAGE_ENTRIES_MAX,
  MESSAGE_FORMAT_VERSION,
  SNAPSHOT_CHUNK_BYTES_MAX,
  decodeMessage,
  encodeMessage,
  encodeMessageInto,
  encodedMessageBytes,
} from '../../src/codec/index.ts';
import type { DecodeErrorReason } from '../../src/codec/index.ts';
import { MessageType, makeMessage } from '../../src/core/index.ts';
import type { ConfState, Entry, EntryType, Message, SnapshotChunk } from '../../src/core/index.ts';

// ---------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------

/** Safe non-negative integers, weighted towards 0 (absent fields) and the varint edges. */
const numberArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(0) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 0x7f }) },
  { weight: 2, arbitrary: fc.constantFrom(0x80, 0x3fff, 0x4000, 0xffff_ffff, 2 ** 32, 2 ** 49 - 1, 2 ** 49, Number.MAX_SAFE_INTEGER) },
  { weight: 2, arbitrary: fc.maxSafeNat() },
);
const positiveArb = numberArb.map((n) => Math.max(1, n));
const messageTypeArb = fc.constantFrom(...Object.values(MessageType));
const entryTypeArb = fc.constantFrom<EntryType>(0, 1);
const dataArb = fc.uint8Array({ maxLength: 48 });

/**
 * A spec for one entry: either it follows its predecessor (index + 1, same term), which is
 * what App messages carry and what the format makes cheap, or it has its own index and term.
 */
interface EntrySpec {
  readonly follows: boolean;
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}
const entrySpecArb: fc.Arbitrary<EntrySpec> = fc.record({
  follows: fc.boolean(),
  index: positiveArb,
  term: positiveArb,
  type: entryTypeArb,
  data: dataArb,
});

function buildEntries(specs: readonly EntrySpec[], index: number, term: number): Entry[] {
  const entries: Entry[] = [];
  let expectedIndex = index + 1;
  let expectedTerm = term;
  for (const spec of specs) {
    const follows = spec.follows && Number.isSafeInteger(expectedIndex) && expectedTerm >= 1;
    const e: Entry = {
      index: follows ? expectedIndex : spec.index,
      term: follows ? expectedTerm : spec.term,
      type: spec.type,
      data: spec.data,
    };
    entries.push(e);
    expectedIndex = e.index + 1;
    expectedTerm = e.term;
  }
  return entries;
}

const nodeListArb = fc.array(positiveArb, { maxLength: 5 });
const confArb: fc.Arbitrary<ConfState> = fc.record({
  voters: nodeListArb,
  votersOutgoing: nodeListArb,
  learners: nodeListArb,
  learnersNext: nodeListArb,
  autoLeave: fc.boolean(),
});

const snapshotChunkArb: fc.Arbitrary<SnapshotChunk> = fc
  .record({ index: numberArb, term: numberArb, conf: confArb, data: dataArb, offset: fc.nat({ max: 1 << 20 }), extraBytes: fc.nat({ max: 1 << 20 }) })
  .map(({ index, term, conf, data, offset, extraBytes }) => ({
    meta: { index, term, conf },
    totalBytes: offset + data.length + extraBytes,
    offset,
    data,
  }));

const messageArb: fc.Arbitrary<Message> = fc
  .record({
    type: messageTypeArb,
    from: numberArb,
    to: numberArb,
    term: numberArb,
    logTerm: numberArb,
    index: numberArb,
    commit: numberArb,
    reject: fc.boolean(),
    rejectHint: numberArb,
    context: numberArb,
    sentTick: numberArb,
    entrySpecs: fc.array(entrySpecArb, { maxLength: 6 }),
    snapshot: fc.option(snapshotChunkArb, { nil: undefined }),
  })
  .map(({ entrySpecs, ...fields }) => makeMessage({ ...fields, entries: buildEntries(entrySpecs, fields.index, fields.term) }));

// ---------------------------------------------------------------------------------------
// Helpers and fixtures
// ---------------------------------------------------------------------------------------

/** Runs `run`; returns the DecodeError it throws, and fails on anything else or on no error. */
function decodeErrorOf(run: () => unknown): DecodeError {
  try {
    run();
  } catch (error) {
    if (!(error instanceof DecodeError)) throw new Error(`expected a DecodeError, got ${String(error)}`, { cause: error });
    expect(error.code).toBe('DECODE_ERROR');
    return error;
  }
  throw new Error('expected a DecodeError, but nothing was thrown');
}

function expectDecodeError(bytes: Uint8Array, reason: DecodeErrorReason): DecodeError {
  const error = decodeErrorOf(() => decodeMessage(bytes));
  expect(error.reason).toBe(reason);
  return error;
}

/** Decodes `bytes` if they are valid; then they must be the one encoding of what they decode to. */
function decodeOrRefuse(bytes: Uint8Array): void {
  let m: Message;
  try {
    m = decodeMessage(bytes);
  } catch (error) {
    if (error instanceof DecodeError && error.code === 'DECODE_ERROR') return;
    throw error;
  }
  expect(encodeMessage(m)).toEqual(bytes);
}

function payload(length: number, seed: number): Uint8Array {
  const data = new Uint8Array(length);
  for (let i = 0; i < length; i++) data[i] = (seed + i * 31) & 0xff;
  return data;
}

const TERM = 1234;
const INDEX = 5_000_000;

function appOf(entriesCount: number): Message {
  const entries = Array.from({ length: entriesCount }, (_, i): Entry => ({ term: TERM, index: INDEX + 1 + i, type: 0, data: payload(128, i) }));
  return makeMessage({ type: MessageType.App, from: 1, to: 2, term: TERM, logTerm: TERM, index: INDEX, commit: INDEX - 10, entries });
}

const heartbeat = makeMessage({ type: MessageType.Heartbeat, from: 1, to: 2, term: TERM, commit: INDEX - 10, sentTick: 987_654 });
const appResp = makeMessage({ type: MessageType.AppResp, from: 2, to: 1, term: TERM, index: INDEX + 64 });
const snap = makeMessage({
  type: MessageType.Snap,
  from: 1,
  to: 3,
  term: 7,
  snapshot: {
    meta: { index: 900, term: 6, conf: { voters: [1, 2, 3], votersOutgoing: [1, 2, 4], learners: [5], learnersNext: [4], autoLeave: true } },
    totalBytes: 4096,
    offset: 1024,
    data: payload(100, 3),
  },
});
const fixtures: readonly Message[] = [heartbeat, appResp, appOf(1), appOf(64), snap];

/** A hand-built message: header, then the given body bytes. */
function frame(type: number, presence: number, body: readonly number[]): Uint8Array {
  return Uint8Array.of(MESSAGE_FORMAT_VERSION, type, presence & 0xff, presence >>> 8, ...body);
}

/** LEB128 of a safe integer, for hand-built inputs. */
function varint(value: number): number[] {
  const out: number[] = [];
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
  return out;
}

const HAS_INDEX = 1 << 4;
const HAS_ENTRIES = 1 << 10;
const HAS_SNAPSHOT = 1 << 11;

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

describe('message codec round trip', () => {
  it('decodes every valid message to a deep-equal one, in exactly encodedMessageBytes bytes', () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const bytes = encodeMessage(m);
        expect(bytes.length).toBe(encodedMessageBytes(m));
        expect(bytes[0]).toBe(MESSAGE_FORMAT_VERSION);
        expect(bytes[1]).toBe(m.type);
        expect(decodeMessage(bytes)).toEqual(m);
        expect(decodeMessage(bytes, { copyPayloads: false })).toEqual(m);
      }),
      { numRuns: 1000 },
    );
  });

  it('covers every message type and both entry types', () => {
    for (const type of Object.values(MessageType)) {
      for (const entryType of [0, 1] as const) {
        const m = makeMessage({ type, from: 3, to: 1, term: 2, entries: [{ term: 2, index: 1, type: entryType, data: Uint8Array.of(type) }] });
        expect(decodeMessage(encodeMessage(m))).toEqual(m);
      }
    }
  });

  it('writes the documented bytes for a heartbeat, and keeps typical messages small', () => {
    const m = makeMessage({ type: MessageType.Heartbeat, from: 1, to: 2, term: 3, commit: 300, sentTick: 0x80 });
    // version, type, presence (from, to, term, commit, sentTick = 0x0127), then the varints.
    expect([...encodeMessage(m)]).toEqual([1, 7, 0x27, 0x01, 1, 2, 3, 0xac, 0x02, 0x80, 0x01]);
    const sizes = fixtures.slice(0, 4).map(encodedMessageBytes);
    // Heartbeat, AppResp, App 1 × 128 B, App 64 × 128 B: a consecutive entry of the
    // message's term costs 3 bytes besides its payload.
    expect(sizes).toEqual([15, 12, 150, 8403]);
  });

  it('round-trips the largest numbers and maxima', () => {
    const max = Number.MAX_SAFE_INTEGER;
    const m = makeMessage({
      type: MessageType.App,
      from: max,
      to: max,
      term: max,
      logTerm: max,
      index: max - 1,
      commit: max,
      reject: true,
      rejectHint: max,
      context: max,
      sentTick: max,
      // The first entry is implied at index max; the second cannot be, and is spelled out.
      entries: [
        { term: max, index: max, type: 1, data: new Uint8Array(0) },
        { term: 1, index: 1, type: 0, data: Uint8Array.of(9) },
      ],
    });
    expect(decodeMessage(encodeMessage(m))).toEqual(m);
  });

  it('encodes into a larger buffer at an offset, touching nothing outside its bytes', () => {
    fc.assert(
      fc.property(messageArb, fc.nat({ max: 64 }), fc.nat({ max: 64 }), (m, before, after) => {
        const size = encodedMessageBytes(m);
        const ring = new Uint8Array(new SharedArrayBuffer(before + size + after)).fill(0xa5);
        expect(encodeMessageInto(m, ring, before)).toBe(size);
        expect(ring.subarray(0, before).every((b) => b === 0xa5)).toBe(true);
        expect(ring.subarray(before + size).every((b) => b === 0xa5)).toBe(true);
        expect(ring.subarray(before, before + size)).toEqual(encodeMessage(m));
        expect(decodeMessage(ring.subarray(before, before + size))).toEqual(m);
      }),
      { numRuns: 300 },
    );
  });

  it('crashes with a plain Error, leaving the bytes after the target alone, when the target is too small', () => {
    const m = appOf(2);
    const size = encodedMessageBytes(m);
    const backing = new Uint8Array(size + 8).fill(0xa5);
    for (const room of [0, 3, 10, size - 1]) {
      let thrown: unknown;
      try {
        encodeMessageInto(m, backing.subarray(0, 4 + room), 4);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(Error);
      expect(thrown).not.toBeInstanceOf(DecodeError);
      expect(backing.subarray(4 + room).every((b) => b === 0xa5)).toBe(true);
    }
  });

  it('crashes with a plain Error on a message it must not encode', () => {
    const entry: Entry = { term: 1, index: 1, type: 0, data: new Uint8Array(0) };
    const bad: Message[] = [
      makeMessage({ type: 0 as MessageType, from: 1, to: 2, term: 1 }),
      makeMessage({ type: 14 as MessageType, from: 1, to: 2, term: 1 }),
      makeMessage({ type: MessageType.App, from: -1, to: 2, term: 1 }),
      makeMessage({ type: MessageType.App, from: 1, to: 2, term: 1.5 }),
      makeMessage({ type: MessageType.App, from: 1, to: 2, term: 1, commit: Number.MAX_SAFE_INTEGER + 1 }),
      makeMessage({ type: MessageType.App, from: 1, to: 2, term: 1, index: Number.NaN }),
      makeMessage({ type: MessageType.App, from: 1, to: 2, term: 1, entries: [{ ...entry, type: 2 as EntryType }] }),
      makeMessage({ type: MessageType.App, from: 1, to: 2, term: 1, entries: [{ ...entry, index: 0 }] }),
      makeMessage({ type: MessageType.App, from: 1, to: 2, term: 1, entries: [{ ...entry, term: 0 }] }),
      makeMessage({ type: MessageType.Snap, from: 1, to: 2, term: 1, snapshot: { ...snap.snapshot!, totalBytes: 1000 } }),
      makeMessage({ type: MessageType.Snap, from: 1, to: 2, term: 1, snapshot: { ...snap.snapshot!, meta: { ...snap.snapshot!.meta, conf: { ...snap.snapshot!.meta.conf, learners: [0] } } } }),
    ];
    for (const m of bad) {
      let thrown: unknown;
      try {
        encodeMessageInto(m, new Uint8Array(1024), 0);
      } catch (error) {
        thrown = error;
      }
      expect(thrown, JSON.stringify(m, (_, v: unknown) => (v instanceof Uint8Array ? [...v] : v))).toBeInstanceOf(Error);
      expect(thrown).not.toBeInstanceOf(DecodeError);
    }
  });
});

describe('decoded payloads', () => {
  it('are copies by default: changing the input afterwards changes nothing decoded', () => {
    const original = encodeMessage(appOf(3));
    const snapOriginal = encodeMessage(snap);
    for (const bytes of [original, snapOriginal]) {
      const ring = new Uint8Array(new SharedArrayBuffer(bytes.length + 16));
      ring.set(bytes, 16);
      const input = ring.subarray(16);
      const decoded = decodeMessage(input);
      ring.fill(0xff);
      expect(decoded).toEqual(decodeMessage(bytes));
      for (const data of [...decoded.entries.map((e) => e.data), ...(decoded.snapshot ? [decoded.snapshot.data] : [])]) {
        expect(data.buffer).not.toBe(ring.buffer);
        expect(data.buffer).toBeInstanceOf(ArrayBuffer);
      }
    }
  });

  it('are views of the input with copyPayloads: false, for callers that consume them at once', () => {
    const bytes = encodeMessage(appOf(2));
    const decoded = decodeMessage(bytes, { copyPayloads: false });
    const before = decoded.entries.map((e) => Uint8Array.from(e.data));
    bytes.fill(0xff);
    expect(decoded.entries.map((e) => e.data)).not.toEqual(before);
    expect(decoded.entries[0]!.data.every((b) => b === 0xff)).toBe(true);
  });

  it('are plain Uint8Arrays and independent copies even when the input is a Buffer', () => {
    const bytes = Buffer.from(encodeMessage(appOf(2)));
    for (const copyPayloads of [true, false]) {
      const decoded = decodeMessage(bytes, { copyPayloads });
      expect(decoded.entries[0]!.data.constructor).toBe(Uint8Array);
      expect(decoded).toEqual(appOf(2));
    }
    const copied = decodeMessage(bytes);
    bytes.fill(0);
    expect(copied).toEqual(appOf(2));
  });
});

describe('message decoder refuses bad input', () => {
  it('throws truncated for every strict prefix of a valid encoding', () => {
    for (const m of fixtures) {
      const bytes = encodeMessage(m);
      for (let length = 0; length < bytes.length; length++) expectDecodeError(bytes.subarray(0, length), 'truncated');
    }
    fc.assert(
      fc.property(messageArb, (m) => {
        const bytes = encodeMessage(m);
        for (let length = 0; length < bytes.length; length++) expectDecodeError(bytes.subarray(0, length), 'truncated');
      }),
      { numRuns: 200 },
    );
  });

  it('refuses trailing bytes', () => {
    for (const m of fixtures) {
      const bytes = encodeMessage(m);
      const longer = new Uint8Array(bytes.length + 1);
      longer.set(bytes);
      expect(expectDecodeError(longer, 'trailing_bytes').offset).toBe(bytes.length);
    }
  });

  it('refuses unknown versions, message types, entry types, and reserved bits', () => {
    const bytes = encodeMessage(appOf(1));
    const patched = (at: number, value: number) => {
      const copy = Uint8Array.from(bytes);
      copy[at] = value;
      return copy;
    };
    expectDecodeError(new Uint8Array(bytes.length), 'invalid'); // zeroed memory: version 0
    expectDecodeError(patched(0, 2), 'invalid');
    expectDecodeError(patched(1, 0), 'invalid');
    expectDecodeError(patched(1, 14), 'invalid');
    expectDecodeError(frame(MessageType.App, 0x1000, []), 'invalid');
    // The one entry's flags byte follows header, from, to, term (2), logTerm (2), index (4),
    // commit (4) and the count: offset 4 + 1 + 1 + 2 + 2 + 4 + 4 + 1 = 19.
    expect(bytes[19]).toBe(0);
    expectDecodeError(patched(19, 2), 'invalid');
    expectDecodeError(patched(19, 0x40), 'invalid');
    expectDecodeError(frame(MessageType.Snap, HAS_SNAPSHOT, [1, 1, 0x02, 0, 0, 0, 0, 0, 0, 0]), 'invalid');
  });

  it('refuses non-canonical spellings, so that every message has one encoding', () => {
    expectDecodeError(frame(MessageType.AppResp, HAS_INDEX, [0]), 'invalid'); // present but zero
    expectDecodeError(frame(MessageType.AppResp, HAS_INDEX, [0x85, 0x00]), 'invalid'); // non-minimal varint
    expectDecodeError(frame(MessageType.App, HAS_ENTRIES, [0]), 'invalid'); // entries present, none there
    // Entry index 1 spelled out although it is the expected one (message index 0 + 1).
    expectDecodeError(frame(MessageType.App, HAS_ENTRIES | 0b100, [5, 1, 0x30, 1, 3, 0]), 'invalid');
    // Entry term spelled out equal to the message term.
    expectDecodeError(frame(MessageType.App, HAS_ENTRIES | 0b100, [5, 1, 0x20, 5, 0]), 'invalid');
    // An implied term of 0 (the message has no term) is not a valid entry term.
    expectDecodeError(frame(MessageType.App, HAS_ENTRIES, [1, 0x00, 0]), 'invalid');
    // A chunk that ends beyond its snapshot: offset 4, 2 bytes, of a 5-byte snapshot.
    expectDecodeError(frame(MessageType.Snap, HAS_SNAPSHOT, [1, 1, 0, 0, 0, 0, 0, 5, 4, 2, 7, 7]), 'invalid');
    expect(decodeMessage(frame(MessageType.Snap, HAS_SNAPSHOT, [1, 1, 0, 0, 0, 0, 0, 6, 4, 2, 7, 7])).snapshot?.totalBytes).toBe(6);
  });

  it('refuses numbers above 2^53 - 1 and varints longer than 8 bytes', () => {
    expectDecodeError(frame(MessageType.AppResp, HAS_INDEX, [...varint(2 ** 53 - 1).slice(0, 7), 0x10]), 'out_of_range');
    expect(decodeMessage(frame(MessageType.AppResp, HAS_INDEX, varint(2 ** 53 - 1))).index).toBe(2 ** 53 - 1);
    expectDecodeError(frame(MessageType.AppResp, HAS_INDEX, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), 'out_of_range');
    // An implied entry index after 2^53 - 1.
    expectDecodeError(frame(MessageType.App, HAS_ENTRIES | 0b100 | HAS_INDEX, [1, ...varint(2 ** 53 - 1), 1, 0x00, 0]), 'out_of_range');
  });

  it('checks every count and length against its maximum before allocating for it', () => {
    // Each input states a count or length just over its maximum and holds almost nothing.
    const over = (max: number) => varint(max + 1);
    const e1 = expectDecodeError(frame(MessageType.App, HAS_ENTRIES | 0b100, [1, ...over(MESSAGE_ENTRIES_MAX)]), 'length_over_max');
    expect(e1.offset).toBe(5);
    expectDecodeError(frame(MessageType.App, HAS_ENTRIES | 0b100, [1, 1, 0x00, ...over(ENTRY_DATA_BYTES_MAX)]), 'length_over_max');
    const conf = [0, 0, 0, 0];
    expectDecodeError(frame(MessageType.Snap, HAS_SNAPSHOT, [1, 1, 0, ...over(CONF_NODES_MAX)]), 'length_over_max');
    expectDecodeError(frame(MessageType.Snap, HAS_SNAPSHOT, [1, 1, 0, ...conf, 0, 0, ...over(SNAPSHOT_CHUNK_BYTES_MAX)]), 'length_over_max');
    // At the maximum, a count the remaining bytes cannot hold is refused as truncated at once.
    expectDecodeError(frame(MessageType.App, HAS_ENTRIES | 0b100, [1, ...varint(MESSAGE_ENTRIES_MAX), 0, 0]), 'truncated');
    expectDecodeError(frame(MessageType.App, HAS_ENTRIES | 0b100, [1, 1, 0x00, ...varint(ENTRY_DATA_BYTES_MAX)]), 'truncated');
  });

  it('throws nothing but a DecodeError on random bytes, and anything that decodes re-encodes to the same bytes', () => {
    // Mostly version 1, known types and no reserved presence bits, so that most inputs get
    // past the header; sometimes not, so that the header checks are fuzzed too.
    const headerArb = fc.tuple(
      fc.oneof({ weight: 6, arbitrary: fc.constant(MESSAGE_FORMAT_VERSION) }, fc.constantFrom(0, 2, 0xff)),
      fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 11 }) }, fc.constantFrom(0, 12, 0xff)),
      fc.oneof({ weight: 6, arbitrary: fc.nat({ max: 0xfff }) }, fc.nat({ max: 0xffff })),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => decodeOrRefuse(bytes)),
      { numRuns: 2000 },
    );
    // Random bodies behind a plausible header reach the field decoders.
    fc.assert(
      fc.property(headerArb, fc.uint8Array({ maxLength: 96 }), ([version, type, presence], body) => {
        decodeOrRefuse(Uint8Array.of(version, type, presence & 0xff, presence >>> 8, ...body));
      }),
      { numRuns: 5000 },
    );
  });

  it('throws nothing but a DecodeError on random mutations of valid encodings', () => {
    type Mutation = { kind: 'set'; at: number; value: number } | { kind: 'insert'; at: number; value: number } | { kind: 'delete'; at: number };
    const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 0xff }) }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 0xff }) }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
    );
    const mutate = (bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array => {
      const out = [...bytes];
      for (const mutation of mutations) {
        const at = mutation.at % (out.length + 1);
        if (mutation.kind === 'set' && at < out.length) out[at] = mutation.value;
        if (mutation.kind === 'insert') out.splice(at, 0, mutation.value);
        if (mutation.kind === 'delete' && at < out.length) out.splice(at, 1);
      }
      return Uint8Array.from(out);
    };
    fc.assert(
      fc.property(messageArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (m, mutations) => {
        decodeOrRefuse(mutate(encodeMessage(m), mutations));
      }),
      { numRuns: 3000 },
    );
  });
});
