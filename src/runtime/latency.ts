/**
 * A latency histogram with fixed buckets, cheap enough for every Ready of a node's loop: one
 * comparison per bucket bound at most and three additions, no allocation. The node's thread
 * keeps one for its WAL writes (a `writev` and an `fdatasync` per Ready) and one for applying
 * committed entries; a control call carries a copy to the main thread, which exports them
 * (Prometheus histograms: cumulative counts per upper bound in seconds, a sum and a count).
 */

/** Upper bounds of the buckets, in seconds: 50 µs to 2.5 s, about three per decade. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** A copy of a histogram, as it crosses threads: `counts[i]` observations at most bound i (not cumulative), the last slot past every bound. */
export interface LatencySnapshot {
  readonly counts: readonly number[];
  readonly sumSeconds: number;
  readonly count: number;
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(LATENCY_BUCKETS_SECONDS.length + 1);
  private sumSeconds = 0;
  private count = 0;

  /** Records one observation of `ms` milliseconds. */
  observeMs(ms: number): void {
    const seconds = ms / 1000;
    let i = 0;
    while (i < LATENCY_BUCKETS_SECONDS.length && seconds > LATENCY_BUCKETS_SECONDS[i]!) i++;
    this.counts[i]!++;
    this.sumSeconds += seconds;
    this.count++;
  }

  snapshot(): LatencySnapshot {
    return { counts: [...this.counts], sumSeconds: this.sumSeconds, count: this.count };
  }
}
