/**
 * The binary encoding of a Raft {@link Message}, built for the hot path of a shared-memory
 * ring: the sender asks for the exact size ({@link encodedMessageBytes}), reserves that much
 * ring space, and encodes straight into it ({@link encodeMessageInto}); the receiver decodes
 * in place from a view of ring memory ({@link decodeMessage}).
 *
 * Message format, version 1. Integers are little-endian; `varint` is unsigned LEB128 (7 bits
 * a byte, least significant group first, high bit set on every byte but the last), at most
 * 8 bytes, at most 2^53 - 1, and minimal (no redundant trailing zero group).
 *
 * ```
 * offset  size  field
 * 0       1     format version = 1 (0 is invalid, so zeroed memory never decodes)
 * 1       1     message type: MessageType, 1..13 (0 is invalid)
 * 2       2     presence bitmap, u16: bit i set <=> field i below is present
 * 4       ...   the present fields, in bit order:
 *
 * bit  field       encoding (present only when non-zero / non-empty / true)
 * 0    from        varint
 * 1    to          varint
 * 2    term        varint
 * 3    logTerm     varint
 * 4    index       varint
 * 5    commit      varint
 * 6    rejectHint  varint
 * 7    context     varint
 * 8    sentTick    varint
 * 9    reject      no bytes: the bit is the value
 * 10   entries     varint count (1..MESSAGE_ENTRIES_MAX), then that many entries
 * 11   snapshot    one snapshot chunk
 * 12-15            reserved, must be 0
 * ```
 *
 * An absent number is 0, absent entries are an empty list, an absent snapshot is undefined.
 *
 * Entry:
 *
 * ```
 * size  field
 * 1     flags: bits 0-3 EntryType (0 Normal, 1 ConfChange); bit 4 index follows;
 *       bit 5 term follows; bits 6-7 reserved, must be 0
 * v     index   varint, only if bit 4 (else it is the expected index, see below)
 * v     term    varint, only if bit 5 (else it is the expected term)
 * v     data length n (varint, <= ENTRY_DATA_BYTES_MAX), then n bytes
 * ```
 *
 * The expected index and term of the first entry are the message's `index + 1` and `term`
 * (an App's entries follow its prevIndex and are mostly of the leader's term); of every later
 * entry, the previous entry's `index + 1` and `term`. So a run of consecutive entries of one
 * term costs 1 byte of header plus the length, whatever the size of the numbers. Entry index
 * and term are at least 1 (the invariant of {@link Entry}).
 *
 * Snapshot chunk:
 *
 * ```
 * size  field
 * v     meta.index        varint
 * v     meta.term         varint
 * 1     conf flags: bit 0 autoLeave; bits 1-7 reserved, must be 0
 * v...  conf.voters, conf.votersOutgoing, conf.learners, conf.learnersNext: each a varint
 *       count (<= CONF_NODES_MAX), then that many node ids (varint, >= 1)
 * v     totalBytes        varint
 * v     offset            varint
 * v     data length n (varint, <= SNAPSHOT_CHUNK_BYTES_MAX), then n bytes;
 *       offset + n <= totalBytes
 * ```
 *
 * Nothing may follow the last field. The encoding is canonical: every message has exactly
 * one encoding, and the decoder refuses any other spelling of it (a present field that is
 * zero, a non-minimal varint, an explicit entry index or term equal to the expected one), so
 * `encodeMessage(decodeMessage(b))` equals `b` for every `b` that decodes.
 *
 * Why this shape: most fields of most messages are zero (a heartbeat carries from, to, term,
 * commit and sentTick; an AppResp from, to, term and index) and the rest are small numbers,
 * so a presence bitmap makes a zero field free and varints make a number as long as it needs.
 * Four layouts were measured side by side in one run (Node.js 20.20, 2-core AMD EPYC, plain
 * buffers, payloads left as views so that only the layout differs), on a heartbeat, an
 * AppResp, and an App of 1 and of 64 entries of 128 B, with terms around 10^3 and indexes
 * around 5 × 10^6:
 *
 * | layout                          | bytes             | encode ns           | decode ns           |
 * | ------------------------------- | ----------------- | ------------------- | ------------------- |
 * | bitmap + varints (this one)     | 15, 12, 150, 8403 | 53, 54, 124, 2226   | 72, 72, 208, 4060   |
 * | every field a varint, no bitmap | 19, 17, 152, 8405 | 72, 68, 129, 2805   | 100, 79, 185, 4427  |
 * | bitmap + 8-byte fields          | 44, 36, 205, 9592 | 150, 150, 249, 2251 | 232, 199, 315, 3952 |
 * | every field 8 bytes             | 79, 79, 228, 9615 | 168, 168, 234, 2726 | 202, 167, 257, 4516 |
 *
 * The smallest layout is also the fastest, or within noise of it: the time goes to calls,
 * checks and objects rather than to bytes, and a one-byte varint is the cheapest number to
 * read or write. bench/micro/codec.bench.ts keeps the last layout as its baseline and measures in
 * ring memory (a SharedArrayBuffer), where every payload copy costs more.
 *
 * What this codec does not do: check integrity (the ring and the WAL own that), or check
 * that a message makes sense for its type (the core does).
 */

