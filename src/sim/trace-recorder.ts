/**
 * The event recorder: what happened in a run, kept so that a failing seed can be read from its
 * report alone. It records the core's trace events of every node (votes, campaigns, role
 * changes, progress, snapshots, configuration changes; see core/trace.ts) and the simulator's
 * own events: nodes started, refused, crashed, stopped, disks wiped and bits flipped; the
 * network cut and healed; the operator's requests; every client operation's call and return;
 * the violation that ended the run. Messages delivered and dropped are not recorded: there are
 * far too many, and the core's events say what came of them.
 *
 * Memory is bounded: the last `eventsPerNodeMax` events of each node (as many for the
 * cluster-wide events, and for the clients), and the last `eventsMax` events of all, in time
 * order. A node's allowance is split: a quarter for its chatty events (a follower's progress
 * flipping between probe and replicate, snapshots sent), the rest for everything else, so that
 * a busy leader's flow control cannot push its election and its votes out of the report.
 * Recording stores the event objects and nothing else; lines are formatted only when a report
 * is printed, so a passing run pays one small object per event.
 */
import { fail } from '../base/index.ts';
import { formatTraceEvent, type ConfChange, type TraceEvent } from '../core/index.ts';
import type { HistoryOp } from './history.ts';

/** The node id of cluster-wide events (the network, the checks): no node has it. */
export const CLUSTER_WIDE = 0;
/** Events kept per node by default (and for the cluster-wide events, and for the clients). */
export const EVENTS_PER_NODE_MAX_DEFAULT = 40;
/** Events of all nodes kept by default, in time order. */
export const EVENTS_MAX_DEFAULT = 200;
/** Nodes that get a ring of their own; events of nodes beyond these go only to the ring of all. */
const NODE_RINGS_MAX = 256;
/** The events of all nodes a failure report shows, in time order, after the groups by node. */
const REPORT_RECENT_EVENTS = 10;

/** Where a node crashed: inside a Ready (mid-write, before or after its messages left), or anywhere else (undefined). */
export type CrashAt = 'mid-write' | 'before-send' | 'after-send' | undefined;

/** The simulator's own events. `node` is the node concerned, or CLUSTER_WIDE. */
export type SimOwnEvent =
  | { readonly kind: 'start'; readonly node: number; readonly incarnation: number; readonly voters: readonly number[] }
  | { readonly kind: 'start-refused'; readonly node: number; readonly code: string; readonly reason: string }
  | { readonly kind: 'stopped'; readonly node: number; readonly why: 'corrupt-log' | 'state-lost' }
  | { readonly kind: 'crash'; readonly node: number; readonly at: CrashAt }
  | { readonly kind: 'crash-armed'; readonly node: number; readonly at: 'vote' | 'commit' | 'leader' }
  | { readonly kind: 'bit-flip'; readonly node: number }
  | { readonly kind: 'disk-wiped'; readonly node: number }
  | { readonly kind: 'misconfigured-start'; readonly node: number; readonly voters: readonly number[]; readonly what: string }
  | { readonly kind: 'conf-change-requested'; readonly node: number; readonly change: ConfChange; readonly refusal: string | undefined }
  | { readonly kind: 'transfer-requested'; readonly node: number; readonly target: number; readonly refusal: string | undefined }
  | { readonly kind: 'partition'; readonly node: typeof CLUSTER_WIDE; readonly fault: 'partition' | 'isolate'; readonly groups: readonly (readonly number[])[] }
  | { readonly kind: 'cut-one-way'; readonly node: typeof CLUSTER_WIDE; readonly from: number; readonly to: readonly number[] }
  | { readonly kind: 'heal'; readonly node: typeof CLUSTER_WIDE }
  | { readonly kind: 'pause'; readonly node: number; readonly ms: number }
  | { readonly kind: 'packet-loss'; readonly node: typeof CLUSTER_WIDE; readonly probability: number; readonly duplicateProbability: number }
  | { readonly kind: 'quiet'; readonly node: typeof CLUSTER_WIDE }
  | { readonly kind: 'violation'; readonly node: typeof CLUSTER_WIDE; readonly what: string }
  /** A client operation sent to `node` (its first attempt; retries are not recorded). */
  | { readonly kind: 'call'; readonly node: number; readonly op: HistoryOp }
  /** The operation's answer, from `node`; its output is in `op`. */
  | { readonly kind: 'return'; readonly node: number; readonly op: HistoryOp }
  /** The client gave up; `kept`: the operation stays in the history with its outcome unknown (else it certainly had no effect). */
  | { readonly kind: 'gave-up'; readonly node: number; readonly op: HistoryOp; readonly kept: boolean };

