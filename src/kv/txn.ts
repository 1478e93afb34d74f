/**
 * Transactions: compares on keys, then one of two lists of operations, applied in one log
 * entry, atomically and exactly once (the request's session, as for every write).
 *
 * A compare reads one key's `value` (bytes, compared in byte order), `version`, `createIndex`
 * or `modIndex` (numbers) with `=`, `!=`, `<` or `>`. An absent key has version, createIndex
 * and modIndex 0 (so `version = 0` means "absent"), and no value: every compare on the value
 * of an absent key is false, `!=` included. The transaction succeeds when every compare holds
 * (no compares: it succeeds), and then runs `then`, else `else`, operation by operation: a
 * read sees the writes before it in the same list, and a key written twice keeps the later
 * value. Nothing else runs between them: the whole list applies at the entry's index.
 *
 * Reads in a transaction share one budget, {@link KV_TXN_READ_BYTES_MAX} bytes counted as a
 * range counts its entries (range.ts): the first read that finds anything gets its result
 * whole, whatever its size; a range past the budget ends early with `more` true (page on
 * with a range read), and a get past it has `truncated` true and no entry. So a transaction's
 * result stays under {@link KV_TXN_RESULT_BYTES_MAX}, which fits every reply frame.
 *
 * Transaction body, after the request's session header (commands.ts, op 6). All integers
 * little-endian.
 *
 * ```
 * 2      compare count c (u16, <= KV_TXN_COMPARES_MAX)
 * c ×    target u8 (1 value, 2 version, 3 createIndex, 4 modIndex) | op u8 (1 =, 2 !=, 3 <, 4 >)
 *        | key (u32 length + bytes, not empty)
 *        | operand: for value, u32 length + bytes; else u64
 * 2      then count t (u16, <= KV_TXN_OPS_MAX)
 * 2      else count e (u16, <= KV_TXN_OPS_MAX)
 * t + e  operations, then's first: tag u8, and by tag:
 *          1 put          flags u8 (1: a lease follows the value) | key | value
 *                         | lease id u64 (>= 1; with flag 1 only)
 *          2 delete       key
 *          3 delete-range start (may be empty: from the first key) | end present u8 | end
 *          4 get          key
 *          5 range        a range query (range-codec.ts)
 * ```
 *
 * Result, the bytes a session keeps and a write reply carries:
 *
 * ```
 * 1      succeeded (0 or 1)
 * 2      result count n (u16): one per operation of the list that ran, in order
 * n ×    tag u8, and by tag:
 *          1 put
 *          2 delete, the key existed      3 delete, the key was absent
 *          4 delete-range                 deleted u64
 *          5 get, absent
 *          6 get, present                 value (u32 length + bytes) | createIndex u64
 *                                         | modIndex u64 | version u64
 *          7 get, truncated (present, past the read budget)
 *          8 range                        a range result (range-codec.ts)
 * ```
 */

import { ByteReader, ByteWriter, DecodeError } from '../codec/index.ts';
import { Buffer } from 'node:buffer';
import { KV_KEY_BYTES_MAX, KV_VALUE_BYTES_MAX } from './limits.ts';
import { KvError, KvErrorCode } from './errors.ts';
import { checkRangeQuery, KV_RANGE_ENTRY_OVERHEAD_BYTES, type KvRangeQuery, type KvRangeResult, type RangeSource } from './range.ts';
import { encodedRangeQueryBytes, encodedRangeResultBytes, readRangeQuery, readRangeResult, writeRangeQuery, writeRangeResult } from './range-codec.ts';

export type TxnCompareOp = '=' | '!=' | '<' | '>';
export type TxnNumberTarget = 'version' | 'createIndex' | 'modIndex';

export type TxnCompare =
  | { readonly key: Uint8Array; readonly target: 'value'; readonly op: TxnCompareOp; readonly value: Uint8Array }
  | { readonly key: Uint8Array; readonly target: TxnNumberTarget; readonly op: TxnCompareOp; readonly value: number };

