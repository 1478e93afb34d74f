/**
 * Key-value commands, their results, and the binary encoding of a client request as it
 * travels in a Raft log entry.
 *
 * Request encoding, format version 3 (all integers little-endian):
 *
 * ```
 * offset  size   field
 * 0       1      format version = 3
 * 1       1      op: 1 put, 2 delete, 3 cas, 4 register-clients, 5 delete-range, 6 txn,
 *                7 lease-grant, 8 lease-revoke, 9 lease-expire, 10 put with a lease
 *                (0 is invalid, so zeroed memory never decodes)
 * then, for every op but register-clients and lease-expire (a request in a client session):
 * 2       8      clientId (u64, 1 <= clientId <= 2^53 - 1)
 * 10      8      seq (u64, 1 <= seq <= 2^53 - 1)
 *   txn          rest   the transaction (txn.ts), and no key
 *   lease-grant  4      ttlMs (u32, KV_LEASE_TTL_MS_MIN to KV_LEASE_TTL_MS_MAX), and no key
 *   lease-revoke 8      lease id (u64, >= 1), and no key
 * 18      4 + k  key: u32 length k (1 <= k <= KV_KEY_BYTES_MAX; 0 allowed for delete-range,
 *                whose key is the start of its range), then k bytes
 * then, by op:
 *   put     4 + v   value: u32 length v (v <= KV_VALUE_BYTES_MAX), then v bytes
 *   put with a lease  4 + v, then 8: the value as for put, then the lease id (u64, >= 1)
 *   delete  -       nothing
 *   delete-range 1  end present: 0 (to the last key) or 1
 *           4 + e   end (only when present; e <= KV_KEY_BYTES_MAX): the key the range stops before
 *   cas     1       expected present: 0 (key must be absent) or 1
 *           4 + e   expected value (only when present; e <= KV_VALUE_BYTES_MAX)
 *           4 + v   new value
 * or, for register-clients (no session: see below):
 * 2       4      count (u32, 1 <= count <= KV_REGISTER_CLIENTS_COUNT_MAX)
 * or, for lease-expire (no session: the leader proposes it when a lease runs out; applying
 * it twice revokes nothing the second time):
 * 2       8      lease id (u64, >= 1)
 * ```
 *
 * Nothing may follow the last field, and a whole request is at most KV_REQUEST_BYTES_MAX bytes.
 *
 * Format version 1, written by earlier builds, is still decoded so that their logs replay:
 * it is version 3 with clientId a u32 (the key at offset 14) and without register-clients.
 * Its client ids are all below 2^32, and registered ids start at 2^32
 * (KV_CLIENT_ID_REGISTERED_FIRST in state-machine.ts), so the two never meet. Version 2 is
 * the batch format (below).
 *
 * register-clients is the Raft thesis's RegisterClient (§6.3): the state machine answers it
 * with the first id of `count` client ids nobody has had, from a counter it keeps (and
 * snapshots). It carries no session: applying it twice (a retry after a lost answer) only
 * spends a second block of ids, which is harmless.
 */

import { fail } from '../base/index.ts';
import { ByteCopier, ByteReader, ByteWriter, DecodeError, getU32, putU32 } from '../codec/index.ts';
import { KvError, KvErrorCode } from './errors.ts';
import { KV_KEY_BYTES_MAX, KV_REQUEST_BYTES_MAX, KV_VALUE_BYTES_MAX } from './limits.ts';
import { encodedTxnBytes, readTxn, validateTxn, writeTxn, type KvTxn } from './txn.ts';
import { KV_LEASE_TTL_MS_MAX, KV_LEASE_TTL_MS_MIN } from './leases.ts';

export type KvCommand =
  /** `lease`: the key is attached to that lease (deleted when it ends); without it, to none. */
  | { op: 'put'; key: Uint8Array; value: Uint8Array; lease?: number | undefined }
  | { op: 'delete'; key: Uint8Array }
  | {
      op: 'cas';
      key: Uint8Array;
      /** The value the key must hold for the swap to happen; undefined: the key must be absent. */
      expected: Uint8Array | undefined;
      value: Uint8Array;
    }
  | {
      /** Deletes every key in [key, end) in one entry: `key` may be empty (from the first key), `end` undefined (to the last). */
      op: 'delete-range';
      key: Uint8Array;
      end: Uint8Array | undefined;
    }
  | { op: 'txn'; txn: KvTxn }
  | { op: 'lease-grant'; ttlMs: number }
  | { op: 'lease-revoke'; id: number }
  /** A command for the cluster's own state machine (app-machine.ts), opaque here. */
  | { op: 'app'; data: Uint8Array }
  /**
   * Redis commands (redis.ts), each its words: one command, or a MULTI/EXEC's (`transaction`),
   * applied together in this one entry and answered with one reply (an array of each's).
   */
  | { op: 'redis'; commands: Uint8Array[][]; transaction: boolean };