export type SimTraceEvent = TraceEvent | SimOwnEvent;

/** One recorded event, the simulated time it happened at, and its number in the run (from 1: events of one time keep their order). */
export interface TraceRecord {
  readonly timeMs: number;
  readonly seq: number;
  readonly event: SimTraceEvent;
}

export interface TraceOptions {
  /** Events kept for each node (and for the cluster-wide events, and for the clients). Default EVENTS_PER_NODE_MAX_DEFAULT. */
  readonly eventsPerNodeMax?: number;
  /** Events of all nodes kept, in time order. Default EVENTS_MAX_DEFAULT. */
  readonly eventsMax?: number;
  /** Receives every event as it is recorded (`ringraft sim --trace` prints them). */
  readonly onEvent?: (record: TraceRecord) => void;
}

/**
 * The last `capacity` items pushed, oldest first. Once full, a push overwrites the oldest.
 *
 *   capacity 5, 7 pushed (1..7):   items [ 6 | 7 | 3 | 4 | 5 ]
 *                                                  ^ head = 2: the oldest, overwritten next
 *
 * Invariant: 0 <= count <= capacity; 0 <= head < max(1, count); in order, oldest first, the
 * items are items[(head + i) % count] for i in [0, count). The array grows to `capacity`
 * and no further; `head` stays 0 until it is full.
 */
export class EventRing<T> {
  private readonly items: T[] = [];
  private head = 0;

  constructor(readonly capacity: number) {
    if (!(Number.isSafeInteger(capacity))) fail(`ring capacity ${capacity}`);
    if (!(capacity >= 1)) fail(`ring capacity ${capacity}`);
  }

  get count(): number {
    return this.items.length;
  }

  push(item: T): void {
    if (this.items.length < this.capacity) {
      this.items.push(item);
      return;
    }
    this.items[this.head] = item;
    this.head = (this.head + 1) % this.capacity;
  }

  /** The items, oldest first. */
  toArray(): T[] {
    return [...this.items.slice(this.head), ...this.items.slice(0, this.head)];
  }
}

function isClientEvent(e: SimTraceEvent): boolean {
  return e.kind === 'call' || e.kind === 'return' || e.kind === 'gave-up';
}

/** Events a node may have many of in a row, which must not push its others out. */
function isChattyEvent(e: SimTraceEvent): boolean {
  return e.kind === 'progress' || e.kind === 'snapshot-sent' || e.kind === 'snapshot-resent';
}

/** A node's last events: its chatty ones apart, when its allowance is large enough to split. */
interface NodeRings {
  readonly other: EventRing<TraceRecord>;
  readonly chatty: EventRing<TraceRecord> | undefined;
}

export class TraceRecorder {
  readonly eventsPerNodeMax: number;
  /** A node's allowance for chatty events: a quarter (0: they share the one ring). */
  private readonly chattyEventsPerNodeMax: number;
  /** The rings of each node id, CLUSTER_WIDE included. */
  private readonly nodeRings = new Map<number, NodeRings>();
  private readonly clientRing: EventRing<TraceRecord>;
  private readonly allRing: EventRing<TraceRecord>;
  private readonly onEvent: ((record: TraceRecord) => void) | undefined;
  private seqLast = 0;

