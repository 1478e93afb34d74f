/** Little-endian u32s in byte arrays, byte by byte (no DataView to allocate): every layer's. */

/** Little-endian u32 at `at`. */
export function putU32(target: Uint8Array, at: number, value: number): void {
  target[at] = value & 0xff;
  target[at + 1] = (value >>> 8) & 0xff;
  target[at + 2] = (value >>> 16) & 0xff;
  target[at + 3] = (value >>> 24) & 0xff;
}

/** The little-endian u32 at `at`. */
export function getU32(source: Uint8Array, at: number): number {
  return (source[at]! | (source[at + 1]! << 8) | (source[at + 2]! << 16)) + source[at + 3]! * 0x100_0000;
}
