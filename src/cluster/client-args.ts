/**
 * The checks of a client call's arguments: every key, value, range, transaction and option
 * is checked before anything is encoded or sent, and a bad one is refused with
 * INVALID_ARGUMENT naming it and its limit.
 */

import { Buffer } from 'node:buffer';
import { invalidArgument, RingraftError } from '../base/index.ts';
import {
  checkRangeQuery,
  KV_KEY_BYTES_MAX,
  KV_TXN_COMPARES_MAX,
  KV_TXN_OPS_MAX,
  KV_VALUE_BYTES_MAX,
  prefixEnd,
  validateTxn,
  type KvRangeQuery,
  type KvTxn,
  type TxnCompare,
  type TxnCompareOp,
  type TxnNumberTarget,
  type TxnOp,
} from '../kv/index.ts';
import type { AsciiKey, WireConsistency } from '../runtime/index.ts';
import type { Bytes, CallOptions, GetOptions, KvClientHost, RangeOptions, RangeSpec } from './client.ts';

/** The longest timeoutMs a call takes: the longest delay a Node timer keeps (a longer one fires at once). */
export const CALL_TIMEOUT_MS_MAX = 2 ** 31 - 1;

const utf8 = new TextEncoder();

/** `String.prototype.isWellFormed` (ES2024: Node 20 has it; our TypeScript lib is ES2023). */
export function isWellFormed(s: string): boolean {
  return (s as string & { isWellFormed(): boolean }).isWellFormed();
}

/** Checks a read's options; returns how it is served on the wire (default linearizable, at the leader). */
export function checkReadOptions(options: GetOptions | undefined, host: KvClientHost): WireConsistency {
  checkCallOptions(options, host);
  // Not `??`: an explicit null is a bad argument, not the default.
  const consistency = options?.consistency === undefined ? 'linearizable' : options.consistency;
  if (consistency !== 'linearizable' && consistency !== 'lease' && consistency !== 'stale') {
    throw invalidArgument(`consistency must be 'linearizable', 'lease' or 'stale', got ${shown(consistency)}`);
  }
  const readFrom = options?.readFrom === undefined ? 'leader' : options.readFrom;
  if (readFrom !== 'leader' && readFrom !== 'any') throw invalidArgument(`readFrom must be 'leader' or 'any', got ${shown(readFrom)}`);
  if (readFrom === 'any' && consistency === 'lease') throw invalidArgument("readFrom 'any' takes a linearizable or stale read: a lease read is the leader's own");
  return readFrom === 'any' && consistency === 'linearizable' ? 'follower' : consistency;
}

/** The query a range call describes, checked (kv/range.ts): throws INVALID_ARGUMENT naming what is wrong. */
export function rangeQueryOf(spec: RangeSpec, options: RangeOptions | undefined): KvRangeQuery {
  if (typeof spec !== 'object' || spec === null) throw invalidArgument(`a range is { prefix } or { start, end }, got ${shown(spec)}`);
  const bytes = (value: Bytes | undefined, name: string): Uint8Array | undefined => (value === undefined ? undefined : bytesWithin(value, name, 0, KV_KEY_BYTES_MAX, 'KV_KEY_BYTES_MAX'));
  const s = spec as { prefix?: Bytes; start?: Bytes; end?: Bytes };
  for (const name of Object.keys(s)) if (name !== 'prefix' && name !== 'start' && name !== 'end') throw invalidArgument(`unknown range field '${name}'; a range is { prefix } or { start, end }`);
  const prefix = bytes(s.prefix, 'prefix');
  const start = bytes(s.start, 'start');
  const end = bytes(s.end, 'end');
  const query: KvRangeQuery = {
    ...(prefix === undefined ? {} : { prefix }),
    ...(start === undefined ? {} : { start }),
    ...(end === undefined ? {} : { end }),
    ...(options?.limit === undefined ? {} : { limit: options.limit }),
    ...(options?.keysOnly === undefined ? {} : { keysOnly: options.keysOnly }),
    ...(options?.countOnly === undefined ? {} : { countOnly: options.countOnly }),
    ...(options?.reverse === undefined ? {} : { reverse: options.reverse }),
  };
  try {
    checkRangeQuery(query);
  } catch (error) {
    if (error instanceof RingraftError) throw invalidArgument(error.message);
    throw error;
  }
  return query;
}

