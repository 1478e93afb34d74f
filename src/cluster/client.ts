/**
 * The key-value client of an embedded cluster. Every call finds the leader (following the
 * hints nodes give), retries with back-off after a leader change or a node going down, and
 * never applies a write twice: each write carries a session (client id, sequence number)
 * that the state machine deduplicates, and a retry reuses it.
 *
 * Sessions: a session allows one write in flight (the state machine remembers only the
 * latest sequence number of each client id), so a client keeps a pool of sessions and
 * gives each concurrent write its own. The pool grows to the client's peak concurrency.
 */

import { ErrorCode, NotLeaderError, RingraftError } from '../core/index.ts';
import { encodeKvRequest, KvError, type KvCommand, type KvResult } from '../kv/index.ts';
import type { ClientReply, ClientRequest, ReadConsistency } from '../runtime/index.ts';
import { invalid } from './options.ts';

/** Keys and values are bytes; strings are taken as UTF-8. */
export type Bytes = Uint8Array | string;

export interface CallOptions {
  readonly signal?: AbortSignal;
  /** Default: the cluster's requestTimeoutMs. */
  readonly timeoutMs?: number;
  /**
   * Send to this node only, without leader routing: a refusal (NOT_LEADER, NODE_DOWN, ...)
   * is thrown instead of retried elsewhere. For diagnostics and tests of one node.
   */
  readonly nodeId?: number;
}

export interface GetOptions extends CallOptions {
  /** 'linearizable' (default): ReadIndex; 'lease': the leader's lease; 'stale': any node's state. */
  readonly consistency?: ReadConsistency;
}

export interface WatchOptions {
  readonly signal?: AbortSignal;
  /** Report changes after this log index (default: from the time the watch starts). */
  readonly afterIndex?: number;
}

export interface WatchEvent {
  readonly type: 'put' | 'delete';
  /** The log index of the change's entry; never decreasing along a watch. */
  readonly index: number;
  /** The change's position within its entry (one entry may carry a batch of writes); (index, position) strictly increases. */
  readonly position: number;
  readonly key: Uint8Array;
  /** The new value; undefined for a delete. */
  readonly value: Uint8Array | undefined;
}

/** What a client needs from its cluster. */
export interface KvClientHost {
  readonly isClosed: boolean;
  leaderGuess: number | undefined;
  readonly defaultTimeoutMs: number;
  electionTimeoutMs(): number;
  nodeIds(): number[];
  isAlive(id: number): boolean;
  allocateClientId(): number;
  tryAcquireSlot(): boolean;
  /** Waits for a slot until `deadline` (a performance.now() time) or the signal; false if none came. */
  acquireSlot(deadline: number, signal: AbortSignal | undefined): Promise<boolean>;
  releaseSlot(): void;
  attempt(nodeId: number, build: (requestId: number) => ClientRequest, deadline: number): Promise<ClientReply>;
  openWatch(nodeId: number, prefix: Uint8Array, afterIndex: number | undefined, onReply: (r: ClientReply) => void): number;
  closeWatch(requestId: number): void;
}

interface Session {
  readonly clientId: number;
  seq: number;
}

/** Events a watch buffers for a consumer that does not keep up, before it is cut off. */
export const WATCH_BUFFER_MAX = 65_536;
/** One attempt at one node waits at least this long before the call tries another node. */
const ATTEMPT_TIMEOUT_MS_MIN = 250;

const utf8 = new TextEncoder();

export class KvClient {
  private readonly sessions: Session[] = [];

  constructor(private readonly host: KvClientHost) {}

  async put(key: Bytes, value: Bytes, options?: CallOptions): Promise<void> {
    await this.write({ op: 'put', key: bytesOf(key, 'key'), value: bytesOf(value, 'value') }, options);
  }

  /** Resolves to whether the key existed. */
  async delete(key: Bytes, options?: CallOptions): Promise<boolean> {
    const result = await this.write({ op: 'delete', key: bytesOf(key, 'key') }, options);
    return result.op === 'delete' && result.existed;
  }

  /** Sets `key` to `next` if it holds `expected` (undefined: if it is absent). Resolves to whether it did. */
  async cas(key: Bytes, expected: Bytes | undefined, next: Bytes, options?: CallOptions): Promise<boolean> {
    const command: KvCommand = {
      op: 'cas',
      key: bytesOf(key, 'key'),
      expected: expected === undefined ? undefined : bytesOf(expected, 'expected'),
      value: bytesOf(next, 'value'),
    };
    const result = await this.write(command, options);
    return result.op === 'cas' && result.swapped;
  }

  /** The value of `key`, or undefined. */
  async get(key: Bytes, options?: GetOptions): Promise<Uint8Array | undefined> {
    const k = bytesOf(key, 'key');
    const consistency = options?.consistency ?? 'linearizable';
    if (consistency !== 'linearizable' && consistency !== 'lease' && consistency !== 'stale') {
      throw invalid(`consistency must be 'linearizable', 'lease' or 'stale', got ${String(consistency)}`);
    }
    if (k.length === 0) throw invalid('key is empty');
    const reply = await this.call((requestId) => ({ kind: 'read', requestId, consistency, key: k }), options, consistency !== 'stale');
    if (reply.kind !== 'read') throw new Error(`assertion failed: a read answered with ${reply.kind}`);
    return reply.value;
  }

