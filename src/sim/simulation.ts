/**
 * A deterministic simulation of a whole ringraft cluster: Raft nodes with in-memory
 * "disks", a simulated network, clients running a key-value workload, and a fault
 * scheduler, all on one simulated clock and all driven from one seed. The same options and
 * seed replay a run exactly.
 *
 * Time is in simulated milliseconds. Each node ticks every `tickMs` with its own phase.
 * After every event the safety invariants are checked; at the end the client history is
 * checked for linearizability.
 *
 * The simulator is also the cluster's operator (operator.ts): it keeps the cluster's record
 * and checks every start of a node against it and the node's disk, as the embedding API
 * does, so that a node whose disk was wiped, or one started with the wrong configuration,
 * is refused and stays out.
 */
import { ErrorCode, fail, RingraftError } from '../base/index.ts';
import { EntryType, NONE, RaftNode, Rand, isVoter, type ConfChange, type ConfState, type Entry, type InitialState, type Message, type RaftConfig, type Ready, type Snapshot } from '../core/index.ts';
import { encodeKvRequest, type KvCommand, type KvWriteResult } from '../kv/index.ts';
import { MemoryHostStorage, NodeHost, type ClientReply as HostReply, type HostHooks, type HostStorage } from '../runtime/index.ts';
import { CorruptLogError, SimulatedCrash, bootstrapVotersOf, WalStorage, type ClusterManifest, type PersistBatch } from '../storage/index.ts';
import { EventQueue } from './event-queue.ts';
import type { HistoryOp } from './history.ts';
import { Invariants } from './invariants.ts';
import { checkLinearizable } from './linearizability.ts';
import { SimNetwork } from './network.ts';
import { addSimMember, checkSimStart, newSimRecord, noteSimStarted, type SimDisk } from './operator.ts';
import { FAULT_KINDS, type FaultKind, type SimOptions } from './options.ts';
import { SimFileSystem } from './sim-fs.ts';

export { FAULT_KINDS, defaultSimOptions, type FaultKind, type HostBugs, type OperatorBugs, type SimOptions, type SimOverrides } from './options.ts';

export interface SimResult {
  readonly seed: number;
  readonly nodes: number;
  readonly ok: boolean;
  /** The first violation found, if any. */
  readonly violation: string | undefined;
  readonly operations: number;
  readonly operationsCompleted: number;
  readonly elections: number;
  readonly faults: number;
  readonly simulatedMs: number;
  readonly events: number;
  /** What happened, to show a run exercised what it was meant to. */
  readonly stats: SimStats;
  /**
   * The rare faults of the run and what came of them, each with its time (disk wipes, bit
   * flips, nodes refused at start or stopped, operator mistakes), at most FAULT_LOG_ENTRIES_MAX.
   */
  readonly faultLog: readonly string[];
  readonly history: HistoryOp[];
}

export interface SimStats {
  faultsByKind: Record<FaultKind, number>;
  crashes: number;
  tornWrites: number;
  /** Nodes that found their log corrupt on restart and stayed down. */
  corruptLogStops: number;
  bitFlips: number;
  /** Crashes that also wiped the node's disk. */
  diskWipes: number;
  /** Nodes the start guard refused on restart with STATE_LOST (their disk was wiped): they stayed down. */
  stateLostStops: number;
  /** Starts of nodes with a configuration the cluster does not have (the 'misconfigure' fault). */
  misconfiguredStarts: number;
  /** Of those, the ones the start guard refused with CONFIG_MISMATCH. */
  misconfiguredRefusals: number;
  snapshotsInstalled: number;
  confChangesApplied: number;
  readsLease: number;
  readsSafe: number;
}

// ─── Client ↔ node messages (ride the simulated network, like Raft messages) ─────

type ClientRequest =
  | { kind: 'write'; client: number; opId: number; clientId: number; seq: number; command: KvCommand }
  | { kind: 'read'; client: number; opId: number; key: string; mode: 'safe' | 'lease' };

/** `proposed` on a refusal: whether the request may have entered a log before it was refused. */
type ClientReply =
  | { opId: number; ok: true; output: string | boolean | null }
  | { opId: number; ok: false; code: string; leaderHint: number; proposed: boolean };

const CLIENT_ADDRESS_BASE = 1000;
/** Small WAL segments in the simulation, so rollover and segment deletion happen often. */
const WAL_SEGMENT_BYTES = 16 << 10;
/** By the end, members must have caught up with what was committed this long before it, or still be catching up. */
const CONVERGE_MS = 300;
/** Entries the fault log of a run holds at most. */
const FAULT_LOG_ENTRIES_MAX = 32;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ─── A simulated node: the real host loop (NodeHost) on a simulated disk ─────────

type SimStorage = MemoryHostStorage | WalStorage;

/** A crash the simulator decided on, thrown from a host hook to stop the node mid-Ready. */
class CrashSignal extends Error {
  constructor() {
    super('simulated crash');
    this.name = 'CrashSignal';
  }
}

function isCrash(error: unknown): boolean {
  if (error instanceof CrashSignal || error instanceof SimulatedCrash) return true;
  // The WAL wraps file-system errors; the crash signal is the cause.
  return (error as { cause?: unknown } | undefined)?.cause instanceof SimulatedCrash;
}

/**
 * The persistHardStateLate host bug: the storage writes entries and snapshots, but a hard
 * state only at the next tick, so a vote or a term can leave before it is durable.
 */
class LateHardStateStorage implements HostStorage {
  late: PersistBatch['hardState'] = undefined;
  constructor(readonly inner: SimStorage) {}
  initialState(): InitialState {
    return this.inner.initialState();
  }
  entries(lo: number, hi: number, bytesMax: number): Entry[] {
    return this.inner.entries(lo, hi, bytesMax);
  }
  term(i: number): number {
    return this.inner.term(i);
  }
  firstIndex(): number {
    return this.inner.firstIndex();
  }
  lastIndex(): number {
    return this.inner.lastIndex();
  }
  snapshot(): Snapshot {
    return this.inner.snapshot();
  }
  persist(batch: PersistBatch): void {
    if (batch.hardState !== undefined) this.late = batch.hardState;
    this.inner.persist({ ...batch, hardState: undefined });
  }
  createSnapshot(index: number, conf: ConfState, data: Uint8Array, retainEntries?: number): Snapshot {
    return this.inner.createSnapshot(index, conf, data, retainEntries);
  }
  /** The tick after: the hard state reaches the disk. */
  flushLate(): void {
    if (this.late === undefined) return;
    this.inner.persist({ hardState: this.late });
    this.late = undefined;
  }
}

