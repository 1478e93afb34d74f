// A small deterministic in-memory network of RaftNodes for scenario tests, after etcd's
// test network: each node has its own MemoryStorage; Readys are processed in the documented
// order (persist snapshot, entries and hard state; send; apply; advance); messages wait in
// one FIFO queue until delivered; links can be cut and messages dropped by filters. It also
// checks as it goes that no two nodes lead the same term (Election Safety) and that every
// node applies the same entry at each index (State Machine Safety).
import { EntryType, RaftNode, decodeConfChange } from '../../../src/core/index.ts';
import type { Entry, Message, NodeId, RaftConfig, ReadState } from '../../../src/core/index.ts';
import { MemoryStorage } from '../../../src/storage/index.ts';

/** Per-node options; `voters`/`learners` only matter to a node with empty storage (bootstrap). */
export type NodeOptions = Partial<Omit<RaftConfig, 'id' | 'storage' | 'seed'>>;

export interface NetworkOptions extends NodeOptions {
  readonly learners?: readonly NodeId[];
  /** Node i's generator is seeded with i * 7919 + seedBase (default 17): vary it to vary a run. */
  readonly seedBase?: number;
}

export interface NetNode {
  readonly id: NodeId;
  raft: RaftNode;
  readonly storage: MemoryStorage;
  readonly options: NodeOptions;
  /** Entries applied since the node (re)started, in order. */
  applied: Entry[];
  /** The index the state machine has reached (a snapshot counts). */
  appliedIndex: number;
  /** Every ReadState handed out since the node (re)started. */
  readStates: ReadState[];
  /** Snapshots the host installed. */
  snapshotsInstalled: number;
}

/** Decides whether to drop a message at delivery time. */
export type DropFilter = (m: Message) => boolean;

const ROUNDS_MAX = 10_000;

export class Network {
  readonly nodes = new Map<NodeId, NetNode>();
  /** Messages sent and not yet delivered, oldest first. */
  queue: Message[] = [];
  /** Every message that reached its recipient's step(), in delivery order. */
  readonly delivered: Message[] = [];
  /** Every message a node sent (dropped or not), in sending order. */
  readonly sent: Message[] = [];
  private readonly cuts = new Set<string>();
  private drops: DropFilter[] = [];
  /** Election Safety: the leader seen in each term. */
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** State Machine Safety: the entry (term) applied at each index by anyone. */
  private readonly appliedTerms = new Map<number, number>();
  private readonly seedBase: number;
  /** Options every node gets, including nodes added later. */
  private readonly baseOptions: NodeOptions;

  /**
   * Nodes `voters` (and `learners`) bootstrapped as one cluster. Defaults: electionTimeoutTicks 10,
   * heartbeatIntervalTicks 1, preVote on, checkQuorum off (so a node campaigns by ticking alone; tests
   * of leases and check-quorum turn it on), seed derived from the id.
   */
  constructor(voters: readonly NodeId[], options: NetworkOptions = {}) {
    const { learners = [], seedBase = 17, ...nodeOptions } = options;
    this.seedBase = seedBase;
    this.baseOptions = nodeOptions;
    for (const id of [...voters, ...learners]) {
      this.addNode(id, { voters, learners });
    }
  }

  /**
   * Starts a node on empty storage, with the network's options and `options` over them.
   * Without `voters` it joins an existing cluster.
   */
  addNode(id: NodeId, options: NodeOptions = {}): NetNode {
    const storage = new MemoryStorage();
    const merged = { ...this.baseOptions, ...options };
    const node: NetNode = {
      id,
      raft: this.makeRaft(id, storage, merged),
      storage,
      options: merged,
      applied: [],
      appliedIndex: 0,
      readStates: [],
      snapshotsInstalled: 0,
    };
    this.nodes.set(id, node);
    this.process(id);
    return node;
  }

  private makeRaft(id: NodeId, storage: MemoryStorage, options: NodeOptions): RaftNode {
    return new RaftNode({
      electionTimeoutTicks: 10,
      heartbeatIntervalTicks: 1,
      preVote: true,
      checkQuorum: false,
      ...options,
      seed: id * 7919 + this.seedBase,
      id,
      storage,
    });
  }

