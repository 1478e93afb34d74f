/**
 * A cluster of RaftNode instances driven in memory, with no I/O: the harness of the core
 * micro-benchmark (and of its correctness test). Each node has a MemoryStorage as its
 * "disk"; messages go straight from one node's Ready to the destination node's `step()`.
 *
 * Each Ready is processed by the one Ready loop of the tests and scenarios, the ReadyDriver
 * (src/sim/ready-driver.ts), in the order the core documents (see Ready in
 * src/core/types.ts): persist, send (here: to the destination's `step()`, or to a caller's
 * sink), apply (counted, and handed to `onApply` if one was given), advance. It records
 * nothing and checks no safety property here, so that its memory stays flat over a long run.
 *
 * Nothing here ticks once a leader is elected: the steady state measured is pure
 * replication, with no heartbeats and no elections.
 */
import { assert, fail } from '../../src/base/index.ts';
import { EMPTY_DATA, EntryType, type Entry, type Message, type NodeId, type RaftNode } from '../../src/core/index.ts';
import { ReadyDriver } from '../../src/sim/ready-driver.ts';
import type { MemoryStorage } from '../../src/storage/index.ts';
import type { BenchNodeConfig } from '../../bench.config.ts';

export interface CoreClusterOptions {
  readonly clusterSize: number;
  readonly node: BenchNodeConfig;
  /** Compact a node's storage once it holds more than this many entries. */
  readonly compactionEntriesMax: number;
  /** Seeds the nodes' generators (node i gets seed + i). Default 1. */
  readonly seed?: number;
  /** Called for every committed entry a node applies, in order. */
  readonly onApply?: (nodeId: NodeId, entry: Entry) => void;
}

/** Where the messages of a Ready go; by default, to the destination node's `step()`. */
export type MessageSink = (m: Message) => void;

/** Ready passes per round before the driver gives up (a livelock is a bug). */
const READY_PASSES_MAX = 1_000_000;
/** Ticks per node allowed for the first election before the driver gives up. */
const ELECTION_TICKS_MAX = 1000;

export class CoreCluster {
  readonly nodes: readonly RaftNode[];
  readonly storages: readonly MemoryStorage[];
  /** appliedCounts[i]: committed entries node i + 1 has applied (all types, since start). */
  readonly appliedCounts: number[];
  /** appliedIndexes[i]: the log index of the last entry node i + 1 has applied. */
  readonly appliedIndexes: number[];
  private readonly compactionEntriesMax: number;
  private readonly driver: ReadyDriver;
  private readonly deliver: MessageSink = (m) => this.node(m.to).step(m);

  constructor(options: CoreClusterOptions) {
    assert(options.clusterSize >= 1, 'a cluster needs at least one node');
    assert(options.compactionEntriesMax >= 1, 'compactionEntriesMax must be at least 1');
    const ids = Array.from({ length: options.clusterSize }, (_, i) => i + 1);
    const seed = options.seed ?? 1;
    this.driver = new ReadyDriver({
      node: { ...options.node, voters: ids },
      seedOf: (id) => seed + id - 1,
      record: false,
      checkSafety: false,
      onApply: options.onApply,
    });
    const driverNodes = ids.map((id) => this.driver.addNode(id));
    this.storages = driverNodes.map((n) => n.storage);
    this.nodes = driverNodes.map((n) => n.raft);
    this.appliedCounts = ids.map(() => 0);
    this.appliedIndexes = ids.map(() => 0);
    this.compactionEntriesMax = options.compactionEntriesMax;
  }

  node(id: NodeId): RaftNode {
    const n = this.nodes[id - 1];
    if (!(n !== undefined)) fail(`no node ${id}`);
    return n;
  }

  /** The current leader's id, or undefined while there is none. */
  leaderId(): NodeId | undefined {
    return this.nodes.find((n) => n.role === 'leader')?.id;
  }

