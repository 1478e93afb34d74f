/**
 * The Storage contract every storage must meet, as one function that registers its tests
 * against a storage factory: what the core reads (initialState, entries, term, firstIndex,
 * lastIndex, snapshot, with COMPACTED and UNAVAILABLE refusals) and what the host writes
 * (append with conflict truncation, setHardState, applySnapshot, createSnapshot). A durable
 * storage also passes it when reopened between every step.
 */
import { AssertionError, ErrorCode } from '../../src/base/index.ts';
import { describe, expect, it } from 'vitest';
import { emptyConfState, entryBytes, type ConfState, type Entry, type HardState, type Snapshot, type Storage } from '../../src/core/index.ts';
import { expectCode } from '../core/helpers/errors.ts';
import { ent, ents, plain } from './helpers.ts';

/** The write side that MemoryStorage and WalStorage share. */
export interface WritableStorage extends Storage {
  append(entries: readonly Entry[]): void;
  setHardState(hs: HardState): void;
  applySnapshot(snap: Snapshot): void;
  createSnapshot(index: number, conf: ConfState, data: Uint8Array): Snapshot;
}

export interface ContractSubject<S extends WritableStorage> {
  /** A new, empty storage. */
  make(): S;
  /** The same storage after a restart (for in-memory storage: itself). */
  reopen(s: S): S;
  /** Releases it at the end of a test. */
  close(s: S): void;
}

const CONF: ConfState = { ...emptyConfState([1, 2, 3]), learners: [4] };

