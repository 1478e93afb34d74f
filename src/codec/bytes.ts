/**
 * Bounded little-endian byte writer and reader, the building blocks of every binary format
 * in ringraft.
 *
 * The writer works on a buffer of fixed capacity: the encoder computes the exact size
 * first, allocates once (or is handed ring memory), and writing past the end is a bug that
 * crashes. The reader never trusts its input: every read checks the bytes that remain, and
 * every length prefix is checked against a maximum the caller states, before anything is
 * sliced or allocated, so a corrupted length cannot make it allocate gigabytes. Input it
 * cannot accept throws a {@link DecodeError}.
 *
 * Field encodings:
 *
 * | name       | bytes | meaning                                                     |
 * | ---------- | ----- | ----------------------------------------------------------- |
 * | u8         | 1     | unsigned integer                                            |
 * | u32        | 4     | unsigned integer, little-endian                             |
 * | u64        | 8     | unsigned integer, little-endian (bigint, or a safe number)  |
 * | bytes      | 4 + n | u32 length n, then n raw bytes                              |
 */
import { ErrorCode, fail, getU32, putU32, RingraftError } from '../base/index.ts';

/** Largest value a u32 field holds. */
export const U32_MAX = 0xffff_ffff;
/** Largest value a u64 field holds. */
export const U64_MAX = (1n << 64n) - 1n;
/** Size of the length prefix in front of a `bytes` field. */
export const BYTES_LENGTH_PREFIX_BYTES = 4;

const TWO_POW_32 = 0x1_0000_0000;
/** The high u32 of a u64 that still fits in Number.MAX_SAFE_INTEGER (2^53 - 1). */
const SAFE_U64_HIGH_MAX = 0x1f_ffff;


/**
 * Why a decode failed. `truncated`: the input ended before the field did.
 * `length_over_max`: a length prefix exceeds the maximum the format allows.
 * `out_of_range`: a number does not fit what the field may hold (e.g. a u64 above 2^53 - 1
 * read as a number). `trailing_bytes`: input left over after the last field.
 * `checksum_mismatch`: a stored checksum does not match the bytes it covers. `invalid`: a
 * field holds a value the format does not define (an unknown version or tag, for example).
 */
export type DecodeErrorReason =
  | 'truncated'
  | 'length_over_max'
  | 'out_of_range'
  | 'trailing_bytes'
  | 'checksum_mismatch'
  | 'invalid';

/** Input that is not a valid encoding. Compare by `code` and `reason`, never by message. */
export class DecodeError extends RingraftError {
  /** Always DECODE_ERROR. */
  declare readonly code: typeof ErrorCode.DECODE_ERROR;
  /** Why: `truncated`, `length_over_max`, `out_of_range`, `trailing_bytes`, `checksum_mismatch`, or `invalid` (a value the format does not define). */
  readonly reason: DecodeErrorReason;
  /** Byte offset of the field that failed. */
  readonly offset: number;
  /** A refusal for `reason` at byte `offset`, which is appended to `message` as `(at byte <offset>)`. */
  constructor(reason: DecodeErrorReason, offset: number, message: string) {
    super(ErrorCode.DECODE_ERROR, `${message} (at byte ${offset})`);
    this.name = 'DecodeError';
    this.reason = reason;
    this.offset = offset;
  }
}

/**
 * Writes fields into a buffer of fixed capacity.
 *
 * Invariant: 0 <= offset <= capacityBytes; bytes [0, offset) are written.
 */
export class ByteWriter {
  private readonly target: Uint8Array;
  /** Made on first use (bigint fields only): the common fields are written byte by byte, with no DataView to allocate per writer. */
  private viewValue: DataView | undefined;
  private offsetBytes = 0;
  /** Writes stop here: the target's end, or the end of the current window. */
  private endBytes: number;

  /** `target`: a capacity to allocate, or memory to write into (for example a ring slot). */
  constructor(target: number | Uint8Array) {
    if (typeof target === 'number') {
      if (!(Number.isSafeInteger(target) && target >= 0)) fail(`capacity ${target} is a non-negative integer`);
      this.target = new Uint8Array(target);
    } else {
      this.target = target;
    }
    this.endBytes = this.target.length;
  }

  /**
   * Moves the writer to `offsetBytes` and lets it write only [offsetBytes, offsetBytes +
   * lengthBytes): one writer over a whole ring's memory then serves every frame reserved in
   * it, with no allocation per frame.
   */
  window(offsetBytes: number, lengthBytes: number): void {
    if (!(offsetBytes >= 0 && lengthBytes >= 0 && offsetBytes + lengthBytes <= this.target.length)) fail(`window [${offsetBytes}, +${lengthBytes}) is inside the target`);
    this.offsetBytes = offsetBytes;
    this.endBytes = offsetBytes + lengthBytes;
  }