/** The sendBeforePersist host bug. */
class SendsBeforePersistHost extends NodeHost {
  protected override sendsEarly(): boolean {
    return true;
  }
}

class SimNode {
  host: NodeHost | undefined;
  /** The node's disk: opened (recovered) at each start in 'wal' mode. */
  private storageValue: SimStorage | undefined;
  /** With the persistHardStateLate bug: the storage the host writes through. */
  lateStorage: LateHardStateStorage | undefined;
  /** In 'wal' mode, the simulated file system the WAL lives on. */
  readonly fs: SimFileSystem | undefined;
  /**
   * In 'memory' mode: whether the node's in-memory log exists. It is made at the node's
   * first start (as the WAL makes its first segment) and lost with a wiped disk.
   */
  memoryLogExists = false;
  /** When its disk was wiped, until its next start. */
  wipedAt: number | undefined;
  /** Found its log corrupt, or its state lost, on restart: stays down for the rest of the run. */
  stopped = false;
  incarnation = 0;
  /** Client requests this incarnation took, by the host's request id. */
  readonly requests = new Map<number, { readonly client: number; readonly opId: number }>();
  requestNext = 1;
  lastCommit = 0;
  lastApplied = 0;
  wasLeader = false;
  /** The crash point chosen for the Ready being processed, if any. */
  crashPoint: 'mid-write' | 'before-send' | 'after-send' | undefined;

  constructor(
    readonly id: number,
    mode: 'memory' | 'wal',
  ) {
    this.fs = mode === 'wal' ? new SimFileSystem() : undefined;
    this.storageValue = this.fs === undefined ? new MemoryHostStorage() : undefined;
  }

  get dir(): string {
    return `/n${this.id}`;
  }

  /** The node's disk. In 'wal' mode it exists from the node's first start on. */
  get storage(): SimStorage {
    if (this.storageValue === undefined) fail(`node ${this.id} has not opened its storage`);
    return this.storageValue;
  }

  set storage(storage: SimStorage) {
    this.storageValue = storage;
  }

  /** The disk as the start guard sees it. */
  get disk(): SimDisk {
    return this.fs !== undefined ? { kind: 'wal', fs: this.fs, dir: this.dir } : { kind: 'memory', hasLog: this.memoryLogExists };
  }

  get raft(): RaftNode | undefined {
    return this.host?.raft;
  }

  get alive(): boolean {
    return this.host !== undefined;
  }
}

export class Simulation {
  readonly options: SimOptions;
  private readonly rand: Rand;
  private readonly queue = new EventQueue();
  private readonly network: SimNetwork;
  readonly invariants = new Invariants();
  private readonly nodes = new Map<number, SimNode>();
  private now = 0;
  private events = 0;
  private readonly stats: SimStats = {
    faultsByKind: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
    crashes: 0,
    tornWrites: 0,
    corruptLogStops: 0,
    bitFlips: 0,
    snapshotsInstalled: 0,
    confChangesApplied: 0,
    readsLease: 0,
    readsSafe: 0,
    diskWipes: 0,
    stateLostStops: 0,
    misconfiguredStarts: 0,
    misconfiguredRefusals: 0,
  };
  private readonly faultLog: string[] = [];
  private quiet = false;
  private readonly history: HistoryOp[] = [];
  private readonly clients: SimClient[] = [];
  private crashedAt = new Map<number, number>();
  /**
   * A node's disk was corrupted (a bit flip) or wiped. At most one per run, so that a
   * majority stays whole; until the lost node is out of the configuration, no membership
   * change may shrink the cluster.
   */
  private nodeLost = false;
  private commitToConverge = 0;
  private readonly commitBeforeEnd = new Map<number, number>();
  /**
   * Crash points: nodes to crash right after their next Ready that changes term or vote
   * ('vote'), that advances their commit index ('commit'), or that makes them leader
   * ('leader', before its first entry has spread). These are the moments where a
   * persistence or commit-rule bug does its damage.
   */
  private crashPoints = new Map<number, 'vote' | 'commit' | 'leader'>();
  /**
   * The cluster's record, as the operator keeps it (see operator.ts): its members, which of
   * them have run, and its first configuration.
   */
  private readonly record: ClusterManifest;
  /** The next node id the simulator uses: ids are never used twice, not even for a node that was refused. */
  private nodeIdNext: number;

  constructor(options: SimOptions) {
    this.options = options;
    this.rand = new Rand(options.seed);
    this.network = new SimNetwork(this.rand.fork(), options.network);
    this.record = newSimRecord(options.seed, options.nodes);
    const voters = this.record.bootstrapVoters;
    for (const id of voters) {
      this.nodes.set(id, new SimNode(id, this.options.storage));
    }
    this.nodeIdNext = this.record.nodeIdNext;
    for (const id of voters) {
      const refusal = this.startNode(id, voters);
      if (refusal !== undefined) fail(`node ${id} refused at the cluster's first start: ${refusal.message}`);
    }
    for (let c = 0; c < options.clients; c++) this.clients.push(new SimClient(this, c + 1, this.rand.fork()));
  }

  // ─── Running ─────────────────────────────────────────────────────────────────

