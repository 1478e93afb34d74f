/**
 * The core's read view of stable storage. The host writes to storage (as each Ready says)
 * and the core reads from it through this interface; the core never writes.
 *
 * Indexes: the storage holds a snapshot covering [1, snapshot.index] and the entries
 * [firstIndex(), lastIndex()]. Entries covered by the snapshot may be retained for
 * followers to catch up from. Invariants: firstIndex() - 1 <= snapshot.index, and
 * firstIndex() <= lastIndex() + 1.
 */
import type { ConfState, Entry, HardState, Snapshot } from './types.ts';

/** What a node starts from: its stored hard state, and the configuration of its snapshot. */
export interface InitialState {
  /** The term, vote and commit index last written (all 0 in new storage). */
  readonly hardState: HardState;
  /** The membership configuration as of the snapshot; the core learns later changes by replaying the log. */
  readonly conf: ConfState;
}

/**
 * The core's read view of a node's stable storage: a snapshot covering [1, snapshot index]
 * and the entries [firstIndex(), lastIndex()]. The host writes to it; the core only reads.
 */
export interface Storage {
  /** The state a node starts from, read once when it is built. */
  initialState(): InitialState;
  /**
   * Entries in [lo, hi), stopping early once `bytesMax` is passed but always returning at
   * least one entry when lo < hi. Throws a COMPACTED error if lo < firstIndex().
   */
  entries(lo: number, hi: number, bytesMax: number): Entry[];
  /** The term of entry i, for i in [firstIndex() - 1, lastIndex()]; COMPACTED below, UNAVAILABLE above. */
  term(i: number): number;
  /** The index of the first entry held: the one after the snapshot's, or earlier when entries behind it are retained. */
  firstIndex(): number;
  /** The index of the last entry held (the snapshot's index when no entry follows it; 0 when empty). */
  lastIndex(): number;
  /** The newest snapshot. */
  snapshot(): Snapshot;
}

/** The framing allowance entryBytes() adds to an entry's payload. */
export const ENTRY_FRAMING_BYTES = 24;

/** The bytes an entry costs when batching: payload plus a fixed framing allowance. */
export function entryBytes(e: Entry): number {
  return e.data.length + ENTRY_FRAMING_BYTES;
}