  /** Bytes left in the window (or the target). */
  get remainingBytes(): number {
    return this.endBytes - this.offsetBytes;
  }

  get offset(): number {
    return this.offsetBytes;
  }

  get capacityBytes(): number {
    return this.target.length;
  }

  u8(value: number): void {
    if (!(Number.isInteger(value) && value >= 0 && value <= 0xff)) fail(`u8 value ${value} is in [0, 255]`);
    const at = this.claim(1);
    this.target[at] = value;
  }

  u16(value: number): void {
    if (!(Number.isInteger(value) && value >= 0 && value <= 0xffff)) fail(`u16 value ${value} is in [0, 65535]`);
    const at = this.claim(2);
    this.target[at] = value & 0xff;
    this.target[at + 1] = value >>> 8;
  }

  u32(value: number): void {
    if (!(Number.isInteger(value) && value >= 0 && value <= U32_MAX)) fail(`u32 value ${value} is in [0, 2^32)`);
    const at = this.claim(4);
    putU32(this.target, at, value);
  }

  u64(value: bigint): void {
    if (!(value >= 0n && value <= U64_MAX)) fail(`u64 value ${value} is in [0, 2^64)`);
    const at = this.claim(8);
    this.viewValue ??= new DataView(this.target.buffer, this.target.byteOffset, this.target.byteLength);
    this.viewValue.setBigUint64(at, value, true);
  }

  /** Writes a safe non-negative integer as a u64, without going through bigint. */
  u64Number(value: number): void {
    if (!(Number.isSafeInteger(value) && value >= 0)) fail(`u64 value ${value} is a safe non-negative integer`);
    const at = this.claim(8);
    putU32(this.target, at, value % TWO_POW_32);
    putU32(this.target, at + 4, Math.floor(value / TWO_POW_32));
  }

  /** Writes a u32 length prefix, then the bytes. */
  bytes(value: Uint8Array): void {
    this.u32(value.length);
    this.raw(value);
  }

  /**
   * Writes a u32 length prefix, then the string's UTF-16 units as bytes: its ASCII, for a
   * string the caller knows to be ASCII (a unit over 0xff would be cut to its low byte).
   */
  ascii(value: string): void {
    const n = value.length;
    this.u32(n);
    const at = this.claim(n);
    const target = this.target;
    for (let i = 0; i < n; i++) target[at + i] = value.charCodeAt(i);
  }

  /** Writes the bytes as they are, with no length prefix. */
  raw(value: Uint8Array): void {
    const at = this.claim(value.length);
    this.target.set(value, at);
  }

  /** Writes `count` zero bytes (padding: the target may hold older bytes there). */
  zeros(count: number): void {
    const at = this.claim(count);
    this.target.fill(0, at, at + count);
  }

  /** The written bytes [0, offset): a view of the target, not a copy. */
  finish(): Uint8Array {
    return this.offsetBytes === this.target.length ? this.target : this.target.subarray(0, this.offsetBytes);
  }

  private claim(sizeBytes: number): number {
    const at = this.offsetBytes;
    if (!(at + sizeBytes <= this.endBytes)) fail(`write of ${sizeBytes} bytes at ${at} fits before ${this.endBytes}`);
    this.offsetBytes = at + sizeBytes;
    return at;
  }
}

/**
 * Reads fields from untrusted bytes; anything it cannot accept throws a {@link DecodeError}.
 *
 * Invariant: 0 <= offset <= source.length; bytes [0, offset) are consumed.
 */
export class ByteReader {
  private readonly source: Uint8Array;
  private offsetBytes = 0;

  constructor(source: Uint8Array) {
    this.source = source;
  }

  get offset(): number {
    return this.offsetBytes;
  }

  get remainingBytes(): number {
    return this.source.length - this.offsetBytes;
  }

  u8(): number {
    const at = this.claim(1, 'u8');
    return this.source[at]!;
  }

  u16(): number {
    const at = this.claim(2, 'u16');
    return this.source[at]! | (this.source[at + 1]! << 8);
  }

  u32(): number {
    const at = this.claim(4, 'u32');
    return getU32(this.source, at);
  }

  u64(): bigint {
    const at = this.claim(8, 'u64');
    return (BigInt(getU32(this.source, at + 4)) << 32n) | BigInt(getU32(this.source, at));
  }

