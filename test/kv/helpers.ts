// What the slab tests share: a watch set fit to run without a node, a sink that keeps every
// watch event as it came, and reads of the history and the store that expose no slab.
import type { RaftNode } from '../../src/core/index.ts';
import type { KvStateMachine, Slab } from '../../src/kv/index.ts';
import type { ClientReply, HostSink, WatchHistory } from '../../src/runtime/index.ts';
import { WatchSet } from '../../src/runtime/watch-set.ts';

/** A view handed out, its bytes when handed out, and who got it. */
export interface HeldView {
  readonly view: Uint8Array;
  readonly bytes: Uint8Array;
  readonly what: string;
}

/** A watch set's sink that keeps every event as it came (its value a view, not a copy), as a queue in front of a full ring would. */
export class KeepingSink implements HostSink {
  constructor(private readonly views: HeldView[]) {}
  sendRaft(): void {}
  reply(r: ClientReply): void {
    if (r.kind === 'watch-event' && r.value !== undefined) this.views.push({ view: r.value, bytes: r.value.slice(), what: `watch event ${r.index}/${r.position}` });
  }
}

/** A watch set whose sink keeps its events in `views`, with no node behind it (its Raft node is asked only for its last index). */
export function watchSetKeeping(views: HeldView[], historyChangesMax: number, historyBytesMax: number): WatchSet {
  const raft = { role: 'leader', log: { lastIndex: () => Number.MAX_SAFE_INTEGER } } as unknown as RaftNode;
  return new WatchSet(raft, new KeepingSink(views), 0, historyChangesMax, historyBytesMax, 1_000_000);
}

/** The changes a watch set's history holds, read from its slots without exposing their slabs (as forEachAfter would). */
export function heldChanges(watches: WatchSet): { index: number; position: number; slab: Slab | undefined; value: Uint8Array | undefined }[] {
  const history = (watches as unknown as { history: WatchHistory }).history;
  const h = history as unknown as { keys: unknown[]; valueSlabs: (Slab | undefined)[]; numbers: Float64Array; head: number; size: number };
  const out = [];
  for (let k = 0; k < h.size; k++) {
    const p = (h.head + k) % h.keys.length;
    // A slot's numbers: index, position, createIndex, version, valueAt, valueLength, bytes.
    const at = p * 7;
    const slab = h.valueSlabs[p];
    out.push({ index: h.numbers[at]!, position: h.numbers[at + 1]!, slab, value: slab?.bytes.subarray(h.numbers[at + 4]!, h.numbers[at + 4]! + h.numbers[at + 5]!) });
  }
  return out;
}

/** The value the store holds for `key`, read without exposing its slab (getShared would); undefined if absent. */
export function storedValue(machine: KvStateMachine, key: Uint8Array): Uint8Array | undefined {
  return (machine.getEntry(key) as unknown as { valueToCopy(): Uint8Array } | undefined)?.valueToCopy();
}
