/**
 * Limits every layer shares, defined once. Each is the largest value a format accepts or a
 * setting may take; a decoder checks a length against its limit before it allocates. How
 * they relate is checked when this module loads, so a change that breaks a relation fails at
 * once, in every test, rather than as a frame that one layer writes and another refuses.
 */
import { assert } from './assert.ts';

/** Largest payload of one log entry (the codec and the WAL refuse more). */
export const ENTRY_DATA_BYTES_MAX = 64 << 20;
/** Largest value of the `proposalBytesMax` setting: a proposal is one entry's payload. */
export const PROPOSAL_BYTES_LIMIT = ENTRY_DATA_BYTES_MAX;
/** Most entries one Raft message may carry. */
export const MESSAGE_ENTRIES_MAX = 1 << 16;
/** Largest snapshot chunk payload, and the largest value of the `snapshotChunkBytes` setting. */
export const SNAPSHOT_CHUNK_BYTES_MAX = 64 << 20;
/** Largest value of the `appendBytesMax` setting (entry bytes in one AppendEntries). */
export const APPEND_BYTES_LIMIT = 64 << 20;
/** Most node ids in one list of a configuration. */
export const CONF_NODES_MAX = 4096;
/** Most nodes of one cluster started by `createCluster`. */
export const CLUSTER_NODES_MAX = 15;

assert(PROPOSAL_BYTES_LIMIT <= ENTRY_DATA_BYTES_MAX, 'a proposal fits one entry');
assert(APPEND_BYTES_LIMIT <= MESSAGE_ENTRIES_MAX * ENTRY_DATA_BYTES_MAX, 'an append batch fits one message');
assert(CLUSTER_NODES_MAX <= CONF_NODES_MAX, 'a cluster fits one configuration');
