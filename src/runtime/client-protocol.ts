/**
 * The frames a client thread and a node thread exchange through their rings: requests
 * (client to node) and replies (node to client), in a small binary format. Writes carry the
 * encoded {@link KvRequest} as it will sit in the log entry, so a node proposes the bytes
 * it received without encoding them again.
 *
 * Request frame (all integers little-endian):
 *
 * ```
 * offset  size   field
 * 0       1      kind: 1 write, 2 read, 3 watch, 4 unwatch, 5 admin, 6 range, 7 lease, 8 query
 *                (0 is invalid)
 * 1       4      requestId (u32), chosen by the client, echoed in every reply
 * then, by kind:
 *   write    rest   the encoded KvRequest (see kv/commands.ts)
 *   read     1      consistency: 1 linearizable, 2 lease, 3 stale, 4 follower (linearizable,
 *                   served by the node it reaches)
 *            4 + k  key
 *   watch    1      1: start after `afterIndex`; 0: start at the node's applied index
 *            8      afterIndex (u64)
 *            4 + p  key prefix (may be empty: every key)
 *   unwatch  -      (ends the watch whose requestId this is)
 *   admin    4 + b  a JSON object in UTF-8, at most ADMIN_BODY_BYTES_MAX bytes: a command for
 *                   the node's server process (server/admin.ts), never for the node's thread
 *   range    1      consistency, then a range query (kv/range-codec.ts)
 *   lease    1      op: 1 keep-alive, 2 time-to-live (never 3, the stale tag: a server forwards
 *                   every lease request to its leader)
 *            8      lease id (u64, >= 1)
 *   query    1      consistency (as a read's), then 4 + q: a request for the cluster's own
 *                   state machine (kv/app-machine.ts), answered by a read done whose value is
 *                   the encoded outcome of its `query`
 * ```
 *
 * Reply frame:
 *
 * ```
 * 0       1      kind: 1 write done, 2 read done, 3 error, 4 watch event, 5 watch end,
 *                6 watch start, 7 admin done, 8 leader notice, 9 range done, 10 lease
 * 1       4      requestId
 *   write done   1 result (1 put, 2 delete existed, 3 delete absent, 4 cas swapped,
 *                5 cas not swapped, 6 clients registered, 7 range deleted, 8 txn, 9 lease
 *                granted, 10 lease revoked), 8 index (u64) of the entry, then for result 6
 *                only: 8 clientIdFirst (u64, >= 1), the first id of the block registered; for
 *                result 7 only: 8 deleted (u64); for result 8 only: 4 + t, the encoded
 *                transaction result (kv/txn.ts); for 9: 8 lease id, 4 ttlMs; for 10: 1 found,
 *                8 deleted
 *   read done    8 index read at, 1 present, then if present: 6 zero bytes, 4 + v value
 *                (the value starts 24 bytes into the frame: 8-aligned in ring memory, as
 *                copies are, so copying it in and out moves words, not bytes)
 *   error        2 code (u16, base/errors.ts), 4 leaderHint (u32, 0 unknown), 1 proposed (0/1)
 *   watch event  8 index, 4 position in the entry, 4 + k key, 1 present, then 4 + v value if present
 *   watch end    2 code (u16, base/errors.ts)
 *   watch start  8 index: the watch reports every change after this index
 *   admin done   4 + b: a JSON object in UTF-8, the command's answer
 *   leader       4 leader id
 *   range done   a range result (kv/range-codec.ts)
 *   lease        8 id, 4 ttlMs (granted), 4 remainingMs (as the leader's clock has it),
 *                4 keys (attached to it)
 * ```
 *
 * `proposed` on an error says whether the request may have entered a log before it was
 * refused (a client retries such a write with the same session sequence number).
 */

import { Buffer } from 'node:buffer';
import { ErrorCode, errorCodeFromWire, errorCodeWire, fail } from '../base/index.ts';
import { ByteReader, ByteWriter, getU32, type CopyPool } from '../codec/index.ts';
import type { KvResult, KvWriteResult } from '../kv/index.ts';
import { APP_RESULT_BYTES_MAX, REDIS_READ_REPLY_BYTES_MAX, REDIS_WRITE_REPLY_BYTES_MAX, KV_KEY_BYTES_MAX, KV_REQUEST_BYTES_MAX, KV_TXN_RESULT_BYTES_MAX, KV_VALUE_BYTES_MAX, type KvRangeQuery, type KvRangeResult } from '../kv/index.ts';
import { ProtocolError } from './protocol-error.ts';
import { encodedRangeQueryBytes, encodedRangeResultBytes, readRangeQuery, readRangeResult, writeRangeQuery, writeRangeResult } from '../kv/index.ts';

export { ProtocolError };

