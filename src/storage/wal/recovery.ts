/**
 * Recovery: reads every segment of a WAL directory in order, verifies every record, replays
 * the intact batches into an {@link EntryIndex}, the newest hard state and snapshot marker,
 * and decides what the tail is. docs/wal-format.md, "Recovery", numbers these steps; the
 * comments below refer to them.
 *
 * This module only reads. What to repair (cut a torn tail, remove a segment whose creation
 * was torn, delete leftover files) it reports, and the caller does it (WalStorage.open) or
 * only prints it (`ringraft wal verify`).
 *
 * The rule that decides between "torn write" and "corruption": the writer syncs each batch
 * before it writes the next, so only the last batch of the last segment can be torn. Bad
 * bytes followed by an intact batch are therefore corruption, wherever they are; bad bytes
 * anywhere but the last segment are corruption; a record in a batch whose CRC matches but
 * whose content is impossible is corruption (a torn write cannot produce a matching CRC).
 */
import { join } from 'node:path';
import type { HardState } from '../../core/index.ts';
import type { FileSystem } from '../fs.ts';
import { WalVersionError, corruptLog } from './errors.ts';
import { EntryIndex } from './entry-index.ts';
import { crc32 } from './crc.ts';
import { FileWindow, WINDOW_BYTES } from './file-window.ts';
import {
  COMMIT_CRC_OFFSET,
  COMMIT_PAYLOAD_BYTES,
  FORMAT_VERSION,
  FRAME_ALIGN_BYTES,
  FRAME_HEADER_BYTES,
  FRAME_PROBLEM_TEXT,
  RecordType,
  SEGMENT_HEADER_BYTES,
  SnapshotKind,
  TEMP_SUFFIX,
  align8,
  commitFields,
  decodeFrame,
  decodeSegmentHeader,
  forEachEntry,
  frameBytes,
  frameHeader,
  isSnapshotFileName,
  parseSegmentFileName,
  segmentFileName,
  unsupportedVersion,
  type DecodedFrame,
  type DecodedRecord,
  type EntriesFrame,
  type SnapshotMarker,
} from './format.ts';

/** What recovery found in one segment. */
export interface SegmentScan {
  readonly sequence: number;
  readonly fileName: string;
  /** The header's first index (0 if the header is unreadable). */
  readonly firstIndex: number;
  readonly fileBytes: number;
  /** End of the last intact batch: where the next batch goes. */
  readonly endBytes: number;
  /** End of the segment's first batch, which restates hard state and snapshot. */
  readonly firstBatchEndBytes: number;
  readonly batches: number;
  /** Records in intact batches, as a visitor sees them: commit records included, each entry one. */
  readonly records: number;
  readonly entries: number;
}

/**
 * A torn write at the end of the last segment: no batch after `cutOffsetBytes` is intact,
 * so nothing there was acknowledged, and it is discarded.
 */
export interface TornTail {
  readonly fileName: string;
  /** Where the first bad or missing byte is. */
  readonly badOffsetBytes: number;
  readonly what: string;
  /** Everything from here on is discarded. */
  readonly cutOffsetBytes: number;
  readonly fileBytes: number;
  /**
   * `cut`: truncate the file to cutOffsetBytes. `remove`: delete the segment, which holds no
   * intact batch (its creation was torn).
   */
  readonly action: 'cut' | 'remove';
}

export interface RecoveredLog {
  /** The segments that stay, in order (a segment to remove is not among them). */
  readonly segments: readonly SegmentScan[];
  readonly index: EntryIndex;
  readonly hardState: HardState;
  /** The newest snapshot marker, if the log has a snapshot. */
  readonly marker: SnapshotMarker | undefined;
  readonly tornTail: TornTail | undefined;
  /** Files to delete: leftover temporary files and snapshot files the log does not reference. */
  readonly obsoleteFiles: readonly string[];
}

/**
 * Called for every record of every intact batch, in log order (commit records included); for
 * an entries frame, once per entry, at the offset of the entry's header.
 */
export type RecordVisitor = (fileName: string, offsetBytes: number, record: DecodedRecord) => void;

/**
 * Recovers the log in `dir`. Throws a CORRUPT_LOG error naming the file and byte offset if
 * anything but a torn tail is wrong.
 */