export function storageContract<S extends WritableStorage>(name: string, subject: ContractSubject<S>): void {
  /** Runs `body` with a fresh storage and a `step` function that reopens it (if the subject restarts). */
  function withStorage(body: (get: () => S, step: () => void) => void): () => void {
    return () => {
      let s = subject.make();
      try {
        body(
          () => s,
          () => {
            s = subject.reopen(s);
          },
        );
      } finally {
        subject.close(s);
      }
    };
  }

  const all = (s: S): Entry[] => (s.lastIndex() < s.firstIndex() ? [] : s.entries(s.firstIndex(), s.lastIndex() + 1, Infinity));

  describe(`${name}: Storage contract`, () => {
    it(
      'starts empty: index 0 at term 0, no entries, zero hard state, empty configuration',
      withStorage((get, step) => {
        step();
        const s = get();
        expect(s.firstIndex()).toBe(1);
        expect(s.lastIndex()).toBe(0);
        expect(s.term(0)).toBe(0);
        expect(s.entries(1, 1, Infinity)).toEqual([]);
        expect(s.initialState()).toEqual({ hardState: { term: 0, vote: 0, commit: 0 }, conf: emptyConfState() });
        expect(s.snapshot().meta.index).toBe(0);
        expectCode(() => s.term(1), ErrorCode.UNAVAILABLE);
        expectCode(() => s.entries(1, 2, Infinity), ErrorCode.UNAVAILABLE);
      }),
    );

    it(
      'appends entries and reads them back by range and term',
      withStorage((get, step) => {
        get().append(ents(1, [1, 1, 2, 3, 3]));
        step();
        const s = get();
        expect(s.lastIndex()).toBe(5);
        expect([1, 2, 3, 4, 5].map((i) => s.term(i))).toEqual([1, 1, 2, 3, 3]);
        expect(plain(s.entries(2, 5, Infinity))).toEqual(plain(ents(2, [1, 2, 3])));
        expect(s.entries(3, 3, Infinity)).toEqual([]);
      }),
    );

    it(
      'stops at bytesMax but always returns at least one entry',
      withStorage((get, step) => {
        get().append(ents(1, [1, 1, 1, 1], 100));
        step();
        const s = get();
        const one = entryBytes(ent(1, 1, 100));
        expect(s.entries(1, 5, 0).length).toBe(1);
        expect(s.entries(1, 5, one).length).toBe(1);
        expect(s.entries(1, 5, 2 * one).length).toBe(2);
        expect(s.entries(1, 5, 2 * one + 1).length).toBe(2);
        expect(s.entries(1, 5, 4 * one).length).toBe(4);
      }),
    );

    it(
      'truncates a conflicting suffix on append',
      withStorage((get, step) => {
        get().append(ents(1, [1, 1, 1, 1, 1]));
        step();
        get().append(ents(3, [2, 2]));
        step();
        const s = get();
        expect(s.lastIndex()).toBe(4);
        expect(plain(all(s))).toEqual(plain([...ents(1, [1, 1]), ...ents(3, [2, 2])]));
        get().append(ents(5, [3]));
        get().append(ents(2, [4]));
        step();
        expect(plain(all(get()))).toEqual(plain([ent(1, 1), ent(2, 4)]));
      }),
    );

    it(
      'refuses an append that leaves a gap (a bug in the caller)',
      withStorage((get) => {
        get().append(ents(1, [1, 1]));
        expect(() => get().append(ents(4, [1]))).toThrow(AssertionError);
        expect(get().lastIndex()).toBe(2);
      }),
    );

    it(
      'keeps the hard state',
      withStorage((get, step) => {
        get().setHardState({ term: 3, vote: 2, commit: 0 });
        get().append(ents(1, [1, 2, 3]));
        get().setHardState({ term: 3, vote: 2, commit: 2 });
        step();
        expect(get().initialState().hardState).toEqual({ term: 3, vote: 2, commit: 2 });
      }),
    );

    it(
      'creates a snapshot: compacts the entries it covers and keeps the ones after it',
      withStorage((get, step) => {
        get().append(ents(1, [1, 1, 2, 2, 3]));
        const data = new Uint8Array([9, 8, 7]);
        const snap = get().createSnapshot(3, CONF, data);
        expect(snap.meta).toEqual({ index: 3, term: 2, conf: CONF });
        step();
        const s = get();
        expect(s.firstIndex()).toBe(4);
        expect(s.lastIndex()).toBe(5);
        expect(s.term(3)).toBe(2);
        expect(s.snapshot().meta).toEqual({ index: 3, term: 2, conf: CONF });
        expect([...s.snapshot().data]).toEqual([9, 8, 7]);
        expect(s.initialState().conf).toEqual(CONF);
        expectCode(() => s.term(2), ErrorCode.COMPACTED);
        expectCode(() => s.entries(3, 5, Infinity), ErrorCode.COMPACTED);
        expect(plain(s.entries(4, 6, Infinity))).toEqual(plain(ents(4, [2, 3])));
        expectCode(() => s.createSnapshot(3, CONF, data), ErrorCode.SNAPSHOT_OUT_OF_DATE);
        expectCode(() => s.createSnapshot(2, CONF, data), ErrorCode.SNAPSHOT_OUT_OF_DATE);
        // Entries already covered are ignored on append; the rest are appended.
        s.append(ents(2, [1, 2, 2, 3, 3]));
        step();
        expect(plain(all(get()))).toEqual(plain(ents(4, [2, 3, 3])));
        // A snapshot at the last index leaves no entries.
        get().createSnapshot(6, CONF, data);
        step();
        expect(get().firstIndex()).toBe(7);
        expect(get().lastIndex()).toBe(6);
        expect(get().term(6)).toBe(3);
      }),
    );

    it(
      'applies a snapshot from the leader: replaces every entry',
      withStorage((get, step) => {
        get().append(ents(1, [1, 1, 2, 2, 3]));
        const snap: Snapshot = { meta: { index: 10, term: 4, conf: CONF }, data: new Uint8Array([1, 2, 3, 4]) };
        get().applySnapshot(snap);
        step();
        const s = get();
        expect(s.firstIndex()).toBe(11);
        expect(s.lastIndex()).toBe(10);
        expect(s.term(10)).toBe(4);
        expect(s.snapshot().meta).toEqual(snap.meta);
        expect([...s.snapshot().data]).toEqual([1, 2, 3, 4]);
        expectCode(() => s.applySnapshot(snap), ErrorCode.SNAPSHOT_OUT_OF_DATE);
        s.append(ents(11, [4, 5]));
        step();
        expect(plain(all(get()))).toEqual(plain(ents(11, [4, 5])));
        // A snapshot behind the last index also replaces the entries after it.
        get().applySnapshot({ meta: { index: 11, term: 4, conf: CONF }, data: new Uint8Array(0) });
        step();
        expect(get().lastIndex()).toBe(11);
        expect(get().firstIndex()).toBe(12);
      }),
    );
  });
}
