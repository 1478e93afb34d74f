/**
 * Reading one batch back from a segment, for entries that are not cached: the batch is read
 * from its first byte to its commit record, its CRC checked, and its frames decoded, so that
 * where each of its entries lies is known. One CRC covers a whole batch, so an entry can only
 * be verified with its batch; the caller keeps the batch it read last, so that reading a
 * batch entry by entry reads and checks it once.
 *
 * Anything wrong is CORRUPT_LOG naming the segment file and the byte offset: the batch's first
 * byte when its CRC does not match, the frame's when a frame of a batch whose CRC matches is
 * impossible. Nothing read back here was torn: the batch was synced before it was indexed.
 */
import { type RingraftError } from '../../base/index.ts';
import { crc32 } from './crc.ts';
import { corruptLog } from './errors.ts';
import {
  COMMIT_CRC_OFFSET,
  COMMIT_PAYLOAD_BYTES,
  FRAME_HEADER_BYTES,
  FRAME_PROBLEM_TEXT,
  RecordType,
  commitFields,
  decodeFrame,
  forEachEntry,
  frameBytes,
  frameHeader,
} from './format.ts';

/** A batch read back and verified by its CRC: file bytes [start, end) of a segment. */
export interface ReadBatch {
  readonly segment: number;
  readonly start: number;
  readonly end: number;
  readonly bytes: Uint8Array;
  /** The index of the batch's first entry (its entries are consecutive); 0 if it holds none. */
  readonly firstIndex: number;
  /** For entry firstIndex + k: the offset of its header in `bytes`. */
  readonly entryHeaderOffsets: readonly number[];
  /** For entry firstIndex + k: its term. */
  readonly entryTerms: readonly number[];
}

/** Reads up to `length` bytes at file offset `offset`: fewer only at the end of the file. */
export type ReadAt = (offset: number, length: number) => Uint8Array;

/** Bytes read beyond what was asked for, so that a batch's last frames come with one read. */
const READ_AHEAD_BYTES = 256;

/**
 * The batch at `start` of segment `segment` (file `fileName`), read through `read` with a first
 * read of about `sizeHintBytes`. `what` names the read in errors ("batch of entry 17").
 */
export function readBatch(read: ReadAt, fileName: string, segment: number, start: number, sizeHintBytes: number, what: string): ReadBatch {
  const corrupt = (offset: number, problem: string): RingraftError => corruptLog(fileName, offset, `${what} read back: ${problem}`);
  let bytes = read(start, sizeHintBytes + READ_AHEAD_BYTES);
  /** Makes `bytes` hold at least `n` bytes of the batch. */
  const ensure = (n: number): void => {
    while (bytes.length < n) {
      const more = read(start + bytes.length, Math.max(READ_AHEAD_BYTES, bytes.length, n - bytes.length));
      if (more.length === 0) throw corrupt(start + bytes.length, 'the file ends inside the batch');
      bytes = concatBytes(bytes, more);
    }
  };
  // Walk the frames by their headers to the commit record.
  const frames: { at: number; length: number }[] = [];
  let p = 0;
  for (;;) {
    ensure(p + FRAME_HEADER_BYTES);
    const header = frameHeader(bytes, p);
    if (typeof header === 'string') throw corrupt(start + p, FRAME_PROBLEM_TEXT[header]);
    if (header.type === RecordType.Commit) break;
    ensure(p + frameBytes(header.length));
    frames.push({ at: p, length: header.length });
    p += frameBytes(header.length);
  }
  const end = p + frameBytes(COMMIT_PAYLOAD_BYTES);
  ensure(end);
  const commit = commitFields(bytes, p);
  if (typeof commit === 'string' || commit.batchBytes !== p || commit.recordCount !== frames.length) {
    throw corrupt(start + p, 'its commit record does not match the batch');
  }
  bytes = bytes.subarray(0, end);
  if (crc32(bytes.subarray(0, p + COMMIT_CRC_OFFSET)) !== commit.crc) throw corrupt(start, FRAME_PROBLEM_TEXT.checksum);

  // The CRC matched: decode the frames, and note where each entry is.
  let firstIndex = 0;
  const entryHeaderOffsets: number[] = [];
  const entryTerms: number[] = [];
  for (const f of frames) {
    const frame = decodeFrame(bytes, f.at, f.length);
    if (typeof frame === 'string') throw corrupt(start + f.at, FRAME_PROBLEM_TEXT[frame]);
    if (frame.type !== RecordType.Entry) continue;
    if (entryTerms.length === 0) firstIndex = frame.firstIndex;
    else if (frame.firstIndex !== firstIndex + entryTerms.length) throw corrupt(start + f.at, `entries from ${frame.firstIndex} do not follow the batch's entries before them`);
    forEachEntry(bytes, f.at, frame, (_k, headerAt) => {
      entryHeaderOffsets.push(headerAt);
      entryTerms.push(frame.term);
    });
  }
  return { segment, start, end: start + end, bytes, firstIndex, entryHeaderOffsets, entryTerms };
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