/**
 * A command with the client session fields that make it exactly-once: the state machine
 * applies each (clientId, seq) at most once (see `KvStateMachine`).
 */
export interface KvRequest {
  /** A safe integer >= 1: registered ids (see {@link KvRegisterClientsRequest}) are >= 2^32. */
  clientId: number;
  /** A safe integer >= 1; each client numbers its requests 1, 2, 3, ... */
  seq: number;
  command: KvCommand;
}

/** Asks the state machine for `count` fresh client ids (no session; see the module comment). */
export interface KvRegisterClientsRequest {
  op: 'register-clients';
  /** 1 <= count <= KV_REGISTER_CLIENTS_COUNT_MAX. */
  count: number;
}

/** Revokes an expired lease (no session; see the module comment). */
export interface KvLeaseExpireRequest {
  op: 'lease-expire';
  id: number;
}

/** Anything a log entry (or one request of a batch entry) carries. */
export type KvLogRequest = KvRequest | KvRegisterClientsRequest | KvLeaseExpireRequest;

export type KvResult =
  | { op: 'put' }
  | { op: 'delete'; existed: boolean }
  | { op: 'cas'; swapped: boolean }
  | { op: 'delete-range'; deleted: number }
  /** A transaction's result, encoded (txn.ts: decodeTxnResult), as its session keeps it and its reply carries it. */
  | { op: 'txn'; encoded: Uint8Array }
  | { op: 'lease-grant'; id: number; ttlMs: number }
  /** `found`: the lease existed; `deleted`: its keys, now deleted. */
  | { op: 'lease-revoke'; found: boolean; deleted: number }
  /** Nothing changed: the request named a lease that does not exist, or a grant found the table full. */
  | { op: 'refused'; code: 'LEASE_NOT_FOUND' | 'LEASES_FULL' }
  /** What the cluster's own state machine made of an 'app' command: its outcome, encoded (app-machine.ts). */
  | { op: 'app'; encoded: Uint8Array }
  /** A 'redis' command's reply, RESP2 bytes (redis.ts). */
  | { op: 'redis'; encoded: Uint8Array };

/** The answer to a register-clients request: ids [clientIdFirst, clientIdFirst + count) are the caller's. */
export interface KvRegisterClientsResult {
  op: 'register-clients';
  clientIdFirst: number;
}

/** What a write (any request in the log) is answered with. */
export type KvWriteResult = KvResult | KvRegisterClientsResult;

export { KV_KEY_BYTES_MAX, KV_REQUEST_BYTES_MAX, KV_VALUE_BYTES_MAX };
export const KV_REQUEST_FORMAT_VERSION = 3;
/** Longest command for the cluster's own state machine: what a write request holds past its header (version, op, session) and the command's length. */
export const KV_APP_COMMAND_BYTES_MAX = KV_REQUEST_BYTES_MAX - (1 + 1 + 8 + 8) - 4;
/** The format of earlier builds, still decoded (see the module comment). */
const KV_REQUEST_FORMAT_VERSION_U32_IDS = 1;
/** Most ids one register-clients request may take: bounds what one log entry can spend. */
export const KV_REGISTER_CLIENTS_COUNT_MAX = 1 << 20;

const TWO_POW_32 = 2 ** 32;
/** Op tags on the wire; 0 is deliberately not a tag. */
const OP_TAG = { put: 1, delete: 2, cas: 3, 'register-clients': 4, 'delete-range': 5, txn: 6, 'lease-grant': 7, 'lease-revoke': 8, 'lease-expire': 9, 'put-lease': 10, app: 11, redis: 12 } as const;
/** Bytes before the key: version, op, clientId, seq. */
const REQUEST_HEADER_BYTES = 1 + 1 + 8 + 8;
const LENGTH_PREFIX_BYTES = 4;
/** The whole of a register-clients request: version, op, count. */
export const KV_REGISTER_CLIENTS_REQUEST_BYTES = 1 + 1 + 4;
/** The whole of a lease-expire request: version, op, lease id. */
const KV_LEASE_EXPIRE_REQUEST_BYTES = 1 + 1 + 8;

/** Whether `req` is a register-clients request. */
export function isKvRegisterClientsRequest(req: KvLogRequest): req is KvRegisterClientsRequest {
  return (req as Partial<KvRegisterClientsRequest>).op === 'register-clients';
}

/** Whether `req` is a request in a client session (not a register-clients or lease-expire). */
export function isKvSessionRequest(req: KvLogRequest): req is KvRequest {
  return (req as Partial<KvRequest>).command !== undefined;
}

/**
 * Encodes a request for a log entry. Throws KvError INVALID_ARGUMENT if the request breaks
 * a limit (empty or too long key, too long value, clientId, seq or count out of range).
 */
