/**
 * The watches one node serves: each a key prefix and the index it started after. A watch
 * starts with a watch-start, replays the node's {@link WatchHistory} after its index, then
 * gets every matching change as it applies, in order of (index, position); it ends with a
 * watch-end and a code: CLOSED when unwatched, COMPACTED when a snapshot jumps over it or
 * its index is below the history's floor, WATCH_LAGGING when its client does not keep up
 * (the worker decides), UNAVAILABLE when the node serves as many watches as it may.
 *
 * Every watch costs memory and a look at each applied change, so their number and bytes
 * are bounded: {@link WATCHES_MAX} watches, {@link WATCH_BYTES_MAX} bytes of prefixes and
 * bookkeeping.
 */
import { ErrorCode } from '../base/index.ts';
import type { RaftNode } from '../core/index.ts';
import type { KvChange, KvChangeSink, Slab } from '../kv/index.ts';
import type { HostSink } from './node-host.ts';
import { WatchHistory } from './watch-history.ts';

/** Watches one node serves at once; more are refused with UNAVAILABLE. */
export const WATCHES_MAX = 65_536;
/** Bytes those watches may hold (prefixes and bookkeeping): watches of 4 KiB prefixes reach it at some 3,970. */
export const WATCH_BYTES_MAX = 16 << 20;
/** Bookkeeping bytes counted per watch beside its prefix (map entry, record). */
const WATCH_OVERHEAD_BYTES = 128;

interface Watch {
  readonly prefix: Uint8Array;
  /** Changes at or below this index are before the watch (it may be ahead of this node). */
  readonly afterIndex: number;
}

/** How a watch request went: only `invalid` is the client's fault (the host counts it). */
export type WatchStart = 'started' | 'invalid' | 'compacted' | 'full';

export class WatchSet implements KvChangeSink {
  private readonly watches = new Map<number, Watch>();
  /** Bytes the watches hold: their prefixes plus WATCH_OVERHEAD_BYTES each. Invariant: at most WATCH_BYTES_MAX. */
  private prefixBytes = 0;
  private readonly history: WatchHistory;

  constructor(
    private readonly raft: RaftNode,
    private readonly sink: HostSink,
    /** The index the history starts at (the snapshot's). */
    floorIndex: number,
    historyChangesMax: number,
    historyBytesMax: number,
    /**
     * How far behind the leader a follower may be and still catch up from the leader's log
     * (snapshotEveryEntries + snapshotRetainEntries): see {@link afterIndexMax}.
     */
    private readonly catchUpEntriesMax: number,
  ) {
    this.history = new WatchHistory(floorIndex, historyChangesMax, historyBytesMax);
  }

  /**
   * Starts watch `requestId` on `prefix` after index `from`, replaying the history after it.
   * Refused at once, with a watch-end:
   *
   * - INVALID_ARGUMENT (`invalid`), when `from` is beyond any index this node can expect to
   *   reach soon (see {@link afterIndexMax}), rather than waiting silently for an index that
   *   may never come. The node's current index is its last log index, which the reply
   *   cannot carry yet (a watch-end holds only a code);
   * - COMPACTED, when `from` is below the history's floor (the changes right after it are
   *   forgotten; another node may still have them);
   * - UNAVAILABLE (`full`), when the node serves as many watches or bytes as it may.
   */
  start(requestId: number, prefix: Uint8Array, from: number): WatchStart {
    if (from > this.afterIndexMax()) {
      this.sink.reply({ kind: 'watch-end', requestId, code: ErrorCode.INVALID_ARGUMENT });
      return 'invalid';
    }
    if (from < this.history.floorIndex) {
      this.sink.reply({ kind: 'watch-end', requestId, code: ErrorCode.COMPACTED });
      return 'compacted';
    }
    if (this.watches.size >= WATCHES_MAX || this.prefixBytes + prefix.length + WATCH_OVERHEAD_BYTES > WATCH_BYTES_MAX) {
      this.sink.reply({ kind: 'watch-end', requestId, code: ErrorCode.UNAVAILABLE });
      return 'full';
    }
    this.watches.set(requestId, { prefix, afterIndex: from });
    this.prefixBytes += prefix.length + WATCH_OVERHEAD_BYTES;
    this.sink.reply({ kind: 'watch-start', requestId, index: from });
    // The sink may end the watch while it replays (a client that does not keep up).
    this.history.forEachAfter(from, (c) => {
      if (hasPrefix(c.key, prefix) && this.watches.has(requestId)) this.sendChange(requestId, c);
    });
    return 'started';
  }

