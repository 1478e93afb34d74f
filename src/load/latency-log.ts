/**
 * Latencies recorded as a load loop runs, kept raw and put into an HdrHistogram after it
 * (bench/load/loops.ts, load/workload.ts).
 */
import type hdr from 'hdr-histogram-js';
import { invalidArgument } from '../base/index.ts';

/** Values a {@link LatencyLog} keeps before it moves its oldest into its histogram (32 MiB). */
export const LATENCY_LOG_VALUES_MAX = 1 << 22;
/** Values per chunk: what one move into the histogram takes at most (some 4 ms). */
const LATENCY_LOG_CHUNK_VALUES = 1 << 16;

/**
 * Latencies as the loop runs, in microseconds, kept as they are and put into the histogram
 * after the loop: recording into the histogram costs some 60 ns (a twentieth of a cluster
 * client's CPU per get at 800k gets/s: bench/cluster/put-loop.ts), an append into a typed
 * array a few. Past {@link LATENCY_LOG_VALUES_MAX} values it moves its oldest chunk into the
 * histogram and reuses the chunk, so its memory is bounded whatever the loop's length, and
 * the loop never stops for more than one chunk's move. (Moving all 2 Mi values at once, as
 * it did, stopped a loop of gets at 1M/s for some 170 ms in the middle of its 3 s.)
 */
export class LatencyLog {
  // Float64: exact whatever the latency (a u32 of microseconds would wrap past 71 minutes).
  /** The chunks in the order filled; the last is `chunk`, filled up to `at`. */
  private readonly chunks: Float64Array[] = [];
  private chunk: Float64Array = new Float64Array(0);
  private at = 0;
  /** Values the full chunks hold. */
  private full = 0;

  private readonly chunkValues: number;

  constructor(
    readonly histogram: hdr.Histogram,
    private readonly valuesMax = LATENCY_LOG_VALUES_MAX,
  ) {
    if (!(Number.isSafeInteger(valuesMax) && valuesMax >= 1)) throw invalidArgument(`valuesMax ${valuesMax} is not a positive integer`);
    this.chunkValues = Math.min(LATENCY_LOG_CHUNK_VALUES, valuesMax);
  }

  /** Values kept, not yet in the histogram. */
  get keptCount(): number {
    return this.full + this.at;
  }

  /** Records the time from `fromMs` to `toMs` (performance.now() times), at least 1 µs. */
  record(fromMs: number, toMs: number): void {
    if (this.at === this.chunk.length) this.nextChunk();
    this.chunk[this.at++] = Math.max(1, Math.round((toMs - fromMs) * 1000));
  }

  /** Moves every value kept into the histogram; the log is empty after. */
  flush(): void {
    for (const c of this.chunks) this.move(c, c === this.chunk ? this.at : c.length);
    this.chunks.length = 0;
    this.chunk = new Float64Array(0);
    this.at = 0;
    this.full = 0;
  }

  /** Starts a new chunk: the oldest one moved into the histogram and reused if the log would pass its bound. */
  private nextChunk(): void {
    if (this.chunks.length > 0) this.full += this.at;
    let next: Float64Array;
    if (this.full + this.chunkValues > this.valuesMax && this.chunks.length > 0) {
      next = this.chunks.shift()!;
      this.move(next, next.length);
      this.full -= next.length;
    } else {
      next = new Float64Array(this.chunkValues);
    }
    this.chunks.push(next);
    this.chunk = next;
    this.at = 0;
  }

  private move(c: Float64Array, n: number): void {
    for (let i = 0; i < n; i++) this.histogram.recordValue(c[i]!);
  }
}
