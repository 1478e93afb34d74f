// A small deterministic in-memory network of RaftNodes for the core's tests, after etcd's test
// network. It is the ReadyDriver (src/sim/ready-driver.ts, which processes each Ready in the
// documented order and checks Election Safety and State Machine Safety as it goes) run eagerly:
// every node's Readys are processed as soon as it has any (after a tick, a delivery, a
// restart), so that a test only says which messages move and when time passes. Messages wait
// in one FIFO queue until delivered; links can be cut and messages dropped by filters.
import { EntryType, decodeConfChange } from '../../../src/core/index.ts';
import type { Message, NodeId, RaftNode } from '../../../src/core/index.ts';
import { ReadyDriver, type DriverNode, type DriverNodeOptions, type DropFilter } from '../../../src/sim/ready-driver.ts';

/** Per-node options; `voters`/`learners` only matter to a node with empty storage (bootstrap). */
export type NodeOptions = DriverNodeOptions;

export interface NetworkOptions extends NodeOptions {
  readonly learners?: readonly NodeId[];
  /** Node i's generator is seeded with i * 7919 + seedBase (default 17): vary it to vary a run. */
  readonly seedBase?: number;
}

export type NetNode = DriverNode;

/** Rounds of delivery in one deliverAll before the network is taken to livelock. */
const DELIVERY_ROUNDS_MAX = 10_000;

export class Network {
  readonly driver: ReadyDriver;

  /**
   * Nodes `voters` (and `learners`) bootstrapped as one cluster. Defaults: electionTimeoutTicks 10,
   * heartbeatIntervalTicks 1, preVote on, checkQuorum off (so a node campaigns by ticking alone; tests
   * of leases and check-quorum turn it on), seed derived from the id.
   */
  constructor(voters: readonly NodeId[], options: NetworkOptions = {}) {
    const { learners = [], seedBase = 17, ...nodeOptions } = options;
    this.driver = new ReadyDriver({
      node: { electionTimeoutTicks: 10, heartbeatIntervalTicks: 1, preVote: true, checkQuorum: false, ...nodeOptions },
      seedOf: (id) => id * 7919 + seedBase,
    });
    for (const id of [...voters, ...learners]) {
      this.addNode(id, { voters, learners });
    }
  }

  /** Every node, by id. */
  get nodes(): ReadonlyMap<NodeId, NetNode> {
    return this.driver.nodes;
  }

  /** Messages sent and not yet delivered, oldest first. Tests may rearrange it. */
  get queue(): Message[] {
    return this.driver.mailbox;
  }

  set queue(messages: Message[]) {
    this.driver.mailbox = messages;
  }

  /** Every message that reached its recipient's step(), in delivery order. */
  get delivered(): readonly Message[] {
    return this.driver.delivered;
  }

  /** Every message a node sent (dropped or not), in sending order. */
  get sent(): readonly Message[] {
    return this.driver.sent;
  }

  /**
   * Starts a node on empty storage, with the network's options and `options` over them.
   * Without `voters` it joins an existing cluster.
   */
  addNode(id: NodeId, options: NodeOptions = {}): NetNode {
    const node = this.driver.addNode(id, options);
    this.process(id);
    return node;
  }

  node(id: NodeId): NetNode {
    return this.driver.node(id);
  }

  raft(id: NodeId): RaftNode {
    return this.driver.raft(id);
  }

  /** Simulates a crash and restart: a new RaftNode over the same storage; volatile state is lost. */
  restart(id: NodeId, options: NodeOptions = {}): RaftNode {
    const raft = this.driver.restart(id, options);
    this.process(id);
    return raft;
  }

  /** Handles every Ready node `id` has, in the order the Ready contract requires. */
  process(id: NodeId): void {
    this.driver.settle(id);
  }

  // ─── Time and delivery ─────────────────────────────────────────────────────────

  /** Ticks one node `n` times, processing its Readys, without delivering anything. */
  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) {
      this.driver.tick(id);
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

  /** Delivers one message (unless it is lost) and processes the recipient's Readys. */
  private deliver(m: Message): void {
    if (this.driver.deliverOne(m)) this.process(m.to);
  }

  /**
   * Processes every node's Readys and delivers queued messages (and the answers they cause)
   * until nothing is left to deliver. Messages `hold` selects stay queued, undelivered.
   * Returns how many messages were delivered.
   */
  deliverAll(hold?: (m: Message) => boolean): number {
    for (const id of this.nodes.keys()) this.process(id);
    const before = this.delivered.length;
    for (let rounds = 0; ; rounds++) {
      if (rounds > DELIVERY_ROUNDS_MAX) throw new Error('the network does not settle');
      const batch = hold === undefined ? this.queue : this.queue.filter((m) => !hold(m));
      if (batch.length === 0) return this.delivered.length - before;
      this.queue = hold === undefined ? [] : this.queue.filter(hold);
      for (const m of batch) this.deliver(m);
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
    this.driver.cut(a, b);
  }

  /** Cuts every link of `id`. */
  isolate(id: NodeId): void {
    this.driver.isolate(id);
  }

  /** Drops every message `filter` selects until recover(). */
  drop(filter: DropFilter): void {
    this.driver.drop(filter);
  }

  /** Heals every cut and removes every drop filter. */
  recover(): void {
    this.driver.recover();
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
    return this.driver.leader();
  }

  /** The ids of nodes that are leaders right now (possibly stale ones in older terms). */
  leaders(): NodeId[] {
    return this.driver.leaders();
  }

  // ─── Convenience ───────────────────────────────────────────────────────────────

  /** Proposes one normal entry with `text` on `id` and returns its index. */
  propose(id: NodeId, text: string): number {
    return this.driver.propose(id, new TextEncoder().encode(text));
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
