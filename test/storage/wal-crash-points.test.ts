// Proves that a crash at any point of a multi-step operation leaves a log that opens, in the
// state before the operation or after it, never in between and never corrupt: creating a
// snapshot (snapshot file, rename, marker, deleting the old snapshot file and the covered
// segments), installing a leader's snapshot with entries, rolling over to a new segment,
// and creating a new log. FaultyFileSystem's crashAtMutation stops the process just before
// its 1st, 2nd, 3rd, ... call that changes the disk, until the operation completes.
import { cpSync, mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { emptyConfState } from '../../src/core/index.ts';
import { FaultyFileSystem, SimulatedCrash, StorageError, WalStorage, realFileSystem } from '../../src/storage/index.ts';
import { ent, ents, freshDir, plain, tempDir } from './helpers.ts';

const root = tempDir();
const OPTIONS = { segmentSizeBytesMax: 4096 };
const CONF = emptyConfState([1, 2, 3]);

function stateOf(dir: string): unknown {
  const s = WalStorage.open(dir, OPTIONS);
  try {
    return { first: s.firstIndex(), last: s.lastIndex(), entries: plain(s.allEntries()), hs: s.getHardState(), snap: s.snapshot().meta, data: [...s.snapshot().data] };
  } finally {
    s.close();
  }
}

/** A log of several segments with a snapshot at 5. */
function setUp(dir: string): void {
  const s = WalStorage.open(dir, OPTIONS);
  for (let i = 1; i <= 40; i++) s.persist({ entries: [ent(i, 1 + Math.floor(i / 10), 150)], hardState: { term: 1 + Math.floor(i / 10), vote: 1, commit: i } });
  s.createSnapshot(5, CONF, new Uint8Array([5]));
  s.close();
}

/** Crashes `operation` at every disk-changing call in turn; each time the log must open in the before or after state. */
function crashEverywhere(name: string, prepare: (dir: string) => void, operation: (s: () => WalStorage, fs: FaultyFileSystem, dir: string) => void): void {
  it(name, () => {
    const template = freshDir(root);
    prepare(template);
    const beforeDir = freshDir(root);
    cpSync(template, beforeDir, { recursive: true });
    const before = stateOf(beforeDir);
    const afterDir = freshDir(root);
    cpSync(template, afterDir, { recursive: true });
    let storage: WalStorage | undefined;
    operation(() => (storage = WalStorage.open(afterDir, OPTIONS)), new FaultyFileSystem(realFileSystem, {}), afterDir);
    storage?.close();
    const after = stateOf(afterDir);
    expect(after).not.toEqual(before);

    let crashes = 0;
    for (let n = 1; ; n++) {
      const dir = freshDir(root);
      cpSync(template, dir, { recursive: true });
      const fs = new FaultyFileSystem(realFileSystem, { crashAtMutation: n });
      let opened: WalStorage | undefined;
      try {
        operation(() => (opened = WalStorage.open(dir, { ...OPTIONS, fs })), fs, dir);
      } catch (error) {
        const crash = error instanceof SimulatedCrash || (error instanceof StorageError && error.cause instanceof SimulatedCrash);
        if (!crash) throw error;
      }
      if (opened !== undefined) {
        try {
          opened.close();
        } catch {
          // Closing after the crash may try to write; the process is gone anyway.
        }
      }
      if (!fs.crashed) break;
      crashes++;
      const state = stateOf(dir);
      expect([before, after], `crash at disk call ${n}`).toContainEqual(state);
    }
    expect(crashes).toBeGreaterThan(2);
  });
}

describe('WAL crash points', () => {
  crashEverywhere('creating a snapshot that deletes segments and the older snapshot file', setUp, (open) => {
    open().createSnapshot(30, CONF, new Uint8Array(300).fill(3));
  });

  crashEverywhere('installing a snapshot from the leader with entries after it', setUp, (open) => {
    open().persist({ snapshot: { meta: { index: 50, term: 7, conf: CONF }, data: new Uint8Array([7]) }, entries: ents(51, [7, 7]), hardState: { term: 7, vote: 2, commit: 50 } });
  });

  crashEverywhere('a batch that rolls over to a new segment', setUp, (open) => {
    const s = open();
    s.persist({ entries: ents(41, Array(20).fill(5), 150), hardState: { term: 5, vote: 1, commit: 41 } });
  });

  crashEverywhere('a batch that truncates the log', setUp, (open) => {
    open().persist({ entries: ents(20, [9, 9]), hardState: { term: 9, vote: 3, commit: 19 } });
  });

  crashEverywhere(
    'creating a new log',
    (dir) => mkdirSync(dir),
    (open) => {
      open().append(ents(1, [1]));
    },
  );
});
