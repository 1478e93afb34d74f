/**
 * What a node died of, as a typed error that names the node. A worker's error reaches the
 * main thread as a structured clone: its name, message, `code` and `cause` survive, its class
 * does not. Every failure a caller or `status()` sees is a {@link RingraftError} with a code
 * from the one list, and system errors (errno codes) are mapped to the codes a user acts on:
 * a full disk is NO_SPACE, another failed write or sync IO_ERROR.
 */
import { ErrorCode, parseErrorCode, RingraftError } from '../base/index.ts';

/** errno codes of a full disk or an exhausted quota. */
const NO_SPACE_ERRNOS = new Set(['ENOSPC', 'EDQUOT']);
/** errno codes of a file system that refuses writes or fails them. */
const IO_ERRNOS = new Set(['EIO', 'EROFS', 'EACCES', 'EPERM', 'EBADF', 'ENXIO', 'EFBIG', 'EMFILE', 'ENFILE']);

/** The first errno code (`ENOSPC`, ...) along `error`'s cause chain. */
function errnoOf(error: unknown): string | undefined {
  for (let e = error, depth = 0; typeof e === 'object' && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) && parseErrorCode(code) === undefined) return code;
  }
  return undefined;
}

/** The typed error node `id` failed with, from whatever its thread threw. */
export function nodeFailure(id: number, error: unknown): RingraftError {
  const message = messageOf(error);
  // Name the node once: some errors (the directory checks) name it already.
  const named = message.startsWith(`node ${id} `) || message.startsWith(`node ${id}:`) ? message : `node ${id}: ${message}`;
  const errno = errnoOf(error);
  if (errno !== undefined && NO_SPACE_ERRNOS.has(errno)) return new RingraftError(ErrorCode.NO_SPACE, `node ${id}: no space left for its log: ${message}`, { cause: error });
  const code = parseErrorCode((error as { code?: unknown } | undefined)?.code);
  if (code !== undefined) return new RingraftError(code, named, { cause: error });
  if (errno !== undefined && IO_ERRNOS.has(errno)) return new RingraftError(ErrorCode.IO_ERROR, named, { cause: error });
  return new RingraftError(ErrorCode.NODE_DOWN, `node ${id} died: ${message}`, { cause: error });
}

/** An error's message: an Error's, or a plain one's that crossed threads in a message (runtime/worker-protocol.ts, PlainError). */
function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  const message = typeof error === 'object' && error !== null ? (error as { message?: unknown }).message : undefined;
  return typeof message === 'string' ? message : String(error);
}

/**
 * Whether a node that died of `failure` may come back by itself once the cause passes: only
 * a full disk. After another failed write or sync (EIO) the kernel may have dropped the
 * unwritten pages and cleared the error, and a node restarted on that file could take a
 * batch it reads back from the page cache for durable: such a node waits for its operator.
 */
export function isTransientFailure(failure: RingraftError): boolean {
  return failure.code === ErrorCode.NO_SPACE;
}

/** A typed error for a data directory that cannot be made or used (`what` says what was tried). */
export function storageSetupError(dir: string, what: string, error: unknown): RingraftError {
  const errno = errnoOf(error);
  const detail = error instanceof Error ? error.message : String(error);
  if (errno === 'EEXIST' || errno === 'ENOTDIR') return new RingraftError(ErrorCode.INVALID_ARGUMENT, `dataDir ${dir} is not a directory (${what}: ${detail})`, { cause: error });
  if (errno !== undefined && NO_SPACE_ERRNOS.has(errno)) return new RingraftError(ErrorCode.NO_SPACE, `dataDir ${dir}: no space left (${what}: ${detail})`, { cause: error });
  if (errno === 'EROFS' || errno === 'EACCES' || errno === 'EPERM') return new RingraftError(ErrorCode.IO_ERROR, `dataDir ${dir} is not writable (${what}: ${detail})`, { cause: error });
  if (error instanceof RingraftError) return error;
  return new RingraftError(ErrorCode.IO_ERROR, `dataDir ${dir}: ${what} failed: ${detail}`, { cause: error });
}