  /**
   * Elects node `target`: ticks every node in lockstep until some leader emerges (each
   * node must tick past its start-up lease before it grants votes), then, if the winner
   * is not `target`, hands leadership over. Ends with the cluster stable.
   */
  elect(target: NodeId = 1): void {
    for (let t = 0; this.leaderId() === undefined; t++) {
      if (!(t < ELECTION_TICKS_MAX)) fail(`no leader after ${ELECTION_TICKS_MAX} ticks`);
      for (const n of this.nodes) n.tick();
      this.stabilize();
    }
    if (this.leaderId() !== target) {
      this.node(this.leaderId()!).transferLeadership(target);
      this.stabilize();
    }
    if (!(this.leaderId() === target)) fail(`node ${target} did not become leader`);
    // The new leader's empty entry must be applied everywhere before a measurement starts.
    this.stabilize();
  }

  /**
   * Processes node `id`'s Ready, if it has one, in the documented order. Messages go to
   * `sink` if given, else straight to their destination. Returns whether there was one.
   */
  processReady(id: NodeId, sink: MessageSink = this.deliver): boolean {
    if (this.driver.processReady(id, sink) === undefined) return false;
    // Entries are applied in index order and a snapshot applies every entry it covers, so
    // the entries applied are the advance of the applied index.
    const appliedIndex = this.driver.node(id).appliedIndex;
    this.appliedCounts[id - 1]! += appliedIndex - this.appliedIndexes[id - 1]!;
    this.appliedIndexes[id - 1] = appliedIndex;
    return true;
  }

  /** Processes every node's Ready, once each in id order. Returns whether any had one. */
  processAll(): boolean {
    let any = false;
    for (let id = 1; id <= this.nodes.length; id++) {
      if (this.processReady(id)) any = true;
    }
    return any;
  }

  /** Processes Readys until no node has one left. */
  stabilize(): void {
    for (let pass = 0; this.processAll(); pass++) {
      if (!(pass < READY_PASSES_MAX)) fail(`cluster still busy after ${READY_PASSES_MAX} passes`);
    }
  }

  /**
   * One measured round: the leader proposes every payload, then the cluster is driven
   * until the leader has applied them all. Followers may still be applying the tail; the
   * next round finishes that. Returns the number of entries committed (payloads.length).
   */
  proposeRound(payloads: readonly Uint8Array[]): number {
    const leaderId = this.leaderId();
    assert(leaderId !== undefined, 'no leader to propose to');
    const leader = this.node(leaderId);
    const target = this.appliedCounts[leaderId - 1]! + payloads.length;
    for (const p of payloads) leader.propose(p);
    for (let pass = 0; this.appliedCounts[leaderId - 1]! < target; pass++) {
      if (!(pass < READY_PASSES_MAX)) fail(`round not committed after ${READY_PASSES_MAX} passes`);
      // No Ready anywhere while entries are uncommitted would mean a stuck cluster.
      if (!(this.processAll())) fail(`cluster idle with ${target - this.appliedCounts[leaderId - 1]!} entries not applied`);
    }
    this.maybeCompact();
    return payloads.length;
  }

  /**
   * Compacts each storage that holds more than compactionEntriesMax entries, up to what
   * its node has applied. The leader compacts no further than every follower has matched,
   * so that it never has to fall back to sending a snapshot during a measurement.
   */
  maybeCompact(): void {
    for (let i = 0; i < this.nodes.length; i++) {
      const node = this.nodes[i]!;
      const storage = this.storages[i]!;
      if (storage.lastIndex() - storage.firstIndex() + 1 <= this.compactionEntriesMax) continue;
      let index = Math.min(node.log.applied, storage.lastIndex());
      if (node.role === 'leader') {
        for (const pr of node.progress.values()) index = Math.min(index, pr.match);
      }
      if (index < storage.firstIndex()) continue;
      storage.createSnapshot(index, node.conf, EMPTY_DATA);
    }
  }
}

/**
 * `count` payloads of `bytes` bytes each, every one distinct (its first bytes hold its
 * number), so that a test can tell them apart after replication.
 */
export function makePayloads(count: number, bytes: number, first = 0): Uint8Array[] {
  assert(bytes >= 4, 'payloads need at least 4 bytes to carry their number');
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const p = new Uint8Array(bytes);
    new DataView(p.buffer).setUint32(0, first + i, true);
    for (let j = 4; j < bytes; j++) p[j] = (first + i + j) & 0xff;
    out.push(p);
  }
  return out;
}

/** Whether `e` is an application entry (not a conf change or a leader's empty entry). */
export function isProposal(e: Entry): boolean {
  return e.type === EntryType.Normal && e.data.length > 0;
}