/**
 * How fresh a read must be: `linearizable` (a ReadIndex round confirms the leader first),
 * `lease` (the leader answers on its lease, without the round while the lease holds), `stale`
 * (any node answers from its own state, which may lag).
 */
export type ReadConsistency = 'linearizable' | 'lease' | 'stale';
/**
 * How a read is served, on the wire: a {@link ReadConsistency}, or 'follower', a linearizable
 * read that the node it reaches serves itself: a follower asks its leader for a read index
 * and answers once it has applied that far (core ReadIndex from a follower).
 */
export type WireConsistency = ReadConsistency | 'follower';

/**
 * A key the client has checked to be ASCII and short: one byte per UTF-16 unit, the same
 * bytes in ASCII, latin1 and UTF-8. A read request carries such a string as it is, written
 * into the ring with no array of its own (an allocation per get that was a tenth of a
 * client's CPU per get). Made only by the client's argument checks (cluster/client-args.ts).
 */
export type AsciiKey = string & { readonly __asciiKey: true };

/**
 * A request as a client sends it: as decoded ({@link ClientRequest}), or a read whose key is
 * an {@link AsciiKey}. Only the encoders take it; a node takes decoded requests.
 */
export type OutgoingRequest = Exclude<ClientRequest, { readonly kind: 'read' }> | { readonly kind: 'read'; readonly requestId: number; readonly consistency: WireConsistency; readonly key: Uint8Array | AsciiKey };

export type ClientRequest =
  | { readonly kind: 'write'; readonly requestId: number; readonly data: Uint8Array }
  | { readonly kind: 'read'; readonly requestId: number; readonly consistency: WireConsistency; readonly key: Uint8Array }
  | { readonly kind: 'watch'; readonly requestId: number; readonly afterIndex: number | undefined; readonly prefix: Uint8Array }
  | { readonly kind: 'unwatch'; readonly requestId: number }
  | { readonly kind: 'admin'; readonly requestId: number; readonly body: string }
  /** A range read (kv/range-codec.ts); its query checked by the node (kv/range.ts), not here. */
  | { readonly kind: 'range'; readonly requestId: number; readonly consistency: WireConsistency; readonly query: KvRangeQuery }
  /** A keep-alive or a time-to-live of a lease: the leader answers it, after a ReadIndex round (runtime/lease-keeper.ts). */
  | { readonly kind: 'lease'; readonly requestId: number; readonly op: LeaseOp; readonly id: number }
  /** A read of the cluster's own state machine: answered by a 'read' reply whose value is the query's encoded outcome. */
  | { readonly kind: 'query'; readonly requestId: number; readonly consistency: WireConsistency; readonly data: Uint8Array }
  /**
   * Redis commands that only read (kv/redis.ts), each its words, run one after another on one
   * state: answered by a 'read' reply whose value is their RESP2 replies, one after another.
   */
  | { readonly kind: 'redis'; readonly requestId: number; readonly consistency: WireConsistency; readonly commands: readonly (readonly Uint8Array[])[] };

export type LeaseOp = 'keep-alive' | 'time-to-live';

export type ClientReply =
  | { readonly kind: 'write'; readonly requestId: number; readonly result: KvWriteResult; readonly index: number }
  | { readonly kind: 'read'; readonly requestId: number; readonly index: number; readonly value: Uint8Array | undefined }
  | { readonly kind: 'error'; readonly requestId: number; readonly code: ErrorCode; readonly leaderHint: number; readonly proposed: boolean }
  | {
      readonly kind: 'watch-event';
      readonly requestId: number;
      readonly index: number;
      readonly position: number;
      readonly key: Uint8Array;
      readonly value: Uint8Array | undefined;
      /** The key's createIndex after the change (0 for a delete). */
      readonly createIndex: number;
      /** The key's version after the change (0 for a delete). */
      readonly version: number;
    }
  | { readonly kind: 'watch-end'; readonly requestId: number; readonly code: ErrorCode }
  | { readonly kind: 'watch-start'; readonly requestId: number; readonly index: number }
  | { readonly kind: 'admin'; readonly requestId: number; readonly body: string }
  /**
   * A notice, not an answer: a node server that forwards request `requestId` to its leader
   * says which node that is, before the request's own reply, so that a client that can
   * reach the leader sends it the next ones. It ends nothing.
   */
  | { readonly kind: 'leader'; readonly requestId: number; readonly leaderId: number }
  | { readonly kind: 'range'; readonly requestId: number; readonly result: KvRangeResult }
  | { readonly kind: 'lease'; readonly requestId: number; readonly id: number; readonly ttlMs: number; readonly remainingMs: number; readonly keys: number };

/** Largest admin command or answer body, in bytes of UTF-8. */
export const ADMIN_BODY_BYTES_MAX = 1 << 20;

