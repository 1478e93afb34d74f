/**
 * What the main thread and a node's worker say to each other outside the rings: the set-up
 * data a worker starts with, and the control messages (rare, not on the hot path) that go
 * through a MessagePort the worker reads synchronously with `receiveMessageOnPort` when its
 * control word changes, so a worker sleeping in `Atomics.wait` still hears them.
 */

import type { MessagePort } from 'node:worker_threads';
import type { ConfChange, RaftSettings, TraceEvent } from '../core/index.ts';
import type { RecoveryReport } from '../storage/index.ts';
import type { NodeSettings } from './settings.ts';
import type { LatencySnapshot } from './latency.ts';
import type { NodeStatus } from './node-host.ts';

/** The node thread's latency histograms: each Ready's write (writev and fdatasync) and its apply. */
export interface NodeTimings {
  readonly persist: LatencySnapshot;
  readonly apply: LatencySnapshot;
}

/** What a node's thread runs with: every setting resolved, and its own directory. */
export interface WorkerSettings {
  readonly raft: RaftSettings;
  readonly node: NodeSettings;
  /** A directory for this node's WAL; undefined: logs in memory. */
  readonly dataDir: string | undefined;
}

/** Rings between this node and one peer, and the doorbell the peer sleeps on. */
export interface PeerLink {
  readonly id: number;
  /** Frames from the peer to this node. */
  readonly inRing: SharedArrayBuffer;
  /** Frames from this node to the peer. */
  readonly outRing: SharedArrayBuffer;
  readonly peerDoorbell: SharedArrayBuffer;
}

/** The rings between this node and one client thread (index 0: the cluster's own thread). */
export interface ClientLinkData {
  readonly index: number;
  /** Requests from the client, and replies to it. */
  readonly requestRing: SharedArrayBuffer;
  readonly replyRing: SharedArrayBuffer;
  /** The doorbell the client sleeps on for replies. */
  readonly clientDoorbell: SharedArrayBuffer;
}

export interface NodeWorkerData {
  readonly id: number;
  /** Voters to bootstrap a brand-new cluster with; empty for a node joining one. */
  readonly voters: readonly number[];
  readonly seed: number;
  readonly settings: WorkerSettings;
  readonly doorbell: SharedArrayBuffer;
  readonly peers: readonly PeerLink[];
  /** Client threads, by link index. */
  readonly clients: readonly ClientLinkData[];
  /** Peers cut off by a partition in force when the node starts. */
  readonly cut: readonly number[];
  /** Int32 word 0 counts control messages sent; the worker reads the port when it moves. */
  readonly controlWord: SharedArrayBuffer;
  readonly controlPort: MessagePort;
  /** A server's node only (a cluster's thread gets it in NodeThreadData): the cluster's own state machine. */
  readonly stateMachine?: StateMachineSpec | undefined;
}

/**
 * What a thread that hosts nodes starts with (the cluster's; a server's thread starts with
 * its one node's {@link NodeWorkerData} instead): the doorbell every ring into its nodes
 * rings, and its own control port, read when its word moves.
 */
export interface NodeThreadData {
  readonly doorbell: SharedArrayBuffer;
  /** The cluster's own state machine: the module the thread imports (a URL's href) and the options its default export is called with, once per node. */
  readonly stateMachine?: StateMachineSpec | undefined;
  /** Int32 word 0 counts thread messages sent. */
  readonly controlWord: SharedArrayBuffer;
  readonly controlPort: MessagePort;
}

/** Where a cluster's own state machine comes from: a module's href, and what its factory is given. */
export interface StateMachineSpec {
  readonly module: string;
  readonly options: unknown;
}

/** The thread's own control messages (a node's go to the node's port). */
export type ThreadRequest =
  /** Start a node on this thread (its `doorbell` is the thread's; its control port is transferred). */
  | { readonly type: 'host'; readonly node: NodeWorkerData }
  /** Drop node `id` as a crash would: nothing more written or sent. Answered by 'left'. */
  | { readonly type: 'crash'; readonly id: number }
  /** Close every node and end the thread. */
  | { readonly type: 'exit' };

