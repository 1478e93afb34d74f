/**
 * The lifecycle of a cluster's nodes and the worker threads that host them: starting a node
 * (its directory checked first), the handshake (the node opens its storage and says
 * 'started', the record notes it has run, then it is told to run), marking it down when it
 * dies or is stopped, restarting it, by request or by itself with back-off after a full
 * disk, and stopping them all.
 *
 * Nodes are spread over at most `nodeThreads` threads in turn (node k of the cluster, in the
 * order made, on thread k mod nodeThreads), so a machine with fewer cores than nodes does not
 * run more busy threads than it has cores. Each node has a {@link NodeSlot} for the life of
 * the cluster and always lives on the same {@link NodeThreadHandle}, whose worker is started
 * when a node of it first needs one and again after it died. A crash of a node that has its
 * thread to itself terminates the thread; one that shares it is dropped by the thread between
 * two turns, as its process would be (nothing more written or sent), and the others go on.
 *
 * What the workers post comes back here: 'started' and 'left' (a node closed, was crashed or
 * failed), replies to control calls (handed to the {@link ControlChannel}) and diagnostics
 * (published again on this thread's channels). Node lifecycle events go out on
 * `ringraft:node` (runtime/diagnostics.ts).
 */
import { performance } from 'node:perf_hooks';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { ErrorCode, fail, invalidArgument, RingraftError } from '../base/index.ts';
import {
  NODE_WORKER_URL,
  publishForwarded,
  publishNodeEvent,
  signalControl,
  type ControlReply,
  type NodeThreadData,
  type NodeWorkerData,
  type PlainError,
  type ThreadRequest,
  type WorkerSettings,
} from '../runtime/index.ts';
import { Doorbell } from '../transport/index.ts';
import type { ControlChannel, ControlTarget } from './control-channel.ts';
import { CONTROL_TIMEOUT_MS } from './control-channel.ts';
import type { DataDirectory } from './data-directory.ts';
import type { ClientEndpoint } from './endpoint.ts';
import { isTransientFailure, nodeFailure } from './node-failure.ts';
import { type ResolvedOptions } from './options.ts';
import type { RingWiring } from './ring-wiring.ts';

/** Milliseconds before the first restart of a node that died of a passing storage failure; doubled each time, up to the max. */
const RECOVERY_DELAY_MS_MIN = 250;
const RECOVERY_DELAY_MS_MAX = 10_000;

/** A worker thread that hosts nodes, as this thread sees it; it outlives its workers. */
interface NodeThreadHandle {
  readonly index: number;
  /** The doorbell its nodes sleep on: every ring into any of them rings it. */
  readonly doorbell: SharedArrayBuffer;
  readonly controlWord: Int32Array;
  /**
   * The worker that runs it now; undefined while none does. A worker being terminated (or
   * that failed) is detached at once, so a start made meanwhile gets a new worker rather than
   * the dying one.
   */
  run: WorkerRun | undefined;
}

/** One worker of a thread, from its start to its exit. */
interface WorkerRun {
  readonly worker: Worker;
  /** This side of the worker's own control port. */
  readonly port: MessagePort;
  /** Resolves when the worker has exited. */
  readonly exited: Promise<void>;
  /** The nodes on this worker: told to start (and not yet 'started'), or running. */
  readonly nodes: Map<number, HostedNode>;
  /** Set when the worker is terminated to crash one of its nodes: the others are down by no choice of theirs, and start again. */
  collateralOf: number | undefined;
}

/** A node on a thread: whether it said 'started', and its start's settlement until then. */
interface HostedNode {
  started: boolean;
  readonly beforeRun: () => void;
  readonly resolve: () => void;
  readonly reject: (error: RingraftError) => void;
}

