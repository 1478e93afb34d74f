/**
 * The newest entries, kept in memory so that a leader replicating what it just wrote, or a
 * follower catching up by a few entries, reads them without touching the disk. Bounded by
 * an entry count and a byte count; the oldest entries go first.
 *
 * Entries [first, first + size) are held, contiguous: `list[head + k]` is entry first + k.
 *
 * ```
 *   list:  0        head                       list.length
 *          ├ dead ───┼──────── held ─────────────┤
 *   entry:           first                  first+size-1
 * ```
 */
import { entryBytes, type Entry } from '../../core/index.ts';

export class TailCache {
  private list: Entry[] = [];
  private head = 0;
  private bytes = 0;

  constructor(
    private readonly entriesMax: number,
    private readonly bytesMax: number,
  ) {}

  private get size(): number {
    return this.list.length - this.head;
  }

  private get first(): number {
    return this.size === 0 ? 0 : this.list[this.head]!.index;
  }

  get(i: number): Entry | undefined {
    if (this.size === 0) return undefined;
    const k = i - this.first;
    return k >= 0 && k < this.size ? this.list[this.head + k] : undefined;
  }

  /** Adds entries that were just written; they start a new run if they do not follow the held ones. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    if (this.size > 0 && entries[0]!.index !== this.first + this.size) this.clear();
    for (const e of entries) {
      this.list.push(e);
      this.bytes += entryBytes(e);
    }
    this.evict();
  }

  /** Drops entries >= index. */
  truncateFrom(index: number): void {
    while (this.size > 0 && this.list[this.list.length - 1]!.index >= index) {
      this.bytes -= entryBytes(this.list.pop()!);
    }
    if (this.size === 0) this.clear();
  }

  /** Drops entries <= index. */
  compactThrough(index: number): void {
    while (this.size > 0 && this.list[this.head]!.index <= index) this.dropFirst();
    this.tidy();
  }

  clear(): void {
    this.list = [];
    this.head = 0;
    this.bytes = 0;
  }

  private evict(): void {
    while (this.size > 0 && (this.size > this.entriesMax || this.bytes > this.bytesMax)) this.dropFirst();
    this.tidy();
  }

  private dropFirst(): void {
    this.bytes -= entryBytes(this.list[this.head]!);
    this.list[this.head] = undefined as unknown as Entry; // Let the entry be collected.
    this.head++;
  }

  /** Reclaims the dead prefix once it is at least half the array. */
  private tidy(): void {
    if (this.head > 0 && this.head >= this.list.length / 2) {
      this.list = this.list.slice(this.head);
      this.head = 0;
    }
  }
}