import { CONF_NODES_MAX, ENTRY_DATA_BYTES_MAX, fail, MESSAGE_ENTRIES_MAX, SNAPSHOT_CHUNK_BYTES_MAX } from '../base/index.ts';
import { Buffer } from 'node:buffer';
import type { ConfState, Entry, EntryType, Message, MessageType, NodeId, SnapshotChunk } from '../core/types.ts';
import { DecodeError } from './bytes.ts';

/** The format version this module writes, and the only one it reads. */
export const MESSAGE_FORMAT_VERSION = 1;
// The limits a decoder checks lengths against (entries per message, entry and chunk payloads,
// node ids per configuration) are the shared ones of base/limits.ts.
export { CONF_NODES_MAX, ENTRY_DATA_BYTES_MAX, MESSAGE_ENTRIES_MAX, SNAPSHOT_CHUNK_BYTES_MAX };

export interface DecodeMessageOptions {
  /**
   * Whether entry payloads and snapshot chunk data are copied out of the input (default
   * true). Leave it on whenever the decoded message may outlive the input, which is the case
   * for anything decoded from ring memory: the ring reuses that memory once the slot is
   * released, and a view into it would change under the entry. Turn it off only to consume
   * the message synchronously, before the input is released or reused.
   */
  readonly copyPayloads?: boolean;
}

const MESSAGE_HEADER_BYTES = 4;
const MESSAGE_TYPE_MIN = 1;
const MESSAGE_TYPE_MAX = 13;
const ENTRY_TYPE_MAX = 1;

// Presence bits, one per field, in the order the fields follow the header.
const HAS_FROM = 1 << 0;
const HAS_TO = 1 << 1;
const HAS_TERM = 1 << 2;
const HAS_LOG_TERM = 1 << 3;
const HAS_INDEX = 1 << 4;
const HAS_COMMIT = 1 << 5;
const HAS_REJECT_HINT = 1 << 6;
const HAS_CONTEXT = 1 << 7;
const HAS_SENT_TICK = 1 << 8;
const IS_REJECT = 1 << 9;
const HAS_ENTRIES = 1 << 10;
const HAS_SNAPSHOT = 1 << 11;
const PRESENCE_RESERVED = 0xf000;

const ENTRY_TYPE_MASK = 0x0f;
const ENTRY_INDEX_FOLLOWS = 1 << 4;
const ENTRY_TERM_FOLLOWS = 1 << 5;
const ENTRY_FLAGS_RESERVED = 0xc0;
/** The smallest entry: flags and a zero length. */
const ENTRY_BYTES_MIN = 2;

