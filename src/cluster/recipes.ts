/**
 * Locks and leader elections, built in the client on leases, transactions, ranges and
 * watches (the recipe etcd's concurrency package follows):
 *
 * - A contender grants itself a lease, keeps it alive, and creates the key
 *   `NAME/` + its lease id (16 hex digits, so no contender's key is a prefix of another's,
 *   and their byte order is their ids' order), attached to the lease. Its place in the queue
 *   is (createIndex, key): several keys may be created by one log entry (a batch), and the key
 *   breaks the tie, the same way for every contender.
 * - The first contender in that order holds the lock (leads). Every other watches only the
 *   key just before its own, so a release wakes one waiter, not all of them (no thundering
 *   herd); when that key goes, it looks again.
 * - Once first, it writes its key again, if it still exists (a transaction on its
 *   createIndex): the index of that write is its fencing token. The previous holder's token
 *   came before its release, and the release before this write, so tokens grow strictly
 *   from holder to holder, and a resource can refuse a token below one it has seen.
 * - A holder releases by revoking its lease, which deletes its key. A holder that stops
 *   renewing (it crashed, or its process paused past the TTL) loses the lock when the lease
 *   expires, a TTL after its last renewal and never before (leases: runtime/lease-keeper.ts).
 *
 * A holder learns that its lease ended, and with it the lock, from `lost`: an AbortSignal
 * that aborts when a keep-alive finds the lease gone.
 */
import { performance } from 'node:perf_hooks';
import { ErrorCode, invalidArgument, RingraftError } from '../base/index.ts';
import type { KvRangeEntry } from '../kv/index.ts';
import type { KvClient, WatchEvent } from './client.ts';
import { CALL_TIMEOUT_MS_MAX, shown } from './client-args.ts';

/** The options of {@link KvClient.lock} and {@link KvClient.elect}. */
export interface LockOptions {
  /** The lease's TTL: how long the lock outlives a holder that stopped renewing. Default 10,000 ms. */
  readonly ttlMs?: number;
  /**
   * Aborts the wait (the call rejects with ABORTED and leaves the queue). Once the lock is held,
   * aborting it stops the keep-alives: the lock lapses a TTL later unless released before.
   */
  readonly signal?: AbortSignal;
  /** Gives up waiting after this long (TIMEOUT), leaving the queue. Default: wait as long as it takes. */
  readonly timeoutMs?: number;
}

/** A lock held, from {@link KvClient.lock}: its fencing token, and how to release it or learn it was lost. */
export interface LockHandle {
  /** The fencing token: the log index of the holder's write on taking the lock. Each holder's is larger than every earlier holder's. */
  readonly token: number;
  /** The holder's key (`NAME/` + lease id in hex). */
  readonly key: string;
  /** The lease the key lives on. */
  readonly lease: number;
  /** Aborts when the lease is found gone (expired or revoked): the lock is no longer held. */
  readonly lost: AbortSignal;
  /** Releases the lock: revokes the lease, which deletes the key. Calling it again does nothing. */
  release(): Promise<void>;
}

/** Leadership won in an election, from {@link KvClient.elect}: a lock held, with `resign` and `observe`. */
export interface Election extends LockHandle {
  /** Gives up leadership (releases the key): the next contender is elected. */
  resign(): Promise<void>;
  /** The election's leaders as they change, this one first while it leads (as KvClient.observeElection). */
  observe(signal?: AbortSignal): AsyncGenerator<Leader | undefined>;
}

/** The current leader of an election, as an observer sees it. */
export interface Leader {
  /** The leader's key in the election (`NAME/` + its lease id in hex). */
  readonly key: string;
  /** The value it campaigned with. */
  readonly value: Uint8Array;
  /** Its key's createIndex (its place in the queue). */
  readonly createIndex: number;
}