  /** `clock` tells the simulated time now, in ms. */
  constructor(
    private readonly clock: { readonly time: number },
    options: TraceOptions = {},
  ) {
    this.eventsPerNodeMax = options.eventsPerNodeMax ?? EVENTS_PER_NODE_MAX_DEFAULT;
    this.chattyEventsPerNodeMax = Math.floor(this.eventsPerNodeMax / 4);
    this.clientRing = new EventRing(this.eventsPerNodeMax);
    this.allRing = new EventRing(options.eventsMax ?? EVENTS_MAX_DEFAULT);
    this.onEvent = options.onEvent;
  }

  /** Records `event`, at the simulated time now. Also the core's trace sink (`RaftConfig.trace`). */
  readonly add = (event: SimTraceEvent): void => {
    const record: TraceRecord = { timeMs: this.clock.time, seq: ++this.seqLast, event };
    this.allRing.push(record);
    this.ringOf(event)?.push(record);
    this.onEvent?.(record);
  };

  private ringOf(event: SimTraceEvent): EventRing<TraceRecord> | undefined {
    if (isClientEvent(event)) return this.clientRing;
    let rings = this.nodeRings.get(event.node);
    if (rings === undefined) {
      if (this.nodeRings.size >= NODE_RINGS_MAX) return undefined;
      const chattyMax = this.chattyEventsPerNodeMax;
      rings = {
        other: new EventRing(this.eventsPerNodeMax - chattyMax),
        chatty: chattyMax === 0 ? undefined : new EventRing(chattyMax),
      };
      this.nodeRings.set(event.node, rings);
    }
    return (isChattyEvent(event) ? rings.chatty : undefined) ?? rings.other;
  }

  /** The node ids with events of their own (CLUSTER_WIDE too, if any), in ascending order. */
  nodeIds(): number[] {
    return [...this.nodeRings.keys()].sort((a, b) => a - b);
  }

  /** The last events of node `id` (or the cluster-wide ones, for CLUSTER_WIDE), oldest first: at most `eventsPerNodeMax`. */
  eventsOf(id: number): TraceRecord[] {
    const rings = this.nodeRings.get(id);
    if (rings === undefined) return [];
    const other = rings.other.toArray();
    if (rings.chatty === undefined) return other;
    return [...other, ...rings.chatty.toArray()].sort((a, b) => a.seq - b.seq);
  }

  /** The last events of the clients' operations, oldest first. */
  clientEvents(): TraceRecord[] {
    return this.clientRing.toArray();
  }

  /** The last events of all, in time order. */
  recentEvents(): TraceRecord[] {
    return this.allRing.toArray();
  }

  /**
   * The failure report's lines: the last events of each node, the cluster-wide ones, the
   * clients', then the last events of all in time order; one event a line, indented.
   */
  formatReport(): string[] {
    const lines = [`last events before the violation, by node (at most ${this.eventsPerNodeMax} each; "n2 t5": node 2 in term 5):`];
    const group = (title: string, records: readonly TraceRecord[]): void => {
      if (records.length === 0) return;
      lines.push(`  ${title}:`);
      for (const r of records) lines.push(`    ${formatTraceRecord(r)}`);
    };
    for (const id of this.nodeIds()) if (id !== CLUSTER_WIDE) group(`node ${id}`, this.eventsOf(id));
    group('the network and the checks', this.eventsOf(CLUSTER_WIDE));
    group('the clients', this.clientEvents());
    group(`the last ${REPORT_RECENT_EVENTS} events of all, in time order`, this.recentEvents().slice(-REPORT_RECENT_EVENTS));
    return lines;
  }
}

/** One line for a recorded event: `[  1234 ms] n2 t5 becomes leader (won)`. */
export function formatTraceRecord(r: TraceRecord): string {
  return `[${String(r.timeMs).padStart(6)} ms] ${formatSimTraceEvent(r.event)}`;
}

