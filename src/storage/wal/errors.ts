/**
 * Errors of the durable storage, all {@link RingraftError}s with codes from the one list
 * (base/errors.ts): corruption and refusals (CORRUPT_LOG, CLOSED, INVALID_ARGUMENT, ...), and a failed
 * write or sync as a {@link StorageError} (IO_ERROR, NO_SPACE, STORAGE_FAILED) whose `cause` is the
 * file system's error.
 */
import { ErrorCode, pickCodes, RingraftError } from '../../base/index.ts';

/**
 * The storage's own codes, from the one list in base/errors.ts. IO_ERROR: a write, sync, rename
 * or unlink failed (EIO, ...); `cause` is the system error. NO_SPACE: the same, because the
 * disk or the user's quota is full (ENOSPC, EDQUOT). STORAGE_FAILED: an earlier
 * I/O error left the storage in an unknown state, so it refuses every further write: after a
 * failed fsync the kernel may have dropped the dirty pages and cleared the error, so retrying
 * the sync could "succeed" without the data being on disk. Reopen the directory (recovery
 * decides what is really there). `cause` is the first error.
 */
export const StorageErrorCode = pickCodes('IO_ERROR', 'NO_SPACE', 'STORAGE_FAILED');
export type StorageErrorCode = (typeof StorageErrorCode)[keyof typeof StorageErrorCode];

/** The code of a failed write or sync with errno `errno`: NO_SPACE for a full disk or quota, else IO_ERROR. */
export function storageErrorCodeOf(errno: string | undefined): StorageErrorCode {
  return errno === 'ENOSPC' || errno === 'EDQUOT' ? StorageErrorCode.NO_SPACE : StorageErrorCode.IO_ERROR;
}

/**
 * A failed write or sync of the storage (IO_ERROR, or NO_SPACE for a full disk), or a write refused after one
 * (STORAGE_FAILED); `cause` is the file system's error, or that first failure.
 */
export class StorageError extends RingraftError {
  /** IO_ERROR (NO_SPACE for a full disk) for the failure itself; STORAGE_FAILED for every write refused after it. */
  declare readonly code: StorageErrorCode;
  /** An error with `code`, wrapping the failure in `options.cause`. */
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'StorageError';
  }
}

/** Damaged stored bytes (code CORRUPT_LOG): the file and the byte offset where they are, as fields. */
export class CorruptLogError extends RingraftError {
  /** Damage in file `fileName` from byte `offsetBytes` on, with what is wrong there. */
  constructor(
    /** The file's name within the log's directory. */
    readonly fileName: string,
    /** Where in the file the bad bytes begin. */
    readonly offsetBytes: number,
    /** What is wrong there. */
    readonly reason: string,
  ) {
    super(ErrorCode.CORRUPT_LOG, `corrupt WAL: ${fileName} at byte ${offsetBytes}: ${reason}`);
    this.name = 'CorruptLogError';
  }
}

/** A {@link CorruptLogError}. */
export function corruptLog(fileName: string, offsetBytes: number, reason: string): CorruptLogError {
  return new CorruptLogError(fileName, offsetBytes, reason);
}

/**
 * A segment in a format version this build does not read: an older version (formats are not
 * migrated) or a newer one. Code UNSUPPORTED_FORMAT: the log cannot be used by this build, but
 * it is not damage, so recovery repairs and removes nothing, whatever the segment's position.
 */
export class WalVersionError extends RingraftError {
  /** Segment `fileName` holds format `version`, and this build reads `supportedVersion` only. */
  constructor(
    /** The segment's file name within the log's directory. */
    readonly fileName: string,
    /** The version the segment's header holds. */
    readonly version: number,
    /** The one version this build reads. */
    readonly supportedVersion: number,
  ) {
    super(ErrorCode.UNSUPPORTED_FORMAT, `unsupported WAL: ${fileName} at byte 4: format version ${version}; this build reads version ${supportedVersion} only`);
    this.name = 'WalVersionError';
  }
}
