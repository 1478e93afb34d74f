/**
 * A user's own state machine, replicated beside the key-value store: its commands ride the
 * same log, in the same client sessions (so each is applied exactly once however often its
 * client retries), and its state rides the store's snapshots. The store keeps its own faster
 * path for its own commands (a plain put is applied in place from the log entry, with no
 * object made for it); a user's command costs a call and the bytes it returns.
 *
 * Determinism is the user's contract: every replica applies the same commands in the same
 * order and must end in the same state with the same results. So `apply` and `snapshot`
 * read nothing but the machine's own state and their arguments: no clock, no randomness, no
 * I/O, no iteration order that differs between runs. An `apply` that throws is answered with
 * its message on every replica alike (it should throw before it changes anything, or leave a
 * state every replica reaches the same way); its message should not depend on anything else
 * either, since a retried call may be answered by another replica's session.
 *
 * An outcome, as sessions keep it and replies carry it: one byte (0: the bytes `apply`
 * returned follow; 1: the UTF-8 message of what it threw follows), then the bytes.
 */
import { KvError, KvErrorCode } from './errors.ts';
import { KV_VALUE_BYTES_MAX } from './limits.ts';

/** What a user's state machine provides (see the module comment for the determinism rules). */
export interface StateMachine {
  /**
   * Applies the command at log `index`; returns its result (nothing: an empty result). Several
   * commands may share one log entry, and so one index (concurrent proposals are batched):
   * they apply in the entry's order, the same on every replica. The index is not an id.
   */
  apply(command: Uint8Array, index: number): Uint8Array | undefined | void;
  /** Reads the state (never changes it); returns the answer. */
  query(request: Uint8Array): Uint8Array | undefined | void;
  /** The whole state, as bytes or a sequence of byte chunks, deterministic: replicas in the same state give the same bytes. */
  snapshot(): Uint8Array | Iterable<Uint8Array>;
  /** Replaces the whole state with a snapshot's, given as the chunks `snapshot()` made (perhaps cut differently). */
  restore(chunks: Iterable<Uint8Array>): void;
}

/** Makes a state machine: a module's default export, called once per node with the cluster's `options`. */
export type StateMachineFactory = (options: unknown) => StateMachine;

/** Longest result an `apply` or `query` may return (its outcome, a byte more, is a value's size at most); longer is answered as an error. */
export const APP_RESULT_BYTES_MAX = KV_VALUE_BYTES_MAX - 1;
/** Longest error message kept from what an `apply` or `query` threw (UTF-8 bytes); the rest is cut. */
export const APP_ERROR_BYTES_MAX = 1024;
/** Longest snapshot of a user's state machine, in bytes. */
export const APP_SNAPSHOT_BYTES_MAX = 1 << 30;

const OUTCOME_OK = 0;
const OUTCOME_ERROR = 1;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** An outcome, decoded. */
export type AppOutcome = { readonly ok: true; readonly result: Uint8Array } | { readonly ok: false; readonly message: string };

/** Runs `f` (an apply or a query) and encodes its outcome: its bytes, or the message of what it threw or of what it returned wrong. */
export function runApp(f: () => Uint8Array | undefined | void): Uint8Array {
  let result: unknown;
  try {
    result = f();
  } catch (error) {
    return errorOutcome(describeThrown(error));
  }
  if (result === undefined) return new Uint8Array([OUTCOME_OK]);
  if (!(result instanceof Uint8Array)) return errorOutcome(`the state machine returned ${result === null ? 'null' : typeof result}, not a Uint8Array`);
  if (result.length > APP_RESULT_BYTES_MAX) return errorOutcome(`the state machine returned ${result.length} bytes, over APP_RESULT_BYTES_MAX (${APP_RESULT_BYTES_MAX})`);
  const out = new Uint8Array(1 + result.length);
  out[0] = OUTCOME_OK;
  out.set(result, 1);
  return out;
}

/**
 * What a state machine threw, as text: an Error's name and message, else the value as a
 * string. Whatever was thrown (an object whose getters or toString throw, one without a
 * prototype), this returns: a command must never take its node down with it.
 */
function describeThrown(error: unknown): string {
  try {
    if (error instanceof Error) return `${String(error.name)}: ${String(error.message)}`;
    return `thrown: ${String(error)}`;
  } catch {
    return 'thrown: a value that cannot be told as text';
  }
}

/** The outcome of a failure with `message` (cut to APP_ERROR_BYTES_MAX bytes of UTF-8). */
export function errorOutcome(message: string): Uint8Array {
  let bytes = utf8.encode(message);
  if (bytes.length > APP_ERROR_BYTES_MAX) bytes = utf8.encode(fromUtf8.decode(bytes.subarray(0, APP_ERROR_BYTES_MAX)).replace(/\uFFFD$/, ''));
  const out = new Uint8Array(1 + bytes.length);
  out[0] = OUTCOME_ERROR;
  out.set(bytes, 1);
  return out;
}

/** Decodes an outcome; undefined if it is not one. */
export function decodeAppOutcome(encoded: Uint8Array): AppOutcome | undefined {
  if (encoded.length === 0) return undefined;
  if (encoded[0] === OUTCOME_OK) return { ok: true, result: encoded.subarray(1) };
  if (encoded[0] === OUTCOME_ERROR) return { ok: false, message: fromUtf8.decode(encoded.subarray(1)) };
  return undefined;
}

/** The machine's snapshot as one array (its chunks joined); throws past APP_SNAPSHOT_BYTES_MAX or on anything but bytes. */
export function appSnapshotBytes(machine: StateMachine): Uint8Array {
  const taken = machine.snapshot();
  if (taken instanceof Uint8Array) {
    if (taken.length > APP_SNAPSHOT_BYTES_MAX) throw new KvError(KvErrorCode.APPLY_FAILED, `a state machine snapshot of ${taken.length} bytes, over APP_SNAPSHOT_BYTES_MAX (${APP_SNAPSHOT_BYTES_MAX})`);
    return taken;
  }
  if (taken === null || typeof taken !== 'object' || typeof (taken as Iterable<Uint8Array>)[Symbol.iterator] !== 'function') {
    throw new KvError(KvErrorCode.APPLY_FAILED, 'a state machine snapshot is a Uint8Array or an iterable of them');
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (const chunk of taken) {
    if (!(chunk instanceof Uint8Array)) throw new KvError(KvErrorCode.APPLY_FAILED, 'a state machine snapshot chunk is a Uint8Array');
    total += chunk.length;
    if (total > APP_SNAPSHOT_BYTES_MAX) throw new KvError(KvErrorCode.APPLY_FAILED, `a state machine snapshot of more than APP_SNAPSHOT_BYTES_MAX (${APP_SNAPSHOT_BYTES_MAX}) bytes`);
    // A copy as it comes: a generator may reuse one buffer for every chunk it yields.
    chunks.push(chunk.slice());
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
