/**
 * Redis's string commands over the store: what a RESP port (server/resp-port.ts) runs, the
 * writes as one log entry each (a `redis` command: one Redis command, or the commands of a
 * MULTI/EXEC, applied together) and the reads against the state a read is served from. The
 * interpreter is deterministic: it reads nothing but the store and its arguments, so every
 * replica answers a command the same and ends in the same state; read-modify-write commands
 * (INCR, APPEND, SETNX, ...) are atomic because they are applied, not computed by a client.
 *
 * Replies are RESP2 bytes, as Redis sends them (resp/reply.ts rewrites nulls for RESP3), and
 * errors are Redis's own texts, so clients that parse them (`WRONGTYPE`, `EXECABORT`, arity)
 * behave as against Redis. Keys are the store's keys: every key is a string key. Expiry (EX,
 * PX, EXPIRE) is refused: the store has leases, not per-key times.
 *
 * Commands: GET, SET [NX|XX] [GET] [KEEPTTL], SETNX, GETSET, GETDEL, DEL, EXISTS, MGET, MSET,
 * MSETNX, INCR, INCRBY, DECR, DECRBY, APPEND, STRLEN, DBSIZE, KEYS, SCAN [MATCH] [COUNT]
 * [TYPE], TYPE, TTL, PTTL.
 */
import { Buffer } from 'node:buffer';
import { KV_KEY_BYTES_MAX, KV_VALUE_BYTES_MAX } from './limits.ts';

/** What the interpreter needs of the store: the state at the command's index, and the changes it makes there. */
export interface RedisStore {
  /**
   * The stored value, not a copy: valid until the store next changes (a `set` may write over
   * it). The interpreter copies what it keeps past a change, and a reply is joined before the
   * call returns.
   */
  get(key: Uint8Array): Uint8Array | undefined;
  set(key: Uint8Array, value: Uint8Array): void;
  /** Whether the key was there. */
  delete(key: Uint8Array): boolean;
  /** Keys held. */
  size(): number;
  /** Keys in byte order from `from` (inclusive; undefined: the first key). */
  keysFrom(from: Uint8Array | undefined): Iterable<Uint8Array>;
}

/** Which commands change the store (a log entry), which only read it, which the interpreter runs at all. */
export type RedisCommandKind = 'write' | 'read';

interface CommandSpec {
  readonly kind: RedisCommandKind;
  /** Redis's arity: n > 0 exactly n words (the name counted), -n at least n. */
  readonly arity: number;
}

const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  get: { kind: 'read', arity: 2 },
  mget: { kind: 'read', arity: -2 },
  exists: { kind: 'read', arity: -2 },
  strlen: { kind: 'read', arity: 2 },
  dbsize: { kind: 'read', arity: 1 },
  keys: { kind: 'read', arity: 2 },
  scan: { kind: 'read', arity: -2 },
  type: { kind: 'read', arity: 2 },
  ttl: { kind: 'read', arity: 2 },
  pttl: { kind: 'read', arity: 2 },
  set: { kind: 'write', arity: -3 },
  setnx: { kind: 'write', arity: 3 },
  getset: { kind: 'write', arity: 3 },
  getdel: { kind: 'write', arity: 2 },
  del: { kind: 'write', arity: -2 },
  mset: { kind: 'write', arity: -3 },
  msetnx: { kind: 'write', arity: -3 },
  incr: { kind: 'write', arity: 2 },
  decr: { kind: 'write', arity: 2 },
  incrby: { kind: 'write', arity: 3 },
  decrby: { kind: 'write', arity: 3 },
  append: { kind: 'write', arity: 3 },
};

/** The commands the store runs, each with its kind and arity (for COMMAND and a RESP port's checks). */
export const REDIS_STORE_COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(Object.entries(COMMANDS));

/**
 * Most bytes a read's replies may take (KEYS, MGET, SCAN with a large COUNT): a GET of the
 * largest value fits, and a reply frame holds them (as a range read's); past them, an error
 * reply.
 */
