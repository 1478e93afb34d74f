/**
 * `ringraft wal`: looks at a node's WAL directory, or at every node's of a cluster's data
 * directory, without changing anything.
 *
 *   ringraft wal verify DIR [--json]   checks every record; exit 0 if sound, 1 if corrupt or empty
 *   ringraft wal dump DIR [--json]     prints every record (human-readable, or JSON lines)
 *
 * Both verify the log the way opening it does (docs/wal-format.md, "Recovery"). A torn tail
 * is not damage (a crash leaves one, and opening the log cuts it): it is reported, and the
 * exit code is still 0.
 *
 * A directory without a segment is refused (exit 1), never reported "ok": WalStorage.open
 * creates the first segment, so every log has one, and an empty directory is a wrong path or
 * a node whose log is lost. A cluster's data directory holds no segment but one WAL directory
 * `node-<id>` per node (and files of the cluster's own): verify checks each node's in turn and
 * reports per node; dump asks for one of them.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, RingraftError } from '../base/index.ts';
import { RECORD_TYPE_NAMES, RecordType, inspectWal, nodeDirectoryHasLog, realFileSystem, type DecodedRecord, type RecordVisitor, type WalInspection } from '../storage/index.ts';
// Not exported from storage/index.ts: the one definition of a segment file's name.
import { isSystemError, parseArgs, UsageError, type Output } from './args.ts';

export const WAL_USAGE = `usage: ringraft wal verify DIR [--json]
       ringraft wal dump DIR [--json]

  DIR      a node's WAL directory; for verify also a cluster's data directory, whose
           node-<id> subdirectories are verified in turn and reported per node.
  verify   check every segment, record and the snapshot file of the WAL in DIR;
           prints segments, records, entries, index range and hard state.
           Exit code 0 if the log is sound (a torn tail, which opening the log cuts,
           is reported but sound); 1 if it is corrupt (the message names file and byte)
           or DIR holds no WAL segment (nothing was checked); for a cluster, 1 if any
           node's WAL is. --json prints { ok, segments, records, ... } or { ok, error };
           for a cluster { ok, dataDir, nodes: [{ node, dir, ok, ... }] }.
  dump     print every record of every intact batch of one node's WAL, in log order;
           --json prints one JSON object per line. Exit code 1 as for verify.
  Exit code 2 if DIR does not exist or is not a directory, or, for dump, is a
  cluster's data directory (name one of its node directories).
  Neither changes anything in DIR.`;

/** A cluster names each node's directory so (src/cluster/cluster.ts, settingsFor). */
const NODE_DIR_NAME = /^node-(\d+)$/;

/** What looking at one WAL directory found: what it holds, or why it is not a sound log. */
type WalCheck = { readonly ok: true; readonly wal: WalInspection } | { readonly ok: false; readonly error: string };

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
  const names = listDirectory(dir);
  const json = args.flags.has('json');
  const nodes = nodeDirectories(dir, names);
  if (nodes.length === 0) return action === 'verify' ? verifyOne(dir, json, out) : dumpOne(dir, json, out);
  if (nodeDirectoryHasLog(realFileSystem, dir)) throw new UsageError(`${dir} holds both WAL segments and node directories (${nodes.join(', ')}); name one WAL directory`);
  if (action === 'dump') throw new UsageError(`${dir} is a cluster's data directory; dump one node's WAL: ${nodes.map((n) => join(dir, n)).join(', ')}`);
  return verifyCluster(dir, nodes, json, out);
}

/** The names in `dir`; a path that is not a readable directory is a UsageError. */
function listDirectory(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (error) {
    if (!isSystemError(error)) throw error;
    if (error.code === 'ENOENT') throw new UsageError(`${dir} does not exist`);
    if (error.code === 'ENOTDIR') throw new UsageError(`${dir} is not a directory`);
    throw new UsageError(`${dir} cannot be read: ${error.message}`);
  }
}

/** The node directories of a cluster's data directory, in node id order; none in a WAL directory. */
function nodeDirectories(dir: string, names: readonly string[]): string[] {
  return names
    .filter((n) => NODE_DIR_NAME.test(n) && isDirectory(join(dir, n)))
    .sort((a, b) => Number(NODE_DIR_NAME.exec(a)![1]) - Number(NODE_DIR_NAME.exec(b)![1]));
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Verifies the WAL in `dir`, calling `visit` for every record. A corrupt log, a log of another
 * format version, a file that cannot be read and a directory without segments are all a
 * failed check, reported by its message; anything else is a bug and is thrown.
 */
function checkWal(dir: string, visit?: RecordVisitor): WalCheck {
  try {
    if (!nodeDirectoryHasLog(realFileSystem, dir)) {
      return { ok: false, error: `no WAL segments found in ${dir}: nothing to verify (a wrong directory, a node that never started, or a lost log)` };
    }
    return { ok: true, wal: inspectWal(dir, { visit }) };
  } catch (error) {
    if (error instanceof RingraftError && (error.code === ErrorCode.CORRUPT_LOG || error.code === ErrorCode.UNSUPPORTED_FORMAT)) return { ok: false, error: error.message };
    if (isSystemError(error)) return { ok: false, error: `cannot read the WAL in ${dir}: ${error.message}` };
    throw error;
  }
}

function verifyOne(dir: string, json: boolean, out: Output): number {
  const c = checkWal(dir);
  if (!c.ok) {
    if (json) out.stdout(JSON.stringify({ ok: false, error: c.error }));
    out.stderr(`ringraft: ${c.error}`);
    return 1;
  }
  if (json) out.stdout(JSON.stringify({ ok: true, ...summaryOf(c.wal) }));
  else printReport(dir, c.wal, out);
  return 0;
}

/** Verifies every node's WAL, even after a bad one, so that the report covers them all. */
function verifyCluster(dir: string, nodes: readonly string[], json: boolean, out: Output): number {
  const reports: Record<string, unknown>[] = [];
  const bad: string[] = [];
  for (const node of nodes) {
    const nodeDir = join(dir, node);
    const c = checkWal(nodeDir);
    if (!c.ok) bad.push(node);
    if (json) reports.push(c.ok ? { node, dir: nodeDir, ok: true, ...summaryOf(c.wal) } : { node, dir: nodeDir, ok: false, error: c.error });
    else {
      if (c.ok) printReport(nodeDir, c.wal, out);
      else out.stdout(`${nodeDir}: BAD: ${c.error}`);
      out.stdout('');
    }
  }
  const ok = bad.length === 0;
  if (json) out.stdout(JSON.stringify({ ok, dataDir: dir, nodes: reports }));
  else out.stdout(ok ? `${dir}: ok, all ${nodes.length} node WALs (${nodes.join(', ')})` : `${dir}: ${nodes.length - bad.length} of ${nodes.length} node WALs ok; bad: ${bad.join(', ')}`);
  if (!ok) out.stderr(`ringraft: ${dir}: bad node WALs: ${bad.join(', ')}`);
  return ok ? 0 : 1;
}

function printReport(dir: string, w: WalInspection, out: Output): void {
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

function dumpOne(dir: string, json: boolean, out: Output): number {
  const c = checkWal(dir, (file, offset, record) => out.stdout(json ? JSON.stringify({ file, offset, ...fieldsOf(record) }) : `${file}@${offset}  ${describe(record)}`));
  if (!c.ok) {
    out.stderr(`ringraft: ${c.error}`);
    return 1;
  }
  const t = c.wal.tornTail;
  if (t !== undefined) out.stderr(`torn tail: ${t.fileName} at byte ${t.badOffsetBytes}: ${t.what} (not dumped; opening the log discards it)`);
  return 0;
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
