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

/** Set `cancelled` to stop an async snapshot being read: it rejects at its next chunk. */
export interface SnapshotCancel {
  cancelled: boolean;
}

/** A snapshot's chunks as `restore` gets them: read them with `for (const chunk of chunks)` or `for await`. */
export type SnapshotChunks = Iterable<Uint8Array> & AsyncIterable<Uint8Array>;

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
  /**
   * The whole state, deterministic (replicas in the same state give the same bytes): as bytes,
   * a sequence of byte chunks, or an async sequence of them for a state too large to copy at
   * once. An async sequence is read while the node goes on applying commands, so it must give
   * the state as it was when `snapshot()` was called (a view the machine does not change
   * afterwards: an immutable structure, a copy-on-write page set, a store's own snapshot);
   * a sequence that read the live state would capture commands past the snapshot's index,
   * and a replica restored from it would apply them twice.
   */
  snapshot(): Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
  /**
   * Replaces the whole state with a snapshot's, given as the chunks `snapshot()` made (perhaps
   * cut differently). It may return a promise: the node then applies nothing, answers no
   * request and takes no Raft message until it settles (Raft resends what the node missed). A
   * restore that throws or rejects fails the node: its state would be unknown.
   */
  restore(chunks: SnapshotChunks): void | Promise<void>;
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

/**
 * The machine's snapshot as one array (its chunks joined, each copied as it comes: a generator
 * may reuse one buffer for every chunk it yields): at once for bytes or a sequence, a promise
 * for an async sequence. Throws (or rejects) APPLY_FAILED past APP_SNAPSHOT_BYTES_MAX or on
 * anything but bytes; what `snapshot()` or its sequence throws goes through as it is.
 */
export function appSnapshotBytes(machine: StateMachine, cancel?: SnapshotCancel): Uint8Array | Promise<Uint8Array> {
  const taken = machine.snapshot() as unknown;
  if (taken instanceof Uint8Array) {
    if (taken.length > APP_SNAPSHOT_BYTES_MAX) throw snapshotTooLarge(taken.length);
    return taken;
  }
  if (taken !== null && typeof taken === 'object') {
    const joined = new ChunkJoiner();
    if (typeof (taken as Iterable<Uint8Array>)[Symbol.iterator] === 'function') {
      for (const chunk of taken as Iterable<Uint8Array>) joined.add(chunk);
      return joined.bytes();
    }
    if (typeof (taken as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function') {
      return (async () => {
        for await (const chunk of taken as AsyncIterable<Uint8Array>) {
          // Leaving the loop ends the sequence (its return(), a generator's finally).
          if (cancel?.cancelled === true) throw new KvError(KvErrorCode.APPLY_FAILED, 'the snapshot was dropped: a restore replaced the state it was taken of');
          joined.add(chunk);
        }
        return joined.bytes();
      })();
    }
    if (typeof (taken as PromiseLike<unknown>).then === 'function') {
      // Its rejection must not go unhandled: a thread that turns its event loop would die of it.
      Promise.resolve(taken as PromiseLike<unknown>).catch(() => undefined);
      throw new KvError(KvErrorCode.APPLY_FAILED, 'a state machine snapshot() returned a promise: give an async iterable of chunks (an async generator) for a snapshot taken over time');
    }
  }
  throw new KvError(KvErrorCode.APPLY_FAILED, 'a state machine snapshot is a Uint8Array, or an iterable or async iterable of them');
}

/** A state machine's snapshot, taken at once: APPLY_FAILED if it is an async sequence (for the simulator's model, which restores and snapshots at every step). */
export function appSnapshotBytesNow(machine: StateMachine, who: string): Uint8Array {
  const bytes = appSnapshotBytes(machine);
  if (bytes instanceof Promise) {
    bytes.catch(() => undefined);
    throw new KvError(KvErrorCode.APPLY_FAILED, `${who}: its snapshot() gave an async sequence; it must give its bytes at once`);
  }
  return bytes;
}

/**
 * Restores `machine` from `bytes`: undefined once done, or the promise of an async restore
 * (what `restore` returns that has a `then`). What it throws goes through as it is.
 */
export function restoreApp(machine: StateMachine, bytes: Uint8Array): Promise<void> | undefined {
  const done = machine.restore(snapshotChunks([bytes])) as unknown;
  if (done === undefined || done === null || typeof (done as PromiseLike<void>).then !== 'function') return undefined;
  return Promise.resolve(done as PromiseLike<void>).then(() => undefined);
}

/** `chunks` as `restore` takes them: a sequence to read with `for` or `for await`. */
export function snapshotChunks(chunks: readonly Uint8Array[]): SnapshotChunks {
  return {
    [Symbol.iterator]: () => chunks[Symbol.iterator](),
    async *[Symbol.asyncIterator]() {
      yield* chunks;
    },
  };
}

function snapshotTooLarge(bytes: number): KvError {
  return new KvError(KvErrorCode.APPLY_FAILED, `a state machine snapshot of ${bytes} bytes, over APP_SNAPSHOT_BYTES_MAX (${APP_SNAPSHOT_BYTES_MAX})`);
}

/** Chunks joined into one array, checked and bounded as they come. */
class ChunkJoiner {
  private readonly chunks: Uint8Array[] = [];
  private total = 0;

  add(chunk: unknown): void {
    if (!(chunk instanceof Uint8Array)) throw new KvError(KvErrorCode.APPLY_FAILED, 'a state machine snapshot chunk is a Uint8Array');
    this.total += chunk.length;
    if (this.total > APP_SNAPSHOT_BYTES_MAX) throw snapshotTooLarge(this.total);
    this.chunks.push(chunk.slice());
  }

  bytes(): Uint8Array {
    if (this.chunks.length === 1) return this.chunks[0]!;
    const out = new Uint8Array(this.total);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}
