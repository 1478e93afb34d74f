/**
 * What every simulated client has: a session (a client id made of its address and a session
 * number, and the next sequence number), the node it sends to, and how it follows a refusal
 * to the leader.
 */
import { NONE, type Rand } from '../core/index.ts';
import type { WorkloadHost } from './workload.ts';

export abstract class SimActor {
  /** The session number; the client id is (address << 16) | sessionNo. */
  private sessionNo = 1;
  protected seq = 0;
  protected opNext = 1;
  /** The node it sends to: its last known leader. */
  protected target = 1;

  constructor(
    protected readonly sim: WorkloadHost,
    /** Its client address. */
    readonly index: number,
    protected readonly rand: Rand,
  ) {}

  protected get clientId(): number {
    return (this.index << 16) | this.sessionNo;
  }

  /**
   * After a write with an unknown outcome or an expired session, continue in a new session:
   * the old one may hold a request that is still in some log, and the state machine opens
   * sessions only at sequence number 1.
   */
  protected newSession(): void {
    this.sessionNo++;
    this.seq = 0;
  }

  /**
   * Not the leader (or busy): follow the refusal's hint at once, or try another node after a
   * pause (an election is probably under way); then `retry`.
   */
  protected retryAfterRefusal(leaderHint: number, retry: () => void): void {
    const hinted = leaderHint !== NONE;
    this.target = hinted ? leaderHint : this.rand.pick(this.sim.members());
    this.sim.at(hinted ? this.rand.int(1, 5) : this.rand.int(20, 60), retry);
  }
}