export function encodeKvRequest(req: KvLogRequest): Uint8Array {
  validateKvRequest(req);
  const sizeBytes = isKvSessionRequest(req) ? encodedKvRequestBytes(req.command) : req.op === 'register-clients' ? KV_REGISTER_CLIENTS_REQUEST_BYTES : KV_LEASE_EXPIRE_REQUEST_BYTES;
  const writer = new ByteWriter(sizeBytes);
  writeKvRequest(writer, req);
  if (writer.offset !== writer.capacityBytes) {
    fail(`encoded ${writer.offset} of ${writer.capacityBytes} bytes`);
  }
  return writer.finish();
}

/**
 * Writes an already validated request (see {@link validateKvRequest}) at the writer's
 * position, taking exactly {@link encodedKvRequestBytes} bytes (KV_REGISTER_CLIENTS_REQUEST_BYTES
 * for a registration): for encoding straight into ring memory.
 */
export function writeKvRequest(writer: ByteWriter, req: KvLogRequest): void {
  writer.u8(KV_REQUEST_FORMAT_VERSION);
  if (!isKvSessionRequest(req)) {
    writer.u8(OP_TAG[req.op]);
    if (req.op === 'register-clients') writer.u32(req.count);
    else writer.u64Number(req.id);
    return;
  }
  const command = req.command;
  writer.u8(command.op === 'put' && command.lease !== undefined ? OP_TAG['put-lease'] : OP_TAG[command.op]);
  // The u64 clientId as two u32 halves, low first: registered ids are above 2^32, and
  // u64Number on such a number cost some 185 ns against 40-70 ns for this (measured), on
  // the path of every put.
  const clientIdHigh = Math.floor(req.clientId / TWO_POW_32);
  writer.u32(req.clientId - clientIdHigh * TWO_POW_32);
  writer.u32(clientIdHigh);
  writer.u64Number(req.seq);
  writeCommandBody(writer, req.command);
}

/** Bytes of a put of a key and a value of these lengths, as {@link writeKvPut} writes it. */
export function encodedKvPutBytes(keyLength: number, valueLength: number, lease: number | undefined): number {
  return REQUEST_HEADER_BYTES + LENGTH_PREFIX_BYTES + keyLength + LENGTH_PREFIX_BYTES + valueLength + (lease === undefined ? 0 : 8);
}

/**
 * Writes the put of `key` (its bytes, or a string the caller knows to be ASCII) as
 * {@link writeKvRequest} writes `{ clientId: 1, seq: 1, command: put }`, with no command
 * object and no array for a string key: a client's path for every put. The caller has
 * checked the lengths; the session is set later ({@link setKvRequestSession}).
 */
export function writeKvPut(writer: ByteWriter, key: Uint8Array | string, value: Uint8Array, lease: number | undefined): void {
  writer.u8(KV_REQUEST_FORMAT_VERSION);
  writer.u8(lease === undefined ? OP_TAG.put : OP_TAG['put-lease']);
  writer.u32(1);
  writer.u32(0);
  writer.u64Number(1);
  if (typeof key === 'string') writer.ascii(key);
  else writer.bytes(key);
  writer.bytes(value);
  if (lease !== undefined) writer.u64Number(lease);
}

/** Where a session request's clientId sits (seq follows at +8). */
const SESSION_OFFSET = 2;

/**
 * Sets the session (clientId, seq) of a session request encoded by {@link writeKvRequest},
 * in place: a client encodes a write once, when its call starts, and knows its session only
 * once one is free, or moves the write to a fresh one.
 */
export function setKvRequestSession(bytes: Uint8Array, clientId: number, seq: number): void {
  if (!(Number.isSafeInteger(clientId) && clientId >= 1 && Number.isSafeInteger(seq) && seq >= 1)) fail(`session (${clientId}, ${seq}) is two safe integers >= 1`);
  const op = bytes[1]!;
  if (!(bytes.length >= SESSION_OFFSET + 16 && bytes[0] === KV_REQUEST_FORMAT_VERSION && op !== OP_TAG['register-clients'] && op !== OP_TAG['lease-expire'])) fail('an encoded session request');
  const clientIdHigh = Math.floor(clientId / TWO_POW_32);
  putU32(bytes, SESSION_OFFSET, clientId - clientIdHigh * TWO_POW_32);
  putU32(bytes, SESSION_OFFSET + 4, clientIdHigh);
  const seqHigh = Math.floor(seq / TWO_POW_32);
  putU32(bytes, SESSION_OFFSET + 8, seq - seqHigh * TWO_POW_32);
  putU32(bytes, SESSION_OFFSET + 12, seqHigh);
}

/**
 * Decodes a request from a log entry. Key and values are copies, so the result does not
 * alias `bytes` (which may be ring or log memory that gets reused). Throws KvError
 * CORRUPT_COMMAND, with the underlying DecodeError as `cause`, on any malformed input.
 */
export function decodeKvRequest(bytes: Uint8Array): KvLogRequest {
  return decodeKvRequestWith(bytes, true);
}

/**
 * `decodeKvRequest` whose keys and values (of puts, deletes, compare-and-swaps and
 * delete-ranges) are views of `bytes`, not copies: for a caller done with them before
 * `bytes` can change (the state machine copies what it keeps, once, into its slabs).
 */