export function keyBytes(key: Bytes): Uint8Array {
  return bytesWithin(key, 'key', 1, KV_KEY_BYTES_MAX, 'KV_KEY_BYTES_MAX');
}

/**
 * A key of a get or a put as it goes out: a short all-ASCII string as it is (an
 * {@link AsciiKey}, which the encoder writes with no array of its own), else its bytes as
 * {@link keyBytes} makes them, with the same checks.
 */
export function outgoingKey(key: Bytes): Uint8Array | AsciiKey {
  if (typeof key === 'string' && key.length >= 1 && isShortAscii(key)) return key as AsciiKey;
  return keyBytes(key);
}

export function valueBytes(value: Bytes, name: string): Uint8Array {
  return bytesWithin(value, name, 0, KV_VALUE_BYTES_MAX, 'KV_VALUE_BYTES_MAX');
}

/**
 * The bytes of a key, value or prefix argument, or INVALID_ARGUMENT naming it and its
 * limit. A string is taken as UTF-8, and must be well-formed: a lone surrogate would
 * silently become U+FFFD. UTF-8 takes at least a byte per UTF-16 code unit, so a string
 * with more units than the limit is refused without being encoded.
 */
export function bytesWithin(value: unknown, name: string, minBytes: 0 | 1, maxBytes: number, maxName: string): Uint8Array {
  let bytes: Uint8Array;
  if (typeof value === 'string') {
    if (value.length > maxBytes) {
      throw invalidArgument(`${name} of at least ${value.length} bytes in UTF-8 is over ${maxName} (${maxBytes} bytes)`);
    }
    bytes = asciiBytes(value) ?? utf8Of(value, name);
  } else if (value instanceof Uint8Array) {
    bytes = value;
  } else {
    throw invalidArgument(`${name} must be a Uint8Array or a string, got ${shown(value)}`);
  }
  if (bytes.length > maxBytes) throw invalidArgument(`${name} of ${bytes.length} bytes is over ${maxName} (${maxBytes} bytes)`);
  if (bytes.length < minBytes) throw invalidArgument(`${name} is empty; it must have 1 to ${maxName} (${maxBytes}) bytes`);
  return bytes;
}

/** Strings this short that are all ASCII are encoded by a loop (see {@link asciiBytes}). */
const ASCII_LOOP_CHARS_MAX = 64;

/**
 * The bytes of a short all-ASCII string, or undefined for any other. A key is most often
 * one: a loop into a typed array this small (which V8 keeps on its heap) cost a fraction of
 * `TextEncoder.encode`, which was a tenth of the client's thread in a loop of puts.
 */
function asciiBytes(value: string): Uint8Array | undefined {
  if (!isShortAscii(value)) return undefined;
  const n = value.length;
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = value.charCodeAt(i);
  return bytes;
}

/** Whether `value` has at most ASCII_LOOP_CHARS_MAX units, all ASCII (so as many bytes in UTF-8). */
function isShortAscii(value: string): boolean {
  const n = value.length;
  if (n > ASCII_LOOP_CHARS_MAX) return false;
  for (let i = 0; i < n; i++) if (value.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** A string's UTF-8, refused with INVALID_ARGUMENT (naming `name`) if it holds a lone surrogate. */
function utf8Of(value: string, name: string): Uint8Array {
  if (!isWellFormed(value)) {
    throw invalidArgument(`${name} holds a lone surrogate, which UTF-8 cannot encode (it would become U+FFFD); pass a well-formed string or bytes`);
  }
  return utf8.encode(value);
}

export function checkOptionsObject(options: unknown): void {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw invalidArgument(`options must be an object or undefined, got ${shown(options)}`);
  }
}

export function checkSignal(signal: unknown): void {
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgument(`signal must be an AbortSignal or undefined, got ${shown(signal)}`);
}

/** Checks the options every call takes: the object, signal, timeoutMs and nodeId. */
export function checkCallOptions(options: CallOptions | undefined, host: KvClientHost): void {
  if (options === undefined) return;
  checkOptionsObject(options);
  checkSignal(options.signal);
  const timeoutMs: unknown = options.timeoutMs;
  if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs > 0 && timeoutMs <= CALL_TIMEOUT_MS_MAX)) {
    throw invalidArgument(`timeoutMs must be a number of milliseconds in (0, CALL_TIMEOUT_MS_MAX = ${CALL_TIMEOUT_MS_MAX}], got ${shown(timeoutMs)}`);
  }
  const nodeId: unknown = options.nodeId;
  if (nodeId !== undefined && !(typeof nodeId === 'number' && host.nodeIds().includes(nodeId))) {
    throw invalidArgument(`nodeId must be the id of a node of the cluster (${host.nodeIds().join(', ')}), got ${shown(nodeId)}`);
  }
}

