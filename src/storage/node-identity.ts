/**
 * Whose a node directory is, and whether a node may start from what it holds.
 *
 * A Raft node that has lost its state must never vote or count toward a quorum under its old
 * identity: its empty log would let a stale candidate win, and entries a majority had
 * acknowledged would be lost (the node "forgot" that it acknowledged them). The log alone
 * cannot tell "lost" from "new", because both are empty. So each node directory records
 * whose it is in a small file written before the node's first start, and whoever starts
 * nodes (the embedding cluster, a server, the simulator) also knows which nodes have run
 * and so must have state. {@link checkNodeDirectory} holds that knowledge against the
 * directory and refuses a node that must not start.
 *
 * The identity file, `IDENTITY`, is one line of JSON and a CRC-32 of it:
 *
 * ```
 * {"format":1,"clusterId":"<hex>","nodeId":<n>}\n
 * crc32 <8 hex digits>\n
 * ```
 *
 * It is written with {@link writeFileAtomically} (temporary file, sync, rename, directory
 * sync), so a crash leaves no identity or a whole one.
 *
 * "Has run" is recorded by the starter after the node has opened its storage (which then
 * holds at least a segment) and before it runs Raft, so no vote or acknowledgement can leave
 * a node its starter does not know has run. A log that recovers empty although segments
 * exist (its only batch torn) is not lost state: Raft persists before it sends, so a batch
 * that never became durable was never the ground of a vote or an acknowledgement, and the
 * node may start from nothing.
 */
import { join } from 'node:path';
import { ErrorCode, RingraftError } from '../base/index.ts';
import { readWholeFile, writeFileAtomically, type FileSystem } from './fs.ts';
import { crc32 } from './wal/crc.ts';
import { isSnapshotFileName, parseSegmentFileName } from './wal/format.ts';

export const IDENTITY_FILE = 'IDENTITY';
const IDENTITY_FORMAT = 1;
/** A record file larger than this is not one of ours. */
const RECORD_FILE_BYTES_MAX = 1 << 20;

export interface NodeIdentity {
  /** The cluster the node belongs to: chosen at random when the cluster is created. */
  readonly clusterId: string;
  readonly nodeId: number;
}

/** What the starter of a node knows about it. */
export interface NodeExpectation extends NodeIdentity {
  /**
   * The node has run before (its first start completed), so its directory must hold its
   * log. A node that has not run may start empty.
   */
  readonly hasRun: boolean;
}

/** What {@link checkNodeDirectory} found. */
export interface NodeDirectoryState {
  /** The directory holds a log (a segment or a snapshot file). */
  readonly hasLog: boolean;
  /** The identity file was missing and has now been written (a new node's first start). */
  readonly identityWritten: boolean;
}

/**
 * Checks that node `expected.nodeId` of cluster `expected.clusterId` may start from `dir`,
 * and writes its identity there if it is new. Throws:
 * - STATE_LOST when the node has run before but its directory holds no log (deleted,
 *   emptied, replaced by an empty one): it must come back as a new member;
 * - CONFIG_MISMATCH when the directory belongs to another cluster or another node, or
 *   holds a log but no identity (copied from elsewhere);
 * - CORRUPT_LOG when the identity file is damaged.
 */
export function checkNodeDirectory(fs: FileSystem, dir: string, expected: NodeExpectation): NodeDirectoryState {
  const who = `node ${expected.nodeId}`;
  fs.mkdirp(dir);
  const hasLog = nodeDirectoryHasLog(fs, dir);
  const identity = readNodeIdentity(fs, dir);
  if (identity === undefined) {
    if (hasLog) {
      throw new RingraftError(
        ErrorCode.CONFIG_MISMATCH,
        `${who}: ${dir} holds a log but no ${IDENTITY_FILE} file: it was not created by this cluster (copied from elsewhere?); refusing to start it`,
      );
    }
    if (expected.hasRun) throw stateLost(expected, dir);
    writeNodeIdentity(fs, dir, expected);
    return { hasLog, identityWritten: true };
  }
  if (identity.clusterId !== expected.clusterId) {
    throw new RingraftError(ErrorCode.CONFIG_MISMATCH, `${who}: ${dir} belongs to cluster ${identity.clusterId}, not to this cluster (${expected.clusterId})`);
  }
  if (identity.nodeId !== expected.nodeId) {
    throw new RingraftError(ErrorCode.CONFIG_MISMATCH, `${who}: ${dir} belongs to node ${identity.nodeId} of this cluster`);
  }
  if (!hasLog && expected.hasRun) throw stateLost(expected, dir);
  return { hasLog, identityWritten: false };
}