export type TxnOp =
  /** `lease`: the key is attached to it (it must exist, else the whole transaction is refused with LEASE_NOT_FOUND). */
  | { readonly op: 'put'; readonly key: Uint8Array; readonly value: Uint8Array; readonly lease?: number | undefined }
  | { readonly op: 'delete'; readonly key: Uint8Array }
  /** Every key in [start, end): `start` may be empty (from the first key), `end` undefined (to the last). */
  | { readonly op: 'deleteRange'; readonly start: Uint8Array; readonly end: Uint8Array | undefined }
  | { readonly op: 'get'; readonly key: Uint8Array }
  | { readonly op: 'range'; readonly query: KvRangeQuery };

export interface KvTxn {
  readonly compares: readonly TxnCompare[];
  readonly then: readonly TxnOp[];
  readonly else: readonly TxnOp[];
}

/** A key's value and revisions, as a get in a transaction read them. */
export interface TxnGetEntry {
  /** The key's value, as the transaction's writes before the get left it. */
  readonly value: Uint8Array;
  /** The log index that created the key (since it was last deleted). */
  readonly createIndex: number;
  /** The log index of its last change. */
  readonly modIndex: number;
  /** Its changes since creation: 1 when created. */
  readonly version: number;
}

/** The result of one operation of a transaction, tagged by the operation's `op`. */
export type TxnOpResult =
  | {
      /** A put: nothing more to say. */
      readonly op: 'put'
    }
  | {
      /** A delete. */
      readonly op: 'delete';
      /** Whether the key existed. */
      readonly existed: boolean
    }
  | {
      /** A delete of a range. */
      readonly op: 'deleteRange';
      /** How many keys it deleted. */
      readonly deleted: number
    }
  | {
      /** A get. */
      readonly op: 'get';
      /** The key's value and revisions; undefined when it is absent or `truncated`. */
      readonly entry: TxnGetEntry | undefined;
      /** The key is present but its value did not fit the transaction's read budget (KV_TXN_READ_BYTES_MAX); `entry` is then undefined. */
      readonly truncated: boolean
    }
  | {
      /** A range read. */
      readonly op: 'range';
      /** Its page, as a range read gives it; its `index` is the transaction's. */
      readonly result: KvRangeResult
    };

/** What a transaction did: whether its compares held, and each operation's result. */
export interface KvTxnResult {
  /** Whether every compare held (so `then` ran; else `else` did). */
  readonly succeeded: boolean;
  /** One per operation of the list that ran, in order. */
  readonly results: readonly TxnOpResult[];
}

/** Compares a transaction holds at most. */
export const KV_TXN_COMPARES_MAX = 128;
/** Operations each of a transaction's two lists holds at most. */
export const KV_TXN_OPS_MAX = 128;
/** The bytes of read results a transaction returns, past the first read's (see the module comment). */
export const KV_TXN_READ_BYTES_MAX = 512 << 10;
/** A get's result beyond its value: tag, length, three revisions. */
const GET_RESULT_OVERHEAD_BYTES = 1 + 4 + 3 * 8;
/** A range's result beyond its entries: tag, then index, count, more and entry count (range-codec.ts). */
const RANGE_RESULT_OVERHEAD_BYTES = 1 + 8 + 4 + 1 + 4;
/**
 * The most bytes a transaction's result takes: the budget, the first read whole (a range entry
 * of the longest key and value, or a get of the longest value), and every result's fixed part.
 */
export const KV_TXN_RESULT_BYTES_MAX =
  1 + 2 + KV_TXN_READ_BYTES_MAX + KV_RANGE_ENTRY_OVERHEAD_BYTES + KV_KEY_BYTES_MAX + KV_VALUE_BYTES_MAX + KV_TXN_OPS_MAX * Math.max(RANGE_RESULT_OVERHEAD_BYTES, GET_RESULT_OVERHEAD_BYTES, 1 + 8);

