// Proves the record format byte for byte: every record type round-trips through
// encodeBatch/decodeFrame (fast-check, with entry data inline and referenced as its own iovec),
// frames are 8-byte aligned with zero padding, an entries frame states index and term once
// and each entry's length and type in a 4-byte header, the commit record's CRC covers the whole
// batch, zeroed space never parses as a record, a flipped bit anywhere in a batch is detected,
// a length over the maximum is refused before anything is read for it, every field of an
// entries frame that can be impossible is refused, and segment headers (another format
// version refused by name) and snapshot files round-trip and reject damage. The byte layouts
// checked here are the ones docs/wal-format.md specifies.
import { ErrorCode, RingraftError } from '../../src/base/index.ts';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { emptyConfState, type Entry } from '../../src/core/index.ts';
import { crc32 } from '../../src/storage/wal/crc.ts';
import {
  COMMIT_CRC_OFFSET,
  ENTRY_DATA_BYTES_MAX,
  FRAME_HEADER_BYTES,
  RECORD_PAYLOAD_BYTES_MAX,
  RecordType,
  SEGMENT_HEADER_BYTES,
  SnapshotKind,
  decodeFrame,
  decodeSegmentHeader,
  encodeBatch,
  encodeSegmentHeader,
  entryAt,
  forEachEntry,
  frameBytes,
  frameHeader,
  unsupportedVersion,
  type DecodedFrame,
  type WalRecord,
} from '../../src/storage/wal/format.ts';
import { decodeSnapshotFile, encodeSnapshotFile } from '../../src/storage/wal/snapshot-file.ts';

const safeIndex = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER - 20 });
const dataArb = fc.oneof({ weight: 4, arbitrary: fc.uint8Array({ maxLength: 300 }) }, fc.uint8Array({ minLength: 16 * 1024, maxLength: 17 * 1024 }));
/** A run: consecutive entries of one term. */
const runArb: fc.Arbitrary<Entry[]> = fc
  .tuple(safeIndex, safeIndex, fc.array(fc.tuple(fc.constantFrom(0 as const, 1 as const), dataArb), { minLength: 1, maxLength: 6 }))
  .map(([index, term, es]) => es.map(([type, data], k) => ({ index: index + k, term, type, data })));
const recordArb: fc.Arbitrary<WalRecord> = fc.oneof(
  fc.record({ type: fc.constant(RecordType.Entry), entries: runArb }),
  fc.record({ type: fc.constant(RecordType.HardState), hardState: fc.record({ term: fc.maxSafeNat(), vote: fc.maxSafeNat(), commit: fc.maxSafeNat() }) }),
  fc.record({ type: fc.constant(RecordType.Truncation), index: safeIndex }),
  fc.record({
    type: fc.constant(RecordType.SnapshotMarker),
    marker: fc.record({ index: safeIndex, term: safeIndex, kind: fc.constantFrom(SnapshotKind.Compact, SnapshotKind.Replace), fileName: fc.constantFrom('snapshot-00000000000000000001.snap', 'snapshot-09007199254740991000.snap') }),
  }),
);

function concat(buffers: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(buffers));
}

/** Decodes every frame of an encoded batch, after checking the batch CRC in its commit record. */
function decodeAll(bytes: Uint8Array): { frames: DecodedFrame[]; offsets: number[] } {
  const frames: DecodedFrame[] = [];
  const offsets: number[] = [];
  for (let at = 0; at < bytes.length; ) {
    const header = frameHeader(bytes, at);
    if (typeof header === 'string') throw new Error(header);
    if (header.type === RecordType.Commit) {
      const crc = new DataView(bytes.buffer, bytes.byteOffset).getUint32(at + COMMIT_CRC_OFFSET, true);
      if (crc32(bytes.subarray(0, at + COMMIT_CRC_OFFSET)) !== crc) throw new Error('checksum');
    }
    const r = decodeFrame(bytes, at, header.length);
    if (typeof r === 'string') throw new Error(`${r} at ${at}`);
    frames.push(r);
    offsets.push(at);
    at += frameBytes(header.length);
  }
  return { frames, offsets };
}

