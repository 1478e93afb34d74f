/**
 * WAL appends against the disk's limit, side by side in one run: for each batch size, the
 * WAL persists batches of 150-byte entries with `always` durability (one writev and one
 * fdatasync per batch), then the bare writev + fdatasync loop of bench/micro/disk.bench.ts writes
 * the same number of 150-byte records per batch, on a growing and on a preallocated file.
 * Each round runs the three loops back to back (the WAL first in even rounds, last in odd
 * ones, so that drift in the machine's speed does not always favour one side) and gives one
 * ratio of the WAL to each bare loop; a row reports the median of the rounds' ratios, and
 * their range, because the machine is shared and one noisy round can halve a figure.
 *
 *   node dist/bench/micro/wal.bench.js [--quick] [--rounds N] [--json FILE]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { EntryType, type Entry } from '../../src/core/index.ts';
import { WalStorage } from '../../src/storage/index.ts';
import { runDiskLoop } from './disk.bench.ts';

export interface WalBenchRow {
  readonly batch: number;
  readonly recordBytes: number;
  readonly rounds: number;
  /** Medians over the rounds. */
  readonly walEntriesPerSec: number;
  readonly walMbPerSec: number;
  readonly bareGrowingRecordsPerSec: number;
  readonly barePreallocatedRecordsPerSec: number;
  /** Median over the rounds of the round's WAL entries/s divided by its bare loop's records/s on a growing file. */
  readonly ratioGrowing: number;
  readonly ratioGrowingMin: number;
  readonly ratioGrowingMax: number;
  readonly ratioPreallocated: number;
  /** The mean WAL entries/s divided by the mean bare growing records/s (the estimate before medians). */
  readonly ratioGrowingOfMeans: number;
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

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

export function runWalBench(options: { timeMs: number; rounds: number; onProgress?: (line: string) => void }): WalBenchRow[] {
  const rows: WalBenchRow[] = [];
  for (const batch of [1, 64, 1024]) {
    const wal: number[] = [];
    const walMb: number[] = [];
    const growing: number[] = [];
    const prealloc: number[] = [];
    for (let r = 0; r < options.rounds; r++) {
      options.onProgress?.(`  wal vs bare loop, batch ${batch}, round ${r + 1}/${options.rounds}`);
      const bare = (variant: 'growing' | 'preallocated'): number =>
        runDiskLoop({ variant, recordBytes: RECORD_BYTES, batchRecords: batch, timeMs: options.timeMs, fileBytesMax: FILE_BYTES_MAX }).recordsPerSec;
      let w: { entriesPerSec: number; mbPerSec: number };
      if (r % 2 === 0) {
        w = walLoop(batch, options.timeMs);
        growing.push(bare('growing'));
        prealloc.push(bare('preallocated'));
      } else {
        prealloc.push(bare('preallocated'));
        growing.push(bare('growing'));
        w = walLoop(batch, options.timeMs);
      }
      wal.push(w.entriesPerSec);
      walMb.push(w.mbPerSec);
    }
    const ratiosGrowing = wal.map((x, r) => x / growing[r]!);
    rows.push({
      batch,
      recordBytes: RECORD_BYTES,
      rounds: options.rounds,
      walEntriesPerSec: median(wal),
      walMbPerSec: median(walMb),
      bareGrowingRecordsPerSec: median(growing),
      barePreallocatedRecordsPerSec: median(prealloc),
      ratioGrowing: median(ratiosGrowing),
      ratioGrowingMin: Math.min(...ratiosGrowing),
      ratioGrowingMax: Math.max(...ratiosGrowing),
      ratioPreallocated: median(wal.map((x, r) => x / prealloc[r]!)),
      ratioGrowingOfMeans: mean(wal) / mean(growing),
    });
  }
  return rows;
}

export function formatWalRows(rows: readonly WalBenchRow[]): string[] {
  const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
  const out = ['batch  WAL entries/s  WAL MB/s  bare growing rec/s  bare prealloc rec/s  WAL/growing (range)  WAL/prealloc'];
  for (const r of rows) {
    const range = `${r.ratioGrowing.toFixed(2)} (${r.ratioGrowingMin.toFixed(2)}-${r.ratioGrowingMax.toFixed(2)})`;
    out.push(
      `${String(r.batch).padStart(5)}  ${fmt(r.walEntriesPerSec).padStart(13)}  ${r.walMbPerSec.toFixed(1).padStart(8)}  ${fmt(r.bareGrowingRecordsPerSec).padStart(18)}  ${fmt(r.barePreallocatedRecordsPerSec).padStart(19)}  ${range.padStart(19)}  ${r.ratioPreallocated.toFixed(2).padStart(12)}`,
    );
  }
  out.push(`(medians of ${rows[0]?.rounds ?? 0} rounds; a ratio is the median of each round's WAL/bare ratio, with their range)`);
  return out;
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const quick = process.argv.includes('--quick');
  const jsonAt = process.argv.indexOf('--json');
  const roundsAt = process.argv.indexOf('--rounds');
  const rounds = roundsAt > 0 ? Number(process.argv[roundsAt + 1]) : quick ? 1 : 5;
  if (!(Number.isInteger(rounds) && rounds >= 1)) throw new RangeError(`--rounds must be a positive integer`);
  const rows = runWalBench({ timeMs: quick ? 200 : 1000, rounds, onProgress: (l) => process.stderr.write(l + '\n') });
  for (const line of formatWalRows(rows)) process.stdout.write(line + '\n');
  if (jsonAt > 0 && process.argv[jsonAt + 1] !== undefined) writeFileSync(process.argv[jsonAt + 1]!, JSON.stringify({ machine: { cores: os.cpus().length, node: process.version }, wal: rows }, null, 2));
}
