/**
 * Key-value commands, their results, and the binary encoding of a client request as it
 * travels in a Raft log entry.
 *
 * Request encoding, format version 1 (all integers little-endian):
 *
 * ```
 * offset  size   field
 * 0       1      format version = 1
 * 1       1      op: 1 put, 2 delete, 3 cas (0 is invalid, so zeroed memory never decodes)
 * 2       4      clientId (u32, non-zero)
 * 6       8      seq (u64, 1 <= seq <= 2^53 - 1)
 * 14      4 + k  key: u32 length k (1 <= k <= KV_KEY_BYTES_MAX), then k bytes
 * then, by op:
 *   put     4 + v   value: u32 length v (v <= KV_VALUE_BYTES_MAX), then v bytes
 *   delete  -       nothing
 *   cas     1       expected present: 0 (key must be absent) or 1
 *           4 + e   expected value (only when present; e <= KV_VALUE_BYTES_MAX)
 *           4 + v   new value
 * ```
 *
 * Nothing may follow the last field.
 */

import { ByteReader, ByteWriter, DecodeError, U32_MAX } from '../codec/index.ts';
import { KvError, KvErrorCode } from './errors.ts';

export type KvCommand =
  | { op: 'put'; key: Uint8Array; value: Uint8Array }
  | { op: 'delete'; key: Uint8Array }
  | {
      op: 'cas';
      key: Uint8Array;
      /** The value the key must hold for the swap to happen; undefined: the key must be absent. */
      expected: Uint8Array | undefined;
      value: Uint8Array;
    };

/**
 * A command with the client session fields that make it exactly-once: the state machine
 * applies each (clientId, seq) at most once (see `KvStateMachine`).
 */
export interface KvRequest {
  /** u32, non-zero. */
  clientId: number;
  /** A safe integer >= 1; each client numbers its requests 1, 2, 3, ... */
  seq: number;
  command: KvCommand;
}

export type KvResult = { op: 'put' } | { op: 'delete'; existed: boolean } | { op: 'cas'; swapped: boolean };

export const KV_KEY_BYTES_MAX = 4096;
export const KV_VALUE_BYTES_MAX = 1 << 20;
export const KV_REQUEST_FORMAT_VERSION = 1;

/** Op tags on the wire; 0 is deliberately not a tag. */
const OP_TAG = { put: 1, delete: 2, cas: 3 } as const;
/** Bytes before the key: version, op, clientId, seq. */
const REQUEST_HEADER_BYTES = 1 + 1 + 4 + 8;
const LENGTH_PREFIX_BYTES = 4;

/**
 * Encodes a request for a log entry. Throws KvError INVALID_ARGUMENT if the request breaks
 * a limit (empty or too long key, too long value, clientId or seq out of range).
 */
export function encodeKvRequest(req: KvRequest): Uint8Array {
  validateKvRequest(req);
  const writer = new ByteWriter(encodedKvRequestBytes(req.command));
  writer.u8(KV_REQUEST_FORMAT_VERSION);
  writer.u8(OP_TAG[req.command.op]);
  writer.u32(req.clientId);
  writer.u64Number(req.seq);
  writeCommandBody(writer, req.command);
  if (writer.offset !== writer.capacityBytes) {
    throw new Error(`assertion failed: encoded ${writer.offset} of ${writer.capacityBytes} bytes`);
  }
  return writer.finish();
}

/**
 * Decodes a request from a log entry. Key and values are copies, so the result does not
 * alias `bytes` (which may be ring or log memory that gets reused). Throws KvError
 * CORRUPT_COMMAND, with the underlying DecodeError as `cause`, on any malformed input.
 */
