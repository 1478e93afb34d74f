/**
 * ReadyDriver: RaftNodes over MemoryStorage, joined by an in-memory mailbox, and the one Ready
 * loop that drives them in memory. The core's tests (test/core/helpers/network.ts), the
 * protocol scenarios (test/core/scenarios.test.ts) and the core micro-benchmark
 * (bench/micro/core-cluster.ts) all run on it, so all three process a Ready the same way.
 *
 * Nothing happens by itself: a node ticks when told to, a message moves when delivered, and a
 * Ready is processed when asked for. A run is therefore a function of the calls made and of
 * the node seeds, and a script of calls reproduces it exactly.
 *
 * Each Ready is processed as the contract on the core's `Ready` type says:
 *
 * 1. persist: the snapshot, then the entries, then the hard state, into the node's storage;
 * 2. send: every message into the mailbox (or to the caller's sink);
 * 3. apply: the snapshot, then the committed entries in order, then the reads whose index is
 *    applied (reads wait here until it is);
 * 4. advance.
 *
 * The driver never sends before persisting, even when `messagesBeforePersist` allows it: that
 * is always allowed, and it keeps one order for every run.
 *
 * Fault model: a message is lost only at delivery, when its link is cut (`cut`, `isolate`,
 * `partition`), when a drop filter selects it (`drop`), or when the caller drops it; nothing is
 * reordered, duplicated or corrupted unless the caller does it to the mailbox. `recover` heals
 * every cut and removes every filter. `restart` models a crash: a new RaftNode over the same
 * storage, with everything volatile lost.
 *
 * Checks as it goes (unless `checkSafety` is off): Election Safety (no two leaders of one term)
 * after every Ready, and State Machine Safety (every node applies the same term at each index)
 * for every entry applied. The second keeps one number per index ever applied: long runs (the
 * benchmark) turn it off.
 */
import { ErrorCode, RingraftError, fail } from '../base/index.ts';
import {
  EMPTY_DATA,
  EntryType,
  RaftNode,
  decodeConfChange,
  nextConf,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type RaftConfig,
  type ReadMode,
  type ReadState,
  type Ready,
  type Snapshot,
} from '../core/index.ts';
import { MemoryStorage } from '../storage/index.ts';

/** A node's Raft options; `voters` and `learners` matter only on empty storage (bootstrap). */
export type DriverNodeOptions = Partial<Omit<RaftConfig, 'id' | 'storage' | 'seed'>>;

export interface ReadyDriverOptions {
  /** Options every node gets, including nodes added later; a node's own options go over them. */
  readonly node?: DriverNodeOptions;
  /** The seed of node `id`'s generator. Default: the id. */
  readonly seedOf?: (id: NodeId) => number;
  /**
   * Whether to keep every applied entry, read handed out, message sent and message delivered
   * (`DriverNode.applied`, `DriverNode.readStates`, `sent`, `delivered`). Default true; long
   * runs turn it off, since each list grows without bound.
   */
  readonly record?: boolean;
  /** Check Election Safety and State Machine Safety as the run goes. Default true. */
  readonly checkSafety?: boolean;
  /** Called for each committed entry a node applies, in order. */
  readonly onApply?: (id: NodeId, entry: Entry) => void;
}

/** One node and what its host has done with it. */
export interface DriverNode {
  readonly id: NodeId;
  raft: RaftNode;
  /** The node's "disk": what survives `restart`. */
  readonly storage: MemoryStorage;
  readonly options: DriverNodeOptions;
  /** Entries applied since the node (re)started, in order (only when recording). */
  applied: Entry[];
  /** The index the state machine has reached (a snapshot counts). */
  appliedIndex: number;
  /** Every ReadState handed out since the node (re)started (only when recording). */
  readStates: ReadState[];
  /** ReadStates handed out whose index is not applied yet; served, in order, once it is. */
  readsWaiting: ReadState[];
  /** Snapshots the host installed from the leader. */
  snapshotsInstalled: number;
  /**
   * The configuration in force after each applied index where it changed, oldest first, so that
   * a snapshot taken at an index records the configuration of that index and not a later one.
   * Invariant: confs[0].index <= appliedIndex; it holds one more item than the conf changes
   * applied since the last snapshot or compaction.
   */
  confs: { readonly index: number; readonly conf: ConfState }[];
}

