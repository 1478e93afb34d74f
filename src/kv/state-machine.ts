/**
 * The replicated key-value state machine: it applies committed log entries that carry
 * encoded {@link KvRequest}s, deduplicates retried requests through client sessions, and
 * takes and restores snapshots of its whole state.
 *
 * Determinism is the point: every replica that applies the same entries in the same order
 * must hold the same state and produce byte-identical snapshots. So nothing here reads a
 * clock or a random source, and nothing depends on Map iteration order unless that order
 * is itself a function of the applied entries (sessions) or is sorted first (data).
 *
 * Every key carries its revisions: `createIndex`, the log index of the entry that created it
 * (since it was last deleted); `modIndex`, that of its last change; `version`, its changes
 * since creation (1 when created). They are functions of the log, so every replica agrees.
 *
 * Keys are kept twice: a `Map` by key for point operations, and a B+ tree (`sorted-btree`)
 * in byte order for ranges. An overwrite touches only the Map's entry (in place); only a key
 * created or deleted touches the tree (bench/micro/ordered-index.bench.ts measured what each
 * costs).
 *
 * Key and value bytes are copied once, into slabs (byte-slabs.ts; keys and values in slabs of
 * their own, and the values' slabs reused once nobody can hold them), from the entry's bytes
 * where they lie: a plain put, the common request, is read in place (readKvPutInPlace) with
 * no object made for the request, and an overwrite changes its entry's fields in place. The
 * watch history is told of each change through a {@link KvChangeSink}, with no object made
 * for it either. So a put in a batch costs some 0.25 µs of CPU and no allocation of its own
 * (bench/micro/kv-apply.bench.ts).
 *
 * A key may be attached to a lease (leases.ts): a put names it, and the key is deleted when
 * the lease is revoked or expires. A put without one detaches the key from its lease.
 *
 * Snapshot format, version 6 (all integers little-endian):
 *
 * ```
 * offset  size       field
 * 0       4          magic "RKVS"
 * 4       1          format version = 6
 * 5       8          appliedIndex (u64)
 * 13      8          clientIdNext (u64): the first id the next register-clients hands out
 * 21      4          session count n (u32)
 * 25      ...        n sessions, by ascending lastIndex:
 *                      clientId u64 | lastSeq u64 | lastIndex u64 | result u8
 *                      | deleted u64 (only after result 6, delete-range)
 *                      | u32 length + bytes (only after result 7, txn: its encoded result)
 *                      | id u64 | ttlMs u32 (only after result 8, lease granted)
 *                      | found u8 | deleted u64 (only after result 9, lease revoked)
 *                      | code u8: 1 LEASE_NOT_FOUND, 2 LEASES_FULL (only after result 10, refused)
 *                      | u32 length + bytes (only after result 11, app: its encoded outcome)
 *                      | u32 length + bytes (only after result 12, redis: its RESP2 reply)
 *         4          entry count m (u32)
 *         ...        m entries, by ascending key bytes:
 *                      key (u32 length + bytes) | value (u32 length + bytes)
 *                      | createIndex u64 | modIndex u64 | version u64 | lease u64 (0: none)
 *         ...        the lease table (leases.ts): next id u64, count u32, (id u64, ttlMs u32) each
 *         1          1 if the cluster runs a state machine of its own (app-machine.ts), else 0
 *         ...        (only if 1) its snapshot: u32 length + bytes
 * end-4   4          CRC32 (zlib.crc32) of every byte before it
 * ```
 *
 * Versions 2 to 5, written by earlier builds, are read too: version 5 is version 6 without
 * result 12; version 4 is version 5 without the
 * state machine's flag and section and result 11; version 3 is version 4 without
 * the entries' lease, the lease table and results 8 to 10; version 2 is version 3 without the
 * three revision fields, and each of its keys gets createIndex = modIndex = the snapshot's
 * appliedIndex and version 1 (the same on every replica that restores it).
 *
 * Result codes: 1 put, 2 delete (existed), 3 delete (absent), 4 cas (swapped),
 * 5 cas (not swapped), 6 delete-range (its count follows), 7 txn (its encoded result follows),
 * 8 lease granted, 9 lease revoked, 10 refused, 11 app (its outcome follows), 12 redis (its
 * reply follows); 0 is invalid.
 * Version 2 has none of 6 to 11.
 *
 * Other format versions (version 1 had u32 client ids and no clientIdNext) are refused with
 * KvError UNSUPPORTED_FORMAT: this build does not read them.
 */

import { boundsOf, checkRangeQuery, countRange, newOrderedKeys, rangeEntries, readRange, type KvRangeQuery, type KvRangeResult, type OrderedKeys, type RangeSource } from './range.ts';
import { fail } from '../base/index.ts';
import { APP_RESULT_BYTES_MAX, APP_SNAPSHOT_BYTES_MAX, appSnapshotBytes, errorOutcome, restoreApp, runApp, type SnapshotCancel, type StateMachine } from './app-machine.ts';
import { Buffer } from 'node:buffer';
import { crc32 } from 'node:zlib';
import { ByteCopier, ByteReader, ByteWriter, DecodeError, getU32, U32_MAX } from '../codec/index.ts';
import { checkKvBatchFraming, decodeKvRequestInPlace, KV_BATCH_HEADER_BYTES, isKvRegisterClientsRequest, isKvSessionRequest, KV_KEY_BYTES_MAX, KV_VALUE_BYTES_MAX, readKvPutInPlace, type KvPutFields } from './commands.ts';
import { ByteSlabs, type Slab } from './byte-slabs.ts';
import { compareHolds, encodeTxnResult, getResultBytes, KV_TXN_READ_BYTES_MAX, KV_TXN_RESULT_BYTES_MAX, type KvTxn, type TxnOpResult } from './txn.ts';
import { rangeEntryBytes } from './range.ts';
import { LeaseTable, type LeaseInfo } from './leases.ts';
import { KV_CLIENT_ID_REGISTERED_FIRST, SessionTable, type KvSession } from './session-table.ts';
import type { KvCommand, KvLogRequest, KvResult, KvWriteResult } from './commands.ts';
import { KvError, KvErrorCode } from './errors.ts';
import { KV_RESULT_PUT, KvApplyOutcomes } from './apply-outcomes.ts';
import { KeyIndex } from './key-index.ts';
import { checkRedisCommand, REDIS_READ_REPLY_BYTES_MAX, REDIS_WRITE_REPLY_BYTES_MAX, runRedis, runRedisReads, type RedisStore } from './redis.ts';

export interface KvApplyOutcome {
  /** The request's session; 0 for a register-clients request (it has none) or an invalid one. */
  clientId: number;
  seq: number;
  /**
   * The result for this request: freshly computed, or the cached one for a retried
   * duplicate of the session's latest request; for register-clients, the first id of the
   * block. Undefined only when status is 'stale', 'expired' or 'invalid'.
   */
  result: KvWriteResult | undefined;
  /**
   * 'applied': the command ran now. 'duplicate': it already ran; `result` is the cached one.
   * 'stale': the session has since applied a later request, so this one's result is gone
   * and nothing ran. 'expired': no session for the client and seq > 1, so we cannot tell
   * whether the request already ran; nothing ran (the client sees SESSION_EXPIRED).
   * 'invalid': the request does not decode (in a batch), or is a register-clients request
   * the counter cannot serve; nothing ran.
   */
  status: 'applied' | 'duplicate' | 'stale' | 'expired' | 'invalid';
  /**
   * For a duplicate: the index of the entry where the request applied (its result, a
   * transaction's reads included, is of the state there). Otherwise undefined: the entry's own.
   */
  appliedAt?: number;
}

/** The outcome of a request in a batch that does not decode: nothing ran. */
const OUTCOME_INVALID: KvApplyOutcome = Object.freeze({ clientId: 0, seq: 0, result: undefined, status: 'invalid' });

export interface KvStateMachineOptions {
  /** Maximum number of client sessions kept; the oldest one is evicted beyond it. Default 100_000. */
  sessionsMax?: number;
  /**
   * Bytes of transaction results the sessions keep at most (a transaction's reads make its
   * result large); beyond it, the oldest sessions are evicted. Default
   * {@link KV_SESSION_RESULT_BYTES_MAX_DEFAULT}; at least {@link KV_SESSION_RESULT_BYTES_MIN}.
   */
  sessionResultBytesMax?: number;
  /**
   * Makes the cluster's own state machine (app-machine.ts), once, for this store: its commands
   * ('app') ride the store's sessions and its state the store's snapshots. Every replica must
   * have one, or none.
   */
  app?: () => StateMachine;
  /**
   * The key of the hash that finds keys (key-index.ts), as two 32-bit halves; random when not
   * given. Nothing a replica answers depends on it: the simulator sets it so that a run
   * repeats exactly.
   */
  keyHashSeed?: readonly [number, number];
}