const LOCK_TTL_MS_DEFAULT = 10_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Acquires lock `name` (see the module comment); `value` is stored in the holder's key (an election's candidate value). */
export async function acquire(kv: KvClient, name: string, value: Uint8Array | string, options: LockOptions = {}): Promise<LockHandle> {
  checkName(name);
  const ttlMs = options.ttlMs ?? LOCK_TTL_MS_DEFAULT;
  const timeoutMs = options.timeoutMs;
  if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs > 0 && timeoutMs <= CALL_TIMEOUT_MS_MAX)) throw invalidArgument(`timeoutMs must be a number of milliseconds in (0, ${CALL_TIMEOUT_MS_MAX}], got ${shown(timeoutMs)}`);
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgument(`signal must be an AbortSignal or undefined, got ${shown(signal)}`);
  if (signal?.aborted === true) throw new RingraftError(ErrorCode.ABORTED, 'the lock was aborted');
  const { id: lease } = await kv.grantLease(ttlMs);
  // The keep-alives stop on release, on the caller's signal, or when the lease is found gone.
  const stop = new AbortController();
  const lost = new AbortController();
  const onCallerAbort = (): void => stop.abort();
  signal?.addEventListener('abort', onCallerAbort, { once: true });
  void kv.keepLeaseAlive(lease, { signal: stop.signal }).catch(() => lost.abort());
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    stop.abort();
    signal?.removeEventListener('abort', onCallerAbort);
    try {
      await kv.revokeLease(lease);
    } catch (error) {
      // Gone already (expired): the key went with it.
      if (!(error instanceof RingraftError && error.code === ErrorCode.LEASE_NOT_FOUND)) throw error;
    }
  };
  const key = `${name}/${lease.toString(16).padStart(16, '0')}`;
  try {
    const created = await kv.txn({ if: [{ key, target: 'version', op: '=', value: 0 }], then: [{ op: 'put', key, value, lease }] });
    if (!created.succeeded) throw new RingraftError(ErrorCode.INVALID_ARGUMENT, `lock key ${key} exists already`);
    const place = { createIndex: created.index, key };
    const deadline = timeoutMs === undefined ? undefined : performance.now() + timeoutMs;
    for (;;) {
      const { before, index } = await predecessor(kv, name, place);
      if (before === undefined) break;
      await deleted(kv, decoder.decode(before.key), index, deadline, signal, lost.signal);
    }
    const taken = await kv.txn({ if: [{ key, target: 'createIndex', op: '=', value: place.createIndex }], then: [{ op: 'put', key, value, lease }] });
    if (!taken.succeeded) throw new RingraftError(ErrorCode.LEASE_NOT_FOUND, `the lock's lease ${lease} ended before it was taken`);
    return { token: taken.index, key, lease, lost: lost.signal, release };
  } catch (error) {
    await release().catch(() => undefined);
    throw error;
  }
}

/** Whether queue place (createIndex, key) `a` comes before `b`. */
function earlier(a: { readonly createIndex: number; readonly key: string }, b: { readonly createIndex: number; readonly key: string }): boolean {
  return a.createIndex < b.createIndex || (a.createIndex === b.createIndex && a.key < b.key);
}

/**
 * The contender just before `place` in the queue under `name/` (undefined: it is first), and
 * the index of the state read.
 */
async function predecessor(kv: KvClient, name: string, place: { readonly createIndex: number; readonly key: string }): Promise<{ before: KvRangeEntry | undefined; index: number }> {
  let before: Contender | undefined;
  const { contenders, index } = await contendersOf(kv, name, true);
  for (const e of contenders) if (earlier(e, place) && (before === undefined || earlier(before, e))) before = e;
  return { before: before?.entry, index };
}

interface Contender {
  readonly entry: KvRangeEntry;
  readonly createIndex: number;
  readonly key: string;
}

/** A contender's key under `NAME/`: its lease id in 16 hex digits, nothing else (the key of a name nested under this one, `NAME/x/...`, is not). */
const CONTENDER_SUFFIX = /^[0-9a-f]{16}$/;

/**
 * Every contender for `name` (every page of the range under `name/`; only keys of the form
 * `NAME/` + 16 hex digits, so that lock `a` does not count those of lock `a/b`), and the
 * index of the first page read.
 */