  node(id: NodeId): NetNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  raft(id: NodeId): RaftNode {
    return this.node(id).raft;
  }

  /** Simulates a crash and restart: a new RaftNode over the same storage; volatile state is lost. */
  restart(id: NodeId, options: NodeOptions = {}): RaftNode {
    const node = this.node(id);
    node.raft = this.makeRaft(id, node.storage, { ...node.options, ...options });
    node.applied = [];
    node.appliedIndex = node.storage.snapshot().meta.index;
    node.readStates = [];
    this.process(id);
    return node.raft;
  }

  // ─── The host loop ─────────────────────────────────────────────────────────────

  /** Handles every Ready node `id` has, in the order the Ready contract requires. */
  process(id: NodeId): void {
    const node = this.node(id);
    const raft = node.raft;
    for (let rounds = 0; raft.hasReady(); rounds++) {
      if (rounds > ROUNDS_MAX) throw new Error(`node ${id}: Ready loop does not settle`);
      const rd = raft.ready();
      // 1. Persist.
      if (rd.snapshot !== undefined) node.storage.applySnapshot(rd.snapshot);
      node.storage.append(rd.entries);
      if (rd.hardState !== undefined) node.storage.setHardState(rd.hardState);
      // 2. Send.
      for (const m of rd.messages) {
        this.sent.push(m);
        this.queue.push(m);
      }
      // 3. Apply.
      if (rd.snapshot !== undefined) {
        node.appliedIndex = rd.snapshot.meta.index;
        node.snapshotsInstalled++;
      }
      for (const e of rd.committedEntries) this.apply(node, e);
      for (const rs of rd.readStates) node.readStates.push(rs);
      // 4. Advance.
      raft.advance(rd);
      this.checkElectionSafety(raft);
    }
    this.checkElectionSafety(raft);
  }

  private checkElectionSafety(raft: RaftNode): void {
    if (raft.role !== 'leader') return;
    const seen = this.leaderOfTerm.get(raft.term);
    if (seen !== undefined && seen !== raft.id) {
      throw new Error(`Election Safety: nodes ${seen} and ${raft.id} both lead term ${raft.term}`);
    }
    this.leaderOfTerm.set(raft.term, raft.id);
  }

  private apply(node: NetNode, e: Entry): void {
    if (e.index !== node.appliedIndex + 1) {
      throw new Error(`node ${node.id} applied ${e.index} after ${node.appliedIndex}`);
    }
    const seen = this.appliedTerms.get(e.index);
    if (seen !== undefined && seen !== e.term) {
      throw new Error(`State Machine Safety: node ${node.id} applied term ${e.term} at ${e.index}, another node term ${seen}`);
    }
    this.appliedTerms.set(e.index, e.term);
    node.applied.push(e);
    node.appliedIndex = e.index;
  }

  // ─── Time and delivery ─────────────────────────────────────────────────────────

