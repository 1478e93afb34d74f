/**
 * Control calls from the main thread to a node's thread: a request posted on the node's
 * control port (runtime/worker-protocol.ts), the control word bumped and the node's doorbell
 * rung so that a node asleep in `Atomics.wait` reads it, and the reply matched to its call
 * by `callId` when the worker posts it back. A call fails with TIMEOUT after
 * {@link CONTROL_TIMEOUT_MS}, with NODE_DOWN at once when its node goes down, and with the
 * node's own code when the node refuses.
 *
 * Control messages are rare (status, membership, partitions, close): the hot path is the
 * rings, never this.
 */
import type { MessagePort } from 'node:worker_threads';
import { ErrorCode, fail, parseErrorCode, RingraftError } from '../base/index.ts';
import { signalControl, type ControlReply, type ControlRequest, type NodeStatus } from '../runtime/index.ts';
import { Doorbell } from '../transport/index.ts';

/** Time a control call (status, membership) waits for a node's answer. */
export const CONTROL_TIMEOUT_MS = 2_000;

/** What a control call needs of a node. */
export interface ControlTarget {
  readonly id: number;
  readonly alive: boolean;
  /** The main thread's end of the node's control port; undefined while no thread runs. */
  readonly port: MessagePort | undefined;
  readonly controlWord: Int32Array;
  readonly doorbell: SharedArrayBuffer;
}

/** A reply to a call: what a worker posts with a `callId`. */
export type CallReply = Extract<ControlReply, { readonly callId: number }>;

interface PendingCall {
  readonly nodeId: number;
  readonly resolve: (reply: CallReply) => void;
  readonly reject: (error: RingraftError) => void;
}

export class ControlChannel {
  private readonly calls = new Map<number, PendingCall>();
  private callIdNext = 1;

  constructor(
    /** The node a call goes to; throws (INVALID_ARGUMENT) for an id that names none. */
    private readonly targetOf: (id: number) => ControlTarget,
  ) {}

  /** Posts `req` to `target` and wakes it; no answer is awaited. */
  post(target: ControlTarget, req: ControlRequest): void {
    target.port!.postMessage(req);
    signalControl(target.controlWord);
    new Doorbell(target.doorbell).ring();
  }

  /** Sends `req` to node `id` (its callId is set here) and resolves with the node's reply. */
  call(id: number, req: ControlRequest): Promise<ControlReply & { type: 'reply' }> {
    const target = this.targetOf(id);
    if (!target.alive || target.port === undefined) return Promise.reject(new RingraftError(ErrorCode.NODE_DOWN, `node ${id} is down`));
    const callId = this.callIdNext++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.calls.delete(callId);
        reject(new RingraftError(ErrorCode.TIMEOUT, `node ${id} did not answer ${req.type}`));
      }, CONTROL_TIMEOUT_MS);
      this.calls.set(callId, {
        nodeId: id,
        resolve: (reply) => {
          clearTimeout(timer);
          if (reply.type === 'reply') resolve(reply);
          else reject(new RingraftError(checkedCode(reply.code), reply.message));
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.post(target, { ...req, callId } as ControlRequest);
    });
  }

  /** Node `id`'s status, from its thread. */
  async status(id: number): Promise<NodeStatus> {
    const reply = await this.call(id, { type: 'status', callId: 0 });
    return reply.status!;
  }

  /** Settles the call `reply` answers (a call that timed out meanwhile is forgotten). */
  settle(reply: CallReply): void {
    const call = this.calls.get(reply.callId);
    if (call === undefined) return;
    this.calls.delete(reply.callId);
    call.resolve(reply);
  }

  /** Fails every call waiting on node `nodeId` with NODE_DOWN: it went down, so callers retry elsewhere at once. */
  failCalls(nodeId: number): void {
    for (const [callId, call] of this.calls) {
      if (call.nodeId !== nodeId) continue;
      this.calls.delete(callId);
      call.reject(new RingraftError(ErrorCode.NODE_DOWN, `node ${nodeId} went down`));
    }
  }
}

/** A code that crossed from a node's thread, checked against the one list (never cast). */
function checkedCode(code: string): ErrorCode {
  const checked = parseErrorCode(code);
  if (checked === undefined) fail(`a node answered with the unknown error code ${JSON.stringify(code)}`);
  return checked;
}