export function recoverLog(fs: FileSystem, dir: string, visit?: RecordVisitor): RecoveredLog {
  // Step 1: list the directory.
  const names = fs.readdir(dir);
  const sequences = names
    .map(parseSegmentFileName)
    .filter((n): n is number => n !== undefined)
    .sort((a, b) => a - b);
  const snapshotFiles = names.filter(isSnapshotFileName);
  const tempFiles = names.filter((n) => n.endsWith(TEMP_SUFFIX));
  // Step 2: the segments must be consecutive.
  for (let i = 1; i < sequences.length; i++) {
    if (sequences[i] !== sequences[i - 1]! + 1) {
      throw corruptLog(segmentFileName(sequences[i - 1]! + 1), 0, `segment missing (${segmentFileName(sequences[i - 1]!)} and ${segmentFileName(sequences[i]!)} exist)`);
    }
  }
  if (sequences.length === 0) {
    if (snapshotFiles.length > 0) throw corruptLog(snapshotFiles[0]!, 0, 'a snapshot file but no segment: the log is missing');
    return emptyLog(tempFiles);
  }
  // Steps 3 to 6: each segment in order.
  const replay = new Replay();
  const segments: SegmentScan[] = [];
  let tornTail: TornTail | undefined;
  for (let i = 0; i < sequences.length; i++) {
    const result = scanSegment(fs, dir, sequences[i]!, i === 0, i === sequences.length - 1, replay, visit);
    tornTail = result.torn;
    if (result.torn?.action !== 'remove') segments.push(result.scan);
  }
  if (segments.length === 0) return { ...emptyLog(tempFiles), tornTail };
  // Step 7: the log must reach back to its snapshot.
  const snapIndex = replay.marker?.index ?? 0;
  if (replay.index.base !== snapIndex) {
    throw corruptLog(
      segments[0]!.fileName,
      16,
      `entries ${snapIndex + 1}..${replay.index.base} are missing: the log starts after index ${replay.index.base} and its snapshot covers only up to ${snapIndex} (segments before it are missing)`,
    );
  }
  // Step 8: the snapshot the log refers to must exist; others are obsolete.
  const marker = replay.marker;
  if (marker !== undefined && !names.includes(marker.fileName)) {
    throw corruptLog(marker.fileName, 0, 'snapshot file referenced by the log is missing');
  }
  const obsoleteFiles = [...tempFiles, ...snapshotFiles.filter((n) => n !== marker?.fileName)];
  return { segments, index: replay.index, hardState: replay.hardState, marker, tornTail, obsoleteFiles };
}

function emptyLog(obsoleteFiles: readonly string[]): RecoveredLog {
  return {
    segments: [],
    index: new EntryIndex(),
    hardState: { term: 0, vote: 0, commit: 0 },
    marker: undefined,
    tornTail: undefined,
    obsoleteFiles,
  };
}

/** A frame of the batch being read, walked by its header but not yet verified. */
interface Pending {
  readonly offset: number;
  readonly length: number;
}

/**
 * Bytes that are not an intact batch, found before the batch's CRC matched: a torn write or
 * corruption, which step 5 decides.
 */
interface BadSpot {
  /** The first byte of the batch they are in. */
  readonly batchStart: number;
  /** Where the problem was found. */
  readonly offset: number;
  readonly what: string;
}

function unverified(batchStart: number, offset: number, what: string): BadSpot {
  return { batchStart, offset, what };
}

/** CRC of the file's bytes [from, to), read through the window in chunks. */
function crcOf(w: FileWindow, from: number, to: number): number {
  let crc = 0;
  for (let at = from; at < to; ) {
    const bytes = w.view(at, Math.min(WINDOW_BYTES, to - at));
    if (bytes.length === 0) break;
    crc = crc32(bytes, crc);
    at += bytes.length;
  }
  return crc;
}

