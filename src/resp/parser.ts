/**
 * The request side of RESP, the Redis protocol, as a server reads it: commands as arrays of
 * bulk strings, and inline commands (a line of words, as a person types them), each taken as
 * soon as its last byte arrives, so that a pipelined stream yields its commands in order.
 *
 * ```
 *   *3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n      an array of 3 bulk strings
 *   SET k "hello world"\r\n                            an inline command (quotes as redis-cli's)
 * ```
 *
 * Bounded: a bulk string of more than `bulkBytesMax` bytes, an array of more than `argsMax`
 * of them, a header or inline line of more than `lineBytesMax`, or one command of more than
 * `commandBytesMax` bytes is refused with a {@link RespProtocolError} whose message is the
 * text Redis answers (`Protocol error: invalid bulk length`): the caller replies `-ERR` with
 * it and closes the connection, since the stream cannot be resynchronised. Memory: one
 * command's bytes at most, beside the commands already taken.
 *
 * The parser is resumable: a bulk string split across reads is not read again from the start
 * of its command, and a large one is joined once, when its last byte has come.
 */
import { ErrorCode, invalidArgument, RingraftError } from '../base/index.ts';

/** Refused input: the message is Redis's own text for it, to send as `-ERR <message>`. */
export class RespProtocolError extends RingraftError {
  constructor(message: string) {
    super(ErrorCode.PROTOCOL_ERROR, message);
    this.name = 'RespProtocolError';
  }
}

/** The bounds of one connection's parser. */
export interface RespParserLimits {
  /** Longest bulk string, in bytes. */
  readonly bulkBytesMax: number;
  /** Most elements in one command's array. */
  readonly argsMax: number;
  /** Longest header line (`*N`, `$N`) or inline command, in bytes, without its line end. */
  readonly lineBytesMax: number;
  /** Most bytes one command takes on the wire, all its parts together. */
  readonly commandBytesMax: number;
}

/** Redis's own bound on an inline command (PROTO_INLINE_MAX_SIZE). */
export const RESP_LINE_BYTES_MAX = 64 * 1024;
/** Elements of a command at most before the client has authenticated (Redis's bound). */
export const RESP_UNAUTHENTICATED_ARGS_MAX = 10;
/** Bytes of a bulk string at most before the client has authenticated (Redis's bound). */
export const RESP_UNAUTHENTICATED_BULK_BYTES_MAX = 16_384;

const CR = 13;
const LF = 10;
const STAR = 42;
const DOLLAR = 36;

/** A command: its words as bytes, the first one its name. Views of the read buffers, never written to. */
export type RespCommand = Uint8Array[];

export class RespRequestParser {
  /** Bytes read and not yet taken, oldest first: `chunks[0]` from offset `at`. */
  private chunks: Uint8Array[] = [];
  private at = 0;
  private buffered = 0;
  /** The array being read: its elements so far, and how many more it has. */
  private args: RespCommand | undefined;
  private remaining = 0;
  /** The length of the bulk string whose header was read, -1 while none is. */
  private bulkLength = -1;
  /** Bytes of the command being read, taken so far. */
  private commandBytes = 0;

  /** Whether the client has not authenticated: arrays and bulk strings as small as Redis allows then. */
  private unauthenticated = false;

  constructor(private readonly limits: RespParserLimits) {
    for (const [name, value] of Object.entries(limits)) {
      if (!(Number.isSafeInteger(value) && value >= 1)) throw invalidArgument(`RESP parser limit ${name} must be a positive integer, got ${String(value)}`);
    }
  }

  /**
   * Until the client authenticates (`authenticated(false)` first, then `true`): at most
   * RESP_UNAUTHENTICATED_ARGS_MAX elements and RESP_UNAUTHENTICATED_BULK_BYTES_MAX bytes a
   * bulk string, as Redis bounds a client that has not given its password, so that one who
   * cannot make it costs little; and `push` returns one command at a time (call it again with
   * no bytes for the next), so that an AUTH lifts the bounds before the next is read.
   */
  authenticated(yes: boolean): void {
    this.unauthenticated = !yes;
  }

  /** Bytes read and not yet part of a command taken: at most one command's. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Whether a command has begun and not ended (a stream that ends now ends mid-command). */
  get inCommand(): boolean {
    return this.buffered > 0 || this.args !== undefined;
  }