/** One committed change to the data, in log order. */
export interface KvChange {
  /** The log index of the entry that made the change. */
  index: number;
  /**
   * The change's place among the changes its entry made, from 0: a batch's requests (see
   * commands.ts), and a delete-range's keys, each take the next. (index, position) strictly
   * increases along the log.
   */
  position: number;
  key: Uint8Array;
  /** The new value; undefined: the key was deleted. */
  value: Uint8Array | undefined;
  /** The key's createIndex after the change (its modIndex is `index`); 0 for a delete. */
  createIndex: number;
  /** The key's version after the change: 1 when this change created it; 0 for a delete. */
  version: number;
}

export const KV_SESSIONS_MAX_DEFAULT = 100_000;
export const KV_SESSION_RESULT_BYTES_MAX_DEFAULT = 64 << 20;
/** The smallest bound on kept results: two of the largest, so the newest result is never evicted for its own size. */
export const KV_SESSION_RESULT_BYTES_MIN = 2 * KV_TXN_RESULT_BYTES_MAX;
export const KV_SNAPSHOT_FORMAT_VERSION = 6;
/** The formats of earlier builds, still read (see the module comment). */
const KV_SNAPSHOT_FORMAT_VERSION_NO_APP = 4;
/** Format 5: a session's result is never a Redis command's (format 6 adds result code 12). */
const KV_SNAPSHOT_FORMAT_VERSION_NO_REDIS = 5;
const KV_SNAPSHOT_FORMAT_VERSION_NO_REVISIONS = 2;
const KV_SNAPSHOT_FORMAT_VERSION_NO_LEASES = 3;
/** Bytes of an entry's revisions and lease in a snapshot: createIndex, modIndex, version, lease. */
const SNAPSHOT_REVISION_BYTES = 4 * 8;
export { KV_CLIENT_ID_REGISTERED_FIRST } from './session-table.ts';

/** "RKVS" in ASCII. */
const SNAPSHOT_MAGIC = Uint8Array.of(0x52, 0x4b, 0x56, 0x53);
/** A session's bytes in a snapshot, the smallest: a delete-range's result takes 8 more. */
const SNAPSHOT_SESSION_BYTES = 8 + 8 + 8 + 1;
/** Keys a delete-range deletes per walk of the tree (see deleteRangeInSlices). */
const DELETE_RANGE_SLICE_KEYS = 1024;
/** The result code of a delete-range, whose count follows it. */
const RESULT_CODE_DELETE_RANGE = 6;
/** The result code of a transaction, whose encoded result follows it. */
const RESULT_CODE_TXN = 7;
const RESULT_CODE_LEASE_GRANT = 8;
const RESULT_CODE_LEASE_REVOKE = 9;
const RESULT_CODE_REFUSED = 10;
/** The result code of a command of the cluster's own state machine, whose encoded outcome follows it. */
const RESULT_CODE_APP = 11;
/** The result code of Redis commands (redis.ts), whose RESP2 reply follows it. */
const RESULT_CODE_REDIS = 12;
const REFUSED_CODES = [undefined, 'LEASE_NOT_FOUND', 'LEASES_FULL'] as const;
const SNAPSHOT_CRC_BYTES = 4;
/** Magic, version, appliedIndex, clientIdNext, session count, entry count, CRC: a snapshot of nothing (format 3; 4 adds the lease table, 5 the state machine's section). */
const SNAPSHOT_EMPTY_BYTES = 4 + 1 + 8 + 8 + 4 + 4 + SNAPSHOT_CRC_BYTES;
const LENGTH_PREFIX_BYTES = 4;

/**
 * Results are few and immutable, so each is one shared frozen object; a session caches a
 * reference and a snapshot stores a one-byte code.
 */
const RESULT_PUT = KV_RESULT_PUT;
const RESULT_DELETE_EXISTED: KvResult = Object.freeze({ op: 'delete', existed: true });
const RESULT_DELETE_ABSENT: KvResult = Object.freeze({ op: 'delete', existed: false });
const RESULT_CAS_SWAPPED: KvResult = Object.freeze({ op: 'cas', swapped: true });
const RESULT_CAS_FAILED: KvResult = Object.freeze({ op: 'cas', swapped: false });
/** Index i holds the result with snapshot code i; code 0 is invalid. */
const RESULT_BY_CODE: readonly (KvResult | undefined)[] = [
  undefined,
  RESULT_PUT,
  RESULT_DELETE_EXISTED,
  RESULT_DELETE_ABSENT,
  RESULT_CAS_SWAPPED,
  RESULT_CAS_FAILED,
];

/**
 * A key, its value and revisions. The key and the value are bytes in the store's slabs
 * (byte-slabs.ts): the value as a slab and a range in it, so that an overwrite changes three
 * numbers and makes no object; `value` makes a view of it when asked, and the slab is never
 * reused after (`valueToCopy` makes one for a copy made before the store changes).
 */
class KvEntry implements RangeSource {
  constructor(
    /** The key's latin1 string (one char per byte): how the ordered index and the leases know it. */
    readonly id: string,
    /**
     * The key's own bytes, keySlab.bytes[keyAt, keyAt + keyLength) (moved only when its slab is
     * compacted). The view is kept for what hands the key out (ranges, watch events, the
     * history: one view per key, not one per use); lookups read the bytes through the slab.
     */
    public key: Uint8Array,
    public keySlab: Slab,
    public keyAt: number,
    readonly keyLength: number,
    /** The value is valueSlab.bytes[valueAt, valueAt + valueLength): never changed while anybody may hold a view of it (see getShared). */
    public valueSlab: Slab,
    public valueAt: number,
    public valueLength: number,
    readonly createIndex: number,
    public modIndex: number,
    public version: number,
    /** The lease the key is attached to; 0: none. */
    public lease: number,
  ) {}

  /** A view of the value's bytes: they stay as they are, whatever is written later (its slab is exposed: never reused). */
  get value(): Uint8Array {
    return this.valueSlab.expose(this.valueAt, this.valueLength);
  }

  /** A view of the value's bytes for a copy made at once, before the store changes: after that they may be written over. */
  valueToCopy(): Uint8Array {
    return this.valueSlab.bytes.subarray(this.valueAt, this.valueAt + this.valueLength);
  }
}

/**
 * Told of each committed change, in log order, with no object made for it: the watch
 * history keeps millions of them. The value is valueSlab.bytes[valueAt, valueAt +
 * valueLength) (valueSlab undefined: the key was deleted). Those bytes stay as they are while
 * the sink holds the slab (`hold`, then `letGo` when it forgets the change), or for good once
 * it takes a view of them from the slab's `expose` (to hand to anyone else); otherwise the
 * slab may be written over once the key's value changes. The key's bytes are never changed.
 * See {@link KvChange} for the fields.
 */
export interface KvChangeSink {
  change(index: number, position: number, key: Uint8Array, valueSlab: Slab | undefined, valueAt: number, valueLength: number, createIndex: number, version: number): void;
}

/** Entries looked at per write while the slabs are being compacted (see ByteSlabs). */
const COMPACT_ENTRIES_PER_WRITE = 4;

/**
 * The key-value state machine.
 *
 * Client sessions make writes exactly-once (Raft thesis §6.3, "Implementing linearizable
 * semantics"). A client numbers its requests 1, 2, 3, ... and retries a request with the
 * same seq until it gets an answer. Per clientId the machine keeps the highest seq applied
 * and its result:
 *
 * - seq > lastSeq: the command is applied (status 'applied') and becomes the session's
 *   latest request.
 * - seq === lastSeq: a retry of a request that already ran. The cached result is returned
 *   (status 'duplicate') and the command is not applied again, so a retried put cannot
 *   overwrite a newer write by another client.
 * - seq < lastSeq: the client has already moved on, so this copy is a stray from an older
 *   attempt; status 'stale', nothing changes and no result is returned.
 *
 * Sessions are bounded by `sessionsMax`. When a new client would exceed it, the session
 * whose last applied log index is smallest is evicted; the order depends only on the
 * applied entries, so every replica evicts the same one. A request from an unknown client
 * with seq > 1 is answered 'expired' and changes nothing: its session may have been
 * evicted, so the machine cannot tell whether this request already ran, and the thesis's
 * answer is to refuse rather than risk applying it twice. A request with seq === 1 from an
 * unknown client opens a session. (A client whose very first request is retried after its
 * session was evicted would have it applied twice; with a large `sessionsMax` that needs
 * `sessionsMax` other clients to write in between. Registration below hands out ids but
 * does not open sessions, so it does not close that gap: the thesis's full RegisterClient,
 * where a session exists from registration on and seq 1 is refused without one, would.)
 *
 * Sessions are part of the snapshot, so deduplication survives snapshot and restore.
 *
 * Client ids come from the machine itself (the thesis's RegisterClient): a register-clients
 * request takes the next `count` ids of a counter that only grows, starting at
 * KV_CLIENT_ID_REGISTERED_FIRST. The counter is replicated state like the data (it is in
 * the snapshot), so no id is handed out twice, whatever the clients' processes forget.
 *
 * Index contract: every log index is handed over exactly once and in increasing order,
 * either to `apply` (entries that carry a KV request) or to `skip` (entries that do not);
 * gaps are allowed. Breaking this is a bug in the caller and throws a plain Error.
 */