/** Whether `bytes` hold exactly one intact batch (the checks recovery makes), not throwing. */
function intact(bytes: Uint8Array): boolean {
  try {
    const { frames } = decodeAll(bytes);
    const commit = frames.at(-1);
    return commit?.type === RecordType.Commit && commit.recordCount === frames.length - 1 && frames.slice(0, -1).every((r) => r.type !== RecordType.Commit);
  } catch {
    return false;
  }
}

function expected(r: WalRecord): DecodedFrame {
  switch (r.type) {
    case RecordType.Entry:
      return { type: r.type, firstIndex: r.entries[0]!.index, term: r.entries[0]!.term, count: r.entries.length };
    case RecordType.HardState:
      return { type: r.type, hardState: r.hardState };
    case RecordType.Truncation:
      return { type: r.type, index: r.index };
    case RecordType.SnapshotMarker:
      return { type: r.type, marker: r.marker };
  }
}

/** The entries of the entries frame at `at`, read back. */
function entriesOf(bytes: Uint8Array, at: number): Entry[] {
  const frame = decodeFrame(bytes, at, frameHeader(bytes, at) === 'truncated' ? 0 : (frameHeader(bytes, at) as { length: number }).length);
  if (typeof frame === 'string' || frame.type !== RecordType.Entry) throw new Error(`not an entries frame: ${String(frame)}`);
  const out: Entry[] = [];
  forEachEntry(bytes, at, frame, (k, headerAt) => out.push(entryAt(bytes, headerAt, frame.firstIndex + k, frame.term)));
  return out;
}

/**
 * A batch of one entries frame (entries 7 and 8 of term 3, data [1, 2, 3] and [4]) with
 * `change` applied to its bytes and the batch CRC recomputed: intact as far as the CRC can
 * tell, so any problem is in the frame's fields.
 */
function entriesBatchWith(change: (bytes: Uint8Array, view: DataView) => void): Uint8Array {
  const bytes = concat(encodeBatch([{ type: RecordType.Entry, entries: [{ index: 7, term: 3, type: 0, data: Uint8Array.from([1, 2, 3]) }, { index: 8, term: 3, type: 0, data: Uint8Array.from([4]) }] }]).buffers);
  const view = new DataView(bytes.buffer);
  change(bytes, view);
  const crcAt = bytes.length - 4;
  view.setUint32(crcAt, crc32(bytes.subarray(0, crcAt)), true);
  return bytes;
}

