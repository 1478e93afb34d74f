export { MemoryStorage } from './memory-storage.ts';
export {
  WalStorage,
  BATCH_BYTES_MAX,
  PREALLOCATE_BATCH_BYTES_MAX,
  PREALLOCATE_BYTES_DEFAULT,
  SEGMENT_SIZE_BYTES_MAX_DEFAULT,
  walRecoveryChannel,
  type Durability,
  type PersistBatch,
  type RecoveryReport,
  type SyncAgent,
  type WalOptions,
} from './wal-storage.ts';
export { CorruptLogError, StorageError, StorageErrorCode, WalVersionError, storageErrorCodeOf } from './wal/errors.ts';
export {
  FaultyFileSystem,
  SimulatedCrash,
  readWholeFile,
  realFileSystem,
  writeFileAtomically,
  type FaultPlan,
  type Fd,
  type FileSystem,
  type OpenMode,
} from './fs.ts';
export { recoverLog, type RecoveredLog, type RecordVisitor, type SegmentScan, type TornTail } from './wal/recovery.ts';
export { RECORD_PAYLOAD_BYTES_MAX, RECORD_TYPE_NAMES, RecordType, SnapshotKind, type DecodedRecord, type SnapshotMarker } from './wal/format.ts';
export { inspectWal, type WalInspection } from './wal/inspect.ts';
export {
  IDENTITY_FILE,
  checkNodeDirectory,
  nodeDirectoryHasLog,
  readCheckedRecord,
  readNodeIdentity,
  writeCheckedRecord,
  writeNodeIdentity,
  type NodeDirectoryState,
  type NodeExpectation,
  type NodeIdentity,
} from './node-identity.ts';
export {
  MANIFEST_FILE,
  bootstrapVotersOf,
  expectationOf,
  newManifest,
  readManifest,
  writeManifest,
  type ClusterManifest,
  type ManifestMember,
} from './cluster-manifest.ts';
