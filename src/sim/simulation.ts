/**
 * A deterministic simulation of a whole ringraft cluster: Raft nodes with simulated disks, a
 * simulated network, clients running a key-value workload, and a fault injector, all on one
 * simulated clock and all driven from one seed. The same options and seed replay a run
 * exactly.
 *
 * Time is in simulated milliseconds. Each node ticks every `tickMs` with its own phase.
 * After every event the safety invariants are checked; at the end, liveness and the client
 * history's linearizability.
 *
 * The simulator is also the cluster's operator (operator.ts): it keeps the cluster's record
 * and checks every start of a node against it and the node's disk, as the embedding API
 * does, so that a node whose disk was wiped, or one started with the wrong configuration,
 * is refused and stays out.
 *
 * Where the parts live:
 *
 * | file              | what it holds                                                      |
 * | ----------------- | ------------------------------------------------------------------ |
 * | options.ts        | the options of a run, and the per-seed profile that varies them    |
 * | sim-node.ts       | a simulated node: the real host loop over its simulated disk       |
 * | host-bugs.ts      | the planted bugs of the host side                                  |
 * | faults.ts         | the fault injector: what goes wrong, and when                      |
 * | workload.ts       | the simulated clients and their history                            |
 * | trace-recorder.ts | the events of a run: the last of each node, for a failure report   |
 * | stats.ts          | what a run counts                                                  |
 * | this file         | `Simulation`, which wires them together: it starts the nodes,      |
 * |                   | checks each step of their Ready cycles and runs the event loop;    |
 * |                   | and `runSimulation`                                                |
 */
import { ErrorCode, fail, RingraftError } from '../base/index.ts';
import { EntryType, Rand, type Entry, type Message, type RaftConfig, type RaftNode, type Ready } from '../core/index.ts';
import { NodeHost, type HostHooks } from '../runtime/index.ts';
import type { ClusterManifest } from '../storage/index.ts';
import { EventQueue } from './event-queue.ts';
import { describeFaults, FaultInjector, type FaultHost } from './faults.ts';
import type { HistoryOp } from './history.ts';
import { FollowerReadsUnappliedHost, WritesAnsweredTwiceHost, LateHardStateStorage, LeaseNoFreshTtlHost, RangeReadsLocalHost, SendsBeforePersistHost, SendsBeforeSyncHost, SplitTxnHost } from './host-bugs.ts';
import { Invariants } from './invariants.ts';
import { AppCheck } from './app-check.ts';
import { checkAppHistory } from './app-history.ts';
import { checkRangeReads } from './range-check.ts';
import { checkLeaseExpiries } from './lease-check.ts';
import { checkLinearizable } from './linearizability.ts';
import { SimNetwork } from './network.ts';
import { checkSimStart, newSimRecord, noteSimStarted } from './operator.ts';
import type { SimOptions } from './options.ts';
import { CrashSignal, isCrash, SimNode } from './sim-node.ts';
import { SimSyncAgent } from './sim-sync.ts';
import { faultCount, newSimStats, type SimStats } from './stats.ts';
import { CLUSTER_WIDE, TraceRecorder, type TraceOptions } from './trace-recorder.ts';
import { Workload, type WorkloadHost } from './workload.ts';

export { FAULT_KINDS, defaultSimOptions, type FaultKind, type HostBugs, type OperatorBugs, type SimOptions, type SimOverrides } from './options.ts';
export type { SimStats } from './stats.ts';
export type { SimTraceEvent, TraceOptions, TraceRecord, TraceRecorder } from './trace-recorder.ts';

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
  /** The events recorded: the last ones of each node, and of all (see trace-recorder.ts). */
  readonly trace: TraceRecorder;
  /**
   * When the run failed: its last events before the violation, grouped by node, one a line
   * (`    [  1234 ms] n2 t5 becomes leader (won)`), under a heading line. Empty when it passed.
   */
  readonly lastEvents: readonly string[];
}

/** By the end, members must have caught up with what was committed this long before it, or still be catching up. */
const CONVERGE_MS = 300;
/** Entries the fault log of a run holds at most. */
const FAULT_LOG_ENTRIES_MAX = 32;
/** An async restore settles, and each chunk of an async snapshot comes, up to this long after it was asked for (drawn from the seed). */
const ASYNC_WORK_DELAY_MS_MAX = 50;
/** With deferred syncs, a sync lands up to this many milliseconds after it was asked for. */
const SYNC_DELAY_MS_MAX = 3;
/** Real time a run waits at most for a state machine's async work before it calls it a violation (a promise that never settles). */
const ASYNC_WORK_WAIT_MS_MAX = 30_000;

