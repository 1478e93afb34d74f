/**
 * The key-value client of an embedded cluster. Every call finds the leader (following the
 * hints nodes give), retries with back-off after a leader change or a node going down, and
 * never applies a write twice: each write carries a session (client id, sequence number)
 * that the state machine deduplicates, and a retry reuses it.
 *
 * Every argument of every call is checked before anything is encoded or sent: a bad one is
 * refused with INVALID_ARGUMENT, naming the argument and its limit, and no node sees it.
 *
 * Sessions and their client ids belong to the endpoint, not to one client: see
 * {@link SessionPool}.
 */

import { performance } from 'node:perf_hooks';
import { ErrorCode, fail, invalidArgument, RingraftError } from '../base/index.ts';
import { NotLeaderError } from '../core/index.ts';
import {
  encodedKvPutBytes,
  encodedKvRequestBytes,
  encodeKvRequest,
  KV_KEY_BYTES_MAX,
  KV_LEASE_TTL_MS_MAX,
  KV_LEASE_TTL_MS_MIN,
  KV_REGISTER_CLIENTS_COUNT_MAX,
  decodeAppOutcome,
  decodeTxnResult,
  KV_APP_COMMAND_BYTES_MAX,
  KvError,
  type KvCommand,
  type KvRangeEntry,
  type KvRangeResult,
  type KvTxnResult,
  checkRedisCommand,
  KV_REDIS_COMMANDS_MAX,
  setKvRequestSession,
  validateKvRequest,
  writeKvPut,
  writeKvRequest,
} from '../kv/index.ts';
import { QUERY_BYTES_MAX, type AsciiKey, type ClientReply, type ClientRequest, type LeaseOp, type OutgoingRequest, type ReadConsistency, type WireConsistency } from '../runtime/index.ts';
import { REQUESTS_IN_FLIGHT_MAX } from './options.ts';
import type { RequestBuffers } from './request-buffers.ts';
import { acquire, observe, type Election, type Leader, type LockHandle, type LockOptions } from './recipes.ts';
import { bytesWithin, CALL_TIMEOUT_MS_MAX, checkCallOptions, checkLeaseId, checkOptionsObject, checkReadOptions, checkSignal, deleteRangeBoundsOf, keyBytes, rangeQueryOf, outgoingKey, shown, txnOf, valueBytes, type TxnSpec } from './client-args.ts';

export { CALL_TIMEOUT_MS_MAX };
export type { Election, Leader, LockHandle, LockOptions } from './recipes.ts';
export type { TxnCompareSpec, TxnOpSpec, TxnSpec } from './client-args.ts';

/** Keys and values are bytes; strings are taken as UTF-8 (and must be well-formed UTF-16). */
export type Bytes = Uint8Array | string;

/** What every call of a {@link KvClient} takes. */
export interface CallOptions {
  /** Aborts the call: it rejects with ABORTED (a write already sent may still take effect). */
  readonly signal?: AbortSignal;
  /** In ms. Default: the cluster's requestTimeoutMs. At most `CALL_TIMEOUT_MS_MAX` (2^31 - 1, about 24.8 days). */
  readonly timeoutMs?: number;
  /**
   * Send to this node only, without leader routing: a refusal (NOT_LEADER, NODE_DOWN, ...)
   * is thrown instead of retried elsewhere. For diagnostics and tests of one node.
   */
  readonly nodeId?: number;
}

/** The options of {@link KvClient.put}. */
export interface PutOptions extends CallOptions {
  /** Attach the key to this lease (granted by {@link KvClient.grantLease}): it is deleted when the lease ends. Without it, the key has none. */
  readonly lease?: number;
}

/** A lease as the leader's clock has it. */
export interface LeaseStatus {
  /** The lease's id, as granted. */
  readonly id: number;
  /** The TTL it was granted with. */
  readonly ttlMs: number;
  /** Until it runs out unless renewed, by the leader's clock (a full TTL right after a keep-alive). */
  readonly remainingMs: number;
  /** Keys attached to it. */
  readonly keys: number;
}

/** The options of {@link KvClient.keepLeaseAlive}. */
export interface KeepAliveOptions {
  /** Stops the renewals: the promise then resolves. */
  readonly signal?: AbortSignal;
  /** Between renewals; default a third of the TTL. */
  readonly intervalMs?: number;
}

/** The options of a read: {@link KvClient.get}, `getEntry` and `query`; `range` takes {@link RangeOptions}, which add to them. */
export interface GetOptions extends CallOptions {
  /** 'linearizable' (default): ReadIndex; 'lease': the leader's lease; 'stale': any node's state. */
  readonly consistency?: ReadConsistency;
  /**
   * 'leader' (default): a linearizable read is served by the leader. 'any': by whichever node
   * the client picks, a follower asking the leader only for a read index and answering from
   * its own state once it has applied that far; still linearizable, and it takes the work of
   * serving reads off the leader's thread.
   */
  readonly readFrom?: 'leader' | 'any';
}

/** Which keys a range read covers: a prefix (empty: every key), or [start, end). */
export type RangeSpec = {
  /** Every key that starts with these bytes (empty: every key). */
  readonly prefix: Bytes
} | {
  /** The range's first key (inclusive); left out: from the first key. */
  readonly start?: Bytes;
  /** The key the range stops before (exclusive); left out: to the last key. */
  readonly end?: Bytes
};

/** The options of {@link KvClient.range}: a read's, and what a page holds. */
export interface RangeOptions extends GetOptions {
  /** Entries at most in the reply, 1 to KV_RANGE_ENTRIES_MAX (the default). */
  readonly limit?: number;
  /** Entries without values. */
  readonly keysOnly?: boolean;
  /** No entries: only `count`. */
  readonly countOnly?: boolean;
  /** From the range's last key down. */
  readonly reverse?: boolean;
}

/** The options of {@link KvClient.watch}. */
export interface WatchOptions {
  /** Ends the watch: the events already buffered are delivered, then the iteration rejects with ABORTED. */
  readonly signal?: AbortSignal;
  /** Report changes after this log index (default: from the time the watch starts). */
  readonly afterIndex?: number;
}

/** One committed change a watch reports. */
export interface WatchEvent {
  /** `put`: the key was set; `delete`: it was deleted. */
  readonly type: 'put' | 'delete';
  /** The log index of the change's entry; never decreasing along a watch. */
  readonly index: number;
  /** The change's position within its entry (one entry may carry a batch of writes); (index, position) strictly increases. */
  readonly position: number;
  /** The key changed. */
  readonly key: Uint8Array;
  /** The new value; undefined for a delete. */
  readonly value: Uint8Array | undefined;
  /** The log index that created the key, as of the change (its modIndex is `index`); 0 for a delete. */
  readonly createIndex: number;
  /** The key's version after the change (1: this change created it); 0 for a delete. */
  readonly version: number;
}

/** What a client needs from its cluster. */
export interface KvClientHost {
  readonly isClosed: boolean;
  leaderGuess: number | undefined;
  readonly defaultTimeoutMs: number;
  /** The sessions every client of this host shares, and the client ids they are made from. */
  readonly sessions: SessionPool;
  electionTimeoutMs(): number;
  nodeIds(): number[];
  isAlive(id: number): boolean;
  /** Why nodes are down ('' if none is down by no one's choice): a timeout says it, so callers learn of a full disk. */
  downReasons(): string;
  tryAcquireSlot(): boolean;
  /** Waits for a slot until `deadline` (a performance.now() time) or the signal; false if none came. */
  acquireSlot(deadline: number, signal: AbortSignal | undefined): Promise<boolean>;
  releaseSlot(): void;
  /** Memory for encoded writes, shared by every client of this host. */
  readonly requestBuffers: RequestBuffers;
  /**
   * Sends one attempt of `request` to node `nodeId` (its requestId is ignored: the host
   * numbers each attempt) and calls `target.onReply` once, never before this returns, with
   * its reply or a synthetic error: TIMEOUT when `deadline` (a performance.now() time)
   * passes first, NODE_DOWN when the node is or goes down, CLOSED when the host closes.
   * The host copies the request's bytes before this returns, or keeps a copy of its own
   * while it queues them: the caller may reuse that memory once its call ends. `context`
   * goes back with the reply, so that one target serves every call. If it throws, it keeps
   * nothing of the attempt and never calls `target`.
   */
  attempt<C>(nodeId: number, request: OutgoingRequest, deadline: number, target: ReplyTarget<C>, context: C): void;
  openWatch(nodeId: number, prefix: Uint8Array, afterIndex: number | undefined, onReply: (r: ClientReply) => void): number;
  closeWatch(requestId: number): void;
}