export type ControlRequest =
  | { readonly type: 'status'; readonly callId: number }
  | { readonly type: 'transfer-leadership'; readonly callId: number; readonly target: number }
  | { readonly type: 'conf-change'; readonly callId: number; readonly change: ConfChange }
  /** Drop every Raft message to and from these peers until the next partition message. */
  | { readonly type: 'partition'; readonly callId: number; readonly cut: readonly number[] }
  | { readonly type: 'add-peer'; readonly callId: number; readonly link: PeerLink }
  | { readonly type: 'add-client'; readonly callId: number; readonly link: ClientLinkData }
  /** Close the node (its log closed; the thread goes on with its other nodes). */
  | { readonly type: 'close'; readonly callId: number }
  /**
   * Sent once, in answer to 'started': the node runs Raft only from then on. Its starter
   * records that the node has run (its state must not be lost from now on) in between, so
   * no vote or acknowledgement can leave before that record is durable.
   */
  | { readonly type: 'run'; readonly callId: number };

/**
 * A diagnostics message published in a node's thread, for the main thread to publish again
 * on its own channel of the same name (a diagnostics channel is per thread; see
 * diagnostics.ts). Posted whether or not anyone listens on the main thread: the messages are
 * rare, and the main thread cannot tell its workers when a subscriber comes.
 */
export type ForwardedDiagnostic =
  | { readonly type: 'diagnostic'; readonly channel: 'ringraft:raft'; readonly message: TraceEvent }
  | { readonly type: 'diagnostic'; readonly channel: 'ringraft:wal:recovery'; readonly message: RecoveryReport & { readonly dir: string } };

/** What a worker posts to the main thread: replies to control calls, 'started', and diagnostics. */
export type ControlReply =
  | { readonly type: 'reply'; readonly callId: number; readonly status?: NodeStatus; readonly timings?: NodeTimings; readonly index?: number }
  | { readonly type: 'error'; readonly callId: number; readonly code: string; readonly message: string }
  /** `osThreadId`: the thread's id in the kernel (Linux: /proc/PID/task/TID), undefined where unknown. */
  | { readonly type: 'started'; readonly id: number; readonly osThreadId: number | undefined }
  /**
   * Node `id` left its thread: it closed, was crashed, or, with `error`, failed to start or
   * died of it; the thread's other nodes go on. A cluster's thread says so for each node, one
   * node alone included; a server's thread (started with one node's data) ends instead.
   */
  | { readonly type: 'left'; readonly id: number; readonly error?: PlainError }
  | ForwardedDiagnostic;

/**
 * An error as it crosses threads in a message: what the main thread needs to type a node's
 * failure (cluster/node-failure.ts reads `code` along the `cause` chain). A structured clone
 * of an Error would drop `code`.
 */
export interface PlainError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly stack?: string;
  readonly cause?: PlainError;
}

/** `error` as a {@link PlainError}, its cause chain followed a few links deep. */
export function plainError(error: unknown, depth = 0): PlainError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const code = (error as { code?: unknown }).code;
  const cause = (error as { cause?: unknown }).cause;
  return {
    name: error.name,
    message: error.message,
    ...(typeof code === 'string' ? { code } : {}),
    ...(error.stack === undefined ? {} : { stack: error.stack }),
    ...(cause === undefined || depth >= 4 ? {} : { cause: plainError(cause, depth + 1) }),
  };
}

/**
 * Wakes the worker for a control message posted on its port: its loop sees the word move (it
 * sleeps on its doorbell, which the caller rings too), and a worker waiting for 'run' sleeps
 * on the word itself, so the word is notified as well.
 */
export function signalControl(controlWord: Int32Array): void {
  Atomics.add(controlWord, 0, 1);
  Atomics.notify(controlWord, 0);
}