/** Whether `dir` holds a log: a WAL segment or a snapshot file (false if there is no `dir`). */
export function nodeDirectoryHasLog(fs: FileSystem, dir: string): boolean {
  let names: string[];
  try {
    names = fs.readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  return names.some((name) => parseSegmentFileName(name) !== undefined || isSnapshotFileName(name));
}

function stateLost(expected: NodeExpectation, dir: string): RingraftError {
  return new RingraftError(
    ErrorCode.STATE_LOST,
    `node ${expected.nodeId} has run before but ${dir} holds no log: its state is lost, and it must not vote under its old identity; ` +
      `replace it with a new member (cluster.replaceNode(${expected.nodeId})), which catches up from the others`,
  );
}

/** The identity recorded in `dir`, or undefined if there is none. */
export function readNodeIdentity(fs: FileSystem, dir: string): NodeIdentity | undefined {
  const record = readCheckedRecord(fs, join(dir, IDENTITY_FILE));
  if (record === undefined) return undefined;
  const { format, clusterId, nodeId } = record as { format?: unknown; clusterId?: unknown; nodeId?: unknown };
  if (format !== IDENTITY_FORMAT) throw new RingraftError(ErrorCode.UNSUPPORTED_FORMAT, `${join(dir, IDENTITY_FILE)}: format ${String(format)}; this build reads ${IDENTITY_FORMAT}`);
  if (typeof clusterId !== 'string' || !(typeof nodeId === 'number' && Number.isSafeInteger(nodeId) && nodeId >= 1)) {
    throw damaged(join(dir, IDENTITY_FILE), 'fields missing or of the wrong type');
  }
  return { clusterId, nodeId };
}

export function writeNodeIdentity(fs: FileSystem, dir: string, identity: NodeIdentity): void {
  writeCheckedRecord(fs, dir, IDENTITY_FILE, { format: IDENTITY_FORMAT, clusterId: identity.clusterId, nodeId: identity.nodeId });
}

// ─── Checked records: one JSON line and its CRC ──────────────────────────────────────

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** Writes `value` as a checked record file `name` in `dir`, durably and atomically. */
export function writeCheckedRecord(fs: FileSystem, dir: string, name: string, value: object): void {
  const line = JSON.stringify(value);
  const body = utf8.encode(`${line}\n`);
  const crc = crc32(body).toString(16).padStart(8, '0');
  writeFileAtomically(fs, dir, name, [body, utf8.encode(`crc32 ${crc}\n`)], true);
}

/** Reads the checked record at `path`: undefined if there is no file; CORRUPT_LOG if it is damaged. */
export function readCheckedRecord(fs: FileSystem, path: string): unknown {
  const bytes = readWholeFile(fs, path, RECORD_FILE_BYTES_MAX, (size) => damaged(path, `${size} bytes, more than a record file holds`));
  if (bytes === undefined) return undefined;
  let text: string;
  try {
    text = utf8Decoder.decode(bytes);
  } catch {
    throw damaged(path, 'not UTF-8');
  }
  const match = /^([^\n]*)\ncrc32 ([0-9a-f]{8})\n$/.exec(text);
  if (match === null) throw damaged(path, 'not a record line followed by its crc32 line');
  const body = utf8.encode(`${match[1]!}\n`);
  if (crc32(body) !== Number.parseInt(match[2]!, 16)) throw damaged(path, 'checksum mismatch');
  try {
    return JSON.parse(match[1]!) as unknown;
  } catch {
    throw damaged(path, 'not JSON');
  }
}

function damaged(path: string, what: string): RingraftError {
  return new RingraftError(ErrorCode.CORRUPT_LOG, `${path} is damaged: ${what}`);
}