/** Where a host delivers the reply to one attempt, with the context the attempt was made with. */
export interface ReplyTarget<C> {
  onReply(reply: ClientReply, context: C): void;
}

/** A write's request, encoded once for all its attempts (its requestId is the host's to set). */
type WriteRequest = ClientRequest & { readonly kind: 'write' };

/** The first attempt of a call and its answer, for the loop that goes on from it (see {@link KvClient.attempts}). */
interface FirstAttempt {
  readonly target: number;
  readonly reply: ClientReply;
}

/** One client session. */
export interface Session {
  readonly clientId: number;
  /** The last sequence number used; the next write takes seq + 1. */
  seq: number;
  /** Counted in its pool's kept sessions and reused after a success; false: used for one write only. */
  readonly kept: boolean;
}

/** Events a watch buffers for a consumer that does not keep up, before it is cut off. */
export const WATCH_BUFFER_MAX = 65_536;
/**
 * Client ids one registration takes, at least: one round trip through the log per this many
 * new sessions (more after a burst: see SessionPool.refill).
 */
export const CLIENT_IDS_PER_REGISTRATION = 4096;
/** The most sessions one endpoint keeps for reuse: one per write it may have in flight (see {@link SessionPool}). */
export const SESSIONS_KEPT_MAX = REQUESTS_IN_FLIGHT_MAX;
/** One attempt at one node waits at least this long before the call tries another node. */
const ATTEMPT_TIMEOUT_MS_MIN = 250;


/**
 * The client sessions of one endpoint, shared by all its clients, and the registered client
 * ids new sessions are made from.
 *
 * A session allows one write in flight (the state machine remembers only the latest
 * sequence number of each client id), so every concurrent write has its own. A write takes
 * its in-flight slot first and its session second, so the sessions in use never outnumber
 * the endpoint's requestsInFlightMax.
 *
 * Client ids are registered through the log (the Raft thesis's RegisterClient, §6.3): a
 * register-clients request, answered with the first of a block of ids (idsPerRegistration,
 * or more after a burst) that the state machine's counter has never handed out. Nothing
 * about ids is kept outside the replicated state, so no process can reuse one, and 2^53 of
 * them do not run out.
 *
 * Why sessions kept are bounded: the state machine keeps KV_SESSIONS_MAX_DEFAULT sessions
 * and evicts the least recently written one. A session kept here for reuse must still be
 * there when it is next used, or that write is answered 'expired'. The endpoint keeps
 * `keptMax` = its requestsInFlightMax sessions (at most SESSIONS_KEPT_MAX, well below what
 * the state machine keeps), so every write in flight has a kept session and no burst makes
 * new ones: 130,000 concurrent puts from one client, twice, use the same 65,536 sessions. A
 * write that finds none idle while `keptMax` are kept (a smaller pool in tests) gets a
 * one-off session on a fresh id, not kept after its write.
 *
 * Remaining limit: nothing bounds the sessions of all endpoints and processes together, so
 * enough one-off sessions, endpoints or other writers between two uses of a kept session can
 * still evict it. Its next write is then answered 'expired' on its first attempt, which
 * cannot have run, and KvClient retries it once under a fresh session: the caller sees no
 * error. What remains is the state machine's own gap (a seq 1 retried after its session was
 * evicted, see KvStateMachine) and SESSION_EXPIRED for a write whose earlier attempt may have
 * reached a log before its session was evicted: that one cannot be retried safely.
 */
export class SessionPool {
  /** Idle kept sessions; the most recently used last, taken first (least likely to be evicted). */
  private readonly idle: Session[] = [];
  /** Kept sessions, idle or in use. Invariant: idle.length <= keptValue <= keptMax. */
  private keptValue = 0;
  /** Registered ids not handed out yet: [clientIdNext, clientIdEnd). */
  private clientIdNext = 0;
  private clientIdEnd = 0;
  /** The registration under way; every caller that needs ids meanwhile waits for it. */
  private registration: Promise<void> | undefined;
  /** Callers of refill() that wait for the registration under way. */
  private joiners = 0;
  /** Ids the next registration asks for. Invariant: idsPerRegistration <= idsWanted <= KV_REGISTER_CLIENTS_COUNT_MAX. */
  private idsWanted: number;

  constructor(
    readonly keptMax: number = SESSIONS_KEPT_MAX,
    readonly idsPerRegistration: number = CLIENT_IDS_PER_REGISTRATION,
  ) {
    if (!(Number.isSafeInteger(keptMax) && keptMax >= 0)) fail(`keptMax ${keptMax} is an integer >= 0`);
    if (!(Number.isSafeInteger(idsPerRegistration) && idsPerRegistration >= 1 && idsPerRegistration <= KV_REGISTER_CLIENTS_COUNT_MAX)) {
      fail(`idsPerRegistration ${idsPerRegistration} is an integer in [1, ${KV_REGISTER_CLIENTS_COUNT_MAX}]`);
    }
    this.idsWanted = idsPerRegistration;
  }

  /** Sessions kept, idle or in use. */
  get keptCount(): number {
    return this.keptValue;
  }

  /** An idle session, else a new one; undefined when that needs an id and none is at hand (see {@link refill}). */
  take(): Session | undefined {
    return this.idle.pop() ?? this.takeFresh();
  }

  /** A new session on a fresh id, never an idle one; undefined when no id is at hand. */
  takeFresh(): Session | undefined {
    if (this.clientIdNext >= this.clientIdEnd) return undefined;
    const kept = this.keptValue < this.keptMax;
    if (kept) this.keptValue++;
    return { clientId: this.clientIdNext++, seq: 0, kept };
  }

  /** Takes back a session whose last write succeeded: the state machine's last seq for it is `seq`. */
  release(session: Session): void {
    if (session.kept) this.idle.push(session);
  }

  /**
   * Forgets a session whose last write failed: it may or may not have reached a log (or
   * never left), so neither a next seq (possibly refused as expired) nor a retry of this
   * one (possibly applied twice) is safe.
   */
  discard(session: Session): void {
    if (!session.kept) return;
    if (this.keptValue <= 0) fail('a kept session is counted');
    this.keptValue--;
  }

  /**
   * Resolves once a new block of ids is at hand. Starts a registration with `register`
   * (which resolves to the first id of `count` registered ids) unless one is under way:
   * concurrent callers share one round trip, and its failure is theirs.
   *
   * A block is idsPerRegistration ids, or, when more callers than that waited for the last
   * one, enough for all of them (up to KV_REGISTER_CLIENTS_COUNT_MAX): a burst of 60,000
   * new sessions then costs two round trips through the log, not fifteen in a row.
   */
  refill(register: (count: number) => Promise<number>): Promise<void> {
    if (this.registration === undefined) {
      const count = this.idsWanted;
      this.joiners = 0;
      this.registration = register(count).then(
        (first) => {
          this.registration = undefined;
          if (!(Number.isSafeInteger(first) && first >= 1 && first + count - 1 <= Number.MAX_SAFE_INTEGER)) {
            fail(`registered block at ${first} is safe integers >= 1`);
          }
          this.clientIdNext = first;
          this.clientIdEnd = first + count;
          const blocks = Math.ceil(this.joiners / this.idsPerRegistration);
          this.idsWanted = Math.min(KV_REGISTER_CLIENTS_COUNT_MAX, Math.max(1, blocks) * this.idsPerRegistration);
        },
        (error: unknown) => {
          this.registration = undefined;
          throw error;
        },
      );
    }
    this.joiners++;
    return this.registration;
  }
}