/** Largest encoded write request a node accepts (a KvRequest with the longest key and value). */
export const WRITE_REQUEST_BYTES_MAX = KV_REQUEST_BYTES_MAX;
/** Bytes of an error code on the wire (a u16). */
const CODE_BYTES = 2;

/** Every frame's first byte: what it is (a host that routes frames reads it without decoding the rest). */
export const REQUEST_KIND = { write: 1, read: 2, watch: 3, unwatch: 4, admin: 5, range: 6, lease: 7, query: 8, redis: 9 } as const;
/** The first byte of a write request frame; its KV request starts at REQUEST_HEADER_BYTES. */
export const REQUEST_KIND_WRITE = REQUEST_KIND.write;
/** The first byte of a watch request frame (a malformed one is answered with watch-end). */
export const REQUEST_KIND_WATCH = REQUEST_KIND.watch;
/** The first byte of an admin request frame: the node's server process answers it. */
export const REQUEST_KIND_ADMIN = REQUEST_KIND.admin;
export const REPLY_KIND = { write: 1, read: 2, error: 3, 'watch-event': 4, 'watch-end': 5, 'watch-start': 6, admin: 7, leader: 8, range: 9, lease: 10 } as const;
const LEASE_OP_TAG = { 'keep-alive': 1, 'time-to-live': 2 } as const;
const LEASE_OP_BY_TAG: readonly (LeaseOp | undefined)[] = [undefined, 'keep-alive', 'time-to-live'];

/**
 * Whether a server forwards this request frame to its leader: a write, a lease request, and a
 * read or range read that is neither stale nor a follower read (those the node serves itself).
 */
export function isForwardedToLeader(frame: Uint8Array): boolean {
  const kind = frame[0];
  if (kind === REQUEST_KIND.write || kind === REQUEST_KIND.lease) return true;
  const tag = frame[HEADER_BYTES];
  return (kind === REQUEST_KIND.read || kind === REQUEST_KIND.range || kind === REQUEST_KIND.query || kind === REQUEST_KIND.redis) && frame.length > HEADER_BYTES && tag !== CONSISTENCY_TAG.stale && tag !== CONSISTENCY_TAG.follower;
}
/** Longest request for the cluster's own state machine (a query's bytes). */
export const QUERY_BYTES_MAX = KV_VALUE_BYTES_MAX;
/**
 * Longest value a read reply carries: a key's value, a query's outcome, or Redis reads'
 * replies (REDIS_READ_REPLY_BYTES_MAX, the largest of them). The node never makes a longer
 * one, and a client takes any it can make.
 */
export const READ_REPLY_VALUE_BYTES_MAX = Math.max(KV_VALUE_BYTES_MAX, 1 + APP_RESULT_BYTES_MAX, REDIS_READ_REPLY_BYTES_MAX);
/** A read request's consistency byte, right after its header. */
export const CONSISTENCY_TAG = { linearizable: 1, lease: 2, stale: 3, follower: 4 } as const;
const CONSISTENCY_BY_TAG: readonly (WireConsistency | undefined)[] = [undefined, 'linearizable', 'lease', 'stale', 'follower'];
const HEADER_BYTES = 1 + 4;
/** Kind and requestId (u32 at byte 1) open every request and reply frame. */
export const REQUEST_HEADER_BYTES = HEADER_BYTES;
const LENGTH_BYTES = 4;
/** An error reply: header, code (u16), leader hint (u32), proposed (u8). */
export const ERROR_REPLY_BYTES = HEADER_BYTES + CODE_BYTES + 4 + 1;

// ─── Requests ──────────────────────────────────────────────────────────────────

/** Where a read request frame's key starts: header, consistency byte, key length (u32). */
export const READ_REQUEST_KEY_AT = HEADER_BYTES + 1 + LENGTH_BYTES;

/**
 * The consistency of the read request frame memory[offset, offset + length), read in place,
 * if the frame is a well-formed read of a key (its key at {@link READ_REQUEST_KEY_AT}, up to
 * the frame's end); undefined for any other frame, which {@link decodeRequest} then takes (and
 * refuses if malformed). The same checks as decodeRequest's, with nothing allocated.
 */
export function wellFormedReadFrame(memory: Uint8Array, offset: number, length: number): WireConsistency | undefined {
  if (length < READ_REQUEST_KEY_AT || memory[offset] !== REQUEST_KIND.read) return undefined;
  const at = offset + HEADER_BYTES + 1;
  const keyLength = getU32(memory, at);
  if (keyLength > KV_KEY_BYTES_MAX || keyLength !== length - READ_REQUEST_KEY_AT) return undefined;
  return CONSISTENCY_BY_TAG[memory[offset + HEADER_BYTES]!];
}

