/**
 * Client sessions and client ids (src/cluster/client.ts): first with a fake host whose "node"
 * is a real KvStateMachine that keeps only a few sessions, so eviction is cheap to provoke;
 * then on real clusters.
 *
 * - A write takes its in-flight slot before its session, so sessions in use never outnumber
 *   the slots, and two waves of more writes than slots do not evict live sessions (the issue:
 *   130k concurrent puts, twice, failed with SESSION_EXPIRED on a healthy cluster).
 * - A write whose first attempt is answered 'expired' (it was never sent before, so it cannot
 *   have run) is retried under a fresh session; one whose earlier attempt may have reached
 *   the log is not (that could apply it twice).
 * - The pool keeps a bounded number of sessions; registrations are shared by concurrent
 *   callers and their errors reach every caller, typed.
 * - Client ids come from the replicated counter (register-clients): unique across two
 *   endpoints and across a restart of a cluster whose `client-ids` side file was deleted
 *   (the regression of the item 5: put a=second was acknowledged and lost).
 */

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SessionPool, type KvClientHost, type ReplyTarget } from '../../src/cluster/client.ts';
import { RequestBuffers } from '../../src/cluster/request-buffers.ts';
import { ClientEndpoint } from '../../src/cluster/endpoint.ts';
import { resolveOptions } from '../../src/cluster/options.ts';
import { connectEndpoint, ErrorCode, KvClient, RingraftError } from '../../src/index.ts';
import { decodeKvRequest, encodeKvRequest, isKvRegisterClientsRequest, isKvSessionRequest, KV_CLIENT_ID_REGISTERED_FIRST, KV_SESSIONS_MAX_DEFAULT, KvStateMachine } from '../../src/kv/index.ts';
import type { ClientReply, ClientRequest } from '../../src/runtime/index.ts';
import { afterTest, start, stopAfterEach, tempDir } from './helpers.ts';

stopAfterEach();

const text = new TextDecoder();

interface FakeHostOptions {
  /** In-flight slots. */
  readonly slots: number;
  /** Sessions the state machine keeps. */
  readonly sessionsMax: number;
  /** Sessions the client's pool keeps. */
  readonly keptMax: number;
  readonly idsPerRegistration?: number;
}

/**
 * A host whose one node applies every write at once to a real state machine and answers
 * the way NodeHost does (one turn of the event loop later, so calls overlap). `intercept`
 * may answer a request instead, without applying it.
 */
class FakeHost implements KvClientHost {
  isClosed = false;
  leaderGuess: number | undefined = 1;
  defaultTimeoutMs = 2_000;
  readonly sessions: SessionPool;
  readonly requestBuffers = new RequestBuffers();
  readonly machine: KvStateMachine;
  /** Session writes applied: their client id, seq and status. */
  readonly writes: { clientId: number; seq: number; status: string }[] = [];
  /** The count of each registration applied, in order. */
  readonly registrations: number[] = [];
  intercept: ((req: ClientRequest) => ClientReply | undefined) | undefined;
  private inFlight = 0;
  private readonly slotWaiters: ((granted: boolean) => void)[] = [];
  private requestIdNext = 1;

  constructor(private readonly options: FakeHostOptions) {
    this.machine = new KvStateMachine({ sessionsMax: options.sessionsMax });
    this.sessions = new SessionPool(options.keptMax, options.idsPerRegistration);
  }

  /** The distinct client ids of the session writes applied. */
  clientIds(): Set<number> {
    return new Set(this.writes.map((w) => w.clientId));
  }

  electionTimeoutMs(): number {
    return 10;
  }
  nodeIds(): number[] {
    return [1];
  }
  isAlive(): boolean {
    return true;
  }
  downReasons(): string {
    return '';
  }
  tryAcquireSlot(): boolean {
    if (this.inFlight >= this.options.slots || this.slotWaiters.length > 0) return false;
    this.inFlight++;
    return true;
  }
  acquireSlot(): Promise<boolean> {
    return new Promise((resolve) => this.slotWaiters.push(resolve));
  }
  releaseSlot(): void {
    const next = this.slotWaiters.shift();
    if (next !== undefined) next(true);
    else this.inFlight--;
  }
  attempt<C>(_nodeId: number, request: ClientRequest, _deadline: number, target: ReplyTarget<C>, context: C): void {
    // Numbered and copied now, as a host does: the caller reuses the request's memory once its call ends.
    const req = { ...request, requestId: this.requestIdNext++, ...(request.kind === 'write' ? { data: request.data.slice() } : {}) } as ClientRequest;
    setImmediate(() => target.onReply(this.serve(req), context));
  }
  openWatch(): number {
    throw new Error('no watches here');
  }
  closeWatch(): void {}