/** Why a message did not reach its recipient. */
export type DropReason = 'cut' | 'filter' | 'requested' | 'no-node';

/** What the driver reports to its observer, as it happens. */
export type DriverEvent =
  /** A Ready was taken from node `id`; persisting, sending, applying and advance follow. */
  | { readonly type: 'ready'; readonly id: NodeId; readonly ready: Ready }
  /** `message` is about to be stepped by its recipient. */
  | { readonly type: 'deliver'; readonly message: Message }
  /** `message` was taken from the mailbox and lost. */
  | { readonly type: 'drop'; readonly message: Message; readonly reason: DropReason }
  /** Node `id` applied the index of `read`: the read may be answered now. */
  | { readonly type: 'read'; readonly id: NodeId; readonly read: ReadState };

/** Decides whether to drop a message at delivery time. */
export type DropFilter = (m: Message) => boolean;

/** Where the messages of a Ready go. */
export type MessageSink = (m: Message) => void;

/** Readys one node may hand out in one `settle` before the driver calls it a livelock. */
const SETTLE_READYS_MAX = 10_000;
/** Rounds of `stabilize` before the driver calls it a livelock. */
const STABILIZE_ROUNDS_MAX = 10_000;

export class ReadyDriver {
  readonly nodes = new Map<NodeId, DriverNode>();
  /** Messages sent and not yet delivered or dropped, oldest first. Callers may rearrange it. */
  mailbox: Message[] = [];
  /** Every message sent into the mailbox, in sending order (only when recording). */
  readonly sent: Message[] = [];
  /** Every message that reached its recipient's step(), in delivery order (only when recording). */
  readonly delivered: Message[] = [];
  /** Told of every Ready, delivery, drop and answerable read; for scripts that print a run. */
  observer: ((event: DriverEvent) => void) | undefined = undefined;

  private readonly baseOptions: DriverNodeOptions;
  private readonly seedOf: (id: NodeId) => number;
  private readonly record: boolean;
  private readonly checkSafety: boolean;
  private readonly onApply: ((id: NodeId, entry: Entry) => void) | undefined;
  /** Directed links that are cut, as "from>to". */
  private readonly cuts = new Set<string>();
  private drops: DropFilter[] = [];
  /** Election Safety: the leader seen in each term. */
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** State Machine Safety: the term of the entry anyone applied at each index. */
  private readonly appliedTerms = new Map<number, number>();
  /** The default sink: into the mailbox. */
  private readonly post: MessageSink = (m) => {
    if (this.record) this.sent.push(m);
    this.mailbox.push(m);
  };

  constructor(options: ReadyDriverOptions = {}) {
    this.baseOptions = options.node ?? {};
    this.seedOf = options.seedOf ?? ((id) => id);
    this.record = options.record ?? true;
    this.checkSafety = options.checkSafety ?? true;
    this.onApply = options.onApply;
  }

  // ─── Nodes ─────────────────────────────────────────────────────────────────────

  /**
   * Starts node `id` on empty storage with the driver's options and `options` over them. With
   * `voters` it bootstraps a new cluster; without, it waits to learn its configuration from a
   * leader. Its first Ready is left for the caller to process.
   */
  addNode(id: NodeId, options: DriverNodeOptions = {}): DriverNode {
    if (this.nodes.has(id)) fail(`node ${id} exists already`);
    const storage = new MemoryStorage();
    const merged = { ...this.baseOptions, ...options };
    const node: DriverNode = {
      id,
      raft: this.makeRaft(id, storage, merged),
      storage,
      options: merged,
      applied: [],
      appliedIndex: 0,
      readStates: [],
      readsWaiting: [],
      snapshotsInstalled: 0,
      confs: [{ index: 0, conf: storage.snapshot().meta.conf }],
    };
    this.nodes.set(id, node);
    return node;
  }