export class Simulation implements FaultHost, WorkloadHost {
  readonly options: SimOptions;
  readonly rand: Rand;
  private readonly queue = new EventQueue();
  readonly network: SimNetwork;
  readonly invariants = new Invariants();
  /** The cluster's own state machine and its checks, in runs with appCommands (app-check.ts). */
  readonly appCheck: AppCheck | undefined;
  /** Work of the state machines' that the run waits for before its next event (runAsync). */
  private readonly awaited: Promise<unknown>[] = [];
  /** Every committed entry some node applied, by index: the log the range check replays. */
  private readonly appliedEntries = new Map<number, Entry>();
  /** When each index was first applied, at any node (simulated ms). */
  private readonly appliedAt = new Map<number, number>();
  readonly nodes = new Map<number, SimNode>();
  private now = 0;
  private events = 0;
  readonly stats: SimStats = newSimStats();
  private readonly faultLog: string[] = [];
  /** The cluster's record, as the operator keeps it (see operator.ts): its members, which of them have run, and its first configuration. */
  readonly record: ClusterManifest;
  readonly recorder: TraceRecorder;
  private readonly faults: FaultInjector;
  private readonly workload: Workload;
  private commitToConverge = 0;
  private readonly commitBeforeEnd = new Map<number, number>();

  constructor(options: SimOptions, trace: TraceOptions = {}) {
    this.options = options;
    this.recorder = new TraceRecorder(this, trace);
    this.rand = new Rand(options.seed);
    this.network = new SimNetwork(this.rand.fork(), options.network);
    this.record = newSimRecord(options.seed, options.nodes);
    this.appCheck = (options.appCommands ?? 0) > 0 ? new AppCheck((what) => this.invariants.fail(what), options.stateMachine, options.hostBugs?.appNondeterministic === true, { awaitWork: (work) => this.awaited.push(work), later: (f) => this.later(f) }) : undefined;
    this.faults = new FaultInjector(this);
    this.workload = new Workload(this);
  }

  // ─── Running ─────────────────────────────────────────────────────────────────

  /**
   * Runs to the end, in this call. A run whose state machine restores or snapshots async
   * needs {@link runAsync}: here it ends with a violation that says so.
   */
  run(): SimResult {
    let violation: string | undefined;
    try {
      const steps = this.runToEnd();
      const first = steps.next();
      if (first.done !== true) {
        first.value.catch(() => undefined);
        fail('the state machine restored or took a snapshot async: run the simulation with runAsync()');
      }
      violation = first.value;
    } catch (error) {
      // The simulator itself failed outside an event (at the first start, or in the final
      // checks): a failure of the run too, reported with its events.
      violation = describeException(this.now, error);
    }
    return this.result(violation);
  }

  /**
   * Runs to the end, waiting after each event for the work of the state machines' that it
   * started (an async restore or snapshot) before the next: simulated time stands still
   * meanwhile, so a run replays the same whatever that work costs in real time.
   */
  async runAsync(): Promise<SimResult> {
    let violation: string | undefined;
    try {
      const steps = this.runToEnd();
      let step = steps.next();
      while (step.done !== true) step = steps.next(await settledWithin(step.value, this.options.asyncWorkWaitMs ?? ASYNC_WORK_WAIT_MS_MAX));
      violation = step.value;
    } catch (error) {
      violation = describeException(this.now, error);
    }
    return this.result(violation);
  }

  private result(found: string | undefined): SimResult {
    const o = this.options;
    let violation = found;
    if (violation !== undefined) {
      this.recorder.add({ kind: 'violation', node: CLUSTER_WIDE, what: firstLine(violation) });
      // A failing seed's report says which faults the run had.
      violation += `\n${describeFaults(this.stats, this.faultLog)}`;
    }
    const history = this.workload.history;
    return {
      seed: o.seed,
      nodes: o.nodes,
      ok: violation === undefined,
      violation,
      operations: history.length,
      operationsCompleted: history.filter((h) => h.return !== null).length,
      elections: this.invariants.leaderCount,
      faults: faultCount(this.stats),
      simulatedMs: this.now,
      events: this.events,
      stats: this.stats,
      faultLog: this.faultLog,
      history,
      trace: this.recorder,
      lastEvents: violation === undefined ? [] : this.recorder.formatReport(),
    };
  }