function scanSegment(
  fs: FileSystem,
  dir: string,
  sequence: number,
  isFirst: boolean,
  isLast: boolean,
  replay: Replay,
  visit: RecordVisitor | undefined,
): { scan: SegmentScan; torn: TornTail | undefined } {
  const fileName = segmentFileName(sequence);
  const fd = fs.open(join(dir, fileName), 'read');
  try {
    const size = fs.size(fd);
    const w = new FileWindow(fs, fd, size);
    // Step 3: the header. An intact header of another format version is refused, never
    // taken for a torn segment creation.
    const version = unsupportedVersion(w.view(0, SEGMENT_HEADER_BYTES));
    if (version !== undefined) throw new WalVersionError(fileName, version, FORMAT_VERSION);
    const header = decodeSegmentHeader(w.view(0, SEGMENT_HEADER_BYTES));
    if (typeof header === 'string') {
      if (isLast && !hasIntactBatchFrom(w, SEGMENT_HEADER_BYTES)) {
        const torn: TornTail = { fileName, badOffsetBytes: 0, what: header, cutOffsetBytes: 0, fileBytes: size, action: 'remove' };
        return { scan: scanOf(sequence, 0, size, 0, 0, 0, 0, 0), torn };
      }
      throw corruptLog(fileName, 0, header);
    }
    if (header.sequence !== sequence) throw corruptLog(fileName, 8, `header holds sequence ${header.sequence}, the file name ${sequence}`);
    if (isFirst) replay.start(header.firstIndex);
    else if (header.firstIndex !== replay.index.lastIndex + 1) {
      throw corruptLog(fileName, 16, `segment starts at index ${header.firstIndex} but the log before it ends at ${replay.index.lastIndex}`);
    }

    // Step 4: records, batch by batch. The frames of a batch are walked by their headers
    // (type not 0, length at most the maximum, inside the file) up to its commit record; the
    // batch's CRC in the commit record is checked; only then are its records decoded and
    // applied. A problem before the CRC matched may be a torn write and is reported at the
    // batch's first byte; a problem in a batch whose CRC matched is corruption at its record.
    let offset = SEGMENT_HEADER_BYTES;
    let batchStart = offset;
    let firstBatchEnd = 0;
    let batches = 0;
    let records = 0;
    let entries = 0;
    let pending: Pending[] = [];
    let bad: BadSpot | undefined;
    while (offset < size) {
      const header = frameHeader(w.view(offset, FRAME_HEADER_BYTES), 0);
      if (typeof header === 'string') {
        bad = unverified(batchStart, offset, FRAME_PROBLEM_TEXT[header]);
        break;
      }
      const frame = frameBytes(header.length);
      if (offset + frame > size) {
        bad = unverified(batchStart, offset, FRAME_PROBLEM_TEXT.truncated);
        break;
      }
      if (header.type !== RecordType.Commit) {
        pending.push({ offset, length: header.length });
        offset += frame;
        continue;
      }
      const commit = commitFields(w.view(offset, frame), 0);
      if (typeof commit === 'string') {
        bad = unverified(batchStart, offset, `commit record: ${FRAME_PROBLEM_TEXT[commit]}`);
        break;
      }
      if (crcOf(w, batchStart, offset + COMMIT_CRC_OFFSET) !== commit.crc) {
        bad = unverified(batchStart, offset, FRAME_PROBLEM_TEXT.checksum);
        break;
      }
      // The CRC matched: from here on, anything wrong is corruption.
      if (commit.batchBytes !== offset - batchStart || commit.recordCount !== pending.length) {
        throw corruptLog(fileName, offset, `commit record counts ${commit.recordCount} records in ${commit.batchBytes} bytes, the batch holds ${pending.length} in ${offset - batchStart}`);
      }
      const applied = applyBatch(w, fileName, sequence, batchStart, pending, replay, visit);
      visit?.(fileName, offset, { type: RecordType.Commit, batchBytes: commit.batchBytes, recordCount: commit.recordCount });
      records += applied.records + 1;
      entries += applied.entries;
      batches++;
      offset += frame;
      batchStart = offset;
      if (batches === 1) firstBatchEnd = offset;
      pending = [];
    }

    // Step 5: what follows the last intact batch.
    let torn: TornTail | undefined;
    if (bad === undefined && pending.length > 0) {
      bad = { batchStart, offset: size, what: `the file ends inside the batch that starts at byte ${batchStart}` };
    }
    if (bad !== undefined && !w.zeroFrom(batchStart)) {
      const what = `batch at byte ${bad.batchStart}: ${bad.what} (at byte ${bad.offset})`;
      if (!isLast) throw corruptLog(fileName, bad.batchStart, `${what}, not in the last segment, so not a torn write`);
      if (hasIntactBatchFrom(w, bad.batchStart + FRAME_ALIGN_BYTES)) throw corruptLog(fileName, bad.batchStart, `${what}, and an intact batch follows, so not a torn write`);
      torn = { fileName, badOffsetBytes: bad.offset, what: bad.what, cutOffsetBytes: batchStart, fileBytes: size, action: 'cut' };
    }
    // Step 6: a segment without any intact batch.
    if (batches === 0) {
      if (!isLast) throw corruptLog(fileName, SEGMENT_HEADER_BYTES, 'segment holds no intact batch');
      torn = { fileName, badOffsetBytes: bad?.offset ?? size, what: bad?.what ?? 'segment holds no batch', cutOffsetBytes: 0, fileBytes: size, action: 'remove' };
    }
    return { scan: scanOf(sequence, header.firstIndex, size, batchStart, firstBatchEnd, batches, records, entries), torn };
  } finally {
    fs.close(fd);
  }
}