export function formatSimTraceEvent(e: SimTraceEvent): string {
  // The core's events carry the node's term; the simulator's own do not.
  if ('term' in e) return `n${formatTraceEvent(e)}`;
  const n = `n${e.node}`;
  switch (e.kind) {
    case 'start':
      if (e.incarnation === 1) return `${n} starts${e.voters.length > 0 ? ` with bootstrap voters [${e.voters.join(',')}]` : ''}`;
      // A restarted original member is given the first configuration, which it uses only if its log is empty.
      return `${n} restarts${e.voters.length > 0 ? ` (bootstrap voters [${e.voters.join(',')}] if its log is empty)` : ''}`;
    case 'start-refused':
      return `${n} refused at start (${e.code}): ${e.reason}`;
    case 'stopped':
      return `${n} stays down for good (${e.why === 'corrupt-log' ? 'its log is corrupt' : 'its disk was wiped: STATE_LOST'})`;
    case 'crash':
      return `${n} crashes${e.at === undefined ? '' : e.at === 'mid-write' ? ' mid-write' : e.at === 'before-send' ? ' after persisting a Ready, before sending it' : ' after sending a Ready'}`;
    case 'crash-armed':
      return `${n} will crash after its next ${e.at === 'vote' ? 'vote or new term' : e.at === 'commit' ? 'commit advance' : 'won election'}`;
    case 'bit-flip':
      return `${n} crash flipped a bit of its log`;
    case 'disk-wiped':
      return `${n} crash wiped its disk`;
    case 'misconfigured-start':
      return `${n} started by the operator with bootstrap voters [${e.voters.join(',')}] (${e.what})`;
    case 'conf-change-requested':
      return `${n} asked to change membership: ${formatConfChange(e.change)}${e.refusal === undefined ? '' : ` (refused: ${e.refusal})`}`;
    case 'transfer-requested':
      return `${n} asked to transfer leadership to ${e.target}${e.refusal === undefined ? '' : ` (refused: ${e.refusal})`}`;
    case 'partition':
      return `network ${e.fault === 'isolate' ? 'isolates' : 'partitions'} ${e.groups.map((g) => `[${g.join(',')}]`).join(' | ')}`;
    case 'cut-one-way':
      return `network cuts ${e.from} -> [${e.to.join(',')}] one way`;
    case 'heal':
      return 'network heals';
    case 'pause':
      return `${n} paused for ${e.ms} ms`;
    case 'packet-loss':
      return `network loses ${percent(e.probability)} of messages, duplicates ${percent(e.duplicateProbability)}`;
    case 'quiet':
      return 'quiet period: faults stop, the network heals, crashed nodes restart';
    case 'violation':
      return `VIOLATION ${e.what}`;
    case 'call':
      return `c${e.op.client} ${formatOp(e.op)} sent to ${n}`;
    case 'return':
      return `c${e.op.client} ${formatOp(e.op)} returns ${formatOutput(e.op)} (from ${n})`;
    case 'gave-up':
      return `c${e.op.client} ${formatOp(e.op)} given up on (${e.kept ? 'outcome unknown' : 'it had no effect'}; last sent to ${n})`;
  }
}

function percent(p: number): string {
  return `${Math.round(p * 1000) / 10}%`;
}

function formatConfChange(c: ConfChange): string {
  if (c.changes.length === 0) return 'leave the joint configuration';
  return c.changes.map((x) => `${x.op} ${x.nodeId}`).join(', ');
}

function formatValue(v: string | null): string {
  return v === null ? 'absent' : JSON.stringify(v);
}

function formatOp(op: HistoryOp): string {
  switch (op.op) {
    case 'get':
      return `get ${op.key}`;
    case 'put':
      return `put ${op.key} = ${formatValue(op.value)}`;
    case 'delete':
      return `delete ${op.key}`;
    case 'cas':
      return `cas ${op.key} ${formatValue(op.expected)} -> ${formatValue(op.value)}`;
    case 'clear':
      return `clear ${op.key} (delete-range)`;
  }
}

function formatOutput(op: HistoryOp): string {
  switch (op.op) {
    case 'get':
      return formatValue(op.output as string | null);
    case 'put':
      return 'ok';
    case 'delete':
      return op.output === true ? 'existed' : 'was absent';
    case 'cas':
      return op.output === true ? 'swapped' : 'not swapped';
    case 'clear':
      return 'ok';
  }
}