const TARGET_TAG = { value: 1, version: 2, createIndex: 3, modIndex: 4 } as const;
const TARGET_BY_TAG: readonly (TxnCompare['target'] | undefined)[] = [undefined, 'value', 'version', 'createIndex', 'modIndex'];
const COMPARE_OP_TAG = { '=': 1, '!=': 2, '<': 3, '>': 4 } as const;
const COMPARE_OP_BY_TAG: readonly (TxnCompareOp | undefined)[] = [undefined, '=', '!=', '<', '>'];
const OP_TAG = { put: 1, delete: 2, deleteRange: 3, get: 4, range: 5 } as const;
const RESULT_TAG = { put: 1, deleteExisted: 2, deleteAbsent: 3, deleteRange: 4, getAbsent: 5, getPresent: 6, getTruncated: 7, range: 8 } as const;
const LENGTH_BYTES = 4;
/** A put's flag: a lease id follows its value. */
const PUT_FLAG_LEASE = 1;

// ─── Checks ────────────────────────────────────────────────────────────────────

/** Throws KvError INVALID_ARGUMENT, naming the compare or operation, unless `txn` is within every limit. */
export function validateTxn(txn: KvTxn): void {
  if (typeof txn !== 'object' || txn === null) throw invalid('a transaction is { compares, then, else }');
  const lists = [
    ['compares', txn.compares, KV_TXN_COMPARES_MAX],
    ['then', txn.then, KV_TXN_OPS_MAX],
    ['else', txn.else, KV_TXN_OPS_MAX],
  ] as const;
  for (const [name, list, max] of lists) {
    if (!Array.isArray(list)) throw invalid(`${name} is not an array`);
    if (list.length > max) throw invalid(`${name} holds ${list.length}, over the ${max} allowed`);
  }
  txn.compares.forEach((c, i) => validateCompare(c, `compares[${i}]`));
  txn.then.forEach((op, i) => validateOp(op, `then[${i}]`));
  txn.else.forEach((op, i) => validateOp(op, `else[${i}]`));
}

function validateCompare(c: TxnCompare, where: string): void {
  if (typeof c !== 'object' || c === null) throw invalid(`${where} is not a compare`);
  checkKey(c.key, `${where}.key`, 1);
  if (TARGET_TAG[c.target] === undefined) throw invalid(`${where}.target ${String(c.target)} is not value, version, createIndex or modIndex`);
  if (COMPARE_OP_TAG[c.op] === undefined) throw invalid(`${where}.op ${String(c.op)} is not =, !=, < or >`);
  if (c.target === 'value') {
    checkValue(c.value, `${where}.value`);
  } else if (!(Number.isSafeInteger(c.value) && c.value >= 0)) {
    throw invalid(`${where}.value ${String(c.value)} is not an integer in [0, 2^53 - 1]`);
  }
}

function validateOp(op: TxnOp, where: string): void {
  if (typeof op !== 'object' || op === null) throw invalid(`${where} is not an operation`);
  switch (op.op) {
    case 'put':
      checkKey(op.key, `${where}.key`, 1);
      checkValue(op.value, `${where}.value`);
      if (op.lease !== undefined && !(Number.isSafeInteger(op.lease) && op.lease >= 1)) throw invalid(`${where}.lease ${String(op.lease)} is not an integer in [1, 2^53 - 1]`);
      return;
    case 'delete':
    case 'get':
      checkKey(op.key, `${where}.key`, 1);
      return;
    case 'deleteRange':
      checkKey(op.start, `${where}.start`, 0);
      if (op.end !== undefined) checkKey(op.end, `${where}.end`, 0);
      return;
    case 'range':
      try {
        checkRangeQuery(op.query);
      } catch (error) {
        if (error instanceof KvError) throw invalid(`${where}: ${error.message}`);
        throw error;
      }
      return;
    default:
      throw invalid(`${where}.op ${String((op as { op: unknown }).op)} is not put, delete, deleteRange, get or range`);
  }
}

