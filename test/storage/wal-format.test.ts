// Proves the record format byte for byte: every record type round-trips through
// encodeBatch/decodeFrame (fast-check, with data inline and referenced as its own iovec),
// frames are 8-byte aligned with zero padding, the commit record's CRC covers the whole batch,
// zeroed space never parses as a record, a flipped bit anywhere in a batch is detected, a
// length over the maximum is refused before anything is read for it, and segment headers and
// snapshot files round-trip and reject damage. The byte layouts checked here are the ones
// docs/wal-format.md specifies.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, RingraftError, emptyConfState } from '../../src/core/index.ts';
import { crc32 } from '../../src/storage/wal/crc.ts';
import {
  COMMIT_CRC_OFFSET,
  FRAME_HEADER_BYTES,
  RECORD_PAYLOAD_BYTES_MAX,
  RecordType,
  SEGMENT_HEADER_BYTES,
  SnapshotKind,
  decodeFrame,
  decodeSegmentHeader,
  encodeBatch,
  encodeSegmentHeader,
  entryFromFrame,
  frameBytes,
  frameHeader,
  type DecodedRecord,
  type WalRecord,
} from '../../src/storage/wal/format.ts';
import { decodeSnapshotFile, encodeSnapshotFile } from '../../src/storage/wal/snapshot-file.ts';

const safeIndex = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const recordArb: fc.Arbitrary<WalRecord> = fc.oneof(
  fc.record({
    type: fc.constant(RecordType.Entry),
    entry: fc.record({ index: safeIndex, term: safeIndex, type: fc.constantFrom(0 as const, 1 as const), data: fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ minLength: 16 * 1024, maxLength: 17 * 1024 })) }),
  }),
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
function decodeAll(bytes: Uint8Array): { records: DecodedRecord[]; offsets: number[] } {
  const records: DecodedRecord[] = [];
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
    records.push(r);
    offsets.push(at);
    at += frameBytes(header.length);
  }
  return { records, offsets };
}

/** Whether `bytes` hold exactly one intact batch (the checks recovery makes), not throwing. */
function intact(bytes: Uint8Array): boolean {
  try {
    const { records } = decodeAll(bytes);
    const commit = records.at(-1);
    return commit?.type === RecordType.Commit && commit.recordCount === records.length - 1 && records.slice(0, -1).every((r) => r.type !== RecordType.Commit);
  } catch {
    return false;
  }
}

function expected(r: WalRecord): DecodedRecord {
  switch (r.type) {
    case RecordType.Entry:
      return { type: r.type, index: r.entry.index, term: r.entry.term, entryType: r.entry.type, dataBytes: r.entry.data.length };
    case RecordType.HardState:
      return { type: r.type, hardState: r.hardState };
    case RecordType.Truncation:
      return { type: r.type, index: r.index };
    case RecordType.SnapshotMarker:
      return { type: r.type, marker: r.marker };
  }
}

describe('WAL records', () => {
  it('round-trip through a batch, aligned, with a commit record that counts them', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 1, maxLength: 12 }), (records) => {
        const batch = encodeBatch(records);
        const bytes = concat(batch.buffers);
        expect(bytes.length).toBe(batch.bytes);
        expect(bytes.length % 8).toBe(0);
        const { records: decoded, offsets } = decodeAll(bytes);
        expect(offsets).toEqual(batch.recordOffsets);
        expect(decoded.slice(0, -1)).toEqual(records.map(expected));
        expect(decoded.at(-1)).toEqual({ type: RecordType.Commit, batchBytes: batch.recordOffsets.at(-1), recordCount: records.length });
        records.forEach((r, k) => {
          if (r.type !== RecordType.Entry) return;
          const e = entryFromFrame(bytes, offsets[k]!, 16 + r.entry.data.length);
          expect(e.index).toBe(r.entry.index);
          expect([...e.data]).toEqual([...r.entry.data]);
        });
      }),
      { numRuns: 200 },
    );
  });

  it('lays out an entry frame and the commit record as the spec says', () => {
    const bytes = concat(encodeBatch([{ type: RecordType.Entry, entry: { index: 0x1_0000_0002, term: 3, type: 1, data: Uint8Array.from([0xaa, 0xbb]) } }]).buffers);
    const view = new DataView(bytes.buffer);
    expect([...bytes.subarray(0, 8)]).toEqual([1, 1, 0, 0, 18, 0, 0, 0]);
    expect([...bytes.subarray(8, 32)]).toEqual([2, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb, 0, 0, 0, 0, 0, 0]);
    expect(frameBytes(18)).toBe(32);
    // The commit record: header, batch bytes u64, record count u32, CRC of every byte before it.
    expect(bytes.length).toBe(32 + 24);
    expect([...bytes.subarray(32, 52)]).toEqual([5, 0, 0, 0, 16, 0, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
    expect(view.getUint32(52, true)).toBe(crc32(bytes.subarray(0, 52)));
  });

  it('never parses zeroed space', () => {
    const zeros = new Uint8Array(64);
    expect(frameHeader(zeros, 0)).toBe('type');
    expect(intact(zeros)).toBe(false);
  });

  it('detects a flipped bit anywhere in a batch', () => {
    const bytes = concat(encodeBatch([{ type: RecordType.HardState, hardState: { term: 5, vote: 2, commit: 9 } }]).buffers);
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
  });
});

describe('segment header', () => {
  it('round-trips and rejects damage', () => {
    const h = encodeSegmentHeader({ sequence: 7, firstIndex: 123_456_789_012 });
    expect(h.length).toBe(SEGMENT_HEADER_BYTES);
    expect([...h.subarray(0, 5)]).toEqual([0x52, 0x52, 0x57, 0x4c, 2]);
    expect(decodeSegmentHeader(h)).toEqual({ sequence: 7, firstIndex: 123_456_789_012 });
    for (let i = 0; i < SEGMENT_HEADER_BYTES; i++) {
      const copy = h.slice();
      copy[i]! ^= 0x10;
      expect(typeof decodeSegmentHeader(copy), `byte ${i}`).toBe('string');
    }
    expect(decodeSegmentHeader(h.subarray(0, 31))).toMatch(/truncated/);
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
