/**
 * The one checksum of the WAL format: CRC-32 (IEEE 802.3 polynomial, the one zlib, gzip and
 * PNG use), so that any language's standard library can verify a segment.
 *
 * Every checksum in the WAL goes through this one function, so the implementation can be
 * swapped after measurement (node:zlib's `crc32` is fast on large buffers; a pure-JS table
 * may win on records of a few hundred bytes; see DESIGN.md, "Storage") without touching the
 * format or its callers.
 */
import { crc32 as zlibCrc32 } from 'node:zlib';

/**
 * CRC-32 of `data`. Pass the CRC of earlier bytes as `crcSoFar` to continue it over `data`:
 * crc32(b, crc32(a)) === crc32(a ‖ b).
 */
export function crc32(data: Uint8Array, crcSoFar = 0): number {
  return zlibCrc32(data, crcSoFar);
}
