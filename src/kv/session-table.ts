/**
 * The client sessions of a state machine, by client id, in order of their last write (the
 * least recent first): the order evictions and snapshots go by, the same on every replica.
 *
 * A Map alone kept that order by a delete and a set per write (a set moves a key to the end
 * of a Map's order only if it is new), and that churn kept allocating new hash tables that
 * the scavenger promoted with the sessions they reach, on every replica, for every write.
 * Here the table of sessions by id (an IntKeyMap: a Map's lookup is a call the compiler does
 * not inline) takes a set only for a new session and a delete only for an eviction; the
 * order is a list threaded through the sessions, and a write moves its session to the end
 * with a few pointer stores.
 *
 * ```
 *   oldest ⇄ ... ⇄ newest      (each session's `older` and `newer`)
 * ```
 *
 * Invariant: the list holds exactly the table's sessions, each once.
 */
import { fail, IntKeyMap } from '../base/index.ts';
import type { KvResult } from './commands.ts';

/**
 * The first client id register-clients hands out. Ids below it belong to callers that pick
 * their own (the simulator, tests) and to logs of earlier builds (u32 ids), so registered
 * ids never meet them. 2^53 - 2^32 ids remain: at 27,000 new ids a second (the rate of a
 * client churning through sessions that ran 32-bit ids out in two days) some 10,000 years,
 * at a million a second some 285.
 */
export const KV_CLIENT_ID_REGISTERED_FIRST = 2 ** 32;

/**
 * The table's key of a client id: registered ids (from KV_CLIENT_ID_REGISTERED_FIRST on) as
 * small negative integers, which V8 keeps unboxed and the table hashes on its fast path. As
 * they are, such ids are above 2^31: with a `Map`, each lookup made a heap number of its id
 * (on every replica, for every write). Ids below
 * KV_CLIENT_ID_REGISTERED_FIRST are their own key, and ids 2^31 or more past it too, so that
 * no two ids share a key.
 */
export function sessionKeyOf(clientId: number): number {
  const past = clientId - KV_CLIENT_ID_REGISTERED_FIRST;
  return past >= 0 && past < 0x8000_0000 ? -1 - past : clientId;
}

export interface KvSession {
  readonly clientId: number;
  /** The highest seq applied for this client. */
  lastSeq: number;
  /** The log index at which lastSeq was applied. */
  lastIndex: number;
  /** The result of lastSeq, returned again to retries of it. */
  result: KvResult;
  /** Neighbours in the order of last writes (see {@link SessionTable}); the table's to set. */
  older: KvSession | undefined;
  newer: KvSession | undefined;
}

export class SessionTable {
  private readonly byId = new IntKeyMap<KvSession>();
  private oldest: KvSession | undefined;
  private newest: KvSession | undefined;

  get size(): number {
    return this.byId.size;
  }

  get(clientId: number): KvSession | undefined {
    return this.byId.get(sessionKeyOf(clientId));
  }

  has(clientId: number): boolean {
    return this.byId.has(sessionKeyOf(clientId));
  }

  /** Adds a new session, as the most recently written. */
  add(clientId: number, lastSeq: number, lastIndex: number, result: KvResult): KvSession {
    if (this.byId.has(sessionKeyOf(clientId))) fail(`session ${clientId} is new`);
    const session: KvSession = { clientId, lastSeq, lastIndex, result, older: this.newest, newer: undefined };
    if (this.newest === undefined) this.oldest = session;
    else this.newest.newer = session;
    this.newest = session;
    this.byId.set(sessionKeyOf(clientId), session);
    return session;
  }

  /** Makes `session` (one of this table's) the most recently written. */
  touch(session: KvSession): void {
    if (session === this.newest) return;
    // Unlink: it has a newer neighbour, since it is not the newest.
    const newer = session.newer!;
    newer.older = session.older;
    if (session.older === undefined) this.oldest = newer;
    else session.older.newer = newer;
    // Append.
    session.older = this.newest;
    session.newer = undefined;
    this.newest!.newer = session;
    this.newest = session;
  }

  /** Removes and returns the least recently written session (the table must not be empty). */
  evictOldest(): KvSession {
    const oldest = this.oldest;
    if (oldest === undefined) fail('there is a session to evict');
    this.oldest = oldest.newer;
    if (this.oldest === undefined) this.newest = undefined;
    else this.oldest.older = undefined;
    oldest.newer = undefined;
    this.byId.delete(sessionKeyOf(oldest.clientId));
    return oldest;
  }

  /** The sessions, least recently written first. */
  *values(): IterableIterator<KvSession> {
    for (let s = this.oldest; s !== undefined; s = s.newer) yield s;
  }
}