  /** Ticks one node `n` times, processing its Readys, without delivering anything. */
  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) {
      this.raft(id).tick();
      this.process(id);
    }
  }

  /** `n` rounds of: tick every node once, then deliver until quiet. */
  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const id of this.nodes.keys()) this.tick(id);
      this.deliverAll();
    }
  }

  /** Whether `m` would be lost on the way. */
  private isDropped(m: Message): boolean {
    if (this.cuts.has(`${m.from}>${m.to}`)) return true;
    return this.drops.some((f) => f(m));
  }

  /** Delivers one message (unless dropped) and processes the recipient's Readys. */
  private deliver(m: Message): void {
    const node = this.nodes.get(m.to);
    if (node === undefined || this.isDropped(m)) return;
    this.delivered.push(m);
    node.raft.step(m);
    this.process(m.to);
  }

  /**
   * Processes every node's Readys and delivers queued messages (and the answers they cause)
   * until nothing is left to deliver. Messages `hold` selects stay queued, undelivered.
   * Returns how many messages were delivered.
   */
  deliverAll(hold?: (m: Message) => boolean): number {
    for (const id of this.nodes.keys()) this.process(id);
    let count = 0;
    for (let rounds = 0; ; rounds++) {
      if (rounds > ROUNDS_MAX) throw new Error('the network does not settle');
      const batch = hold === undefined ? this.queue : this.queue.filter((m) => !hold(m));
      if (batch.length === 0) return count;
      this.queue = hold === undefined ? [] : this.queue.filter(hold);
      for (const m of batch) {
        const before = this.delivered.length;
        this.deliver(m);
        count += this.delivered.length - before;
      }
    }
  }

  /** Delivers only the queued messages `which` selects (in order), keeping the rest queued. */
  deliverWhere(which: (m: Message) => boolean): number {
    const chosen = this.queue.filter(which);
    this.queue = this.queue.filter((m) => !which(m));
    const before = this.delivered.length;
    for (const m of chosen) this.deliver(m);
    return this.delivered.length - before;
  }

  // ─── Faults ────────────────────────────────────────────────────────────────────

  /** Cuts the links between `a` and `b`, both ways. */
  cut(a: NodeId, b: NodeId): void {
    this.cuts.add(`${a}>${b}`);
    this.cuts.add(`${b}>${a}`);
  }

  /** Cuts every link of `id`. */
  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cut(id, other);
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

  // ─── Elections ─────────────────────────────────────────────────────────────────

  /**
   * Ticks node `id` alone, delivering after each tick, until it is leader. Other nodes do
   * not tick, so they do not compete; with checkQuorum off they answer campaigns at once.
   * Returns whether `id` won within `ticksMax` ticks.
   */
  campaign(id: NodeId, ticksMax = 100): boolean {
    // Only `id` is ticked, so that it is the one to campaign; the others are taken to have
    // waited out their leader for an election timeout, as they would have in real time, so
    // that they do not disregard the campaign as one against a live leader (Raft §6).
    for (const [other, node] of this.nodes) {
      if (other !== id && node.raft.role === 'follower') {
        node.raft.electionElapsed = Math.max(node.raft.electionElapsed, node.raft.electionTimeoutTicks);
      }
    }
    for (let i = 0; i < ticksMax; i++) {
      this.tick(id);
      this.deliverAll();
      if (this.raft(id).role === 'leader') return true;
    }
    return false;
  }

  /** Like campaign, but fails the test if `id` does not win. */
  elect(id: NodeId, ticksMax = 100): RaftNode {
    if (!this.campaign(id, ticksMax)) throw new Error(`node ${id} did not become leader (role ${this.raft(id).role})`);
    return this.raft(id);
  }

  /** Ticks every node together until some node leads; returns its id. */
  tickUntilLeader(roundsMax = 200): NodeId {
    for (let i = 0; i < roundsMax; i++) {
      this.tickAll();
      const leader = this.leader();
      if (leader !== undefined) return leader;
    }
    throw new Error('no leader elected');
  }

  /** The node that is leader of the highest term among leaders, if any. */
  leader(): NodeId | undefined {
    let best: RaftNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.raft.role === 'leader' && (best === undefined || n.raft.term > best.term)) best = n.raft;
    }
    return best?.id;
  }

  /** The ids of nodes that are leaders right now (possibly stale ones in older terms). */
  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.raft.role === 'leader').map((n) => n.id);
  }

  // ─── Convenience ───────────────────────────────────────────────────────────────

  /** Proposes one normal entry with `text` on `id` and returns its index. */
  propose(id: NodeId, text: string): number {
    return this.raft(id).propose(new TextEncoder().encode(text));
  }

  /** The normal entries `id` applied, as text (empty leader entries left out). */
  appliedTexts(id: NodeId): string[] {
    const dec = new TextDecoder();
    return this.node(id)
      .applied.filter((e) => e.type === EntryType.Normal && e.data.length > 0)
      .map((e) => dec.decode(e.data));
  }

  /** The conf-change entries in `id`'s stored log, decoded. */
  storedConfChanges(id: NodeId): ReturnType<typeof decodeConfChange>[] {
    return this.node(id)
      .storage.allEntries()
      .filter((e) => e.type === EntryType.ConfChange)
      .map((e) => decodeConfChange(e.data));
  }

  /** Messages delivered so far that match `which`. */
  countDelivered(which: (m: Message) => boolean): number {
    return this.delivered.filter(which).length;
  }
}
