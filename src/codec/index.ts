export {
  BYTES_LENGTH_PREFIX_BYTES,
  ByteReader,
  ByteWriter,
  DecodeError,
  DecodeErrorCode,
  U32_MAX,
  U64_MAX,
} from './bytes.ts';
export type { DecodeErrorReason } from './bytes.ts';