export class KvStateMachine {
  private readonly sessionsMax: number;
  /** Data, found by the key's bytes (key-index.ts): a put makes no string to find its key. */
  private readonly entries: KeyIndex<KvEntry>;
  /** The same entries in byte order of their keys (latin1 strings compare as their bytes). */
  private readonly ordered: OrderedKeys<KvEntry> = newOrderedKeys();
  /**
   * Sessions by clientId, in the order of their last write (see SessionTable).
   * Invariant: that order is ascending lastIndex, because a session moves to its end
   * whenever it applies a request, and indexes only grow. The first session is therefore
   * the one to evict.
   */
  private readonly sessions = new SessionTable();
  /** Invariant: every session's lastIndex <= appliedIndexValue. */
  private appliedIndexValue = 0;
  /**
   * The first client id the next register-clients request gets.
   * Invariant: KV_CLIENT_ID_REGISTERED_FIRST <= clientIdNextValue <= Number.MAX_SAFE_INTEGER,
   * and it never decreases: every id in [KV_CLIENT_ID_REGISTERED_FIRST, clientIdNextValue)
   * has been handed out exactly once.
   */
  private clientIdNextValue = KV_CLIENT_ID_REGISTERED_FIRST;
  /** The position the next change of the entry being applied gets (reset at each entry). */
  private positionNext = 0;
  private readonly sessionResultBytesMax: number;
  /** Invariant: the sum of the encoded transaction results the sessions hold, at most sessionResultBytesMax. */
  private sessionResultBytes = 0;
  /** Copied on every change, so a listener may unsubscribe while being notified. */
  private listeners: readonly ((change: KvChange) => void)[] = [];
  private readonly leaseTable = new LeaseTable();
  /** Told of each lease granted (its TTL) and each ended (undefined); see onLeaseChange. */
  private leaseListener: ((id: number, ttlMs: number | undefined) => void) | undefined;
  /** Told of every change without an object made for it (see setChangeSink). */
  private changeSink: KvChangeSink | undefined;
  /** Copies keys and values into their slabs, keeping a view of the entry it copies from until its forgetSource, at the end of each apply. */
  private readonly copier = new ByteCopier();
  /** The bytes of every key. */
  private readonly keySlabs = new ByteSlabs(false, this.copier);
  /** The bytes of every value, in slabs reused once nobody can hold them. */
  private readonly valueSlabs = new ByteSlabs(true, this.copier);
  /** While compacting the slabs: the slot of `entries` to look at next (see compactSome); -1: not compacting. */
  private compactingSlot = -1;
  /** Where readKvPutInPlace leaves a put's fields: one object, reused. */
  private readonly put: KvPutFields = { clientId: 0, seq: 0, keyAt: 0, keyLength: 0, valueAt: 0, valueLength: 0 };

  /** The cluster's own state machine, if it has one. */
  private readonly app: StateMachine | undefined;
  /** The cluster's own machine's restore, while it runs async (restoreApp); settled, it is kept: its outcome is read once. */
  private restoringValue: Promise<void> | undefined;

  constructor(options: KvStateMachineOptions = {}) {
    this.app = options.app?.();
    this.entries = new KeyIndex<KvEntry>(options.keyHashSeed);
    const sessionsMax = options.sessionsMax ?? KV_SESSIONS_MAX_DEFAULT;
    if (!Number.isInteger(sessionsMax) || sessionsMax < 1 || sessionsMax > U32_MAX) {
      throw new KvError(KvErrorCode.INVALID_ARGUMENT, `sessionsMax ${sessionsMax} is not an integer in [1, 2^32)`);
    }
    this.sessionsMax = sessionsMax;
    const resultBytesMax = options.sessionResultBytesMax ?? KV_SESSION_RESULT_BYTES_MAX_DEFAULT;
    if (!Number.isSafeInteger(resultBytesMax) || resultBytesMax < KV_SESSION_RESULT_BYTES_MIN) {
      throw new KvError(KvErrorCode.INVALID_ARGUMENT, `sessionResultBytesMax ${resultBytesMax} is not an integer of at least KV_SESSION_RESULT_BYTES_MIN (${KV_SESSION_RESULT_BYTES_MIN})`);
    }
    this.sessionResultBytesMax = resultBytesMax;
  }

  /** The index of the last log entry applied or skipped; 0 before any. */
  get appliedIndex(): number {
    return this.appliedIndexValue;
  }

  /** The number of keys. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The bytes of keys and values the store holds (`liveBytes`), and what its slabs hold
   * beyond them, alive for their sake (`wasteBytes`: see kv/byte-slabs.ts).
   */
  get slabBytes(): { liveBytes: number; wasteBytes: number } {
    return { liveBytes: this.keySlabs.liveBytes + this.valueSlabs.liveBytes, wasteBytes: this.keySlabs.wasteBytes + this.valueSlabs.wasteBytes };
  }

  /** The first client id the next register-clients request will get. */
  get clientIdNext(): number {
    return this.clientIdNextValue;
  }

  /**
   * Applies the KV request in the log entry at `index` (which must be above appliedIndex;
   * gaps are indexes the caller passed to `skip`, or will not apply).
   *
   * If `data` is not a valid request this throws KvError CORRUPT_COMMAND and changes
   * nothing, appliedIndex included: a committed entry that does not decode means the log
   * or the proposer is broken, and the caller must decide (normally: stop the node).
   */
  apply(index: number, data: Uint8Array): KvApplyOutcome {
    this.assertNextIndex(index);
    let outcome: KvApplyOutcome;
    if (readKvPutInPlace(data, 0, data.length, this.put)) {
      this.appliedIndexValue = index;
      this.positionNext = 0;
      const { clientId, seq } = this.put;
      outcome = this.applyPut(index, data, this.put) ?? { clientId, seq, result: RESULT_PUT, status: 'applied' };
    } else {
      const request = decodeKvRequestInPlace(data);
      this.appliedIndexValue = index;
      this.positionNext = 0;
      outcome = this.applyDecoded(index, request);
    }
    this.copier.forgetSource();
    return outcome;
  }

  /**
   * Applies a batch entry (see `KvBatchBuilder`): each request in order, as `apply` would.
   * A request that does not decode changes nothing and gets status 'invalid' (the same on
   * every replica); a batch whose framing is broken throws CORRUPT_COMMAND and changes nothing.
   * With `told` false (a replica that answers none of the batch's writes), no outcomes are
   * made and the array returned is empty. (The host's path is {@link applyBatchInto}.)
   */
  applyBatch(index: number, data: Uint8Array, told = true): KvApplyOutcome[] {
    if (!told) {
      this.applyBatchInto(index, data, undefined);
      return [];
    }
    const outcomes = new KvApplyOutcomes();
    this.applyBatchInto(index, data, outcomes);
    return outcomes.toArray();
  }

  /**
   * {@link applyBatch}, its outcomes written into `outcomes` (cleared first), where a put
   * that applied makes no object; none recorded when `outcomes` is undefined.
   */
  applyBatchInto(index: number, data: Uint8Array, outcomes: KvApplyOutcomes | undefined): void {
    this.assertNextIndex(index);
    // The framing is checked whole first (a broken one throws and changes nothing).
    checkKvBatchFraming(data);
    this.appliedIndexValue = index;
    this.positionNext = 0;
    outcomes?.clear();
    const put = this.put;
    let at = KV_BATCH_HEADER_BYTES;
    while (at < data.length) {
      const length = getU32(data, at);
      at += 4;
      // A plain put is applied from its bytes where they lie; anything else is decoded first.
      if (readKvPutInPlace(data, at, length, put)) {
        const { clientId, seq } = put;
        const refused = this.applyPut(index, data, put);
        if (refused === undefined) outcomes?.addPutApplied(clientId, seq);
        else outcomes?.add(refused);
      } else {
        const outcome = this.applyEncoded(index, data.subarray(at, at + length));
        outcomes?.add(outcome);
      }
      at += length;
    }
    this.copier.forgetSource();
  }

  /** Decodes and applies one request of a batch: one that does not decode changes nothing ('invalid'). */
  private applyEncoded(index: number, bytes: Uint8Array): KvApplyOutcome {
    let request: KvLogRequest;
    try {
      request = decodeKvRequestInPlace(bytes);
    } catch (error) {
      if (!(error instanceof KvError)) throw error;
      return OUTCOME_INVALID;
    }
    return this.applyDecoded(index, request);
  }

