/**
 * Ordered keys and range reads over them.
 *
 * The store keeps its keys as latin1 strings (one char per byte), so JavaScript's string
 * order is the keys' byte order, a prefix first. The ordered index is `sorted-btree`'s B+ tree
 * with that order; this module is the one place that knows the library.
 *
 * A range is `{ prefix }` or `{ start, end }` (`end` exclusive; without it, to the last key),
 * walked forwards or in reverse. A reply holds at most `limit` entries and
 * {@link KV_RANGE_BYTES_MAX} bytes of entries (always at least one entry); past
 * either, `more` is true and the caller pages on:
 *
 * ```
 *   forwards:  next page's start = last key + 0x00 (the smallest key after it)
 *   reverse:   next page's end   = last key        (end is exclusive)
 * ```
 *
 * which never skips or repeats a key. `count` is the number of keys in the whole range, past
 * the page too (it walks them: a range of a million keys costs a few tens of milliseconds).
 */

import { createRequire } from 'node:module';
import type SortedBtree from 'sorted-btree';
import { KvError, KvErrorCode } from './errors.ts';
import { KV_KEY_BYTES_MAX } from './limits.ts';

/**
 * The package is CommonJS with the class as `exports.default`. Required, not imported: an
 * ESM import's default is the whole `exports` under Node.js but the class itself under some
 * loaders (vitest's), and `require` gives `exports` under all of them.
 */
const BTree = (createRequire(import.meta.url)('sorted-btree') as typeof SortedBtree).default;

/** Byte order of latin1 key strings. */
const byteOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Keys per tree node: 64 measured cheapest for inserts and walks among 32, 64 and 128 (bench/micro/ordered-index.bench.ts). */
const NODE_KEYS_MAX = 64;

/** A B+ tree of values by latin1 key string, in byte order. */
export type OrderedKeys<V> = InstanceType<typeof BTree<string, V>>;

export function newOrderedKeys<V>(): OrderedKeys<V> {
  return new BTree<string, V>(undefined, byteOrder, NODE_KEYS_MAX);
}

/** Entries a range reply holds at most (also the default limit). */
export const KV_RANGE_ENTRIES_MAX = 10_000;
/**
 * Bytes a range reply's entries take at most, keys, values and the 33 bytes of overhead of
 * each (`KV_RANGE_ENTRY_OVERHEAD_BYTES`) counted; a page always holds one entry, whatever its
 * size. So a reply is at most 1 MiB, or one entry of the largest key and value: it fits every
 * ring and frame a read does.
 */
export const KV_RANGE_BYTES_MAX = 1 << 20;
/** What an entry of a range reply takes beyond its key and value bytes (range-codec.ts): two lengths, a flag, three u64 revisions. */
export const KV_RANGE_ENTRY_OVERHEAD_BYTES = 4 + 1 + 4 + 3 * 8;

export interface KvRangeQuery {
  /** The keys that start with these bytes; not with `start` or `end`. */
  readonly prefix?: Uint8Array;
  /** The first key of the range (inclusive); default: the first key. */
  readonly start?: Uint8Array;
  /** The key the range stops before (exclusive); default: past the last key. */
  readonly end?: Uint8Array;
  /** Entries at most, 1 to {@link KV_RANGE_ENTRIES_MAX} (the default). */
  readonly limit?: number;
  /** Entries without their values. */
  readonly keysOnly?: boolean;
  /** No entries, only `count`. */
  readonly countOnly?: boolean;
  /** From the last key of the range down. */
  readonly reverse?: boolean;
}

/** A key with its value (absent with `keysOnly`) and revisions. */
export interface KvRangeEntry {
  /** The key's bytes. */
  readonly key: Uint8Array;
  /** Its value; undefined when read with `keysOnly`. */
  readonly value: Uint8Array | undefined;
  /** The log index of the entry that created the key (since it was last deleted). */
  readonly createIndex: number;
  /** The log index of its last change. */
  readonly modIndex: number;
  /** Its changes since creation: 1 when created. */
  readonly version: number;
}

/** One page of a range read: its entries, whether keys are left past it, and the whole range's count. */
export interface KvRangeResult {
  /** In byte order of the keys (descending with `reverse`). */
  readonly entries: readonly KvRangeEntry[];
  /** Whether keys of the range are left past this page. */
  readonly more: boolean;
  /** Keys in the whole range. */
  readonly count: number;
  /** The index of the state read (the state machine's appliedIndex). */
  readonly index: number;
}

/** The bounds of a range in key-string space: [low, high), high undefined for no upper bound. */
export interface KeyBounds {
  readonly low: string;
  readonly high: string | undefined;
}

/** Checks a query; throws KvError INVALID_ARGUMENT naming what is wrong. */
export function checkRangeQuery(q: KvRangeQuery): void {
  const bad = (what: string): never => {
    throw new KvError(KvErrorCode.INVALID_ARGUMENT, `range: ${what}`);
  };
  if (q.prefix !== undefined && (q.start !== undefined || q.end !== undefined)) bad('give a prefix, or start and end, not both');
  for (const [name, key] of [['prefix', q.prefix], ['start', q.start], ['end', q.end]] as const) {
    if (key === undefined) continue;
    if (!(key instanceof Uint8Array)) bad(`${name} is not bytes`);
    if (key.length > KV_KEY_BYTES_MAX) bad(`${name} of ${key.length} bytes is longer than keys (${KV_KEY_BYTES_MAX})`);
  }
  if (q.limit !== undefined && !(Number.isInteger(q.limit) && q.limit >= 1 && q.limit <= KV_RANGE_ENTRIES_MAX)) bad(`limit ${String(q.limit)} is not an integer in [1, ${KV_RANGE_ENTRIES_MAX}]`);
  if (q.keysOnly === true && q.countOnly === true) bad('keysOnly and countOnly together');
}

