/**
 * A read-only look at a WAL directory, for `ringraft wal verify` and `ringraft wal dump`: the
 * same verification as opening it (recovery, and the snapshot file), without repairing
 * anything. A torn tail is reported, not cut.
 */
import type { HardState, SnapshotMeta } from '../../core/index.ts';
import { realFileSystem, type FileSystem } from '../fs.ts';
import { recoverLog, type RecordVisitor, type SegmentScan, type TornTail } from './recovery.ts';
import { readSnapshotFile } from './snapshot-file.ts';

export interface WalInspection {
  readonly segments: readonly SegmentScan[];
  /** Records in intact batches, as `ringraft wal dump` lists them: commit records included, each entry one. */
  readonly records: number;
  readonly batches: number;
  /** Entries kept after replay (after truncations and compaction). */
  readonly entries: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly hardState: HardState;
  /** The snapshot's metadata and file, if the log has a snapshot. */
  readonly snapshot: { readonly meta: SnapshotMeta; readonly fileName: string; readonly dataBytes: number } | undefined;
  /** A torn write that opening the log would cut. */
  readonly tornTail: TornTail | undefined;
  /** Files that opening the log would delete. */
  readonly obsoleteFiles: readonly string[];
}

/** Verifies the WAL in `dir` (throws CORRUPT_LOG naming file and offset); calls `visit` for every record. */
export function inspectWal(dir: string, options: { fs?: FileSystem; visit?: RecordVisitor } = {}): WalInspection {
  const fs = options.fs ?? realFileSystem;
  const log = recoverLog(fs, dir, options.visit);
  const m = log.marker;
  const snap = m === undefined ? undefined : readSnapshotFile(fs, dir, m.fileName, m.index, m.term);
  let records = 0;
  let batches = 0;
  for (const s of log.segments) {
    records += s.records;
    batches += s.batches;
  }
  return {
    segments: log.segments,
    records,
    batches,
    entries: log.index.count,
    firstIndex: log.index.base + 1,
    lastIndex: log.index.lastIndex,
    hardState: log.hardState,
    snapshot: snap === undefined ? undefined : { meta: snap.meta, fileName: m!.fileName, dataBytes: snap.data.length },
    tornTail: log.tornTail,
    obsoleteFiles: log.obsoleteFiles,
  };
}