  run(): SimResult {
    const o = this.options;
    for (const c of this.clients) this.at(this.rand.int(0, 50), () => c.next());
    if (o.faults.length > 0) this.scheduleFault();
    const end = o.durationMs + o.quiesceMs;
    this.at(o.durationMs, () => this.beginQuiet());
    let writesDoneAtQuiet = 0;
    this.at(o.durationMs + 1, () => {
      writesDoneAtQuiet = this.completedWrites();
    });
    // What the leader had committed shortly before the end: every live member must have it.
    this.at(end - CONVERGE_MS, () => {
      this.commitToConverge = this.leader()?.raft?.log.committed ?? 0;
      for (const [id, node] of this.nodes) this.commitBeforeEnd.set(id, node.raft?.log.committed ?? 0);
    });
    while (this.invariants.violation === undefined) {
      const ev = this.queue.pop();
      if (ev === undefined || ev.time > end) break;
      this.now = ev.time;
      this.events++;
      try {
        ev.run();
      } catch (error) {
        this.invariants.violation = `exception at ${this.now} ms: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
      }
    }
    let violation = this.invariants.violation;
    if (violation === undefined) violation = this.checkLiveness(writesDoneAtQuiet);
    if (violation === undefined && o.checkHistory !== false) {
      const lin = checkLinearizable(this.history);
      if (lin.ok === false) violation = `linearizability: ${lin.report}`;
      else if (lin.ok === 'unknown') violation = `linearizability undecided for key ${lin.key}: ${lin.reason}`;
    }
    // A failing seed's report says which faults the run had.
    if (violation !== undefined) violation += `\n${this.describeFaults()}`;
    return {
      seed: o.seed,
      nodes: o.nodes,
      ok: violation === undefined,
      violation,
      operations: this.history.length,
      operationsCompleted: this.history.filter((h) => h.return !== null).length,
      elections: this.invariants.leaderCount,
      faults: Object.values(this.stats.faultsByKind).reduce((a, b) => a + b, 0),
      simulatedMs: this.now,
      events: this.events,
      stats: this.stats,
      faultLog: this.faultLog,
      history: this.history,
    };
  }

  /** The faults of the run in one line: counts by kind, then the rare ones in order. */
  private describeFaults(): string {
    const st = this.stats;
    const byKind = FAULT_KINDS.filter((k) => st.faultsByKind[k] > 0).map((k) => `${k} ${st.faultsByKind[k]}`);
    const rare: [string, number][] = [
      ['torn writes', st.tornWrites],
      ['bit flips', st.bitFlips],
      ['corrupt-log stops', st.corruptLogStops],
      ['disk wipes', st.diskWipes],
      ['state-lost stops', st.stateLostStops],
      ['misconfigured starts', st.misconfiguredStarts],
      ['refused', st.misconfiguredRefusals],
    ];
    const counts = [...byKind, ...rare.filter(([, n]) => n > 0).map(([what, n]) => `${what} ${n}`)].join(', ');
    const log = this.faultLog.length === 0 ? '' : `; in order: ${this.faultLog.join('; ')}`;
    return `faults in this run: ${counts === '' ? 'none' : counts}${log}`;
  }

  /** Notes a rare fault, or what came of one, in the fault log. */
  private note(what: string): void {
    if (this.faultLog.length < FAULT_LOG_ENTRIES_MAX) this.faultLog.push(`${this.now} ms: ${what}`);
  }

  private completedWrites(): number {
    return this.history.filter((h) => h.op !== 'get' && h.return !== null).length;
  }

  /** After the faults stop, the cluster must serve writes again and its members converge. */
  private checkLiveness(writesDoneAtQuiet: number): string | undefined {
    if (this.completedWrites() <= writesDoneAtQuiet) {
      return `liveness: no write completed in the ${this.options.quiesceMs} ms after faults were healed`;
    }
    const leader = this.leader();
    if (leader === undefined) return `liveness: no leader at the end of the quiet period`;
    const target = this.commitToConverge;
    for (const id of this.members()) {
      const node = this.nodes.get(id);
      if (node?.raft === undefined) continue;
      const caughtUp = node.raft.log.committed >= target && node.lastApplied >= target;
      // A member with a tight flow-control profile may still be catching up, but it must be
      // moving: one that made no progress at all is stuck.
      const moving = node.raft.log.committed > (this.commitBeforeEnd.get(id) ?? 0);
      if (!caughtUp && !moving) {
        return `liveness: node ${id} is stuck behind (committed ${node.raft.log.committed}, applied ${node.lastApplied}, no progress in the last ${CONVERGE_MS} ms; the leader had committed ${target} by then)`;
      }
    }
    return undefined;
  }

  at(delayMs: number, run: () => void): void {
    this.queue.schedule(this.now + delayMs, run);
  }

  get time(): number {
    return this.now;
  }

  recordOp(op: HistoryOp): void {
    this.history.push(op);
  }

  /** Forgets an operation that certainly had no effect (a read, or a write never proposed). */
  forgetOp(op: HistoryOp): void {
    const i = this.history.lastIndexOf(op);
    if (i >= 0) this.history.splice(i, 1);
  }

  // ─── Nodes ───────────────────────────────────────────────────────────────────

  /**
   * Starts node `id` (which must be in `nodes`) as an operator does: the start guard first
   * (operator.ts), then the disk (recovered by the real WAL in 'wal' mode, from whatever the
   * crashes left), then the host. Returns the guard's refusal (STATE_LOST or
   * CONFIG_MISMATCH), if it refused: then nothing started. A corrupt log stops the node
   * for good.
   */
  private startNode(id: number, initialVoters: readonly number[]): RingraftError | undefined {
    const node = this.nodes.get(id)!;
    const refusal = this.guardStart(node, initialVoters);
    if (refusal !== undefined) return refusal;
    node.incarnation++;
    if (node.fs !== undefined) {
      try {
        node.storage = this.openWal(node);
      } catch (error) {
        if (error instanceof RingraftError && error.code === ErrorCode.CORRUPT_LOG) {
          // A damaged log must never serve: the node stays down (an operator would replace it).
          node.stopped = true;
          this.stats.corruptLogStops++;
          this.note(`node ${id} found its log corrupt on restart: stays down`);
          return undefined;
        }
        throw error;
      }
    }
    // From now on its disk must hold its log: the WAL has made its first segment above, and
    // in 'memory' mode the in-memory log exists from now on.
    node.memoryLogExists = true;
    noteSimStarted(this.record, id);
    const config: Omit<RaftConfig, 'storage'> = {
      id,
      seed: this.rand.u32(),
      voters: initialVoters,
      ...this.options.raft,
    };
    node.lateStorage = this.options.hostBugs?.persistHardStateLate === true ? new LateHardStateStorage(node.storage) : undefined;
    node.requests.clear();
    node.crashPoint = undefined;
    node.wasLeader = false;
    const Host = this.options.hostBugs?.sendBeforePersist === true ? SendsBeforePersistHost : NodeHost;
    node.host = new Host(
      {
        raft: config,
        storage: node.lateStorage ?? node.storage,
        node: this.options.node,
        ...(this.options.createNode === undefined ? {} : { createRaft: this.options.createNode }),
        hooks: this.hooksFor(node),
      },
      { sendRaft: (m) => this.sendRaft(m), reply: (r) => this.onHostReply(node, r) },
    );
    node.lastApplied = node.host.appliedIndex;
    node.lastCommit = node.host.raft.log.committed;
    const incarnation = node.incarnation;
    const phase = this.rand.int(0, this.options.node.tickMs);
    const tick = (): void => {
      if (node.incarnation !== incarnation || node.host === undefined) return;
      node.lateStorage?.flushLate();
      node.host.tick();
      this.drain(node);
      this.at(this.options.node.tickMs, tick);
    };
    this.at(phase + 1, tick);
    this.drain(node);
    return undefined;
  }

  /**
   * The operator's check before starting `node` with bootstrap voters `voters` (see
   * operator.ts): the refusal, if any. A planted operator bug skips a part of it.
   */
  private guardStart(node: SimNode, voters: readonly number[]): RingraftError | undefined {
    const bugs = this.options.operatorBugs;
    const checks = { configuration: bugs?.skipConfigurationCheck !== true, directory: bugs?.skipDirectoryCheck !== true };
    try {
      checkSimStart(this.record, node.id, voters, node.disk, checks);
      return undefined;
    } catch (error) {
      if (error instanceof RingraftError && (error.code === ErrorCode.STATE_LOST || error.code === ErrorCode.CONFIG_MISMATCH)) return error;
      throw error;
    }
  }

  private crash(id: number): void {
    const node = this.nodes.get(id)!;
    this.crashPoints.delete(id);
    this.stats.crashes++;
    node.host = undefined;
    node.incarnation++;
    node.requests.clear();
    node.lateStorage = undefined;
    node.crashPoint = undefined;
    this.crashedAt.set(id, this.now);
    // Media corruption and lost disks, at most one node per run, so a majority stays whole.
    // Only where the cluster survives losing this node for good: a voter's disk is damaged
    // only while there are at least three voters, so a quorum remains without it.
    const leaderRaft = this.leader()?.raft;
    const conf = leaderRaft?.conf;
    const settled = leaderRaft !== undefined && leaderRaft.pendingConfIndex <= leaderRaft.log.applied;
    const survivable = conf !== undefined && settled && (!isVoter(conf, id) || (conf.voters.length >= 3 && conf.votersOutgoing.length === 0));
    if (node.fs !== undefined) {
      node.fs.crash(this.rand);
      if (survivable && this.rand.chance(this.options.bitFlipProbability) && !this.anyStopped() && !this.nodeLost) {
        const segments = node.fs.paths().filter((p) => p.startsWith(node.dir + '/') && p.endsWith('.wal'));
        if (segments.length > 0 && node.fs.flipDurableBit(this.rand.pick(segments), this.rand) !== undefined) {
          this.nodeLost = true;
          this.stats.bitFlips++;
          this.note(`a bit of node ${id}'s log flipped in a crash`);
        }
      }
    }
    const wipe = this.options.diskWipeProbability;
    if (survivable && wipe > 0 && !this.anyStopped() && !this.nodeLost && this.rand.chance(wipe)) this.wipeDisk(node);
  }

  /**
   * The node's disk is lost (a crashed node's): in 'wal' mode every file in its directory
   * is deleted; in 'memory' mode its in-memory log is replaced by an empty one. The node
   * comes back as if new, and only the operator knows it is not.
   */
  private wipeDisk(node: SimNode): void {
    if (node.fs !== undefined) node.fs.wipe(node.dir);
    else node.storage = new MemoryHostStorage();
    node.memoryLogExists = false;
    node.wipedAt = this.now;
    this.nodeLost = true;
    this.stats.diskWipes++;
    this.note(`node ${node.id} crashed and its disk was wiped`);
  }

  /** Opens (recovers) a node's WAL; with the truncateCorruptLog bug, cuts a corrupt log and retries. */
  private openWal(node: SimNode): WalStorage {
    const fs = node.fs!;
    for (let attempt = 0; ; attempt++) {
      try {
        return WalStorage.open(node.dir, { fs, segmentSizeBytesMax: WAL_SEGMENT_BYTES });
      } catch (error) {
        const corrupt = error instanceof CorruptLogError && error.fileName.endsWith('.wal') ? error : undefined;
        if (this.options.hostBugs?.truncateCorruptLog !== true || corrupt === undefined || attempt > 8) throw error;
        const bad = `${node.dir}/${corrupt.fileName}`;
        const offset = corrupt.offsetBytes;
        for (const p of fs.paths()) {
          if (p.startsWith(node.dir + '/') && p.endsWith('.wal') && p > bad) fs.unlink(p);
        }
        if (offset <= 64) fs.unlink(bad);
        else {
          const fd = fs.open(bad, 'readWrite');
          fs.ftruncate(fd, offset);
          fs.fdatasync(fd);
          fs.close(fd);
        }
        fs.syncDir(node.dir);
      }
    }
  }

  private anyStopped(): boolean {
    for (const n of this.nodes.values()) if (n.stopped) return true;
    return false;
  }

  /**
   * Restarts a crashed node, with no bootstrap voters (it has run: its log knows its
   * configuration). The start guard must refuse it exactly when its disk was wiped
   * (STATE_LOST); then it stays down for the rest of the run, and the membership faults
   * replace it by a new member.
   */
  private restart(id: number): void {
    this.crashedAt.delete(id);
    const node = this.nodes.get(id)!;
    if (node.stopped) return;
    const wipedAt = node.wipedAt;
    node.wipedAt = undefined;
    // As the embedding API does: an original member gets the first configuration, which it
    // uses only if its log is pristine (its first batch never became durable).
    const refusal = this.startNode(id, bootstrapVotersOf(this.record, id));
    if (refusal === undefined) {
      if (wipedAt !== undefined && node.alive) this.note(`node ${id} rejoined with an empty log under its old identity (its disk was wiped at ${wipedAt} ms)`);
      return;
    }
    if (wipedAt !== undefined && refusal.code === ErrorCode.STATE_LOST) {
      node.stopped = true;
      this.stats.stateLostStops++;
      this.note(`node ${id} refused on restart (STATE_LOST): stays down`);
      return;
    }
    this.invariants.fail(`start guard: node ${id} refused on restart (its disk ${wipedAt === undefined ? 'was not' : 'was'} wiped): ${refusal.message}`);
  }

  /** Delivers a Raft message (after its network delay) to a node, if it is up. */
  private deliver(m: Message): void {
    const node = this.nodes.get(m.to);
    if (node === undefined || node.host === undefined) return;
    node.host.step(m);
    this.drain(node);
  }

  /** The host loop: the node's NodeHost handles every Ready; a crash point stops it mid-way. */
  private drain(node: SimNode): void {
    const host = node.host;
    if (host === undefined) return;
    try {
      host.processReady(this.options.leaderSendsEarly);
    } catch (error) {
      if (!isCrash(error)) throw error;
      if (node.fs !== undefined) node.fs.crashAtNextSync = false;
      this.crashAndRestartSoon(node.id);
    }
  }

  /**
   * The simulator's view of the Ready cycle (see HostHooks): it checks invariants at each
   * step and crashes the node at the chosen crash point by throwing from the hook.
   */
  private hooksFor(node: SimNode): HostHooks {
    return {
      beforePersist: (rd) => {
        node.crashPoint = this.crashPointReached(node.id, rd);
        if (node.crashPoint !== 'mid-write') return;
        // Crash while the Ready is being written: a prefix of its entries reaches the disk
        // (a torn write is cut back to whole records on recovery), the hard state does not,
        // and nothing that had to wait for the write has left.
        this.stats.tornWrites++;
        if (node.fs !== undefined) {
          // The real WAL writes the batch; the crash comes before its sync and tears it.
          node.fs.crashAtNextSync = true;
          return;
        }
        node.storage.append(rd.entries.slice(0, this.rand.int(0, rd.entries.length + 1)));
        throw new CrashSignal();
      },
      afterPersist: (rd) => {
        this.checkPersisted(node, rd);
        this.noteLeader(node);
        if (node.crashPoint === 'before-send') {
          // Crash after the Ready is durable but before any of its messages leave: a new
          // leader's first entry, a new commit index or a new proposal stays on this disk alone.
          this.checkNode(node, node.host!.raft);
          throw new CrashSignal();
        }
      },
      afterAdvance: (rd) => {
        this.checkApplied(node, rd);
        this.checkNode(node, node.host!.raft);
        // Crash just after a vote, a new term or an acknowledgement went out: what was
        // persisted must hold.
        if (node.crashPoint === 'after-send') throw new CrashSignal();
      },
    };
  }

  /**
   * Whether to crash at this Ready, and when: 'before-send' (durable, but none of its
   * messages left) or 'after-send'. A node armed by the fault scheduler crashes at its kind
   * of point; otherwise any Ready that persists entries, changes term, vote or commit, or
   * makes a leader is a crash point taken with `crashPointProbability`.
   */
  private crashPointReached(id: number, rd: Ready): 'mid-write' | 'before-send' | 'after-send' | undefined {
    if (this.quiet) return undefined;
    const armed = this.crashPoints.get(id);
    const leader = rd.softState?.role === 'leader';
    const vote = rd.hardState !== undefined && rd.mustSync;
    const commit = rd.hardState !== undefined && rd.hardState.commit > this.nodes.get(id)!.lastCommit;
    if (armed !== undefined) {
      if (armed === 'vote') return vote ? 'after-send' : undefined;
      return (armed === 'leader' ? leader : commit) ? 'before-send' : undefined;
    }
    const p = this.options.crashPointProbability;
    if (p === 0 || !this.options.faults.includes('crash') || this.downCount() >= this.downMax()) return undefined;
    if (!(leader || vote || commit || rd.entries.length > 0)) return undefined;
    if (!this.rand.chance(p)) return undefined;
    this.stats.faultsByKind.crash++;
    if (rd.entries.length > 0 && this.rand.chance(0.3)) return 'mid-write';
    return this.rand.chance(0.5) ? 'before-send' : 'after-send';
  }

  /**
   * Nodes down now: crashed, or stopped for good (a corrupt log, or a wiped disk the start
   * guard refused). A stopped node keeps counting even once a new member has replaced it,
   * which keeps the budget simple and on the safe side.
   */
  private downCount(): number {
    let stopped = 0;
    for (const n of this.nodes.values()) if (n.stopped) stopped++;
    return this.crashedAt.size + stopped;
  }

  /** How many nodes may be down at once: a minority of the initial cluster (at least one). */
  private downMax(): number {
    return Math.max(1, Math.floor((this.options.nodes - 1) / 2));
  }

  private crashAndRestartSoon(id: number): void {
    this.crash(id);
    this.at(this.rand.int(1, 300), () => {
      if (this.crashedAt.has(id)) this.restart(id);
    });
  }

  /** Log Matching as entries reach the disk. */
  private checkPersisted(node: SimNode, rd: Ready): void {
    for (const e of rd.entries) {
      let prevTerm: number | undefined;
      try {
        prevTerm = node.storage.term(e.index - 1);
      } catch {
        prevTerm = undefined;
      }
      this.invariants.onPersist(node.id, e, prevTerm);
    }
  }

  /** Leader Completeness, when a node becomes leader. */
  private noteLeader(node: SimNode): void {
    const raft = node.host!.raft;
    const isLeader = raft.role === 'leader';
    if (isLeader && !node.wasLeader) {
      const termAt = (i: number): number | undefined => (i < raft.log.firstIndex() - 1 ? undefined : raft.log.term(i));
      this.invariants.onLeader(node.id, raft.term, termAt, raft.log.lastIndex());
    }
    node.wasLeader = isLeader;
  }

  /** State Machine Safety and the apply order, for what the host just applied. */
  private checkApplied(node: SimNode, rd: Ready): void {
    if (rd.snapshot !== undefined) {
      this.stats.snapshotsInstalled++;
      node.lastApplied = rd.snapshot.meta.index;
    }
    for (const e of rd.committedEntries) {
      this.invariants.onApply(node.id, e, node.lastApplied);
      node.lastApplied = e.index;
      if (e.type === EntryType.ConfChange) this.stats.confChangesApplied++;
    }
  }

  /** A host's answer to a client request goes back over the network. */
  private onHostReply(node: SimNode, r: HostReply): void {
    const req = node.requests.get(r.requestId);
    if (req === undefined) return;
    node.requests.delete(r.requestId);
    let reply: ClientReply;
    switch (r.kind) {
      case 'write':
        reply = { opId: req.opId, ok: true, output: resultOutput(r.result) };
        break;
      case 'read':
        reply = { opId: req.opId, ok: true, output: r.value === undefined ? null : decoder.decode(r.value) };
        break;
      case 'error':
        reply = { opId: req.opId, ok: false, code: r.code, leaderHint: r.leaderHint, proposed: r.proposed };
        break;
      default:
        return;
    }
    this.replyTo(node.id, req.client, reply);
  }

  private checkNode(node: SimNode, raft: RaftNode): void {
    const inv = this.invariants;
    const commit = raft.log.committed;
    inv.onMonotonic(node.id, 'commit', node.lastCommit, commit);
    for (let i = Math.max(node.lastCommit + 1, raft.log.firstIndex()); i <= commit; i++) {
      inv.onCommit(node.id, i, raft.log.term(i));
    }
    node.lastCommit = Math.max(node.lastCommit, commit);
  }

  private sendRaft(m: Message): void {
    for (const d of this.network.delays(m.from, m.to)) this.at(d, () => this.deliver(m));
  }

  // ─── Client traffic ────────────────────────────────────────────────────────────

  /** A client sends `req` to node `to` over the network. */
  sendRequest(to: number, req: ClientRequest): void {
    for (const d of this.network.delays(CLIENT_ADDRESS_BASE + req.client, to)) {
      this.at(d, () => this.handleRequest(to, req));
    }
  }

  private replyTo(from: number, client: number, reply: ClientReply): void {
    for (const d of this.network.delays(from, CLIENT_ADDRESS_BASE + client)) {
      this.at(d, () => this.clients[client - 1]!.onReply(reply));
    }
  }

  private handleRequest(to: number, req: ClientRequest): void {
    const node = this.nodes.get(to);
    const host = node?.host;
    if (node === undefined || host === undefined) return; // A crashed node answers nothing.
    const requestId = node.requestNext++;
    node.requests.set(requestId, { client: req.client, opId: req.opId });
    if (req.kind === 'write') {
      const data = encodeKvRequest({ clientId: req.clientId, seq: req.seq, command: req.command });
      host.addWrite(requestId, data, 0, data.length);
    } else {
      if (req.mode === 'lease') this.stats.readsLease++;
      else this.stats.readsSafe++;
      host.handleRequest({ kind: 'read', requestId, consistency: req.mode === 'lease' ? 'lease' : 'linearizable', key: encoder.encode(req.key) });
    }
    host.flush();
    this.drain(node);
  }

  // ─── Faults ────────────────────────────────────────────────────────────────────

  private scheduleFault(): void {
    const mean = this.options.faultMeanIntervalMs;
    this.at(this.rand.int(mean / 2, (mean * 3) / 2), () => {
      if (this.quiet) return;
      this.injectFault();
      this.scheduleFault();
    });
  }

  private beginQuiet(): void {
    this.quiet = true;
    this.crashPoints.clear();
    this.network.heal();
    this.network.options = { ...this.options.network, packetLossProbability: 0, packetDuplicateProbability: 0 };
    for (const id of [...this.crashedAt.keys()]) this.restart(id);
  }

  private members(): number[] {
    const leader = this.leader();
    const conf = leader?.raft?.conf ?? this.anyAlive()?.raft?.conf;
    // A node that just restarted or joined knows no configuration until it replays the log.
    if (conf === undefined || conf.voters.length === 0) return [...this.nodes.keys()];
    return [...new Set([...conf.voters, ...conf.votersOutgoing, ...conf.learners, ...conf.learnersNext])];
  }

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.raft?.role === 'leader' && (best === undefined || n.raft.term > best.raft!.term)) best = n;
    }
    return best;
  }

  private anyAlive(): SimNode | undefined {
    for (const n of this.nodes.values()) if (n.alive) return n;
    return undefined;
  }

  private injectFault(): void {
    const kind = this.rand.pick(this.options.faults);
    const ids = [...this.nodes.keys()];
    const leader = this.leader();
    this.stats.faultsByKind[kind]++;
    switch (kind) {
      case 'partition': {
        this.network.heal();
        const shuffled = this.rand.shuffle(ids.slice());
        const cut = this.rand.int(1, shuffled.length);
        this.network.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
        this.at(this.rand.int(100, 1500), () => this.network.heal());
        break;
      }
      case 'asymmetric': {
        const a = this.rand.pick(ids);
        for (const b of ids) if (b !== a && this.rand.chance(0.6)) this.network.cutOneWay(a, b);
        this.at(this.rand.int(100, 1500), () => this.network.heal());
        break;
      }
      case 'isolate': {
        const victim = leader?.id ?? this.rand.pick(ids);
        this.network.partition([[victim], ids.filter((i) => i !== victim)]);
        this.at(this.rand.int(100, 1500), () => this.network.heal());
        break;
      }
      case 'crash': {
        const alive = ids.filter((i) => this.nodes.get(i)!.alive);
        if (alive.length === 0 || this.downCount() >= this.downMax()) {
          const [first] = this.crashedAt.keys();
          if (first !== undefined) this.restart(first);
          break;
        }
        const victim = leader !== undefined && this.rand.chance(0.5) ? leader.id : this.rand.pick(alive);
        if (this.rand.chance(0.4)) {
          this.crashPoints.set(victim, this.rand.pick(['vote', 'commit', 'leader'] as const));
          break;
        }
        this.crash(victim);
        this.at(this.rand.int(20, 1000), () => {
          if (this.crashedAt.has(victim)) this.restart(victim);
        });
        break;
      }
      case 'drop': {
        const loss = this.rand.pick([0.05, 0.2, 0.5]);
        this.network.options = { ...this.options.network, packetLossProbability: loss, packetDuplicateProbability: 0.05 };
        this.at(this.rand.int(100, 800), () => {
          if (!this.quiet) this.network.options = this.options.network;
        });
        break;
      }
      case 'membership':
        this.changeMembership(leader);
        break;
      case 'transfer': {
        const raft = leader?.raft;
        if (raft === undefined) break;
        const targets = raft.conf.voters.filter((v) => v !== leader!.id);
        if (targets.length === 0) break;
        this.asLeader(leader!, (r) => r.transferLeadership(this.rand.pick(targets)));
        break;
      }
      case 'misconfigure':
        this.misconfigure();
        break;
    }
  }

  /**
   * The operator starts nodes with a configuration the cluster does not have, one of:
   * - a wrong node count: it believes the cluster has one or two nodes more than its record
   *   says (reopening a 3-node cluster with `nodes: 5`), and starts the missing ones with
   *   the voters that count implies;
   * - a new member (recorded, as addNode does) started as if it founded a cluster: with
   *   itself alone, or the first configuration and itself, as voters.
   * Started, such a node bootstraps a configuration of its own. The start guard must refuse
   * each (CONFIG_MISMATCH); a refused node stays out. New nodes take ids never used before.
   */
  private misconfigure(): void {
    const first = this.record.bootstrapVoters;
    if (this.rand.chance(0.5)) {
      const extra = Array.from({ length: this.rand.int(1, 3) }, () => this.nodeIdNext++);
      const voters = [...first, ...extra];
      for (const id of extra) this.startMisconfigured(id, voters, `a wrong node count, ${voters.length} for ${first.length}`);
      return;
    }
    const id = this.nodeIdNext++;
    addSimMember(this.record, id);
    const voters = this.rand.chance(0.5) ? [id] : [...first, id];
    this.startMisconfigured(id, voters, 'a new member given voters of its own');
  }

  private startMisconfigured(id: number, voters: readonly number[], what: string): void {
    this.stats.misconfiguredStarts++;
    this.nodes.set(id, new SimNode(id, this.options.storage));
    const refusal = this.startNode(id, voters);
    if (refusal === undefined) {
      this.note(`node ${id} started with bootstrap voters [${voters.join(', ')}] (${what}), not refused`);
      return;
    }
    this.nodes.delete(id);
    if (refusal.code !== ErrorCode.CONFIG_MISMATCH) {
      this.invariants.fail(`start guard: node ${id}, started with the wrong configuration (${what}), refused with ${refusal.code}, not CONFIG_MISMATCH: ${refusal.message}`);
      return;
    }
    this.stats.misconfiguredRefusals++;
  }

  private changeMembership(leader: SimNode | undefined): void {
    const raft = leader?.raft;
    if (raft === undefined) return;
    const conf = raft.conf;
    const n = this.options.nodes;
    const choices: ConfChange[] = [];
    const voters = conf.voters;
    // The operator's first job: remove a node that stopped on a corrupt log or a lost disk,
    // and shrink nothing else while it still holds a vote.
    const stopped = [...this.nodes.values()].find((x) => x.stopped && (isVoter(conf, x.id) || conf.learners.includes(x.id)));
    if (stopped !== undefined) {
      this.asLeader(leader!, (r) => r.proposeConfChange({ changes: [{ op: 'removeNode', nodeId: stopped.id }] }));
      return;
    }
    // After a loss, nothing may shrink the cluster: it could leave the dead node holding a
    // quorum. Once the dead node is out of the configuration, growing back (a new member
    // replacing it) is safe; before that (not yet known dead, or a bit flip that recovery
    // did not notice), no churn at all.
    if (this.nodeLost && !this.anyStopped()) return;
    const shrink = !this.nodeLost;
    if (shrink && voters.length > Math.max(2, n - 1)) {
      for (const v of voters) choices.push({ changes: [{ op: 'removeNode', nodeId: v }] });
      for (const v of voters) choices.push({ changes: [{ op: 'addLearner', nodeId: v }] });
    }
    for (const l of conf.learners) {
      if (voters.length < n + 2) choices.push({ changes: [{ op: 'addVoter', nodeId: l }] });
      if (shrink) choices.push({ changes: [{ op: 'removeNode', nodeId: l }] });
    }
    if (conf.learners.length === 0 && this.nodes.size < n + 3) {
      // A new member, recorded before it starts (as the embedding API's addNode does).
      const id = this.nodeIdNext++;
      addSimMember(this.record, id);
      this.nodes.set(id, new SimNode(id, this.options.storage));
      const refusal = this.startNode(id, []);
      if (refusal !== undefined) {
        this.invariants.fail(`start guard: new member ${id} refused: ${refusal.message}`);
        return;
      }
      choices.push({ changes: [{ op: 'addLearner', nodeId: id }] });
    }
    if (choices.length === 0) return;
    this.asLeader(leader!, (r) => r.proposeConfChange(this.rand.pick(choices)));
  }

  /**
   * An operator's request to the leader: a typed refusal (a change pending, a transfer under
   * way) just means not now; anything else is a bug. Then the host loop runs.
   */
  private asLeader(leader: SimNode, action: (raft: RaftNode) => void): void {
    try {
      action(leader.raft!);
    } catch (error) {
      if (!(error instanceof RingraftError)) throw error;
    }
    this.drain(leader);
  }

  nodeIds(): number[] {
    return this.members();
  }
}