export interface NodeSlot extends ControlTarget {
  readonly controlWordBuffer: SharedArrayBuffer;
  /** The thread that hosts the node, always the same one. */
  readonly thread: NodeThreadHandle;
  port: MessagePort | undefined;
  /** Resolves when the node has left its thread (closed, crashed, failed, or the thread exited). */
  exited: Promise<void> | undefined;
  /** Resolves {@link exited}. */
  leave: (() => void) | undefined;
  alive: boolean;
  /** Taken out of the cluster by removeNode: never restarted. */
  removed: boolean;
  /** Why the node is down, if it did not stop by request: it died, or could not start. */
  failure: RingraftError | undefined;
  /** A restart scheduled after a storage failure that may pass (a full disk). */
  recovery: { timer: NodeJS.Timeout } | undefined;
  /** The delay of the last automatic restart: doubled at each failed try. */
  recoveryDelayMs: number;
  /** When the current thread reported started (performance.now()); undefined until a thread first did. */
  startedAt: number | undefined;
  /** A restart under way: a second restart, a crash or close waits for it. */
  starting: Promise<void> | undefined;
  /** The kernel's id of the thread that runs the node now (see ClusterNodeStatus.osThreadId). */
  osThreadId: number | undefined;
}

/** What the lifecycle needs of the rest of the cluster. */
export interface NodeWorkersContext {
  readonly options: ResolvedOptions;
  readonly wiring: RingWiring;
  readonly control: ControlChannel;
  readonly endpoint: ClientEndpoint;
  /** The data directory, with a dataDir. */
  readonly dataDir: DataDirectory | undefined;
  /** Whether the cluster is closed: then nothing starts. */
  isClosed(): boolean;
  /** The peers node `id` must not hear from: the partition in force when it starts. */
  cutOf(id: number): readonly number[];
}

export class NodeWorkers {
  /** Every node the cluster ever had, by id (removed ones too, marked). */
  readonly slots = new Map<number, NodeSlot>();
  /** The slot {@link isAlive} found last. */
  private lastSlot: NodeSlot | undefined;
  /** The threads that host the nodes, at most `nodeThreads`. */
  private readonly threads: NodeThreadHandle[] = [];
  private seedNext: number;
  /** Workers do not hold the process open (see Cluster.unref). */
  private unrefed = false;

  constructor(private readonly cx: NodeWorkersContext) {
    this.seedNext = cx.options.seed;
  }

  /** Node ids of the cluster (alive or not, not removed). */
  nodeIds(): number[] {
    return [...this.slots.values()].filter((s) => !s.removed).map((s) => s.id);
  }

  isAlive(id: number): boolean {
    // Asked for every call a client makes, mostly of one node (the leader): the last slot
    // found is kept (slots are added, never replaced or taken out).
    let s = this.lastSlot;
    if (s?.id !== id) {
      s = this.slots.get(id);
      if (s === undefined) return false;
      this.lastSlot = s;
    }
    return s.alive && !s.removed;
  }

  /** Node `id`'s slot; INVALID_ARGUMENT for an id that is not a node of the cluster. */
  slotOf(id: number): NodeSlot {
    if (!(typeof id === 'number' && Number.isSafeInteger(id) && id >= 1)) throw invalidArgument(`a node id is a positive integer, got ${describe(id)}`);
    const slot = this.slots.get(id);
    if (slot === undefined || slot.removed) throw invalidArgument(`no node ${id} in the cluster`);
    return slot;
  }

  /** Makes node `id`'s slot and its rings with every other node and client thread; the node is down until started. */
  makeSlot(id: number): NodeSlot {
    if (this.slots.has(id)) fail(`node ${id} has a slot already`);
    const thread = this.threadFor(this.slots.size);
    this.cx.wiring.addNode(id, this.nodeIds(), thread.doorbell);
    const controlWordBuffer = new SharedArrayBuffer(4);
    const slot: NodeSlot = {
      id,
      doorbell: thread.doorbell,
      controlWordBuffer,
      controlWord: new Int32Array(controlWordBuffer),
      thread,
      port: undefined,
      exited: undefined,
      leave: undefined,
      alive: false,
      removed: false,
      failure: undefined,
      recovery: undefined,
      recoveryDelayMs: RECOVERY_DELAY_MS_MIN / 2,
      startedAt: undefined,
      osThreadId: undefined,
      starting: undefined,
    };
    this.slots.set(id, slot);
    return slot;
  }

