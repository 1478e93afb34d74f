/**
 * `ringraft/storage`: the logs a `RawNode` (`ringraft/core`) reads through its `Storage`
 * interface, each with `persist(batch)` for step 1 of a Ready. `WalStorage`: segmented,
 * CRC-checked files, one `writev` and one `fdatasync` per batch, torn tails cut on open, any
 * other damage refused (CORRUPT_LOG). `MemoryStorage`: the same in memory.
 *
 * Stability: `MemoryStorage`, `WalStorage` and their errors are experimental until 1.0; the
 * WAL's on-disk format is versioned (docs/wal-format.md) and a newer version refuses an older
 * format rather than misread it.
 *
 * @experimental
 * @module ringraft/storage
 */
export {
  CorruptLogError,
  MemoryStorage,
  StorageError,
  StorageErrorCode,
  WalStorage,
  WalVersionError,
  walRecoveryChannel,
  type Durability,
  type PersistBatch,
  type RecoveryReport,
  type SyncAgent,
  type WalOptions,
} from './storage/index.ts';
export { ErrorCode, RingraftError } from './base/index.ts';