function resultOutput(r: KvWriteResult): string | boolean | null {
  switch (r.op) {
    case 'register-clients':
      // The simulated clients pick their own ids (below KV_CLIENT_ID_REGISTERED_FIRST) and never register.
      fail('the simulator sent no register-clients request');
    case 'put':
      return null;
    case 'delete':
      return r.existed;
    case 'cas':
      return r.swapped;
  }
}

// ─── The workload ─────────────────────────────────────────────────────────────────

/**
 * One client: runs one operation at a time, picks a node (its last known leader), retries
 * after NOT_LEADER and after timeouts (writes keep their session sequence number, so a
 * retried write is applied at most once), and records every operation with its call and
 * return times. An operation given up on is recorded with return null (outcome unknown).
 */
class SimClient {
  /** The session: a client id (client index and session number) and its next sequence number. */
  private clientId: number;
  private sessionNo = 1;
  private seq = 0;
  private opNext = 1;
  private target = 1;
  private current:
    | {
        opId: number;
        record: HistoryOp;
        request: ClientRequest;
        deadline: number;
        timer: number;
        done: boolean;
        /** Whether some attempt may have been proposed (timed out, or refused after proposing). */
        mayHaveEffect: boolean;
      }
    | undefined;
  private lastSeen = new Map<string, string | null>();