const CONF_AUTO_LEAVE = 1 << 0;
const CONF_FLAGS_RESERVED = 0xfe;

/** 53 bits in 7-bit groups. */
const VARINT_BYTES_MAX = 8;
/** The last group of an 8-byte varint holds bits 49..52, so it is at most 0x0f. */
const VARINT_LAST_GROUP_MAX = 0x0f;

// ---------------------------------------------------------------------------------------
// Size
// ---------------------------------------------------------------------------------------

/** Bytes of `value` as a varint. `value` must be a safe non-negative integer. */
function varintBytes(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x20_0000) return 3;
  if (value < 0x1000_0000) return 4;
  if (value < 0x8_0000_0000) return 5;
  if (value < 0x400_0000_0000) return 6;
  if (value < 0x2_0000_0000_0000) return 7;
  return 8;
}

/** Bytes of an optional varint field: nothing when zero. */
function fieldBytes(value: number): number {
  return value === 0 ? 0 : varintBytes(value);
}

/**
 * The exact number of bytes the encoder (`encodeMessageInto`) writes for `m`, so that a sender can
 * reserve ring space before it encodes. It reads the same fields as the encoder but checks
 * none of them: an invalid message crashes in the encoder.
 */
export function encodedMessageBytes(m: Message): number {
  let size =
    MESSAGE_HEADER_BYTES +
    fieldBytes(m.from) +
    fieldBytes(m.to) +
    fieldBytes(m.term) +
    fieldBytes(m.logTerm) +
    fieldBytes(m.index) +
    fieldBytes(m.commit) +
    fieldBytes(m.rejectHint) +
    fieldBytes(m.context) +
    fieldBytes(m.sentTick);
  const entries = m.entries;
  if (entries.length > 0) size += entriesBytes(entries, m.index, m.term);
  if (m.snapshot !== undefined) size += snapshotChunkBytes(m.snapshot);
  return size;
}

function entriesBytes(entries: readonly Entry[], index: number, term: number): number {
  let size = varintBytes(entries.length);
  let expectedIndex = index + 1;
  let expectedTerm = term;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const length = e.data.length;
    size += 1 + varintBytes(length) + length;
    if (e.index !== expectedIndex) size += varintBytes(e.index);
    if (e.term !== expectedTerm) size += varintBytes(e.term);
    expectedIndex = e.index + 1;
    expectedTerm = e.term;
  }
  return size;
}

function snapshotChunkBytes(chunk: SnapshotChunk): number {
  const conf = chunk.meta.conf;
  const length = chunk.data.length;
  return (
    varintBytes(chunk.meta.index) +
    varintBytes(chunk.meta.term) +
    1 +
    nodeListBytes(conf.voters) +
    nodeListBytes(conf.votersOutgoing) +
    nodeListBytes(conf.learners) +
    nodeListBytes(conf.learnersNext) +
    varintBytes(chunk.totalBytes) +
    varintBytes(chunk.offset) +
    varintBytes(length) +
    length
  );
}

function nodeListBytes(ids: readonly NodeId[]): number {
  let size = varintBytes(ids.length);
  for (let i = 0; i < ids.length; i++) size += varintBytes(ids[i]!);
  return size;
}

// ---------------------------------------------------------------------------------------
// Encode
// ---------------------------------------------------------------------------------------

/**
 * Writes `value` as a varint at `at`; returns the offset after it. Crashes unless `value` is
 * a safe non-negative integer.
 */