export function decodeKvRequest(bytes: Uint8Array): KvRequest {
  try {
    return readKvRequest(new ByteReader(bytes));
  } catch (error) {
    if (error instanceof DecodeError) {
      throw new KvError(KvErrorCode.CORRUPT_COMMAND, `corrupt KV request: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/** Throws KvError INVALID_ARGUMENT unless `req` is within every limit of the format. */
export function validateKvRequest(req: KvRequest): void {
  if (!Number.isInteger(req.clientId) || req.clientId < 1 || req.clientId > U32_MAX) {
    throw invalid(`clientId ${req.clientId} is not an integer in [1, 2^32)`);
  }
  if (!Number.isSafeInteger(req.seq) || req.seq < 1) {
    throw invalid(`seq ${req.seq} is not a safe integer >= 1`);
  }
  const command = req.command;
  validateKey(command.key);
  switch (command.op) {
    case 'put':
      validateValue(command.value, 'value');
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

function validateKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array)) throw invalid('key is not a Uint8Array');
  if (key.length === 0) throw invalid('key is empty');
  if (key.length > KV_KEY_BYTES_MAX) throw invalid(`key of ${key.length} bytes is over ${KV_KEY_BYTES_MAX}`);
}

function validateValue(value: Uint8Array, name: string): void {
  if (!(value instanceof Uint8Array)) throw invalid(`${name} is not a Uint8Array`);
  if (value.length > KV_VALUE_BYTES_MAX) {
    throw invalid(`${name} of ${value.length} bytes is over ${KV_VALUE_BYTES_MAX}`);
  }
}

function invalid(message: string): KvError {
  return new KvError(KvErrorCode.INVALID_ARGUMENT, message);
}

function encodedKvRequestBytes(command: KvCommand): number {
  const keyBytes = LENGTH_PREFIX_BYTES + command.key.length;
  switch (command.op) {
    case 'put':
      return REQUEST_HEADER_BYTES + keyBytes + LENGTH_PREFIX_BYTES + command.value.length;
    case 'delete':
      return REQUEST_HEADER_BYTES + keyBytes;
    case 'cas': {
      const expectedBytes = command.expected === undefined ? 0 : LENGTH_PREFIX_BYTES + command.expected.length;
      return REQUEST_HEADER_BYTES + keyBytes + 1 + expectedBytes + LENGTH_PREFIX_BYTES + command.value.length;
    }
  }
}

function writeCommandBody(writer: ByteWriter, command: KvCommand): void {
  writer.bytes(command.key);
  switch (command.op) {
    case 'put':
      writer.bytes(command.value);
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
  }
}

function readKvRequest(reader: ByteReader): KvRequest {
  const versionAt = reader.offset;
  const version = reader.u8();
  if (version !== KV_REQUEST_FORMAT_VERSION) {
    throw new DecodeError('invalid', versionAt, `unknown request format version ${version}`);
  }
  const opAt = reader.offset;
  const opTag = reader.u8();
  const clientIdAt = reader.offset;
  const clientId = reader.u32();
  if (clientId === 0) throw new DecodeError('invalid', clientIdAt, 'clientId is 0');
  const seqAt = reader.offset;
  const seq = reader.u64Number();
  if (seq === 0) throw new DecodeError('invalid', seqAt, 'seq is 0');
  const command = readCommandBody(reader, opTag, opAt);
  reader.expectEnd();
  return { clientId, seq, command };
}

function readCommandBody(reader: ByteReader, opTag: number, opAt: number): KvCommand {
  // Validate the op before reading the key, so an unknown op is reported as such.
  if (opTag !== OP_TAG.put && opTag !== OP_TAG.delete && opTag !== OP_TAG.cas) {
    throw new DecodeError('invalid', opAt, `unknown op tag ${opTag}`);
  }
  const keyAt = reader.offset;
  const key = reader.bytes(KV_KEY_BYTES_MAX).slice();
  if (key.length === 0) throw new DecodeError('invalid', keyAt, 'key is empty');
  if (opTag === OP_TAG.put) {
    return { op: 'put', key, value: reader.bytes(KV_VALUE_BYTES_MAX).slice() };
  }
  if (opTag === OP_TAG.delete) {
    return { op: 'delete', key };
  }
  const presentAt = reader.offset;
  const present = reader.u8();
  if (present > 1) throw new DecodeError('invalid', presentAt, `expected-present flag is ${present}, not 0 or 1`);
  const expected = present === 1 ? reader.bytes(KV_VALUE_BYTES_MAX).slice() : undefined;
  return { op: 'cas', key, expected, value: reader.bytes(KV_VALUE_BYTES_MAX).slice() };
}