function checkKey(key: Uint8Array, name: string, minBytes: 0 | 1): void {
  if (!(key instanceof Uint8Array)) throw invalid(`${name} is not a Uint8Array`);
  if (key.length < minBytes) throw invalid(`${name} is empty`);
  if (key.length > KV_KEY_BYTES_MAX) throw invalid(`${name} of ${key.length} bytes is over KV_KEY_BYTES_MAX (${KV_KEY_BYTES_MAX})`);
}

function checkValue(value: Uint8Array, name: string): void {
  if (!(value instanceof Uint8Array)) throw invalid(`${name} is not a Uint8Array`);
  if (value.length > KV_VALUE_BYTES_MAX) throw invalid(`${name} of ${value.length} bytes is over KV_VALUE_BYTES_MAX (${KV_VALUE_BYTES_MAX})`);
}

function invalid(message: string): KvError {
  return new KvError(KvErrorCode.INVALID_ARGUMENT, `txn: ${message}`);
}

// ─── Evaluation ────────────────────────────────────────────────────────────────

/** Whether compare `c` holds of a key whose entry is `entry` (undefined: absent). */
export function compareHolds(c: TxnCompare, entry: RangeSource | undefined): boolean {
  let order: number;
  if (c.target === 'value') {
    if (entry === undefined) return false;
    order = Buffer.compare(entry.value, c.value);
  } else {
    const actual = entry === undefined ? 0 : entry[c.target];
    order = actual < c.value ? -1 : actual > c.value ? 1 : 0;
  }
  switch (c.op) {
    case '=':
      return order === 0;
    case '!=':
      return order !== 0;
    case '<':
      return order < 0;
    case '>':
      return order > 0;
  }
}

/** What a get's result takes of the read budget (range.ts counts a range's entries alike). */
export function getResultBytes(value: Uint8Array): number {
  return KV_RANGE_ENTRY_OVERHEAD_BYTES + value.length;
}

// ─── Request encoding ──────────────────────────────────────────────────────────

export function encodedTxnBytes(txn: KvTxn): number {
  let n = 2 + 2 + 2;
  for (const c of txn.compares) n += 2 + LENGTH_BYTES + c.key.length + (c.target === 'value' ? LENGTH_BYTES + c.value.length : 8);
  for (const op of [...txn.then, ...txn.else]) n += 1 + encodedOpBytes(op);
  return n;
}

function encodedOpBytes(op: TxnOp): number {
  switch (op.op) {
    case 'put':
      return 1 + 2 * LENGTH_BYTES + op.key.length + op.value.length + (op.lease === undefined ? 0 : 8);
    case 'delete':
    case 'get':
      return LENGTH_BYTES + op.key.length;
    case 'deleteRange':
      return LENGTH_BYTES + op.start.length + 1 + (op.end === undefined ? 0 : LENGTH_BYTES + op.end.length);
    case 'range':
      return encodedRangeQueryBytes(op.query);
  }
}

export function writeTxn(w: ByteWriter, txn: KvTxn): void {
  w.u16(txn.compares.length);
  for (const c of txn.compares) {
    w.u8(TARGET_TAG[c.target]);
    w.u8(COMPARE_OP_TAG[c.op]);
    w.bytes(c.key);
    if (c.target === 'value') w.bytes(c.value);
    else w.u64Number(c.value);
  }
  w.u16(txn.then.length);
  w.u16(txn.else.length);
  for (const op of [...txn.then, ...txn.else]) {
    w.u8(OP_TAG[op.op]);
    switch (op.op) {
      case 'put':
        w.u8(op.lease === undefined ? 0 : PUT_FLAG_LEASE);
        w.bytes(op.key);
        w.bytes(op.value);
        if (op.lease !== undefined) w.u64Number(op.lease);
        break;
      case 'delete':
      case 'get':
        w.bytes(op.key);
        break;
      case 'deleteRange':
        w.bytes(op.start);
        w.u8(op.end === undefined ? 0 : 1);
        if (op.end !== undefined) w.bytes(op.end);
        break;
      case 'range':
        writeRangeQuery(w, op.query);
        break;
    }
  }
}

