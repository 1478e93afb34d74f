// Proves that RaftLog.append refuses, as a broken invariant (an AssertionError), a batch that
// would leave a gap after the last index, and leaves the log as it was: a two-entry log is
// handed an entry at index 6. It was accepted before its fix.
import { AssertionError } from '../../src/base/index.ts';
import { describe, expect, it } from 'vitest';
import { EntryType, RaftLog } from '../../src/core/index.ts';
import type { Entry } from '../../src/core/index.ts';
import { MemoryStorage } from '../../src/storage/index.ts';

describe('RaftLog.append (src/core/raft-log.ts, append → Unstable.truncateAndAppend)', () => {
  it('refuses a batch that would leave a gap after the last index, as a broken invariant', () => {
    const log = new RaftLog(new MemoryStorage(), Infinity);
    const ent = (index: number): Entry => ({ index, term: 1, type: EntryType.Normal, data: new Uint8Array(0) });
    log.append([ent(1), ent(2)]);
    // Before the fix: accepted; the entry with index 6 lands at position 3 (lastIndex() 3, slice
    // returns indexes [1, 2, 6]), breaking "unstable.entries[i] has index offset + i".
    expect(() => log.append([ent(6)])).toThrow(AssertionError);
    expect(log.lastIndex()).toBe(2);
  });
});