export const REDIS_READ_REPLY_BYTES_MAX = KV_VALUE_BYTES_MAX + (64 << 10);
/**
 * Most bytes a write's reply may take (it is kept in its client's session): a GETSET or
 * GETDEL of the largest value fits; GETs in a MULTI past them answer an error.
 */
export const REDIS_WRITE_REPLY_BYTES_MAX = KV_VALUE_BYTES_MAX + (64 << 10);
/** Most steps one KEYS or SCAN may spend matching its pattern against keys: past them, an error reply (a pattern that costs too much would hold the node). */
export const REDIS_MATCH_STEPS_MAX = 20_000_000;
/** Keys SCAN looks at, at most, per call (its COUNT is a hint, as in Redis). */
const REDIS_SCAN_COUNT_MAX = 10_000;

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const latin1 = new TextDecoder('latin1');

/** The command's name, lower-cased (the table's key); undefined if the command has no words. */
export function redisCommandName(command: readonly Uint8Array[]): string | undefined {
  const first = command[0];
  return first === undefined ? undefined : latin1.decode(first).toLowerCase();
}

/**
 * Whether the store runs `command` and how: its kind, or an error reply's text (unknown
 * command, wrong arity) in Redis's words, checked before it is sent anywhere.
 */
export function checkRedisCommand(command: readonly Uint8Array[]): { readonly kind: RedisCommandKind } | { readonly error: string } {
  const name = redisCommandName(command);
  // Own keys only: `constructor` or `__proto__` must not find what Object.prototype holds.
  const spec = name === undefined ? undefined : REDIS_STORE_COMMANDS.get(name);
  if (spec === undefined) return { error: unknownCommand(command) };
  if (spec.arity > 0 ? command.length !== spec.arity : command.length < -spec.arity) return { error: `ERR wrong number of arguments for '${name}' command` };
  return { kind: spec.kind };
}

/** Redis's text for an unknown command: its name and the first arguments, quoted. */
function unknownCommand(command: readonly Uint8Array[]): string {
  const name = command[0] === undefined ? '' : decoder.decode(command[0]);
  const args = command.slice(1).map((a) => `'${decoder.decode(a.subarray(0, 128))}' `).join('');
  return `ERR unknown command '${name.slice(0, 128)}', with args beginning with: ${args}`;
}

/** Appends RESP2 replies; bounded by `bytesMax`, past which a reply is replaced by an error. */
class Reply {
  private parts: Uint8Array[] = [];
  size = 0;

  constructor(
    private readonly bytesMax: number,
    /**
     * Whether values are kept as views until bytes() joins them: only where nothing is written
     * before then (reads). A write may free the memory under a value it read (GETSET, GETDEL).
     */
    private readonly viewsStay: boolean,
  ) {}

  private push(b: Uint8Array): void {
    this.parts.push(b);
    this.size += b.length;
  }

  line(type: string, text: string): void {
    this.push(encoder.encode(`${type}${text}\r\n`));
  }

  ok(): void {
    this.line('+', 'OK');
  }

  error(text: string): void {
    this.line('-', text);
  }

  integer(n: number | bigint): void {
    this.line(':', String(n));
  }

  nil(): void {
    this.line('$', '-1');
  }

  array(n: number): void {
    this.line('*', String(n));
  }

  /** Whether `bytes` more fit in the bound. */
  fits(bytes: number): boolean {
    return this.size + bytes <= this.bytesMax;
  }

  bulk(value: Uint8Array | undefined): void {
    if (value === undefined) return this.nil();
    this.line('$', String(value.length));
    this.push(this.viewsStay ? value : value.slice());
    this.push(CRLF);
  }

  bytes(): Uint8Array {
    return Buffer.concat(this.parts, this.size);
  }
}

