/**
 * The leader's lease clock: when a lease has run out, by this node's own clock (its ticks),
 * never a replica's wall clock.
 *
 * Only a leader keeps deadlines. It gives every lease a fresh full TTL when it becomes leader
 * (etcd's rule): a new leader cannot know when a client last renewed with the old one, so it
 * never expires a lease before a whole TTL of its own has passed. A grant it applies gets a
 * full TTL then; a keep-alive it answers sets one from then. When a deadline passes, it
 * proposes the lease's expiry (a lease-expire request, no session) through the log, and from
 * then on refuses keep-alives of that lease; every replica deletes the keys when the expiry
 * applies. A follower keeps nothing, and a leader that loses its role forgets all.
 *
 * Why a client that renewed within its TTL keeps its keys: a keep-alive is answered only
 * after a ReadIndex round that started after it arrived (read-queue.ts), so when it is
 * answered no other leader had been elected before it arrived (a quorum still followed this
 * one). Any later leader starts its full TTL after that, and this one's deadline is a full TTL
 * after the answer; both are after the client's send plus its TTL. Ticks never run faster
 * than real time (a paused process catches up at most to the time that passed), so the
 * deadlines are never early.
 *
 * Deadlines are looked at every {@link SCAN_EVERY_MS} (at least every tick), so a lease
 * expires up to that much late, never early.
 */

import { RingraftError } from '../base/index.ts';
import { encodeKvRequest, type KvStateMachine } from '../kv/index.ts';

/** How often the deadlines are looked at, in ms of ticks. */
const SCAN_EVERY_MS = 100;

export interface LeaseTimes {
  readonly ttlMs: number;
  /** Until the deadline, by this leader's clock. */
  readonly remainingMs: number;
  readonly keys: number;
}

export class LeaseKeeper {
  protected ticks = 0;
  protected leader = false;
  /** On a leader: the tick at which each lease runs out. */
  protected readonly deadlines = new Map<number, number>();
  /** On a leader: leases whose expiry it proposed (keep-alives are refused). */
  protected readonly expiring = new Set<number>();
  private readonly scanEveryTicks: number;

  constructor(
    private readonly tickMs: number,
    /** The state machine (the host replaces it when it installs a snapshot). */
    private readonly kv: () => KvStateMachine,
    /** Proposes an encoded request through the log; throws if this node cannot (not leader, full). */
    private readonly propose: (data: Uint8Array) => void,
  ) {
    this.scanEveryTicks = Math.max(1, Math.floor(SCAN_EVERY_MS / tickMs));
  }

  /** One tick of this node's clock; a leader proposes the expiry of the leases that ran out. */
  tick(): void {
    this.ticks++;
    if (!this.leader || this.ticks % this.scanEveryTicks !== 0) return;
    for (const [id, deadline] of this.deadlines) {
      if (deadline <= this.ticks && !this.expiring.has(id)) this.expire(id);
    }
  }

  /** Whether this node leads now: becoming leader gives every lease a full TTL from now; losing it forgets them. */
  noteRole(isLeader: boolean): void {
    if (isLeader === this.leader) return;
    this.leader = isLeader;
    this.deadlines.clear();
    this.expiring.clear();
    if (isLeader) this.refreshAll();
  }

  /** The state machine was replaced (a snapshot installed): a leader starts every lease anew. */
  noteRestored(): void {
    this.deadlines.clear();
    this.expiring.clear();
    if (this.leader) this.refreshAll();
  }

  /** A lease granted (ttlMs) or ended (undefined) as the state machine applied it. */
  onLeaseChange(id: number, ttlMs: number | undefined): void {
    if (!this.leader) return;
    if (ttlMs === undefined) {
      this.deadlines.delete(id);
      this.expiring.delete(id);
    } else {
      this.deadlines.set(id, this.ticks + this.ttlTicks(ttlMs));
    }
  }

  /**
   * Renews lease `id` for a full TTL from now; undefined if it does not exist, its expiry is
   * proposed, or its deadline passed (its expiry is proposed now). Only on a leader whose
   * leadership a ReadIndex round confirmed after the request arrived.
   */
  keepAlive(id: number): LeaseTimes | undefined {
    const info = this.kv().leaseInfo(id);
    if (!this.leader || info === undefined || this.expiring.has(id)) return undefined;
    const deadline = this.deadlines.get(id);
    if (deadline !== undefined && deadline <= this.ticks) {
      this.expire(id);
      return undefined;
    }
    this.deadlines.set(id, this.ticks + this.ttlTicks(info.ttlMs));
    return { ttlMs: info.ttlMs, remainingMs: info.ttlMs, keys: info.keys };
  }

  /** Lease `id`'s TTL, the time left by this leader's clock, and its keys; undefined as for keepAlive. */
  timeToLive(id: number): LeaseTimes | undefined {
    const info = this.kv().leaseInfo(id);
    if (!this.leader || info === undefined || this.expiring.has(id)) return undefined;
    const deadline = this.deadlines.get(id) ?? this.ticks + this.ttlTicks(info.ttlMs);
    return { ttlMs: info.ttlMs, remainingMs: Math.max(0, Math.min(info.ttlMs, (deadline - this.ticks) * this.tickMs)), keys: info.keys };
  }

  /** Leases this leader tracks (for tests and status). */
  get tracked(): number {
    return this.deadlines.size;
  }

  private refreshAll(): void {
    for (const l of this.kv().leases()) this.deadlines.set(l.id, this.ticks + this.ttlTicks(l.ttlMs));
  }

  private expire(id: number): void {
    try {
      this.propose(encodeKvRequest({ op: 'lease-expire', id }));
      this.expiring.add(id);
    } catch (error) {
      // Not proposed (proposals full, a transfer under way, no longer leader): the next scan
      // tries again, or the role change clears it.
      if (!(error instanceof RingraftError)) throw error;
    }
  }

  /**
   * A TTL in ticks from the tick under way: rounded up, and one more, since that tick may be
   * nearly over (a deadline counted from it alone could fall up to a tick before the TTL).
   */
  protected ttlTicks(ttlMs: number): number {
    return Math.ceil(ttlMs / this.tickMs) + 1;
  }
}