  private serve(req: ClientRequest): ClientReply {
    const intercepted = this.intercept?.(req);
    if (intercepted !== undefined) return intercepted;
    if (req.kind !== 'write') throw new Error(`the fake host serves writes, not ${req.kind}`);
    const decoded = decodeKvRequest(req.data);
    const index = this.machine.appliedIndex + 1;
    const outcome = this.machine.apply(index, req.data);
    if (isKvRegisterClientsRequest(decoded)) this.registrations.push(decoded.count);
    else if (isKvSessionRequest(decoded)) this.writes.push({ clientId: decoded.clientId, seq: decoded.seq, status: outcome.status });
    // As NodeHost's writeReply.
    if (outcome.result !== undefined) return { kind: 'write', requestId: req.requestId, result: outcome.result, index };
    const code = outcome.status === 'invalid' ? ErrorCode.INVALID_ARGUMENT : ErrorCode.SESSION_EXPIRED;
    return { kind: 'error', requestId: req.requestId, code, leaderHint: 0, proposed: true };
  }
}

/** Runs `count` puts at once; resolves to the error codes of those that failed. */
async function concurrentPuts(kv: KvClient, count: number, prefix: string): Promise<string[]> {
  const results = await Promise.allSettled(Array.from({ length: count }, (_, i) => kv.put(`${prefix}${i}`, 'v')));
  return results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as RingraftError).code ?? String(r.reason)] : []));
}

/** The client ids of the session writes `kv` sends from now on (registrations excluded). */
function recordClientIds(kv: KvClient): number[] {
  const host = (kv as unknown as { host: KvClientHost }).host;
  const ids: number[] = [];
  const original = host.attempt.bind(host);
  host.attempt = (nodeId, req, deadline, target, context) => {
    if (req.kind === 'write') {
      const decoded = decodeKvRequest(req.data);
      if (isKvSessionRequest(decoded)) ids.push(decoded.clientId);
    }
    original(nodeId, req, deadline, target, context);
  };
  return ids;
}