/** A short, safe rendering of a bad argument for an error message. */
export function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 32 ? `${value.slice(0, 32)}...` : value);
  if (typeof value === 'object' && value !== null) return Object.prototype.toString.call(value);
  if (typeof value === 'function') return 'a function';
  return String(value);
}

/** Throws INVALID_ARGUMENT unless `id` can name a lease (an integer >= 1). */
export function checkLeaseId(id: unknown, name: string): void {
  if (!(typeof id === 'number' && Number.isSafeInteger(id) && id >= 1)) throw invalidArgument(`${name} must be an integer in [1, 2^53 - 1], got ${shown(id)}`);
}

/** The bounds of a range as a delete-range takes them: [start, end), end undefined for no bound (a prefix's end computed). */
export function deleteRangeBoundsOf(spec: RangeSpec): { start: Uint8Array; end: Uint8Array | undefined } {
  const q = rangeQueryOf(spec, undefined);
  if (q.prefix === undefined) return { start: q.start ?? new Uint8Array(), end: q.end };
  const after = prefixEnd(Buffer.from(q.prefix).toString('latin1'));
  return { start: q.prefix, end: after === undefined ? undefined : Buffer.from(after, 'latin1') };
}

// ─── Transactions ──────────────────────────────────────────────────────────────

/** A compare of {@link KvClient.txn}: a key's value (bytes, in byte order) or one of its revisions (0 when it is absent). */
export type TxnCompareSpec =
  | {
      /** The key compared. */
      readonly key: Bytes;
      /** The key's value, compared in byte order (any compare on an absent key's value is false, whatever `op`). */
      readonly target: 'value';
      /** `=`, `!=`, `<` or `>`: the key's value on the left. */
      readonly op: TxnCompareOp;
      /** The bytes the value is compared with. */
      readonly value: Bytes
    }
  | {
      /** The key compared. */
      readonly key: Bytes;
      /** Which revision: `version`, `createIndex` or `modIndex`; each 0 for an absent key. */
      readonly target: TxnNumberTarget;
      /** `=`, `!=`, `<` or `>`: the key's revision on the left. */
      readonly op: TxnCompareOp;
      /** The number the revision is compared with, an integer from 0 to 2^53 - 1. */
      readonly value: number
    };

/** An operation of {@link KvClient.txn}. */
export type TxnOpSpec =
  | {
      /** Sets `key` to `value`. */
      readonly op: 'put';
      /** The key set. */
      readonly key: Bytes;
      /** Its new value. */
      readonly value: Bytes;
      /** A lease to attach the key to; it must exist, or the whole transaction is refused with LEASE_NOT_FOUND. */
      readonly lease?: number
    }
  | {
      /** Deletes `key`; its result says whether it existed. */
      readonly op: 'delete';
      /** The key deleted. */
      readonly key: Bytes
    }
  | ({
      /** Deletes every key of the range (`{ prefix }` or `{ start, end }`); its result says how many. */
      readonly op: 'deleteRange'
    } & RangeSpec)
  | {
      /** Reads `key`'s value and revisions. */
      readonly op: 'get';
      /** The key read. */
      readonly key: Bytes
    }
  | ({
      /** Reads a page of the range (`{ prefix }` or `{ start, end }`), as {@link KvClient.range} does. */
      readonly op: 'range';
      /** Entries at most, 1 to KV_RANGE_ENTRIES_MAX (the default). */
      readonly limit?: number;
      /** Entries without values. */
      readonly keysOnly?: boolean;
      /** No entries: only `count`. */
      readonly countOnly?: boolean;
      /** From the range's last key down. */
      readonly reverse?: boolean
    } & RangeSpec);

/** A transaction: when every compare of `if` holds (or there is none), `then` runs, else `else`. */
export interface TxnSpec {
  /** The compares, at most KV_TXN_COMPARES_MAX; none (or left out): the transaction succeeds. */
  readonly if?: readonly TxnCompareSpec[];
  /** The operations run, in order, when every compare holds; at most KV_TXN_OPS_MAX. */
  readonly then?: readonly TxnOpSpec[];
  /** The operations run, in order, when a compare does not hold; at most KV_TXN_OPS_MAX. */
  readonly else?: readonly TxnOpSpec[];
}

