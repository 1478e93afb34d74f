/**
 * WAL appends against the disk's limit, side by side in one run: for each batch size, the
 * WAL persists batches of 150-byte entries with `always` durability (one writev and one
 * fdatasync per batch), then the bare writev + fdatasync loop of bench/disk.bench.ts writes
 * the same number of 150-byte records per batch, on a growing and on a preallocated file.
 * Each WAL figure is reported as a ratio of the bare loops, alternating rounds so that the
 * machine's noise falls on both.
 *
 *   node dist/bench/wal.bench.js [--quick] [--json FILE]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { EntryType, type Entry } from '../src/core/index.ts';
import { WalStorage } from '../src/storage/index.ts';
import { runDiskLoop } from './disk.bench.ts';

export interface WalBenchRow {
  readonly batch: number;
  readonly recordBytes: number;
  readonly walEntriesPerSec: number;
  readonly walMbPerSec: number;
  readonly bareGrowingRecordsPerSec: number;
  readonly barePreallocatedRecordsPerSec: number;
  /** WAL entries/s divided by the bare loop's records/s on a growing file. */
  readonly ratioGrowing: number;
  readonly ratioPreallocated: number;
}

const RECORD_BYTES = 150;
const FILE_BYTES_MAX = 256 << 20;

/** Persists batches of `batch` entries for about `timeMs`; returns entries per second. */
function walLoop(batch: number, timeMs: number): { entriesPerSec: number; mbPerSec: number } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ringraft-wal-bench-'));
  try {
    const wal = WalStorage.open(dir, { durability: 'always' });
    const payload = new Uint8Array(RECORD_BYTES).fill(7);
    let index = 0;
    let written = 0;
    const start = performance.now();
    let now = start;
    while (now - start < timeMs && written * RECORD_BYTES < FILE_BYTES_MAX) {
      const entries: Entry[] = new Array(batch);
      for (let i = 0; i < batch; i++) entries[i] = { term: 1, index: ++index, type: EntryType.Normal, data: payload };
      wal.persist({ entries, hardState: { term: 1, vote: 1, commit: index - batch }, mustSync: true });
      written += batch;
      now = performance.now();
    }
    wal.close();
    const secs = (now - start) / 1000;
    return { entriesPerSec: written / secs, mbPerSec: (written * RECORD_BYTES) / secs / 1e6 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function runWalBench(options: { timeMs: number; rounds: number; onProgress?: (line: string) => void }): WalBenchRow[] {
  const rows: WalBenchRow[] = [];
  for (const batch of [1, 64, 1024]) {
    let wal = 0;
    let walMb = 0;
    let growing = 0;
    let prealloc = 0;
    for (let r = 0; r < options.rounds; r++) {
      options.onProgress?.(`  wal vs bare loop, batch ${batch}, round ${r + 1}/${options.rounds}`);
      const w = walLoop(batch, options.timeMs);
      wal += w.entriesPerSec;
      walMb += w.mbPerSec;
      growing += runDiskLoop({ variant: 'growing', recordBytes: RECORD_BYTES, batchRecords: batch, timeMs: options.timeMs, fileBytesMax: FILE_BYTES_MAX }).recordsPerSec;
      prealloc += runDiskLoop({ variant: 'preallocated', recordBytes: RECORD_BYTES, batchRecords: batch, timeMs: options.timeMs, fileBytesMax: FILE_BYTES_MAX }).recordsPerSec;
    }
    const n = options.rounds;
    rows.push({
      batch,
      recordBytes: RECORD_BYTES,
      walEntriesPerSec: wal / n,
      walMbPerSec: walMb / n,
      bareGrowingRecordsPerSec: growing / n,
      barePreallocatedRecordsPerSec: prealloc / n,
      ratioGrowing: wal / growing,
      ratioPreallocated: wal / prealloc,
    });
  }
  return rows;
}

export function formatWalRows(rows: readonly WalBenchRow[]): string[] {
  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
  const out = ['batch  WAL entries/s  WAL MB/s  bare growing rec/s  bare prealloc rec/s  WAL/growing  WAL/prealloc'];
  for (const r of rows) {
    out.push(
      `${String(r.batch).padStart(5)}  ${fmt(r.walEntriesPerSec).padStart(13)}  ${r.walMbPerSec.toFixed(1).padStart(8)}  ${fmt(r.bareGrowingRecordsPerSec).padStart(18)}  ${fmt(r.barePreallocatedRecordsPerSec).padStart(19)}  ${r.ratioGrowing.toFixed(2).padStart(11)}  ${r.ratioPreallocated.toFixed(2).padStart(12)}`,
    );
  }
  return out;
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const quick = process.argv.includes('--quick');
  const jsonAt = process.argv.indexOf('--json');
  const rows = runWalBench({ timeMs: quick ? 200 : 1000, rounds: quick ? 1 : 3, onProgress: (l) => process.stderr.write(l + '\n') });
  for (const line of formatWalRows(rows)) process.stdout.write(line + '\n');
  if (jsonAt > 0 && process.argv[jsonAt + 1] !== undefined) writeFileSync(process.argv[jsonAt + 1]!, JSON.stringify({ machine: { cores: os.cpus().length, node: process.version }, wal: rows }, null, 2));
}
