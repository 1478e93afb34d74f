/**
 * Recovery of a large WAL: writes a log of about `--bytes` (default 1 GiB) of 1 KiB entries
 * into a temporary directory, then opens it in a fresh child process, which reports how
 * long `WalStorage.open` (verifying every record and rebuilding the index) took and the
 * process's peak resident memory, against the same child's baseline before opening. The
 * directory is removed afterwards.
 *
 *   node dist/bench/micro/wal-recovery.bench.js [--bytes 1073741824]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { EntryType, type Entry } from '../../src/core/index.ts';
import { WalStorage } from '../../src/storage/index.ts';

const ENTRY_BYTES = 1024;
const BATCH = 1024;

export interface RecoveryResult {
  readonly logBytes: number;
  readonly entries: number;
  readonly writeSeconds: number;
  readonly openSeconds: number;
  readonly rssBaselineMb: number;
  readonly rssPeakMb: number;
  readonly heapUsedAfterMb: number;
}

/** In the child: open the WAL and report. */
function openAndReport(dir: string): void {
  const baseline = process.memoryUsage().rss;
  const start = performance.now();
  const wal = WalStorage.open(dir);
  const openSeconds = (performance.now() - start) / 1000;
  const last = wal.lastIndex();
  const heap = process.memoryUsage().heapUsed;
  wal.close();
  process.stdout.write(
    JSON.stringify({ openSeconds, entries: last, rssBaseline: baseline, rssPeak: process.resourceUsage().maxRSS * 1024, heapUsed: heap }),
  );
}

export function runRecoveryBench(bytes: number, onProgress: (line: string) => void): RecoveryResult {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ringraft-wal-recovery-'));
  try {
    const wal = WalStorage.open(dir, { durability: 'none' });
    const payload = new Uint8Array(ENTRY_BYTES).fill(3);
    const total = Math.ceil(bytes / ENTRY_BYTES);
    const start = performance.now();
    let index = 0;
    while (index < total) {
      const n = Math.min(BATCH, total - index);
      const entries: Entry[] = new Array(n);
      for (let i = 0; i < n; i++) entries[i] = { term: 1, index: ++index, type: EntryType.Normal, data: payload };
      wal.persist({ entries, hardState: { term: 1, vote: 1, commit: index }, mustSync: true });
      if (index % (BATCH * 128) === 0) onProgress(`  writing the log: ${((index * ENTRY_BYTES) / 2 ** 30).toFixed(2)} GiB`);
    }
    wal.close();
    const writeSeconds = (performance.now() - start) / 1000;
    onProgress('  opening it in a fresh process');
    const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--open', dir], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (child.status !== 0) throw new Error(`recovery child failed: ${child.stderr}`);
    const r = JSON.parse(child.stdout) as { openSeconds: number; entries: number; rssBaseline: number; rssPeak: number; heapUsed: number };
    if (r.entries !== total) throw new Error(`recovered ${r.entries} entries, wrote ${total}`);
    return {
      logBytes: total * ENTRY_BYTES,
      entries: r.entries,
      writeSeconds,
      openSeconds: r.openSeconds,
      rssBaselineMb: r.rssBaseline / 2 ** 20,
      rssPeakMb: r.rssPeak / 2 ** 20,
      heapUsedAfterMb: r.heapUsed / 2 ** 20,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const openAt = process.argv.indexOf('--open');
  if (openAt > 0) openAndReport(process.argv[openAt + 1]!);
  else {
    const bytesAt = process.argv.indexOf('--bytes');
    const bytes = bytesAt > 0 ? Number(process.argv[bytesAt + 1]) : 2 ** 30;
    const r = runRecoveryBench(bytes, (l) => process.stderr.write(l + '\n'));
    process.stdout.write(
      `log ${(r.logBytes / 2 ** 30).toFixed(2)} GiB, ${r.entries.toLocaleString('en-US')} entries: ` +
        `open (verify + index) ${r.openSeconds.toFixed(2)} s = ${(r.logBytes / 2 ** 20 / r.openSeconds).toFixed(0)} MiB/s; ` +
        `peak RSS ${r.rssPeakMb.toFixed(0)} MiB (baseline ${r.rssBaselineMb.toFixed(0)} MiB), heap after ${r.heapUsedAfterMb.toFixed(0)} MiB; ` +
        `written in ${r.writeSeconds.toFixed(1)} s\n`,
    );
  }
}