  /**
   * Takes `bytes` as read from the connection (kept, not copied: the caller must not reuse
   * them) and returns the commands they complete, in order; an empty array or an empty
   * inline line is no command. Input it refuses ends the stream: the commands before it are
   * returned, and {@link failure} says what was refused (the caller answers them, then the
   * failure, and closes); it takes nothing more after that.
   */
  push(bytes: Uint8Array): RespCommand[] {
    const done: RespCommand[] = [];
    if (this.failure !== undefined) return done;
    if (bytes.length > 0) {
      this.chunks.push(bytes);
      this.buffered += bytes.length;
    }
    try {
      for (;;) {
        // Unauthenticated, one command at a time: an AUTH among them lifts the bounds for the next.
        if (this.unauthenticated && done.length > 0) break;
        const command = this.next();
        if (command === undefined) break;
        if (command.length > 0) done.push(command);
      }
    } catch (error) {
      if (!(error instanceof RespProtocolError)) throw error;
      this.failure = error;
      this.chunks = [];
      this.buffered = 0;
    }
    return done;
  }

  /** What the stream broke, once it has: the error to answer before closing. */
  failure: RespProtocolError | undefined;

  /** The next command (empty for one that had no words), or undefined until more bytes come. */
  private next(): RespCommand | undefined {
    if (this.args === undefined) {
      if (this.buffered === 0) return undefined;
      if (this.peek() !== STAR) return this.inline();
      const line = this.line('Protocol error: too big mbulk count string');
      if (line === undefined) return undefined;
      const count = parseLength(line, 1);
      if (this.unauthenticated && count !== undefined && count > RESP_UNAUTHENTICATED_ARGS_MAX) throw new RespProtocolError('Protocol error: unauthenticated multibulk length');
      if (count === undefined || count > this.limits.argsMax) throw new RespProtocolError('Protocol error: invalid multibulk length');
      if (count <= 0) return this.endCommand([]);
      this.args = [];
      this.remaining = count;
    }
    while (this.remaining > 0) {
      if (this.bulkLength < 0) {
        if (this.buffered === 0) return undefined;
        const first = this.peek();
        if (first !== DOLLAR) throw new RespProtocolError(`Protocol error: expected '$', got '${String.fromCharCode(first)}'`);
        const line = this.line('Protocol error: too big bulk count string');
        if (line === undefined) return undefined;
        const length = parseLength(line, 1);
        if (this.unauthenticated && length !== undefined && length > RESP_UNAUTHENTICATED_BULK_BYTES_MAX) throw new RespProtocolError('Protocol error: unauthenticated bulk length');
        if (length === undefined || length < 0 || length > this.limits.bulkBytesMax) throw new RespProtocolError('Protocol error: invalid bulk length');
        this.bulkLength = length;
        this.noteCommandBytes(length + 2);
      }
      if (this.buffered < this.bulkLength + 2) return undefined;
      const bulk = this.take(this.bulkLength + 2);
      if (bulk[this.bulkLength] !== CR || bulk[this.bulkLength + 1] !== LF) throw new RespProtocolError('Protocol error: invalid bulk length');
      this.args.push(bulk.subarray(0, this.bulkLength));
      this.bulkLength = -1;
      this.remaining--;
    }
    const args = this.args;
    this.args = undefined;
    return this.endCommand(args);
  }

  private endCommand(args: RespCommand): RespCommand {
    this.commandBytes = 0;
    return args;
  }

  private noteCommandBytes(n: number): void {
    this.commandBytes += n;
    if (this.commandBytes > this.limits.commandBytesMax) throw new RespProtocolError('Protocol error: command too large');
  }

  /** An inline command: its line split into words (quotes as redis-cli's), or undefined until its line end comes. */
  private inline(): RespCommand | undefined {
    const line = this.line('Protocol error: too big inline request', true);
    if (line === undefined) return undefined;
    const words = splitInline(line);
    if (words === undefined) throw new RespProtocolError('Protocol error: unbalanced quotes in request');
    return this.endCommand(words);
  }

  /**
   * The next line without its end (CRLF; an inline line may end in LF alone), taken; undefined
   * until its end comes. Throws `tooLong` once more than lineBytesMax bytes wait without one.
   */
  private line(tooLong: string, inline = false): Uint8Array | undefined {
    const end = this.indexOfLf();
    if (end < 0) {
      if (this.buffered > this.limits.lineBytesMax) throw new RespProtocolError(tooLong);
      return undefined;
    }
    if (end > this.limits.lineBytesMax + 1) throw new RespProtocolError(tooLong);
    const bytes = this.take(end + 1);
    this.noteCommandBytes(end + 1);
    const withCr = end > 0 && bytes[end - 1] === CR;
    if (!withCr && !inline) throw new RespProtocolError(tooLong.includes('mbulk') ? 'Protocol error: invalid multibulk length' : 'Protocol error: invalid bulk length');
    return bytes.subarray(0, withCr ? end - 1 : end);
  }