/**
 * A key-value client of a cluster. Every call finds the leader and retries after a leader
 * change or a node going down; a write carries a session, so that no retry applies it twice.
 * A bad argument is refused with INVALID_ARGUMENT before anything is sent.
 */
export class KvClient {
  /** A client that sends through `host`. Get one from {@link Cluster.client}, `RemoteEndpoint.client()` or {@link connect} instead. */
  constructor(private readonly host: KvClientHost) {}

  /** Sets `key` to `value`, exactly once; resolves once the cluster has applied the write. */
  put(key: Bytes, value: Bytes, options?: PutOptions): Promise<void> {
    let request: WriteRequest;
    try {
      checkCallOptions(options, this.host);
      const lease = options?.lease;
      if (lease !== undefined) checkLeaseId(lease, 'lease');
      // The key as it goes out (a short ASCII string as it is): encoded here with no command object.
      request = encodePut(outgoingKey(key), valueBytes(value, 'value'), lease, this.host.requestBuffers);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.writeEncoded(request, options, putDone);
  }

  /**
   * Grants a lease of `ttlMs` (KV_LEASE_TTL_MS_MIN to KV_LEASE_TTL_MS_MAX): keys put with it are
   * deleted, through the log, when it is revoked or when the leader's clock sees a whole TTL
   * pass without a keep-alive. A new leader gives every lease a full TTL afresh. Resolves to
   * its id (never reused) and TTL.
   */
  async grantLease(ttlMs: number, options?: CallOptions): Promise<{
    /** The new lease's id (never reused): put keys with it as `lease`. */
    readonly id: number;
    /** The TTL granted, in ms. */
    readonly ttlMs: number
  }> {
    checkCallOptions(options, this.host);
    if (!(typeof ttlMs === 'number' && Number.isInteger(ttlMs) && ttlMs >= KV_LEASE_TTL_MS_MIN && ttlMs <= KV_LEASE_TTL_MS_MAX)) {
      throw invalidArgument(`ttlMs must be an integer in [KV_LEASE_TTL_MS_MIN = ${KV_LEASE_TTL_MS_MIN}, KV_LEASE_TTL_MS_MAX = ${KV_LEASE_TTL_MS_MAX}], got ${shown(ttlMs)}`);
    }
    const result = (await this.write({ op: 'lease-grant', ttlMs }, options, writeReply)).result;
    if (result.op !== 'lease-grant') fail(`a lease grant answered with ${result.op}`);
    return { id: result.id, ttlMs: result.ttlMs };
  }

  /** Ends lease `id` and deletes its keys, exactly once. Resolves to how many keys it deleted; rejects with LEASE_NOT_FOUND if it did not exist (any more). */
  async revokeLease(id: number, options?: CallOptions): Promise<number> {
    checkCallOptions(options, this.host);
    checkLeaseId(id, 'lease id');
    const result = (await this.write({ op: 'lease-revoke', id }, options, writeReply)).result;
    if (result.op !== 'lease-revoke') fail(`a lease revoke answered with ${result.op}`);
    if (!result.found) throw new RingraftError(ErrorCode.LEASE_NOT_FOUND, `lease ${id} does not exist: never granted, revoked, or expired`);
    return result.deleted;
  }

  /**
   * Renews lease `id` for a full TTL from now, at the leader (after it confirms it still leads).
   * Rejects with LEASE_NOT_FOUND if the lease ended: its keys are gone or going.
   */
  async keepAlive(id: number, options?: CallOptions): Promise<LeaseStatus> {
    return this.leaseRequest('keep-alive', id, options);
  }

  /** Lease `id`'s TTL, the time it has left by the leader's clock, and its keys; LEASE_NOT_FOUND if it ended. */
  async leaseTimeToLive(id: number, options?: CallOptions): Promise<LeaseStatus> {
    return this.leaseRequest('time-to-live', id, options);
  }

  /**
   * Renews lease `id` every `intervalMs` (default a third of its TTL) until `signal` aborts,
   * then resolves. Rejects with LEASE_NOT_FOUND once the lease has ended, or with the last
   * error if no renewal succeeded for a whole TTL (the lease may have run out meanwhile).
   */
  async keepLeaseAlive(id: number, options?: KeepAliveOptions): Promise<void> {
    checkOptionsObject(options);
    checkSignal(options?.signal);
    checkLeaseId(id, 'lease id');
    const intervalMs = options?.intervalMs;
    if (intervalMs !== undefined && !(typeof intervalMs === 'number' && intervalMs > 0 && intervalMs <= CALL_TIMEOUT_MS_MAX)) throw invalidArgument(`intervalMs must be a number of milliseconds in (0, ${CALL_TIMEOUT_MS_MAX}], got ${shown(intervalMs)}`);
    const signal = options?.signal;
    /** A call, not a field read: the compiler would take `aborted` for unchanged within the loop. */
    const aborted = (): boolean => signal?.aborted === true;
    let renewed = performance.now();
    let ttlMs: number | undefined;
    while (!aborted()) {
      try {
        const s = await this.keepAlive(id, { ...(signal === undefined ? {} : { signal }), ...(ttlMs === undefined ? {} : { timeoutMs: ttlMs }) });
        ttlMs = s.ttlMs;
        renewed = performance.now();
      } catch (error) {
        if (aborted()) return;
        if (error instanceof RingraftError && error.code === ErrorCode.LEASE_NOT_FOUND) throw error;
        if (ttlMs === undefined || performance.now() - renewed >= ttlMs) throw error;
      }
      await sleepUnless(Math.min(intervalMs ?? (ttlMs ?? 3000) / 3, CALL_TIMEOUT_MS_MAX), signal);
    }
  }

  /**
   * Acquires lock `name`: resolves once this caller holds it, with a fencing token that only
   * grows from holder to holder. Waiters are served in the order they asked, each watching only
   * the one before it. The lock lives on a lease kept alive meanwhile: a holder that stops
   * renewing loses it a TTL (`ttlMs`, default 10 s) after its last renewal, never before, and
   * learns so from `lost`. See cluster/recipes.ts.
   */
  async lock(name: string, options?: LockOptions): Promise<LockHandle> {
    return acquire(this, name, '', options);
  }

  /**
   * Campaigns in election `name` with `value`: resolves once elected (the earliest live
   * candidate leads), with `resign()`; as {@link lock}, a leader that stops renewing loses
   * office a TTL later.
   */
  async elect(name: string, value: Bytes, options?: LockOptions): Promise<Election> {
    const handle = await acquire(this, name, value, options);
    return { ...handle, resign: handle.release, observe: (signal) => observe(this, name, signal) };
  }

  /** The leaders of election `name` as they change (undefined while nobody leads), until `signal` aborts. */
  observeElection(name: string, options?: { readonly signal?: AbortSignal }): AsyncGenerator<Leader | undefined> {
    return observe(this, name, options?.signal);
  }

  private async leaseRequest(op: LeaseOp, id: number, options: CallOptions | undefined): Promise<LeaseStatus> {
    checkCallOptions(options, this.host);
    checkLeaseId(id, 'lease id');
    const reply = await this.read({ kind: 'lease', requestId: 0, op, id }, 'linearizable', options, anyReply);
    if (reply?.kind !== 'lease') fail(`a lease request answered with ${reply?.kind}`);
    return { id: reply.id, ttlMs: reply.ttlMs, remainingMs: reply.remainingMs, keys: reply.keys };
  }

  /** Resolves to whether the key existed. */
  async delete(key: Bytes, options?: CallOptions): Promise<boolean> {
    checkCallOptions(options, this.host);
    const result = (await this.write({ op: 'delete', key: keyBytes(key) }, options, writeReply)).result;
    return result.op === 'delete' && result.existed;
  }

  /**
   * Deletes every key of a range in one log entry, exactly once: `{ prefix }` (empty: every
   * key) or `{ start, end }` (`end` exclusive; either left out for no bound). Resolves to how
   * many keys it deleted; a watch sees one delete per key, in byte order. The nodes apply it
   * in one step, so a range of millions of keys holds up every replica while it runs.
   */
  async deleteRange(spec: RangeSpec, options?: CallOptions): Promise<number> {
    checkCallOptions(options, this.host);
    const { start, end } = deleteRangeBoundsOf(spec);
    const result = (await this.write({ op: 'delete-range', key: start, end }, options, writeReply)).result;
    if (result.op !== 'delete-range') fail(`a delete-range answered with ${result.op}`);
    return result.deleted;
  }

  /** Sets `key` to `next` if it holds `expected` (undefined: if it is absent). Resolves to whether it did. */
  async cas(key: Bytes, expected: Bytes | undefined, next: Bytes, options?: CallOptions): Promise<boolean> {
    checkCallOptions(options, this.host);
    const command: KvCommand = {
      op: 'cas',
      key: keyBytes(key),
      expected: expected === undefined ? undefined : valueBytes(expected, 'expected'),
      value: valueBytes(next, 'next'),
    };
    const result = (await this.write(command, options, writeReply)).result;
    return result.op === 'cas' && result.swapped;
  }

  /**
   * A transaction: when every compare of `if` holds (none: it holds), the operations of
   * `then` run, else those of `else`, in order, in one log entry, exactly once. Resolves to
   * whether the compares held, each operation's result, and the log index it applied at.
   *
   * - A compare reads a key's `value` (bytes, in byte order: every compare on the value of an
   *   absent key is false), or its `version`, `createIndex` or `modIndex` (0 when absent:
   *   `{ target: 'version', op: '=', value: 0 }` means "absent"), with `=`, `!=`, `<`, `>`.
   * - Operations: `put`, `delete`, `deleteRange` and `range` (`{ prefix }` or `{ start, end }`),
   *   `get`. A read sees the writes before it in its list.
   * - At most KV_TXN_COMPARES_MAX compares and KV_TXN_OPS_MAX operations a list. Reads share
   *   KV_TXN_READ_BYTES_MAX bytes past the first one's result: a range past it has `more`, a
   *   get past it has `truncated` (read on with `range` and `get`).
   *
   * `cas(key, expected, next)` is the transaction `{ if: [{ key, target: 'value', op: '=',
   * value: expected }], then: [{ op: 'put', key, value: next }] }` (expected undefined:
   * `target: 'version', value: 0`), kept as its own smaller request.
   */
  async txn(spec: TxnSpec, options?: CallOptions): Promise<KvTxnResult & {
    /** The log index the transaction applied at. */
    readonly index: number
  }> {
    checkCallOptions(options, this.host);
    const { result, index } = await this.write({ op: 'txn', txn: txnOf(spec) }, options, writeReply);
    if (result.op !== 'txn') fail(`a transaction answered with ${result.op}`);
    let decoded: KvTxnResult;
    try {
      decoded = decodeTxnResult(result.encoded);
    } catch (error) {
      throw new RingraftError(ErrorCode.DECODE_ERROR, `a transaction's result does not decode: ${(error as Error).message}`, { cause: error });
    }
    return { ...decoded, index };
  }

  /**
   * Proposes `command` to the cluster's own state machine (`stateMachine` of createCluster):
   * resolves, once it has applied, to what its `apply` returned (empty for nothing). Applied
   * exactly once however often the call is retried, like every write. What `apply` threw is
   * APPLY_FAILED with its message, on every replica alike; a cluster without a state machine of
   * its own answers APPLY_FAILED too.
   */
  async propose(command: Uint8Array, options?: CallOptions): Promise<Uint8Array> {
    checkCallOptions(options, this.host);
    if (!(command instanceof Uint8Array)) throw invalidArgument(`a command is a Uint8Array, got ${shown(command)}`);
    if (command.length > KV_APP_COMMAND_BYTES_MAX) throw invalidArgument(`a command of ${command.length} bytes is over KV_APP_COMMAND_BYTES_MAX (${KV_APP_COMMAND_BYTES_MAX})`);
    const { result } = await this.write({ op: 'app', data: command }, options, writeReply);
    if (result.op !== 'app') fail(`a state machine command answered with ${result.op}`);
    return appResult(result.encoded, true);
  }

  /**
   * Asks the cluster's own state machine `request` (its `query`), at a consistency as for
   * {@link get} (linearizable by default): resolves to what `query` returned. What it threw is
   * APPLY_FAILED with its message.
   */
  async query(request: Uint8Array, options?: GetOptions): Promise<Uint8Array> {
    const consistency = checkReadOptions(options, this.host);
    if (!(request instanceof Uint8Array)) throw invalidArgument(`a query is a Uint8Array, got ${shown(request)}`);
    if (request.length > QUERY_BYTES_MAX) throw invalidArgument(`a query of ${request.length} bytes is over QUERY_BYTES_MAX (${QUERY_BYTES_MAX})`);
    const encoded = await this.read({ kind: 'query', requestId: 0, consistency, data: request }, consistency, options, readValue);
    if (encoded === undefined) fail('a query answered with no outcome');
    return appResult(encoded, false);
  }

  /**
   * Runs Redis commands that write (kv/redis.ts; what a RESP port sends): one command, or a
   * MULTI/EXEC's (`transaction`), applied together in one log entry, exactly once however
   * often the call is retried. Resolves to the reply as RESP2 bytes (an array of each
   * command's for a transaction); a command the store refuses is an error reply, not a
   * rejection.
   *
   * @experimental
   */
  async redis(commands: readonly (readonly Uint8Array[])[], transaction: boolean, options?: CallOptions): Promise<Uint8Array> {
    checkCallOptions(options, this.host);
    // Checked as it is encoded (INVALID_ARGUMENT: too many commands or bytes).
    const command: KvCommand = { op: 'redis', commands: commands.map((words) => [...words]), transaction };
    const { result } = await this.write(command, options, writeReply);
    if (result.op !== 'redis') fail(`a Redis command answered with ${result.op}`);
    return result.encoded;
  }

  /**
   * Runs Redis commands that only read (kv/redis.ts), one after another on one state, at a
   * consistency as for {@link get} (linearizable by default): resolves to their replies as
   * RESP2 bytes, one after another. A command that writes, or one the store does not run, is
   * refused with INVALID_ARGUMENT, as are more than KV_REDIS_COMMANDS_MAX commands or
   * QUERY_BYTES_MAX bytes.
   *
   * @experimental
   */
  async redisRead(commands: readonly (readonly Uint8Array[])[], options?: GetOptions): Promise<Uint8Array> {
    const consistency = checkReadOptions(options, this.host);
    if (commands.length === 0 || commands.length > KV_REDIS_COMMANDS_MAX) throw invalidArgument(`redisRead runs 1 to ${KV_REDIS_COMMANDS_MAX} commands`);
    let bytes = 0;
    for (const command of commands) {
      const checked = checkRedisCommand(command);
      if (!('kind' in checked && checked.kind === 'read')) throw invalidArgument('redisRead runs Redis commands that only read');
      for (const word of command) bytes += word.length;
    }
    if (bytes > QUERY_BYTES_MAX) throw invalidArgument(`a Redis read of ${bytes} bytes is over QUERY_BYTES_MAX (${QUERY_BYTES_MAX})`);
    const reply = await this.read({ kind: 'redis', requestId: 0, consistency, commands }, consistency, options, readValue);
    if (reply === undefined) fail('a Redis read answered with no reply');
    return reply;
  }

  /** The value of `key`, or undefined. */
  get(key: Bytes, options?: GetOptions): Promise<Uint8Array | undefined> {
    let request: OutgoingRequest;
    let consistency: WireConsistency;
    try {
      consistency = checkReadOptions(options, this.host);
      request = { kind: 'read', requestId: 0, consistency, key: outgoingKey(key) };
    } catch (error) {
      return Promise.reject(error);
    }
    return this.read(request, consistency, options, readValue);
  }

  /**
   * The value of `key` with its revisions (`createIndex`, `modIndex`, `version`) and the
   * index of the state read; undefined if the key is absent. A range read of that one key,
   * so the same consistency options as {@link get}.
   */
  async getEntry(key: Bytes, options?: GetOptions): Promise<(KvRangeEntry & {
    /** The key's value. */
    readonly value: Uint8Array;
    /** The log index of the state read. */
    readonly index: number
  }) | undefined> {
    const k = keyBytes(key);
    const end = new Uint8Array(k.length + 1);
    end.set(k);
    const r = await this.range({ start: k, end }, { ...options, limit: 1 });
    const e = r.entries[0];
    return e === undefined ? undefined : { ...e, value: e.value!, index: r.index };
  }

  /**
   * The keys of a range in byte order, with their values and revisions: `{ prefix }` (empty:
   * every key) or `{ start, end }` (`end` exclusive, either left out for no bound). A page
   * holds at most `limit` entries (default and most {@link KV_RANGE_ENTRIES_MAX}) and 1 MiB;
   * `more` says whether keys are left, and the next page starts at the last key plus a zero
   * byte (with `reverse`: ends at the last key). `count` is the number of keys in the whole
   * range, `index` the log index of the state read. Consistency as for {@link get}.
   */
  async range(spec: RangeSpec, options?: RangeOptions): Promise<KvRangeResult> {
    const consistency = checkReadOptions(options, this.host);
    const query = rangeQueryOf(spec, options);
    const reply = await this.read({ kind: 'range', requestId: 0, consistency, query }, consistency, options, anyReply);
    if (reply?.kind !== 'range') fail(`a range read answered with ${reply?.kind}`);
    return reply.result;
  }

  /**
   * Runs a read whose arguments are checked: slot, then attempts (at the leader unless
   * stale or a follower read); resolves to `done(reply)`.
   */
  private read<T>(request: OutgoingRequest, consistency: WireConsistency, options: CallOptions | undefined, done: (reply: ClientReply) => T): Promise<T> {
    const timeoutMs = options?.timeoutMs ?? this.host.defaultTimeoutMs;
    const now = performance.now();
    const deadline = now + timeoutMs;
    const signal = options?.signal;
    if (signal?.aborted === true) return Promise.reject(abortedError(signal));
    const call = new Call(request, options?.nodeId, signal, deadline, timeoutMs, consistency !== 'stale' && consistency !== 'follower', consistency === 'follower', undefined, done);
    if (this.host.tryAcquireSlot()) return this.start(call, now);
    return this.waitForSlot(deadline, timeoutMs, signal).then(() => this.start(call));
  }

  /** Committed changes to keys under `prefix` (empty: every key), in log order, each once. */
  watch(prefix: Bytes, options?: WatchOptions): AsyncIterableIterator<WatchEvent> {
    checkOptionsObject(options);
    checkSignal(options?.signal);
    const afterIndex = options?.afterIndex;
    if (afterIndex !== undefined && !(Number.isSafeInteger(afterIndex) && afterIndex >= 0)) {
      throw invalidArgument(`afterIndex must be an integer in [0, 2^53 - 1], got ${shown(afterIndex)}`);
    }
    const p = bytesWithin(prefix, 'prefix', 0, KV_KEY_BYTES_MAX, 'KV_KEY_BYTES_MAX');
    if (this.host.isClosed) throw new RingraftError(ErrorCode.CLOSED, 'the cluster is closed');
    return new Watcher(this.host, p, afterIndex, options?.signal);
  }

  // ─── Internals ──────────────────────────────────────────────────────────────────

  /** Runs a write whose arguments are checked: slot, then session, then attempts; resolves to `done(reply)`. */
  private write<T>(command: KvCommand, options: CallOptions | undefined, done: (reply: ClientReply & { readonly kind: 'write' }) => T): Promise<T> {
    // Encoded now: what is written is the caller's bytes as they are when the call starts.
    let request: WriteRequest;
    try {
      request = encodeWrite(command, this.host.requestBuffers);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.writeEncoded(request, options, done);
  }

  /** {@link write} of a request encoded already (into memory of the request buffers, given back when the call ends). */
  private writeEncoded<T>(request: WriteRequest, options: CallOptions | undefined, done: (reply: ClientReply & { readonly kind: 'write' }) => T): Promise<T> {
    const timeoutMs = options?.timeoutMs ?? this.host.defaultTimeoutMs;
    const now = performance.now();
    const deadline = now + timeoutMs;
    const signal = options?.signal;
    if (signal?.aborted === true) {
      this.host.requestBuffers.give(request.data);
      return Promise.reject(abortedError(signal));
    }
    const call = new Call(request, options?.nodeId, signal, deadline, timeoutMs, true, false, undefined, done as (reply: ClientReply) => unknown);
    // The slot before the session: sessions in use never outnumber the slots (see SessionPool).
    if (this.host.tryAcquireSlot()) {
      const session = this.host.sessions.take();
      if (session !== undefined) {
        call.useSession(session);
        return this.start(call, now);
      }
    } else {
      call.slotHeld = false;
    }
    return this.startAfterWaits(call);
  }

  /** {@link write} that waits for its slot (unless it holds one) and its session first. */
  private async startAfterWaits<T>(call: Call): Promise<T> {
    try {
      if (!call.slotHeld) {
        await this.waitForSlot(call.deadline, call.timeoutMs, call.signal);
        call.slotHeld = true;
      }
      call.useSession(this.host.sessions.take() ?? (await this.waitForSession(false, call.deadline, call.timeoutMs, call.signal)));
    } catch (error) {
      if (call.slotHeld) this.host.releaseSlot();
      this.host.requestBuffers.give(call.writeData());
      throw error;
    }
    return this.start(call);
  }

  /**
   * Starts `call`, which holds its slot (and a write its session): its first attempt goes
   * out now, with the call as the context of its reply (see {@link onFirstReply}), so a put
   * or get that succeeds at once costs one promise, this call object, no timer and no
   * listener (and one clock reading: `now`, when the caller has just read the clock). With a
   * signal, or no node to try, {@link rest} does it all.
   */
  private start<T>(call: Call, now = performance.now()): Promise<T> {
    const target = this.firstTargetOf(call);
    if (call.signal !== undefined || target === undefined || this.host.isClosed) return this.rest(call, undefined) as Promise<T>;
    call.target = target;
    // No closure of our own per call: the promise's resolving functions are all it makes.
    const promise = new Promise<T>(takeResolvers);
    call.resolve = takenResolve;
    call.reject = takenReject;
    takenResolve = takenReject = ignore;
    try {
      this.host.attempt(target, call.request, this.attemptDeadline(call, now), this.firstReplies, call);
    } catch (error) {
      // The host keeps no attempt it threw for: nothing will answer this call but this.
      this.releaseFailed(call);
      call.reject(error);
    }
    return promise;
  }

  /** The target of every first attempt. */
  private readonly firstReplies: ReplyTarget<Call> = { onReply: (reply, call) => this.onFirstReply(reply, call) };

  /** The answer to a call's first attempt: done, unless it is an error, which {@link rest} takes on from. */
  private onFirstReply(reply: ClientReply, call: Call): void {
    if (reply.kind === 'error') {
      this.rest(call, { target: call.target, reply }).then(call.resolve, call.reject);
      return;
    }
    if (call.toLeader && this.host.leaderGuess === undefined) this.host.leaderGuess = call.target;
    let value: unknown;
    try {
      value = this.finish(call, reply);
    } catch (error) {
      call.reject(error);
      return;
    }
    call.resolve(value);
  }

  /**
   * Ends a call with its answer: gives back its slot, and a write's memory and session
   * (released after a success, discarded otherwise: see SessionPool.discard), exactly once.
   */
  private finish(call: Call, reply: ClientReply): unknown {
    this.host.releaseSlot();
    const session = call.session;
    if (session !== undefined) {
      this.host.requestBuffers.give(call.writeData());
      if (reply.kind !== 'write') {
        this.host.sessions.discard(session);
        fail(`a write answered with ${reply.kind}`);
      }
      this.host.sessions.release(session);
    }
    return call.done(reply);
  }

  /** Runs the rest of a call after its first attempt (`first`; undefined: none made) failed, through {@link attempts}. */
  private async rest(call: Call, first: FirstAttempt | undefined): Promise<unknown> {
    let reply: ClientReply | undefined;
    try {
      reply = await this.attempts(call, call.session !== undefined, first);
      if (reply === undefined) {
        // Answered 'expired' and never sent before: the session was evicted while idle and
        // nothing ran. Retry under a fresh session (whose seq 1 is never expired) rather
        // than fail a write that cannot have been applied.
        const pool = this.host.sessions;
        pool.discard(call.session!);
        call.session = undefined;
        // Every earlier attempt was copied out (sent, or queued as a copy): the memory is ours to change.
        call.useSession(pool.takeFresh() ?? (await this.waitForSession(true, call.deadline, call.timeoutMs, call.signal)));
        reply = await this.attempts(call, false, undefined);
        if (reply === undefined) fail('a write not retryable after expiry is not retried');
      }
    } catch (error) {
      this.releaseFailed(call);
      throw error;
    }
    return this.finish(call, reply);
  }

  /**
   * Gives back what a failed call holds, once: its slot, its session (discarded: a write may
   * or may not have reached a log, see SessionPool.discard) and its write's memory.
   */
  private releaseFailed(call: Call): void {
    this.host.releaseSlot();
    if (call.session !== undefined) this.host.sessions.discard(call.session);
    if (call.request.kind === 'write') this.host.requestBuffers.give(call.request.data);
  }

  private async waitForSlot(deadline: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    if (await this.host.acquireSlot(deadline, signal)) return;
    if (this.host.isClosed) throw new RingraftError(ErrorCode.CLOSED, 'the cluster is closed');
    throwIfAborted(signal);
    throw new RingraftError(ErrorCode.TIMEOUT, `no in-flight slot within ${timeoutMs} ms`);
  }

  /** A session once client ids are at hand, registering a block if needed; `fresh`: on a new id. */
  private async waitForSession(fresh: boolean, deadline: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<Session> {
    const pool = this.host.sessions;
    for (;;) {
      if (this.host.isClosed) throw new RingraftError(ErrorCode.CLOSED, 'the cluster is closed');
      throwIfAborted(signal);
      if (performance.now() >= deadline) throw new RingraftError(ErrorCode.TIMEOUT, `no client id registered within ${timeoutMs} ms`);
      try {
        await abortable(beforeDeadline(pool.refill((count) => this.registerClients(count)), deadline, timeoutMs), signal);
      } catch (error) {
        // The registration ran out of its own time (the cluster's default: it serves every
        // caller waiting, whose times differ), not necessarily of ours: under a deep queue
        // of writes it can take longer. Register again until our own deadline.
        const registrationLate = error instanceof RingraftError && error.code === ErrorCode.TIMEOUT && performance.now() < deadline;
        if (!registrationLate) throw error;
      }
      // Callers that waited with us may have taken the whole block; then we register again.
      const session = fresh ? pool.takeFresh() : pool.take();
      if (session !== undefined) return session;
    }
  }

  /**
   * Registers `count` client ids through the log; resolves to the first. It takes no
   * in-flight slot: the callers waiting for it hold theirs (with requestsInFlightMax 1 a
   * registration that waited for a slot would never run), and a pool runs one at a time,
   * so an endpoint has at most requestsInFlightMax + 1 requests out. It has its own
   * timeout (the cluster's default) and no signal: it serves every caller waiting.
   */
  private async registerClients(count: number): Promise<number> {
    const data = encodeKvRequest({ op: 'register-clients', count });
    const timeoutMs = this.host.defaultTimeoutMs;
    const call = new Call({ kind: 'write', requestId: 0, data }, undefined, undefined, performance.now() + timeoutMs, timeoutMs, true, false, undefined, anyReply);
    const reply = await this.attempts(call, false, undefined);
    if (reply?.kind !== 'write' || reply.result.op !== 'register-clients') {
      fail(`a registration answered with ${reply?.kind} ${reply?.kind === 'write' ? reply.result.op : ''}`);
    }
    return reply.result.clientIdFirst;
  }

  /**
   * Runs one request to completion: attempts at the leader (or at any node for stale
   * reads, or only at `pinned`), following hints, moving on from nodes that are down or
   * silent, backing off while no leader is known, until the deadline or the signal. The
   * caller holds an in-flight slot (a registration excepted).
   *
   * With `expiredRetryable`, a SESSION_EXPIRED answer while no earlier attempt may have
   * reached a log resolves to undefined: this copy was the only one, and it did not run.
   */
  private async attempts(call: CallPlan, expiredRetryable: boolean, first: FirstAttempt | undefined): Promise<ClientReply | undefined> {
    const { pinned, signal, deadline, timeoutMs, toLeader } = call;
    const electionMs = this.host.electionTimeoutMs();
    let target = first?.target ?? this.firstTargetOf(call);
    /** The answer to the attempt made before this loop, taken in its first turn. */
    let answered = first?.reply;
    let backoffMs = 1;
    /** An earlier attempt may have been proposed (it may still apply). */
    let mayBeInLog = false;
    for (;;) {
      if (this.host.isClosed) throw new RingraftError(ErrorCode.CLOSED, 'the cluster is closed');
      throwIfAborted(signal);
      let reply: ClientReply | undefined = answered;
      answered = undefined;
      if (reply === undefined) {
        if (performance.now() >= deadline) {
          const down = this.host.downReasons();
          throw new RingraftError(ErrorCode.TIMEOUT, `no answer within ${timeoutMs} ms${down === '' ? '' : `; ${down}`}`);
        }
        reply = target === undefined ? undefined : await abortable(this.attemptOnce(target, call), signal);
      }
      if (reply !== undefined && reply.kind !== 'error') {
        // A node that answered may have forwarded to its leader and said which one meanwhile
        // (a `leader` notice): a guess made during the attempt stands.
        if (toLeader && this.host.leaderGuess === undefined) this.host.leaderGuess = target;
        return reply;
      }
      const code = reply?.code ?? ErrorCode.NODE_DOWN;
      if (code === ErrorCode.SESSION_EXPIRED && expiredRetryable && !mayBeInLog) return undefined;
      if (reply?.proposed === true) mayBeInLog = true;
      if (pinned !== undefined && code !== ErrorCode.PROPOSALS_FULL && code !== ErrorCode.UNAVAILABLE) {
        if (code === ErrorCode.NOT_LEADER) throw new NotLeaderError(reply?.leaderHint ?? 0);
        throw new RingraftError(code, `node ${pinned} refused the request: ${code}`);
      }
      if (code === ErrorCode.NOT_LEADER && reply !== undefined && reply.leaderHint !== 0 && reply.leaderHint !== target && this.host.isAlive(reply.leaderHint)) {
        // A hint to someone else: follow it at once.
        target = reply.leaderHint;
        this.host.leaderGuess = target;
        continue;
      }
      switch (code) {
        case ErrorCode.NOT_LEADER:
        case ErrorCode.NODE_DOWN:
        case ErrorCode.TIMEOUT:
          if (this.host.leaderGuess === target) this.host.leaderGuess = undefined;
          target = this.nextTarget(target);
          break;
        case ErrorCode.PROPOSALS_FULL:
        case ErrorCode.UNAVAILABLE:
        case ErrorCode.TRANSFER_IN_PROGRESS:
          break;
        case ErrorCode.CLOSED:
          throw new RingraftError(ErrorCode.CLOSED, 'the cluster is closed');
        default:
          throw new RingraftError(code, `request refused: ${code}`);
      }
      await abortable(sleep(Math.min(backoffMs, Math.max(0, deadline - performance.now()))), signal);
      backoffMs = Math.min(backoffMs * 2, electionMs);
    }
  }

  /** One attempt of `call` at `target`, as a promise (the loop's form; the first attempt of a call has its own). */
  private attemptOnce(target: number, call: CallPlan): Promise<ClientReply> {
    return new Promise((resolve) => this.host.attempt(target, call.request, this.attemptDeadline(call), RESOLVE_REPLY, resolve));
  }

  /**
   * When one attempt gives up on its node: a call pinned to a node waits for it all its
   * time; otherwise after some election timeouts the call moves on to another node.
   */
  private attemptDeadline(call: CallPlan, now = performance.now()): number {
    const attemptMs = call.pinned !== undefined ? call.timeoutMs : Math.max(ATTEMPT_TIMEOUT_MS_MIN, 4 * this.host.electionTimeoutMs());
    return Math.min(call.deadline, now + attemptMs);
  }

  /** The node a call tries first: its pinned node, the next in turn for a follower read, else the leader as guessed. */
  private firstTargetOf(call: CallPlan): number | undefined {
    return call.pinned ?? (call.spread ? this.spreadTarget() : this.firstTarget());
  }

  /** The node the last spread read started at. */
  private spreadLast: number | undefined;

  /**
   * The next node in turn for a follower read, skipping the node believed to lead when
   * another is alive: the point of a follower read is to leave the leader only the read index.
   */
  private spreadTarget(): number | undefined {
    let next = this.nextTarget(this.spreadLast);
    if (next !== undefined && next === this.host.leaderGuess) {
      const other = this.nextTarget(next);
      if (other !== undefined) next = other;
    }
    this.spreadLast = next;
    return next;
  }

  private firstTarget(): number | undefined {
    const guess = this.host.leaderGuess;
    if (guess !== undefined && this.host.isAlive(guess)) return guess;
    return this.nextTarget(undefined);
  }

  /** The next live node after `current`, in id order, wrapping around. */
  private nextTarget(current: number | undefined): number | undefined {
    const alive = this.host.nodeIds().filter((id) => this.host.isAlive(id));
    if (alive.length === 0) return undefined;
    const after = alive.find((id) => current === undefined || id > current);
    return after ?? alive[0];
  }
}

/**
 * One watch: a subscription at one node, moved to another (resuming after the last index
 * it delivered) when that node goes down. Events are buffered up to WATCH_BUFFER_MAX.
 */
class Watcher implements AsyncIterableIterator<WatchEvent> {
  private readonly buffer: WatchEvent[] = [];
  private waiting: { resolve: (r: IteratorResult<WatchEvent>) => void; reject: (e: unknown) => void } | undefined;
  private failure: RingraftError | undefined;
  private done = false;
  private requestId: number | undefined;
  private backoffMs = 1;
  /** Position within lastIndex's entry of the last change delivered. */
  private lastPosition = -1;
  /** The node of the current (or last) subscription. */
  private nodeId: number | undefined;
  /** Nodes that answered COMPACTED since the last successful start. */
  private readonly compactedAt = new Set<number>();
  /** Nodes that refused lastIndex as past their log (INVALID_ARGUMENT) since the last successful start. */
  private readonly behindAt = new Set<number>();
  /** lastIndex came from a node (a start or an event), not only from the caller's afterIndex. */
  private indexSeen = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly onAbort = (): void => this.fail(new RingraftError(ErrorCode.ABORTED, 'the watch was aborted'));

  constructor(
    private readonly host: KvClientHost,
    private readonly prefix: Uint8Array,
    private lastIndex: number | undefined,
    private readonly signal: AbortSignal | undefined,
  ) {
    if (signal?.aborted === true) {
      this.failure = new RingraftError(ErrorCode.ABORTED, 'the watch was aborted');
      this.done = true;
      return;
    }
    // Changes after afterIndex: nothing in that entry itself.
    if (lastIndex !== undefined) this.lastPosition = Number.MAX_SAFE_INTEGER;
    signal?.addEventListener('abort', this.onAbort, { once: true });
    this.subscribe();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<WatchEvent> {
    return this;
  }

  next(): Promise<IteratorResult<WatchEvent>> {
    const event = this.buffer.shift();
    if (event !== undefined) return Promise.resolve({ value: event, done: false });
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<WatchEvent>> {
    this.finish();
    return Promise.resolve({ value: undefined, done: true });
  }

  private subscribe(): void {
    if (this.done) return;
    const alive = this.host.nodeIds().filter((id) => this.host.isAlive(id));
    const guess = this.host.leaderGuess;
    const nodeId = guess !== undefined && this.host.isAlive(guess) ? guess : alive[Math.floor(Math.random() * alive.length)];
    if (nodeId === undefined) {
      this.retryLater();
      return;
    }
    this.subscribeAt(nodeId);
  }

  private subscribeAt(nodeId: number): void {
    this.nodeId = nodeId;
    // Resume from the start of the last entry seen: the rest of its batch may be unseen.
    const after = this.lastIndex === undefined ? undefined : Math.max(0, this.lastIndex - 1);
    this.requestId = this.host.openWatch(nodeId, this.prefix, after, (r) => this.onReply(r));
  }

  private onReply(r: ClientReply): void {
    if (this.done) return;
    switch (r.kind) {
      case 'watch-start':
        this.compactedAt.clear();
        this.behindAt.clear();
        this.indexSeen = true;
        if (this.lastIndex === undefined) {
          this.lastIndex = r.index;
          this.lastPosition = Number.MAX_SAFE_INTEGER; // Everything in that entry is before the watch.
        }
        this.backoffMs = 1;
        return;
      case 'watch-event': {
        if (this.lastIndex !== undefined && (r.index < this.lastIndex || (r.index === this.lastIndex && r.position <= this.lastPosition))) return;
        this.lastIndex = r.index;
        this.lastPosition = r.position;
        this.indexSeen = true;
        this.push({ type: r.value === undefined ? 'delete' : 'put', index: r.index, position: r.position, key: r.key, value: r.value, createIndex: r.createIndex, version: r.version });
        return;
      }
      case 'watch-end':
        this.requestId = undefined;
        if (r.code === ErrorCode.COMPACTED) {
          // This node cannot resume here; another may (its history reaches further back).
          // When every live node has said so, no one can: the watch fails.
          if (this.nodeId !== undefined) this.compactedAt.add(this.nodeId);
          const untried = this.host.nodeIds().filter((id) => this.host.isAlive(id) && !this.compactedAt.has(id));
          if (untried.length === 0) {
            this.fail(new RingraftError(ErrorCode.COMPACTED, `no node can resume the watch after index ${this.lastIndex}`));
            return;
          }
          this.subscribeAt(untried[0]!);
          return;
        }
        if (r.code === ErrorCode.INVALID_ARGUMENT) {
          // The node refused the index as past its log. It may lag (a follower, a deposed
          // leader): another node may have it. When every live node refuses: the caller's own
          // afterIndex asked for the future, and is told so; an index this watch has seen will
          // come back, so it tries again later.
          if (this.nodeId !== undefined) this.behindAt.add(this.nodeId);
          const untried = this.host.nodeIds().filter((id) => this.host.isAlive(id) && !this.behindAt.has(id));
          if (untried.length > 0) {
            this.subscribeAt(untried[0]!);
            return;
          }
          this.behindAt.clear();
          if (!this.indexSeen) {
            this.fail(new RingraftError(ErrorCode.INVALID_ARGUMENT, `afterIndex ${this.lastIndex} is past every live node's log: no change has that index yet`));
            return;
          }
          this.retryLater();
          return;
        }
        if (r.code === ErrorCode.CLOSED && this.host.isClosed) {
          this.fail(new RingraftError(ErrorCode.CLOSED, 'the cluster is closed'));
          return;
        }
        if (r.code === ErrorCode.NODE_DOWN || r.code === ErrorCode.UNAVAILABLE) {
          // Down, or for a while unable to serve (restoring its state machine): later.
          this.retryLater();
          return;
        }
        this.fail(new RingraftError(r.code, `the watch ended: ${r.code}`));
        return;
      default:
        return;
    }
  }

  private retryLater(): void {
    if (this.host.isClosed) {
      this.fail(new RingraftError(ErrorCode.CLOSED, 'the cluster is closed'));
      return;
    }
    // A node went down: try again (another node, or this one back) until the watch is
    // closed, aborted or the cluster closes.
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, Math.max(10, this.host.electionTimeoutMs()));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.subscribe();
    }, delay);
  }

  private push(event: WatchEvent): void {
    if (this.waiting !== undefined) {
      const w = this.waiting;
      this.waiting = undefined;
      w.resolve({ value: event, done: false });
      return;
    }
    if (this.buffer.length >= WATCH_BUFFER_MAX) {
      this.fail(new RingraftError(ErrorCode.WATCH_LAGGING, `the watch fell ${WATCH_BUFFER_MAX} events behind`));
      return;
    }
    this.buffer.push(event);
  }

  private fail(error: RingraftError): void {
    if (this.done) return;
    this.failure = error;
    this.finish();
    if (this.waiting !== undefined) {
      const w = this.waiting;
      this.waiting = undefined;
      w.reject(error);
    }
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    if (this.requestId !== undefined) this.host.closeWatch(this.requestId);
    this.requestId = undefined;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.waiting !== undefined && this.failure === undefined) {
      const w = this.waiting;
      this.waiting = undefined;
      w.resolve({ value: undefined, done: true });
    }
  }
}

/** What a call sends and how: the same request for every attempt, within one deadline. */
interface CallPlan {
  readonly request: OutgoingRequest;
  /** The node the call is pinned to (options.nodeId): no routing, refusals thrown. */
  readonly pinned: number | undefined;
  readonly signal: AbortSignal | undefined;
  /** A performance.now() time. */
  readonly deadline: number;
  readonly timeoutMs: number;
  /** Served by the leader (a write, a linearizable or lease read): a success makes its node the leader guess. */
  readonly toLeader: boolean;
  /** Start at the next node in turn, not the leader guess: follower reads spread over the nodes. */
  readonly spread: boolean;
}

/** One call of a client: its plan and where it stands (one object, of one shape, per call). */
class Call implements CallPlan {
  /** Whether the call holds an in-flight slot (a write that had to wait for one: not yet). */
  slotHeld = true;
  /** The node of the first attempt. */
  target = 0;
  resolve: (value: unknown) => void = ignore;
  reject: (error: unknown) => void = ignore;

