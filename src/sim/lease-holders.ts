/**
 * Simulated lease holders, beside the key-value clients: each grants a lease, puts a key under
 * it, and keeps it alive with keep-alives every quarter of its TTL; now and then it stops
 * renewing and, once the lease must be gone, starts over with a new one. Every keep-alive (and
 * grant) the cluster acknowledged is a renewal, kept for the final check (lease-check.ts): no
 * lease may expire before a whole TTL has passed since the call of any renewal of it, whatever
 * leader changes, partitions and pauses happened between.
 */
import { ErrorCode } from '../base/index.ts';
import type { Rand } from '../core/index.ts';
import { SimActor } from './sim-actor.ts';
import type { SimReply, SimRequest, WorkloadHost } from './workload.ts';

/** A renewal the cluster acknowledged: lease `lease` of `ttlMs` was renewed by a call made at `call`. */
export interface LeaseRenewal {
  readonly holder: number;
  readonly lease: number;
  readonly ttlMs: number;
  readonly call: number;
  readonly return: number;
}

/** What a holder needs of the workload around it. */
export interface LeaseHolderHost {
  sendRequest(to: number, req: SimRequest): void;
  readonly renewals: LeaseRenewal[];
  /** Counts a lease a holder found gone while it was renewing it (a keep-alive answered LEASE_NOT_FOUND). */
  noteLeaseLost(): void;
}

/** Of the renewal points, the share where a holder stops renewing. */
const ABANDON_PROBABILITY = 0.08;

export class LeaseHolder extends SimActor {
  private current:
    | {
        readonly opId: number;
        readonly request: SimRequest;
        readonly call: number;
        readonly deadline: number;
        timer: number;
        done: boolean;
        readonly onOk: (reply: SimReply & { ok: true }, call: number) => void;
      }
    | undefined;

  constructor(
    sim: WorkloadHost,
    private readonly host: LeaseHolderHost,
    /** Its client address, after the key-value clients'. */
    index: number,
    rand: Rand,
  ) {
    super(sim, index, rand);
  }

  start(): void {
    this.sim.at(this.rand.int(0, 100), () => this.grant());
  }

  private running(): boolean {
    const o = this.sim.options;
    return this.sim.time < o.durationMs + o.quiesceMs - o.clientTimeoutMs * 2 - 1000;
  }

  private grant(): void {
    if (!this.running()) return;
    const ttlMs = this.rand.int(200, 600);
    const request: SimRequest = { kind: 'write', client: this.index, opId: this.opNext++, clientId: this.clientId, seq: ++this.seq, command: { op: 'lease-grant', ttlMs } };
    this.send(request, (reply, call) => {
      const id = reply.leaseId!;
      this.host.renewals.push({ holder: this.index, lease: id, ttlMs, call, return: this.sim.time });
      this.putKey(id, ttlMs);
    });
  }

  private putKey(id: number, ttlMs: number): void {
    const enc = new TextEncoder();
    const command = { op: 'put' as const, key: enc.encode(`lease${this.index}`), value: enc.encode(`${id}`), lease: id };
    this.send({ kind: 'write', client: this.index, opId: this.opNext++, clientId: this.clientId, seq: ++this.seq, command }, () => this.scheduleRenewal(id, ttlMs));
  }

  private scheduleRenewal(id: number, ttlMs: number): void {
    this.sim.at(this.rand.int(Math.floor(ttlMs / 5), Math.floor(ttlMs / 4)), () => {
      if (!this.running()) return;
      if (this.rand.chance(ABANDON_PROBABILITY)) {
        // Stops renewing: the lease runs out; a new one once it must have.
        this.sim.at(ttlMs * 2 + this.rand.int(0, 200), () => this.grant());
        return;
      }
      const request: SimRequest = { kind: 'lease', client: this.index, opId: this.opNext++, op: 'keep-alive', id };
      this.send(request, (_reply, call) => {
        this.host.renewals.push({ holder: this.index, lease: id, ttlMs, call, return: this.sim.time });
        this.scheduleRenewal(id, ttlMs);
      });
    });
  }

  /** Sends `request` until it is answered (then `onOk`) or refused for good (then a new lease, later). */
  private send(request: SimRequest, onOk: (reply: SimReply & { ok: true }, call: number) => void): void {
    const o = this.sim.options;
    this.current = { opId: request.opId, request, call: this.sim.time, deadline: this.sim.time + Math.max(2000, o.clientTimeoutMs * o.clientAttemptsMax), timer: 0, done: false, onOk };
    this.attempt();
  }

  private attempt(): void {
    const cur = this.current!;
    const timer = ++cur.timer;
    this.host.sendRequest(this.target, cur.request);
    this.sim.at(this.sim.options.clientTimeoutMs, () => {
      if (cur.done || cur.timer !== timer) return;
      this.target = this.rand.pick(this.sim.members());
      if (this.sim.time >= cur.deadline) this.startOver(cur);
      else this.attempt();
    });
  }

  /** Gives up on the current request (its outcome unknown, or refused): a new session, and a new lease later. */
  private startOver(cur: NonNullable<LeaseHolder['current']>): void {
    cur.done = true;
    this.newSession();
    this.sim.at(this.rand.int(50, 300), () => this.grant());
  }

  onReply(reply: SimReply, from: number): void {
    void from;
    const cur = this.current;
    if (cur === undefined || cur.done || reply.opId !== cur.opId) return;
    if (reply.ok) {
      cur.done = true;
      cur.onOk(reply, cur.call);
      return;
    }
    if (reply.code === ErrorCode.LEASE_NOT_FOUND || reply.code === ErrorCode.SESSION_EXPIRED) {
      if (reply.code === ErrorCode.LEASE_NOT_FOUND) this.host.noteLeaseLost();
      this.startOver(cur);
      return;
    }
    cur.timer++;
    this.retryAfterRefusal(reply.leaderHint, () => {
      if (cur.done) return;
      if (this.sim.time >= cur.deadline) this.startOver(cur);
      else this.attempt();
    });
  }
}