export function encodedRequestBytes(req: OutgoingRequest): number {
  switch (req.kind) {
    case 'write':
      return HEADER_BYTES + req.data.length;
    case 'read':
      return HEADER_BYTES + 1 + LENGTH_BYTES + req.key.length;
    case 'watch':
      return HEADER_BYTES + 1 + 8 + LENGTH_BYTES + req.prefix.length;
    case 'unwatch':
      return HEADER_BYTES;
    case 'admin':
      return HEADER_BYTES + LENGTH_BYTES + utf8Bytes(req.body);
    case 'range':
      return HEADER_BYTES + 1 + encodedRangeQueryBytes(req.query);
    case 'lease':
      return HEADER_BYTES + 1 + 8;
    case 'query':
      return HEADER_BYTES + 1 + LENGTH_BYTES + req.data.length;
    case 'redis': {
      let bytes = HEADER_BYTES + 1 + 4;
      for (const command of req.commands) {
        bytes += 4;
        for (const word of command) bytes += LENGTH_BYTES + word.length;
      }
      return bytes;
    }
  }
}

/** Writes `req` into `target` (exactly {@link encodedRequestBytes} long); `requestId` as in {@link writeRequestTo}. */
export function writeRequest(req: OutgoingRequest, target: Uint8Array, requestId: number = req.requestId): void {
  const w = new ByteWriter(target);
  writeRequestTo(w, req, requestId);
  if (w.offset !== target.length) fail(`request of ${w.offset} bytes fills ${target.length}`);
}

/**
 * Writes `req` at the writer's position (a window of exactly {@link encodedRequestBytes} in
 * ring memory, say). `requestId` replaces the request's own: a client builds a request once
 * per call and numbers each attempt of it.
 */
export function writeRequestTo(w: ByteWriter, req: OutgoingRequest, requestId: number = req.requestId): void {
  w.u8(REQUEST_KIND[req.kind]);
  w.u32(requestId);
  switch (req.kind) {
    case 'write':
      w.raw(req.data);
      break;
    case 'read':
      w.u8(CONSISTENCY_TAG[req.consistency]);
      if (typeof req.key === 'string') w.ascii(req.key);
      else w.bytes(req.key);
      break;
    case 'watch':
      w.u8(req.afterIndex === undefined ? 0 : 1);
      w.u64Number(req.afterIndex ?? 0);
      w.bytes(req.prefix);
      break;
    case 'unwatch':
      break;
    case 'admin':
      writeBody(w, req.body);
      break;
    case 'range':
      w.u8(CONSISTENCY_TAG[req.consistency]);
      writeRangeQuery(w, req.query);
      break;
    case 'lease':
      w.u8(LEASE_OP_TAG[req.op]);
      w.u64Number(req.id);
      break;
    case 'query':
      w.u8(CONSISTENCY_TAG[req.consistency]);
      w.bytes(req.data);
      break;
    case 'redis':
      w.u8(CONSISTENCY_TAG[req.consistency]);
      w.u32(req.commands.length);
      for (const command of req.commands) {
        w.u32(command.length);
        for (const word of command) w.bytes(word);
      }
      break;
  }
}

/**
 * Decodes a request frame. Byte fields are copies, so the result does not alias `bytes`
 * (ring memory that is about to be reused). Throws ProtocolError on a malformed frame.
 */
