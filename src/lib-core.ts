/**
 * `ringraft/core`: the sans-I/O Raft core as a library. A {@link RawNode} takes ticks and
 * messages and hands out Readys; the host persists, sends and applies what each says (see
 * RawNode). With the message codec to put messages on a wire of your own, and the types a
 * host handles. Storage for it is in `ringraft/storage`.
 *
 * Stability: experimental until 1.0 (see README, "Raft as a library").
 *
 * @experimental
 * @module ringraft/core
 */
export { RawNode, type RawNodeConfig, type RawNodeProgress, type RawNodeStatus } from './core/index.ts';
export {
  EntryType,
  MessageType,
  NONE,
  NotLeaderError,
  RAFT_SETTINGS,
  decodeConfChange,
  encodeConfChange,
  formatTraceEvent,
  type ConfChange,
  type ConfChangeItem,
  type ConfChangeOp,
  type ConfState,
  type Entry,
  type HardState,
  type InitialState,
  type Message,
  type NodeId,
  type ProgressState,
  type RaftSettingsInput,
  type ReadMode,
  type ReadState,
  type Ready,
  type Role,
  type Snapshot,
  type SnapshotChunk,
  type SnapshotMeta,
  type SoftState,
  type Storage,
  type TraceEvent,
  type TraceSink,
} from './core/index.ts';
export { decodeMessage, encodeMessage, encodedMessageBytes, DecodeError } from './codec/index.ts';
export { ErrorCode, RingraftError } from './base/index.ts';