async function contendersOf(kv: KvClient, name: string, keysOnly: boolean): Promise<{ contenders: Contender[]; index: number }> {
  const prefix = `${name}/`;
  let start = prefix;
  const end = `${name}0`; // '0' follows '/': every key under the prefix, and no other.
  let index = 0;
  const contenders: Contender[] = [];
  for (;;) {
    const page = await kv.range({ start, end }, { keysOnly });
    index ||= page.index;
    for (const entry of page.entries) {
      const key = decoder.decode(entry.key);
      if (CONTENDER_SUFFIX.test(key.slice(prefix.length))) contenders.push({ entry, createIndex: entry.createIndex, key });
    }
    if (!page.more) return { contenders, index };
    start = decoder.decode(page.entries[page.entries.length - 1]!.key) + '\u0000';
  }
}

/** Resolves once `key` is deleted after `afterIndex` (at once if it was gone by then); rejects on the deadline, the signal or a lost lease. */
async function deleted(kv: KvClient, key: string, afterIndex: number, deadline: number | undefined, signal: AbortSignal | undefined, lost: AbortSignal): Promise<void> {
  const stop = new AbortController();
  const abort = (): void => stop.abort();
  signal?.addEventListener('abort', abort, { once: true });
  lost.addEventListener('abort', abort, { once: true });
  const timer = deadline === undefined ? undefined : setTimeout(abort, Math.max(0, deadline - performance.now()));
  try {
    // The key may have gone between the range read and the watch: the watch starts after the read's index.
    const events: AsyncIterableIterator<WatchEvent> = kv.watch(key, { afterIndex, signal: stop.signal });
    for await (const e of events) {
      if (e.type === 'delete' && decoder.decode(e.key) === key) return;
    }
  } catch (error) {
    if (!(error instanceof RingraftError && error.code === ErrorCode.ABORTED)) throw error;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    signal?.removeEventListener('abort', abort);
    lost.removeEventListener('abort', abort);
  }
  if (signal?.aborted === true) throw new RingraftError(ErrorCode.ABORTED, 'the lock was aborted');
  if (lost.aborted) throw new RingraftError(ErrorCode.LEASE_NOT_FOUND, 'the lock\'s lease ended while it waited');
  throw new RingraftError(ErrorCode.TIMEOUT, `the lock was not acquired in time`);
}

/**
 * The leaders of election `name` as they change: the contender with the smallest createIndex,
 * yielded once each time a different one leads (undefined while nobody does). Ends with the
 * signal (ABORTED is not thrown: the iteration just ends).
 */
export async function* observe(kv: KvClient, name: string, signal?: AbortSignal): AsyncGenerator<Leader | undefined> {
  checkName(name);
  let shownKey: string | null = null;
  const prefix = `${name}/`;
  for (;;) {
    if (signal?.aborted === true) return;
    const r = await contendersOf(kv, name, false);
    let first: Contender | undefined;
    for (const e of r.contenders) if (first === undefined || earlier(e, first)) first = e;
    if ((first?.key ?? '') !== shownKey) {
      shownKey = first?.key ?? '';
      yield first === undefined ? undefined : { key: first.key, value: first.entry.value!, createIndex: first.createIndex };
    }
    // Wait for any change under the prefix after what was read, then look again.
    const stop = new AbortController();
    const abort = (): void => stop.abort();
    signal?.addEventListener('abort', abort, { once: true });
    try {
      for await (const e of kv.watch(prefix, { afterIndex: r.index, signal: stop.signal })) {
        void e;
        break;
      }
    } catch (error) {
      if (!(error instanceof RingraftError && error.code === ErrorCode.ABORTED)) throw error;
    } finally {
      signal?.removeEventListener('abort', abort);
    }
  }
}

function checkName(name: unknown): void {
  if (typeof name !== 'string' || name.length === 0 || name.includes('\u0000')) throw invalidArgument(`a lock or election name is a non-empty string without NUL, got ${shown(name)}`);
  if (encoder.encode(name).length > 1024) throw invalidArgument('a lock or election name is at most 1024 bytes in UTF-8');
}