/**
 * Decodes and applies the frames of a batch whose CRC matched (step 4), in order; calls `visit`
 * for each record, each entry of an entries frame on its own (at its entry header). Returns how
 * many records (each entry one) and entries it applied. Anything impossible is corruption,
 * reported at the frame, or at the entry.
 */
function applyBatch(
  w: FileWindow,
  fileName: string,
  sequence: number,
  batchStart: number,
  pending: readonly Pending[],
  replay: Replay,
  visit: RecordVisitor | undefined,
): { records: number; entries: number } {
  let records = 0;
  let entries = 0;
  for (const p of pending) {
    const bytes = w.view(p.offset, frameBytes(p.length));
    const frame = decodeFrame(bytes, 0, p.length);
    if (typeof frame === 'string') throw corruptLog(fileName, p.offset, `${FRAME_PROBLEM_TEXT[frame]} (in a batch whose checksum matches)`);
    if (frame.type === RecordType.Commit) throw corruptLog(fileName, p.offset, 'commit record inside a batch');
    if (frame.type !== RecordType.Entry) {
      const problem = replay.apply(frame);
      if (problem !== undefined) throw corruptLog(fileName, p.offset, problem);
      visit?.(fileName, p.offset, frame);
      records++;
      continue;
    }
    // `bytes` stays valid: nothing reads through the window until the frame is done.
    forEachEntry(bytes, 0, frame, (k, headerAt, entryType, dataBytes) => {
      const index = frame.firstIndex + k;
      const problem = replay.applyEntry(index, frame.term, sequence, batchStart, dataBytes);
      if (problem !== undefined) throw corruptLog(fileName, p.offset + headerAt, problem);
      visit?.(fileName, p.offset + headerAt, { type: RecordType.Entry, index, term: frame.term, entryType, dataBytes });
    });
    records += frame.count;
    entries += frame.count;
  }
  return { records, entries };
}

function scanOf(
  sequence: number,
  firstIndex: number,
  fileBytes: number,
  endBytes: number,
  firstBatchEndBytes: number,
  batches: number,
  records: number,
  entries: number,
): SegmentScan {
  return { sequence, fileName: segmentFileName(sequence), firstIndex, fileBytes, endBytes, firstBatchEndBytes, batches, records, entries };
}

/**
 * Whether an intact batch (frames that walk to a commit record that counts them, and a batch
 * CRC that matches) starts at or after `from`. Looks for commit records at every aligned offset.
 */
function hasIntactBatchFrom(w: FileWindow, from: number): boolean {
  const commitFrame = frameBytes(COMMIT_PAYLOAD_BYTES);
  for (let p = align8(from); p + commitFrame <= w.sizeBytes; p += FRAME_ALIGN_BYTES) {
    if (w.byte(p) !== RecordType.Commit) continue;
    const commit = commitFields(w.view(p, commitFrame), 0);
    if (typeof commit === 'string') continue;
    const start = p - commit.batchBytes;
    if (start < from || start < SEGMENT_HEADER_BYTES || start % FRAME_ALIGN_BYTES !== 0) continue;
    if (framesEndAt(w, start, p, commit.recordCount) && crcOf(w, start, p + COMMIT_CRC_OFFSET) === commit.crc) return true;
  }
  return false;
}