export function decodeRequest(bytes: Uint8Array): ClientRequest {
  return guard(() => {
    const r = new ByteReader(bytes);
    const kind = r.u8();
    const requestId = r.u32();
    switch (kind) {
      case REQUEST_KIND.write: {
        if (r.remainingBytes > WRITE_REQUEST_BYTES_MAX) throw new ProtocolError(`write request of ${r.remainingBytes} bytes is over the maximum`);
        return { kind: 'write', requestId, data: r.raw(r.remainingBytes).slice() };
      }
      case REQUEST_KIND.read: {
        const consistency = CONSISTENCY_BY_TAG[r.u8()];
        if (consistency === undefined) throw new ProtocolError('unknown read consistency');
        const key = r.bytes(KV_KEY_BYTES_MAX).slice();
        r.expectEnd();
        return { kind: 'read', requestId, consistency, key };
      }
      case REQUEST_KIND.watch: {
        const hasAfter = r.u8();
        if (hasAfter > 1) throw new ProtocolError(`watch start flag ${hasAfter} is not 0 or 1`);
        const afterIndex = r.u64Number();
        const prefix = r.bytes(KV_KEY_BYTES_MAX).slice();
        r.expectEnd();
        return { kind: 'watch', requestId, afterIndex: hasAfter === 1 ? afterIndex : undefined, prefix };
      }
      case REQUEST_KIND.unwatch:
        r.expectEnd();
        return { kind: 'unwatch', requestId };
      case REQUEST_KIND.admin: {
        const body = readBody(r);
        r.expectEnd();
        return { kind: 'admin', requestId, body };
      }
      case REQUEST_KIND.range: {
        const consistency = CONSISTENCY_BY_TAG[r.u8()];
        if (consistency === undefined) throw new ProtocolError('unknown read consistency');
        const query = readRangeQuery(r);
        r.expectEnd();
        return { kind: 'range', requestId, consistency, query };
      }
      case REQUEST_KIND.lease: {
        const op = LEASE_OP_BY_TAG[r.u8()];
        if (op === undefined) throw new ProtocolError('unknown lease op');
        const id = r.u64Number();
        if (id === 0) throw new ProtocolError('lease id is 0');
        r.expectEnd();
        return { kind: 'lease', requestId, op, id };
      }
      case REQUEST_KIND.query: {
        const consistency = CONSISTENCY_BY_TAG[r.u8()];
        if (consistency === undefined) throw new ProtocolError('unknown read consistency');
        const data = r.bytes(QUERY_BYTES_MAX).slice();
        r.expectEnd();
        return { kind: 'query', requestId, consistency, data };
      }
      case REQUEST_KIND.redis: {
        const consistency = CONSISTENCY_BY_TAG[r.u8()];
        if (consistency === undefined) throw new ProtocolError('unknown read consistency');
        const count = r.u32();
        // Each command takes at least its word count and one empty word: 8 bytes.
        if (count === 0 || count > r.remainingBytes / 8) throw new ProtocolError(`redis read of ${count} commands is empty or more than the frame holds`);
        const commands: Uint8Array[][] = [];
        for (let i = 0; i < count; i++) {
          const words = r.u32();
          if (words === 0 || words > r.remainingBytes / LENGTH_BYTES) throw new ProtocolError(`redis command of ${words} words is empty or more than the frame holds`);
          const command: Uint8Array[] = [];
          for (let j = 0; j < words; j++) command.push(r.bytes(QUERY_BYTES_MAX).slice());
          commands.push(command);
        }
        r.expectEnd();
        return { kind: 'redis', requestId, consistency, commands };
      }
      default:
        throw new ProtocolError(`unknown request kind ${kind}`);
    }
  });
}

// ─── Replies ───────────────────────────────────────────────────────────────────

const RESULT_TAG_BY_NAME = { put: 1, 'delete-existed': 2, 'delete-absent': 3, 'cas-swapped': 4, 'cas-kept': 5, 'register-clients': 6, 'delete-range': 7, txn: 8, 'lease-grant': 9, 'lease-revoke': 10, app: 11, redis: 12 } as const;

function resultTag(result: KvWriteResult): number {
  switch (result.op) {
    case 'register-clients':
      return RESULT_TAG_BY_NAME['register-clients'];
    case 'put':
      return RESULT_TAG_BY_NAME.put;
    case 'delete':
      return result.existed ? RESULT_TAG_BY_NAME['delete-existed'] : RESULT_TAG_BY_NAME['delete-absent'];
    case 'cas':
      return result.swapped ? RESULT_TAG_BY_NAME['cas-swapped'] : RESULT_TAG_BY_NAME['cas-kept'];
    case 'delete-range':
      return RESULT_TAG_BY_NAME['delete-range'];
    case 'txn':
      return RESULT_TAG_BY_NAME.txn;
    case 'lease-grant':
      return RESULT_TAG_BY_NAME['lease-grant'];
    case 'lease-revoke':
      return RESULT_TAG_BY_NAME['lease-revoke'];
    case 'app':
      return RESULT_TAG_BY_NAME.app;
    case 'redis':
      return RESULT_TAG_BY_NAME.redis;
    case 'refused':
      // The node answers a refusal with an error reply (host-replies.ts), never a write reply.
      throw new ProtocolError(`a refusal (${result.code}) is not a write result`);
  }
}

function resultOfTag(tag: number): KvResult {
  switch (tag) {
    case RESULT_TAG_BY_NAME.put:
      return { op: 'put' };
    case RESULT_TAG_BY_NAME['delete-existed']:
      return { op: 'delete', existed: true };
    case RESULT_TAG_BY_NAME['delete-absent']:
      return { op: 'delete', existed: false };
    case RESULT_TAG_BY_NAME['cas-swapped']:
      return { op: 'cas', swapped: true };
    case RESULT_TAG_BY_NAME['cas-kept']:
      return { op: 'cas', swapped: false };
    default:
      throw new ProtocolError(`unknown write result tag ${tag}`);
  }
}

/** Bytes a write reply carries after its index: the registered block's first id, for a registration; the count, for a delete-range; the result, for a transaction. */
function writeResultExtraBytes(result: KvWriteResult): number {
  if (result.op === 'txn' || result.op === 'app' || result.op === 'redis') return LENGTH_BYTES + result.encoded.length;
  if (result.op === 'lease-grant') return 8 + 4;
  if (result.op === 'lease-revoke') return 1 + 8;
  return result.op === 'register-clients' || result.op === 'delete-range' ? 8 : 0;
}

