/**
 * The WAL's on-disk format: file names, the segment header, record frames and payloads.
 * docs/wal-format.md is the specification; this file is its implementation, and the two
 * must agree byte for byte. Everything here is pure: no I/O.
 *
 * All integers are little-endian. A u64 holds a JavaScript number, so it must be at most
 * 2^53 - 1; a larger value on disk is corruption.
 *
 * A frame (one record), starting at an 8-byte aligned offset:
 *
 * ```
 *  0      1            4          8             8+n    align8
 *  ┌──────┬────────────┬──────────┬─────────────┬───────┐
 *  │ type │ 0  0  0    │ length n │ payload     │ 0 pad │
 *  └──────┴────────────┴──────────┴─────────────┴───────┘
 * ```
 *
 * Frames carry no checksum of their own: a batch is covered by one CRC, in its commit record.
 * One CRC call over a whole batch costs a fraction of one call per record.
 *
 * Format version 3: an entries frame holds a run of consecutive entries of one term, whose
 * index and term it states once; each entry in it is a 4-byte word (data length and entry
 * type) and its data, unaligned. A 150-byte entry takes 154 bytes on disk (176 in version 2).
 */
import { ENTRY_DATA_BYTES_MAX, fail } from '../../base/index.ts';
import type { Entry, EntryType, HardState } from '../../core/index.ts';
import { crc32 } from './crc.ts';

/** "RRWL" as bytes 52 52 57 4C, read as a little-endian u32. */
export const SEGMENT_MAGIC = 0x4c57_5252;
/** "RRSN" as bytes 52 52 53 4E, read as a little-endian u32: the snapshot file magic. */
export const SNAPSHOT_MAGIC = 0x4e53_5252;
export const FORMAT_VERSION = 3;
export const SEGMENT_HEADER_BYTES = 32;
export const FRAME_HEADER_BYTES = 8;
export const FRAME_ALIGN_BYTES = 8;
/** Largest entry data the WAL stores: the shared limit of base/limits.ts. */
export { ENTRY_DATA_BYTES_MAX };
/** Bytes of an entries payload in front of its entries: first index, term, count, reserved. */
export const ENTRIES_FIXED_BYTES = 24;
/** Bytes in front of each entry's data in an entries payload: one u32 of length and type. */
export const ENTRY_HEADER_BYTES = 4;
/** The entry type sits in the top 4 bits of an entry's u32 header, the data length in the rest. */
const ENTRY_TYPE_SHIFT = 28;
const ENTRY_LENGTH_MASK = (1 << ENTRY_TYPE_SHIFT) - 1;
/** Entry types are 0 (normal) and 1 (configuration change). */
const ENTRY_TYPE_MAX = 1;
/**
 * Largest payload a frame may declare: an entries frame holding one entry of the largest
 * size. Checked before anything is allocated for a frame, so that a corrupted length cannot
 * make the reader allocate gigabytes.
 */
export const RECORD_PAYLOAD_BYTES_MAX = ENTRIES_FIXED_BYTES + ENTRY_HEADER_BYTES + ENTRY_DATA_BYTES_MAX;
/**
 * An entries frame is closed once its payload would pass this size (a single larger entry
 * gets a frame of its own), so that recovery, which reads a frame whole, scans runs of small
 * entries through its 1 MiB window however large the batch.
 */
export const ENTRIES_PAYLOAD_BYTES_TARGET = 256 * 1024;
export const HARD_STATE_PAYLOAD_BYTES = 24;
export const TRUNCATION_PAYLOAD_BYTES = 8;
export const COMMIT_PAYLOAD_BYTES = 16;
/** Offset of the batch CRC in a commit frame: the CRC covers every byte of the batch before it. */
export const COMMIT_CRC_OFFSET = FRAME_HEADER_BYTES + 12;
/** Bytes of a snapshot marker payload in front of the file name. */
export const SNAPSHOT_MARKER_FIXED_BYTES = 20;
/** Longest snapshot file name a marker holds (its length is a u8). */
export const SNAPSHOT_FILE_NAME_BYTES_MAX = 255;
/** Digits of the zero-padded numbers in file names: enough for any u64. */
export const FILE_NUMBER_DIGITS = 20;