/** Reads a transaction body; keys and values are copies. Throws DecodeError on any malformed input, a limit broken included. */
export function readTxn(r: ByteReader): KvTxn {
  const countAt = r.offset;
  const compareCount = r.u16();
  if (compareCount > KV_TXN_COMPARES_MAX) throw new DecodeError('invalid', countAt, `${compareCount} compares, over ${KV_TXN_COMPARES_MAX}`);
  const compares: TxnCompare[] = [];
  for (let i = 0; i < compareCount; i++) {
    const at = r.offset;
    const target = TARGET_BY_TAG[r.u8()];
    const op = COMPARE_OP_BY_TAG[r.u8()];
    if (target === undefined || op === undefined) throw new DecodeError('invalid', at, `compare ${i} has an unknown target or op`);
    const key = readKey(r, 1);
    if (target === 'value') compares.push({ key, target, op, value: r.bytes(KV_VALUE_BYTES_MAX).slice() });
    else compares.push({ key, target, op, value: r.u64Number() });
  }
  const listsAt = r.offset;
  const thenCount = r.u16();
  const elseCount = r.u16();
  if (thenCount > KV_TXN_OPS_MAX || elseCount > KV_TXN_OPS_MAX) throw new DecodeError('invalid', listsAt, `lists of ${thenCount} and ${elseCount} operations, over ${KV_TXN_OPS_MAX}`);
  const ops: TxnOp[] = [];
  for (let i = 0; i < thenCount + elseCount; i++) ops.push(readOp(r));
  return { compares, then: ops.slice(0, thenCount), else: ops.slice(thenCount) };
}

function readOp(r: ByteReader): TxnOp {
  const at = r.offset;
  const tag = r.u8();
  switch (tag) {
    case OP_TAG.put: {
      const flagsAt = r.offset;
      const flags = r.u8();
      if ((flags & ~PUT_FLAG_LEASE) !== 0) throw new DecodeError('invalid', flagsAt, `put flags ${flags} have unknown bits`);
      const key = readKey(r, 1);
      const value = r.bytes(KV_VALUE_BYTES_MAX).slice();
      if (flags === 0) return { op: 'put', key, value };
      const leaseAt = r.offset;
      const lease = r.u64Number();
      if (lease === 0) throw new DecodeError('invalid', leaseAt, 'lease id is 0');
      return { op: 'put', key, value, lease };
    }
    case OP_TAG.delete:
      return { op: 'delete', key: readKey(r, 1) };
    case OP_TAG.get:
      return { op: 'get', key: readKey(r, 1) };
    case OP_TAG.deleteRange: {
      const start = readKey(r, 0);
      const flagAt = r.offset;
      const hasEnd = r.u8();
      if (hasEnd > 1) throw new DecodeError('invalid', flagAt, `end-present flag is ${hasEnd}, not 0 or 1`);
      return { op: 'deleteRange', start, end: hasEnd === 1 ? readKey(r, 0) : undefined };
    }
    case OP_TAG.range: {
      const queryAt = r.offset;
      const query = readRangeQuery(r);
      try {
        checkRangeQuery(query);
      } catch (error) {
        if (error instanceof KvError) throw new DecodeError('invalid', queryAt, error.message);
        throw error;
      }
      return { op: 'range', query };
    }
    default:
      throw new DecodeError('invalid', at, `unknown operation tag ${tag}`);
  }
}

function readKey(r: ByteReader, minBytes: 0 | 1): Uint8Array {
  const at = r.offset;
  const key = r.bytes(KV_KEY_BYTES_MAX).slice();
  if (key.length < minBytes) throw new DecodeError('invalid', at, 'key is empty');
  return key;
}

