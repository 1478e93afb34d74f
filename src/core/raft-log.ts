/**
 * The Raft log as the core sees it: the stable part (in storage) followed by the unstable
 * part (entries and possibly a snapshot not yet handed to the host for persistence).
 *
 *   snapshot.index   storage.lastIndex   unstable.offset - 1 + unstable.entries.length
 *        │  stable entries   │   unstable entries   │
 *   ─────┴───────────────────┴──────────────────────┴──►  index
 *                  applied <= committed <= lastIndex
 *
 * Invariant: applied <= committed <= lastIndex(); unstable.entries[i] has index
 * unstable.offset + i.
 */
import { ErrorCode, fail, RingraftError } from '../base/index.ts';
import { entryBytes, type Storage } from './storage.ts';
import type { Entry, Snapshot } from './types.ts';

class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  /** Index of entries[0]. */
  offset: number;
  /** How many of `entries` (from the front) have been handed out in a Ready not yet advanced. */
  inProgress = 0;
  snapshotInProgress = false;

  constructor(offset: number) {
    this.offset = offset;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    if (this.snapshot !== undefined) return this.snapshot.meta.index;
    return undefined;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.meta.index + 1;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.meta.index === i) return this.snapshot.meta.term;
      return undefined;
    }
    const e = this.entries[i - this.offset];
    return e === undefined ? undefined : e.term;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const after = ents[0]!.index;
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // Replaces the whole unstable part; the storage truncates its own suffix on append.
      this.offset = after;
      this.entries = ents.slice();
      this.inProgress = 0;
    } else {
      const keep = after - this.offset;
      this.entries = this.entries.slice(0, keep).concat(ents);
      this.inProgress = Math.min(this.inProgress, keep);
    }
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.meta.index + 1;
    this.entries = [];
    this.inProgress = 0;
    this.snapshot = snapshot;
    this.snapshotInProgress = false;
  }

  /** Entries up to `index` (of term `term`) are now stable. */
  stableTo(index: number, term: number): void {
    const t = this.maybeTerm(index);
    // A later append may have replaced the entry; then it is not yet stable.
    if (t !== term || index < this.offset) return;
    const n = index + 1 - this.offset;
    this.entries = this.entries.slice(n);
    this.offset = index + 1;
    this.inProgress = Math.max(0, this.inProgress - n);
  }

  stableSnapTo(index: number): void {
    if (this.snapshot !== undefined && this.snapshot.meta.index === index) {
      this.snapshot = undefined;
      this.snapshotInProgress = false;
    }
  }
}

export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known committed. */
  committed: number;
  /** Highest index handed to the host for applying (in a Ready it has advanced or not). */
  applying: number;
  /** Highest index the host has applied (advanced). */
  applied: number;
  /** Bound on the bytes of committed entries handed out in one Ready. */
  readonly applyBytesMax: number;

  constructor(storage: Storage, applyBytesMax: number) {
    this.storage = storage;
    this.applyBytesMax = applyBytesMax;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    // The host restores its state machine from the storage's snapshot on start, which may
    // cover entries the storage retains for catching followers up: start applying after it.
    const start = Math.max(first - 1, storage.snapshot().meta.index);
    this.committed = start;
    this.applied = start;
    this.applying = start;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** The term of entry i, or 0 if i is beyond the log or compacted away. */
  term(i: number): number {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return 0;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch (error) {
      if (error instanceof RingraftError && (error.code === ErrorCode.COMPACTED || error.code === ErrorCode.UNAVAILABLE)) return 0;
      throw error;
    }
  }

  matchTerm(i: number, term: number): boolean {
    return this.term(i) === term && (term !== 0 || i === 0);
  }

  /** §5.4.1: whether a log ending at (index, term) is at least as up to date as ours. */
  isUpToDate(index: number, term: number): boolean {
    const lastTerm = this.lastTerm();
    return term > lastTerm || (term === lastTerm && index >= this.lastIndex());
  }

  /**
   * The follower side of AppendEntries: if our entry at prevIndex has prevTerm, append
   * `entries` (truncating a conflicting suffix, skipping entries we already have) and
   * advance commit. Returns the last index now known to match, or undefined on mismatch.
   */
  maybeAppend(prevIndex: number, prevTerm: number, commit: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      if (!(conflict > this.committed)) fail(`conflict at ${conflict} with committed entry (committed ${this.committed})`);
      this.append(entries.slice(conflict - prevIndex - 1));
    }
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  /**
   * The index of the first entry that is new or conflicts with ours, or 0 if we hold them
   * all already (re-appending what we have is a no-op, which makes appends idempotent).
   */
  findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * For a rejected append at (index, term): the largest index <= `index` whose term is
   * <= `term`, which lets the leader skip a whole conflicting term at once.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    for (;;) {
      const t = this.term(i);
      if (t <= term || i <= this.firstIndex() - 1) return { index: i, term: t };
      i--;
    }
  }

  append(entries: readonly Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const after = entries[0]!.index - 1;
    if (!(after >= this.committed)) fail(`append after ${after} would truncate committed ${this.committed}`);
    if (!(after <= this.lastIndex())) fail(`append at ${after + 1} leaves a gap after last index ${this.lastIndex()}`);
    for (let i = 1; i < entries.length; i++) {
      if (!(entries[i]!.index === entries[i - 1]!.index + 1)) fail(`append batch not contiguous at ${entries[i]!.index}`);
    }
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (!(index <= this.lastIndex())) fail(`commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Advances commit to `index` if the entry there is of `term` (§5.4.2). */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.term(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  appliedTo(index: number): void {
    if (!(index <= this.committed)) fail(`applied ${index} beyond committed ${this.committed}`);
    if (index > this.applied) this.applied = index;
    if (index > this.applying) this.applying = index;
  }

  /** Entries [lo, hi), from storage and the unstable part, up to about `bytesMax`. */
  slice(lo: number, hi: number, bytesMax: number): Entry[] {
    if (lo >= hi) return [];
    if (!(lo >= this.firstIndex())) fail(`slice from ${lo} below first index ${this.firstIndex()}`);
    if (!(hi <= this.lastIndex() + 1)) fail(`slice to ${hi} beyond last index ${this.lastIndex()}`);
    const out: Entry[] = [];
    const uOffset = this.unstable.offset;
    if (lo < uOffset) {
      const stable = this.storage.entries(lo, Math.min(hi, uOffset), bytesMax);
      for (const e of stable) out.push(e);
      if (stable.length < Math.min(hi, uOffset) - lo) return out;
    }
    let bytes = 0;
    for (const e of out) bytes += entryBytes(e);
    for (let i = Math.max(lo, uOffset); i < hi; i++) {
      const e = this.unstable.entries[i - uOffset]!;
      bytes += entryBytes(e);
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(e);
    }
    return out;
  }

  /** Unstable entries not yet handed to the host. */
  unstableToPersist(): readonly Entry[] {
    return this.unstable.entries.length > this.unstable.inProgress ? this.unstable.entries.slice(this.unstable.inProgress) : [];
  }

  hasCommittedToApply(): boolean {
    return this.committed > this.applying && this.applying + 1 >= this.firstIndex();
  }

  committedToApply(): Entry[] {
    if (!this.hasCommittedToApply()) return [];
    return this.slice(this.applying + 1, this.committed + 1, this.applyBytesMax);
  }

  restore(snapshot: Snapshot): void {
    this.committed = snapshot.meta.index;
    this.unstable.restore(snapshot);
  }
}