  /**
   * A put read in place (readKvPutInPlace): as applyRequest and execute do for one decoded.
   * Undefined if it applied (its result is RESULT_PUT); else the session's refusal, and
   * nothing ran.
   */
  private applyPut(index: number, data: Uint8Array, put: KvPutFields): KvApplyOutcome | undefined {
    const { clientId, seq } = put;
    const session = this.sessions.get(clientId);
    const refusal = sessionRefusal(session, clientId, seq);
    if (refusal !== undefined) return refusal;
    const e = this.write(data, put.keyAt, put.keyLength, data, put.valueAt, put.valueLength, index, 0);
    this.recordSession(session, clientId, seq, index, RESULT_PUT);
    this.notifyWrite(index, e);
    return undefined;
  }

  private applyDecoded(index: number, request: KvLogRequest): KvApplyOutcome {
    if (isKvRegisterClientsRequest(request)) return this.registerClients(request.count);
    if (!isKvSessionRequest(request)) {
      const revoked = this.revokeLease(index, request.id);
      if (revoked.error !== undefined) throw revoked.error.error;
      return { clientId: 0, seq: 0, result: revoked.result, status: 'applied' };
    }
    return this.applyRequest(index, request.clientId, request.seq, request.command);
  }

  /**
   * Hands out the next `count` client ids. Refused ('invalid') only if the counter would
   * pass 2^53 - 1, which the module's arithmetic puts centuries away.
   */
  private registerClients(count: number): KvApplyOutcome {
    const first = this.clientIdNextValue;
    if (count > Number.MAX_SAFE_INTEGER - first) return OUTCOME_INVALID;
    this.clientIdNextValue = first + count;
    return { clientId: 0, seq: 0, result: { op: 'register-clients', clientIdFirst: first }, status: 'applied' };
  }

  private applyRequest(index: number, clientId: number, seq: number, command: KvCommand): KvApplyOutcome {
    const session = this.sessions.get(clientId);
    const refusal = sessionRefusal(session, clientId, seq);
    if (refusal !== undefined) return refusal;

    const change = this.execute(index, command);
    this.recordSession(session, clientId, seq, index, change.result);
    if (change.written !== undefined) this.notifyWrite(index, change.written);
    else if (change.deleted !== undefined) this.notifyDelete(index, change.deleted);
    else if (change.deleteRange !== undefined) this.deleteRangeInSlices(index, change.deleteRange.low, change.deleteRange.high);
    else if (change.error !== undefined) throw change.error.error;
    return { clientId, seq, result: change.result, status: 'applied' };
  }

  /** Records that the log entry at `index` carries no KV request (advances appliedIndex). */
  skip(index: number): void {
    this.assertNextIndex(index);
    this.appliedIndexValue = index;
  }

  /** The value of `key`, as a copy; undefined if absent. */
  get(key: Uint8Array): Uint8Array | undefined {
    return this.entries.find(key)?.valueToCopy().slice();
  }

  /**
   * Tells `sink` of every change from now on (replacing any sink before it), inside `apply`,
   * after the state has changed, as `onChange` does but with no object made per change. It
   * must not throw.
   */
  setChangeSink(sink: KvChangeSink | undefined): void {
    this.changeSink = sink;
  }

  /**
   * The stored value of `key` itself, not a copy: for a caller that copies it out at once
   * (into a reply frame). It must never be modified. It stays valid: a value is replaced by
   * a new one when the key is written, never changed in place.
   */
  getShared(key: Uint8Array): Uint8Array | undefined {
    return this.entries.find(key)?.value;
  }

  /**
   * A view of the value of `key`, for a copy made at once: after the store next changes, its
   * bytes may be written over (unlike getShared's, which keeps its slab from being written
   * again for good).
   */
  getTransient(key: Uint8Array): Uint8Array | undefined {
    return this.entries.find(key)?.valueToCopy();
  }

  /**
   * The key's value and revisions: the store's own entry, which later writes change in place
   * (its `value`, a view of the stored bytes as getShared gives, read while the key is there);
   * undefined if absent.
   */
  getEntry(key: Uint8Array): RangeSource | undefined {
    return this.entries.find(key);
  }

  /** Lease `id`: its TTL and how many keys it holds; undefined if it does not exist. */
  leaseInfo(id: number): LeaseInfo | undefined {
    return this.leaseTable.info(id);
  }

  /** Every lease, in the order granted. */
  leases(): Iterable<LeaseInfo> {
    return this.leaseTable.all();
  }

  /** The lease `key` is attached to; 0 for none (or an absent key). */
  leaseOf(key: Uint8Array): number {
    return this.entries.find(key)?.lease ?? 0;
  }

  /**
   * Tells `listener` of each lease granted (with its TTL) and each ended, revoked or expired
   * (with undefined), inside `apply`: the leader's lease clock follows the table so. One
   * listener; it must not throw.
   */
  onLeaseChange(listener: ((id: number, ttlMs: number | undefined) => void) | undefined): void {
    this.leaseListener = listener;
  }

  /**
   * Reads a range of keys in byte order (range.ts): throws KvError INVALID_ARGUMENT for a bad
   * query. Values are the stored arrays (see getShared): copy them out before the next apply.
   */
  range(query: KvRangeQuery): KvRangeResult {
    checkRangeQuery(query);
    return readRange(this.ordered, query, boundsOf(query, keyString), this.appliedIndexValue);
  }