export function encodedReplyBytes(reply: ClientReply): number {
  switch (reply.kind) {
    case 'write':
      return HEADER_BYTES + 1 + 8 + writeResultExtraBytes(reply.result);
    case 'read':
      return reply.value === undefined ? READ_REPLY_MIN_BYTES : READ_REPLY_VALUE_AT + reply.value.length;
    case 'error':
      return ERROR_REPLY_BYTES;
    case 'watch-event':
      return HEADER_BYTES + 8 + 4 + LENGTH_BYTES + reply.key.length + 1 + (reply.value === undefined ? 0 : LENGTH_BYTES + reply.value.length) + 8 + 8;
    case 'watch-end':
      return HEADER_BYTES + CODE_BYTES;
    case 'watch-start':
      return HEADER_BYTES + 8;
    case 'admin':
      return HEADER_BYTES + LENGTH_BYTES + utf8Bytes(reply.body);
    case 'leader':
      return HEADER_BYTES + 4;
    case 'range':
      return HEADER_BYTES + encodedRangeResultBytes(reply.result);
    case 'lease':
      return HEADER_BYTES + 8 + 4 + 4 + 4;
  }
}

/** Writes `reply` into `target` (exactly {@link encodedReplyBytes} long). */
export function writeReply(reply: ClientReply, target: Uint8Array): void {
  const w = new ByteWriter(target);
  writeReplyTo(w, reply);
  if (w.offset !== target.length) fail(`reply of ${w.offset} bytes fills ${target.length}`);
}

/**
 * Writes `reply` at the writer's position (see {@link writeRequestTo}). `requestId` replaces the reply's own (a node numbers requests of all its clients
 * in one space and gives each client back its own number).
 */
export function writeReplyTo(w: ByteWriter, reply: ClientReply, requestId: number = reply.requestId): void {
  w.u8(REPLY_KIND[reply.kind]);
  w.u32(requestId);
  switch (reply.kind) {
    case 'write':
      w.u8(resultTag(reply.result));
      w.u64Number(reply.index);
      if (reply.result.op === 'register-clients') w.u64Number(reply.result.clientIdFirst);
      else if (reply.result.op === 'delete-range') w.u64Number(reply.result.deleted);
      else if (reply.result.op === 'txn' || reply.result.op === 'app' || reply.result.op === 'redis') w.bytes(reply.result.encoded);
      else if (reply.result.op === 'lease-grant') {
        w.u64Number(reply.result.id);
        w.u32(reply.result.ttlMs);
      } else if (reply.result.op === 'lease-revoke') {
        w.u8(reply.result.found ? 1 : 0);
        w.u64Number(reply.result.deleted);
      }
      break;
    case 'read':
      w.u64Number(reply.index);
      writeOptionalValue(w, reply.value, READ_REPLY_PAD_BYTES);
      break;
    case 'error':
      w.u16(errorCodeWire(reply.code));
      w.u32(reply.leaderHint);
      w.u8(reply.proposed ? 1 : 0);
      break;
    case 'watch-event':
      w.u64Number(reply.index);
      w.u32(reply.position);
      w.bytes(reply.key);
      writeOptionalValue(w, reply.value);
      w.u64Number(reply.createIndex);
      w.u64Number(reply.version);
      break;
    case 'watch-end':
      w.u16(errorCodeWire(reply.code));
      break;
    case 'watch-start':
      w.u64Number(reply.index);
      break;
    case 'admin':
      writeBody(w, reply.body);
      break;
    case 'leader':
      w.u32(reply.leaderId);
      break;
    case 'range':
      writeRangeResult(w, reply.result);
      break;
    case 'lease':
      w.u64Number(reply.id);
      w.u32(reply.ttlMs);
      w.u32(reply.remainingMs);
      w.u32(reply.keys);
      break;
  }
}

