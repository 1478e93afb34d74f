export {
  decodeKvRequest,
  decodeKvRequestInPlace,
  readKvPutInPlace,
  encodeKvRequest,
  encodedKvPutBytes,
  encodedKvRequestBytes,
  setKvRequestSession,
  writeKvPut,
  writeKvRequest,
  forEachKvBatchRequest,
  isKvBatch,
  isKvRegisterClientsRequest,
  isKvSessionRequest,
  validateLeaseId,
  KV_BATCH_FORMAT_VERSION,
  KV_BATCH_HEADER_BYTES,
  KV_BATCH_REQUESTS_MAX,
  KvBatchBuilder,
  KV_KEY_BYTES_MAX,
  KV_APP_COMMAND_BYTES_MAX,
  KV_REGISTER_CLIENTS_COUNT_MAX,
  KV_REGISTER_CLIENTS_REQUEST_BYTES,
  KV_REQUEST_FORMAT_VERSION,
  KV_VALUE_BYTES_MAX,
  KV_REQUEST_BYTES_MAX,
  validateKvRequest,
} from './commands.ts';
export type {
  KvCommand,
  KvPutFields,
  KvLeaseExpireRequest,
  KvLogRequest,
  KvRegisterClientsRequest,
  KvRegisterClientsResult,
  KvRequest,
  KvResult,
  KvWriteResult,
} from './commands.ts';
export { KvError, KvErrorCode } from './errors.ts';
export { Slab } from './byte-slabs.ts';
export { KV_CLIENT_ID_REGISTERED_FIRST, KV_SESSION_RESULT_BYTES_MAX_DEFAULT, KV_SESSION_RESULT_BYTES_MIN, KV_SESSIONS_MAX_DEFAULT, KV_SNAPSHOT_FORMAT_VERSION, KvStateMachine, keyString, keyStringAt } from './state-machine.ts';
export { KV_RESULT_PUT, KvApplyOutcomes } from './apply-outcomes.ts';
export type { KvApplyOutcome, KvChange, KvChangeSink, KvStateMachineOptions } from './state-machine.ts';
export { checkRangeQuery, KV_RANGE_BYTES_MAX, KV_RANGE_ENTRIES_MAX, KV_RANGE_ENTRY_OVERHEAD_BYTES, prefixEnd } from './range.ts';
export type { KvRangeEntry, KvRangeQuery, KvRangeResult } from './range.ts';
export { encodedRangeQueryBytes, encodedRangeResultBytes, readRangeQuery, readRangeResult, writeRangeQuery, writeRangeResult } from './range-codec.ts';
export { compareHolds, decodeTxnResult, encodeTxnResult, KV_TXN_COMPARES_MAX, KV_TXN_OPS_MAX, KV_TXN_READ_BYTES_MAX, KV_TXN_RESULT_BYTES_MAX, validateTxn } from './txn.ts';
export type { KvTxn, KvTxnResult, TxnCompare, TxnCompareOp, TxnGetEntry, TxnNumberTarget, TxnOp, TxnOpResult } from './txn.ts';
export { KV_LEASE_TTL_MS_MAX, KV_LEASE_TTL_MS_MIN, KV_LEASES_MAX } from './leases.ts';
export type { LeaseInfo } from './leases.ts';
export { KV_REDIS_COMMANDS_MAX } from './commands.ts';
export { APP_ERROR_BYTES_MAX, APP_RESULT_BYTES_MAX, APP_SNAPSHOT_BYTES_MAX, appSnapshotBytes, appSnapshotBytesNow, decodeAppOutcome, errorOutcome, restoreApp, runApp } from './app-machine.ts';
export type { AppOutcome, SnapshotCancel, SnapshotChunks, StateMachine, StateMachineFactory } from './app-machine.ts';
export { redisWriteReplyIsSmall } from './redis.ts';
export { checkRedisCommand, decodeCursor, encodeCursor, globMatch, parseInt64, REDIS_READ_REPLY_BYTES_MAX, REDIS_STORE_COMMANDS, REDIS_WRITE_REPLY_BYTES_MAX, redisCommandName } from './redis.ts';