  private makeRaft(id: NodeId, storage: MemoryStorage, options: DriverNodeOptions): RaftNode {
    return new RaftNode({ ...options, seed: this.seedOf(id), id, storage });
  }

  node(id: NodeId): DriverNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new RingraftError(ErrorCode.INVALID_ARGUMENT, `no node ${id}`);
    return n;
  }

  raft(id: NodeId): RaftNode {
    return this.node(id).raft;
  }

  /**
   * A crash and restart: a new RaftNode over the same storage, `options` over the node's own.
   * Volatile state is lost (the state machine restarts from the stored snapshot); messages in
   * the mailbox stay there. Its first Ready is left for the caller to process.
   */
  restart(id: NodeId, options: DriverNodeOptions = {}): RaftNode {
    const node = this.node(id);
    node.raft = this.makeRaft(id, node.storage, { ...node.options, ...options });
    const snap = node.storage.snapshot();
    node.applied = [];
    node.appliedIndex = snap.meta.index;
    node.readStates = [];
    node.readsWaiting = [];
    node.confs = [{ index: snap.meta.index, conf: snap.meta.conf }];
    return node.raft;
  }

  /** The node leading the highest term among leaders, if any. */
  leader(): NodeId | undefined {
    let best: RaftNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.raft.role === 'leader' && (best === undefined || n.raft.term > best.term)) best = n.raft;
    }
    return best?.id;
  }

  /** The nodes that are leaders right now (stale ones of older terms included). */
  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.raft.role === 'leader').map((n) => n.id);
  }

  // ─── The Ready loop ────────────────────────────────────────────────────────────

  /**
   * Processes one Ready of node `id`, if it has one, in the order the contract requires;
   * messages go to `sink` (default: the mailbox). Returns the Ready, or undefined if none.
   */
  processReady(id: NodeId, sink: MessageSink = this.post): Ready | undefined {
    const node = this.node(id);
    const raft = node.raft;
    if (!raft.hasReady()) return undefined;
    const rd = raft.ready();
    this.observer?.({ type: 'ready', id, ready: rd });
    // 1. Persist.
    if (rd.snapshot !== undefined) node.storage.applySnapshot(rd.snapshot);
    node.storage.append(rd.entries);
    if (rd.hardState !== undefined) node.storage.setHardState(rd.hardState);
    // 2. Send.
    for (const m of rd.messages) sink(m);
    // 3. Apply.
    if (rd.snapshot !== undefined) this.installSnapshot(node, rd.snapshot);
    for (const e of rd.committedEntries) this.apply(node, e);
    this.serveReads(node, rd.readStates);
    // 4. Advance.
    raft.advance(rd);
    if (this.checkSafety) this.checkElectionSafety(raft);
    return rd;
  }

  /** Processes node `id`'s Readys until it has none. Returns how many there were. */
  settle(id: NodeId, sink: MessageSink = this.post): number {
    let count = 0;
    while (this.processReady(id, sink) !== undefined) {
      count++;
      if (count > SETTLE_READYS_MAX) fail(`node ${id}: still a Ready after ${SETTLE_READYS_MAX}`);
    }
    return count;
  }

  private installSnapshot(node: DriverNode, snap: Snapshot): void {
    node.appliedIndex = snap.meta.index;
    node.snapshotsInstalled++;
    node.confs = [{ index: snap.meta.index, conf: snap.meta.conf }];
  }

  private apply(node: DriverNode, e: Entry): void {
    if (e.index !== node.appliedIndex + 1) fail(`node ${node.id} applied ${e.index} after ${node.appliedIndex}`);
    if (this.checkSafety) {
      const seen = this.appliedTerms.get(e.index);
      if (seen !== undefined && seen !== e.term) {
        fail(`State Machine Safety: node ${node.id} applied term ${e.term} at ${e.index}, another node term ${seen}`);
      }
      this.appliedTerms.set(e.index, e.term);
    }
    if (this.record) node.applied.push(e);
    node.appliedIndex = e.index;
    if (e.type === EntryType.ConfChange) this.applyConfChange(node, e);
    this.onApply?.(node.id, e);
  }

  /** Follows the core's configuration: an entry that no longer applies is skipped, as it skips it. */
  private applyConfChange(node: DriverNode, e: Entry): void {
    const current = node.confs[node.confs.length - 1]!.conf;
    let next: ConfState;
    try {
      next = nextConf(current, decodeConfChange(e.data));
    } catch (error) {
      if (error instanceof RingraftError) return;
      throw error;
    }
    node.confs.push({ index: e.index, conf: next });
  }

  private serveReads(node: DriverNode, handedOut: readonly ReadState[]): void {
    for (const rs of handedOut) {
      if (this.record) node.readStates.push(rs);
      node.readsWaiting.push(rs);
    }
    let served = 0;
    while (served < node.readsWaiting.length && node.readsWaiting[served]!.index <= node.appliedIndex) {
      this.observer?.({ type: 'read', id: node.id, read: node.readsWaiting[served]! });
      served++;
    }
    if (served > 0) node.readsWaiting.splice(0, served);
  }

  private checkElectionSafety(raft: RaftNode): void {
    if (raft.role !== 'leader') return;
    const seen = this.leaderOfTerm.get(raft.term);
    if (seen !== undefined && seen !== raft.id) fail(`Election Safety: nodes ${seen} and ${raft.id} both lead term ${raft.term}`);
    this.leaderOfTerm.set(raft.term, raft.id);
  }

  // ─── Time ──────────────────────────────────────────────────────────────────────

  /** Ticks node `id` `count` times; its Readys wait for the caller. */
  tick(id: NodeId, count = 1): void {
    const raft = this.raft(id);
    for (let i = 0; i < count; i++) raft.tick();
  }

  /**
   * Ticks node `id` until its election timer fires and it campaigns, as it would after hearing
   * from no leader for its randomized timeout (the core has no "campaign now" call: only time
   * starts an election). Returns the ticks it took.
   */
  campaign(id: NodeId): number {
    const raft = this.raft(id);
    if (raft.role === 'leader') throw new RingraftError(ErrorCode.INVALID_ARGUMENT, `node ${id} leads already`);
    if (!raft.promotable()) throw new RingraftError(ErrorCode.INVALID_ARGUMENT, `node ${id} is not a voter`);
    const ticks = raft.ticksUntilDue();
    this.tick(id, ticks);
    return ticks;
  }

  // ─── Delivery ──────────────────────────────────────────────────────────────────

  /**
   * Takes `m` out of the way to its recipient: steps it there, unless its link is cut, a drop
   * filter selects it, or there is no such node. Returns whether it was delivered. The
   * recipient's Readys wait for the caller.
   */
  deliverOne(m: Message): boolean {
    const node = this.nodes.get(m.to);
    const reason: DropReason | undefined =
      node === undefined ? 'no-node' : this.cuts.has(`${m.from}>${m.to}`) ? 'cut' : this.drops.some((f) => f(m)) ? 'filter' : undefined;
    if (reason !== undefined) {
      this.observer?.({ type: 'drop', message: m, reason });
      return false;
    }
    this.observer?.({ type: 'deliver', message: m });
    if (this.record) this.delivered.push(m);
    node!.raft.step(m);
    return true;
  }

  /**
   * Takes the mailbox's messages that `which` selects (default: all), in order, and delivers
   * each, or drops it if `drop` selects it. Messages sent meanwhile wait for the next call.
   * Returns how many messages were taken.
   */
  deliver(which?: (m: Message) => boolean, drop?: (m: Message) => boolean): number {
    const taken = which === undefined ? this.mailbox : this.mailbox.filter(which);
    if (taken.length === 0) return 0;
    this.mailbox = which === undefined ? [] : this.mailbox.filter((m) => !which(m));
    for (const m of taken) {
      if (drop?.(m) === true) this.observer?.({ type: 'drop', message: m, reason: 'requested' });
      else this.deliverOne(m);
    }
    return taken.length;
  }

  /**
   * Until nothing changes: each node of `ids` (default: all) processes one Ready, then each
   * receives the messages waiting for it. Messages to nodes outside `ids` stay in the mailbox.
   * Returns the rounds that did something.
   */
  stabilize(ids: readonly NodeId[] = [...this.nodes.keys()]): number {
    for (let round = 0; ; round++) {
      if (round >= STABILIZE_ROUNDS_MAX) fail(`still busy after ${STABILIZE_ROUNDS_MAX} rounds of stabilize`);
      let busy = false;
      for (const id of ids) if (this.processReady(id) !== undefined) busy = true;
      for (const id of ids) if (this.deliver((m) => m.to === id) > 0) busy = true;
      if (!busy) return round;
    }
  }

  // ─── Faults ────────────────────────────────────────────────────────────────────

  /** Cuts the link from `from` to `to` (one way). */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.cuts.add(`${from}>${to}`);
  }

  /** Cuts the links between `a` and `b`, both ways. */
  cut(a: NodeId, b: NodeId): void {
    this.cutOneWay(a, b);
    this.cutOneWay(b, a);
  }

  /** Cuts every link of `id`, to the nodes there are now. */
  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cut(id, other);
  }

  /** Cuts every link between nodes of different groups; links within a group stay. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    for (let i = 0; i < groups.length; i++) {
      for (let j = i + 1; j < groups.length; j++) {
        for (const a of groups[i]!) for (const b of groups[j]!) this.cut(a, b);
      }
    }
  }

  /** Drops every message `filter` selects until recover(). */
  drop(filter: DropFilter): void {
    this.drops.push(filter);
  }

  /** Heals every cut and removes every drop filter. */
  recover(): void {
    this.cuts.clear();
    this.drops = [];
  }

  // ─── Requests ──────────────────────────────────────────────────────────────────

  /** Proposes `data` on node `id` (its leader-only errors pass through); returns the index. */
  propose(id: NodeId, data: Uint8Array): number {
    return this.raft(id).propose(data);
  }

  /** Asks node `id` for a read; the answer is a ReadState in a later Ready, served once applied. */
  readIndex(id: NodeId, requestId: number, mode: ReadMode = 'safe'): void {
    this.raft(id).readIndex(requestId, mode);
  }

  /** Asks leader `from` to hand leadership to `to`. */
  transferLeadership(from: NodeId, to: NodeId): void {
    this.raft(from).transferLeadership(to);
  }

  /** Proposes a membership change on node `id`; returns its index. */
  proposeConfChange(id: NodeId, cc: ConfChange): number {
    return this.raft(id).proposeConfChange(cc);
  }

  /**
   * Takes a snapshot of node `id`'s state machine at `index` (applied already), holding `data`
   * and the configuration of that index, and discards the log up to it but the last
   * `retainEntries`. A follower that needs a discarded entry then gets the snapshot.
   */
  compact(id: NodeId, index: number, data: Uint8Array = EMPTY_DATA, retainEntries = 0): Snapshot {
    const node = this.node(id);
    if (!(index <= node.appliedIndex)) {
      throw new RingraftError(ErrorCode.INVALID_ARGUMENT, `node ${id} has applied ${node.appliedIndex}, not ${index}`);
    }
    let at = 0;
    while (at + 1 < node.confs.length && node.confs[at + 1]!.index <= index) at++;
    const snap = node.storage.createSnapshot(index, node.confs[at]!.conf, data, retainEntries);
    // Configurations older than the one in force at the snapshot are not needed again.
    node.confs.splice(0, at);
    return snap;
  }
}