  /**
   * Subscribes to every committed change, in log order, once each. The listener runs inside
   * `apply`, after the state has changed; it gets the stored key and value bytes (not
   * copies), which it must not modify. Listeners must not throw: if one does, the others
   * still run, and then the first error propagates out of `apply` (whose change has been
   * made). Returns an unsubscribe function (calling it again does nothing).
   */
  onChange(listener: (change: KvChange) => void): () => void {
    this.listeners = [...this.listeners, listener];
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      const at = this.listeners.indexOf(listener);
      this.listeners = this.listeners.filter((_, i) => i !== at);
    };
  }

  /** Asks the cluster's own state machine `request`: its encoded outcome (app-machine.ts); an error outcome if there is none. */
  query(request: Uint8Array): Uint8Array {
    const app = this.app;
    if (app === undefined) return errorOutcome('this cluster has no state machine of its own');
    return runApp(() => app.query(request));
  }

  /**
   * The restore of the cluster's own machine from the snapshot this store was made from, if
   * the machine restores async: until it settles, the store must not apply or answer anything.
   * It rejects with CORRUPT_SNAPSHOT if the machine could not restore.
   */
  get restoring(): Promise<void> | undefined {
    return this.restoringValue;
  }

  /** Whether the store hosts a state machine of the cluster's own. */
  get hasApp(): boolean {
    return this.app !== undefined;
  }

  /**
   * A deterministic binary snapshot of the data, the sessions, the client id counter and
   * appliedIndex (format in the module comment): replicas in the same state produce the
   * same bytes. APPLY_FAILED if the cluster's own state machine gives its snapshot as an async
   * sequence: {@link takeSnapshot} takes either.
   */
  snapshot(): Uint8Array {
    const taken = this.takeSnapshot();
    if (!(taken instanceof Promise)) return taken;
    taken.catch(() => undefined);
    throw new KvError(KvErrorCode.APPLY_FAILED, "the state machine's snapshot() gave an async sequence: take the store's snapshot with takeSnapshot()");
  }

  /**
   * {@link snapshot}, or its promise when the cluster's own state machine gives its snapshot
   * as an async sequence: the store's part is taken now, and the snapshot is whole once the
   * machine's is (it rejects with APPLY_FAILED if the machine's fails).
   */
  takeSnapshot(cancel?: SnapshotCancel): Uint8Array | Promise<Uint8Array> {
    const appState = this.app === undefined ? undefined : this.appSnapshot(this.app, cancel);
    if (!(appState instanceof Promise)) return this.encodeSnapshot(appState, true);
    const body = this.encodeSnapshot(undefined, false);
    return appState.then((state) => sealSnapshot(body, state));
  }

  /**
   * The snapshot's bytes up to its state machine section; with that section (`appState`, or
   * none) and the CRC if `sealed`.
   */
  private encodeSnapshot(appState: Uint8Array | undefined, sealed: boolean): Uint8Array {
    let sizeBytes = SNAPSHOT_EMPTY_BYTES + this.sessions.size * SNAPSHOT_SESSION_BYTES;
    for (const session of this.sessions.values()) sizeBytes += resultExtraBytes(session.result);
    for (const entry of this.ordered.values()) sizeBytes += 2 * LENGTH_PREFIX_BYTES + entry.key.length + entry.valueLength + SNAPSHOT_REVISION_BYTES;
    sizeBytes += this.leaseTable.encodedBytes();
    // The state machine section's flag and bytes; an unsealed body has neither, nor the CRC.
    if (sealed) sizeBytes += 1 + (appState === undefined ? 0 : LENGTH_PREFIX_BYTES + appState.length);
    else sizeBytes -= SNAPSHOT_CRC_BYTES;

    const writer = new ByteWriter(sizeBytes);
    writer.raw(SNAPSHOT_MAGIC);
    writer.u8(KV_SNAPSHOT_FORMAT_VERSION);
    writer.u64Number(this.appliedIndexValue);
    writer.u64Number(this.clientIdNextValue);
    writer.u32(this.sessions.size);
    for (const session of this.sessions.values()) {
      writer.u64Number(session.clientId);
      writer.u64Number(session.lastSeq);
      writer.u64Number(session.lastIndex);
      writeResult(writer, session.result);
    }
    writer.u32(this.entries.size);
    for (const entry of this.ordered.values()) {
      writer.bytes(entry.key);
      writer.bytes(entry.valueToCopy());
      writer.u64Number(entry.createIndex);
      writer.u64Number(entry.modIndex);
      writer.u64Number(entry.version);
      writer.u64Number(entry.lease);
    }
    this.leaseTable.write(writer);
    if (sealed) {
      writer.u8(appState === undefined ? 0 : 1);
      if (appState !== undefined) writer.bytes(appState);
      const checksum = crc32(writer.finish());
      writer.u32(checksum);
    }
    if (!(writer.offset === sizeBytes)) fail(`snapshot wrote ${writer.offset} of ${sizeBytes} bytes`);
    return writer.finish();
  }

  /**
   * Rebuilds a state machine from `snapshot()` bytes. The CRC is checked before anything
   * else is read; damaged or malformed bytes throw KvError CORRUPT_SNAPSHOT with the
   * DecodeError as `cause`; a snapshot of another format version throws KvError
   * UNSUPPORTED_FORMAT. Keys and values are copied, so the result does not alias
   * `bytes`. If the snapshot holds more sessions than `sessionsMax` allows, the oldest are
   * evicted (all replicas must use the same options to stay identical).
   */
  static restore<T extends KvStateMachine>(this: new (options?: KvStateMachineOptions) => T, bytes: Uint8Array, options?: KvStateMachineOptions): T {
    const machine = new this(options);
    try {
      machine.load(bytes);
    } catch (error) {
      // A restore the state machine began async is not awaited by anyone now: its failure must not go unhandled.
      machine.restoringValue?.catch(() => undefined);
      if (error instanceof DecodeError) {
        throw new KvError(KvErrorCode.CORRUPT_SNAPSHOT, `corrupt KV snapshot: ${error.message}`, { cause: error });
      }
      throw error;
    }
    return machine;
  }

  private assertNextIndex(index: number): void {
    if (!(Number.isSafeInteger(index))) fail(`log index ${index} is a safe integer`);
    if (!(index > this.appliedIndexValue)) fail(`log index ${index} is above appliedIndex ${this.appliedIndexValue}`);
  }

  /**
   * Runs a command against the data; returns its result and the change it made, if any, at
   * the entry's next position. A delete-range returns its count and the range, deleted by the
   * caller once the session has recorded the result.
   */
  private execute(index: number, command: KvCommand): { result: KvResult; written?: KvEntry | undefined; deleted?: Uint8Array | undefined; deleteRange?: { readonly low: string; readonly high: string | undefined }; error?: { error: unknown } | undefined } {
    if (command.op === 'txn') return this.executeTxn(index, command.txn);
    if (command.op === 'lease-grant') {
      const id = this.leaseTable.grant(command.ttlMs);
      if (id === undefined) return { result: { op: 'refused', code: 'LEASES_FULL' } };
      this.leaseListener?.(id, command.ttlMs);
      return { result: { op: 'lease-grant', id, ttlMs: command.ttlMs } };
    }
    if (command.op === 'lease-revoke') return this.revokeLease(index, command.id);
    if (command.op === 'app') {
      const app = this.app;
      // Deterministic on every replica: all have the machine or none has.
      const encoded = app === undefined ? errorOutcome('this cluster has no state machine of its own') : runApp(() => app.apply(command.data, index));
      return { result: { op: 'app', encoded } };
    }
    if (command.op === 'redis') return this.executeRedis(index, command.commands, command.transaction);
    if (command.op === 'delete-range') {
      const low = keyString(command.key);
      const high = command.end === undefined ? undefined : keyString(command.end);
      // Counted first (the tree counts without a visit per key); deleted once the session has recorded the count.
      return { result: { op: 'delete-range', deleted: countRange(this.ordered, low, high) }, deleteRange: { low, high } };
    }
    switch (command.op) {
      case 'put': {
        const lease = command.lease ?? 0;
        if (lease !== 0 && !this.leaseTable.has(lease)) return { result: { op: 'refused', code: 'LEASE_NOT_FOUND' } };
        return { result: RESULT_PUT, written: this.writeValue(command.key, command.value, index, lease) };
      }
      case 'delete': {
        const gone = this.remove(command.key);
        if (gone === undefined) return { result: RESULT_DELETE_ABSENT };
        return { result: RESULT_DELETE_EXISTED, deleted: gone.key };
      }
      case 'cas': {
        const current = this.entries.find(command.key);
        const matches =
          command.expected === undefined
            ? current === undefined
            : current !== undefined && bytesEqual(current.valueToCopy(), command.expected);
        if (!matches) return { result: RESULT_CAS_FAILED };
        return { result: RESULT_CAS_SWAPPED, written: this.writeValue(command.key, command.value, index, 0) };
      }
    }
  }

  /**
   * Runs a transaction (txn.ts): its compares, then its chosen list in order, each change
   * told to the listeners as it is made. A listener's error does not stop it: the first is
   * returned, to be thrown once the session has recorded the result.
   */
  private executeTxn(index: number, txn: KvTxn): { result: KvResult; error: { error: unknown } | undefined } {
    const succeeded = txn.compares.every((c) => compareHolds(c, this.entries.find(c.key)));
    const ops = succeeded ? txn.then : txn.else;
    // A put naming a lease that does not exist refuses the whole transaction, before anything runs.
    for (const op of ops) if (op.op === 'put' && op.lease !== undefined && !this.leaseTable.has(op.lease)) return { result: { op: 'refused', code: 'LEASE_NOT_FOUND' }, error: undefined };
    const errors = new FirstError();
    const tell = (notify: () => void): void => errors.run(notify);
    /** Read bytes taken so far (txn.ts: the first read that finds anything is whole). */
    let readBytes = 0;
    let puts = 0;
    const results: TxnOpResult[] = [];
    for (const op of ops) {
      switch (op.op) {
        case 'put': {
          const nth = puts++;
          tell(() => this.txnPut(index, op.key, op.value, op.lease ?? 0, nth));
          results.push({ op: 'put' });
          break;
        }
        case 'delete': {
          const gone = this.remove(op.key);
          if (gone !== undefined) tell(() => this.notifyDelete(index, gone.key));
          results.push({ op: 'delete', existed: gone !== undefined });
          break;
        }
        case 'deleteRange': {
          const low = keyString(op.start);
          const high = op.end === undefined ? undefined : keyString(op.end);
          results.push({ op: 'deleteRange', deleted: countRange(this.ordered, low, high) });
          tell(() => this.deleteRangeInSlices(index, low, high));
          break;
        }
        case 'get': {
          const e = this.entries.find(op.key);
          if (e === undefined) {
            results.push({ op: 'get', entry: undefined, truncated: false });
            break;
          }
          const size = getResultBytes(e.valueToCopy());
          if (readBytes > 0 && readBytes + size > KV_TXN_READ_BYTES_MAX) {
            results.push({ op: 'get', entry: undefined, truncated: true });
            break;
          }
          readBytes += size;
          results.push({ op: 'get', entry: { value: e.value, createIndex: e.createIndex, modIndex: e.modIndex, version: e.version }, truncated: false });
          break;
        }
        case 'range': {
          const budget = { bytesMax: Math.max(0, KV_TXN_READ_BYTES_MAX - readBytes), firstAlways: readBytes === 0 };
          const r = readRange(this.ordered, op.query, boundsOf(op.query, keyString), index, budget);
          for (const e of r.entries) readBytes += rangeEntryBytes(e.key, e.value);
          results.push({ op: 'range', result: r });
          break;
        }
      }
    }
    // Encoded now: the values read are the stored arrays, which later entries replace.
    return { result: { op: 'txn', encoded: encodeTxnResult({ succeeded, results }) }, error: errors.first };
  }

  /**
   * Runs Redis commands (redis.ts) at `index`: one, or a MULTI/EXEC's together; each change
   * told to the listeners as it is made. A listener's error does not stop them: the first is
   * returned, as executeTxn does. The reply is bounded (REDIS_WRITE_REPLY_BYTES_MAX): it is
   * kept in the client's session.
   */
  private executeRedis(index: number, commands: readonly (readonly Uint8Array[])[], transaction: boolean): { result: KvResult; error: { error: unknown } | undefined } {
    const errors = new FirstError();
    const tell = (notify: () => void): void => errors.run(notify);
    const store: RedisStore = {
      ...this.redisReader(),
      set: (key, value) => tell(() => this.notifyWrite(index, this.writeValue(key, value, index, 0))),
      delete: (key) => {
        const gone = this.remove(key);
        if (gone === undefined) return false;
        tell(() => this.notifyDelete(index, gone.key));
        return true;
      },
    };
    return { result: { op: 'redis', encoded: runRedis(store, commands, transaction, REDIS_WRITE_REPLY_BYTES_MAX) }, error: errors.first };
  }

  /**
   * Runs Redis commands that only read (checkRedisCommand says so) against the state applied
   * so far: their RESP2 replies, one after another, as many as fit REDIS_READ_REPLY_BYTES_MAX
   * (at least one; the caller asks again for the rest: runRedisReads).
   */
  redisRead(commands: readonly (readonly Uint8Array[])[]): Uint8Array {
    for (const command of commands) {
      const checked = checkRedisCommand(command);
      if ('kind' in checked && checked.kind !== 'read') fail('a Redis read runs only commands that read');
    }
    const refuse = (): never => fail('a Redis read changes nothing');
    return runRedisReads({ ...this.redisReader(), set: refuse, delete: refuse }, commands, REDIS_READ_REPLY_BYTES_MAX);
  }

  /** The store's reads as Redis commands see them (values valid until the store changes: see RedisStore.get). */
  private redisReader(): Pick<RedisStore, 'get' | 'size' | 'keysFrom'> {
    return {
      get: (key) => this.entries.find(key)?.valueToCopy(),
      size: () => this.entries.size,
      keysFrom: (from) => mapIterable(rangeEntries(this.ordered, from === undefined ? '' : keyString(from), undefined), (e) => e.key),
    };
  }

  /**
   * Makes the `nth` put (from 0) of the transaction being applied at `index`, and tells the
   * listeners (which may throw, after the write). A seam for the simulator's planted bug that
   * applies a transaction in two entries (sim/host-bugs.ts); nothing else overrides it.
   */
  protected txnPut(index: number, key: Uint8Array, value: Uint8Array, lease: number, nth: number): void {
    void nth;
    this.notifyWrite(index, this.writeValue(key, value, index, lease));
  }

  /**
   * Ends lease `id` (a revoke, or an expiry the leader proposed): deletes its keys in byte
   * order, each told to the listeners; a listener's error is returned, as executeTxn does.
   */
  private revokeLease(index: number, id: number): { result: KvResult; error: { error: unknown } | undefined } {
    const keys = this.leaseTable.revoke(id);
    if (keys === undefined) return { result: { op: 'lease-revoke', found: false, deleted: 0 }, error: undefined };
    this.leaseListener?.(id, undefined);
    const errors = new FirstError();
    for (const k of keys) {
      const e = this.entries.findString(k) ?? fail(`lease ${id} holds key ${JSON.stringify(k)}, which is not in the store`);
      this.removeEntry(e);
      errors.run(() => this.notifyDelete(index, e.key));
    }
    return { result: { op: 'lease-revoke', found: true, deleted: keys.length }, error: errors.first };
  }

  /**
   * Deletes every key in [low, high) (high undefined: to the last key), in byte order, and
   * tells the listeners of each: in slices of {@link DELETE_RANGE_SLICE_KEYS} keys, so that a
   * range of millions holds no list of them all. Every key is deleted even if a listener
   * throws; the first error is thrown at the end (as `notify` does for one change).
   */
  private deleteRangeInSlices(index: number, low: string, high: string | undefined): void {
    const errors = new FirstError();
    let from = low;
    for (;;) {
      const slice: KvEntry[] = [];
      for (const e of rangeEntries(this.ordered, from, high)) {
        slice.push(e);
        if (slice.length === DELETE_RANGE_SLICE_KEYS) break;
      }
      for (const e of slice) {
        this.removeEntry(e);
        errors.run(() => this.notifyDelete(index, e.key));
      }
      if (slice.length < DELETE_RANGE_SLICE_KEYS) break;
      // The keys before it are gone: the next slice starts at the first key left.
      from = keyString(slice[slice.length - 1]!.key);
    }
    errors.throwIfAny();
  }

  /** `write` for a key and a value given as arrays of their own (decoded requests). */
  private writeValue(key: Uint8Array, value: Uint8Array, index: number, lease: number): KvEntry {
    return this.write(key, 0, key.length, value, 0, value.length, index, lease);
  }

  /**
   * Sets the key keySrc[keyAt, keyAt + keyLength) to the value
   * valueSrc[valueAt, valueAt + valueLength) at log `index`, attached to `lease` (0: none; it
   * exists): the bytes are copied into the slabs, once. An existing key changes in place, a
   * new one enters both indexes. Returns its entry.
   */
  private write(keySrc: Uint8Array, keyAt: number, keyLength: number, valueSrc: Uint8Array, valueAt: number, valueLength: number, index: number, lease: number): KvEntry {
    const values = this.valueSlabs;
    let entry = this.entries.findAt(keySrc, keyAt, keyLength);
    if (entry !== undefined) {
      values.release(entry.valueSlab, entry.valueLength);
      entry.valueAt = values.copy(valueSrc, valueAt, valueLength);
      entry.valueSlab = values.lastSlab;
      entry.valueLength = valueLength;
      entry.modIndex = index;
      entry.version++;
      if (entry.lease !== lease) {
        if (entry.lease !== 0) this.leaseTable.detach(entry.lease, entry.id);
        if (lease !== 0) this.leaseTable.attach(lease, entry.id);
        entry.lease = lease;
      }
    } else {
      entry = this.addEntry(keyStringAt(keySrc, keyAt, keyLength), keySrc, keyAt, keyLength, valueSrc, valueAt, valueLength, index, index, 1, lease);
      if (lease !== 0) this.leaseTable.attach(lease, entry.id);
    }
    if (this.compactingSlot >= 0 || values.isWasteful || this.keySlabs.isWasteful) this.compactSome();
    return entry;
  }

  /** Adds a key that is not in the store to both indexes, its bytes copied into the slabs (its lease, if any, not attached). */
  private addEntry(id: string, keySrc: Uint8Array, keyAt: number, keyLength: number, valueSrc: Uint8Array, valueAt: number, valueLength: number, createIndex: number, modIndex: number, version: number, lease: number): KvEntry {
    const keys = this.keySlabs;
    const keyIn = keys.copy(keySrc, keyAt, keyLength);
    const valueIn = this.valueSlabs.copy(valueSrc, valueAt, valueLength);
    const entry = new KvEntry(id, keys.lastSlab.bytes.subarray(keyIn, keyIn + keyLength), keys.lastSlab, keyIn, keyLength, this.valueSlabs.lastSlab, valueIn, valueLength, createIndex, modIndex, version, lease);
    this.entries.add(entry);
    // The two indexes hold the same keys: a key the byte index missed (its bytes not where it
    // reads them) would make a second entry here, and a store that answers differently.
    if (!this.ordered.set(id, entry, false)) fail(`addEntry: key ${JSON.stringify(id.slice(0, 64))}${id.length > 64 ? '...' : ''} is in the ordered index but was not found by its bytes`);
    return entry;
  }

  /**
   * Moves the keys and values of sparse slabs into the current one, COMPACT_ENTRIES_PER_WRITE
   * entries at a time, in one pass over the entries that starts once the slabs waste more
   * than they hold (see ByteSlabs): so the slabs stay within some twice the live bytes, and
   * no write pays for a pass over them all. Only memory moves: the state, its views and
   * everything a replica answers stay the same.
   */
  private compactSome(): void {
    const values = this.valueSlabs;
    const keys = this.keySlabs;
    const entries = this.entries;
    if (this.compactingSlot < 0) this.compactingSlot = 0;
    // A walk of the slots: a write between steps may move an entry past the walk (see
    // KeyIndex.at), which leaves it where it is until the next pass; that is all it costs.
    for (let n = 0; n < COMPACT_ENTRIES_PER_WRITE; ) {
      if (this.compactingSlot >= entries.slotCount) {
        this.compactingSlot = -1;
        return;
      }
      const e = entries.at(this.compactingSlot++);
      if (e === undefined) continue;
      n++;
      if (values.isSparse(e.valueSlab)) {
        const from = e.valueSlab;
        e.valueAt = values.copy(from.bytes, e.valueAt, e.valueLength);
        e.valueSlab = values.lastSlab;
        values.release(from, e.valueLength);
      }
      if (keys.isSparse(e.keySlab)) {
        const from = e.keySlab;
        // The same bytes elsewhere: the index, which compares them, is unchanged.
        const at = keys.copy(from.bytes, e.keyAt, e.keyLength);
        e.key = keys.lastSlab.bytes.subarray(at, at + e.keyLength);
        e.keySlab = keys.lastSlab;
        e.keyAt = at;
        keys.release(from, e.keyLength);
      }
    }
  }

  /** Removes `key` from both indexes (and its lease); its entry, if it was there. */
  private remove(key: Uint8Array): KvEntry | undefined {
    const entry = this.entries.find(key);
    if (entry !== undefined) this.removeEntry(entry);
    return entry;
  }

  /** Removes an entry of the store from both indexes (and its lease). */
  private removeEntry(entry: KvEntry): void {
    if (!this.entries.delete(entry)) fail('removeEntry: the entry is not in the store');
    this.ordered.delete(entry.id);
    if (entry.lease !== 0) this.leaseTable.detach(entry.lease, entry.id);
    this.keySlabs.release(entry.keySlab, entry.keyLength);
    this.valueSlabs.release(entry.valueSlab, entry.valueLength);
  }

  /** Makes (seq, index, result) the client's latest request, opening a session if needed. */
  private recordSession(
    session: KvSession | undefined,
    clientId: number,
    seq: number,
    index: number,
    result: KvResult,
  ): void {
    this.sessionResultBytes += resultKeptBytes(result);
    if (session === undefined) {
      if (this.sessions.size >= this.sessionsMax) this.evictOldestSession();
      this.sessions.add(clientId, seq, index, result);
    } else {
      this.sessionResultBytes -= resultKeptBytes(session.result);
      session.lastSeq = seq;
      session.lastIndex = index;
      session.result = result;
      // The end of the order, which keeps it the order by lastIndex.
      this.sessions.touch(session);
    }
    // Never the newest: KV_SESSION_RESULT_BYTES_MIN holds two of the largest results.
    while (this.sessionResultBytes > this.sessionResultBytesMax) this.evictOldestSession();
  }

  private evictOldestSession(): void {
    const oldest = this.sessions.evictOldest();
    this.sessionResultBytes -= resultKeptBytes(oldest.result);
  }

  /** Tells the sink and the listeners that `e` was just written at `index`. */
  private notifyWrite(index: number, e: KvEntry): void {
    const position = this.positionNext++;
    this.changeSink?.change(index, position, e.key, e.valueSlab, e.valueAt, e.valueLength, e.createIndex, e.version);
    if (this.listeners.length > 0) this.tell({ index, position, key: e.key, value: e.value, createIndex: e.createIndex, version: e.version });
  }

  /** Tells the sink and the listeners that `key` was just deleted at `index`. */
  private notifyDelete(index: number, key: Uint8Array): void {
    const position = this.positionNext++;
    this.changeSink?.change(index, position, key, undefined, 0, 0, 0, 0);
    if (this.listeners.length > 0) this.tell({ index, position, key, value: undefined, createIndex: 0, version: 0 });
  }

  private tell(change: KvChange): void {
    const errors = new FirstError();
    for (const listener of this.listeners) errors.run(() => listener(change));
    errors.throwIfAny();
  }

  /** Fills this (new, empty) machine from snapshot bytes; throws DecodeError on bad input. */
  private load(bytes: Uint8Array): void {
    if (bytes.length < SNAPSHOT_EMPTY_BYTES) {
      throw new DecodeError('truncated', bytes.length, `snapshot of ${bytes.length} bytes is below the minimum ${SNAPSHOT_EMPTY_BYTES}`);
    }
    const bodyEnd = bytes.length - SNAPSHOT_CRC_BYTES;
    const body = bytes.subarray(0, bodyEnd);
    const storedChecksum = new ByteReader(bytes.subarray(bodyEnd)).u32();
    if (crc32(body) !== storedChecksum) {
      throw new DecodeError('checksum_mismatch', bodyEnd, 'snapshot CRC32 does not match its bytes');
    }

    const reader = new ByteReader(body);
    const magic = reader.raw(SNAPSHOT_MAGIC.length);
    if (!bytesEqual(magic, SNAPSHOT_MAGIC)) throw new DecodeError('invalid', 0, 'snapshot magic is not "RKVS"');
    const versionAt = reader.offset;
    const version = reader.u8();
    if (version !== KV_SNAPSHOT_FORMAT_VERSION && version !== KV_SNAPSHOT_FORMAT_VERSION_NO_REDIS && version !== KV_SNAPSHOT_FORMAT_VERSION_NO_APP && version !== KV_SNAPSHOT_FORMAT_VERSION_NO_LEASES && version !== KV_SNAPSHOT_FORMAT_VERSION_NO_REVISIONS) {
      // Intact (the CRC matched), just not ours: a typed refusal rather than "corrupt".
      throw new KvError(
        KvErrorCode.UNSUPPORTED_FORMAT,
        `KV snapshot format version ${version} at byte ${versionAt} is not ${KV_SNAPSHOT_FORMAT_VERSION_NO_REVISIONS} to ${KV_SNAPSHOT_FORMAT_VERSION}, the ones this build reads`,
      );
    }
    this.appliedIndexValue = reader.u64Number();
    const clientIdNextAt = reader.offset;
    const clientIdNext = reader.u64Number();
    if (clientIdNext < KV_CLIENT_ID_REGISTERED_FIRST) {
      throw new DecodeError('invalid', clientIdNextAt, `clientIdNext ${clientIdNext} is below ${KV_CLIENT_ID_REGISTERED_FIRST}`);
    }
    this.clientIdNextValue = clientIdNext;
    this.loadSessions(reader, version);
    const leases = this.loadEntries(reader, version);
    if (version >= KV_SNAPSHOT_FORMAT_VERSION_NO_APP) {
      const tableAt = reader.offset;
      this.leaseTable.read(reader);
      for (const [lease, id] of leases) {
        if (!this.leaseTable.has(lease)) throw new DecodeError('invalid', tableAt, `a key is attached to lease ${lease}, which the table does not hold`);
        this.leaseTable.attach(lease, id);
      }
    }
    if (version >= KV_SNAPSHOT_FORMAT_VERSION_NO_REDIS) this.loadApp(reader);
    reader.expectEnd();
    while (this.sessions.size > this.sessionsMax || this.sessionResultBytes > this.sessionResultBytesMax) this.evictOldestSession();
  }

  /**
   * The snapshot of the cluster's own machine (a promise for an async sequence); what it
   * throws or rejects with is APPLY_FAILED, which the host survives (a snapshot later).
   */
  private appSnapshot(app: StateMachine, cancel: SnapshotCancel | undefined): Uint8Array | Promise<Uint8Array> {
    try {
      const taken = appSnapshotBytes(app, cancel);
      return taken instanceof Promise ? taken.catch((error: unknown) => Promise.reject(snapshotFailed(error))) : taken;
    } catch (error) {
      throw snapshotFailed(error);
    }
  }

  /** Reads the state machine's section and restores the machine from it. */
  private loadApp(reader: ByteReader): void {
    const at = reader.offset;
    const present = reader.u8();
    if (present > 1) throw new DecodeError('invalid', at, `state machine section flag is ${present}, not 0 or 1`);
    if (present === 0) {
      if (this.app !== undefined) throw new KvError(KvErrorCode.INVALID_ARGUMENT, 'the snapshot holds no state of a state machine, and this node runs one: every node of a cluster must run the same');
      return;
    }
    const state = reader.bytes(APP_SNAPSHOT_BYTES_MAX);
    if (this.app === undefined) throw new KvError(KvErrorCode.INVALID_ARGUMENT, 'the snapshot holds the state of a state machine, and this node runs none: every node of a cluster must run the same');
    let restoring: Promise<void> | undefined;
    try {
      restoring = restoreApp(this.app, state.slice());
    } catch (error) {
      throw restoreFailed(error);
    }
    if (restoring !== undefined) this.restoringValue = restoring.catch((error: unknown) => Promise.reject(restoreFailed(error)));
  }

  private loadSessions(reader: ByteReader, version: number): void {
    const countAt = reader.offset;
    const count = reader.u32();
    // Check the count against the bytes that remain before looping over it.
    if (count > Math.floor(reader.remainingBytes / SNAPSHOT_SESSION_BYTES)) {
      throw new DecodeError('length_over_max', countAt, `session count ${count} is more than the snapshot holds`);
    }
    let previousIndex = 0;
    for (let i = 0; i < count; i++) {
      const at = reader.offset;
      const clientId = reader.u64Number();
      const lastSeq = reader.u64Number();
      const lastIndex = reader.u64Number();
      const code = reader.u8();
      const result = readResult(reader, code, version);
      if (clientId === 0 || lastSeq === 0 || result === undefined) {
        throw new DecodeError('invalid', at, 'session has a zero clientId or seq, or an unknown result code');
      }
      // Non-decreasing, not increasing: the requests of one batch entry share its index.
      if (lastIndex < previousIndex || lastIndex > this.appliedIndexValue) {
        throw new DecodeError('invalid', at, `session lastIndex ${lastIndex} is out of order or above appliedIndex`);
      }
      if (this.sessions.has(clientId)) throw new DecodeError('invalid', at, `session ${clientId} appears twice`);
      this.sessions.add(clientId, lastSeq, lastIndex, result);
      this.sessionResultBytes += resultKeptBytes(result);
      previousIndex = lastIndex;
    }
  }

  /** Loads the entries; returns each one's lease (key string by lease), to attach once the lease table is read. */
  private loadEntries(reader: ByteReader, version: number): [number, string][] {
    const withRevisions = version >= KV_SNAPSHOT_FORMAT_VERSION_NO_LEASES;
    const leases: [number, string][] = [];
    const count = reader.u32();
    let previousKey: string | undefined;
    // Each entry takes at least 9 bytes, so a huge count fails on truncation quickly.
    for (let i = 0; i < count; i++) {
      const keyAt = reader.offset;
      const key = reader.bytes(KV_KEY_BYTES_MAX);
      const id = keyString(key);
      if (key.length === 0) throw new DecodeError('invalid', keyAt, 'key is empty');
      if (previousKey !== undefined && compareKeyStrings(previousKey, id) >= 0) {
        throw new DecodeError('invalid', keyAt, 'keys are not in strictly ascending order');
      }
      const value = reader.bytes(KV_VALUE_BYTES_MAX);
      let createIndex = this.appliedIndexValue;
      let modIndex = this.appliedIndexValue;
      let keyVersion = 1;
      let lease = 0;
      if (withRevisions) {
        const revisionsAt = reader.offset;
        createIndex = reader.u64Number();
        modIndex = reader.u64Number();
        keyVersion = reader.u64Number();
        if (!(createIndex >= 1 && createIndex <= modIndex && modIndex <= this.appliedIndexValue && keyVersion >= 1)) {
          throw new DecodeError('invalid', revisionsAt, `revisions createIndex ${createIndex}, modIndex ${modIndex}, version ${keyVersion} are not 1 <= createIndex <= modIndex <= appliedIndex ${this.appliedIndexValue}, version >= 1`);
        }
        lease = version >= KV_SNAPSHOT_FORMAT_VERSION_NO_APP ? reader.u64Number() : 0;
        if (lease !== 0) leases.push([lease, id]);
      }
      // The lease is attached once the lease table is read (the caller's part).
      this.addEntry(id, key, 0, key.length, value, 0, value.length, createIndex, modIndex, keyVersion, lease);
      previousKey = id;
    }
    this.copier.forgetSource();
    return leases;
  }
}

