/**
 * The CRC32 micro-benchmark: the two implementations the WAL may frame its records with,
 * side by side in one run (DESIGN.md, "Storage": choose by measurement).
 *
 * - `zlib.crc32` from node:zlib: zlib's C code behind a binding, built into Node.js
 *   (since 20.15), so it is no addon and works under `--no-addons`. Each call crosses from
 *   JavaScript into C++, a fixed cost that small buffers feel most.
 * - `crc-32` (SheetJS, pure JavaScript): `CRC32.buf`, table-driven (slicing by 16) and
 *   JIT-compiled; no boundary to cross, but fewer bytes per cycle on large buffers.
 *
 * Both compute the same function (CRC-32/ISO-HDLC, the zlib/PNG one); `crc-32` returns
 * it as a signed 32-bit integer, so it is compared after `>>> 0`. Before anything is
 * timed, {@link verifyCrcAgreement} checks that both give the same checksum on random
 * buffers and throws if they do not: a faster wrong checksum is no alternative.
 *
 * One task per buffer size and implementation. A sample checksums one buffer of random
 * bytes over and over, about SAMPLE_BYTES_TARGET bytes in all, and reports the mean time of
 * one checksum, so that tinybench's per-sample overhead does not swamp a 150-byte call.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { crc32 as zlibCrc32 } from 'node:zlib';
import CRC32 from 'crc-32';
import type { CrcScenario } from '../../bench.config.ts';
import { measure, perOpRow, type MeasureOptions, type ResultRow, type Timed } from '../shared/measure.ts';

/** Bytes checksummed per sample (rounded up to whole buffers). */
const SAMPLE_BYTES_TARGET = 256 * 1024;
/** Random buffers in the agreement check are at most this long. */
const VERIFY_BUFFER_BYTES_MAX = 70_000;
/** The standard check value: CRC-32 of the ASCII bytes "123456789". */
const CHECK_INPUT = new TextEncoder().encode('123456789');
const CHECK_VALUE = 0xcbf43926;

/** A CRC32 implementation, normalised to return an unsigned 32-bit integer. */
export interface CrcImplementation {
  readonly name: string;
  /** CRC32 of `data`, continuing from `previous` (the CRC of the bytes before it) if given. */
  readonly checksum: (data: Uint8Array, previous?: number) => number;
  /** Checksums `data` `count` times in a tight loop; returns the XOR of the results. */
  readonly loop: (data: Uint8Array, count: number) => number;
}

export const crcImplementations: readonly CrcImplementation[] = [
  {
    name: 'zlib.crc32',
    checksum: (data, previous) => (previous === undefined ? zlibCrc32(data) : zlibCrc32(data, previous)),
    // The loops call the library directly rather than through `checksum`, so that the
    // timed part holds nothing but the implementation.
    loop: (data, count) => {
      let acc = 0;
      for (let i = 0; i < count; i++) acc ^= zlibCrc32(data);
      return acc;
    },
  },
  {
    name: 'crc-32',
    // crc-32 takes and returns the CRC as a signed 32-bit integer; `| 0` and `>>> 0`
    // convert at the boundary.
    checksum: (data, previous) => (previous === undefined ? CRC32.buf(data) : CRC32.buf(data, previous | 0)) >>> 0,
    loop: (data, count) => {
      let acc = 0;
      for (let i = 0; i < count; i++) acc ^= CRC32.buf(data);
      return acc >>> 0;
    },
  },
];

/** Loop results land here so that no compiler can drop a loop whose result goes unused. */
let sink = 0;

export interface CrcRunOptions {
  readonly timeMs: number;
  /** Called before each task with a line saying what is being measured. */
  readonly onProgress?: (line: string) => void;
}

