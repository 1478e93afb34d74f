/**
 * The binary form of a range query and of a range result: in the client protocol (its
 * request kind 6 and reply kind 9, after the frame's header and, for the request, its
 * consistency byte: runtime/client-protocol.ts) and inside transactions (txn.ts). All
 * integers little-endian. Decoders throw DecodeError.
 *
 * Query:
 *
 * ```
 * 1      flags: 1 keysOnly | 2 countOnly | 4 reverse | 8 prefix | 16 start | 32 end
 * 4      limit (0: the default, KV_RANGE_ENTRIES_MAX)
 * then   prefix, start, end: each present one as u32 length + bytes, in that order
 * ```
 *
 * Result:
 *
 * ```
 * 8      index (u64): the state read
 * 4      count (u32): keys in the whole range
 * 1      more (0 or 1)
 * 4      n (u32) entries, each:
 *          key (u32 length + bytes) | has value u8 (0 or 1) | value (u32 length + bytes, if has)
 *          | createIndex u64 | modIndex u64 | version u64
 * ```
 */

import { ByteReader, ByteWriter, DecodeError } from '../codec/index.ts';
import { KV_KEY_BYTES_MAX, KV_VALUE_BYTES_MAX } from './limits.ts';
import { KV_RANGE_ENTRIES_MAX, KV_RANGE_ENTRY_OVERHEAD_BYTES, type KvRangeEntry, type KvRangeQuery, type KvRangeResult } from './range.ts';

const FLAG = { keysOnly: 1, countOnly: 2, reverse: 4, prefix: 8, start: 16, end: 32 } as const;
const FLAGS_KNOWN = 63;
const LENGTH_BYTES = 4;
/** The reply's fixed part after its header: index, count, more, entry count. */
const RANGE_REPLY_FIXED_BYTES = 8 + 4 + 1 + 4;


export function encodedRangeQueryBytes(q: KvRangeQuery): number {
  let n = 1 + 4;
  for (const k of [q.prefix, q.start, q.end]) if (k !== undefined) n += LENGTH_BYTES + k.length;
  return n;
}

export function writeRangeQuery(w: ByteWriter, q: KvRangeQuery): void {
  let flags = 0;
  if (q.keysOnly === true) flags |= FLAG.keysOnly;
  if (q.countOnly === true) flags |= FLAG.countOnly;
  if (q.reverse === true) flags |= FLAG.reverse;
  if (q.prefix !== undefined) flags |= FLAG.prefix;
  if (q.start !== undefined) flags |= FLAG.start;
  if (q.end !== undefined) flags |= FLAG.end;
  w.u8(flags);
  w.u32(q.limit ?? 0);
  for (const k of [q.prefix, q.start, q.end]) if (k !== undefined) w.bytes(k);
}

/** Reads a range query; keys are copies. */
export function readRangeQuery(r: ByteReader): KvRangeQuery {
  const flagsAt = r.offset;
  const flags = r.u8();
  if ((flags & ~FLAGS_KNOWN) !== 0) throw new DecodeError('invalid', flagsAt, `range flags ${flags} has unknown bits`);
  const limit = r.u32();
  if (limit > KV_RANGE_ENTRIES_MAX) throw new DecodeError('invalid', flagsAt + 1, `range limit ${limit} is over ${KV_RANGE_ENTRIES_MAX}`);
  const key = (flag: number): Uint8Array | undefined => ((flags & flag) !== 0 ? r.bytes(KV_KEY_BYTES_MAX).slice() : undefined);
  const prefix = key(FLAG.prefix);
  const start = key(FLAG.start);
  const end = key(FLAG.end);
  return {
    ...(prefix === undefined ? {} : { prefix }),
    ...(start === undefined ? {} : { start }),
    ...(end === undefined ? {} : { end }),
    ...(limit === 0 ? {} : { limit }),
    ...((flags & FLAG.keysOnly) !== 0 ? { keysOnly: true } : {}),
    ...((flags & FLAG.countOnly) !== 0 ? { countOnly: true } : {}),
    ...((flags & FLAG.reverse) !== 0 ? { reverse: true } : {}),
  };
}

export function encodedRangeResultBytes(result: KvRangeResult): number {
  let n = RANGE_REPLY_FIXED_BYTES;
  // KV_RANGE_ENTRY_OVERHEAD_BYTES counts a value's length as if every entry had one.
  for (const e of result.entries) n += KV_RANGE_ENTRY_OVERHEAD_BYTES + e.key.length + (e.value === undefined ? -LENGTH_BYTES : e.value.length);
  return n;
}

export function writeRangeResult(w: ByteWriter, result: KvRangeResult): void {
  w.u64Number(result.index);
  w.u32(result.count);
  w.u8(result.more ? 1 : 0);
  w.u32(result.entries.length);
  for (const e of result.entries) {
    w.bytes(e.key);
    w.u8(e.value === undefined ? 0 : 1);
    if (e.value !== undefined) w.bytes(e.value);
    w.u64Number(e.createIndex);
    w.u64Number(e.modIndex);
    w.u64Number(e.version);
  }
}

/**
 * Reads a range reply after its header. Byte fields are copies: the entries' bytes are copied
 * once, as one block, and each key and value is a view of it (a copy per field made the
 * client spend most of a range read allocating and collecting small buffers).
 */
export function readRangeResult(r: ByteReader): KvRangeResult {
  const index = r.u64Number();
  const count = r.u32();
  const moreAt = r.offset;
  const more = r.u8();
  if (more > 1) throw new DecodeError('invalid', moreAt, `range 'more' flag ${more} is not 0 or 1`);
  const n = r.u32();
  if (n > KV_RANGE_ENTRIES_MAX || n > count) throw new DecodeError('invalid', moreAt + 1, `range reply of ${n} entries (count ${count}) is over ${KV_RANGE_ENTRIES_MAX} or its count`);
  // First pass: views into the frame, and the revisions.
  const fields: (Uint8Array | undefined)[] = new Array(2 * n);
  const revisions: number[] = new Array(3 * n);
  for (let i = 0; i < n; i++) {
    fields[2 * i] = r.bytes(KV_KEY_BYTES_MAX);
    const hasAt = r.offset;
    const has = r.u8();
    if (has > 1) throw new DecodeError('invalid', hasAt, `range entry value flag ${has} is not 0 or 1`);
    fields[2 * i + 1] = has === 1 ? r.bytes(KV_VALUE_BYTES_MAX) : undefined;
    revisions[3 * i] = r.u64Number();
    revisions[3 * i + 1] = r.u64Number();
    revisions[3 * i + 2] = r.u64Number();
  }
  const entries: KvRangeEntry[] = new Array(n);
  if (n > 0) {
    // Second pass: one copy of [first key, end of the last field), views of it.
    const first = fields[0]!;
    const last = fields[2 * n - 1] ?? fields[2 * n - 2]!;
    const base = first.byteOffset;
    const block = new Uint8Array(first.buffer, base, last.byteOffset + last.length - base).slice();
    const view = (f: Uint8Array): Uint8Array => block.subarray(f.byteOffset - base, f.byteOffset - base + f.length);
    for (let i = 0; i < n; i++) {
      const value = fields[2 * i + 1];
      entries[i] = { key: view(fields[2 * i]!), value: value === undefined ? undefined : view(value), createIndex: revisions[3 * i]!, modIndex: revisions[3 * i + 1]!, version: revisions[3 * i + 2]! };
    }
  }
  return { entries, more: more === 1, count, index };
}