function writeVarint(target: Uint8Array, at: number, value: number): number {
  // `value >>> 0 === value` holds exactly for the integers in [0, 2^32), which then take
  // the 32-bit path; anything else must be a larger safe integer.
  if (value >>> 0 !== value) {
    if (!(Number.isSafeInteger(value) && value >= 0)) fail(`${value} is a safe non-negative integer`);
    while (value > 0xffff_ffff) {
      target[at++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
  }
  while (value >= 0x80) {
    target[at++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  target[at++] = value;
  return at;
}

/**
 * Encodes `m` into `target` at `offset` and returns the number of bytes written, which is
 * {@link encodedMessageBytes}(m). `target` is typically ring memory the caller reserved;
 * nothing outside [offset, offset + size) is touched. Crashes (a plain Error, not a
 * DecodeError) on an invalid message or when `target` is too small: both are bugs.
 */
export function encodeMessageInto(m: Message, target: Uint8Array, offset: number): number {
  if (!(Number.isSafeInteger(offset) && offset >= 0 && offset <= target.length)) fail(`offset ${offset} is inside the target`);
  const type = m.type;
  if (!(Number.isInteger(type) && type >= MESSAGE_TYPE_MIN && type <= MESSAGE_TYPE_MAX)) fail(`message type ${type} is known`);
  const entries = m.entries;
  const snapshot = m.snapshot;
  let presence = 0;
  if (m.from !== 0) presence |= HAS_FROM;
  if (m.to !== 0) presence |= HAS_TO;
  if (m.term !== 0) presence |= HAS_TERM;
  if (m.logTerm !== 0) presence |= HAS_LOG_TERM;
  if (m.index !== 0) presence |= HAS_INDEX;
  if (m.commit !== 0) presence |= HAS_COMMIT;
  if (m.rejectHint !== 0) presence |= HAS_REJECT_HINT;
  if (m.context !== 0) presence |= HAS_CONTEXT;
  if (m.sentTick !== 0) presence |= HAS_SENT_TICK;
  if (m.reject) presence |= IS_REJECT;
  if (entries.length > 0) presence |= HAS_ENTRIES;
  if (snapshot !== undefined) presence |= HAS_SNAPSHOT;

  // Typed-array stores past the end are silently dropped and `set` past the end throws, so
  // nothing outside `target` can be written; the check at the end turns a short target into
  // a crash rather than a truncated message.
  let at = offset;
  target[at] = MESSAGE_FORMAT_VERSION;
  target[at + 1] = type;
  target[at + 2] = presence & 0xff;
  target[at + 3] = presence >>> 8;
  at += MESSAGE_HEADER_BYTES;
  if (presence & HAS_FROM) at = writeVarint(target, at, m.from);
  if (presence & HAS_TO) at = writeVarint(target, at, m.to);
  if (presence & HAS_TERM) at = writeVarint(target, at, m.term);
  if (presence & HAS_LOG_TERM) at = writeVarint(target, at, m.logTerm);
  if (presence & HAS_INDEX) at = writeVarint(target, at, m.index);
  if (presence & HAS_COMMIT) at = writeVarint(target, at, m.commit);
  if (presence & HAS_REJECT_HINT) at = writeVarint(target, at, m.rejectHint);
  if (presence & HAS_CONTEXT) at = writeVarint(target, at, m.context);
  if (presence & HAS_SENT_TICK) at = writeVarint(target, at, m.sentTick);
  if (presence & HAS_ENTRIES) at = writeEntries(target, at, entries, m.index, m.term);
  if (snapshot !== undefined) at = writeSnapshotChunk(target, at, snapshot);
  if (!(at <= target.length)) fail(`message of ${at - offset} bytes fits the ${target.length - offset} bytes after offset ${offset}`);
  return at - offset;
}

function writeEntries(target: Uint8Array, at: number, entries: readonly Entry[], index: number, term: number): number {
  if (!(entries.length <= MESSAGE_ENTRIES_MAX)) fail(`${entries.length} entries is at most ${MESSAGE_ENTRIES_MAX}`);
  at = writeVarint(target, at, entries.length);
  let expectedIndex = index + 1;
  let expectedTerm = term;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const data = e.data;
    if (!(e.type === 0 || e.type === 1)) fail(`entry type ${e.type} is known`);
    // The varint writer checks that index and term are safe integers; they must also be >= 1.
    if (!(e.index >= 1)) fail(`entry index ${e.index} is at least 1`);
    if (!(e.term >= 1)) fail(`entry term ${e.term} is at least 1`);
    if (!(data.length <= ENTRY_DATA_BYTES_MAX)) fail(`entry of ${data.length} bytes is at most ${ENTRY_DATA_BYTES_MAX}`);
    let flags: number = e.type;
    if (e.index !== expectedIndex) flags |= ENTRY_INDEX_FOLLOWS;
    if (e.term !== expectedTerm) flags |= ENTRY_TERM_FOLLOWS;
    target[at++] = flags;
    if (flags & ENTRY_INDEX_FOLLOWS) at = writeVarint(target, at, e.index);
    if (flags & ENTRY_TERM_FOLLOWS) at = writeVarint(target, at, e.term);
    at = writeVarint(target, at, data.length);
    if (data.length > 0) {
      target.set(data, at);
      at += data.length;
    }
    expectedIndex = e.index + 1;
    expectedTerm = e.term;
  }
  return at;
}

function writeSnapshotChunk(target: Uint8Array, at: number, chunk: SnapshotChunk): number {
  const conf = chunk.meta.conf;
  const data = chunk.data;
  if (!(data.length <= SNAPSHOT_CHUNK_BYTES_MAX)) fail(`snapshot chunk of ${data.length} bytes is at most ${SNAPSHOT_CHUNK_BYTES_MAX}`);
  if (!(chunk.offset + data.length <= chunk.totalBytes)) fail(`chunk [${chunk.offset}, +${data.length}) lies inside the snapshot of ${chunk.totalBytes} bytes`);
  at = writeVarint(target, at, chunk.meta.index);
  at = writeVarint(target, at, chunk.meta.term);
  target[at++] = conf.autoLeave ? CONF_AUTO_LEAVE : 0;
  at = writeNodeList(target, at, conf.voters);
  at = writeNodeList(target, at, conf.votersOutgoing);
  at = writeNodeList(target, at, conf.learners);
  at = writeNodeList(target, at, conf.learnersNext);
  at = writeVarint(target, at, chunk.totalBytes);
  at = writeVarint(target, at, chunk.offset);
  at = writeVarint(target, at, data.length);
  target.set(data, at);
  return at + data.length;
}

function writeNodeList(target: Uint8Array, at: number, ids: readonly NodeId[]): number {
  if (!(ids.length <= CONF_NODES_MAX)) fail(`${ids.length} node ids is at most ${CONF_NODES_MAX}`);
  at = writeVarint(target, at, ids.length);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!(id >= 1)) fail(`node id ${id} is at least 1`);
    at = writeVarint(target, at, id);
  }
  return at;
}

/** Encodes `m` into a new buffer of exactly {@link encodedMessageBytes}(m) bytes. */
export function encodeMessage(m: Message): Uint8Array {
  const target = new Uint8Array(encodedMessageBytes(m));
  const written = encodeMessageInto(m, target, 0);
  if (!(written === target.length)) fail(`encoder wrote ${written} bytes, the size function said ${target.length}`);
  return target;
}

// ---------------------------------------------------------------------------------------
// Decode
// ---------------------------------------------------------------------------------------

/**
 * A cursor over untrusted bytes. Every read checks what remains and throws a DecodeError;
 * nothing else escapes, and nothing is allocated for a length before the length is checked.
 *
 * Payloads (entry data, snapshot chunk data) are views of `payloadSource`, which is either
 * the input itself or one copy of its tail taken by {@link copyPayloadRegion}: byte `at` of
 * the input is byte `at - payloadShift` of `payloadSource`.
 *
 * Invariant: 0 <= at <= source.length; bytes [0, at) are consumed.
 */
class MessageReader {
  readonly source: Uint8Array;
  at = 0;
  private payloadSource: Uint8Array;
  private payloadShift = 0;

  constructor(source: Uint8Array) {
    this.source = source;
    this.payloadSource = source;
  }

  get remainingBytes(): number {
    return this.source.length - this.at;
  }

  /**
   * Copies the rest of the input, from `at` to the end, into memory of its own, and makes
   * every later payload a view of that copy.
   *
   * One copy per message rather than one per payload, because allocating an ArrayBuffer
   * costs about half a microsecond on Node.js 20 whatever its size: a copy per payload made
   * decoding an App of 64 entries of 128 B seven times slower (39 µs against 5.6 µs). The
   * copy comes from
   * `Buffer.allocUnsafe`, which carves copies under 4 KiB out of Node's shared 8 KiB pool
   * and costs no allocation at all for most messages; it is not zeroed, and needs not be,
   * since every byte is overwritten at once. The price: a kept payload keeps alive the
   * memory of its whole message (or, for a small message, of its pool slab), never more.
   */
  copyPayloadRegion(): void {
    const at = this.at;
    const rest = this.source.subarray(at);
    const copy = Buffer.allocUnsafe(rest.length);
    copy.set(rest);
    this.payloadSource = copy;
    this.payloadShift = at;
  }

  u8(): number {
    const at = this.at;
    if (at >= this.source.length) throw truncated(at, 'a byte');
    this.at = at + 1;
    return this.source[at]!;
  }

  varint(): number {
    const at = this.at;
    if (at >= this.source.length) throw truncated(at, 'a varint');
    const first = this.source[at]!;
    if (first < 0x80) {
      this.at = at + 1;
      return first;
    }
    return this.varintLong();
  }

  /** A varint field that is present, so it must not be zero (its absence would say so). */
  nonZeroVarint(what: string): number {
    const at = this.at;
    const value = this.varint();
    if (value === 0) throw new DecodeError('invalid', at, `${what} is present but zero`);
    return value;
  }

  /** A varint of two bytes or more: the slow path, off the common one-byte case. */
  private varintLong(): number {
    const source = this.source;
    const start = this.at;
    let at = start;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < VARINT_BYTES_MAX; i++) {
      if (at >= source.length) throw truncated(start, 'the end of a varint');
      const byte = source[at++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (byte === 0) throw new DecodeError('invalid', start, 'varint is not minimal');
        if (i === VARINT_BYTES_MAX - 1 && byte > VARINT_LAST_GROUP_MAX) {
          throw new DecodeError('out_of_range', start, 'varint is above Number.MAX_SAFE_INTEGER');
        }
        this.at = at;
        return value;
      }
      scale *= 0x80;
    }
    throw new DecodeError('out_of_range', start, `varint is longer than ${VARINT_BYTES_MAX} bytes`);
  }

  /**
   * A length-prefixed payload: the length is checked against `lengthMax`, then against the
   * input. Returns a plain Uint8Array view (built on the buffer, so that a Buffer input or
   * the pooled copy still yields a Uint8Array, not a Buffer).
   */
  payload(lengthMax: number, what: string): Uint8Array {
    const lengthAt = this.at;
    const length = this.varint();
    if (length > lengthMax) throw new DecodeError('length_over_max', lengthAt, `${what} of ${length} bytes is over the maximum ${lengthMax}`);
    const at = this.at;
    if (length > this.source.length - at) throw truncated(at, `${what} of ${length} bytes`);
    this.at = at + length;
    const payloadSource = this.payloadSource;
    return new Uint8Array(payloadSource.buffer, payloadSource.byteOffset + at - this.payloadShift, length);
  }

  /** A count of items that take at least `itemBytesMin` bytes each, checked before anything is allocated for them. */
  count(countMax: number, itemBytesMin: number, what: string): number {
    const countAt = this.at;
    const count = this.varint();
    if (count > countMax) throw new DecodeError('length_over_max', countAt, `${count} ${what} is over the maximum ${countMax}`);
    if (count * itemBytesMin > this.remainingBytes) throw truncated(this.at, `${count} ${what}`);
    return count;
  }
}