  /** Ends watch `requestId` with CLOSED (an unwatch), if there is one. */
  unwatch(requestId: number): void {
    if (this.drop(requestId)) this.sink.reply({ kind: 'watch-end', requestId, code: ErrorCode.CLOSED });
  }

  /**
   * Ends every watch with `code` (for instance when the client cannot keep up), or those
   * whose request id is in [requestIdFrom, requestIdTo): the watches of one client link.
   */
  endAll(code: ErrorCode, requestIdFrom = 0, requestIdTo = Number.POSITIVE_INFINITY): void {
    for (const requestId of this.watches.keys()) {
      if (requestId < requestIdFrom || requestId >= requestIdTo) continue;
      this.drop(requestId);
      this.sink.reply({ kind: 'watch-end', requestId, code });
    }
  }

  /**
   * Keeps an applied change in the history and sends it to every watch it matches (the state
   * machine's change sink: see KvChangeSink). With no watch, nothing is made for it.
   */
  change(index: number, position: number, key: Uint8Array, valueSlab: Slab | undefined, valueAt: number, valueLength: number, createIndex: number, version: number): void {
    this.history.change(index, position, key, valueSlab, valueAt, valueLength, createIndex, version);
    if (this.watches.size === 0) return;
    let value: Uint8Array | undefined;
    for (const [requestId, w] of this.watches) {
      if (index > w.afterIndex && hasPrefix(key, w.prefix)) {
        // The event may wait in a queue: the value's bytes must stay as they are.
        value ??= valueSlab?.expose(valueAt, valueLength);
        this.sink.reply({ kind: 'watch-event', requestId, index, position, key, value, createIndex, version });
      }
    }
  }

  /**
   * A snapshot at `index` was installed: the changes it jumped over are unknown here, so no
   * watch can resume before it, and every watch ends with COMPACTED.
   */
  onSnapshotInstalled(index: number): void {
    this.history.reset(index);
    this.endAll(ErrorCode.COMPACTED);
  }

  /**
   * The highest `afterIndex` a watch may start after here. The rule:
   *
   * - A leader holds every committed entry in its log (Leader Completeness), so an index
   *   past its last log index has been committed nowhere, and no client can have seen it:
   *   the most is the last log index. (A leader deposed without knowing it yet may be
   *   behind; check-quorum makes it step down within an election timeout.)
   * - Any other node may trail the index a client saw on another node, and then a watch
   *   after it must wait for this node to catch up (a watch moved from a node that is
   *   ahead). But a node more than snapshotEveryEntries + snapshotRetainEntries behind the
   *   leader cannot catch up from the leader's log, which keeps no more than that: it will
   *   install a snapshot, which ends every watch with COMPACTED anyway. So the most is the
   *   last log index plus that many entries; a higher index is refused as one no node
   *   could be expected to serve here.
   */
  private afterIndexMax(): number {
    const last = this.raft.log.lastIndex();
    if (this.raft.role === 'leader') return last;
    return last + this.catchUpEntriesMax;
  }

  /** Forgets watch `requestId`; whether there was one. */
  private drop(requestId: number): boolean {
    const w = this.watches.get(requestId);
    if (w === undefined) return false;
    this.watches.delete(requestId);
    this.prefixBytes -= w.prefix.length + WATCH_OVERHEAD_BYTES;
    return true;
  }

  private sendChange(requestId: number, c: KvChange): void {
    this.sink.reply({ kind: 'watch-event', requestId, index: c.index, position: c.position, key: c.key, value: c.value, createIndex: c.createIndex, version: c.version });
  }
}

function hasPrefix(key: Uint8Array, prefix: Uint8Array): boolean {
  if (prefix.length > key.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}