describe('WAL records', () => {
  it('round-trip through a batch, aligned, with a commit record that counts them', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 1, maxLength: 12 }), (records) => {
        const batch = encodeBatch(records);
        const bytes = concat(batch.buffers);
        expect(bytes.length).toBe(batch.bytes);
        expect(bytes.length % 8).toBe(0);
        const { frames, offsets } = decodeAll(bytes);
        expect(offsets).toEqual(batch.recordOffsets);
        expect(frames.slice(0, -1)).toEqual(records.map(expected));
        expect(frames.at(-1)).toEqual({ type: RecordType.Commit, batchBytes: batch.recordOffsets.at(-1), recordCount: records.length });
        records.forEach((r, k) => {
          if (r.type !== RecordType.Entry) return;
          const back = entriesOf(bytes, offsets[k]!);
          expect(back.map((e) => [e.index, e.term, e.type, [...e.data]])).toEqual(r.entries.map((e) => [e.index, e.term, e.type, [...e.data]]));
        });
      }),
      { numRuns: 200 },
    );
  });

  it('lays out an entries frame and the commit record as the spec says', () => {
    const entries: Entry[] = [
      { index: 0x1_0000_0002, term: 3, type: 1, data: Uint8Array.from([0xaa, 0xbb]) },
      { index: 0x1_0000_0003, term: 3, type: 0, data: Uint8Array.from([0xcc]) },
    ];
    const bytes = concat(encodeBatch([{ type: RecordType.Entry, entries }]).buffers);
    const view = new DataView(bytes.buffer);
    // Frame header: type 1, three reserved zeros, payload length 24 + (4 + 2) + (4 + 1) = 35.
    expect([...bytes.subarray(0, 8)]).toEqual([1, 0, 0, 0, 35, 0, 0, 0]);
    // First index, term, count, reserved.
    expect([...bytes.subarray(8, 32)]).toEqual([2, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
    // Each entry: a u32 of data length | entry type << 28, then the data; then padding to 48.
    expect([...bytes.subarray(32, 48)]).toEqual([2, 0, 0, 0x10, 0xaa, 0xbb, 1, 0, 0, 0, 0xcc, 0, 0, 0, 0, 0]);
    expect(frameBytes(35)).toBe(48);
    // The commit record: header, batch bytes u64, record count u32, CRC of every byte before it.
    expect(bytes.length).toBe(48 + 24);
    expect([...bytes.subarray(48, 68)]).toEqual([5, 0, 0, 0, 16, 0, 0, 0, 48, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
    expect(view.getUint32(68, true)).toBe(crc32(bytes.subarray(0, 68)));
    // A 150-byte entry takes 154 bytes in a run.
    const run = Array.from({ length: 10 }, (_, k) => ({ index: k + 1, term: 1, type: 0 as const, data: new Uint8Array(150) }));
    expect(encodeBatch([{ type: RecordType.Entry, entries: run }]).bytes).toBe(frameBytes(24 + 10 * 154) + 24);
  });

  it('never parses zeroed space', () => {
    const zeros = new Uint8Array(64);
    expect(frameHeader(zeros, 0)).toBe('type');
    expect(intact(zeros)).toBe(false);
  });

  it('detects a flipped bit anywhere in a batch', () => {
    const bytes = concat(
      encodeBatch([
        { type: RecordType.Entry, entries: [{ index: 4, term: 2, type: 0, data: Uint8Array.from([9, 8, 7]) }] },
        { type: RecordType.HardState, hardState: { term: 5, vote: 2, commit: 9 } },
      ]).buffers,
    );
    expect(intact(bytes)).toBe(true);
    for (let i = 0; i < bytes.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = bytes.slice();
        copy[i]! ^= 1 << bit;
        expect(intact(copy), `byte ${i} bit ${bit}`).toBe(false);
      }
    }
  });

  it('refuses a length over the maximum before reading the payload', () => {
    const header = new Uint8Array(FRAME_HEADER_BYTES);
    header[0] = RecordType.Entry;
    new DataView(header.buffer).setUint32(4, RECORD_PAYLOAD_BYTES_MAX + 1, true);
    expect(frameHeader(header, 0)).toBe('length');
    expect(frameHeader(header.subarray(0, 6), 0)).toBe('truncated');
    new DataView(header.buffer).setUint32(4, 100, true);
    expect(frameHeader(header, 0)).toEqual({ type: RecordType.Entry, length: 100 });
    expect(decodeFrame(header, 0, 100)).toBe('truncated');
    // The maximum holds one entry of the largest data size with its framing.
    expect(RECORD_PAYLOAD_BYTES_MAX).toBe(24 + 4 + ENTRY_DATA_BYTES_MAX);
  });

  it('refuses every impossible field of an entries frame, even under a matching CRC', () => {
    const ok = entriesBatchWith(() => {});
    expect(decodeFrame(ok, 0, 36)).toEqual({ type: RecordType.Entry, firstIndex: 7, term: 3, count: 2 });
    expect(entriesOf(ok, 0).map((e) => [e.index, [...e.data]])).toEqual([
      [7, [1, 2, 3]],
      [8, [4]],
    ]);
    // The frame: header at 0, first index at 8, term at 16, count at 24, reserved at 28,
    // entry 7's header at 32 (data at 36), entry 8's at 39 (data at 43), padding 44..47.
    const cases: [string, (b: Uint8Array, v: DataView) => void, string][] = [
      ['a reserved byte of the frame header', (b) => (b[1] = 1), 'reserved'],
      ['the reserved u32 after the count', (_, v) => v.setUint32(28, 1, true), 'reserved'],
      ['first index 0', (_, v) => v.setUint32(8, 0, true), 'payload'],
      ['a first index over 2^53 - 1', (_, v) => v.setUint32(12, 0x20_0000, true), 'payload'],
      ['entries running past 2^53 - 1', (_, v) => (v.setUint32(8, 0xffff_ffff, true), v.setUint32(12, 0x1f_ffff, true)), 'payload'],
      ['term 0', (_, v) => v.setUint32(16, 0, true), 'payload'],
      ['count 0', (_, v) => v.setUint32(24, 0, true), 'payload'],
      ['a count of more entries than the frame holds', (_, v) => v.setUint32(24, 3, true), 'payload'],
      ['a count of fewer entries than the frame holds', (_, v) => v.setUint32(24, 1, true), 'payload'],
      ['an entry length past the frame', (_, v) => v.setUint32(39, 2, true), 'payload'],
      ['an entry length short of the frame', (_, v) => v.setUint32(32, 2, true), 'payload'],
      ['an entry length over the maximum', (_, v) => v.setUint32(32, 0x0fff_ffff, true), 'payload'],
      ['an unknown entry type', (_, v) => v.setUint32(32, 3 | (2 << 28), true), 'payload'],
      ['a padding byte', (b) => (b[45] = 1), 'padding'],
    ];
    for (const [name, change, problem] of cases) {
      const bytes = entriesBatchWith(change);
      expect(intact(bytes), name).toBe(false);
      expect(decodeFrame(bytes, 0, 36), name).toBe(problem);
    }
  });
});

describe('segment header', () => {
  it('round-trips and rejects damage', () => {
    const h = encodeSegmentHeader({ sequence: 7, firstIndex: 123_456_789_012 });
    expect(h.length).toBe(SEGMENT_HEADER_BYTES);
    expect([...h.subarray(0, 5)]).toEqual([0x52, 0x52, 0x57, 0x4c, 3]);
    expect(decodeSegmentHeader(h)).toEqual({ sequence: 7, firstIndex: 123_456_789_012 });
    for (let i = 0; i < SEGMENT_HEADER_BYTES; i++) {
      const copy = h.slice();
      copy[i]! ^= 0x10;
      expect(typeof decodeSegmentHeader(copy), `byte ${i}`).toBe('string');
    }
    expect(decodeSegmentHeader(h.subarray(0, 31))).toMatch(/truncated/);
    expect(unsupportedVersion(h)).toBeUndefined();
  });

  it('names another format version in an intact header, and only there', () => {
    for (const version of [1, 2, 4]) {
      const h = encodeSegmentHeader({ sequence: 1, firstIndex: 1 });
      h[4] = version;
      new DataView(h.buffer).setUint32(28, crc32(h.subarray(0, 28)), true);
      expect(unsupportedVersion(h)).toBe(version);
      expect(decodeSegmentHeader(h)).toBe(`unknown format version ${version}`);
      // A damaged header is not an old one: its CRC does not match.
      h[9]! ^= 1;
      expect(unsupportedVersion(h)).toBeUndefined();
    }
  });
});

describe('snapshot file', () => {
  it('round-trips metadata, membership and data, and rejects damage naming the file', () => {
    const conf = { ...emptyConfState([1, 2, 3]), learners: [7], votersOutgoing: [1, 4], learnersNext: [4], autoLeave: true };
    const snap = { meta: { index: 99, term: 4, conf }, data: Uint8Array.from([1, 2, 3]) };
    const bytes = concat(encodeSnapshotFile(snap));
    const back = decodeSnapshotFile(bytes, 'x.snap');
    expect(back.meta).toEqual(snap.meta);
    expect([...back.data]).toEqual([1, 2, 3]);
    for (const i of [0, 4, 9, 20, 30, 45, bytes.length - 1]) {
      const copy = bytes.slice();
      copy[i]! ^= 0x01;
      let error: unknown;
      try {
        decodeSnapshotFile(copy, 'x.snap');
      } catch (e) {
        error = e;
      }
      expect(error, `byte ${i}`).toBeInstanceOf(RingraftError);
      expect((error as RingraftError).code).toBe(ErrorCode.CORRUPT_LOG);
      expect((error as RingraftError).message).toContain('x.snap at byte');
    }
  });
});
