/**
 * A priority queue of timed events for the simulator: a binary min-heap ordered by
 * (time, sequence number), so events at the same time run in the order they were
 * scheduled and a seed replays identically.
 */
import { fail } from '../base/index.ts';
export interface SimEvent {
  readonly time: number;
  readonly seq: number;
  readonly run: () => void;
}

export class EventQueue {
  private heap: SimEvent[] = [];
  private seqNext = 0;
  /** Bound on queued events: a runaway scheduling loop fails loudly instead of eating memory. */
  constructor(readonly eventsMax: number = 5_000_000) {}

  get size(): number {
    return this.heap.length;
  }

  schedule(time: number, run: () => void): void {
    if (this.heap.length >= this.eventsMax) fail(`simulator: at most ${this.eventsMax} events queued`);
    const ev: SimEvent = { time, seq: this.seqNext++, run };
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  pop(): SimEvent | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