  /**
   * Starts the cluster and runs it to the end or to the first violation, then the final
   * checks: the violation, if any. It yields each promise the run must wait for, and takes its
   * value back.
   */
  private *runToEnd(): Generator<Promise<unknown>, string | undefined, unknown> {
    const o = this.options;
    const voters = this.record.bootstrapVoters;
    for (const id of voters) this.nodes.set(id, new SimNode(id, o.storage));
    for (const id of voters) {
      const refusal = this.startNode(id, voters);
      if (refusal !== undefined) fail(`node ${id} refused at the cluster's first start: ${refusal.message}`);
    }
    this.workload.start();
    if (o.faults.length > 0) this.faults.schedule();
    const end = o.durationMs + o.quiesceMs;
    this.at(o.durationMs, () => this.faults.beginQuiet());
    let writesDoneAtQuiet = 0;
    this.at(o.durationMs + 1, () => {
      writesDoneAtQuiet = this.workload.completedWrites();
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
        this.invariants.violation = describeException(this.now, error);
      }
      if (this.awaited.length > 0) {
        while (this.awaited.length > 0) yield this.awaited.shift()!;
        // And whatever that work set off, up to the next thing it waits for.
        yield new Promise((resolve) => setImmediate(resolve));
      }
    }
    let violation = this.invariants.violation;
    if (violation === undefined) violation = this.checkLiveness(writesDoneAtQuiet);
    if (violation === undefined && this.appCheck !== undefined) {
      const live = [...this.nodes].flatMap(([id, n]) => (n.host === undefined ? [] : [{ id, appliedIndex: n.host.appliedIndex }]));
      const end = this.appCheck.checkEnd(live);
      violation = end instanceof Promise ? ((yield end) as string | undefined) : end;
    }
    const model = o.stateMachine?.model;
    if (violation === undefined && model !== undefined) {
      try {
        const h = checkAppHistory(this.workload.appOps, model, o.stateMachine!.options);
        if (h.ok === false) violation = `state machine history: ${h.report}`;
        else if (h.ok === 'unknown') violation = `state machine history undecided: ${h.reason}`;
      } catch (error) {
        // The model threw, or the search ran out of stack: undecided, never a pass.
        violation = `state machine history undecided: ${(error as Error).message}`;
      }
    }
    if (violation === undefined && o.checkHistory !== false) {
      const lin = checkLinearizable(this.workload.history);
      if (lin.ok === false) violation = `linearizability: ${lin.report}`;
      else if (lin.ok === 'unknown') violation = `linearizability undecided for key ${lin.key}: ${lin.reason}`;
    }
    if (violation === undefined && o.checkHistory !== false) {
      const ranges = checkRangeReads(this.workload.ranges, this.workload.txns, this.workload.writeAcks, this.appliedEntries);
      this.stats.txnsChecked = ranges.txnsChecked ?? 0;
      this.stats.rangeReadsChecked = ranges.checked - this.stats.txnsChecked;
      if (ranges.violation !== undefined) violation = `range reads and transactions: ${ranges.violation}`;
    }
    if (violation === undefined && o.checkHistory !== false) {
      const leases = checkLeaseExpiries(this.workload.renewals, this.appliedEntries, this.appliedAt);
      this.stats.leaseRenewals = this.workload.renewals.length;
      this.stats.leasesExpired = leases.expired;
      this.stats.leaseRenewalsChecked = leases.checked;
      if (leases.violation !== undefined) violation = `leases: ${leases.violation}`;
    }
    return violation;
  }

  /** Notes a rare fault, or what came of one, in the fault log. */
  note(what: string): void {
    if (this.faultLog.length < FAULT_LOG_ENTRIES_MAX) this.faultLog.push(`${this.now} ms: ${what}`);
  }