/** Whether `recordCount` frames, none a commit record, walk from `start` exactly to `end`. */
function framesEndAt(w: FileWindow, start: number, end: number, recordCount: number): boolean {
  let offset = start;
  for (let n = 0; n < recordCount; n++) {
    if (offset >= end) return false;
    const header = frameHeader(w.view(offset, FRAME_HEADER_BYTES), 0);
    if (typeof header === 'string' || header.type === RecordType.Commit) return false;
    offset += frameBytes(header.length);
  }
  return offset === end;
}

/**
 * The log state that replaying records builds. Before the first segment's records, the log
 * is taken to continue at that segment's first index; entries before it are unknown (they
 * were in segments deleted after a snapshot covered them) until a snapshot marker covers
 * them or a truncation discards them. Step 7 checks that nothing unknown is left.
 */
class Replay {
  readonly index = new EntryIndex();
  hardState: HardState = { term: 0, vote: 0, commit: 0 };
  marker: SnapshotMarker | undefined;

  private get snapIndex(): number {
    return this.marker?.index ?? 0;
  }

  start(firstIndex: number): void {
    this.index.reset(firstIndex - 1);
  }

  /** Applies one record (not an entry) of an intact batch; returns what is wrong if it cannot apply. */
  apply(r: Exclude<DecodedFrame, EntriesFrame>): string | undefined {
    switch (r.type) {
      case RecordType.HardState:
        this.hardState = r.hardState;
        return undefined;
      case RecordType.Truncation:
        return this.applyTruncation(r.index);
      case RecordType.SnapshotMarker:
        return this.applyMarker(r.marker);
      case RecordType.Commit:
        return 'commit record inside a batch';
    }
  }

  /** Applies one entry of an intact batch, which is at `batchOffset` of `segment`; returns what is wrong if it cannot apply. */
  applyEntry(index: number, term: number, segment: number, batchOffset: number, dataBytes: number): string | undefined {
    const last = this.index.lastIndex;
    if (index !== last + 1) return `entry ${index} does not follow the last index ${last}`;
    const prevTerm = this.index.count > 0 ? this.index.term(last) : last === this.snapIndex ? this.marker?.term : undefined;
    if (prevTerm !== undefined && term < prevTerm) return `entry ${index} has term ${term}, below the term ${prevTerm} before it`;
    this.index.push(index, term, segment, batchOffset, dataBytes);
    return undefined;
  }

  private applyTruncation(index: number): string | undefined {
    if (index <= this.snapIndex) return `truncation at ${index} reaches into the snapshot at ${this.snapIndex}`;
    if (index > this.index.lastIndex) return `truncation at ${index} beyond the last index ${this.index.lastIndex}`;
    this.index.truncateFrom(index);
    return undefined;
  }

  private applyMarker(m: SnapshotMarker): string | undefined {
    if (m.kind === SnapshotKind.Replace) {
      if (m.index <= this.snapIndex) return `snapshot at ${m.index} not newer than the snapshot at ${this.snapIndex}`;
      this.index.reset(m.index);
      this.marker = m;
      return undefined;
    }
    if (m.index < this.snapIndex) return `snapshot at ${m.index} older than the snapshot at ${this.snapIndex}`;
    if (m.index > this.index.lastIndex) return `snapshot at ${m.index} beyond the last index ${this.index.lastIndex}`;
    if (this.marker !== undefined && m.index === this.snapIndex && m.term !== this.marker.term) {
      return `snapshot at ${m.index} restated with term ${m.term}, was ${this.marker.term}`;
    }
    if (this.index.has(m.index) && this.index.term(m.index) !== m.term) {
      return `snapshot at ${m.index} has term ${m.term}, the entry there has term ${this.index.term(m.index)}`;
    }
    if (m.index >= this.index.base) this.index.compactThrough(m.index);
    this.marker = m;
    return undefined;
  }
}