function truncated(at: number, what: string): DecodeError {
  return new DecodeError('truncated', at, `input ends before ${what}`);
}

/**
 * Decodes one message from exactly `bytes` (anything left over is an error). Input that is
 * not a valid encoding throws a {@link DecodeError}, and nothing else: not for truncated,
 * corrupt or hostile input. Lengths are checked against the maxima above and against the
 * input before anything is allocated for them, so work and memory are linear in the input.
 *
 * By default entry payloads and snapshot chunk data are copied out of `bytes`, so the
 * message stays valid after `bytes` is released or reused (as ring memory is). The copies
 * are views of one buffer per message (its `byteOffset` need not be 0, and the buffer may be
 * larger): keeping one payload keeps that buffer alive, at most the size of the message or
 * of Node's 8 KiB Buffer pool slab. With `{ copyPayloads: false }` payloads are views of
 * `bytes` itself: only for a caller that is done with the message before the input changes.
 */
export function decodeMessage(bytes: Uint8Array, options?: DecodeMessageOptions): Message {
  const copy = options?.copyPayloads ?? true;
  const r = new MessageReader(bytes);
  if (bytes.length < MESSAGE_HEADER_BYTES) throw truncated(bytes.length, 'the end of the message header');
  const version = bytes[0]!;
  if (version !== MESSAGE_FORMAT_VERSION) throw new DecodeError('invalid', 0, `unknown message format version ${version}`);
  const type = bytes[1]!;
  if (type < MESSAGE_TYPE_MIN || type > MESSAGE_TYPE_MAX) throw new DecodeError('invalid', 1, `unknown message type ${type}`);
  const presence = bytes[2]! | (bytes[3]! << 8);
  if (presence & PRESENCE_RESERVED) throw new DecodeError('invalid', 2, `reserved presence bits are set (0x${presence.toString(16)})`);
  r.at = MESSAGE_HEADER_BYTES;

  const from = presence & HAS_FROM ? r.nonZeroVarint('from') : 0;
  const to = presence & HAS_TO ? r.nonZeroVarint('to') : 0;
  const term = presence & HAS_TERM ? r.nonZeroVarint('term') : 0;
  const logTerm = presence & HAS_LOG_TERM ? r.nonZeroVarint('logTerm') : 0;
  const index = presence & HAS_INDEX ? r.nonZeroVarint('index') : 0;
  const commit = presence & HAS_COMMIT ? r.nonZeroVarint('commit') : 0;
  const rejectHint = presence & HAS_REJECT_HINT ? r.nonZeroVarint('rejectHint') : 0;
  const context = presence & HAS_CONTEXT ? r.nonZeroVarint('context') : 0;
  const sentTick = presence & HAS_SENT_TICK ? r.nonZeroVarint('sentTick') : 0;
  if (copy && presence & (HAS_ENTRIES | HAS_SNAPSHOT)) r.copyPayloadRegion();
  const entries = presence & HAS_ENTRIES ? readEntries(r, index, term) : EMPTY_ENTRIES;
  const snapshot = presence & HAS_SNAPSHOT ? readSnapshotChunk(r) : undefined;
  if (r.at !== bytes.length) throw new DecodeError('trailing_bytes', r.at, `${bytes.length - r.at} bytes after the last field`);
  return {
    type: type as MessageType,
    from,
    to,
    term,
    logTerm,
    index,
    entries,
    commit,
    reject: (presence & IS_REJECT) !== 0,
    rejectHint,
    context,
    sentTick,
    snapshot,
  };
}