describe('sessions (fake host: a state machine that keeps few sessions)', () => {
  it('a write takes its in-flight slot before its session: sessions in use never outnumber the slots', async () => {
    const host = new FakeHost({ slots: 4, sessionsMax: 1000, keptMax: 1000 });
    const kv = new KvClient(host);
    expect(await concurrentPuts(kv, 40, 'k')).toEqual([]);
    expect(host.clientIds().size).toBeLessThanOrEqual(4);
    expect(host.sessions.keptCount).toBeLessThanOrEqual(4);
  });

  it('two waves of more concurrent puts than the state machine keeps sessions all succeed (the 130k-twice case, small)', async () => {
    // 40 puts per wave against 8 sessions kept: a session per put (taken before the slot)
    // would evict 32 live sessions, and the second wave would fail with SESSION_EXPIRED.
    const host = new FakeHost({ slots: 4, sessionsMax: 8, keptMax: 6 });
    const kv = new KvClient(host);
    expect(await concurrentPuts(kv, 40, 'a')).toEqual([]);
    expect(await concurrentPuts(kv, 40, 'b')).toEqual([]);
    expect(host.writes.filter((w) => w.status !== 'applied')).toEqual([]);
  });

  it("a kept session evicted while idle: its write's first attempt is answered 'expired' and is retried under a fresh session", async () => {
    const host = new FakeHost({ slots: 1, sessionsMax: 2, keptMax: 2 });
    const kv = new KvClient(host);
    await kv.put('a', '1');
    const [kept] = host.clientIds();
    // Two other clients write meanwhile; the state machine keeps two sessions, so the idle one goes.
    host.machine.apply(host.machine.appliedIndex + 1, encodePut(7, 'x'));
    host.machine.apply(host.machine.appliedIndex + 1, encodePut(8, 'y'));
    await kv.put('a', '2');
    expect(host.writes.map((w) => w.status)).toEqual(['applied', 'expired', 'applied']);
    // The retry went under a fresh id (seq 1), not under the evicted one.
    expect(host.writes[1]).toMatchObject({ clientId: kept, seq: 2 });
    expect(host.writes[2]!.clientId).not.toBe(kept);
    expect(host.writes[2]!.seq).toBe(1);
    expect(text.decode(host.machine.get(new TextEncoder().encode('a')))).toBe('2');
  });

  it("a write whose earlier attempt may have reached the log fails with SESSION_EXPIRED on 'expired' (a retry could apply it twice)", async () => {
    const host = new FakeHost({ slots: 1, sessionsMax: 2, keptMax: 2 });
    const kv = new KvClient(host);
    await kv.put('a', '1');
    host.machine.apply(host.machine.appliedIndex + 1, encodePut(7, 'x'));
    host.machine.apply(host.machine.appliedIndex + 1, encodePut(8, 'y'));
    // The first attempt times out at the node (it may be in the log); the second is answered 'expired'.
    let intercepted = 0;
    host.intercept = (req) => (intercepted++ === 0 ? { kind: 'error', requestId: req.requestId, code: ErrorCode.TIMEOUT, leaderHint: 0, proposed: true } : undefined);
    await expect(kv.put('a', '2')).rejects.toMatchObject({ code: ErrorCode.SESSION_EXPIRED });
    expect(host.writes.map((w) => w.status)).toEqual(['applied', 'expired']);
  });

  it('the pool keeps at most keptMax sessions; writes beyond it get one-off sessions', async () => {
    const host = new FakeHost({ slots: 20, sessionsMax: 1000, keptMax: 4 });
    const kv = new KvClient(host);
    expect(await concurrentPuts(kv, 20, 'a')).toEqual([]);
    expect(host.sessions.keptCount).toBe(4);
    expect(await concurrentPuts(kv, 20, 'b')).toEqual([]);
    expect(host.sessions.keptCount).toBe(4);
    // The four kept ones were reused (seq 2); the rest were one-off (seq 1).
    expect(host.writes.filter((w) => w.seq === 2)).toHaveLength(4);
  });

  it('concurrent callers share registrations: a burst costs one block, then one block big enough for all who waited', async () => {
    const host = new FakeHost({ slots: 100, sessionsMax: 1000, keptMax: 1000, idsPerRegistration: 16 });
    const kv = new KvClient(host);
    expect(await concurrentPuts(kv, 100, 'k')).toEqual([]);
    // 100 callers waited for the first block of 16; the 84 left over share a second of
    // 112 (100 rounded up to blocks of 16): two round trips, not one per caller or per 16.
    expect(host.registrations).toEqual([16, 112]);
    const ids = [...host.clientIds()];
    expect(ids).toHaveLength(100);
    for (const id of ids) expect(id).toBeGreaterThanOrEqual(KV_CLIENT_ID_REGISTERED_FIRST);
    // Later, quiet registrations are single blocks again.
    await Promise.all(Array.from({ length: 30 }, (_, i) => kv.put(`more${i}`, 'v')));
    expect(host.registrations.slice(2).every((count) => count === 16)).toBe(true);
  });

  it('a registration that runs out of its own time is made again while the callers have time left', async () => {
    const host = new FakeHost({ slots: 10, sessionsMax: 1000, keptMax: 1000 });
    const kv = new KvClient(host);
    // For its first 200 ms the node lets every registration attempt time out, so the first
    // registration (50 ms of its own) fails with TIMEOUT, well before the callers' 5 s.
    const slowUntil = performance.now() + 200;
    let refused = 0;
    host.intercept = (req) => {
      if (req.kind !== 'write' || !isKvRegisterClientsRequest(decodeKvRequest(req.data)) || performance.now() >= slowUntil) return undefined;
      refused++;
      return { kind: 'error', requestId: req.requestId, code: ErrorCode.TIMEOUT, leaderHint: 0, proposed: true };
    };
    host.defaultTimeoutMs = 50;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 5 }, (_, i) => kv.put(`k${i}`, 'v', { timeoutMs: 5_000 })));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150);
    expect(refused).toBeGreaterThan(1);
    expect(host.registrations).toHaveLength(1);
  });

  it('a failed registration fails every caller waiting for it with its typed error; the next call registers again', async () => {
    const host = new FakeHost({ slots: 10, sessionsMax: 1000, keptMax: 1000 });
    const kv = new KvClient(host);
    host.intercept = (req) => ({ kind: 'error', requestId: req.requestId, code: ErrorCode.CORRUPT_LOG, leaderHint: 0, proposed: true });
    const failures = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => kv.put(`k${i}`, 'v')));
    for (const f of failures) {
      expect(f.status).toBe('rejected');
      expect((f as PromiseRejectedResult).reason).toBeInstanceOf(RingraftError);
      expect((f as PromiseRejectedResult).reason).toMatchObject({ code: ErrorCode.CORRUPT_LOG });
    }
    host.intercept = undefined;
    await kv.put('k', 'v');
    expect(host.registrations).toHaveLength(1);
  });
});