/** Runs callbacks that may throw, each whatever the one before did, and keeps the first error (a listener's must not stop a change half made). */
class FirstError {
  first: { error: unknown } | undefined;

  run(f: () => void): void {
    try {
      f();
    } catch (error) {
      this.first ??= { error };
    }
  }

  throwIfAny(): void {
    if (this.first !== undefined) throw this.first.error;
  }
}

function* mapIterable<T, U>(items: Iterable<T>, f: (item: T) => U): Iterable<U> {
  for (const item of items) yield f(item);
}

/** A snapshot whole: `body` (encodeSnapshot unsealed), the state machine's section holding `appState`, and the CRC. */
function sealSnapshot(body: Uint8Array, appState: Uint8Array): Uint8Array {
  const writer = new ByteWriter(body.length + 1 + LENGTH_PREFIX_BYTES + appState.length + SNAPSHOT_CRC_BYTES);
  writer.raw(body);
  writer.u8(1);
  writer.bytes(appState);
  writer.u32(crc32(writer.finish()));
  return writer.finish();
}

/** What a state machine's snapshot() threw or rejected with, as APPLY_FAILED (as it is if it is one already). */
function snapshotFailed(error: unknown): KvError {
  if (error instanceof KvError && error.code === KvErrorCode.APPLY_FAILED) return error;
  return new KvError(KvErrorCode.APPLY_FAILED, `the state machine's snapshot() threw: ${error instanceof Error ? error.message : 'a value that is not an Error'}`, { cause: error });
}