/** Shared by every decoded message without entries; frozen, so no caller can add to it. */
const EMPTY_ENTRIES: readonly Entry[] = Object.freeze([]) as readonly Entry[];

function readEntries(r: MessageReader, index: number, term: number): Entry[] {
  const countAt = r.at;
  const count = r.count(MESSAGE_ENTRIES_MAX, ENTRY_BYTES_MIN, 'entries');
  if (count === 0) throw new DecodeError('invalid', countAt, 'entries are present but there are none');
  const entries: Entry[] = [];
  // An index past 2^53 - 1 cannot be expected: MAX_SAFE_INTEGER + 1 is not a safe integer,
  // so an implied index after it is refused below.
  let expectedIndex = index + 1;
  let expectedTerm = term;
  for (let i = 0; i < count; i++) {
    const flagsAt = r.at;
    const flags = r.u8();
    if (flags & ENTRY_FLAGS_RESERVED) throw new DecodeError('invalid', flagsAt, `reserved entry flag bits are set (0x${flags.toString(16)})`);
    const type = flags & ENTRY_TYPE_MASK;
    if (type > ENTRY_TYPE_MAX) throw new DecodeError('invalid', flagsAt, `unknown entry type ${type}`);
    let entryIndex = expectedIndex;
    if (flags & ENTRY_INDEX_FOLLOWS) {
      const at = r.at;
      entryIndex = r.varint();
      if (entryIndex === 0) throw new DecodeError('invalid', at, 'entry index is 0');
      if (entryIndex === expectedIndex) throw new DecodeError('invalid', at, 'entry index is spelled out but is the expected one');
    } else if (!Number.isSafeInteger(entryIndex)) {
      throw new DecodeError('out_of_range', flagsAt, 'implied entry index is above Number.MAX_SAFE_INTEGER');
    }
    let entryTerm = expectedTerm;
    if (flags & ENTRY_TERM_FOLLOWS) {
      const at = r.at;
      entryTerm = r.varint();
      if (entryTerm === 0) throw new DecodeError('invalid', at, 'entry term is 0');
      if (entryTerm === expectedTerm) throw new DecodeError('invalid', at, 'entry term is spelled out but is the expected one');
    } else if (entryTerm === 0) {
      throw new DecodeError('invalid', flagsAt, 'implied entry term is 0');
    }
    const data = r.payload(ENTRY_DATA_BYTES_MAX, 'entry data');
    entries.push({ term: entryTerm, index: entryIndex, type: type as EntryType, data });
    expectedIndex = entryIndex + 1;
    expectedTerm = entryTerm;
  }
  return entries;
}