  /**
   * Starts node `id`'s thread. With a dataDir its directory is checked against the cluster's
   * record first, and the node bootstraps with the cluster's first configuration only if it
   * is an original member that has never run; without one, `initialVoters` bootstrap it.
   * On failure the node is down with its typed reason in `slot.failure`. `restart` says how
   * the node came back, for the `ringraft:node` event.
   */
  async startNode(id: number, initialVoters: readonly number[], restart?: { readonly automatic: boolean }): Promise<void> {
    const slot = this.slots.get(id)!;
    const dataDir = this.cx.dataDir;
    try {
      let voters = initialVoters;
      if (dataDir !== undefined) {
        try {
          voters = dataDir.checkNode(id);
        } catch (error) {
          slot.failure = nodeFailure(id, error);
          throw slot.failure;
        }
      }
      // Recorded before the node runs Raft (it waits for 'run'): from now on its directory
      // must hold its log, and losing it is STATE_LOST, not a new node.
      await this.startWorker(id, voters, () => dataDir?.noteRunning(id));
    } catch (error) {
      const failure = error instanceof RingraftError ? error : nodeFailure(id, error);
      if (failure.code !== ErrorCode.CLOSED) publishNodeEvent({ kind: 'start-failed', node: id, code: failure.code, message: failure.message });
      throw error;
    }
    publishNodeEvent(restart === undefined ? { kind: 'started', node: id } : { kind: 'restarted', node: id, automatic: restart.automatic });
  }

  /** Starts a down node again (one start at a time; a start under way is joined). */
  async restartNode(slot: NodeSlot, automatic: boolean): Promise<void> {
    if (slot.starting !== undefined) return slot.starting;
    if (slot.alive) return;
    const starting = (async () => {
      await slot.exited;
      // close() may have come meanwhile: then nothing starts.
      if (this.cx.isClosed()) throw new RingraftError(ErrorCode.CLOSED, 'the cluster is closed');
      await this.startNode(slot.id, [], { automatic });
    })();
    slot.starting = starting;
    try {
      await starting;
    } finally {
      slot.starting = undefined;
    }
  }

  /**
   * Starts node `id` on its thread (the thread's worker first, if none runs). The node opens
   * its storage, says 'started' and waits: `beforeRun` runs (a failure of it is the node's)
   * and then the node is told to run, or to close if the cluster closed meanwhile.
   */
  startWorker(id: number, voters: readonly number[], beforeRun: () => void): Promise<void> {
    // Nothing starts on a closing cluster: its threads are being told to exit.
    if (this.cx.isClosed()) return Promise.reject(new RingraftError(ErrorCode.CLOSED, 'the cluster is closed'));
    const slot = this.slots.get(id)!;
    const thread = slot.thread;
    const run = thread.run ?? this.startThread(thread);
    const { port1, port2 } = new MessageChannel();
    const data: NodeWorkerData = {
      id,
      voters,
      seed: this.nextSeed(),
      settings: this.settingsFor(id),
      doorbell: thread.doorbell,
      peers: this.nodeIds()
        .filter((p) => p !== id)
        .map((p) => this.cx.wiring.peerLink(id, p)),
      clients: this.cx.wiring.clientLinksOf(id),
      // A node that restarts during a partition starts inside it.
      cut: this.cx.cutOf(id),
      controlWord: slot.controlWordBuffer,
      controlPort: port2,
    };
    slot.port = port1;
    slot.exited = new Promise<void>((resolve) => (slot.leave = resolve));
    return new Promise<void>((resolve, reject) => {
      run.nodes.set(id, { started: false, beforeRun, resolve, reject });
      this.postThread(thread, run, { type: 'host', node: data }, [port2]);
    });
  }