/** Record types. 0 is invalid, so that zeroed (unwritten or preallocated) space never parses. */
export const RecordType = {
  Invalid: 0,
  /**
   * Log entries: on disk, a run of consecutive entries of one term (one frame); read back
   * ({@link DecodedRecord}, a recovery visitor), one entry at a time.
   */
  Entry: 1,
  /** Term, vote and commit. The newest one wins. */
  HardState: 2,
  /** Entries with index >= `index` are discarded. */
  Truncation: 3,
  /** A snapshot file now covers the log up to `index`. */
  SnapshotMarker: 4,
  /** Ends a batch: the batch's records take effect only if this record is intact. */
  Commit: 5,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

export const RECORD_TYPE_NAMES: Record<RecordType, string> = {
  0: 'invalid',
  1: 'entry',
  2: 'hard-state',
  3: 'truncation',
  4: 'snapshot',
  5: 'commit',
};

/**
 * What a snapshot marker does to the entries already in the log.
 * - `Compact`: a snapshot taken locally; entries up to its index are discarded, later ones kept.
 * - `Replace`: a snapshot received from the leader; every entry is discarded and the log
 *   continues after the snapshot's index.
 */
export const SnapshotKind = { Compact: 0, Replace: 1 } as const;
export type SnapshotKind = (typeof SnapshotKind)[keyof typeof SnapshotKind];

export interface SnapshotMarker {
  readonly index: number;
  readonly term: number;
  readonly kind: SnapshotKind;
  /** The snapshot file's name, in the WAL's directory. */
  readonly fileName: string;
}

/**
 * A record to encode. Commit records are added by {@link encodeBatch}, never passed to it.
 * An entries record is one run: consecutive entries of one term, at least one.
 */
export type WalRecord =
  | { readonly type: typeof RecordType.Entry; readonly entries: readonly Entry[] }
  | { readonly type: typeof RecordType.HardState; readonly hardState: HardState }
  | { readonly type: typeof RecordType.Truncation; readonly index: number }
  | { readonly type: typeof RecordType.SnapshotMarker; readonly marker: SnapshotMarker };

/** A record read back. An entry (one of an entries frame) carries its data's size, not the data. */
export type DecodedRecord =
  | { readonly type: typeof RecordType.Entry; readonly index: number; readonly term: number; readonly entryType: number; readonly dataBytes: number }
  | { readonly type: typeof RecordType.HardState; readonly hardState: HardState }
  | { readonly type: typeof RecordType.Truncation; readonly index: number }
  | { readonly type: typeof RecordType.SnapshotMarker; readonly marker: SnapshotMarker }
  | { readonly type: typeof RecordType.Commit; readonly batchBytes: number; readonly recordCount: number };

/** An entries frame read back and checked: its entries are walked with {@link forEachEntry}. */
export interface EntriesFrame {
  readonly type: typeof RecordType.Entry;
  readonly firstIndex: number;
  readonly term: number;
  readonly count: number;
}

/** A frame read back: an entries frame, or any other record. */
export type DecodedFrame = EntriesFrame | Exclude<DecodedRecord, { readonly type: typeof RecordType.Entry }>;

// ─── File names ──────────────────────────────────────────────────────────────────────

const SEGMENT_NAME = /^(\d{20})\.wal$/;
const SNAPSHOT_NAME = /^snapshot-(\d{20})\.snap$/;
export { TEMP_SUFFIX } from '../fs.ts';

function padded(n: number): string {
  return String(n).padStart(FILE_NUMBER_DIGITS, '0');
}

export function segmentFileName(sequence: number): string {
  return `${padded(sequence)}.wal`;
}

/** The sequence number in a segment file name, or undefined if `name` is not one. */
export function parseSegmentFileName(name: string): number | undefined {
  const m = SEGMENT_NAME.exec(name);
  if (m === null) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n >= 1 ? n : undefined;
}

export function snapshotFileName(index: number): string {
  return `snapshot-${padded(index)}.snap`;
}

export function isSnapshotFileName(name: string): boolean {
  return SNAPSHOT_NAME.test(name);
}

// ─── Integers ────────────────────────────────────────────────────────────────────────

const TWO_POW_32 = 0x1_0000_0000;
/** High u32 of the largest safe integer. */
const SAFE_HIGH_MAX = 0x1f_ffff;

export function setU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value >>> 0, true);
  view.setUint32(at + 4, Math.floor(value / TWO_POW_32), true);
}

/** The u64 at `at`, or -1 if it does not fit a safe integer (which only corruption causes). */
export function getU64(view: DataView, at: number): number {
  const high = view.getUint32(at + 4, true);
  if (high > SAFE_HIGH_MAX) return -1;
  return high * TWO_POW_32 + view.getUint32(at, true);
}