const CRLF = Uint8Array.of(13, 10);
const TOO_LARGE = 'ERR reply too large for one answer: ask for fewer keys or smaller values (SCAN instead of KEYS)';
const TOO_COSTLY = 'ERR the pattern costs too much to match against these keys: make it shorter or simpler';
const NOT_INTEGER = 'ERR value is not an integer or out of range';
const SYNTAX = 'ERR syntax error';
const NO_EXPIRY = 'ERR ringraft keeps no expiry per key (EX, PX, EXAT, PXAT, EXPIRE): use a lease';
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Runs `commands` (each checked with {@link checkRedisCommand} by the caller; one, or a
 * MULTI/EXEC's) against `store` and returns the reply: one command's, or an array of each
 * command's for several (`asTransaction`). Never throws for what a client sent: a bad command
 * is an error reply, as Redis gives it.
 */
export function runRedis(store: RedisStore, commands: readonly (readonly Uint8Array[])[], asTransaction: boolean, replyBytesMax: number): Uint8Array {
  return runInto(new Reply(replyBytesMax, false), store, commands, asTransaction);
}

function runInto(reply: Reply, store: RedisStore, commands: readonly (readonly Uint8Array[])[], asTransaction: boolean): Uint8Array {
  if (asTransaction) reply.array(commands.length);
  for (const command of commands) runOne(store, command, reply);
  return reply.bytes();
}

/**
 * Runs commands that only read, in order, as many whole as their replies fit in
 * `replyBytesMax` (the first always, alone past it answered with an error as runRedis
 * does): their replies, one after another. A caller that gets fewer replies than it asked
 * for asks again for the rest: reads change nothing, so running them later is the same.
 */
export function runRedisReads(store: RedisStore, commands: readonly (readonly Uint8Array[])[], replyBytesMax: number): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  for (const command of commands) {
    const one = runInto(new Reply(replyBytesMax, true), store, [command], false);
    if (parts.length > 0 && size + one.length > replyBytesMax) break;
    parts.push(one);
    size += one.length;
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
}

/**
 * Whether a write command's reply is small whatever the store holds (OK, an integer, a nil):
 * such commands share a log entry with others. One that answers with a value it read (GETSET,
 * GETDEL, SET ... GET) goes alone, so that its reply has the entry's whole bound.
 */
export function redisWriteReplyIsSmall(command: readonly Uint8Array[]): boolean {
  const name = redisCommandName(command);
  if (name === 'getset' || name === 'getdel') return false;
  if (name === 'set') return !command.slice(3).some((o) => latin1.decode(o).toLowerCase() === 'get');
  return true;
}

function runOne(store: RedisStore, command: readonly Uint8Array[], reply: Reply): void {
  const checked = checkRedisCommand(command);
  if ('error' in checked) return reply.error(checked.error);
  const name = redisCommandName(command)!;
  const args = command.slice(1);
  const keyTooLong = args.find((a, i) => keyArgument(name, i) && a.length > KV_KEY_BYTES_MAX);
  if (keyTooLong !== undefined) return reply.error(`ERR key of ${keyTooLong.length} bytes is over the maximum of ${KV_KEY_BYTES_MAX}`);
  switch (name) {
    case 'get':
      return bulkWithin(reply, store.get(args[0]!));
    case 'mget': {
      const values = args.map((k) => store.get(k));
      const bytes = values.reduce((n, v) => n + (v === undefined ? 5 : v.length + 16), 16);
      if (!reply.fits(bytes)) return reply.error(TOO_LARGE);
      reply.array(values.length);
      for (const v of values) reply.bulk(v);
      return;
    }
    case 'exists':
      return reply.integer(args.filter((k) => store.get(k) !== undefined).length);
    case 'strlen':
      return reply.integer(store.get(args[0]!)?.length ?? 0);
    case 'dbsize':
      return reply.integer(store.size());
    case 'type':
      return reply.line('+', store.get(args[0]!) === undefined ? 'none' : 'string');
    case 'ttl':
    case 'pttl':
      return reply.integer(store.get(args[0]!) === undefined ? -2 : -1);
    case 'keys':
      return keys(store, args[0]!, reply);
    case 'scan':
      return scan(store, args, reply);
    case 'set':
      return set(store, args, reply);
    case 'setnx':
      if (store.get(args[0]!) !== undefined) return reply.integer(0);
      if (!valueFits(args[1]!, reply)) return;
      store.set(args[0]!, args[1]!);
      return reply.integer(1);
    case 'getset':
      return set(store, [args[0]!, args[1]!, encoder.encode('GET')], reply);
    case 'getdel': {
      const old = store.get(args[0]!);
      if (old !== undefined && !reply.fits(old.length + 32)) return reply.error(TOO_LARGE);
      // Replied (copied) before the delete lets go of the memory it lies in.
      reply.bulk(old);
      if (old !== undefined) store.delete(args[0]!);
      return;
    }
    case 'del':
      return reply.integer(args.filter((k) => store.delete(k)).length);
    case 'mset':
    case 'msetnx': {
      if (args.length % 2 !== 0) return reply.error(`ERR wrong number of arguments for '${name}' command`);
      for (let i = 1; i < args.length; i += 2) if (!valueFits(args[i]!, reply)) return;
      if (name === 'msetnx') {
        for (let i = 0; i < args.length; i += 2) if (store.get(args[i]!) !== undefined) return reply.integer(0);
      }
      for (let i = 0; i < args.length; i += 2) store.set(args[i]!, args[i + 1]!);
      return name === 'mset' ? reply.ok() : reply.integer(1);
    }
    case 'incr':
    case 'decr':
    case 'incrby':
    case 'decrby': {
      let by = 1n;
      if (name === 'incrby' || name === 'decrby') {
        const parsed = parseInt64(args[1]!);
        if (parsed === undefined) return reply.error(NOT_INTEGER);
        by = parsed;
      }
      if (name === 'decr' || name === 'decrby') {
        if (by === INT64_MIN) return reply.error('ERR decrement would overflow');
        by = -by;
      }
      const old = store.get(args[0]!);
      const current = old === undefined ? 0n : parseInt64(old);
      if (current === undefined) return reply.error(NOT_INTEGER);
      const next = current + by;
      if (next < INT64_MIN || next > INT64_MAX) return reply.error('ERR increment or decrement would overflow');
      store.set(args[0]!, encoder.encode(String(next)));
      return reply.integer(next);
    }
    case 'append': {
      const old = store.get(args[0]!) ?? new Uint8Array(0);
      const length = old.length + args[1]!.length;
      if (length > KV_VALUE_BYTES_MAX) return reply.error('ERR string exceeds maximum allowed size (proto-max-bulk-len)');
      const joined = new Uint8Array(length);
      joined.set(old);
      joined.set(args[1]!, old.length);
      store.set(args[0]!, joined);
      return reply.integer(length);
    }
  }
  reply.error(unknownCommand(command));
}

/** Whether argument `i` (from 0, after the name) of command `name` is a key. */
function keyArgument(name: string, i: number): boolean {
  switch (name) {
    case 'mset':
    case 'msetnx':
      return i % 2 === 0;
    case 'mget':
    case 'exists':
    case 'del':
      return true;
    case 'keys':
    case 'scan':
    case 'dbsize':
      return false;
    default:
      return i === 0;
  }
}

function bulkWithin(reply: Reply, value: Uint8Array | undefined): void {
  if (value !== undefined && !reply.fits(value.length + 32)) return reply.error(TOO_LARGE);
  reply.bulk(value);
}

function valueFits(value: Uint8Array, reply: Reply): boolean {
  if (value.length <= KV_VALUE_BYTES_MAX) return true;
  reply.error('ERR string exceeds maximum allowed size (proto-max-bulk-len)');
  return false;
}

/** SET key value [NX|XX] [GET] [KEEPTTL]; EX, PX, EXAT and PXAT are refused. */
function set(store: RedisStore, args: readonly Uint8Array[], reply: Reply): void {
  let nx = false;
  let xx = false;
  let get = false;
  for (const option of args.slice(2)) {
    const o = latin1.decode(option).toLowerCase();
    if (o === 'nx' && !xx) nx = true;
    else if (o === 'xx' && !nx) xx = true;
    else if (o === 'get') get = true;
    else if (o === 'keepttl') continue;
    else if (o === 'ex' || o === 'px' || o === 'exat' || o === 'pxat') return reply.error(NO_EXPIRY);
    else return reply.error(SYNTAX);
  }
  const [key, value] = [args[0]!, args[1]!];
  if (!valueFits(value, reply)) return;
  const stored = store.get(key);
  if (get && stored !== undefined && !reply.fits(stored.length + 32)) return reply.error(TOO_LARGE);
  const exists = stored !== undefined;
  if ((nx && exists) || (xx && !exists)) return get ? reply.bulk(stored) : reply.nil();
  // A copy of the old value: the set may write over the memory it lies in.
  const old = get ? stored?.slice() : undefined;
  store.set(key, value);
  return get ? reply.bulk(old) : reply.ok();
}

function keys(store: RedisStore, pattern: Uint8Array, reply: Reply): void {
  const found: Uint8Array[] = [];
  let bytes = 16;
  const budget = { steps: REDIS_MATCH_STEPS_MAX };
  for (const key of store.keysFrom(undefined)) {
    const matched = globMatch(pattern, key, budget);
    if (budget.steps < 0) return reply.error(TOO_COSTLY);
    if (!matched) continue;
    bytes += key.length + 16;
    if (!reply.fits(bytes)) return reply.error(TOO_LARGE);
    found.push(key);
  }
  reply.array(found.length);
  for (const k of found) reply.bulk(k);
}

/**
 * SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]: up to COUNT keys looked at from the cursor,
 * in byte order, those matching returned with the next cursor ("0" at the end). A cursor is
 * the next key to look at, as decimal digits ("1" and then 3 digits a byte): opaque to a
 * client, valid across calls whatever changes meanwhile, so a key there throughout is
 * returned exactly once.
 */
function scan(store: RedisStore, args: readonly Uint8Array[], reply: Reply): void {
  const from = decodeCursor(latin1.decode(args[0]!));
  if (from === null) return reply.error('ERR invalid cursor');
  let count = 10;
  let match: Uint8Array | undefined;
  let onlyStrings = true;
  for (let i = 1; i < args.length; i += 2) {
    const o = latin1.decode(args[i]!).toLowerCase();
    const v = args[i + 1];
    if (v === undefined) return reply.error(SYNTAX);
    if (o === 'count') {
      const n = parseInt64(v);
      if (n === undefined) return reply.error(NOT_INTEGER);
      if (n < 1n) return reply.error(SYNTAX);
      count = Number(n > BigInt(REDIS_SCAN_COUNT_MAX) ? REDIS_SCAN_COUNT_MAX : n);
    } else if (o === 'match') match = v;
    else if (o === 'type') onlyStrings = latin1.decode(v).toLowerCase() === 'string';
    else return reply.error(SYNTAX);
  }
  const found: Uint8Array[] = [];
  let next: Uint8Array | undefined;
  let looked = 0;
  let bytes = 64;
  const budget = { steps: REDIS_MATCH_STEPS_MAX };
  for (const key of store.keysFrom(from)) {
    if (looked === count || !reply.fits(bytes + key.length + 16)) {
      next = key;
      break;
    }
    looked++;
    const matched = match === undefined || globMatch(match, key, budget);
    if (budget.steps < 0) return reply.error(TOO_COSTLY);
    if (!onlyStrings || !matched) continue;
    bytes += key.length + 16;
    found.push(key);
  }
  reply.array(2);
  reply.bulk(encoder.encode(next === undefined ? '0' : encodeCursor(next)));
  reply.array(found.length);
  for (const k of found) reply.bulk(k);
}

/** A SCAN cursor for resuming at `key`: "1" and each byte as 3 decimal digits. */
export function encodeCursor(key: Uint8Array): string {
  let s = '1';
  for (const b of key) s += String(b).padStart(3, '0');
  return s;
}

/** The key a cursor resumes at: undefined for "0" (the start), null for one that is not a cursor. */
export function decodeCursor(cursor: string): Uint8Array | undefined | null {
  if (cursor === '0') return undefined;
  if (!/^1(\d{3})*$/.test(cursor) || cursor.length > 1 + 3 * KV_KEY_BYTES_MAX) return null;
  const key = new Uint8Array((cursor.length - 1) / 3);
  for (let i = 0; i < key.length; i++) {
    const b = Number(cursor.slice(1 + 3 * i, 4 + 3 * i));
    if (b > 255) return null;
    key[i] = b;
  }
  return key;
}

/** A signed 64-bit decimal integer, as Redis reads one (string2ll): no sign but minus, no spaces, no leading zeros; undefined otherwise. */
export function parseInt64(bytes: Uint8Array): bigint | undefined {
  if (bytes.length === 0 || bytes.length > 20) return undefined;
  const text = latin1.decode(bytes);
  if (!/^(0|-?[1-9][0-9]*)$/.test(text)) return undefined;
  const n = BigInt(text);
  return n < INT64_MIN || n > INT64_MAX ? undefined : n;
}

/**
 * Whether `s` matches the glob `pattern`, as Redis's stringmatchlen: `*` any run, `?` one
 * byte, `[abc]`, `[^abc]`, `[a-z]` a set, `\x` the byte x. Iterative with one backtrack point,
 * so that no pattern costs more than its length times the string's.
 */
export function globMatch(pattern: Uint8Array, s: Uint8Array, budget?: { steps: number }): boolean {
  let p = 0;
  let i = 0;
  let starP = -1;
  let starI = 0;
  while (i < s.length) {
    // Each step spends one of the budget's; spent, the match stops (the caller refuses).
    if (budget !== undefined && --budget.steps < 0) return false;
    if (p < pattern.length) {
      const c = pattern[p]!;
      if (c === 42 /* * */) {
        while (p < pattern.length && pattern[p] === 42) p++;
        if (p === pattern.length) return true;
        starP = p;
        starI = i;
        continue;
      }
      const step = matchOne(pattern, p, s[i]!);
      if (step > 0) {
        p += step;
        i++;
        continue;
      }
    }
    if (starP < 0) return false;
    p = starP;
    i = ++starI;
  }
  while (p < pattern.length && pattern[p] === 42) p++;
  return p === pattern.length;
}

/** Whether the pattern element at `p` matches byte `b`: its length in the pattern if so, 0 if not. */
function matchOne(pattern: Uint8Array, p: number, b: number): number {
  const c = pattern[p]!;
  if (c === 63 /* ? */) return 1;
  if (c === 92 /* \ */ && p + 1 < pattern.length) return pattern[p + 1] === b ? 2 : 0;
  if (c !== 91 /* [ */) return c === b ? 1 : 0;
  let q = p + 1;
  const not = pattern[q] === 94; /* ^ */
  if (not) q++;
  let matched = false;
  while (q < pattern.length && pattern[q] !== 93 /* ] */) {
    if (pattern[q] === 92 && q + 1 < pattern.length) {
      if (pattern[q + 1] === b) matched = true;
      q += 2;
    } else if (q + 2 < pattern.length && pattern[q + 1] === 45 /* - */ && pattern[q + 2] !== 93) {
      let lo = pattern[q]!;
      let hi = pattern[q + 2]!;
      if (lo > hi) [lo, hi] = [hi, lo];
      if (b >= lo && b <= hi) matched = true;
      q += 3;
    } else {
      if (pattern[q] === b) matched = true;
      q++;
    }
  }
  // An unclosed set runs to the pattern's end, as Redis reads it.
  const length = (q < pattern.length ? q + 1 : q) - p;
  return matched !== not ? length : 0;
}