  /** Starts a worker for `thread`; what it posts is routed to its nodes' slots. */
  private startThread(thread: NodeThreadHandle): WorkerRun {
    const { port1, port2 } = new MessageChannel();
    const data: NodeThreadData = {
      doorbell: thread.doorbell,
      controlWord: thread.controlWord.buffer as SharedArrayBuffer,
      controlPort: port2,
      stateMachine: this.cx.options.stateMachine,
    };
    const worker = new Worker(NODE_WORKER_URL, { workerData: data, transferList: [port2] });
    if (this.unrefed) worker.unref();
    const run: WorkerRun = { worker, port: port1, exited: new Promise<void>((resolve) => worker.once('exit', () => resolve())), nodes: new Map(), collateralOf: undefined };
    thread.run = run;
    worker.on('message', (msg: ControlReply) => {
      switch (msg.type) {
        case 'started': {
          const hosted = run.nodes.get(msg.id);
          const slot = this.slots.get(msg.id);
          if (hosted === undefined || slot === undefined) return;
          hosted.started = true;
          slot.osThreadId = msg.osThreadId;
          this.handshake(slot, hosted.beforeRun, hosted.resolve, hosted.reject);
          return;
        }
        case 'left':
          this.nodeLeft(run, msg.id, msg.error);
          return;
        case 'diagnostic':
          publishForwarded(msg);
          return;
        default:
          this.cx.control.settle(msg);
      }
    });
    // What kills the thread kills every node on it: each is down with the thread's failure.
    worker.once('error', (error) => {
      this.detach(thread, run);
      for (const id of [...run.nodes.keys()]) this.nodeLeft(run, id, error);
    });
    worker.once('exit', (code) => {
      this.detach(thread, run);
      const collateral = [...run.nodes.keys()].filter((id) => run.nodes.get(id)!.started && run.collateralOf !== undefined);
      for (const id of [...run.nodes.keys()]) {
        const started = run.nodes.get(id)!.started;
        const error = !started
          ? new RingraftError(ErrorCode.NODE_DOWN, `node ${id} exited with code ${code} before it started`)
          : run.collateralOf !== undefined
            ? new RingraftError(ErrorCode.NODE_DOWN, `node ${id} went down with its thread, terminated to crash node ${run.collateralOf}, which the thread did not drop within ${CONTROL_TIMEOUT_MS} ms`)
            : undefined;
        this.nodeLeft(run, id, error);
      }
      // Down by no choice of theirs: they start again (after close(), restart refuses).
      for (const id of collateral) void this.restartNode(this.slots.get(id)!, true).catch(() => {});
    });
    return run;
  }

  /** Takes `run` off its thread (it is exiting): the next start on the thread gets a new worker. */
  private detach(thread: NodeThreadHandle, run: WorkerRun): void {
    if (thread.run !== run) return;
    thread.run = undefined;
    run.port.close();
  }

  /**
   * Node `id` left its worker `run`: it closed or was crashed (no error), or failed to start
   * or died of `error`. A start waiting on it fails; a running node is down, and one that died
   * of a passing storage failure is restarted later.
   */
  private nodeLeft(run: WorkerRun, id: number, error: PlainError | Error | undefined): void {
    const hosted = run.nodes.get(id);
    if (hosted === undefined) return;
    run.nodes.delete(id);
    const slot = this.slots.get(id)!;
    const failure = error === undefined ? undefined : nodeFailure(id, error);
    if (!hosted.started) {
      const reason = failure ?? new RingraftError(ErrorCode.NODE_DOWN, `node ${id} left its thread before it started`);
      if (slot.failure === undefined) slot.failure = reason;
      hosted.reject(reason);
    } else if (failure !== undefined) {
      this.markDown(slot, failure);
      this.scheduleRecovery(slot);
    } else if (slot.alive) {
      this.markDown(slot, undefined);
    }
    slot.leave?.();
  }

  /** Posts a message to a thread's worker `run` on its own port and wakes the thread. */
  private postThread(thread: NodeThreadHandle, run: WorkerRun, req: ThreadRequest, transfer: MessagePort[] = []): void {
    run.port.postMessage(req, transfer);
    signalControl(thread.controlWord);
    new Doorbell(thread.doorbell).ring();
  }

