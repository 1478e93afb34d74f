/**
 * Latencies recorded as a load loop runs, kept raw and put into an HdrHistogram after it
 * (bench/load/loops.ts, load/workload.ts).
 */
import type hdr from 'hdr-histogram-js';
import { invalidArgument } from '../base/index.ts';

/** Values a {@link LatencyLog} keeps before it moves them into its histogram (16 MiB). */
export const LATENCY_LOG_VALUES_MAX = 1 << 21;
const LATENCY_LOG_CHUNK_VALUES = 1 << 16;

/**
 * Latencies as the loop runs, in microseconds, kept as they are and put into the histogram
 * after the loop: recording into the histogram costs some 60 ns (a twentieth of a cluster
 * client's CPU per get at 800k gets/s: bench/cluster/put-loop.ts), an append into a typed
 * array a few. Past {@link LATENCY_LOG_VALUES_MAX} values it moves them into the histogram
 * then, so its memory is bounded whatever the loop's length.
 */
export class LatencyLog {
  // Float64: exact whatever the latency (a u32 of microseconds would wrap past 71 minutes).
  private readonly chunks: Float64Array[] = [];
  private chunk = new Float64Array(0);
  private at = 0;
  private kept = 0;

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
    return this.chunks.length === 0 ? 0 : this.kept - this.chunk.length + this.at;
  }

  /** Records the time from `fromMs` to `toMs` (performance.now() times), at least 1 µs. */
  record(fromMs: number, toMs: number): void {
    if (this.at === this.chunk.length) this.grow();
    this.chunk[this.at++] = Math.max(1, Math.round((toMs - fromMs) * 1000));
  }

  /** Moves every value kept into the histogram; the log is empty after. */
  flush(): void {
    for (const c of this.chunks) {
      const n = c === this.chunk ? this.at : c.length;
      for (let i = 0; i < n; i++) this.histogram.recordValue(c[i]!);
    }
    this.chunks.length = 0;
    this.chunk = new Float64Array(0);
    this.at = 0;
    this.kept = 0;
  }

  private grow(): void {
    if (this.kept + this.chunkValues > this.valuesMax) this.flush();
    this.chunk = new Float64Array(this.chunkValues);
    this.chunks.push(this.chunk);
    this.at = 0;
    this.kept += this.chunkValues;
  }
}