  /** Committed changes to keys under `prefix`, in log order, each once. */
  watch(prefix: Bytes, options: WatchOptions = {}): AsyncIterableIterator<WatchEvent> {
    const p = bytesOf(prefix, 'prefix');
    if (options.afterIndex !== undefined && !(Number.isSafeInteger(options.afterIndex) && options.afterIndex >= 0)) {
      throw invalid(`afterIndex must be a non-negative integer, got ${String(options.afterIndex)}`);
    }
    if (this.host.isClosed) throw new RingraftError(ErrorCode.CLOSED, 'the cluster is closed');
    return new Watcher(this.host, p, options.afterIndex, options.signal);
  }

  // ─── Internals ──────────────────────────────────────────────────────────────────

  private async write(command: KvCommand, options: CallOptions | undefined): Promise<KvResult> {
    const session = this.sessions.pop() ?? { clientId: this.host.allocateClientId(), seq: 0 };
    let data: Uint8Array;
    try {
      data = encodeKvRequest({ clientId: session.clientId, seq: session.seq + 1, command });
    } catch (error) {
      this.sessions.push(session);
      if (error instanceof KvError) throw new RingraftError(ErrorCode.INVALID_ARGUMENT, error.message, { cause: error });
      throw error;
    }
    session.seq++;
    const reply = await this.call((requestId) => ({ kind: 'write', requestId, data }), options, true);
    if (reply.kind !== 'write') throw new Error(`assertion failed: a write answered with ${reply.kind}`);
    // Reused only after a success, when the state machine's last sequence number for this
    // client is exactly session.seq. After a failure the write may or may not have reached
    // the log (or never left), so the session is dropped: a next number could be refused
    // as from an expired session, and a retry of this one could not be told apart.
    this.sessions.push(session);
    return reply.result;
  }

  /**
   * Runs one request to completion: attempts at the leader (or at any node for stale
   * reads), following hints, moving on from nodes that are down or silent, backing off
   * while no leader is known, until the deadline or the signal.
   */
  private async call(build: (requestId: number) => ClientRequest, options: CallOptions | undefined, toLeader: boolean): Promise<ClientReply> {
    const timeoutMs = options?.timeoutMs ?? this.host.defaultTimeoutMs;
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw invalid(`timeoutMs must be a positive number, got ${String(timeoutMs)}`);
    const signal = options?.signal;
    throwIfAborted(signal);
    const pinned = options?.nodeId;
    if (pinned !== undefined && !this.host.nodeIds().includes(pinned)) throw invalid(`no node ${String(pinned)} in the cluster`);
    const deadline = performance.now() + timeoutMs;
    const electionMs = this.host.electionTimeoutMs();
    const attemptMs = pinned !== undefined ? timeoutMs : Math.max(ATTEMPT_TIMEOUT_MS_MIN, 4 * electionMs);
    if (!this.host.tryAcquireSlot() && !(await this.host.acquireSlot(deadline, signal))) {
      if (this.host.isClosed) throw new RingraftError(ErrorCode.CLOSED, 'the cluster is closed');
      throwIfAborted(signal);
      throw new RingraftError(ErrorCode.TIMEOUT, `no in-flight slot within ${timeoutMs} ms`);
    }
    try {
      let target = pinned ?? this.firstTarget();
      let backoffMs = 1;
      for (;;) {
        if (this.host.isClosed) throw new RingraftError(ErrorCode.CLOSED, 'the cluster is closed');
        throwIfAborted(signal);
        const now = performance.now();
        if (now >= deadline) throw new RingraftError(ErrorCode.TIMEOUT, `no answer within ${timeoutMs} ms`);
        const reply = target === undefined ? undefined : await abortable(this.host.attempt(target, build, Math.min(deadline, now + attemptMs)), signal);
        if (reply !== undefined && reply.kind !== 'error') {
          if (toLeader) this.host.leaderGuess = target;
          return reply;
        }
        const code = reply?.code ?? ErrorCode.NODE_DOWN;
        if (pinned !== undefined && code !== ErrorCode.PROPOSALS_FULL && code !== ErrorCode.UNAVAILABLE) {
          if (code === ErrorCode.NOT_LEADER) throw new NotLeaderError(reply?.leaderHint ?? 0);
          throw new RingraftError(code as ErrorCode, `node ${pinned} refused the request: ${code}`);
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
            throw new RingraftError(code as ErrorCode, `request refused: ${code}`);
        }
        await abortable(sleep(Math.min(backoffMs, Math.max(0, deadline - performance.now()))), signal);
        backoffMs = Math.min(backoffMs * 2, electionMs);
      }
    } finally {
      this.host.releaseSlot();
    }
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
        this.push({ type: r.value === undefined ? 'delete' : 'put', index: r.index, position: r.position, key: r.key, value: r.value });
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
        if (r.code === ErrorCode.CLOSED && this.host.isClosed) {
          this.fail(new RingraftError(ErrorCode.CLOSED, 'the cluster is closed'));
          return;
        }
        if (r.code === ErrorCode.NODE_DOWN) {
          this.retryLater();
          return;
        }
        this.fail(new RingraftError(r.code as ErrorCode, `the watch ended: ${r.code}`));
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

function bytesOf(value: Bytes, name: string): Uint8Array {
  if (typeof value === 'string') return utf8.encode(value);
  if (value instanceof Uint8Array) return value;
  throw invalid(`${name} must be a Uint8Array or a string`);
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new RingraftError(ErrorCode.ABORTED, 'the request was aborted', { cause: signal.reason });
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