/** Decodes a reply frame; byte fields are copies. Throws ProtocolError on a malformed frame. */
export function decodeReply(bytes: Uint8Array): ClientReply {
  return guard(() => {
    const r = new ByteReader(bytes);
    const kind = r.u8();
    const requestId = r.u32();
    let reply: ClientReply;
    switch (kind) {
      case REPLY_KIND.write: {
        const tag = r.u8();
        if (tag === RESULT_TAG_BY_NAME['register-clients']) {
          const index = r.u64Number();
          const clientIdFirst = r.u64Number();
          if (clientIdFirst === 0) throw new ProtocolError('registered clientIdFirst is 0');
          reply = { kind: 'write', requestId, result: { op: 'register-clients', clientIdFirst }, index };
          break;
        }
        if (tag === RESULT_TAG_BY_NAME['delete-range']) {
          const index = r.u64Number();
          reply = { kind: 'write', requestId, result: { op: 'delete-range', deleted: r.u64Number() }, index };
          break;
        }
        if (tag === RESULT_TAG_BY_NAME['lease-grant']) {
          const index = r.u64Number();
          reply = { kind: 'write', requestId, result: { op: 'lease-grant', id: r.u64Number(), ttlMs: r.u32() }, index };
          break;
        }
        if (tag === RESULT_TAG_BY_NAME['lease-revoke']) {
          const index = r.u64Number();
          const found = r.u8();
          if (found > 1) throw new ProtocolError(`lease-revoke found flag ${found} is not 0 or 1`);
          reply = { kind: 'write', requestId, result: { op: 'lease-revoke', found: found === 1, deleted: r.u64Number() }, index };
          break;
        }
        if (tag === RESULT_TAG_BY_NAME.app) {
          const index = r.u64Number();
          // Decoded by the caller (kv/app-machine.ts).
          reply = { kind: 'write', requestId, result: { op: 'app', encoded: r.bytes(1 + APP_RESULT_BYTES_MAX).slice() }, index };
          break;
        }
        if (tag === RESULT_TAG_BY_NAME.redis) {
          const index = r.u64Number();
          // RESP2 bytes, for a RESP port to pass on (kv/redis.ts).
          reply = { kind: 'write', requestId, result: { op: 'redis', encoded: r.bytes(REDIS_WRITE_REPLY_BYTES_MAX).slice() }, index };
          break;
        }
        if (tag === RESULT_TAG_BY_NAME.txn) {
          const index = r.u64Number();
          // Decoded by the caller (kv/txn.ts), which checks its structure.
          reply = { kind: 'write', requestId, result: { op: 'txn', encoded: r.bytes(KV_TXN_RESULT_BYTES_MAX).slice() }, index };
          break;
        }
        const result = resultOfTag(tag);
        reply = { kind: 'write', requestId, result, index: r.u64Number() };
        break;
      }
      case REPLY_KIND.read: {
        const index = r.u64Number();
        reply = { kind: 'read', requestId, index, value: readOptionalValue(r, READ_REPLY_VALUE_BYTES_MAX, READ_REPLY_PAD_BYTES) };
        break;
      }
      case REPLY_KIND.error: {
        const code = readCode(r);
        const leaderHint = r.u32();
        const proposed = r.u8();
        if (proposed > 1) throw new ProtocolError(`proposed flag ${proposed} is not 0 or 1`);
        reply = { kind: 'error', requestId, code, leaderHint, proposed: proposed === 1 };
        break;
      }
      case REPLY_KIND['watch-event']: {
        const index = r.u64Number();
        const position = r.u32();
        const key = r.bytes(KV_KEY_BYTES_MAX).slice();
        const value = readOptionalValue(r);
        reply = { kind: 'watch-event', requestId, index, position, key, value, createIndex: r.u64Number(), version: r.u64Number() };
        break;
      }
      case REPLY_KIND['watch-end']:
        reply = { kind: 'watch-end', requestId, code: readCode(r) };
        break;
      case REPLY_KIND['watch-start']:
        reply = { kind: 'watch-start', requestId, index: r.u64Number() };
        break;
      case REPLY_KIND.admin:
        reply = { kind: 'admin', requestId, body: readBody(r) };
        break;
      case REPLY_KIND.leader:
        reply = { kind: 'leader', requestId, leaderId: r.u32() };
        break;
      case REPLY_KIND.range:
        reply = { kind: 'range', requestId, result: readRangeResult(r) };
        break;
      case REPLY_KIND.lease:
        reply = { kind: 'lease', requestId, id: r.u64Number(), ttlMs: r.u32(), remainingMs: r.u32(), keys: r.u32() };
        break;
      default:
        throw new ProtocolError(`unknown reply kind ${kind}`);
    }
    r.expectEnd();
    return reply;
  });
}

/** A write reply of a put, delete or cas (a registration's is longer and takes the slow path). */
const WRITE_REPLY_BYTES = HEADER_BYTES + 1 + 8;
/** A read reply without its value: header, index, present flag. */
const READ_REPLY_MIN_BYTES = HEADER_BYTES + 8 + 1;
/** Zero bytes after a read reply's present flag when a value follows. */
const READ_REPLY_PAD_BYTES = 6;
/** Where a read reply's value starts in its frame: a multiple of 8. */
const READ_REPLY_VALUE_AT = READ_REPLY_MIN_BYTES + READ_REPLY_PAD_BYTES + LENGTH_BYTES;
const RESULTS_BY_TAG: readonly (KvResult | undefined)[] = [undefined, ...[1, 2, 3, 4, 5].map((tag) => Object.freeze(resultOfTag(tag)))];