  /** Reads a u64 that must be at most Number.MAX_SAFE_INTEGER. */
  u64Number(): number {
    const at = this.claim(8, 'u64');
    const low = getU32(this.source, at);
    const high = getU32(this.source, at + 4);
    if (high > SAFE_U64_HIGH_MAX) {
      throw new DecodeError('out_of_range', at, 'u64 is above Number.MAX_SAFE_INTEGER');
    }
    return high * TWO_POW_32 + low;
  }

  /**
   * Reads a u32 length prefix, checks it against `lengthMax` and the bytes that remain, and
   * returns a view of the bytes (not a copy: copy what you keep, since the source may be
   * reused memory).
   */
  bytes(lengthMax: number): Uint8Array {
    if (!(Number.isSafeInteger(lengthMax) && lengthMax >= 0)) fail(`lengthMax ${lengthMax} is a non-negative integer`);
    const lengthAt = this.offsetBytes;
    const length = this.u32();
    if (length > lengthMax) {
      throw new DecodeError('length_over_max', lengthAt, `length ${length} is over the maximum ${lengthMax}`);
    }
    return this.raw(length);
  }

  /** Returns a view of the next `length` bytes. */
  raw(length: number): Uint8Array {
    if (!(Number.isSafeInteger(length) && length >= 0)) fail(`length ${length} is a non-negative integer`);
    const at = this.claim(length, `${length} bytes`);
    return this.source.subarray(at, at + length);
  }

  /** Throws unless every byte has been read: trailing bytes mean the input is not what we think. */
  expectEnd(): void {
    if (this.offsetBytes !== this.source.length) {
      throw new DecodeError('trailing_bytes', this.offsetBytes, `${this.remainingBytes} bytes after the last field`);
    }
  }

  private claim(sizeBytes: number, what: string): number {
    const at = this.offsetBytes;
    if (sizeBytes > this.source.length - at) {
      throw new DecodeError('truncated', at, `input ends before ${what} (${this.source.length - at} bytes left)`);
    }
    this.offsetBytes = at + sizeBytes;
    return at;
  }
}

// The u32 helpers live in base/ (every layer's, the transports' too); the codec's callers get them from here as well.
export { getU32, putU32 };

/**
 * Contents up to this many bytes are copied word by word by {@link ByteCopier}: 10 ns for
 * 16 bytes, 40 for 144 and 48 to 50 for 170 (a put of a 16-byte key and a 128-byte value)
 * against 45 to 60 for a `set` of a new view, which is cheaper past some 200 bytes even
 * before the collector's share (measured on Node.js 20 and 24).
 */
export const WORD_COPY_BYTES_MAX = 192;

/**
 * Copies byte ranges between arrays with no object made per copy, for the paths that copy
 * every put (into the state machine's slabs, into a leader's batch): `dst.set(src.subarray())`
 * made a view per copy, the largest share of what those paths allocated. Ranges up to
 * WORD_COPY_BYTES_MAX go four bytes at a time through DataViews. The view of the source is
 * kept from one copy to the next while the source is the same array (a ring's memory, the
 * keys and values of one entry), so it holds on to that array until {@link forgetSource}.
 */
export class ByteCopier {
  private source: Uint8Array | undefined;
  /** The source's length when its view was made: a view over a resizable buffer that grew since is made again. */
  private sourceLength = 0;
  private sourceView: DataView | undefined;

  /** Copies src[from, from + length) to dst[at...]; `dstView` is a DataView of exactly dst's bytes. */
  copy(src: Uint8Array, from: number, dst: Uint8Array, dstView: DataView, at: number, length: number): void {
    if (length > WORD_COPY_BYTES_MAX) {
      dst.set(src.subarray(from, from + length), at);
      return;
    }
    if (src !== this.source || src.byteLength !== this.sourceLength) {
      this.source = src;
      this.sourceLength = src.byteLength;
      this.sourceView = new DataView(src.buffer, src.byteOffset, src.byteLength);
    }
    const view = this.sourceView!;
    let i = 0;
    for (; i + 8 <= length; i += 8) {
      dstView.setInt32(at + i, view.getInt32(from + i, true), true);
      dstView.setInt32(at + i + 4, view.getInt32(from + i + 4, true), true);
    }
    if (i + 4 <= length) {
      dstView.setInt32(at + i, view.getInt32(from + i, true), true);
      i += 4;
    }
    for (; i < length; i++) dst[at + i] = src[from + i]!;
  }

  /** Lets go of the last source array (the caller is done copying from it). */
  forgetSource(): void {
    this.source = undefined;
    this.sourceView = undefined;
  }
}