  /** The thread that hosts the `n`th node made (threads made as needed). */
  private threadFor(n: number): NodeThreadHandle {
    const index = n % this.cx.options.nodeThreads;
    let thread = this.threads[index];
    if (thread === undefined) {
      thread = { index, doorbell: Doorbell.create().buffer, controlWord: new Int32Array(new SharedArrayBuffer(4)), run: undefined };
      this.threads[index] = thread;
    }
    return thread;
  }

  /** The node said 'started': tells it to run (after `beforeRun`), or to close. */
  private handshake(slot: NodeSlot, beforeRun: () => void, resolve: () => void, reject: (error: RingraftError) => void): void {
    const control = this.cx.control;
    // Closed meanwhile (close() has marked every node down and closed its port): the thread,
    // told to exit, closes the node itself.
    if (this.cx.isClosed() || slot.port === undefined) {
      if (slot.port !== undefined) control.post(slot, { type: 'close', callId: 0 });
      reject(new RingraftError(ErrorCode.CLOSED, 'the cluster is closed'));
      return;
    }
    try {
      beforeRun();
    } catch (error) {
      const failure = nodeFailure(slot.id, error);
      control.post(slot, { type: 'close', callId: 0 });
      slot.failure = failure;
      reject(failure);
      return;
    }
    control.post(slot, { type: 'run', callId: 0 });
    slot.alive = true;
    // Up again: what it last died of is history (a failed start keeps it for status()).
    slot.failure = undefined;
    slot.startedAt = performance.now();
    this.cx.wiring.setAlive(slot.id, true);
    resolve();
  }

  /** Marks a node down and fails what waits on it, so callers retry elsewhere at once. */
  markDown(slot: NodeSlot, failure: RingraftError | undefined): void {
    const wasAlive = slot.alive;
    slot.alive = false;
    this.cx.wiring.setAlive(slot.id, false);
    if (failure !== undefined) slot.failure = failure;
    slot.port?.close();
    slot.port = undefined;
    this.cx.endpoint.nodeDown(slot.id);
    this.cx.control.failCalls(slot.id);
    if (wasAlive) publishNodeEvent(failure === undefined ? { kind: 'down', node: slot.id } : { kind: 'down', node: slot.id, code: failure.code, message: failure.message });
  }

  /**
   * Crashes a running node at once (what it had not synced is not written later) and waits
   * until it is gone: its thread is terminated if the node has it to itself; else the thread
   * drops it between two turns, and is terminated, with its other nodes, only if it does
   * not do so in time.
   */
  async terminate(slot: NodeSlot): Promise<void> {
    if (!slot.alive) return;
    const exited = slot.exited;
    const thread = slot.thread;
    const run = thread.run;
    this.markDown(slot, undefined);
    if (run === undefined) return;
    if (run.nodes.size <= 1) {
      this.detach(thread, run);
      await run.worker.terminate();
    } else {
      this.postThread(thread, run, { type: 'crash', id: slot.id });
      if ((await withinMs(exited!, CONTROL_TIMEOUT_MS)) === 'late') {
        run.collateralOf = slot.id;
        this.detach(thread, run);
        await run.worker.terminate();
      }
    }
    await exited;
  }

  /** Stops every node (each closes its log); a thread that does not stop in time (stuck in a long write) is terminated. */
  async closeAll(): Promise<void> {
    for (const slot of this.slots.values()) this.cancelRecovery(slot);
    // A restart under way finishes first (or fails on the closed cluster), then stops below.
    await Promise.all([...this.slots.values()].map((s) => s.starting?.catch(() => {})));
    const exits: Promise<void>[] = [];
    for (const thread of this.threads) {
      const run = thread?.run;
      if (run === undefined) continue;
      this.postThread(thread!, run, { type: 'exit' });
      exits.push(
        withinMs(run.exited, CONTROL_TIMEOUT_MS).then(async (r) => {
          if (r === 'late') await run.worker.terminate();
        }),
      );
    }
    await Promise.all(exits);
    for (const slot of this.slots.values()) this.markDown(slot, undefined);
  }