/**
 * Decodes the reply frame at memory[offset, offset + length), where `view` is a DataView
 * over all of `memory`: write and read replies (the bulk of the traffic) are read in place
 * with no allocation but the reply (and a read's value, copied with `values`); other kinds
 * go through {@link decodeReply}.
 */
export function decodeReplyAt(memory: Uint8Array, view: DataView, offset: number, length: number, values: CopyPool): ClientReply {
  if (length === WRITE_REPLY_BYTES && memory[offset] === REPLY_KIND.write) {
    const result = RESULTS_BY_TAG[memory[offset + 5]!];
    const high = view.getUint32(offset + 10, true);
    if (result !== undefined && high <= 0x1f_ffff) {
      return { kind: 'write', requestId: view.getUint32(offset + 1, true), result, index: high * 2 ** 32 + view.getUint32(offset + 6, true) };
    }
  }
  if (memory[offset] === REPLY_KIND.read && length >= READ_REPLY_MIN_BYTES) {
    // kind, requestId, index (8), present (1), then zeros (6), length (4) and value when present.
    const high = view.getUint32(offset + 9, true);
    const present = memory[offset + 13];
    // The six zero bytes as a u16 and a u32.
    const padAt = offset + READ_REPLY_MIN_BYTES;
    const padded = present === 1 && length >= READ_REPLY_VALUE_AT && view.getUint16(padAt, true) === 0 && view.getUint32(padAt + 2, true) === 0;
    const valueLength = padded ? view.getUint32(offset + READ_REPLY_VALUE_AT - LENGTH_BYTES, true) : -1;
    const exact = present === 0 ? length === READ_REPLY_MIN_BYTES : valueLength >= 0 && length === READ_REPLY_VALUE_AT + valueLength;
    if (high <= 0x1f_ffff && exact && valueLength <= READ_REPLY_VALUE_BYTES_MAX) {
      const start = offset + READ_REPLY_VALUE_AT;
      return {
        kind: 'read',
        requestId: view.getUint32(offset + 1, true),
        index: high * 2 ** 32 + view.getUint32(offset + 5, true),
        value: present === 0 ? undefined : values.copy(memory, start, start + valueLength),
      };
    }
  }
  return decodeReply(memory.subarray(offset, offset + length));
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function utf8Bytes(body: string): number {
  return Buffer.byteLength(body, 'utf8');
}

function writeBody(w: ByteWriter, body: string): void {
  const bytes = utf8.encode(body);
  if (bytes.length > ADMIN_BODY_BYTES_MAX) throw new ProtocolError(`an admin body of ${bytes.length} bytes is over the ${ADMIN_BODY_BYTES_MAX} allowed`);
  w.bytes(bytes);
}

/** An admin body: its length, then at most ADMIN_BODY_BYTES_MAX bytes of valid UTF-8. */
function readBody(r: ByteReader): string {
  const bytes = r.bytes(ADMIN_BODY_BYTES_MAX);
  try {
    return utf8Strict.decode(bytes);
  } catch {
    throw new ProtocolError('an admin body is not valid UTF-8');
  }
}

/** A present flag, then, if present, `padBytes` zero bytes and the value with its length. */
function writeOptionalValue(w: ByteWriter, value: Uint8Array | undefined, padBytes = 0): void {
  if (value === undefined) {
    w.u8(0);
  } else {
    w.u8(1);
    w.zeros(padBytes);
    w.bytes(value);
  }
}

/** What {@link writeOptionalValue} wrote: padding that is not zero is a malformed frame. */
function readOptionalValue(r: ByteReader, bytesMax = KV_VALUE_BYTES_MAX, padBytes = 0): Uint8Array | undefined {
  const present = r.u8();
  if (present > 1) throw new ProtocolError(`value-present flag ${present} is not 0 or 1`);
  if (present === 0) return undefined;
  const pad = r.raw(padBytes);
  for (let i = 0; i < padBytes; i++) if (pad[i] !== 0) throw new ProtocolError(`padding byte ${i} is ${pad[i]}, not 0`);
  return r.bytes(bytesMax).slice();
}

/** An error code: a number that names one, checked (an unknown number is a malformed frame). */
function readCode(r: ByteReader): ErrorCode {
  const wire = r.u16();
  const code = errorCodeFromWire(wire);
  if (code === undefined) throw new ProtocolError(`unknown error code ${wire}`);
  return code;
}

/** Runs a decoder, turning the byte reader's DecodeError into a ProtocolError. */
function guard<T>(decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    if (error instanceof ProtocolError) throw error;
    throw new ProtocolError(`malformed frame: ${(error as Error).message}`, { cause: error });
  }
}
