/** The refusals of the `serve` configuration: its code, picked from the one list in base/errors.ts, its reasons and its error class. */
import { pickCodes, RingraftError } from '../base/index.ts';

/** The one code a configuration refusal carries: the configuration the operator wrote is not acceptable. */
export const ServeConfigErrorCode = pickCodes('INVALID_ARGUMENT');
export type ServeConfigErrorCode = (typeof ServeConfigErrorCode)[keyof typeof ServeConfigErrorCode];

/**
 * Why a configuration was refused, finer than the code (which is INVALID_ARGUMENT for all):
 * for tests and tools, which compare it, never the message.
 */
export const ServeConfigErrorReason = {
  /** An argument the command line does not define: an unknown flag, a positional argument. */
  UNKNOWN_FLAG: 'UNKNOWN_FLAG',
  /** A flag without its value, a flag with a value it does not take, or a flag given twice. */
  FLAG_USAGE: 'FLAG_USAGE',
  /** A required setting given nowhere (neither as a flag nor in the file). */
  MISSING: 'MISSING',
  /** A setting whose value is of the wrong type or out of range. */
  BAD_VALUE: 'BAD_VALUE',
  /** Not `HOST:PORT` (no port, unbalanced brackets, an IPv6 address without brackets). */
  ADDRESS_MALFORMED: 'ADDRESS_MALFORMED',
  /** The host of a `HOST:PORT` is a name, not an IPv4 or IPv6 literal. */
  ADDRESS_HOST_NOT_IP: 'ADDRESS_HOST_NOT_IP',
  /** The port of a `HOST:PORT` is not an integer in [0, 65535] (or is 0 where a peer must dial it). */
  ADDRESS_PORT: 'ADDRESS_PORT',
  /** An initial cluster that is malformed, has a duplicate id or address, too many nodes, or disagrees with `id` and `listenPeer`. */
  INITIAL_CLUSTER: 'INITIAL_CLUSTER',
  /** Two settings that are each valid do not go together (a frame too small for what it must carry, two listeners on one port). */
  RELATION: 'RELATION',
  /** The `--config` file cannot be read, or is too large. */
  FILE_UNREADABLE: 'FILE_UNREADABLE',
  /** The `--config` file is not valid JSON, or not a JSON object. */
  FILE_NOT_JSON: 'FILE_NOT_JSON',
} as const;
export type ServeConfigErrorReason = (typeof ServeConfigErrorReason)[keyof typeof ServeConfigErrorReason];

/**
 * A configuration of `ringraft serve` that cannot be used. The message names the flag
 * (`--listen-peer`), the key (`initialCluster`, `raft.appendBytesMax`) or the file it is
 * about. Settings of the nested groups are checked by their own layers, whose refusals are
 * plain INVALID_ARGUMENT `RingraftError`s naming the setting's path: compare by code.
 */
export class ServeConfigError extends RingraftError {
  declare readonly code: ServeConfigErrorCode;
  readonly reason: ServeConfigErrorReason;
  constructor(reason: ServeConfigErrorReason, message: string, options?: { cause?: unknown }) {
    super(ServeConfigErrorCode.INVALID_ARGUMENT, message, options);
    this.name = 'ServeConfigError';
    this.reason = reason;
  }
}