function readSnapshotChunk(r: MessageReader): SnapshotChunk {
  const index = r.varint();
  const term = r.varint();
  const flagsAt = r.at;
  const flags = r.u8();
  if (flags & CONF_FLAGS_RESERVED) throw new DecodeError('invalid', flagsAt, `reserved conf flag bits are set (0x${flags.toString(16)})`);
  const voters = readNodeList(r, 'voters');
  const votersOutgoing = readNodeList(r, 'outgoing voters');
  const learners = readNodeList(r, 'learners');
  const learnersNext = readNodeList(r, 'next learners');
  const conf: ConfState = { voters, votersOutgoing, learners, learnersNext, autoLeave: (flags & CONF_AUTO_LEAVE) !== 0 };
  const totalBytes = r.varint();
  const offsetAt = r.at;
  const offset = r.varint();
  const data = r.payload(SNAPSHOT_CHUNK_BYTES_MAX, 'snapshot chunk');
  if (offset + data.length > totalBytes) {
    throw new DecodeError('invalid', offsetAt, `chunk [${offset}, +${data.length}) lies beyond the snapshot's ${totalBytes} bytes`);
  }
  return { meta: { index, term, conf }, totalBytes, offset, data };
}

function readNodeList(r: MessageReader, what: string): NodeId[] {
  const count = r.count(CONF_NODES_MAX, 1, what);
  const ids: NodeId[] = [];
  for (let i = 0; i < count; i++) {
    const at = r.at;
    const id = r.varint();
    if (id === 0) throw new DecodeError('invalid', at, `node id 0 among the ${what}`);
    ids.push(id);
  }
  return ids;
}