export function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Bytes a frame with an `payloadBytes` payload takes on disk, padding included. */
export function frameBytes(payloadBytes: number): number {
  return align8(FRAME_HEADER_BYTES + payloadBytes);
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ─── Segment header ──────────────────────────────────────────────────────────────────

export interface SegmentHeader {
  readonly sequence: number;
  /** The index the log continued at when the segment was created (last index + 1). */
  readonly firstIndex: number;
}

/**
 * ```
 *  0       4    5  6    8          16           24   28     32
 *  ┌───────┬────┬──┬────┬──────────┬────────────┬────┬──────┐
 *  │ magic │ver │0 │ 0  │ sequence │ firstIndex │ 0  │ crc  │
 *  └───────┴────┴──┴────┴──────────┴────────────┴────┴──────┘
 *  crc: CRC-32 of bytes [0, 28)
 * ```
 */
export function encodeSegmentHeader(h: SegmentHeader): Uint8Array {
  const out = new Uint8Array(SEGMENT_HEADER_BYTES);
  const view = viewOf(out);
  view.setUint32(0, SEGMENT_MAGIC, true);
  out[4] = FORMAT_VERSION;
  setU64(view, 8, h.sequence);
  setU64(view, 16, h.firstIndex);
  view.setUint32(28, crc32(out.subarray(0, 28)), true);
  return out;
}

/**
 * The format version of a segment header that is intact (its CRC and magic number check out)
 * but of a version other than {@link FORMAT_VERSION}; undefined for any other header.
 */
export function unsupportedVersion(bytes: Uint8Array): number | undefined {
  if (bytes.length < SEGMENT_HEADER_BYTES) return undefined;
  const view = viewOf(bytes);
  if (view.getUint32(28, true) !== crc32(bytes.subarray(0, 28)) || view.getUint32(0, true) !== SEGMENT_MAGIC) return undefined;
  return bytes[4] === FORMAT_VERSION ? undefined : bytes[4];
}

/** Decodes a segment header, or says in a few words what is wrong with it. */
export function decodeSegmentHeader(bytes: Uint8Array): SegmentHeader | string {
  if (bytes.length < SEGMENT_HEADER_BYTES) return `segment header truncated (${bytes.length} of ${SEGMENT_HEADER_BYTES} bytes)`;
  const view = viewOf(bytes);
  if (view.getUint32(28, true) !== crc32(bytes.subarray(0, 28))) return 'segment header checksum mismatch';
  if (view.getUint32(0, true) !== SEGMENT_MAGIC) return 'not a segment: bad magic number';
  if (bytes[4] !== FORMAT_VERSION) return `unknown format version ${bytes[4]}`;
  if (bytes[5] !== 0 || view.getUint16(6, true) !== 0 || view.getUint32(24, true) !== 0) return 'segment header reserved bytes not zero';
  const sequence = getU64(view, 8);
  const firstIndex = getU64(view, 16);
  if (sequence < 1 || firstIndex < 1) return 'segment header sequence or first index out of range';
  return { sequence, firstIndex };
}

// ─── Encoding a batch ────────────────────────────────────────────────────────────────

/**
 * Entry data at least this long is not copied into the batch buffer but written from the
 * caller's memory as its own iovec: copying a few hundred bytes is cheaper than an iovec,
 * copying megabytes is not.
 */
const REFERENCED_DATA_BYTES_MIN = 16 * 1024;

export interface EncodedBatch {
  /** The bytes to write, in order (one `writev`); one buffer unless entry data is referenced. */
  readonly buffers: readonly Uint8Array[];
  /** Total bytes of `buffers`. */
  readonly bytes: number;
  /** Offset of each record's frame from the start of the batch, in the order given (the commit record last). */
  readonly recordOffsets: readonly number[];
}

/** Payload bytes of an entries frame holding `entries[from, to)`. */
function entriesPayloadBytes(entries: readonly Entry[], from: number, to: number): number {
  let n = ENTRIES_FIXED_BYTES;
  for (let k = from; k < to; k++) n += ENTRY_HEADER_BYTES + entries[k]!.data.length;
  return n;
}

function payloadBytes(r: WalRecord): number {
  switch (r.type) {
    case RecordType.Entry:
      return entriesPayloadBytes(r.entries, 0, r.entries.length);
    case RecordType.HardState:
      return HARD_STATE_PAYLOAD_BYTES;
    case RecordType.Truncation:
      return TRUNCATION_PAYLOAD_BYTES;
    case RecordType.SnapshotMarker:
      return SNAPSHOT_MARKER_FIXED_BYTES + r.marker.fileName.length;
  }
}

function checkedPayloadBytes(r: WalRecord): number {
  const payload = payloadBytes(r);
  if (!(payload <= RECORD_PAYLOAD_BYTES_MAX)) fail(`record payload ${payload} over maximum`);
  return payload;
}

function isReferenced(data: Uint8Array): boolean {
  return data.length >= REFERENCED_DATA_BYTES_MIN;
}

/**
 * Encodes `records` followed by the commit record that ends their batch and holds the CRC of
 * every byte before its CRC field: the reference encoder, one frame per record as given
 * (the write path uses {@link BatchEncoder}, which must produce the same bytes). The caller
 * has checked every field (sizes, safe integers, runs of one term); a bad one here is a bug.
 */
export function encodeBatch(records: readonly WalRecord[]): EncodedBatch {
  const recordOffsets: number[] = [];
  const out = new ChunkWriter();
  for (const r of records) {
    recordOffsets.push(out.bytes);
    const payload = checkedPayloadBytes(r);
    out.frameHeader(r.type, payload);
    if (r.type === RecordType.Entry) {
      const first = r.entries[0]!;
      if (!r.entries.every((e, k) => e.term === first.term && e.index === first.index + k)) fail('an entries record is not a run');
      out.entriesFixed(first.index, first.term, r.entries.length);
      for (const e of r.entries) out.entry(e);
    } else {
      out.fixedRecord(r, payload);
    }
    out.pad(payload);
  }
  recordOffsets.push(out.bytes);
  return { buffers: out.finish(records.length), bytes: out.bytes, recordOffsets };
}

/**
 * Builds a batch's bytes as a list of buffers, for {@link encodeBatch}: simple rather than
 * fast (it allocates per record).
 */
class ChunkWriter {
  /** Bytes appended so far, referenced data included. */
  bytes = 0;
  private readonly buffers: Uint8Array[] = [];
  private inline: number[] = [];

  frameHeader(type: RecordType, payload: number): void {
    this.u32(type);
    this.u32(payload);
  }

  entriesFixed(firstIndex: number, term: number, count: number): void {
    this.u64(firstIndex);
    this.u64(term);
    this.u32(count);
    this.u32(0);
  }

  entry(e: Entry): void {
    this.u32(e.data.length | (e.type << ENTRY_TYPE_SHIFT));
    if (isReferenced(e.data)) {
      this.flush();
      this.buffers.push(e.data);
      this.bytes += e.data.length;
    } else {
      for (const b of e.data) this.byte(b);
    }
  }

  fixedRecord(r: WalRecord, payload: number): void {
    const bytes = new Uint8Array(payload);
    writeFixedPayload(viewOf(bytes), bytes, 0, r);
    for (const b of bytes) this.byte(b);
  }

  pad(payload: number): void {
    for (let i = FRAME_HEADER_BYTES + payload; i < frameBytes(payload); i++) this.byte(0);
  }

  /** Appends the commit record of a batch of `recordCount` records; returns every buffer. */
  finish(recordCount: number): Uint8Array[] {
    const batchBytes = this.bytes;
    this.frameHeader(RecordType.Commit, COMMIT_PAYLOAD_BYTES);
    this.u64(batchBytes);
    this.u32(recordCount);
    let crc = 0;
    for (const b of this.buffers) crc = crc32(b, crc);
    crc = crc32(Uint8Array.from(this.inline), crc);
    this.u32(crc);
    this.flush();
    return this.buffers;
  }

  private byte(b: number): void {
    this.inline.push(b);
    this.bytes++;
  }

  private u32(v: number): void {
    for (let i = 0; i < 4; i++) this.byte((v >>> (8 * i)) & 0xff);
  }

  private u64(v: number): void {
    this.u32(v >>> 0);
    this.u32(Math.floor(v / TWO_POW_32));
  }

  private flush(): void {
    if (this.inline.length > 0) this.buffers.push(Uint8Array.from(this.inline));
    this.inline = [];
  }
}

/** Writes the payload of a record other than entries at `at`; returns the offset after it. */
function writeFixedPayload(view: DataView, out: Uint8Array, at: number, r: WalRecord): number {
  switch (r.type) {
    case RecordType.Entry:
      fail('entries are not a fixed payload');
    case RecordType.HardState:
      setU64(view, at, r.hardState.term);
      setU64(view, at + 8, r.hardState.vote);
      setU64(view, at + 16, r.hardState.commit);
      return at + HARD_STATE_PAYLOAD_BYTES;
    case RecordType.Truncation:
      setU64(view, at, r.index);
      return at + TRUNCATION_PAYLOAD_BYTES;
    case RecordType.SnapshotMarker: {
      const m = r.marker;
      setU64(view, at, m.index);
      setU64(view, at + 8, m.term);
      out[at + 16] = m.kind;
      out[at + 17] = m.fileName.length;
      view.setUint16(at + 18, 0, true);
      for (let i = 0; i < m.fileName.length; i++) out[at + SNAPSHOT_MARKER_FIXED_BYTES + i] = m.fileName.charCodeAt(i);
      return at + SNAPSHOT_MARKER_FIXED_BYTES + m.fileName.length;
    }
  }
}

// ─── Decoding a frame ────────────────────────────────────────────────────────────────

/**
 * Why bytes at a frame's position are not an intact record.
 * - `truncated`: the file ends inside the frame.
 * - `length`: the declared payload length is over {@link RECORD_PAYLOAD_BYTES_MAX}.
 * - `checksum`: the batch CRC in the commit record does not match (a torn write, or corruption).
 * - `type`: the type is 0 (unwritten space) or, in a batch whose CRC matches, unknown.
 * - `reserved`: a reserved byte is not zero.
 * - `padding`: a padding byte after the payload is not zero.
 * - `payload`: the payload does not fit its type (wrong size, a u64 out of range, entries
 *   that do not fill their frame exactly or that count differently from it, an unknown
 *   entry type).
 */
export type FrameProblem = 'truncated' | 'length' | 'checksum' | 'type' | 'reserved' | 'padding' | 'payload';

export const FRAME_PROBLEM_TEXT: Record<FrameProblem, string> = {
  truncated: 'record runs past the end of the file',
  length: 'record length over the maximum',
  checksum: 'batch checksum mismatch',
  type: 'invalid record type',
  reserved: 'record reserved bytes not zero',
  padding: 'record padding not zero',
  payload: 'record payload malformed',
};

/** A frame header: its type byte and declared payload length. */
export interface FrameHeader {
  readonly type: number;
  readonly length: number;
}

/**
 * The frame header at `at`, or a problem: `truncated` if `bytes` ends inside it, `type` for
 * type 0 (zeroed, never written space), `length` over {@link RECORD_PAYLOAD_BYTES_MAX}. Checked
 * before anything is read or allocated for the payload. Nothing here is verified by a CRC yet.
 */
export function frameHeader(bytes: Uint8Array, at: number): FrameHeader | FrameProblem {
  if (bytes.length - at < FRAME_HEADER_BYTES) return 'truncated';
  const type = bytes[at]!;
  if (type === RecordType.Invalid) return 'type';
  const length = viewOf(bytes).getUint32(at + 4, true);
  if (length > RECORD_PAYLOAD_BYTES_MAX) return 'length';
  return { type, length };
}

/**
 * The commit record's fields at `at` (a frame whose header says commit), unverified: the
 * batch CRC is checked by the caller over the bytes it covers.
 */
export function commitFields(bytes: Uint8Array, at: number): { batchBytes: number; recordCount: number; crc: number } | FrameProblem {
  if (bytes.length - at < frameBytes(COMMIT_PAYLOAD_BYTES)) return 'truncated';
  const view = viewOf(bytes);
  if (view.getUint32(at + 4, true) !== COMMIT_PAYLOAD_BYTES) return 'payload';
  const batchBytes = getU64(view, at + FRAME_HEADER_BYTES);
  if (batchBytes < 0) return 'payload';
  return { batchBytes, recordCount: view.getUint32(at + FRAME_HEADER_BYTES + 8, true), crc: view.getUint32(at + COMMIT_CRC_OFFSET, true) };
}

/**
 * Decodes the frame at `at`, whose header declared `length` (see {@link frameHeader}) and whose
 * batch CRC matched. `bytes` must hold the whole frame, padding included, or the frame is
 * truncated. An entries frame is checked whole (every entry's header, and that they fill the
 * payload exactly). Any problem reported here is in bytes the CRC covers: corruption, not a
 * torn write.
 */
export function decodeFrame(bytes: Uint8Array, at: number, length: number): DecodedFrame | FrameProblem {
  const total = frameBytes(length);
  if (bytes.length - at < total) return 'truncated';
  const view = viewOf(bytes);
  const end = at + FRAME_HEADER_BYTES + length;
  if (bytes[at + 1] !== 0 || view.getUint16(at + 2, true) !== 0) return 'reserved';
  for (let i = end; i < at + total; i++) if (bytes[i] !== 0) return 'padding';
  return decodePayload(bytes, view, bytes[at]!, at + FRAME_HEADER_BYTES, length);
}

function decodePayload(bytes: Uint8Array, view: DataView, type: number, p: number, length: number): DecodedFrame | FrameProblem {
  switch (type) {
    case RecordType.Entry:
      return decodeEntries(view, p, length);
    case RecordType.HardState: {
      if (length !== HARD_STATE_PAYLOAD_BYTES) return 'payload';
      const hardState = { term: getU64(view, p), vote: getU64(view, p + 8), commit: getU64(view, p + 16) };
      if (hardState.term < 0 || hardState.vote < 0 || hardState.commit < 0) return 'payload';
      return { type, hardState };
    }
    case RecordType.Truncation: {
      if (length !== TRUNCATION_PAYLOAD_BYTES) return 'payload';
      const index = getU64(view, p);
      if (index < 1) return 'payload';
      return { type, index };
    }
    case RecordType.SnapshotMarker: {
      if (length < SNAPSHOT_MARKER_FIXED_BYTES) return 'payload';
      const nameBytes = bytes[p + 17]!;
      if (length !== SNAPSHOT_MARKER_FIXED_BYTES + nameBytes) return 'payload';
      if (view.getUint16(p + 18, true) !== 0) return 'reserved';
      const index = getU64(view, p);
      const term = getU64(view, p + 8);
      const kind = bytes[p + 16]!;
      if (index < 1 || term < 1 || (kind !== SnapshotKind.Compact && kind !== SnapshotKind.Replace)) return 'payload';
      let fileName = '';
      for (let i = 0; i < nameBytes; i++) fileName += String.fromCharCode(bytes[p + SNAPSHOT_MARKER_FIXED_BYTES + i]!);
      if (!isSnapshotFileName(fileName)) return 'payload';
      return { type, marker: { index, term, kind, fileName } };
    }
    case RecordType.Commit: {
      if (length !== COMMIT_PAYLOAD_BYTES) return 'payload';
      const batchBytes = getU64(view, p);
      if (batchBytes < 0) return 'payload';
      return { type, batchBytes, recordCount: view.getUint32(p + 8, true) };
    }
    default:
      return 'type';
  }
}

/** An entries payload at `p`: its fixed fields, and its entries' headers walked to its end. */
function decodeEntries(view: DataView, p: number, length: number): EntriesFrame | FrameProblem {
  if (length < ENTRIES_FIXED_BYTES + ENTRY_HEADER_BYTES) return 'payload';
  if (view.getUint32(p + 20, true) !== 0) return 'reserved';
  const firstIndex = getU64(view, p);
  const term = getU64(view, p + 8);
  const count = view.getUint32(p + 16, true);
  if (firstIndex < 1 || term < 1 || count < 1 || count - 1 > Number.MAX_SAFE_INTEGER - firstIndex) return 'payload';
  const end = p + length;
  let at = p + ENTRIES_FIXED_BYTES;
  for (let k = 0; k < count; k++) {
    if (end - at < ENTRY_HEADER_BYTES) return 'payload';
    const word = view.getUint32(at, true);
    const dataBytes = word & ENTRY_LENGTH_MASK;
    if (word >>> ENTRY_TYPE_SHIFT > ENTRY_TYPE_MAX || dataBytes > ENTRY_DATA_BYTES_MAX) return 'payload';
    at += ENTRY_HEADER_BYTES + dataBytes;
  }
  if (at !== end) return 'payload';
  return { type: RecordType.Entry, firstIndex, term, count };
}

/**
 * Calls `visit` for each entry of the entries frame at `at` (checked by {@link decodeFrame}):
 * `k` counts from 0, `headerAt` is the offset of the entry's header in `bytes` (its data
 * follows it).
 */
export function forEachEntry(bytes: Uint8Array, at: number, frame: EntriesFrame, visit: (k: number, headerAt: number, entryType: number, dataBytes: number) => void): void {
  const view = viewOf(bytes);
  let p = at + FRAME_HEADER_BYTES + ENTRIES_FIXED_BYTES;
  for (let k = 0; k < frame.count; k++) {
    const word = view.getUint32(p, true);
    const dataBytes = word & ENTRY_LENGTH_MASK;
    visit(k, p, word >>> ENTRY_TYPE_SHIFT, dataBytes);
    p += ENTRY_HEADER_BYTES + dataBytes;
  }
}

/**
 * The entry whose header is at `headerAt` in an intact entries frame. Its data is a view
 * into `bytes`, not a copy.
 */
export function entryAt(bytes: Uint8Array, headerAt: number, index: number, term: number): Entry {
  const word = viewOf(bytes).getUint32(headerAt, true);
  const data = headerAt + ENTRY_HEADER_BYTES;
  return { index, term, type: (word >>> ENTRY_TYPE_SHIFT) as EntryType, data: bytes.subarray(data, data + (word & ENTRY_LENGTH_MASK)) };
}

// ─── Encoding a batch of entries, without record objects ─────────────────────────────

/** What {@link BatchEncoder.encode} returns; `buffers` may be views into the encoder's scratch buffer. */
export interface EncodedEntryBatch {
  /** The bytes to write, in order (one `writev`); one buffer unless entry data is referenced. */
  readonly buffers: Uint8Array[];
  /** Total bytes of `buffers`. */
  readonly bytes: number;
}

/** Scratch buffers up to this size are kept for the next batch; a larger one is used once. */
const SCRATCH_KEEP_BYTES_MAX = 4 * 1024 * 1024;
const SCRATCH_BYTES_MIN = 64 * 1024;

/**
 * Where the entries frame that starts at `entries[from]` ends (exclusive): at a change of
 * term, or before the entry that would take its payload past
 * {@link ENTRIES_PAYLOAD_BYTES_TARGET} (a frame holds at least one entry). `payload` gets the
 * frame's payload bytes. The one rule that splits entries into frames.
 */
export function entriesRunEnd(entries: readonly Entry[], from: number): { end: number; payload: number } {
  const term = entries[from]!.term;
  let payload = ENTRIES_FIXED_BYTES + ENTRY_HEADER_BYTES + entries[from]!.data.length;
  let k = from + 1;
  for (; k < entries.length; k++) {
    const e = entries[k]!;
    const next = payload + ENTRY_HEADER_BYTES + e.data.length;
    if (e.term !== term || next > ENTRIES_PAYLOAD_BYTES_TARGET) break;
    payload = next;
  }
  return { end: k, payload };
}

/**
 * Encodes batches the way {@link encodeBatch} does, byte for byte, with `entries[from..]`
 * split into entries records by {@link entriesRunEnd}, taken straight from the caller's array
 * (no record object per entry) into one reused scratch buffer, sized by a first pass.
 *
 * The buffers returned are valid until the next call: the caller must have written them
 * (synchronously) before encoding again.
 */
export class BatchEncoder {
  private scratch = new Uint8Array(0);
  private view = new DataView(this.scratch.buffer);
  /** Per entries frame of the batch being encoded: its end (exclusive) in `entries` and its payload bytes. */
  private runEnds: number[] = [];
  private runPayloads: number[] = [];

  /**
   * The batch of `head` records, then `entries[from..]` as entries records, then `tail`
   * records, then the commit record. The caller has checked every field (sizes, safe
   * integers, consecutive indexes).
   */
  encode(head: readonly WalRecord[], entries: readonly Entry[], from: number, tail: readonly WalRecord[]): EncodedEntryBatch {
    // Pass 1: the frames and their sizes, so the buffer is sized once.
    let bytes = 0;
    let referencedBytes = 0;
    for (let k = 0; k < head.length; k++) bytes += frameBytes(checkedPayloadBytes(head[k]!));
    const runs = this.splitRuns(entries, from);
    for (let r = 0; r < runs; r++) bytes += frameBytes(this.runPayloads[r]!);
    for (let k = from; k < entries.length; k++) {
      const n = entries[k]!.data.length;
      if (!(n <= ENTRY_DATA_BYTES_MAX)) fail(`entry data ${n} over maximum`);
      if (n >= REFERENCED_DATA_BYTES_MIN) referencedBytes += n;
    }
    for (let k = 0; k < tail.length; k++) bytes += frameBytes(checkedPayloadBytes(tail[k]!));
    const batchBytesBeforeCommit = bytes;
    bytes += frameBytes(COMMIT_PAYLOAD_BYTES);

    // Pass 2: the bytes. `at` is the write position in the scratch buffer, which holds
    // everything but referenced data; `sliceStart` is where the current inline iovec began.
    const { out, view } = this.scratchFor(bytes - referencedBytes);
    const buffers: Uint8Array[] = [];
    let at = 0;
    let sliceStart = 0;
    for (let k = 0; k < head.length; k++) at = writeFixedRecord(view, out, at, head[k]!);
    let first = from;
    for (let r = 0; r < runs; r++) {
      const end = this.runEnds[r]!;
      const payload = this.runPayloads[r]!;
      const e0 = entries[first]!;
      view.setUint32(at, RecordType.Entry, true);
      view.setUint32(at + 4, payload, true);
      setU64(view, at + 8, e0.index);
      setU64(view, at + 16, e0.term);
      view.setUint32(at + 24, end - first, true);
      view.setUint32(at + 28, 0, true);
      at += FRAME_HEADER_BYTES + ENTRIES_FIXED_BYTES;
      for (let k = first; k < end; k++) {
        const e = entries[k]!;
        const data = e.data;
        const n = data.length;
        view.setUint32(at, n | (e.type << ENTRY_TYPE_SHIFT), true);
        at += ENTRY_HEADER_BYTES;
        if (referencedBytes > 0 && n >= REFERENCED_DATA_BYTES_MIN) {
          buffers.push(out.subarray(sliceStart, at), data);
          sliceStart = at;
        } else {
          out.set(data, at);
          at += n;
        }
      }
      // At most 7 bytes of padding: a loop is cheaper than Buffer.fill's call.
      for (let pad = (8 - ((FRAME_HEADER_BYTES + payload) & 7)) & 7; pad > 0; pad--) out[at++] = 0;
      first = end;
    }
    for (let k = 0; k < tail.length; k++) at = writeFixedRecord(view, out, at, tail[k]!);
    view.setUint32(at, RecordType.Commit, true);
    view.setUint32(at + 4, COMMIT_PAYLOAD_BYTES, true);
    at += FRAME_HEADER_BYTES;
    setU64(view, at, batchBytesBeforeCommit);
    view.setUint32(at + 8, head.length + runs + tail.length, true);
    at += 12;
    let crc = 0;
    for (let k = 0; k < buffers.length; k++) crc = crc32(buffers[k]!, crc);
    crc = crc32(out.subarray(sliceStart, at), crc);
    view.setUint32(at, crc, true);
    at += 4;
    if (at + referencedBytes !== bytes) fail(`encoded ${at + referencedBytes} of ${bytes} bytes`);
    buffers.push(out.subarray(sliceStart, at));
    return { buffers, bytes };
  }

  /** Splits `entries[from..]` into entries frames (into runEnds, runPayloads); returns how many. */
  private splitRuns(entries: readonly Entry[], from: number): number {
    let runs = 0;
    for (let k = from; k < entries.length; runs++) {
      const run = entriesRunEnd(entries, k);
      this.runEnds[runs] = run.end;
      this.runPayloads[runs] = run.payload;
      k = run.end;
    }
    return runs;
  }

  /** A scratch buffer of at least `bytes`: the kept one, grown, or (when large) one used once. */
  private scratchFor(bytes: number): { out: Uint8Array; view: DataView } {
    if (this.scratch.length >= bytes) return { out: this.scratch, view: this.view };
    if (bytes > SCRATCH_KEEP_BYTES_MAX) {
      const out = new Uint8Array(bytes);
      return { out, view: new DataView(out.buffer) };
    }
    this.scratch = new Uint8Array(Math.min(SCRATCH_KEEP_BYTES_MAX, Math.max(bytes, SCRATCH_BYTES_MIN, 2 * this.scratch.length)));
    this.view = new DataView(this.scratch.buffer);
    return { out: this.scratch, view: this.view };
  }
}

/** Writes record `r` (not entries; inline, padding included) at `at`; returns the offset after its frame. */
function writeFixedRecord(view: DataView, out: Uint8Array, at: number, r: WalRecord): number {
  const payload = checkedPayloadBytes(r);
  view.setUint32(at, r.type, true);
  view.setUint32(at + 4, payload, true);
  let p = writeFixedPayload(view, out, at + FRAME_HEADER_BYTES, r);
  const end = at + frameBytes(payload);
  while (p < end) out[p++] = 0;
  return end;
}