// ─── Result encoding ───────────────────────────────────────────────────────────

export function encodeTxnResult(result: KvTxnResult): Uint8Array {
  let n = 1 + 2;
  for (const x of result.results) n += encodedOpResultBytes(x);
  const w = new ByteWriter(n);
  w.u8(result.succeeded ? 1 : 0);
  w.u16(result.results.length);
  for (const x of result.results) writeOpResult(w, x);
  return w.finish();
}

function encodedOpResultBytes(x: TxnOpResult): number {
  switch (x.op) {
    case 'put':
    case 'delete':
      return 1;
    case 'deleteRange':
      return 1 + 8;
    case 'get':
      return x.entry === undefined ? 1 : GET_RESULT_OVERHEAD_BYTES + x.entry.value.length;
    case 'range':
      return 1 + encodedRangeResultBytes(x.result);
  }
}

function writeOpResult(w: ByteWriter, x: TxnOpResult): void {
  switch (x.op) {
    case 'put':
      w.u8(RESULT_TAG.put);
      return;
    case 'delete':
      w.u8(x.existed ? RESULT_TAG.deleteExisted : RESULT_TAG.deleteAbsent);
      return;
    case 'deleteRange':
      w.u8(RESULT_TAG.deleteRange);
      w.u64Number(x.deleted);
      return;
    case 'get':
      if (x.entry === undefined) {
        w.u8(x.truncated ? RESULT_TAG.getTruncated : RESULT_TAG.getAbsent);
        return;
      }
      w.u8(RESULT_TAG.getPresent);
      w.bytes(x.entry.value);
      w.u64Number(x.entry.createIndex);
      w.u64Number(x.entry.modIndex);
      w.u64Number(x.entry.version);
      return;
    case 'range':
      w.u8(RESULT_TAG.range);
      writeRangeResult(w, x.result);
      return;
  }
}

/** Decodes {@link encodeTxnResult}'s bytes; values are copies. Throws DecodeError on malformed input. */
export function decodeTxnResult(bytes: Uint8Array): KvTxnResult {
  const r = new ByteReader(bytes);
  const succeeded = r.u8();
  if (succeeded > 1) throw new DecodeError('invalid', 0, `succeeded flag ${succeeded} is not 0 or 1`);
  const countAt = r.offset;
  const count = r.u16();
  if (count > KV_TXN_OPS_MAX) throw new DecodeError('invalid', countAt, `${count} results, over ${KV_TXN_OPS_MAX}`);
  const results: TxnOpResult[] = [];
  for (let i = 0; i < count; i++) results.push(readOpResult(r));
  r.expectEnd();
  return { succeeded: succeeded === 1, results };
}

function readOpResult(r: ByteReader): TxnOpResult {
  const at = r.offset;
  const tag = r.u8();
  switch (tag) {
    case RESULT_TAG.put:
      return { op: 'put' };
    case RESULT_TAG.deleteExisted:
    case RESULT_TAG.deleteAbsent:
      return { op: 'delete', existed: tag === RESULT_TAG.deleteExisted };
    case RESULT_TAG.deleteRange:
      return { op: 'deleteRange', deleted: r.u64Number() };
    case RESULT_TAG.getAbsent:
    case RESULT_TAG.getTruncated:
      return { op: 'get', entry: undefined, truncated: tag === RESULT_TAG.getTruncated };
    case RESULT_TAG.getPresent: {
      const value = r.bytes(KV_VALUE_BYTES_MAX).slice();
      return { op: 'get', entry: { value, createIndex: r.u64Number(), modIndex: r.u64Number(), version: r.u64Number() }, truncated: false };
    }
    case RESULT_TAG.range:
      return { op: 'range', result: readRangeResult(r) };
    default:
      throw new DecodeError('invalid', at, `unknown result tag ${tag}`);
  }
}