  private peek(): number {
    return this.chunks[0]![this.at]!;
  }

  /** The offset of the first LF among the buffered bytes, or -1. */
  private indexOfLf(): number {
    let before = 0;
    for (let i = 0; i < this.chunks.length; i++) {
      const chunk = this.chunks[i]!;
      const from = i === 0 ? this.at : 0;
      const found = chunk.indexOf(LF, from);
      if (found >= 0) return before + found - from;
      before += chunk.length - from;
    }
    return -1;
  }

  /** Takes the next `n` buffered bytes (n at most those buffered): a view when they lie in one chunk, else joined once. */
  private take(n: number): Uint8Array {
    const first = this.chunks[0]!;
    this.buffered -= n;
    if (first.length - this.at >= n) {
      const view = first.subarray(this.at, this.at + n);
      this.at += n;
      if (this.at === first.length) this.dropFirst();
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const count = Math.min(chunk.length - this.at, n - filled);
      out.set(chunk.subarray(this.at, this.at + count), filled);
      filled += count;
      this.at += count;
      if (this.at === chunk.length) this.dropFirst();
    }
    return out;
  }

  private dropFirst(): void {
    this.chunks.shift();
    this.at = 0;
  }
}

/** The integer after a line's type byte (`*3`, `$-1`): undefined if it is not a plain decimal (an optional minus, 1 to 18 digits). */
function parseLength(line: Uint8Array, from: number): number | undefined {
  let i = from;
  const negative = line[i] === 45;
  if (negative) i++;
  if (i === line.length || line.length - i > 18) return undefined;
  let n = 0;
  for (; i < line.length; i++) {
    const d = line[i]! - 48;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return negative ? -n : n;
}

const SPACE = 32;
const QUOTE = 34;
const APOSTROPHE = 39;
const BACKSLASH = 92;

function isSpace(c: number): boolean {
  return c === SPACE || c === 9 || c === 10 || c === 11 || c === 12 || c === 13;
}

function hexValue(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * An inline line's words, as Redis splits them (sdssplitargs): separated by spaces; a word in
 * double quotes may hold spaces and the escapes \n \r \t \b \a \\ \" and \xHH; one in single
 * quotes only \'; a closing quote must be followed by a space or the end. Undefined for
 * unbalanced quotes.
 */
export function splitInline(line: Uint8Array): Uint8Array[] | undefined {
  const words: Uint8Array[] = [];
  let i = 0;
  const n = line.length;
  for (;;) {
    while (i < n && isSpace(line[i]!)) i++;
    if (i === n) return words;
    const word: number[] = [];
    /** The quote the word is inside (QUOTE or APOSTROPHE), 0 outside. */
    let quote = 0;
    for (;;) {
      if (i === n) {
        if (quote !== 0) return undefined;
        break;
      }
      const c = line[i]!;
      if (quote === 0) {
        if (isSpace(c)) break;
        if (c === QUOTE || c === APOSTROPHE) quote = c;
        else word.push(c);
        i++;
      } else if (c === quote) {
        // A closing quote ends the word: a space or the line's end must follow.
        if (i + 1 < n && !isSpace(line[i + 1]!)) return undefined;
        i++;
        break;
      } else if (c === BACKSLASH && quote === QUOTE && line[i + 1] === 120 && hexValue(line[i + 2]) >= 0 && hexValue(line[i + 3]) >= 0) {
        word.push(hexValue(line[i + 2]) * 16 + hexValue(line[i + 3]));
        i += 4;
      } else if (c === BACKSLASH && i + 1 < n && (quote === QUOTE || line[i + 1] === APOSTROPHE)) {
        const e = line[i + 1]!;
        word.push(quote === APOSTROPHE ? e : e === 110 ? 10 : e === 114 ? 13 : e === 116 ? 9 : e === 98 ? 8 : e === 97 ? 7 : e);
        i += 2;
      } else {
        word.push(c);
        i++;
      }
    }
    words.push(Uint8Array.from(word));
  }
}