/** The transaction a {@link TxnSpec} describes, checked: throws INVALID_ARGUMENT naming the compare or operation at fault. */
export function txnOf(spec: TxnSpec): KvTxn {
  if (typeof spec !== 'object' || spec === null) throw invalidArgument(`a transaction is { if, then, else }, got ${shown(spec)}`);
  for (const name of Object.keys(spec)) if (name !== 'if' && name !== 'then' && name !== 'else') throw invalidArgument(`unknown transaction field '${name}'; a transaction is { if, then, else }`);
  const list = <T, U>(items: readonly T[] | undefined, name: string, max: number, each: (item: T, where: string) => U): U[] => {
    if (items === undefined) return [];
    if (!Array.isArray(items)) throw invalidArgument(`txn ${name} must be an array, got ${shown(items)}`);
    if (items.length > max) throw invalidArgument(`txn ${name} holds ${items.length}, over the ${max} allowed`);
    return items.map((item, i) => {
      if (typeof item !== 'object' || item === null) throw invalidArgument(`txn ${name}[${i}] must be an object, got ${shown(item)}`);
      return each(item, `txn ${name}[${i}]`);
    });
  };
  const txn: KvTxn = {
    compares: list(spec.if, 'if', KV_TXN_COMPARES_MAX, compareOf),
    then: list(spec.then, 'then', KV_TXN_OPS_MAX, opOf),
    else: list(spec.else, 'else', KV_TXN_OPS_MAX, opOf),
  };
  try {
    validateTxn(txn);
  } catch (error) {
    if (error instanceof RingraftError) throw invalidArgument(error.message);
    throw error;
  }
  return txn;
}

function compareOf(c: TxnCompareSpec, where: string): TxnCompare {
  const key = bytesWithin(c.key, `${where}.key`, 1, KV_KEY_BYTES_MAX, 'KV_KEY_BYTES_MAX');
  if (c.op !== '=' && c.op !== '!=' && c.op !== '<' && c.op !== '>') throw invalidArgument(`${where}.op must be '=', '!=', '<' or '>', got ${shown(c.op)}`);
  if (c.target === 'value') return { key, target: 'value', op: c.op, value: bytesWithin(c.value, `${where}.value`, 0, KV_VALUE_BYTES_MAX, 'KV_VALUE_BYTES_MAX') };
  if (c.target !== 'version' && c.target !== 'createIndex' && c.target !== 'modIndex') {
    throw invalidArgument(`${where}.target must be 'value', 'version', 'createIndex' or 'modIndex', got ${shown((c as { target: unknown }).target)}`);
  }
  if (!(typeof c.value === 'number' && Number.isSafeInteger(c.value) && c.value >= 0)) throw invalidArgument(`${where}.value must be an integer in [0, 2^53 - 1] for target '${c.target}', got ${shown(c.value)}`);
  return { key, target: c.target, op: c.op, value: c.value };
}

function opOf(op: TxnOpSpec, where: string): TxnOp {
  const key = (k: Bytes): Uint8Array => bytesWithin(k, `${where}.key`, 1, KV_KEY_BYTES_MAX, 'KV_KEY_BYTES_MAX');
  const rangeSpec = (): RangeSpec => {
    const { op: _op, limit: _limit, keysOnly: _keysOnly, countOnly: _countOnly, reverse: _reverse, ...spec } = op as TxnOpSpec & RangeOptions;
    return spec as RangeSpec;
  };
  switch (op.op) {
    case 'put':
      if (op.lease !== undefined) checkLeaseId(op.lease, `${where}.lease`);
      return { op: 'put', key: key(op.key), value: bytesWithin(op.value, `${where}.value`, 0, KV_VALUE_BYTES_MAX, 'KV_VALUE_BYTES_MAX'), ...(op.lease === undefined ? {} : { lease: op.lease }) };
    case 'delete':
      return { op: 'delete', key: key(op.key) };
    case 'get':
      return { op: 'get', key: key(op.key) };
    case 'deleteRange':
      return { op: 'deleteRange', ...deleteRangeBoundsOf(rangeSpec()) };
    case 'range':
      return { op: 'range', query: rangeQueryOf(rangeSpec(), op) };
    default:
      throw invalidArgument(`${where}.op must be 'put', 'delete', 'deleteRange', 'get' or 'range', got ${shown((op as { op: unknown }).op)}`);
  }
}