export function decodeKvRequestInPlace(bytes: Uint8Array): KvLogRequest {
  return decodeKvRequestWith(bytes, false);
}

function decodeKvRequestWith(bytes: Uint8Array, copy: boolean): KvLogRequest {
  try {
    return readKvRequest(new ByteReader(bytes), copy);
  } catch (error) {
    if (error instanceof DecodeError) {
      throw new KvError(KvErrorCode.CORRUPT_COMMAND, `corrupt KV request: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/** Throws KvError INVALID_ARGUMENT unless `req` is within every limit of the format. */
export function validateKvRequest(req: KvLogRequest): void {
  if (isKvRegisterClientsRequest(req)) {
    if (!Number.isInteger(req.count) || req.count < 1 || req.count > KV_REGISTER_CLIENTS_COUNT_MAX) {
      throw invalid(`count ${req.count} is not an integer in [1, KV_REGISTER_CLIENTS_COUNT_MAX = ${KV_REGISTER_CLIENTS_COUNT_MAX}]`);
    }
    return;
  }
  if (!isKvSessionRequest(req)) {
    validateLeaseId(req.id, 'lease id');
    return;
  }
  if (!Number.isSafeInteger(req.clientId) || req.clientId < 1) {
    throw invalid(`clientId ${req.clientId} is not a safe integer >= 1`);
  }
  if (!Number.isSafeInteger(req.seq) || req.seq < 1) {
    throw invalid(`seq ${req.seq} is not a safe integer >= 1`);
  }
  const command = req.command;
  if (command.op === 'txn') {
    validateTxn(command.txn);
    const bytes = REQUEST_HEADER_BYTES + encodedTxnBytes(command.txn);
    if (bytes > KV_REQUEST_BYTES_MAX) throw invalid(`txn of ${bytes} bytes encoded is over KV_REQUEST_BYTES_MAX (${KV_REQUEST_BYTES_MAX})`);
    return;
  }
  if (command.op === 'lease-grant') {
    if (!(Number.isInteger(command.ttlMs) && command.ttlMs >= KV_LEASE_TTL_MS_MIN && command.ttlMs <= KV_LEASE_TTL_MS_MAX)) {
      throw invalid(`ttlMs ${command.ttlMs} is not an integer in [KV_LEASE_TTL_MS_MIN = ${KV_LEASE_TTL_MS_MIN}, KV_LEASE_TTL_MS_MAX = ${KV_LEASE_TTL_MS_MAX}]`);
    }
    return;
  }
  if (command.op === 'lease-revoke') {
    validateLeaseId(command.id, 'lease id');
    return;
  }
  if (command.op === 'redis') {
    if (!Array.isArray(command.commands) || command.commands.length === 0 || command.commands.length > KV_REDIS_COMMANDS_MAX) throw invalid(`a redis request holds 1 to ${KV_REDIS_COMMANDS_MAX} commands`);
    for (const words of command.commands) {
      if (!Array.isArray(words) || words.length === 0 || words.length > KV_REDIS_WORDS_MAX || !words.every((w) => w instanceof Uint8Array)) throw invalid(`a redis command is 1 to ${KV_REDIS_WORDS_MAX} Uint8Arrays`);
    }
    const bytes = encodedKvRequestBytes(command);
    if (bytes > KV_REQUEST_BYTES_MAX) throw invalid(`redis commands of ${bytes} bytes encoded are over KV_REQUEST_BYTES_MAX (${KV_REQUEST_BYTES_MAX})`);
    return;
  }
  if (command.op === 'app') {
    if (!(command.data instanceof Uint8Array)) throw invalid('a state machine command is a Uint8Array');
    if (command.data.length > KV_APP_COMMAND_BYTES_MAX) throw invalid(`a state machine command of ${command.data.length} bytes is over KV_APP_COMMAND_BYTES_MAX (${KV_APP_COMMAND_BYTES_MAX})`);
    return;
  }
  if (command.op === 'delete-range') {
    validateKey(command.key, 'start', 0);
    if (command.end !== undefined) validateKey(command.end, 'end', 0);
    return;
  }
  validateKey(command.key);
  switch (command.op) {
    case 'put':
      validateValue(command.value, 'value');
      if (command.lease !== undefined) validateLeaseId(command.lease, 'lease');
      return;
    case 'delete':
      return;
    case 'cas':
      if (command.expected !== undefined) validateValue(command.expected, 'expected');
      validateValue(command.value, 'value');
      return;
    default:
      throw invalid(`unknown op ${String((command as { op: unknown }).op)}`);
  }
}

function validateKey(key: Uint8Array, name = 'key', minBytes: 0 | 1 = 1): void {
  if (!(key instanceof Uint8Array)) throw invalid(`${name} is not a Uint8Array`);
  if (key.length < minBytes) throw invalid(`${name} is empty`);
  if (key.length > KV_KEY_BYTES_MAX) throw invalid(`${name} of ${key.length} bytes is over KV_KEY_BYTES_MAX (${KV_KEY_BYTES_MAX})`);
}

/** Throws INVALID_ARGUMENT unless `id` can name a lease (a safe integer >= 1). */
export function validateLeaseId(id: number, name: string): void {
  if (!(Number.isSafeInteger(id) && id >= 1)) throw invalid(`${name} ${id} is not an integer in [1, 2^53 - 1]`);
}

function validateValue(value: Uint8Array, name: string): void {
  if (!(value instanceof Uint8Array)) throw invalid(`${name} is not a Uint8Array`);
  if (value.length > KV_VALUE_BYTES_MAX) {
    throw invalid(`${name} of ${value.length} bytes is over KV_VALUE_BYTES_MAX (${KV_VALUE_BYTES_MAX})`);
  }
}

/** Most commands in one redis request (a MULTI/EXEC's). */
export const KV_REDIS_COMMANDS_MAX = 10_000;
/** Most words in one redis command (its name counted). */
export const KV_REDIS_WORDS_MAX = 1 << 20;

/** A redis request's body: its flag, its commands and their words (copied, or views of the reader's bytes). */
function readRedisBody(reader: ByteReader, own: (b: Uint8Array) => Uint8Array): KvCommand {
  const flagAt = reader.offset;
  const flag = reader.u8();
  if (flag > 1) throw new DecodeError('invalid', flagAt, `redis transaction flag ${flag} is not 0 or 1`);
  const countAt = reader.offset;
  const count = reader.u32();
  // Each command takes at least its word count and one empty word: 8 bytes.
  if (count === 0 || count > KV_REDIS_COMMANDS_MAX || count > reader.remainingBytes / 8) throw new DecodeError('invalid', countAt, `redis command count ${count} is not in [1, ${KV_REDIS_COMMANDS_MAX}] or more than the request holds`);
  const commands: Uint8Array[][] = [];
  for (let i = 0; i < count; i++) {
    const wordsAt = reader.offset;
    const n = reader.u32();
    if (n === 0 || n > KV_REDIS_WORDS_MAX || n > reader.remainingBytes / LENGTH_PREFIX_BYTES) throw new DecodeError('invalid', wordsAt, `redis word count ${n} is not in [1, ${KV_REDIS_WORDS_MAX}] or more than the request holds`);
    const words: Uint8Array[] = [];
    for (let j = 0; j < n; j++) words.push(own(reader.bytes(KV_REQUEST_BYTES_MAX)));
    commands.push(words);
  }
  return { op: 'redis', commands, transaction: flag === 1 };
}

function invalid(message: string): KvError {
  return new KvError(KvErrorCode.INVALID_ARGUMENT, message);
}

/** The encoded size of a session request carrying `command` (a registration takes KV_REGISTER_CLIENTS_REQUEST_BYTES). */
export function encodedKvRequestBytes(command: KvCommand): number {
  if (command.op === 'txn') return REQUEST_HEADER_BYTES + encodedTxnBytes(command.txn);
  if (command.op === 'lease-grant') return REQUEST_HEADER_BYTES + 4;
  if (command.op === 'lease-revoke') return REQUEST_HEADER_BYTES + 8;
  if (command.op === 'app') return REQUEST_HEADER_BYTES + LENGTH_PREFIX_BYTES + command.data.length;
  if (command.op === 'redis') {
    let bytes = REQUEST_HEADER_BYTES + 1 + 4;
    for (const words of command.commands) {
      bytes += 4;
      for (const w of words) bytes += LENGTH_PREFIX_BYTES + w.length;
    }
    return bytes;
  }
  const keyBytes = LENGTH_PREFIX_BYTES + command.key.length;
  switch (command.op) {
    case 'put':
      return REQUEST_HEADER_BYTES + keyBytes + LENGTH_PREFIX_BYTES + command.value.length + (command.lease === undefined ? 0 : 8);
    case 'delete':
      return REQUEST_HEADER_BYTES + keyBytes;
    case 'cas': {
      const expectedBytes = command.expected === undefined ? 0 : LENGTH_PREFIX_BYTES + command.expected.length;
      return REQUEST_HEADER_BYTES + keyBytes + 1 + expectedBytes + LENGTH_PREFIX_BYTES + command.value.length;
    }
    case 'delete-range':
      return REQUEST_HEADER_BYTES + keyBytes + 1 + (command.end === undefined ? 0 : LENGTH_PREFIX_BYTES + command.end.length);
  }
}

function writeCommandBody(writer: ByteWriter, command: KvCommand): void {
  if (command.op === 'txn') {
    writeTxn(writer, command.txn);
    return;
  }
  if (command.op === 'lease-grant') {
    writer.u32(command.ttlMs);
    return;
  }
  if (command.op === 'lease-revoke') {
    writer.u64Number(command.id);
    return;
  }
  if (command.op === 'app') {
    writer.bytes(command.data);
    return;
  }
  if (command.op === 'redis') {
    writer.u8(command.transaction ? 1 : 0);
    writer.u32(command.commands.length);
    for (const words of command.commands) {
      writer.u32(words.length);
      for (const w of words) writer.bytes(w);
    }
    return;
  }
  writer.bytes(command.key);
  switch (command.op) {
    case 'put':
      writer.bytes(command.value);
      if (command.lease !== undefined) writer.u64Number(command.lease);
      return;
    case 'delete':
      return;
    case 'cas':
      if (command.expected === undefined) {
        writer.u8(0);
      } else {
        writer.u8(1);
        writer.bytes(command.expected);
      }
      writer.bytes(command.value);
      return;
    case 'delete-range':
      writer.u8(command.end === undefined ? 0 : 1);
      if (command.end !== undefined) writer.bytes(command.end);
      return;
  }
}

function readKvRequest(reader: ByteReader, copy: boolean): KvLogRequest {
  const versionAt = reader.offset;
  const version = reader.u8();
  if (version !== KV_REQUEST_FORMAT_VERSION && version !== KV_REQUEST_FORMAT_VERSION_U32_IDS) {
    throw new DecodeError('invalid', versionAt, `unknown request format version ${version}`);
  }
  const opAt = reader.offset;
  const opTag = reader.u8();
  // Validate the op before reading on, so an unknown op is reported as such.
  const v3 = version === KV_REQUEST_FORMAT_VERSION;
  const sessionOp = opTag === OP_TAG.put || opTag === OP_TAG.delete || opTag === OP_TAG.cas || (v3 && (opTag === OP_TAG['delete-range'] || opTag === OP_TAG.txn || opTag === OP_TAG['lease-grant'] || opTag === OP_TAG['lease-revoke'] || opTag === OP_TAG['put-lease'] || opTag === OP_TAG.app || opTag === OP_TAG.redis));
  const registerOp = opTag === OP_TAG['register-clients'] && v3;
  const expireOp = opTag === OP_TAG['lease-expire'] && v3;
  if (!sessionOp && !registerOp && !expireOp) throw new DecodeError('invalid', opAt, `unknown op tag ${opTag} in format version ${version}`);
  if (expireOp) {
    const id = readLeaseId(reader);
    reader.expectEnd();
    return { op: 'lease-expire', id };
  }
  if (registerOp) {
    const countAt = reader.offset;
    const count = reader.u32();
    if (count === 0 || count > KV_REGISTER_CLIENTS_COUNT_MAX) {
      throw new DecodeError('invalid', countAt, `register-clients count ${count} is not in [1, ${KV_REGISTER_CLIENTS_COUNT_MAX}]`);
    }
    reader.expectEnd();
    return { op: 'register-clients', count };
  }
  const clientIdAt = reader.offset;
  const clientId = version === KV_REQUEST_FORMAT_VERSION ? reader.u64Number() : reader.u32();
  if (clientId === 0) throw new DecodeError('invalid', clientIdAt, 'clientId is 0');
  const seqAt = reader.offset;
  const seq = reader.u64Number();
  if (seq === 0) throw new DecodeError('invalid', seqAt, 'seq is 0');
  const command = readCommandBody(reader, opTag, copy);
  reader.expectEnd();
  return { clientId, seq, command };
}

/**
 * Reads the key and what follows it for a put, delete, cas or delete-range, or a transaction
 * (`opTag` is one of them); keys and values copied, or views of the reader's bytes.
 */
function readCommandBody(reader: ByteReader, opTag: number, copy: boolean): KvCommand {
  const own = copy ? (b: Uint8Array): Uint8Array => b.slice() : (b: Uint8Array): Uint8Array => b;
  if (opTag === OP_TAG['lease-grant']) {
    const at = reader.offset;
    const ttlMs = reader.u32();
    if (ttlMs < KV_LEASE_TTL_MS_MIN || ttlMs > KV_LEASE_TTL_MS_MAX) throw new DecodeError('invalid', at, `lease ttlMs ${ttlMs} is out of range`);
    return { op: 'lease-grant', ttlMs };
  }
  if (opTag === OP_TAG['lease-revoke']) return { op: 'lease-revoke', id: readLeaseId(reader) };
  // Always a copy: the user's apply may keep it, and the log or ring memory under it is reused.
  if (opTag === OP_TAG.app) return { op: 'app', data: reader.bytes(KV_APP_COMMAND_BYTES_MAX).slice() };
  if (opTag === OP_TAG.redis) return readRedisBody(reader, own);
  if (opTag === OP_TAG.txn) {
    if (reader.remainingBytes + REQUEST_HEADER_BYTES > KV_REQUEST_BYTES_MAX) throw new DecodeError('length_over_max', reader.offset, `txn of ${reader.remainingBytes + REQUEST_HEADER_BYTES} bytes is over ${KV_REQUEST_BYTES_MAX}`);
    return { op: 'txn', txn: readTxn(reader) };
  }
  const keyAt = reader.offset;
  const key = reader.bytes(KV_KEY_BYTES_MAX);
  if (opTag === OP_TAG['delete-range']) {
    const endAt = reader.offset;
    const hasEnd = reader.u8();
    if (hasEnd > 1) throw new DecodeError('invalid', endAt, `end-present flag is ${hasEnd}, not 0 or 1`);
    return { op: 'delete-range', key: own(key), end: hasEnd === 1 ? own(reader.bytes(KV_KEY_BYTES_MAX)) : undefined };
  }
  if (key.length === 0) throw new DecodeError('invalid', keyAt, 'key is empty');
  if (opTag === OP_TAG.put || opTag === OP_TAG['put-lease']) {
    const value = reader.bytes(KV_VALUE_BYTES_MAX);
    const [k, v] = copy ? copyTogether(key, value) : [key, value];
    if (opTag === OP_TAG.put) return { op: 'put', key: k, value: v };
    return { op: 'put', key: k, value: v, lease: readLeaseId(reader) };
  }
  if (opTag === OP_TAG.delete) {
    return { op: 'delete', key: own(key) };
  }
  const presentAt = reader.offset;
  const present = reader.u8();
  if (present > 1) throw new DecodeError('invalid', presentAt, `expected-present flag is ${present}, not 0 or 1`);
  const expected = present === 1 ? own(reader.bytes(KV_VALUE_BYTES_MAX)) : undefined;
  const value = reader.bytes(KV_VALUE_BYTES_MAX);
  const [k, v] = copy ? copyTogether(key, value) : [key, value];
  return { op: 'cas', key: k, expected, value: v };
}

function readLeaseId(reader: ByteReader): number {
  const at = reader.offset;
  const id = reader.u64Number();
  if (id === 0) throw new DecodeError('invalid', at, 'lease id is 0');
  return id;
}

/** Where a plain put's fields lie in its encoded bytes: filled by {@link readKvPutInPlace}. */
export interface KvPutFields {
  clientId: number;
  seq: number;
  /** The key is data[keyAt, keyAt + keyLength). */
  keyAt: number;
  keyLength: number;
  /** The value is data[valueAt, valueAt + valueLength). */
  valueAt: number;
  valueLength: number;
}

/** The highest u32 high half of a u64 that is still a safe integer. */
const SAFE_HIGH_MAX = 0x1f_ffff;

/**
 * Reads a put without a lease (format version 3) from data[at, at + length) in place: no
 * object, no copy. Returns false for anything else, valid or not; the caller then decodes
 * the request with {@link decodeKvRequest}, which decides. So this accepts exactly the puts
 * that `decodeKvRequest` decodes as `{ op: 'put' }` with no lease, with the same fields
 * (test/kv/commands.test.ts checks both on the same bytes, mutated).
 */
export function readKvPutInPlace(data: Uint8Array, at: number, length: number, out: KvPutFields): boolean {
  const end = at + length;
  if (length < REQUEST_HEADER_BYTES + 2 * LENGTH_PREFIX_BYTES + 1) return false;
  if (data[at] !== KV_REQUEST_FORMAT_VERSION || data[at + 1] !== OP_TAG.put) return false;
  const clientIdHigh = getU32(data, at + 6);
  const seqHigh = getU32(data, at + 14);
  if (clientIdHigh > SAFE_HIGH_MAX || seqHigh > SAFE_HIGH_MAX) return false;
  const clientId = clientIdHigh * 0x1_0000_0000 + getU32(data, at + 2);
  const seq = seqHigh * 0x1_0000_0000 + getU32(data, at + 10);
  if (clientId === 0 || seq === 0) return false;
  const keyLength = getU32(data, at + REQUEST_HEADER_BYTES);
  if (keyLength === 0 || keyLength > KV_KEY_BYTES_MAX) return false;
  const keyAt = at + REQUEST_HEADER_BYTES + LENGTH_PREFIX_BYTES;
  const valueLengthAt = keyAt + keyLength;
  if (valueLengthAt + LENGTH_PREFIX_BYTES > end) return false;
  const valueLength = getU32(data, valueLengthAt);
  if (valueLength > KV_VALUE_BYTES_MAX || valueLengthAt + LENGTH_PREFIX_BYTES + valueLength !== end) return false;
  out.clientId = clientId;
  out.seq = seq;
  out.keyAt = keyAt;
  out.keyLength = keyLength;
  out.valueAt = valueLengthAt + LENGTH_PREFIX_BYTES;
  out.valueLength = valueLength;
  return true;
}

/**
 * Copies a key and its value, which lie in order in one source, with one allocation: views
 * of one copied block. They live and die together in the state machine, so neither holds
 * memory the other does not. (One copy per field cost about twice as much.)
 */
function copyTogether(key: Uint8Array, value: Uint8Array): [Uint8Array, Uint8Array] {
  const start = key.byteOffset;
  const valueAt = value.byteOffset - start;
  const block = new Uint8Array(key.buffer, start, valueAt + value.length).slice();
  return [block.subarray(0, key.length), block.subarray(valueAt, valueAt + value.length)];
}

/**
 * A batch: many encoded requests in one log entry, so that a leader under load proposes
 * one entry per batch rather than one per request. Format version 2:
 *
 * ```
 * offset  size   field
 * 0       1      format version = 2 (a single request starts with 3, or 1)
 * 1       4      count n (u32, >= 1)
 * 5       ...    n requests, each: u32 length, then an encoded request (format version 3, or 1)
 * ```
 *
 * The framing is checked when the batch is applied (a bad frame is a broken proposer: the
 * entry is refused as CORRUPT_COMMAND); each request inside is decoded on its own, so one
 * malformed request fails alone and deterministically on every replica.
 */
export const KV_BATCH_FORMAT_VERSION = 2;
export const KV_BATCH_HEADER_BYTES = 1 + 4;
export const KV_BATCH_REQUESTS_MAX = 1 << 20;

/** Whether an entry's data is a batch (else a single request). */
export function isKvBatch(data: Uint8Array): boolean {
  return data.length > 0 && data[0] === KV_BATCH_FORMAT_VERSION;
}

/** Builds a batch entry by copying encoded requests in (from ring memory, say). */
export class KvBatchBuilder {
  private buffer: Uint8Array;
  private view: DataView;
  /** Copies each request in with no object made (it holds the last memory copied from until finish). */
  private readonly copier = new ByteCopier();
  private lengthBytes = KV_BATCH_HEADER_BYTES;
  private countValue = 0;

  constructor(capacityBytes = 64 << 10) {
    this.buffer = new Uint8Array(Math.max(capacityBytes, KV_BATCH_HEADER_BYTES));
    this.view = new DataView(this.buffer.buffer);
  }

  get count(): number {
    return this.countValue;
  }

  get sizeBytes(): number {
    return this.lengthBytes;
  }

  /** Appends memory[offset, offset + length): one encoded request. */
  add(memory: Uint8Array, offset: number, length: number): void {
    const needed = this.lengthBytes + LENGTH_PREFIX_BYTES + length;
    if (needed > this.buffer.length) this.grow(needed);
    this.view.setUint32(this.lengthBytes, length, true);
    this.copier.copy(memory, offset, this.buffer, this.view, this.lengthBytes + LENGTH_PREFIX_BYTES, length);
    this.lengthBytes = needed;
    this.countValue++;
  }

  /** The batch's bytes (a fresh copy); the builder starts over empty. */
  finish(): Uint8Array {
    if (this.countValue === 0) fail('a batch holds at least one request');
    this.buffer[0] = KV_BATCH_FORMAT_VERSION;
    this.view.setUint32(1, this.countValue, true);
    const out = this.buffer.slice(0, this.lengthBytes);
    this.copier.forgetSource();
    this.lengthBytes = KV_BATCH_HEADER_BYTES;
    this.countValue = 0;
    return out;
  }

  private grow(needed: number): void {
    const next = new Uint8Array(Math.max(needed, this.buffer.length * 2));
    next.set(this.buffer.subarray(0, this.lengthBytes));
    this.buffer = next;
    this.view = new DataView(next.buffer);
  }
}

/**
 * Checks that a batch's framing is whole: a header, then `count` length-prefixed requests
 * that tile the rest exactly. Throws KvError CORRUPT_COMMAND if not; returns the count.
 */
export function checkKvBatchFraming(data: Uint8Array): number {
  if (data.length < KV_BATCH_HEADER_BYTES || data[0] !== KV_BATCH_FORMAT_VERSION) corruptBatch('not a batch');
  const count = getU32(data, 1);
  if (count === 0 || count > KV_BATCH_REQUESTS_MAX) corruptBatch(`count ${count} is out of range`);
  let at = KV_BATCH_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + LENGTH_PREFIX_BYTES > data.length) corruptBatch(`request ${i} header runs past the end`);
    at += LENGTH_PREFIX_BYTES + getU32(data, at);
    if (at > data.length) corruptBatch(`request ${i} runs past the end`);
  }
  if (at !== data.length) corruptBatch(`${data.length - at} bytes after the last request`);
  return count;
}

function corruptBatch(message: string): never {
  throw new KvError(KvErrorCode.CORRUPT_COMMAND, `corrupt KV batch: ${message}`);
}

/**
 * Calls `visit` with a view of each encoded request in a batch, in order. Throws KvError
 * CORRUPT_COMMAND if the framing is broken (checked before any request is visited).
 */
export function forEachKvBatchRequest(data: Uint8Array, visit: (request: Uint8Array, position: number) => void): void {
  const count = checkKvBatchFraming(data);
  let at = KV_BATCH_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const length = getU32(data, at);
    visit(data.subarray(at + LENGTH_PREFIX_BYTES, at + LENGTH_PREFIX_BYTES + length), i);
    at += LENGTH_PREFIX_BYTES + length;
  }
}