  constructor(
    private readonly sim: Simulation,
    readonly index: number,
    private readonly rand: Rand,
  ) {
    this.clientId = (index << 16) | this.sessionNo;
  }

  /**
   * After a write with an unknown outcome or an expired session, continue in a new session:
   * the old one may hold a request that is still in some log, and the state machine opens
   * sessions only at sequence number 1.
   */
  private newSession(): void {
    this.sessionNo++;
    this.clientId = (this.index << 16) | this.sessionNo;
    this.seq = 0;
  }

  next(): void {
    const sim = this.sim;
    const o = sim.options;
    if (sim.time >= o.durationMs + o.quiesceMs - o.clientTimeoutMs * 2) return;
    const key = `k${this.rand.int(0, o.keys)}`;
    const roll = this.rand.float();
    const opId = this.opNext++;
    const value = `c${this.index}-${opId}`;
    let record: HistoryOp;
    let request: ClientRequest;
    if (roll < 0.35) {
      const mode = this.rand.chance(0.5) ? 'lease' : 'safe';
      record = { client: this.index, op: 'get', key, value: null, expected: null, output: null, call: sim.time, return: null };
      request = { kind: 'read', client: this.index, opId, key, mode };
    } else {
      this.seq++;
      let command: KvCommand;
      if (roll < 0.7) {
        command = { op: 'put', key: encoder.encode(key), value: encoder.encode(value) };
        record = { client: this.index, op: 'put', key, value, expected: null, output: null, call: sim.time, return: null };
      } else if (roll < 0.82) {
        command = { op: 'delete', key: encoder.encode(key) };
        record = { client: this.index, op: 'delete', key, value: null, expected: null, output: null, call: sim.time, return: null };
      } else {
        const expected = this.lastSeen.get(key) ?? null;
        command = {
          op: 'cas',
          key: encoder.encode(key),
          expected: expected === null ? undefined : encoder.encode(expected),
          value: encoder.encode(value),
        };
        record = { client: this.index, op: 'cas', key, value, expected, output: null, call: sim.time, return: null };
      }
      request = { kind: 'write', client: this.index, opId, clientId: this.clientId, seq: this.seq, command };
    }
    sim.recordOp(record);
    const deadline = sim.time + Math.max(2000, o.clientTimeoutMs * o.clientAttemptsMax);
    this.current = { opId, record, request, deadline, timer: 0, done: false, mayHaveEffect: false };
    this.attempt();
  }

