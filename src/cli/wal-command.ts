/**
 * `ringraft wal`: looks at a node's WAL directory without changing it.
 *
 *   ringraft wal verify DIR [--json]   checks every record; exit 0 if sound, 1 if corrupt
 *   ringraft wal dump DIR [--json]     prints every record (human-readable, or JSON lines)
 *
 * Both verify the log the way opening it does (docs/wal-format.md, "Recovery"). A torn tail
 * is not damage (a crash leaves one, and opening the log cuts it): it is reported, and the
 * exit code is still 0.
 */
import { statSync } from 'node:fs';
import { ErrorCode, RingraftError } from '../core/index.ts';
import { RECORD_TYPE_NAMES, RecordType, inspectWal, type DecodedRecord, type WalInspection } from '../storage/index.ts';
import { parseArgs, UsageError, type Output } from './args.ts';

export const WAL_USAGE = `usage: ringraft wal verify DIR [--json]
       ringraft wal dump DIR [--json]

  verify   check every segment, record and the snapshot file of the WAL in DIR;
           prints segments, records, entries, index range and hard state.
           Exit code 0 if the log is sound (a torn tail, which opening the log cuts,
           is reported but sound), 1 if it is corrupt (the message names file and byte).
  dump     print every record of every intact batch, in log order;
           --json prints one JSON object per line.
  Neither changes anything in DIR.`;

export function walCommand(argv: readonly string[], out: Output): number {
  const args = parseArgs(argv, { flags: ['json', 'help'], values: [] });
  if (args.flags.has('help')) {
    out.stdout(WAL_USAGE);
    return 0;
  }
  const [action, dir, ...extra] = args.positional;
  if (action !== 'verify' && action !== 'dump') throw new UsageError(action === undefined ? 'wal needs verify or dump' : `unknown wal action "${action}"`);
  if (dir === undefined) throw new UsageError(`wal ${action} needs a directory`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (!isDirectory(dir)) throw new UsageError(`${dir} is not a directory`);
  const json = args.flags.has('json');
  try {
    if (action === 'verify') verify(dir, json, out);
    else dump(dir, json, out);
    return 0;
  } catch (error) {
    if (error instanceof RingraftError && (error.code === ErrorCode.CORRUPT_LOG || error.code === ErrorCode.UNSUPPORTED_FORMAT)) {
      if (json && action === 'verify') out.stdout(JSON.stringify({ ok: false, error: error.message }));
      out.stderr(`ringraft: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function verify(dir: string, json: boolean, out: Output): void {
  const w = inspectWal(dir);
  if (json) {
    out.stdout(JSON.stringify({ ok: true, ...summaryOf(w) }));
    return;
  }
  const range = w.entries === 0 ? 'none' : `${w.firstIndex}..${w.lastIndex}`;
  out.stdout(`${dir}: ok`);
  out.stdout(`segments    ${w.segments.length}`);
  for (const s of w.segments) {
    out.stdout(`  ${s.fileName}  first index ${s.firstIndex}, ${s.batches} batches, ${s.records} records, ${s.entries} entries, ${s.endBytes} of ${s.fileBytes} bytes`);
  }
  out.stdout(`records     ${w.records} in ${w.batches} batches`);
  out.stdout(`entries     ${w.entries} (index ${range})`);
  out.stdout(`hard state  term ${w.hardState.term}, vote ${w.hardState.vote}, commit ${w.hardState.commit}`);
  const snap = w.snapshot;
  out.stdout(snap === undefined ? 'snapshot    none' : `snapshot    index ${snap.meta.index}, term ${snap.meta.term}, ${snap.dataBytes} bytes of data (${snap.fileName})`);
  const t = w.tornTail;
  if (t !== undefined) {
    const action = t.action === 'remove' ? `opening the log removes ${t.fileName}` : `opening the log cuts ${t.fileBytes - t.cutOffsetBytes} bytes from byte ${t.cutOffsetBytes}`;
    out.stdout(`torn tail   ${t.fileName} at byte ${t.badOffsetBytes}: ${t.what}; ${action}`);
  }
  if (w.obsoleteFiles.length > 0) out.stdout(`leftovers   ${w.obsoleteFiles.join(', ')} (opening the log deletes them)`);
}

function summaryOf(w: WalInspection): Record<string, unknown> {
  return {
    segments: w.segments.map((s) => ({
      file: s.fileName,
      firstIndex: s.firstIndex,
      batches: s.batches,
      records: s.records,
      entries: s.entries,
      endBytes: s.endBytes,
      fileBytes: s.fileBytes,
    })),
    records: w.records,
    batches: w.batches,
    entries: w.entries,
    firstIndex: w.firstIndex,
    lastIndex: w.lastIndex,
    hardState: w.hardState,
    snapshot: w.snapshot === undefined ? null : { index: w.snapshot.meta.index, term: w.snapshot.meta.term, file: w.snapshot.fileName, dataBytes: w.snapshot.dataBytes },
    tornTail: w.tornTail ?? null,
    obsoleteFiles: w.obsoleteFiles,
  };
}

function dump(dir: string, json: boolean, out: Output): void {
  const w = inspectWal(dir, {
    visit: (file, offset, record) => out.stdout(json ? JSON.stringify({ file, offset, ...fieldsOf(record) }) : `${file}@${offset}  ${describe(record)}`),
  });
  const t = w.tornTail;
  if (t !== undefined) out.stderr(`torn tail: ${t.fileName} at byte ${t.badOffsetBytes}: ${t.what} (not dumped; opening the log discards it)`);
}

const ENTRY_TYPE_NAMES = ['normal', 'conf-change'];

function fieldsOf(r: DecodedRecord): Record<string, unknown> {
  const type = RECORD_TYPE_NAMES[r.type];
  switch (r.type) {
    case RecordType.Entry:
      return { type, index: r.index, term: r.term, entryType: ENTRY_TYPE_NAMES[r.entryType] ?? r.entryType, dataBytes: r.dataBytes };
    case RecordType.HardState:
      return { type, ...r.hardState };
    case RecordType.Truncation:
      return { type, index: r.index };
    case RecordType.SnapshotMarker:
      return { type, index: r.marker.index, term: r.marker.term, kind: r.marker.kind === 0 ? 'compact' : 'replace', snapshotFile: r.marker.fileName };
    case RecordType.Commit:
      return { type, batchBytes: r.batchBytes, recordCount: r.recordCount };
  }
}

function describe(r: DecodedRecord): string {
  const { type, ...fields } = fieldsOf(r);
  return `${String(type).padEnd(10)}  ${Object.entries(fields)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ')}`;
}
