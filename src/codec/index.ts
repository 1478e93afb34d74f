export {
  BYTES_LENGTH_PREFIX_BYTES,
  ByteCopier,
  ByteReader,
  ByteWriter,
  DecodeError,
  getU32,
  putU32,
  U32_MAX,
  U64_MAX,
  WORD_COPY_BYTES_MAX,
} from './bytes.ts';
export type { DecodeErrorReason } from './bytes.ts';
export {
  CONF_NODES_MAX,
  ENTRY_DATA_BYTES_MAX,
  MESSAGE_ENTRIES_MAX,
  MESSAGE_FORMAT_VERSION,
  SNAPSHOT_CHUNK_BYTES_MAX,
  decodeMessage,
  encodeMessage,
  encodeMessageInto,
  encodedMessageBytes,
} from './message-codec.ts';
export type { DecodeMessageOptions } from './message-codec.ts';
export { COPY_POOL_ITEM_BYTES_MAX, CopyPool } from './copy-pool.ts';
