/**
 * The simulated network. Fault model: a message may be delayed (uniformly within a base
 * range, sometimes much longer, which reorders it), dropped, or duplicated; links can be
 * cut one way (asymmetric partition) or both ways. Nothing is ever corrupted: the network
 * delivers whole messages or none (message integrity is the codec's and the WAL's job).
 */
import type { Rand } from '../core/index.ts';

export interface NetworkOptions {
  /** Base one-way delay range in ms: [oneWayDelayMinMs, oneWayDelayMaxMs). */
  readonly oneWayDelayMinMs: number;
  readonly oneWayDelayMaxMs: number;
  /** Probability that a message is delayed by up to `longDelayMaxMs` instead (reordering). */
  readonly longDelayProbability: number;
  readonly longDelayMaxMs: number;
  readonly packetLossProbability: number;
  readonly packetDuplicateProbability: number;
}

export const DEFAULT_NETWORK: NetworkOptions = {
  oneWayDelayMinMs: 1,
  oneWayDelayMaxMs: 4,
  longDelayProbability: 0.02,
  longDelayMaxMs: 60,
  packetLossProbability: 0.01,
  packetDuplicateProbability: 0.01,
};

export class SimNetwork {
  /** Directed links that are cut, as "from>to". */
  private cut = new Set<string>();
  options: NetworkOptions;

  constructor(
    private readonly rand: Rand,
    options: NetworkOptions,
  ) {
    this.options = options;
  }

  /** The delivery delays of one send: [] when dropped, two entries when duplicated. */
  delays(from: number, to: number): number[] {
    if (this.cut.has(`${from}>${to}`)) return [];
    const o = this.options;
    if (this.rand.chance(o.packetLossProbability)) return [];
    const one = (): number =>
      this.rand.chance(o.longDelayProbability)
        ? this.rand.int(o.oneWayDelayMinMs, o.longDelayMaxMs)
        : this.rand.int(o.oneWayDelayMinMs, o.oneWayDelayMaxMs);
    const out = [one()];
    if (this.rand.chance(o.packetDuplicateProbability)) out.push(one());
    return out;
  }

  isCut(from: number, to: number): boolean {
    return this.cut.has(`${from}>${to}`);
  }

  /** Cuts every link between different groups, both ways. */
  partition(groups: readonly (readonly number[])[]): void {
    for (let i = 0; i < groups.length; i++) {
      for (let j = 0; j < groups.length; j++) {
        if (i === j) continue;
        for (const a of groups[i]!) for (const b of groups[j]!) this.cut.add(`${a}>${b}`);
      }
    }
  }

  cutOneWay(from: number, to: number): void {
    this.cut.add(`${from}>${to}`);
  }

  heal(): void {
    this.cut.clear();
  }

  get cutLinks(): number {
    return this.cut.size;
  }
}
