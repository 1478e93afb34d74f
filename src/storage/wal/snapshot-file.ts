/**
 * Snapshot files: one state machine snapshot with its metadata (index, term, membership),
 * beside the segments, named `snapshot-<index, 20 digits>.snap` and referenced from the log
 * by a snapshot marker record. See docs/wal-format.md, "Snapshot files".
 *
 * ```
 *  0       4    5  6    8        16       24           32          36   40
 *  ┌───────┬────┬──┬────┬────────┬────────┬────────────┬───────────┬────┬──────┬──────┬─────┐
 *  │ magic │ver │0 │ 0  │ index  │ term   │ dataBytes  │ confBytes │ 0  │ conf │ data │ crc │
 *  └───────┴────┴──┴────┴────────┴────────┴────────────┴───────────┴────┴──────┴──────┴─────┘
 *  crc: CRC-32 of every byte before it
 *  conf: autoLeave u8, 3 zero bytes, then voters, votersOutgoing, learners, learnersNext,
 *        each a u32 count followed by that many u32 node ids
 * ```
 *
 * Written as a temporary file, synced, renamed into place, and the directory synced, so a
 * crash leaves either no file or a whole one under the final name.
 */
import { join } from 'node:path';
import type { ConfState, NodeId, Snapshot } from '../../core/index.ts';
import { readFully, writeFileAtomically, type FileSystem } from '../fs.ts';
import { crc32 } from './crc.ts';
import { corruptLog } from './errors.ts';
import { FORMAT_VERSION, SNAPSHOT_MAGIC, getU64, setU64, snapshotFileName } from './format.ts';

const HEADER_BYTES = 40;
const CRC_BYTES = 4;
/** Members of one list of a configuration; more is corruption. */
const CONF_MEMBERS_MAX = 65_536;
/** A snapshot is read into one buffer; Node.js buffers hold at most 2^32 - 1 bytes here. */
export const SNAPSHOT_BYTES_MAX = 0xffff_ffff;

function encodeConf(conf: ConfState): Uint8Array {
  const lists = [conf.voters, conf.votersOutgoing, conf.learners, conf.learnersNext];
  let bytes = 4;
  for (const l of lists) bytes += 4 + 4 * l.length;
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  out[0] = conf.autoLeave ? 1 : 0;
  let at = 4;
  for (const l of lists) {
    view.setUint32(at, l.length, true);
    at += 4;
    for (const id of l) {
      view.setUint32(at, id, true);
      at += 4;
    }
  }
  return out;
}

function decodeConf(bytes: Uint8Array): ConfState | string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 || bytes[0]! > 1 || bytes[1] !== 0 || bytes[2] !== 0 || bytes[3] !== 0) return 'bad membership header';
  let at = 4;
  const lists: NodeId[][] = [];
  for (let l = 0; l < 4; l++) {
    if (bytes.length - at < 4) return 'membership truncated';
    const count = view.getUint32(at, true);
    at += 4;
    if (count > CONF_MEMBERS_MAX || bytes.length - at < 4 * count) return 'membership list too long';
    const ids: NodeId[] = [];
    for (let i = 0; i < count; i++, at += 4) ids.push(view.getUint32(at, true));
    lists.push(ids);
  }
  if (at !== bytes.length) return 'bytes after the membership';
  return { voters: lists[0]!, votersOutgoing: lists[1]!, learners: lists[2]!, learnersNext: lists[3]!, autoLeave: bytes[0] === 1 };
}

/** The file's bytes, as iovecs: header and membership, the data (not copied), the CRC. */
export function encodeSnapshotFile(snap: Snapshot): Uint8Array[] {
  const conf = encodeConf(snap.meta.conf);
  const head = new Uint8Array(HEADER_BYTES + conf.length);
  const view = new DataView(head.buffer);
  view.setUint32(0, SNAPSHOT_MAGIC, true);
  head[4] = FORMAT_VERSION;
  setU64(view, 8, snap.meta.index);
  setU64(view, 16, snap.meta.term);
  setU64(view, 24, snap.data.length);
  view.setUint32(32, conf.length, true);
  head.set(conf, HEADER_BYTES);
  const tail = new Uint8Array(CRC_BYTES);
  new DataView(tail.buffer).setUint32(0, crc32(snap.data, crc32(head)), true);
  return [head, snap.data, tail];
}

/** Decodes a whole snapshot file; a CORRUPT_LOG error names the file if it is not one. */
export function decodeSnapshotFile(bytes: Uint8Array, fileName: string): Snapshot {
  const bad = (offset: number, what: string) => corruptLog(fileName, offset, what);
  if (bytes.length < HEADER_BYTES + CRC_BYTES) throw bad(0, `snapshot file truncated (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const crcAt = bytes.length - CRC_BYTES;
  if (view.getUint32(crcAt, true) !== crc32(bytes.subarray(0, crcAt))) throw bad(crcAt, 'snapshot file checksum mismatch');
  if (view.getUint32(0, true) !== SNAPSHOT_MAGIC) throw bad(0, 'not a snapshot file: bad magic number');
  if (bytes[4] !== FORMAT_VERSION) throw bad(4, `unknown snapshot format version ${bytes[4]}`);
  if (bytes[5] !== 0 || view.getUint16(6, true) !== 0 || view.getUint32(36, true) !== 0) throw bad(5, 'snapshot header reserved bytes not zero');
  const index = getU64(view, 8);
  const term = getU64(view, 16);
  const dataBytes = getU64(view, 24);
  const confBytes = view.getUint32(32, true);
  if (index < 1 || term < 1 || dataBytes < 0) throw bad(8, 'snapshot index, term or size out of range');
  if (HEADER_BYTES + confBytes + dataBytes !== crcAt) throw bad(24, 'snapshot sizes do not add up to the file size');
  const conf = decodeConf(bytes.subarray(HEADER_BYTES, HEADER_BYTES + confBytes));
  if (typeof conf === 'string') throw bad(HEADER_BYTES, conf);
  const data = bytes.subarray(HEADER_BYTES + confBytes, crcAt);
  return { meta: { index, term, conf }, data };
}

/**
 * Writes `snap` durably under its final name (temporary file, sync, rename, directory sync;
 * the syncs only if `sync`). Returns the file name.
 */
export function writeSnapshotFile(fs: FileSystem, dir: string, snap: Snapshot, sync: boolean): string {
  const name = snapshotFileName(snap.meta.index);
  writeFileAtomically(fs, dir, name, encodeSnapshotFile(snap), sync);
  return name;
}

/** Reads and checks the snapshot file `fileName` in `dir`; it must hold snapshot `index` at `term`. */
export function readSnapshotFile(fs: FileSystem, dir: string, fileName: string, index: number, term: number): Snapshot {
  let fd: number;
  try {
    fd = fs.open(join(dir, fileName), 'read');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw corruptLog(fileName, 0, 'snapshot file referenced by the log is missing');
    throw error;
  }
  try {
    const size = fs.size(fd);
    if (size > SNAPSHOT_BYTES_MAX) throw corruptLog(fileName, 0, `snapshot file of ${size} bytes over the maximum`);
    const bytes = new Uint8Array(size);
    if (readFully(fs, fd, bytes, 0) !== size) throw corruptLog(fileName, 0, 'snapshot file shrank while being read');
    const snap = decodeSnapshotFile(bytes, fileName);
    if (snap.meta.index !== index || snap.meta.term !== term) {
      throw corruptLog(fileName, 8, `snapshot file holds index ${snap.meta.index} term ${snap.meta.term}, the log expects index ${index} term ${term}`);
    }
    return snap;
  } finally {
    fs.close(fd);
  }
}