  /** After the faults stop, the cluster must serve writes again and its members converge. */
  private checkLiveness(writesDoneAtQuiet: number): string | undefined {
    if (this.workload.completedWrites() <= writesDoneAtQuiet) {
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

  // ─── Nodes ───────────────────────────────────────────────────────────────────

  /**
   * Starts node `id` (which must be in `nodes`) as an operator does: the start guard first
   * (operator.ts), then the disk (recovered by the real WAL in 'wal' mode, from whatever the
   * crashes left), then the host. Returns the guard's refusal (STATE_LOST or
   * CONFIG_MISMATCH), if it refused: then nothing started. A corrupt log stops the node
   * for good.
   */
  startNode(id: number, initialVoters: readonly number[]): RingraftError | undefined {
    const node = this.nodes.get(id)!;
    const refusal = this.guardStart(node, initialVoters);
    if (refusal !== undefined) {
      this.recorder.add({ kind: 'start-refused', node: id, code: refusal.code, reason: refusal.message });
      return refusal;
    }
    node.incarnation++;
    if (node.fs !== undefined) {
      try {
        node.storage = node.openWal(this.options.hostBugs?.truncateCorruptLog === true, this.options.deferredSync ? () => this.syncAgentFor(node) : undefined, this.options.hostBugs?.refuseTornTail === true);
      } catch (error) {
        if (error instanceof RingraftError && error.code === ErrorCode.CORRUPT_LOG) {
          // Crashes alone (torn writes, unsynced directory changes undone) must leave a log
          // recovery opens: only a fault of the media may damage it.
          if (!node.mediaFaulted) fail(`node ${id} found its log corrupt on restart, and no fault of the media touched its disk: ${error.message}`);
          // A damaged log must never serve: the node stays down (an operator would replace it).
          node.stopped = true;
          this.stats.corruptLogStops++;
          this.note(`node ${id} found its log corrupt on restart: stays down`);
          this.recorder.add({ kind: 'stopped', node: id, why: 'corrupt-log' });
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
      trace: this.recorder.add,
    };
    node.lateStorage = this.options.hostBugs?.persistHardStateLate === true ? new LateHardStateStorage(node.storage) : undefined;
    node.forgetRequests();
    node.crashPoint = undefined;
    node.wasLeader = false;
    const bugs = this.options.hostBugs;
    const Host =
      bugs?.sendBeforePersist === true
        ? SendsBeforePersistHost
        : bugs?.sendBeforeSync === true
          ? SendsBeforeSyncHost
          : bugs?.rangeReadsLocal === true
            ? RangeReadsLocalHost
            : bugs?.splitTxn === true
              ? SplitTxnHost
              : bugs?.leaseNoFreshTtl === true
                ? LeaseNoFreshTtlHost
                : bugs?.followerReadsUnapplied === true
                  ? FollowerReadsUnappliedHost
                  : bugs?.answerWritesTwice === true
                    ? WritesAnsweredTwiceHost
                    : NodeHost;
    this.recorder.add({ kind: 'start', node: id, incarnation: node.incarnation, voters: initialVoters });
    node.pausedUntil = 0;
    node.ticksMissed = 0;
    node.host = new Host(
      {
        raft: config,
        storage: node.lateStorage ?? node.storage,
        node: this.options.node,
        ...(this.options.createNode === undefined ? {} : { createRaft: this.options.createNode }),
        ...(this.appCheck === undefined ? {} : { app: () => this.appCheck!.machine(id) }),
        // From the seed, so that a run repeats (drawn from nothing: the other draws stay as they were).
        keyHashSeed: [this.options.seed, id],
        hooks: this.hooksFor(node),
      },
      // The state machine's async work is awaited where it is made (app-check.ts: `later`), not here.
      // Puts that applied come through replyWrite, as on a node thread.
      {
        sendRaft: (m) => this.sendRaft(m),
        reply: (r) => this.workload.onHostReply(node, r),
        replyWrite: (requestId, result, index) => this.workload.onHostReply(node, { kind: 'write', requestId, result, index }),
        // The workload reads the value at once (its bytes are the store's only for the call).
        replyRead: (requestId, index, value) => this.workload.onHostReply(node, { kind: 'read', requestId, index, value }),
      },
    );
    node.lastApplied = node.host.appliedIndex;
    node.lastCommit = node.host.raft.log.committed;
    const incarnation = node.incarnation;
    const phase = this.rand.int(0, this.options.node.tickMs);
    const tick = (): void => {
      if (node.incarnation !== incarnation || node.host === undefined) return;
      if (this.time < node.pausedUntil) {
        node.ticksMissed++;
        this.at(this.options.node.tickMs, tick);
        return;
      }
      node.lateStorage?.flushLate();
      if (!this.catchUp(node)) return;
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

  /**
   * A node that was paused takes the ticks it missed, all at once, before any input: time
   * first, as the worker loop does (runtime/node-worker.ts), so that a leader sees its lease
   * run out before it answers a lease read that waited meanwhile.
   */
  catchUp(node: SimNode): node is SimNode & { host: NodeHost } {
    // Work of the state machine's that settled meanwhile is finished first (a restore: the
    // rest of its Ready), and may reach a crash point: then there is no host to go on with.
    if (node.host?.hasSettledWork === true) this.drain(node);
    for (; node.ticksMissed > 0 && node.host !== undefined; node.ticksMissed--) node.host.tick();
    return node.host !== undefined;
  }

  /**
   * `f()`, called at an event a time drawn from the seed from now; the run waits for what it
   * returns before its next event. How the work of a state machine's that is async takes
   * simulated time: an async snapshot's chunks are read one at a time while the node applies
   * on, and an async restore settles at a later event, the node meanwhile dropping what it is
   * sent and refusing requests (node-host.ts).
   */
  later<T>(f: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.at(this.rand.int(1, ASYNC_WORK_DELAY_MS_MAX + 1), () => {
        const work = f();
        work.then(resolve, reject);
        this.awaited.push(work.catch(() => undefined));
      });
    });
  }

  /** Delivers a Raft message (after its network delay) to a node, if it is up. */
  private deliver(m: Message): void {
    const node = this.nodes.get(m.to);
    if (node === undefined || node.host === undefined) return;
    if (!this.runsNow(node, () => this.deliver(m))) return;
    if (!this.catchUp(node)) return;
    node.host.step(m);
    this.drain(node);
  }

  /**
   * The sync agent of the incarnation of `node` about to start: each sync lands at an event a
   * few milliseconds on, and the node then finishes the Readys that waited for it (after a
   * pause, if it is paused, as with a message). A crash planted at the sync crashes the node.
   */
  private syncAgentFor(node: SimNode): SimSyncAgent {
    const incarnation = node.incarnation;
    const finish = (): void => {
      if (node.incarnation !== incarnation || node.host === undefined) return;
      if (this.runsNow(node, finish) && this.catchUp(node)) this.drain(node);
    };
    const synced = (): void => {
      this.stats.syncsDeferred++;
      finish();
    };
    return new SimSyncAgent(
      node.fs!,
      (run) => this.at(this.rand.int(0, SYNC_DELAY_MS_MAX + 1), run),
      synced,
      (error) => {
        if (node.incarnation !== incarnation || node.host === undefined) return;
        this.crashed(node, error);
      },
    );
  }

  /** Whether `node` may act now: not while it is paused, and then `again` runs when the pause ends. */
  private runsNow(node: SimNode, again: () => void): boolean {
    if (this.time >= node.pausedUntil) return true;
    this.at(node.pausedUntil - this.time, again);
    return false;
  }

  /** The host loop: the node's NodeHost handles every Ready; a crash point stops it mid-way. */
  drain(node: SimNode): void {
    const host = node.host;
    if (host === undefined) return;
    try {
      host.processReady(this.options.leaderSendsEarly);
    } catch (error) {
      this.crashed(node, error);
    }
  }

  /** `node` threw `error` in its host loop: a planted crash takes it down (and it restarts soon); anything else is a bug. */
  private crashed(node: SimNode, error: unknown): void {
    if (!isCrash(error)) throw error;
    if (node.fs !== undefined) {
      node.fs.crashAtNextSync = false;
      node.fs.crashAtNextSyncDir = false;
    }
    this.faults.crashAndRestartSoon(node.id);
  }

  /**
   * The simulator's view of the Ready cycle (see HostHooks): it checks invariants at each
   * step and crashes the node at the chosen crash point by throwing from the hook.
   */
  private hooksFor(node: SimNode): HostHooks {
    return {
      beforePersist: (rd) => {
        // Log Matching is checked as the entries are written, against the log they are
        // written after: with deferred syncs a later Ready may replace that log before this
        // one is durable.
        this.checkPersisted(node, rd);
        node.crashPoint = this.faults.crashPointReached(node.id, rd);
        if (node.crashPoint !== 'mid-write') return;
        // Crash while the Ready is being written: a prefix of its entries reaches the disk
        // (a torn write is cut back to whole records on recovery), the hard state does not,
        // and nothing that had to wait for the write has left.
        if (node.fs !== undefined) {
          if (this.rand.chance(0.25)) {
            // Or at the node's next directory sync, whenever it comes: between the steps of
            // a change of several files (a segment created, a snapshot installed, segments
            // deleted), some of which a crash may undo.
            this.stats.dirSyncCrashes++;
            node.fs.crashAtNextSyncDir = true;
            return;
          }
          // The real WAL writes the batch; the crash comes before its sync and tears it.
          this.stats.tornWrites++;
          node.fs.crashAtNextSync = true;
          return;
        }
        this.stats.tornWrites++;
        node.storage.append(rd.entries.slice(0, this.rand.int(0, rd.entries.length + 1)));
        throw new CrashSignal();
      },
      afterPersist: () => {
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

  /** Log Matching as entries are written (each after the one before it in the Ready, the first after what the log holds). */
  private checkPersisted(node: SimNode, rd: Ready): void {
    let prev: Entry | undefined;
    for (const e of rd.entries) {
      let prevTerm: number | undefined;
      if (prev !== undefined) prevTerm = prev.term;
      else {
        try {
          prevTerm = node.storage.term(e.index - 1);
        } catch {
          prevTerm = undefined;
        }
      }
      this.invariants.onPersist(node.id, e, prevTerm);
      prev = e;
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
      // The same at every node (State Machine Safety, just checked): the first one seen serves the range check.
      if (!this.appliedEntries.has(e.index)) {
        this.appliedEntries.set(e.index, e);
        this.appliedAt.set(e.index, this.time);
      }
      node.lastApplied = e.index;
      if (e.type === EntryType.ConfChange) this.stats.confChangesApplied++;
    }
    const raft = node.host?.raft;
    if (raft !== undefined && (rd.snapshot !== undefined || rd.committedEntries.length > 0)) this.invariants.onConf(node.id, node.lastApplied, raft.conf);
  }

  /** State Machine Safety on commit, and the commit index never going back. */
  private checkNode(node: SimNode, raft: RaftNode): void {
    const inv = this.invariants;
    const commit = raft.log.committed;
    inv.onMonotonic(node.id, 'commit', node.lastCommit, commit);
    for (let i = Math.max(node.lastCommit + 1, raft.log.firstIndex()); i <= commit; i++) {
      inv.onCommit(node.id, i, raft.log.term(i), raft.term);
    }
    node.lastCommit = Math.max(node.lastCommit, commit);
  }

  private sendRaft(m: Message): void {
    for (const d of this.network.delays(m.from, m.to)) this.at(d, () => this.deliver(m));
  }

  // ─── The cluster as the operator sees it ─────────────────────────────────────────

  /** The members of the cluster as far as known: the leader's configuration, else any live node's, else every node. */
  members(): number[] {
    const leader = this.leader();
    const conf = leader?.raft?.conf ?? this.anyAlive()?.raft?.conf;
    // A node that just restarted or joined knows no configuration until it replays the log.
    if (conf === undefined || conf.voters.length === 0) return [...this.nodes.keys()];
    return [...new Set([...conf.voters, ...conf.votersOutgoing, ...conf.learners, ...conf.learnersNext])];
  }

  /** The leader of the highest term among the live nodes, if any. */
  leader(): SimNode | undefined {
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
}

/** Runs the simulation `options` describe; `trace` bounds what it records of its events, or watches them live. */
export function runSimulation(options: SimOptions, trace: TraceOptions = {}): SimResult {
  return new Simulation(options, trace).run();
}

/** `work`'s value once it settles; throws (a violation of the run) if it does not within `ms` of real time. */
async function settledWithin<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the state machine's async work (a restore or a snapshot) did not settle within ${ms} ms of real time`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

function describeException(nowMs: number, error: unknown): string {
  return `exception at ${nowMs} ms: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return i < 0 ? s : s.slice(0, i);
}
