/** The base layer: what every layer may import (assertions, error codes, shared limits, settings). */
export { AssertionError, assert, fail } from './assert.ts';
export { F64Deque } from './f64-deque.ts';
export { IntKeyMap } from './int-key-map.ts';
export { getU32, putU32 } from './u32.ts';
export {
  ERROR_CODE_WIRE_MAX,
  ErrorCode,
  RingraftError,
  errorCodeFromWire,
  errorCodeWire,
  invalidArgument,
  parseErrorCode,
  pickCodes,
} from './errors.ts';
export {
  APPEND_BYTES_LIMIT,
  CLUSTER_NODES_MAX,
  CONF_NODES_MAX,
  ENTRY_DATA_BYTES_MAX,
  MESSAGE_ENTRIES_MAX,
  PROPOSAL_BYTES_LIMIT,
  SNAPSHOT_CHUNK_BYTES_MAX,
} from './limits.ts';
export {
  boolean,
  checkKnown,
  checkOrder,
  choice,
  defaultSettings,
  integer,
  resolveSettings,
  type Setting,
  type Settings,
  type SettingsInput,
  type SettingsSchema,
} from './settings.ts';
export { SequenceTable } from './sequence-table.ts';
