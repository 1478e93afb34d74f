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
 *  0      1     2      4          8             8+n    align8
 *  ┌──────┬─────┬──────┬──────────┬─────────────┬───────┐
 *  │ type │ aux │  0   │ length n │ payload     │ 0 pad │
 *  └──────┴─────┴──────┴──────────┴─────────────┴───────┘
 *  aux: the entry type in an entry frame, 0 in every other frame
 * ```
 *
 * Frames carry no checksum of their own: a batch is covered by one CRC, in its commit record
 * (format version 2). One CRC call over a whole batch costs a fraction of one call per record.
 */
import type { Entry, EntryType, HardState } from '../../core/index.ts';
import { crc32 } from './crc.ts';

/** "RRWL" as bytes 52 52 57 4C, read as a little-endian u32. */
export const SEGMENT_MAGIC = 0x4c57_5252;
/** "RRSN" as bytes 52 52 53 4E, read as a little-endian u32: the snapshot file magic. */
export const SNAPSHOT_MAGIC = 0x4e53_5252;
export const FORMAT_VERSION = 2;
export const SEGMENT_HEADER_BYTES = 32;
export const FRAME_HEADER_BYTES = 8;
export const FRAME_ALIGN_BYTES = 8;
/**
 * Largest payload a frame may declare. Checked before anything is allocated for a frame, so
 * that a corrupted length cannot make the reader allocate gigabytes.
 */
export const RECORD_PAYLOAD_BYTES_MAX = 64 * 1024 * 1024;
/** Bytes of an entry payload in front of its data: index, term (the entry type is in the frame header). */
export const ENTRY_FIXED_BYTES = 16;
/** Entry types are 0 (normal) and 1 (configuration change). */
const ENTRY_TYPE_MAX = 1;
/** Largest entry data a record holds. */
export const ENTRY_DATA_BYTES_MAX = RECORD_PAYLOAD_BYTES_MAX - ENTRY_FIXED_BYTES;
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
  /** One log entry. */
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

/** A record to encode. Commit records are added by {@link encodeBatch}, never passed to it. */
export type WalRecord =
  | { readonly type: typeof RecordType.Entry; readonly entry: Entry }
  | { readonly type: typeof RecordType.HardState; readonly hardState: HardState }
  | { readonly type: typeof RecordType.Truncation; readonly index: number }
  | { readonly type: typeof RecordType.SnapshotMarker; readonly marker: SnapshotMarker };

/** A record read back. Entries carry their data's size, not the data. */
export type DecodedRecord =
  | { readonly type: typeof RecordType.Entry; readonly index: number; readonly term: number; readonly entryType: number; readonly dataBytes: number }
  | { readonly type: typeof RecordType.HardState; readonly hardState: HardState }
  | { readonly type: typeof RecordType.Truncation; readonly index: number }
  | { readonly type: typeof RecordType.SnapshotMarker; readonly marker: SnapshotMarker }
  | { readonly type: typeof RecordType.Commit; readonly batchBytes: number; readonly recordCount: number };

// ─── File names ──────────────────────────────────────────────────────────────────────

const SEGMENT_NAME = /^(\d{20})\.wal$/;
const SNAPSHOT_NAME = /^snapshot-(\d{20})\.snap$/;
export const TEMP_SUFFIX = '.tmp';

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
const INLINE_DATA_BYTES_MAX = 16 * 1024;

export interface EncodedBatch {
  /** The bytes to write, in order (one `writev`); one buffer unless entry data is referenced. */
  readonly buffers: readonly Uint8Array[];
  /** Total bytes of `buffers`. */
  readonly bytes: number;
  /** Offset of each record's frame from the start of the batch, in the order given (the commit record last). */
  readonly recordOffsets: readonly number[];
}

function payloadBytes(r: WalRecord): number {
  switch (r.type) {
    case RecordType.Entry:
      return ENTRY_FIXED_BYTES + r.entry.data.length;
    case RecordType.HardState:
      return HARD_STATE_PAYLOAD_BYTES;
    case RecordType.Truncation:
      return TRUNCATION_PAYLOAD_BYTES;
    case RecordType.SnapshotMarker:
      return SNAPSHOT_MARKER_FIXED_BYTES + r.marker.fileName.length;
  }
}

function isReferenced(r: WalRecord): r is { readonly type: typeof RecordType.Entry; readonly entry: Entry } {
  return r.type === RecordType.Entry && r.entry.data.length >= INLINE_DATA_BYTES_MAX;
}

/**
 * Encodes `records` followed by the commit record that ends their batch and holds the CRC of
 * every byte before its CRC field. The caller has checked every field (sizes, safe integers);
 * a bad one here is a bug.
 */
export function encodeBatch(records: readonly WalRecord[]): EncodedBatch {
  // Pass 1: offsets and sizes, so the buffer is allocated once.
  const recordOffsets: number[] = new Array(records.length + 1);
  let bytes = 0;
  let inlineBytes = 0;
  for (let k = 0; k < records.length; k++) {
    const r = records[k]!;
    const payload = payloadBytes(r);
    if (!(payload <= RECORD_PAYLOAD_BYTES_MAX)) throw new Error(`assertion failed: record payload ${payload} over maximum`);
    recordOffsets[k] = bytes;
    const frame = frameBytes(payload);
    bytes += frame;
    inlineBytes += isReferenced(r) ? frame - r.entry.data.length : frame;
  }
  const batchBytesBeforeCommit = bytes;
  recordOffsets[records.length] = bytes;
  const commitFrameBytes = frameBytes(COMMIT_PAYLOAD_BYTES);
  bytes += commitFrameBytes;
  inlineBytes += commitFrameBytes;

  // Pass 2: the bytes. `inline` gets everything except referenced entry data; `at` is the
  // write position in it and `sliceStart` where the current inline iovec began.
  const inline = Buffer.allocUnsafe(inlineBytes);
  const view = viewOf(inline);
  const buffers: Uint8Array[] = [];
  let at = 0;
  let sliceStart = 0;
  for (const r of records) {
    const payload = payloadBytes(r);
    writeFrameHeader(view, inline, at, r.type, r.type === RecordType.Entry ? r.entry.type : 0, payload);
    at += FRAME_HEADER_BYTES;
    if (isReferenced(r)) {
      writeEntryFixed(view, at, r.entry);
      at += ENTRY_FIXED_BYTES;
      buffers.push(inline.subarray(sliceStart, at), r.entry.data);
      sliceStart = at;
    } else {
      at = writePayload(view, inline, at, r);
    }
    // At most 7 bytes of padding: a loop is cheaper than Buffer.fill's call.
    const padEnd = at + align8(FRAME_HEADER_BYTES + payload) - FRAME_HEADER_BYTES - payload;
    while (at < padEnd) inline[at++] = 0;
  }
  writeFrameHeader(view, inline, at, RecordType.Commit, 0, COMMIT_PAYLOAD_BYTES);
  at += FRAME_HEADER_BYTES;
  setU64(view, at, batchBytesBeforeCommit);
  view.setUint32(at + 8, records.length, true);
  at += 12;
  // The batch CRC: one call per buffer, over everything before the CRC field.
  let crc = 0;
  for (const b of buffers) crc = crc32(b, crc);
  crc = crc32(inline.subarray(sliceStart, at), crc);
  view.setUint32(at, crc, true);
  at += 4;
  if (at !== inlineBytes) throw new Error(`assertion failed: encoded ${at} of ${inlineBytes} inline bytes`);
  buffers.push(inline.subarray(sliceStart, at));
  return { buffers, bytes, recordOffsets };
}

function writeFrameHeader(view: DataView, out: Uint8Array, at: number, type: RecordType, aux: number, payload: number): void {
  out[at] = type;
  out[at + 1] = aux;
  view.setUint16(at + 2, 0, true);
  view.setUint32(at + 4, payload, true);
}

function writeEntryFixed(view: DataView, at: number, e: Entry): void {
  setU64(view, at, e.index);
  setU64(view, at + 8, e.term);
}

/** Writes `r`'s payload at `at`; returns the offset after it. */
function writePayload(view: DataView, out: Uint8Array, at: number, r: WalRecord): number {
  switch (r.type) {
    case RecordType.Entry:
      writeEntryFixed(view, at, r.entry);
      out.set(r.entry.data, at + ENTRY_FIXED_BYTES);
      return at + ENTRY_FIXED_BYTES + r.entry.data.length;
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
 * - `payload`: the payload does not fit its type (wrong size, a u64 out of range).
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
 * truncated. Any problem reported here is in bytes the CRC covers: corruption, not a torn write.
 */
export function decodeFrame(bytes: Uint8Array, at: number, length: number): DecodedRecord | FrameProblem {
  const total = frameBytes(length);
  if (bytes.length - at < total) return 'truncated';
  const view = viewOf(bytes);
  const end = at + FRAME_HEADER_BYTES + length;
  const type = bytes[at]!;
  if ((type !== RecordType.Entry && bytes[at + 1] !== 0) || view.getUint16(at + 2, true) !== 0) return 'reserved';
  for (let i = end; i < at + total; i++) if (bytes[i] !== 0) return 'padding';
  return decodePayload(bytes, view, type, bytes[at + 1]!, at + FRAME_HEADER_BYTES, length);
}

function decodePayload(bytes: Uint8Array, view: DataView, type: number, aux: number, p: number, length: number): DecodedRecord | FrameProblem {
  switch (type) {
    case RecordType.Entry: {
      if (length < ENTRY_FIXED_BYTES) return 'payload';
      const index = getU64(view, p);
      const term = getU64(view, p + 8);
      if (index < 1 || term < 1 || aux > ENTRY_TYPE_MAX) return 'payload';
      return { type, index, term, entryType: aux, dataBytes: length - ENTRY_FIXED_BYTES };
    }
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

/**
 * The entry in an intact entry frame at `at` (checked by {@link decodeFrame}). Its data is a
 * view into `bytes`, not a copy.
 */
export function entryFromFrame(bytes: Uint8Array, at: number, length: number): Entry {
  const view = viewOf(bytes);
  const p = at + FRAME_HEADER_BYTES;
  return {
    index: getU64(view, p),
    term: getU64(view, p + 8),
    type: bytes[at + 1] as EntryType,
    data: bytes.subarray(p + ENTRY_FIXED_BYTES, p + length),
  };
}

// ─── Encoding a batch of entries, without record objects ─────────────────────────────

/** What {@link BatchEncoder.encode} returns; `buffers` may be views into the encoder's scratch buffer. */
export interface EncodedEntryBatch {
  /** The bytes to write, in order (one `writev`); one buffer unless entry data is referenced. */
  readonly buffers: Uint8Array[];
  /** Total bytes of `buffers`. */
  readonly bytes: number;
  /**
   * Offset of the first entry's frame from the start of the batch; entry k + 1's frame
   * follows entry k's, which takes `frameBytes(ENTRY_FIXED_BYTES + data.length)`.
   */
  readonly entriesOffset: number;
}

/** Scratch buffers up to this size are kept for the next batch; a larger one is used once. */
const SCRATCH_KEEP_BYTES_MAX = 4 * 1024 * 1024;
const SCRATCH_BYTES_MIN = 64 * 1024;

/**
 * Encodes batches the way {@link encodeBatch} does, byte for byte, with entries taken
 * straight from the caller's array (no record object per entry) into one reused scratch
 * buffer, sized by a first pass over the entries' lengths.
 *
 * The buffers returned are valid until the next call: the caller must have written them
 * (synchronously) before encoding again.
 */
export class BatchEncoder {
  private scratch = new Uint8Array(0);
  private view = new DataView(this.scratch.buffer);

  /**
   * The batch of `head` records, then `entries[from..]` as entry records, then `tail` records,
   * then the commit record. The caller has checked every field (sizes, safe integers).
   */
  encode(head: readonly WalRecord[], entries: readonly Entry[], from: number, tail: readonly WalRecord[]): EncodedEntryBatch {
    // Pass 1: sizes, so the buffer is sized once.
    let bytes = 0;
    let inlineBytes = 0;
    let referenced = 0;
    for (let k = 0; k < head.length; k++) {
      const frame = frameBytes(checkedPayloadBytes(head[k]!));
      bytes += frame;
      inlineBytes += frame;
    }
    const entriesOffset = bytes;
    for (let k = from; k < entries.length; k++) {
      const n = entries[k]!.data.length;
      if (!(n <= ENTRY_DATA_BYTES_MAX)) throw new Error(`assertion failed: entry data ${n} over maximum`);
      const frame = (FRAME_HEADER_BYTES + ENTRY_FIXED_BYTES + n + 7) & ~7;
      bytes += frame;
      if (n >= INLINE_DATA_BYTES_MAX) {
        inlineBytes += frame - n;
        referenced++;
      } else {
        inlineBytes += frame;
      }
    }
    for (let k = 0; k < tail.length; k++) {
      const frame = frameBytes(checkedPayloadBytes(tail[k]!));
      bytes += frame;
      inlineBytes += frame;
    }
    const batchBytesBeforeCommit = bytes;
    const commitFrameBytes = frameBytes(COMMIT_PAYLOAD_BYTES);
    bytes += commitFrameBytes;
    inlineBytes += commitFrameBytes;

    // Pass 2: the bytes.
    let out = this.scratch;
    let view = this.view;
    if (out.length < inlineBytes) {
      if (inlineBytes > SCRATCH_KEEP_BYTES_MAX) {
        out = new Uint8Array(inlineBytes);
        view = new DataView(out.buffer);
      } else {
        out = this.scratch = new Uint8Array(Math.min(SCRATCH_KEEP_BYTES_MAX, Math.max(inlineBytes, SCRATCH_BYTES_MIN, 2 * this.scratch.length)));
        view = this.view = new DataView(out.buffer);
      }
    }
    const buffers: Uint8Array[] = [];
    let at = 0;
    let sliceStart = 0;
    for (let k = 0; k < head.length; k++) at = writeRecord(view, out, at, head[k]!);
    for (let k = from; k < entries.length; k++) {
      const e = entries[k]!;
      const data = e.data;
      const n = data.length;
      if (referenced > 0 && n >= INLINE_DATA_BYTES_MAX) {
        // Header and index/term inline, the data from the caller's memory, the padding inline.
        writeEntryHeader(view, at, e, n);
        at += FRAME_HEADER_BYTES + ENTRY_FIXED_BYTES;
        buffers.push(out.subarray(sliceStart, at), data);
        sliceStart = at;
        for (let pad = (8 - (n & 7)) & 7; pad > 0; pad--) out[at++] = 0;
        continue;
      }
      const frameEnd = at + ((FRAME_HEADER_BYTES + ENTRY_FIXED_BYTES + n + 7) & ~7);
      // The frame's last 8 bytes first: they hold its padding, and the data written after
      // them overwrites what is not padding.
      view.setUint32(frameEnd - 8, 0, true);
      view.setUint32(frameEnd - 4, 0, true);
      writeEntryHeader(view, at, e, n);
      out.set(data, at + FRAME_HEADER_BYTES + ENTRY_FIXED_BYTES);
      at = frameEnd;
    }
    for (let k = 0; k < tail.length; k++) at = writeRecord(view, out, at, tail[k]!);
    writeFrameHeader(view, out, at, RecordType.Commit, 0, COMMIT_PAYLOAD_BYTES);
    at += FRAME_HEADER_BYTES;
    setU64(view, at, batchBytesBeforeCommit);
    view.setUint32(at + 8, head.length + (entries.length - from) + tail.length, true);
    at += 12;
    let crc = 0;
    for (let k = 0; k < buffers.length; k++) crc = crc32(buffers[k]!, crc);
    crc = crc32(out.subarray(sliceStart, at), crc);
    view.setUint32(at, crc, true);
    at += 4;
    if (at - sliceStart + sumLengths(buffers) !== bytes) throw new Error(`assertion failed: encoded ${at - sliceStart + sumLengths(buffers)} of ${bytes} bytes`);
    buffers.push(out.subarray(sliceStart, at));
    return { buffers, bytes, entriesOffset };
  }
}

function sumLengths(buffers: readonly Uint8Array[]): number {
  let n = 0;
  for (let k = 0; k < buffers.length; k++) n += buffers[k]!.length;
  return n;
}

function checkedPayloadBytes(r: WalRecord): number {
  const payload = payloadBytes(r);
  if (!(payload <= RECORD_PAYLOAD_BYTES_MAX)) throw new Error(`assertion failed: record payload ${payload} over maximum`);
  return payload;
}

/** Writes record `r` (inline, padding included) at `at`; returns the offset after its frame. */
function writeRecord(view: DataView, out: Uint8Array, at: number, r: WalRecord): number {
  const payload = payloadBytes(r);
  writeFrameHeader(view, out, at, r.type, r.type === RecordType.Entry ? r.entry.type : 0, payload);
  let p = writePayload(view, out, at + FRAME_HEADER_BYTES, r);
  const end = at + frameBytes(payload);
  while (p < end) out[p++] = 0;
  return end;
}

/** An entry frame's header and fixed payload (index, term): 24 bytes at `at`. */
function writeEntryHeader(view: DataView, at: number, e: Entry, dataBytes: number): void {
  view.setUint32(at, RecordType.Entry | (e.type << 8), true);
  view.setUint32(at + 4, ENTRY_FIXED_BYTES + dataBytes, true);
  setU64(view, at + 8, e.index);
  setU64(view, at + 16, e.term);
}