describe('the endpoint\'s sessions against the state machine\'s', () => {
  // 130,000 concurrent puts, twice, ended in SESSION_EXPIRED when the endpoint kept fewer
  // sessions than it had writes in flight: every write past the kept ones took a one-off
  // session, and those evicted the kept ones from the state machine.
  it('an endpoint keeps a session for every write it may have in flight, and that is well below what the state machine keeps', () => {
    const liveness = { nodeIds: () => [], isAlive: () => false };
    for (const requestsInFlightMax of [1, 1000, resolveOptions({}).client.requestsInFlightMax]) {
      const endpoint = new ClientEndpoint({ requestTimeoutMs: 1000, electionTimeoutMs: 300, requestsInFlightMax }, liveness);
      expect(endpoint.sessions.keptMax).toBe(requestsInFlightMax);
    }
    const most = resolveOptions({}).client.requestsInFlightMax;
    expect(most).toBeLessThanOrEqual(KV_SESSIONS_MAX_DEFAULT * 0.7);
    expect(() => resolveOptions({ client: { requestsInFlightMax: most + 1 } })).toThrow(/client\.requestsInFlightMax must be an integer in \[1, 65536\]/);
  });
});

describe('SessionPool', () => {
  it('hands out ids of the block it registered, each once, and forgets failed sessions', async () => {
    const pool = new SessionPool(2, 3);
    expect(pool.take()).toBeUndefined();
    await pool.refill(async (count) => {
      expect(count).toBe(3);
      return 2 ** 40;
    });
    const a = pool.take()!;
    const b = pool.take()!;
    const c = pool.take()!;
    expect([a.clientId, b.clientId, c.clientId]).toEqual([2 ** 40, 2 ** 40 + 1, 2 ** 40 + 2]);
    expect([a.kept, b.kept, c.kept]).toEqual([true, true, false]);
    expect(pool.take()).toBeUndefined();
    pool.release(a);
    pool.discard(b);
    pool.release(c); // one-off: not kept
    expect(pool.keptCount).toBe(1);
    expect(pool.take()).toBe(a);
    expect(pool.takeFresh()).toBeUndefined();
  });
});

describe('client ids from the replicated counter (real clusters)', () => {
  it('are unique across two endpoints (this thread and a connected endpoint)', async () => {
    const cluster = await start();
    const main = cluster.client();
    const remote = connectEndpoint(await cluster.connectEndpoint());
    afterTest(() => remote.close());
    const other = remote.client();
    const mainIds = recordClientIds(main);
    const otherIds = recordClientIds(other);
    await Promise.all([
      Promise.all(Array.from({ length: 50 }, (_, i) => main.put(`m${i}`, 'v'))),
      Promise.all(Array.from({ length: 50 }, (_, i) => other.put(`o${i}`, 'v'))),
    ]);
    expect(mainIds.length).toBeGreaterThan(0);
    expect(otherIds.length).toBeGreaterThan(0);
    const mine = new Set(mainIds);
    for (const id of otherIds) expect(mine.has(id)).toBe(false);
    for (const id of [...mainIds, ...otherIds]) expect(id).toBeGreaterThanOrEqual(KV_CLIENT_ID_REGISTERED_FIRST);
    expect(text.decode(await other.get('m49'))).toBe('v');
  });

  it("survive a restart of a cluster whose client-ids file was deleted: put a=second is applied, not taken for a duplicate (issue item 5)", async () => {
    const dataDir = tempDir();
    const first = await start({ dataDir });
    const before = first.client();
    const idsBefore = recordClientIds(before);
    await before.put('a', 'first');
    await first.close();
    rmSync(join(dataDir, 'client-ids'), { force: true });

    const second = await start({ dataDir });
    const after = second.client();
    const idsAfter = recordClientIds(after);
    await after.put('a', 'second');
    expect(text.decode(await after.get('a'))).toBe('second');
    expect(idsBefore).toHaveLength(1);
    expect(idsAfter).toHaveLength(1);
    expect(idsAfter[0]).not.toBe(idsBefore[0]);
  });
});

/** A put of `key` by a client of its own (seq 1), as another process's client would write. */
function encodePut(clientId: number, key: string): Uint8Array {
  return encodeKvRequest({ clientId, seq: 1, command: { op: 'put', key: new TextEncoder().encode(key), value: Uint8Array.of() } });
}
