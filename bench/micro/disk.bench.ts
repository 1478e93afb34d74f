/**
 * The disk's limit: a bare loop of one `writev` and one `fdatasync` per batch, appending
 * fixed-size records, one iovec per record, the way a WAL writes a `Ready` batch (DESIGN.md,
 * "Storage"). Nothing is encoded, checksummed or framed, so no WAL on this disk can write
 * faster; a WAL benchmark runs {@link runDiskLoop} side by side with the WAL, at the same
 * record size and batch size, and reports its speed as a ratio of this one.
 *
 * Two variants of the file:
 * - growing: a new, empty file; every batch extends it, so every `fdatasync` must also make
 *   the new size and the newly allocated blocks durable (a journal commit on ext4).
 * - preallocated: a file first filled with zeros to `fileBytesMax` and `fsync`ed (set-up,
 *   not timed); the loop then overwrites it from offset 0, so an `fdatasync` flushes data
 *   blocks only. This is what a WAL gains by preallocating its segments.
 * Both variants write at explicit positions (`pwritev`), so the system calls are the same
 * and only the state of the file differs.
 *
 * A loop stops when its time budget is spent or before the next batch would take the file
 * past `fileBytesMax`, whichever comes first. The file lives in a fresh directory made with
 * `mkdtemp` under `os.tmpdir()` (or a given parent), removed afterwards, also on error.
 * The whole loop is synchronous, as a node's worker thread, which owns its thread, may do.
 */
