/**
 * The reply side of RESP: what a server writes back, in RESP2 or, after `HELLO 3`, RESP3.
 *
 * ```
 *   +OK\r\n   -ERR text\r\n   :42\r\n   $5\r\nhello\r\n   *2\r\n...   (RESP2 and RESP3)
 *   $-1\r\n   *-1\r\n        a null bulk string, a null array        (RESP2)
 *   _\r\n                    null                                     (RESP3)
 *   %2\r\n...                a map of 2 pairs (RESP2: an array of 4)  (RESP3)
 * ```
 *
 * {@link RespWriter} appends replies into one growing buffer that a connection writes once
 * per batch of commands. Replies made elsewhere (the store's, kv/redis.ts) are RESP2;
 * {@link resp2ToResp3} rewrites their nulls for a RESP3 connection.
 */
import { Buffer } from 'node:buffer';
import { fail } from '../base/index.ts';

const encoder = new TextEncoder();
const latin1 = new TextDecoder('latin1');
const CRLF = Uint8Array.of(13, 10);
const NULL_BULK = encoder.encode('$-1\r\n');
const NULL_ARRAY = encoder.encode('*-1\r\n');
const NULL3 = encoder.encode('_\r\n');
const EMPTY = new Uint8Array(0);
/** The first buffer a writer takes after a take(): small, as most replies are. */
const REPLY_BYTES_FIRST = 256;

/** Replies appended into one buffer, grown as needed; `take()` hands out what was written. */
export class RespWriter {
  private bytes: Uint8Array;
  private length = 0;

  constructor(
    /** 2 or 3: how nulls and maps are written. */
    public protocol: 2 | 3 = 2,
    initialBytes = 4096,
  ) {
    this.bytes = new Uint8Array(initialBytes);
  }

  /** Bytes written and not yet taken. */
  get size(): number {
    return this.length;
  }

  /** What was written since the last take, as a view of its own memory; the writer's next write starts a new buffer. */
  take(): Uint8Array {
    const out = this.bytes.subarray(0, this.length);
    this.bytes = EMPTY;
    this.length = 0;
    return out;
  }

  /** `+text`: a status; `text` must hold no CR or LF. */
  simple(text: string): this {
    return this.line(43, text);
  }

  /** `-text`: an error; its CR and LF become spaces (a reply must stay one line). */
  error(text: string): this {
    return this.line(45, text.replace(/[\r\n]/g, ' '));
  }

  /** `:n`: an integer. */
  integer(n: number | bigint): this {
    return this.line(58, String(n));
  }

  /** A bulk string (text as UTF-8), or null. */
  bulk(value: Uint8Array | string | undefined): this {
    if (value === undefined) return this.raw(this.protocol === 3 ? NULL3 : NULL_BULK);
    const bytes = typeof value === 'string' ? encoder.encode(value) : value;
    this.line(36, String(bytes.length));
    this.raw(bytes);
    return this.raw(CRLF);
  }

  /** An array's header: its `count` elements follow; undefined: a null array. */
  array(count: number | undefined): this {
    if (count === undefined) return this.raw(this.protocol === 3 ? NULL3 : NULL_ARRAY);
    return this.line(42, String(count));
  }

  /** A map's header: `pairs` keys and values follow, each key before its value (RESP2: an array of twice as many). */
  map(pairs: number): this {
    return this.protocol === 3 ? this.line(37, String(pairs)) : this.line(42, String(2 * pairs));
  }

  /** Bytes that are already a reply (RESP2, as the store makes them): rewritten for RESP3 on a RESP3 connection. */
  encoded(reply: Uint8Array): this {
    return this.raw(this.protocol === 3 ? resp2ToResp3(reply) : reply);
  }

  private line(type: number, text: string): this {
    const n = text.length;
    this.reserve(n * 3 + 3);
    const bytes = this.bytes;
    bytes[this.length++] = type;
    const written = encoder.encodeInto(text, bytes.subarray(this.length)).written;
    this.length += written;
    bytes[this.length++] = 13;
    bytes[this.length++] = 10;
    return this;
  }

  raw(b: Uint8Array): this {
    this.reserve(b.length);
    this.bytes.set(b, this.length);
    this.length += b.length;
    return this;
  }

  private reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    let size = Math.max(this.bytes.length * 2, REPLY_BYTES_FIRST);
    while (size < this.length + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }
}

/**
 * A RESP2 reply as RESP3: its null bulk strings and null arrays (at any depth) become `_`;
 * everything else is the same in both. The reply must be whole and well formed (the store
 * makes it); a malformed one is a bug.
 */
export function resp2ToResp3(reply: Uint8Array): Uint8Array {
  if (reply.indexOf(45 /* - */) < 0) return reply;
  const out: Uint8Array[] = [];
  let copiedTo = 0;
  const onNull = (at: number, next: number): void => {
    out.push(reply.subarray(copiedTo, at), NULL3);
    copiedTo = next;
  };
  for (let at = 0; at < reply.length; ) at = walkReply(reply, at, onNull);
  if (copiedTo === 0) return reply;
  out.push(reply.subarray(copiedTo));
  return Buffer.concat(out);
}

/** The whole replies `replies` (RESP2, one after another, as the store makes them) holds, each a view of it. */
export function splitReplies(replies: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < replies.length; ) {
    const end = walkReply(replies, at, undefined);
    out.push(replies.subarray(at, end));
    at = end;
  }
  return out;
}

/**
 * The end of the RESP2 reply at `at`; `onNull(at, end)` hears of each null bulk string or
 * array within it. The reply must be whole and well formed (the store makes it).
 */
function walkReply(reply: Uint8Array, at: number, onNull: ((at: number, end: number) => void) | undefined): number {
  const type = reply[at]!;
  const end = reply.indexOf(13, at);
  if (end < 0 || reply[end + 1] !== 10) fail(`a RESP2 reply is whole at byte ${at}`);
  const next = end + 2;
  if (type !== 36 && type !== 42) return next;
  const n = Number(latin1.decode(reply.subarray(at + 1, end)));
  if (n === -1) {
    onNull?.(at, next);
    return next;
  }
  if (type === 36) return next + n + 2;
  let p = next;
  for (let i = 0; i < n; i++) p = walkReply(reply, p, onNull);
  return p;
}