export async function runCrcScenario(scenario: CrcScenario, options: CrcRunOptions): Promise<ResultRow[]> {
  const measureOptions: MeasureOptions = { timeMs: options.timeMs, warmupTimeMs: Math.min(250, options.timeMs / 4) };
  const progress = options.onProgress ?? (() => {});

  progress(`${scenario.name}: agreement of ${crcImplementations.map((c) => c.name).join(' and ')} on ${scenario.verifyBuffersCount} random buffers`);
  verifyCrcAgreement(scenario.verifyBuffersCount);

  const rows: ResultRow[] = [];
  // Sizes outside, implementations inside: the two alternatives for one size are measured
  // back to back, so that drift in the machine's speed hits both alike.
  for (const sizeBytes of scenario.bufferSizesBytes) {
    const data = randomBytes(sizeBytes);
    const count = Math.ceil(SAMPLE_BYTES_TARGET / sizeBytes);
    for (const impl of crcImplementations) {
      progress(`${scenario.name}: ${impl.name} on ${formatBytes(sizeBytes)} buffers, ${count} per sample`);
      const m = await measure(`${impl.name}-${sizeBytes}`, () => timeLoop(impl, data, count), measureOptions);
      rows.push(
        perOpRow(m, sizeBytes, {
          name: scenario.name,
          kind: scenario.kind,
          task: `crc32 ${formatBytes(sizeBytes)}`,
          variant: impl.name,
          batch: 1,
          op: `checksum of ${formatBytes(sizeBytes)}`,
        }),
      );
    }
  }
  if (sink === 0x1_0000_0000) throw new Error('unreachable: keeps `sink` observable');
  return rows;
}

function timeLoop(impl: CrcImplementation, data: Uint8Array, count: number): Timed {
  const start = performance.now();
  const acc = impl.loop(data, count);
  const elapsed = performance.now() - start;
  sink ^= acc;
  return { ms: elapsed / count };
}

/**
 * Throws unless every implementation gives the standard check value on "123456789", and
 * the same checksum as the first implementation on `count` random buffers (random lengths
 * from 0 to VERIFY_BUFFER_BYTES_MAX, random bytes), both in one call and continued across
 * a random split point (as a WAL that checksums a header and a payload apart would do).
 */
export function verifyCrcAgreement(count: number): void {
  const [reference, ...others] = crcImplementations;
  if (reference === undefined) throw new Error('no CRC32 implementation to verify');
  for (const impl of crcImplementations) {
    const got = impl.checksum(CHECK_INPUT);
    if (got !== CHECK_VALUE) {
      throw new Error(`${impl.name}: CRC32("123456789") is ${hex(got)}, expected ${hex(CHECK_VALUE)}`);
    }
  }
  for (let i = 0; i < count; i++) {
    // Lengths 0 and 1 first, then random ones: the edges are where table-driven code slips.
    const length = i < 2 ? i : randomInt(VERIFY_BUFFER_BYTES_MAX + 1);
    const data = randomBytes(length);
    const split = randomInt(length + 1);
    const expected = reference.checksum(data);
    const expectedSplit = reference.checksum(data.subarray(split), reference.checksum(data.subarray(0, split)));
    if (expectedSplit !== expected) {
      throw new Error(`${reference.name}: continued CRC32 ${hex(expectedSplit)} differs from one-shot ${hex(expected)} (length ${length}, split ${split})`);
    }
    for (const impl of others) {
      const got = impl.checksum(data);
      const gotSplit = impl.checksum(data.subarray(split), impl.checksum(data.subarray(0, split)));
      if (got !== expected || gotSplit !== expected) {
        throw new Error(
          `CRC32 mismatch on a random buffer of ${length} bytes (split at ${split}): ` +
            `${reference.name} ${hex(expected)}, ${impl.name} ${hex(got)} (continued ${hex(gotSplit)})`,
        );
      }
    }
  }
}

/**
 * One line per buffer size: each implementation's MB/s and how many times faster the
 * winner is. Rows of other scenarios are ignored.
 */
export function compareCrcRows(rows: readonly ResultRow[]): string[] {
  const bySize = new Map<number, ResultRow[]>();
  for (const r of rows) {
    if (r.kind !== 'crc' || r.bytesPerOp === undefined) continue;
    const list = bySize.get(r.bytesPerOp) ?? [];
    list.push(r);
    bySize.set(r.bytesPerOp, list);
  }
  const lines: string[] = [];
  for (const [sizeBytes, list] of bySize) {
    const sorted = [...list].sort((a, b) => b.opsPerSec - a.opsPerSec);
    const [best, second] = sorted;
    const speeds = list.map((r) => `${r.variant} ${Math.round(r.mbPerSec ?? 0).toLocaleString('en-US')} MB/s`).join(', ');
    const verdict = best !== undefined && second !== undefined ? `: ${best.variant} ×${(best.opsPerSec / second.opsPerSec).toFixed(2)}` : '';
    lines.push(`crc32 ${formatBytes(sizeBytes)}: ${speeds}${verdict}`);
  }
  return lines;
}

function formatBytes(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} B`;
}

function hex(x: number): string {
  return `0x${x.toString(16).padStart(8, '0')}`;
}