  constructor(
    readonly request: OutgoingRequest,
    readonly pinned: number | undefined,
    readonly signal: AbortSignal | undefined,
    readonly deadline: number,
    readonly timeoutMs: number,
    readonly toLeader: boolean,
    readonly spread: boolean,
    /** A write's session once it has one. */
    public session: Session | undefined,
    /** What the call resolves to, from its successful reply. */
    readonly done: (reply: ClientReply) => unknown,
  ) {}

  /** Takes the next sequence number of `session` for this call's encoded write. */
  useSession(session: Session): void {
    this.session = session;
    session.seq++;
    setKvRequestSession(this.writeData(), session.clientId, session.seq);
  }

  /** The encoded write this call sends. */
  writeData(): Uint8Array {
    if (this.request.kind !== 'write') fail(`a ${this.request.kind} call has no write`);
    return this.request.data;
  }
}

function ignore(): void {}

/**
 * The resolving functions of the promise just made with {@link takeResolvers} as its
 * executor, which the Promise constructor runs at once: a promise with no closure made for it.
 */
let takenResolve: (value: unknown) => void = ignore;
let takenReject: (error: unknown) => void = ignore;
function takeResolvers(resolve: (value: never) => void, reject: (error: unknown) => void): void {
  takenResolve = resolve as (value: unknown) => void;
  takenReject = reject;
}

/** A target that resolves the promise it is given as context with the reply. */
const RESOLVE_REPLY: ReplyTarget<(reply: ClientReply) => void> = { onReply: (reply, resolve) => resolve(reply) };

/**
 * Encodes `command` into memory from `buffers`, once for all the attempts of its call (the
 * caller gives the memory back when the call ends), under a placeholder session that
 * {@link useSession} replaces.
 */
function encodeWrite(command: KvCommand, buffers: RequestBuffers): WriteRequest {
  const req = { clientId: 1, seq: 1, command };
  try {
    validateKvRequest(req);
  } catch (error) {
    // Checked arguments encode; this is a key or value whose bytes changed meanwhile.
    if (error instanceof KvError) throw new RingraftError(ErrorCode.INVALID_ARGUMENT, error.message, { cause: error });
    throw error;
  }
  const memory = buffers.take(encodedKvRequestBytes(command));
  try {
    writeKvRequest(buffers.writer, req);
    return writtenRequest(memory, buffers);
  } catch (error) {
    buffers.give(memory);
    throw error;
  }
}

/** {@link encodeWrite} of a put whose arguments are checked, with no command object (see writeKvPut). */
function encodePut(key: Uint8Array | AsciiKey, value: Uint8Array, lease: number | undefined, buffers: RequestBuffers): WriteRequest {
  const memory = buffers.take(encodedKvPutBytes(key.length, value.length, lease));
  try {
    writeKvPut(buffers.writer, key, value, lease);
    return writtenRequest(memory, buffers);
  } catch (error) {
    buffers.give(memory);
    throw error;
  }
}

/** The write request in `memory`, the last taken from `buffers`, which an encoder has just filled: all of it, else a bug. */
function writtenRequest(memory: Uint8Array, buffers: RequestBuffers): WriteRequest {
  const left = buffers.writer.remainingBytes;
  if (left !== 0) fail(`a write encoded ${memory.length - left} of ${memory.length} bytes`);
  return { kind: 'write', requestId: 0, data: memory };
}

/** A put resolves to nothing. */
function putDone(): void {}

/**
 * What the cluster's own state machine returned, or APPLY_FAILED with what it threw (an
 * outcome: kv/app-machine.ts). `owned`: `encoded` is the reply's own copy (a write reply's,
 * decodeReply copies it), so the result is a view of it; else (a read value, in memory shared
 * with other replies) a copy.
 */
function appResult(encoded: Uint8Array, owned: boolean): Uint8Array {
  const outcome = decodeAppOutcome(encoded);
  if (outcome === undefined) throw new RingraftError(ErrorCode.DECODE_ERROR, 'a state machine outcome does not decode');
  if (!outcome.ok) throw new RingraftError(ErrorCode.APPLY_FAILED, outcome.message);
  return owned ? outcome.result : outcome.result.slice();
}

/** The write reply itself. */
function writeReply(reply: ClientReply & { readonly kind: 'write' }): ClientReply & { readonly kind: 'write' } {
  return reply;
}

/** The reply itself (the caller checks its kind). */
function anyReply(reply: ClientReply): ClientReply {
  return reply;
}

/** A get resolves to the value read. */
function readValue(reply: ClientReply): Uint8Array | undefined {
  if (reply.kind !== 'read') fail(`a read answered with ${reply.kind}`);
  return reply.value;
}

/** Waits `ms`, or less if `signal` aborts first (then resolves too). */
function sleepUnless(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted === true) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw abortedError(signal);
}

function abortedError(signal: AbortSignal): RingraftError {
  return new RingraftError(ErrorCode.ABORTED, 'the request was aborted', { cause: signal.reason });
}

/** Resolves like `p`, or rejects with ABORTED when `signal` fires first. */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new RingraftError(ErrorCode.ABORTED, 'the request was aborted', { cause: signal.reason }));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Resolves like `p`, or rejects with TIMEOUT at `deadline` (a performance.now() time) if
 * that comes first: a caller waits for a shared registration no longer than its own call.
 */
function beforeDeadline<T>(p: Promise<T>, deadline: number, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onLate = (): void => reject(new RingraftError(ErrorCode.TIMEOUT, `no client id registered within ${timeoutMs} ms`));
    const timer = setTimeout(onLate, Math.max(0, deadline - performance.now()));
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