/** The query's bounds as key strings (the query checked). */
export function boundsOf(q: KvRangeQuery, keyString: (key: Uint8Array) => string): KeyBounds {
  if (q.prefix !== undefined) {
    const low = keyString(q.prefix);
    return { low, high: prefixEnd(low) };
  }
  return { low: q.start === undefined ? '' : keyString(q.start), high: q.end === undefined ? undefined : keyString(q.end) };
}

/** The smallest key string above every key that starts with `prefix`; undefined if none (all 0xff, or empty). */
export function prefixEnd(prefix: string): string | undefined {
  let end = prefix.length;
  while (end > 0 && prefix.charCodeAt(end - 1) === 0xff) end--;
  if (end === 0) return undefined;
  return prefix.slice(0, end - 1) + String.fromCharCode(prefix.charCodeAt(end - 1) + 1);
}

/** The entries a range walk visits: what the state machine keeps of a key. */
export interface RangeSource {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly createIndex: number;
  readonly modIndex: number;
  readonly version: number;
}

/** The values of the keys in [low, high) (high undefined: to the last key), in byte order. */
export function* rangeEntries<V>(keys: OrderedKeys<V>, low: string, high: string | undefined): Generator<V> {
  const pair: (string | V)[] = [];
  for (const [k, v] of keys.entries(low, pair)) {
    if (high !== undefined && k >= high) return;
    yield v;
  }
}

/** A key string above every key (keys are latin1: each char at most 0xff). */
const ABOVE_EVERY_KEY = '\u0100';

/** The number of keys in [low, high) (high undefined: to the last key), counted by the tree without a visit each. */
export function countRange<V>(keys: OrderedKeys<V>, low: string, high: string | undefined): number {
  const h = high ?? ABOVE_EVERY_KEY;
  return h <= low ? 0 : keys.forRange(low, h, false);
}

/**
 * The bytes a range's entries may take ({@link rangeEntryBytes} each), and whether the first
 * entry is taken whatever its size (so that a page always makes progress).
 */
export interface RangeBudget {
  readonly bytesMax: number;
  readonly firstAlways: boolean;
}

/** A range reply's budget: {@link KV_RANGE_BYTES_MAX}, and never an empty page while keys are left. */
const PAGE_BUDGET: RangeBudget = { bytesMax: KV_RANGE_BYTES_MAX, firstAlways: true };

/** What an entry takes of a range's byte budget (and, within a few bytes, of its reply). */
export function rangeEntryBytes(key: Uint8Array, value: Uint8Array | undefined): number {
  return KV_RANGE_ENTRY_OVERHEAD_BYTES + key.length + (value === undefined ? 0 : value.length);
}

/**
 * Reads a checked query from `keys` at state `index`, its entries within `budget`. Values are the stored arrays, not
 * copies: the caller copies them out (into a reply) before the next apply. The page is
 * walked entry by entry; once it is full, the keys left are counted by the tree without a
 * visit each (some 3 ns a key against some 25), since `count` covers the whole range.
 */
export function readRange(keys: OrderedKeys<RangeSource>, q: KvRangeQuery, bounds: KeyBounds, index: number, budget: RangeBudget = PAGE_BUDGET): KvRangeResult {
  const { low } = bounds;
  const high = bounds.high ?? ABOVE_EVERY_KEY;
  const entries: KvRangeEntry[] = [];
  if (high <= low) return { entries, more: false, count: 0, index };
  if (q.countOnly === true) return { entries, more: false, count: countRange(keys, low, high), index };
  const limit = q.limit ?? KV_RANGE_ENTRIES_MAX;
  const keysOnly = q.keysOnly === true;
  let bytes = 0;
  /** Whether `e` fits the page (and takes it); false once the page is full. */
  const take = (e: RangeSource): boolean => {
    const size = rangeEntryBytes(e.key, keysOnly ? undefined : e.value);
    if (entries.length === limit || ((entries.length > 0 || !budget.firstAlways) && bytes + size > budget.bytesMax)) return false;
    bytes += size;
    entries.push({ key: e.key, value: keysOnly ? undefined : e.value, createIndex: e.createIndex, modIndex: e.modIndex, version: e.version });
    return true;
  };
  const pair: (string | RangeSource)[] = [];
  if (q.reverse === true) {
    // From the highest key below `high` down to `low`; `high` itself is skipped.
    for (const [k, e] of keys.entriesReversed(high, pair, true)) {
      if (k < low) break;
      if (!take(e)) return { entries, more: true, count: entries.length + keys.forRange(low, k, true), index };
    }
  } else {
    for (const [k, e] of keys.entries(low, pair)) {
      if (k >= high) break;
      if (!take(e)) return { entries, more: true, count: entries.length + keys.forRange(k, high, false), index };
    }
  }
  return { entries, more: false, count: entries.length, index };
}