/** What a state machine's restore() threw or rejected with, as CORRUPT_SNAPSHOT. */
function restoreFailed(error: unknown): KvError {
  return new KvError(KvErrorCode.CORRUPT_SNAPSHOT, `the state machine could not restore its snapshot: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

/** The bytes a session's result takes in a snapshot past its code. */
function resultExtraBytes(result: KvResult): number {
  switch (result.op) {
    case 'delete-range':
      return 8;
    case 'txn':
      return LENGTH_PREFIX_BYTES + result.encoded.length;
    case 'lease-grant':
      return 8 + 4;
    case 'lease-revoke':
      return 1 + 8;
    case 'refused':
      return 1;
    case 'app':
    case 'redis':
      return LENGTH_PREFIX_BYTES + result.encoded.length;
    default:
      return 0;
  }
}

/** Writes a session's result: its code, then what follows the code (see the module comment). */
function writeResult(w: ByteWriter, result: KvResult): void {
  switch (result.op) {
    case 'delete-range':
      w.u8(RESULT_CODE_DELETE_RANGE);
      w.u64Number(result.deleted);
      return;
    case 'txn':
      w.u8(RESULT_CODE_TXN);
      w.bytes(result.encoded);
      return;
    case 'lease-grant':
      w.u8(RESULT_CODE_LEASE_GRANT);
      w.u64Number(result.id);
      w.u32(result.ttlMs);
      return;
    case 'lease-revoke':
      w.u8(RESULT_CODE_LEASE_REVOKE);
      w.u8(result.found ? 1 : 0);
      w.u64Number(result.deleted);
      return;
    case 'refused':
      w.u8(RESULT_CODE_REFUSED);
      w.u8(REFUSED_CODES.indexOf(result.code));
      return;
    case 'app':
      w.u8(RESULT_CODE_APP);
      w.bytes(result.encoded);
      return;
    case 'redis':
      w.u8(RESULT_CODE_REDIS);
      w.bytes(result.encoded);
      return;
    default:
      w.u8(RESULT_BY_CODE.indexOf(result));
  }
}

/** The bytes of a result that count against sessionResultBytesMax: a transaction's. */
function resultKeptBytes(result: KvResult): number {
  return result.op === 'txn' || result.op === 'app' || result.op === 'redis' ? result.encoded.length : 0;
}

/** A session's result in a snapshot of format `version`, after its code; undefined for an unknown code. */
function readResult(reader: ByteReader, code: number, version: number): KvResult | undefined {
  if (version === KV_SNAPSHOT_FORMAT_VERSION_NO_REVISIONS || code < RESULT_CODE_DELETE_RANGE) return RESULT_BY_CODE[code];
  if (code === RESULT_CODE_DELETE_RANGE) return { op: 'delete-range', deleted: reader.u64Number() };
  if (code === RESULT_CODE_TXN) return { op: 'txn', encoded: reader.bytes(KV_TXN_RESULT_BYTES_MAX).slice() };
  if (version === KV_SNAPSHOT_FORMAT_VERSION_NO_LEASES) return undefined;
  if (code === RESULT_CODE_LEASE_GRANT) return { op: 'lease-grant', id: reader.u64Number(), ttlMs: reader.u32() };
  if (code === RESULT_CODE_LEASE_REVOKE) {
    const found = reader.u8();
    return found > 1 ? undefined : { op: 'lease-revoke', found: found === 1, deleted: reader.u64Number() };
  }
  if (code === RESULT_CODE_APP) return version >= KV_SNAPSHOT_FORMAT_VERSION_NO_REDIS ? { op: 'app', encoded: reader.bytes(1 + APP_RESULT_BYTES_MAX).slice() } : undefined;
  if (code === RESULT_CODE_REDIS) return version === KV_SNAPSHOT_FORMAT_VERSION ? { op: 'redis', encoded: reader.bytes(REDIS_WRITE_REPLY_BYTES_MAX).slice() } : undefined;
  if (code === RESULT_CODE_REFUSED) {
    const refused = REFUSED_CODES[reader.u8()];
    return refused === undefined ? undefined : { op: 'refused', code: refused };
  }
  return undefined;
}

/**
 * Buffer's own latin1 decoder, called on any Uint8Array with no Buffer made for it: some 70
 * ns for a 16-byte key against 130 for `String.fromCharCode.apply` (and more for a
 * `Buffer.from` view first), on Node.js 20 to 26. Not in Node's typings, so looked up once
 * here; test/kv/key-string.test.ts checks it on every byte.
 */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice: (this: Uint8Array, start: number, end: number) => string }).latin1Slice;

/** One char per byte (latin1), so distinct byte strings give distinct strings. */
export function keyString(key: Uint8Array): string {
  return latin1Slice.call(key, 0, key.length);
}

/** keyString of data[at, at + length). */
export function keyStringAt(data: Uint8Array, at: number, length: number): string {
  return latin1Slice.call(data, at, at + length);
}

/**
 * The outcome of a request that does not run for its session's sake (see the class comment):
 * expired, stale, or a duplicate answered from the session; undefined when it runs.
 */
function sessionRefusal(session: KvSession | undefined, clientId: number, seq: number): KvApplyOutcome | undefined {
  if (session === undefined) return seq === 1 ? undefined : { clientId, seq, result: undefined, status: 'expired' };
  if (seq < session.lastSeq) return { clientId, seq, result: undefined, status: 'stale' };
  if (seq === session.lastSeq) return { clientId, seq, result: session.result, status: 'duplicate', appliedAt: session.lastIndex };
  return undefined;
}

/**
 * Orders latin1 key strings by their bytes: each char's code unit equals its byte, so
 * code-unit order is byte-lexicographic order (a prefix sorts first).
 */
function compareKeyStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}