  /** Whether the workers hold the process open (see Cluster.unref). */
  setRef(ref: boolean): void {
    this.unrefed = !ref;
    for (const thread of this.threads) {
      if (ref) thread?.run?.worker.ref();
      else thread?.run?.worker.unref();
    }
  }

  // ─── Failures ───────────────────────────────────────────────────────────────────

  /**
   * A node that died of a storage failure that may pass (a full disk, a failed write) is
   * restarted by itself, with back-off, until it runs again, it is crashed, removed or the
   * cluster closes: freeing space is all a user has to do. Its reason stays in status()
   * meanwhile. Damage (CORRUPT_LOG), a lost state and a foreign directory do not pass.
   */
  scheduleRecovery(slot: NodeSlot): void {
    if (this.cx.isClosed() || slot.removed || this.cx.options.dataDir === undefined) return;
    if (slot.failure === undefined || !isTransientFailure(slot.failure)) return;
    if (slot.recovery !== undefined) clearTimeout(slot.recovery.timer);
    // The delay doubles with every failed try, and starts over once the node has stayed up.
    const upLongEnough = slot.startedAt !== undefined && performance.now() - slot.startedAt > 2 * RECOVERY_DELAY_MS_MAX;
    const delayMs = upLongEnough ? RECOVERY_DELAY_MS_MIN : Math.min(RECOVERY_DELAY_MS_MAX, slot.recoveryDelayMs * 2);
    slot.recoveryDelayMs = delayMs;
    const timer = setTimeout(() => {
      if (slot.recovery?.timer !== timer) return;
      slot.recovery = undefined;
      // A try that fails, before or after its thread starts, schedules the next one.
      this.restartNode(slot, true).catch(() => this.scheduleRecovery(slot));
    }, delayMs);
    // Recovery alone never keeps the process running.
    timer.unref();
    slot.recovery = { timer };
  }

  cancelRecovery(slot: NodeSlot): void {
    if (slot.recovery !== undefined) clearTimeout(slot.recovery.timer);
    slot.recovery = undefined;
    slot.recoveryDelayMs = RECOVERY_DELAY_MS_MIN / 2;
  }

  /** " (<code>: <reason>)" for a node down by no one's choice, else "". */
  downReason(id: number): string {
    const failure = this.slots.get(id)?.failure;
    return failure === undefined ? '' : ` (${failure.code}: ${failure.message})`;
  }

  /** "node 2 down (NO_SPACE: ...), ..." for the nodes down by no one's choice; '' if none. */
  downReasons(): string {
    const failed = this.nodeIds().filter((id) => !this.isAlive(id) && this.slots.get(id)?.failure !== undefined);
    return failed.map((id) => `node ${id} down${this.downReason(id)}`).join(', ');
  }

  /** A NO_QUORUM error that says which nodes are down and why. */
  noQuorum(what: string): RingraftError {
    const down = this.nodeIds().filter((id) => !this.isAlive(id));
    const detail = down.length === 0 ? '' : `; down: ${down.map((id) => `node ${id}${this.downReason(id)}`).join(', ')}`;
    return new RingraftError(ErrorCode.NO_QUORUM, `${what}${detail}`);
  }

  private settingsFor(id: number): WorkerSettings {
    const o = this.cx.options;
    return { raft: o.raft, node: o.node, dataDir: this.cx.dataDir?.nodeDir(id) };
  }

  private nextSeed(): number {
    this.seedNext = (Math.imul(this.seedNext ^ (this.seedNext >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    return this.seedNext;
  }
}

/** 'done' once `p` settles, or 'late' after `ms`, whichever comes first. */
async function withinMs(p: Promise<void>, ms: number): Promise<'done' | 'late'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  try {
    return await Promise.race([p.then(() => 'done' as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A value for an error message: its type and value. */
export function describe(value: unknown): string {
  return typeof value === 'string' ? `string '${value}'` : Array.isArray(value) ? `[${value.map(describe).join(', ')}]` : `${typeof value} ${String(value)}`;
}