  private attempt(): void {
    const cur = this.current!;
    const timer = ++cur.timer;
    this.sim.sendRequest(this.target, cur.request);
    this.sim.at(this.sim.options.clientTimeoutMs, () => {
      if (cur.done || cur.timer !== timer) return;
      // No answer: the request may have been proposed before the node or the network failed.
      cur.mayHaveEffect = true;
      this.target = this.rand.pick(this.sim.nodeIds());
      this.retryOrGiveUp();
    });
  }

  private retryOrGiveUp(): void {
    const cur = this.current!;
    if (this.sim.time >= cur.deadline) {
      this.giveUp();
      return;
    }
    this.attempt();
  }

  /**
   * The outcome is unknown: the history keeps return null, unless the operation certainly
   * had no effect (a read, or a write no attempt of which was proposed), which is dropped.
   * The next write uses a new sequence number, so this one can no longer be applied after
   * a later one of this client.
   */
  private giveUp(): void {
    const cur = this.current!;
    cur.done = true;
    if (cur.record.op === 'get' || !cur.mayHaveEffect) this.sim.forgetOp(cur.record);
    if (cur.record.op !== 'get') this.newSession();
    this.sim.at(this.rand.int(1, 20), () => this.next());
  }

  onReply(reply: ClientReply): void {
    const cur = this.current;
    if (cur === undefined || cur.done || reply.opId !== cur.opId) return;
    if (reply.ok) {
      cur.done = true;
      cur.record.output = reply.output;
      cur.record.return = this.sim.time;
      if (cur.record.op === 'get') this.lastSeen.set(cur.record.key, reply.output as string | null);
      else if (cur.record.op === 'put' || (cur.record.op === 'cas' && reply.output === true)) this.lastSeen.set(cur.record.key, cur.record.value);
      else if (cur.record.op === 'delete') this.lastSeen.set(cur.record.key, null);
      this.sim.at(this.rand.int(1, 20), () => this.next());
      return;
    }
    if (reply.proposed) cur.mayHaveEffect = true;
    if (reply.code === ErrorCode.SESSION_EXPIRED) {
      // The session moved on or was evicted: give up on this op.
      this.giveUp();
      return;
    }
    // Not the leader (or busy): follow the hint at once, or try another node after a pause
    // (an election is probably under way).
    cur.timer++;
    const hinted = reply.leaderHint !== NONE;
    this.target = hinted ? reply.leaderHint : this.rand.pick(this.sim.nodeIds());
    this.sim.at(hinted ? this.rand.int(1, 5) : this.rand.int(20, 60), () => {
      if (!cur.done) this.retryOrGiveUp();
    });
  }
}

export function runSimulation(options: SimOptions): SimResult {
  return new Simulation(options).run();
}
