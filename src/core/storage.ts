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

export interface InitialState {
  readonly hardState: HardState;
  readonly conf: ConfState;
}

export interface Storage {
  initialState(): InitialState;
  /**
   * Entries in [lo, hi), stopping early once `bytesMax` is passed but always returning at
   * least one entry when lo < hi. Throws a COMPACTED error if lo < firstIndex().
   */
  entries(lo: number, hi: number, bytesMax: number): Entry[];
  /** The term of entry i, for i in [firstIndex() - 1, lastIndex()]; COMPACTED below, UNAVAILABLE above. */
  term(i: number): number;
  firstIndex(): number;
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