import { closeSync, fdatasyncSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync, writevSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { DiskFileVariant, DiskScenario } from '../../bench.config.ts';
import type { ResultRow } from '../shared/measure.ts';

/** Linux's IOV_MAX: one `writev` takes at most this many iovecs. */
export const IOVECS_PER_WRITE_MAX = 1024;
/** Zeros written per call while preallocating. */
const PREALLOCATE_CHUNK_BYTES = 1 << 20;
/** Name of the file inside the temporary directory. */
const FILE_NAME = 'disk-loop.bin';

export interface DiskLoopOptions {
  readonly variant: DiskFileVariant;
  /** Bytes of one record, written as one iovec. */
  readonly recordBytes: number;
  /** Records per `writev` + `fdatasync`; at most IOVECS_PER_WRITE_MAX. */
  readonly batchRecords: number;
  /** The loop stops once this much time has passed since its first write. */
  readonly timeMs: number;
  /** The loop stops before the file would pass this; also the preallocated file's size. */
  readonly fileBytesMax: number;
  /** Where the temporary directory is made; default `os.tmpdir()`. */
  readonly parentDir?: string;
  /**
   * Called with the file's path after the loop, the file closed, before its directory is
   * removed: a test reads the file here. If it throws, the directory is still removed.
   */
  readonly beforeRemove?: (filePath: string) => void;
}

export interface DiskLoopResult {
  readonly variant: DiskFileVariant;
  readonly recordBytes: number;
  readonly batchRecords: number;
  /** Records written (always whole batches: fsyncs × batchRecords). */
  readonly records: number;
  /** Bytes written by the loop (records × recordBytes), from offset 0. */
  readonly bytesWritten: number;
  /** `fdatasync` calls made, one per batch. */
  readonly fsyncs: number;
  /** From the first write to the end of the last `fdatasync`, in milliseconds. */
  readonly elapsedMs: number;
  readonly recordsPerSec: number;
  /** MB/s with 1 MB = 10^6 bytes. */
  readonly mbPerSec: number;
  readonly fsyncsPerSec: number;
  /** Mean time of one batch (`writev` + `fdatasync`), in milliseconds. */
  readonly batchMsMean: number;
  /** Relative margin of error of that mean at 95 %, in percent. */
  readonly batchRmePercent: number;
  /** What ended the loop: the time budget, or the file size limit. */
  readonly stoppedBy: 'time' | 'bytes';
  /** The temporary directory the file lived in; it no longer exists. */
  readonly dir: string;
}

/**
 * The records of one batch: `batchRecords` buffers of `recordBytes` each. Record k is
 * filled with the byte (k % 255) + 1, never 0, so that written records are told apart from
 * preallocated zeros, and a test can check the file's contents. Every batch writes the
 * same records.
 */
export function makeDiskRecords(recordBytes: number, batchRecords: number): Buffer[] {
  return Array.from({ length: batchRecords }, (_, k) => Buffer.alloc(recordBytes, (k % 255) + 1));
}

/** Runs one bare `writev` + `fdatasync` loop in a temporary directory; see the file comment. */
export function runDiskLoop(options: DiskLoopOptions): DiskLoopResult {
  const { variant, recordBytes, batchRecords, timeMs, fileBytesMax } = options;
  assertPositiveInteger('recordBytes', recordBytes);
  assertPositiveInteger('batchRecords', batchRecords);
  assertPositiveInteger('fileBytesMax', fileBytesMax);
  if (batchRecords > IOVECS_PER_WRITE_MAX) {
    throw new RangeError(`batchRecords ${batchRecords} is over IOVECS_PER_WRITE_MAX (${IOVECS_PER_WRITE_MAX})`);
  }
  if (recordBytes * batchRecords > fileBytesMax) {
    throw new RangeError(`one batch (${recordBytes * batchRecords} bytes) is over fileBytesMax (${fileBytesMax})`);
  }
  if (!(timeMs > 0)) throw new RangeError(`timeMs must be positive, got ${timeMs}`);

  const dir = mkdtempSync(path.join(options.parentDir ?? os.tmpdir(), 'ringraft-disk-'));
  try {
    const filePath = path.join(dir, FILE_NAME);
    const fd = openSync(filePath, 'w');
    let loop: LoopCounts;
    try {
      if (variant === 'preallocated') preallocate(fd, fileBytesMax);
      loop = writeLoop(fd, makeDiskRecords(recordBytes, batchRecords), recordBytes * batchRecords, timeMs, fileBytesMax);
    } finally {
      closeSync(fd);
    }
    options.beforeRemove?.(filePath);
    const seconds = loop.elapsedMs / 1000;
    const records = loop.batches * batchRecords;
    return {
      variant,
      recordBytes,
      batchRecords,
      records,
      bytesWritten: loop.bytesWritten,
      fsyncs: loop.batches,
      elapsedMs: loop.elapsedMs,
      recordsPerSec: records / seconds,
      mbPerSec: loop.bytesWritten / seconds / 1e6,
      fsyncsPerSec: loop.batches / seconds,
      batchMsMean: loop.batchMsMean,
      batchRmePercent: loop.batchRmePercent,
      stoppedBy: loop.stoppedBy,
      dir,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface LoopCounts {
  readonly batches: number;
  readonly bytesWritten: number;
  readonly elapsedMs: number;
  readonly batchMsMean: number;
  readonly batchRmePercent: number;
  readonly stoppedBy: 'time' | 'bytes';
}

/**
 * The timed loop. Batch times are summarised as they come (Welford's running mean and
 * variance), so that a long loop of small batches uses no memory per batch.
 */
function writeLoop(fd: number, iovecs: readonly Buffer[], batchBytes: number, timeMs: number, fileBytesMax: number): LoopCounts {
  let batches = 0;
  let offset = 0;
  let mean = 0;
  let m2 = 0;
  const start = performance.now();
  let now = start;
  let stoppedBy: 'time' | 'bytes';
  for (;;) {
    if (offset + batchBytes > fileBytesMax) {
      stoppedBy = 'bytes';
      break;
    }
    if (now - start >= timeMs) {
      stoppedBy = 'time';
      break;
    }
    const before = now;
    const written = writevSync(fd, iovecs, offset);
    // A short write to a regular file means a full disk or a similar failure; the loop
    // does not retry, since a WAL would not either.
    if (written !== batchBytes) throw new Error(`writev wrote ${written} of ${batchBytes} bytes at offset ${offset}`);
    fdatasyncSync(fd);
    offset += batchBytes;
    now = performance.now();
    batches++;
    const ms = now - before;
    const delta = ms - mean;
    mean += delta / batches;
    m2 += delta * (ms - mean);
  }
  // 1.96: the normal approximation of the 95 % interval; loops have many batches.
  const sd = batches > 1 ? Math.sqrt(m2 / (batches - 1)) : 0;
  const rme = batches > 1 && mean > 0 ? ((1.96 * sd) / Math.sqrt(batches) / mean) * 100 : 0;
  return { batches, bytesWritten: offset, elapsedMs: now - start, batchMsMean: mean, batchRmePercent: rme, stoppedBy };
}

/** Writes zeros over [0, fileBytes) and makes them, and the file's size, durable. */
function preallocate(fd: number, fileBytes: number): void {
  const zeros = Buffer.alloc(Math.min(PREALLOCATE_CHUNK_BYTES, fileBytes));
  for (let offset = 0; offset < fileBytes; ) {
    const length = Math.min(zeros.length, fileBytes - offset);
    const written = writeSync(fd, zeros, 0, length, offset);
    if (written !== length) throw new Error(`preallocation wrote ${written} of ${length} bytes at offset ${offset}`);
    offset += written;
  }
  fsyncSync(fd);
}

function assertPositiveInteger(name: string, x: number): void {
  if (!Number.isSafeInteger(x) || x <= 0) throw new RangeError(`${name} must be a positive integer, got ${x}`);
}

export interface DiskRunOptions {
  readonly timeMs: number;
  /** Called before each loop with a line saying what is being measured. */
  readonly onProgress?: (line: string) => void;
}

/**
 * Runs the scenario's loops: for each batch size, each variant (back to back, so that the
 * two variants of one batch size meet the same machine), one row each.
 */
export async function runDiskScenario(scenario: DiskScenario, options: DiskRunOptions): Promise<ResultRow[]> {
  const progress = options.onProgress ?? (() => {});
  const rows: ResultRow[] = [];
  for (const batchRecords of scenario.batchSizes) {
    for (const variant of scenario.variants) {
      progress(`${scenario.name}: ${variant} file, writev of ${batchRecords} × ${scenario.recordBytes} B + fdatasync`);
      const r = runDiskLoop({
        variant,
        recordBytes: scenario.recordBytes,
        batchRecords,
        timeMs: options.timeMs,
        fileBytesMax: scenario.fileBytesMax,
      });
      if (r.stoppedBy === 'bytes') progress(`${scenario.name}: ${variant} ${batchRecords} stopped at the file size limit after ${r.elapsedMs.toFixed(0)} ms`);
      rows.push({
        name: scenario.name,
        kind: scenario.kind,
        task: 'writev+fdatasync',
        variant,
        batch: batchRecords,
        op: 'record written',
        opsPerSec: r.recordsPerSec,
        nsPerOp: 1e9 / r.recordsPerSec,
        nsPerRound: r.batchMsMean * 1e6,
        bytesPerOp: r.recordBytes,
        mbPerSec: r.mbPerSec,
        fsyncsPerSec: r.fsyncsPerSec,
        rmePercent: r.batchRmePercent,
        samples: r.fsyncs,
      });
      // Yield between loops, so that the event loop (progress output) is not starved.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return rows;
}

/**
 * One line per batch size: records/s of each variant and the preallocated/growing ratio.
 * Rows of other scenarios are ignored.
 */
export function compareDiskRows(rows: readonly ResultRow[]): string[] {
  const byBatch = new Map<number, Map<string, ResultRow>>();
  for (const r of rows) {
    if (r.kind !== 'disk' || r.variant === undefined) continue;
    const m = byBatch.get(r.batch) ?? new Map<string, ResultRow>();
    m.set(r.variant, r);
    byBatch.set(r.batch, m);
  }
  const lines: string[] = [];
  for (const [batch, m] of byBatch) {
    const parts = [...m.values()].map(
      (r) => `${r.variant} ${Math.round(r.opsPerSec).toLocaleString('en-US')} records/s (${Math.round(r.fsyncsPerSec ?? 0).toLocaleString('en-US')} fsyncs/s)`,
    );
    const grow = m.get('growing');
    const pre = m.get('preallocated');
    const ratio = grow !== undefined && pre !== undefined ? `: preallocated/growing ×${(pre.opsPerSec / grow.opsPerSec).toFixed(2)}` : '';
    lines.push(`disk batch ${batch}: ${parts.join(', ')}${ratio}`);
  }
  return lines;
}
