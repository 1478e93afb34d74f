/**
 * A linearizability checker for key-value histories, after Porcupine: the Wing & Gong search
 * with Lowe's memoization, run on each key on its own.
 *
 * Why per key: every op touches exactly one key, and a history is linearizable iff its
 * restriction to each key is (linearizability is local, Herlihy & Wing 1990). Splitting turns
 * one search over thousands of ops into a few dozen searches over hundreds, and the search is
 * exponential in the worst case, so this is the difference between milliseconds and never.
 *
 * The search, for one key. The call and return events of the key's ops form a doubly-linked
 * list in time order. Walk the list from the head:
 *
 * - At a call, try to linearize its op now: if the sequential model accepts the op in the
 *   current state, and the pair (set of linearized ops, new state) has not been seen before,
 *   push (op, old state) on a stack, lift the op's call and return out of the list, and start
 *   again from the head. Otherwise move on to the next entry.
 * - At a return, the op it belongs to had to be linearized before this point and was not, so
 *   the last choice was wrong: pop it, put its entries back, restore the state and carry on
 *   from the entry after its call. An empty stack here means no order works.
 *
 * The seen-before cache (Lowe) is what keeps this usable: two paths that linearized the same
 * set of ops and reached the same state have the same future, so the second is cut. The set is
 * a bitset; its hash is kept up to date with one XOR per push and pop (Zobrist hashing), so a
 * cache probe costs a Map lookup plus one bitset comparison per colliding entry.
 *
 * Ops whose client never got an answer (`return === null`) return at +infinity and accept any
 * output: they may take effect at any point after their call, or never, which is the same as at
 * the very end. Hence the search is done once every completed op is linearized. Such ops are
 * where the plain search blows up (each one is concurrent with everything after it), so three
 * additions, each argued where it lives, keep them cheap: pending gets are dropped
 * ({@link compileKey}); pending candidates are tried after completed ones and identical pending
 * ops are used in call order only ({@link classifyPendingTwins}); and the cache prunes a state
 * reached with a superset of the pending ops of one already seen ({@link SearchCache}).
 *
 * Cost: near linear in the ops of a key when the history is linearizable and concurrency is
 * low, since the search rarely backtracks. Proving a failure means exhausting every reachable
 * (set, state) pair before the failure, which for a key with many hundreds of ops and high
 * concurrency can reach the step or cache bound; the answer is then 'unknown', never a guess.
 */

import { fail, invalidArgument } from '../base/index.ts';
import { type HistoryOp, validateHistoryOp } from './history.ts';

export interface LinearizabilityOptions {
  /** bound on search steps per key; exceeding it yields 'unknown' */
  maxStepsPerKey?: number;
}

export type LinearizabilityResult =
  | { ok: true; keys: number; ops: number }
  | { ok: false; key: string; ops: HistoryOp[]; longestPrefix: HistoryOp[]; report: string }
  | { ok: 'unknown'; key: string; reason: string };

/** Default for {@link LinearizabilityOptions.maxStepsPerKey}: on the order of a second of search. */
export const searchStepsPerKeyDefault = 5_000_000;

/**
 * Bound on the 32-bit words of bitsets the cache of one key may hold (128 MiB). The step bound
 * alone does not bound memory: each step may store a bitset of (ops of the key / 32) words.
 * Reaching it yields 'unknown', like running out of steps.
 */
export const searchCacheWordsPerKeyMax = 32 * 1024 * 1024;

/**
 * Checks that `history` is linearizable with respect to a key-value map whose keys start
 * absent. Keys are checked in order of first appearance; the first key found not
 * linearizable is reported, else the first key whose search ran out of budget, else success.
 *
 * @throws InvalidHistoryError (code INVALID_ARGUMENT) for an invalid op, such as `call > return`, and
 *   TypeError for an invalid `maxStepsPerKey`.
 */
export function checkLinearizable(
  history: readonly HistoryOp[],
  options: LinearizabilityOptions = {},
): LinearizabilityResult {
  const stepsMax = options.maxStepsPerKey ?? searchStepsPerKeyDefault;
  if (!Number.isSafeInteger(stepsMax) || stepsMax < 1) {
    throw invalidArgument(`maxStepsPerKey must be a positive safe integer, got ${String(stepsMax)}`);
  }
  const opsByKey = new Map<string, HistoryOp[]>();
  for (let i = 0; i < history.length; i++) {
    const op = history[i];
    validateHistoryOp(op, `history[${i}]`);
    let ops = opsByKey.get(op.key);
    if (ops === undefined) opsByKey.set(op.key, (ops = []));
    ops.push(op);
  }

  let unknown: LinearizabilityResult | null = null;
  for (const [key, ops] of opsByKey) {
    const outcome = searchKey(ops, stepsMax);
    if (outcome.kind === 'unknown') {
      unknown ??= { ok: 'unknown', key, reason: outcome.reason };
    } else if (outcome.kind === 'fail') {
      // Search order is the input order, which is arbitrary; the report shows ops by call time.
      const sorted = ops.map((op, index) => ({ op, index }));
      sorted.sort((a, b) => a.op.call - b.op.call || a.index - b.index);
      const byCall = sorted.map((s) => s.op);
      const longestPrefix = outcome.longestPrefix;
      return { ok: false, key, ops: byCall, longestPrefix, report: formatReport(key, byCall, longestPrefix) };
    }
  }
  return unknown ?? { ok: true, keys: opsByKey.size, ops: history.length };
}

type KeyOutcome =
  | { kind: 'ok' }
  | { kind: 'fail'; longestPrefix: HistoryOp[] }
  | { kind: 'unknown'; reason: string };

const opKindPut = 0;
const opKindGet = 1;
const opKindDelete = 2;
const opKindCas = 3;
/** A key's share of a delete-range: the key is absent after it; no output to check. */
const opKindClear = 4;

/**
 * The ops of one key, compiled to typed arrays for the search. Values are interned: state 0
 * is "absent" and state s > 0 is the s-th distinct value written to the key, so the model
 * compares small integers. A value that no op writes gets id -1, which no state ever equals:
 * a read of it, or a cas expecting it, can never match.
 */
interface KeyProblem {
  /** The ops searched, in input order; the search refers to them by index. */
  ops: HistoryOp[];
  kind: Uint8Array;
  /** put/cas: id of the value written. */
  valueId: Int32Array;
  /** cas: id of the expected value (0 = absent). */
  expectedId: Int32Array;
  /** get: id of the value read (0 = absent); delete/cas: 1 if true, 0 if false. */
  outputId: Int32Array;
  /** 1 if the client never got an answer, so any output is accepted. */
  pending: Uint8Array;
}

function compileKey(allOps: readonly HistoryOp[]): KeyProblem {
  // A pending get neither changes the state nor reports anything, so it constrains nothing:
  // dropping it shrinks the search without changing the answer.
  const ops = allOps.filter((op) => !(op.op === 'get' && op.return === null));
  const n = ops.length;
  const ids = new Map<string, number>();
  for (const op of ops) {
    if (op.value !== null && !ids.has(op.value)) ids.set(op.value, ids.size + 1);
  }
  const idOf = (v: string | null): number => (v === null ? 0 : (ids.get(v) ?? -1));
  const p: KeyProblem = {
    ops,
    kind: new Uint8Array(n),
    valueId: new Int32Array(n),
    expectedId: new Int32Array(n),
    outputId: new Int32Array(n),
    pending: new Uint8Array(n),
  };
  for (let i = 0; i < n; i++) {
    const op = ops[i];
    p.pending[i] = op.return === null ? 1 : 0;
    p.valueId[i] = idOf(op.value);
    p.expectedId[i] = idOf(op.expected);
    switch (op.op) {
      case 'put':
        p.kind[i] = opKindPut;
        break;
      case 'get':
        p.kind[i] = opKindGet;
        p.outputId[i] = op.return === null ? 0 : idOf(op.output as string | null);
        break;
      case 'delete':
        p.kind[i] = opKindDelete;
        p.outputId[i] = op.output === true ? 1 : 0;
        break;
      case 'cas':
        p.kind[i] = opKindCas;
        p.outputId[i] = op.output === true ? 1 : 0;
        break;
      case 'clear':
        p.kind[i] = opKindClear;
        break;
    }
  }
  return p;
}

/**
 * The sequential model: the state after applying op `i` in `state`, or -1 if the op's recorded
 * output is impossible in that state. Pending ops accept any output.
 */
function stepModel(p: KeyProblem, i: number, state: number): number {
  const anyOutput = p.pending[i] === 1;
  switch (p.kind[i]) {
    case opKindPut:
      return p.valueId[i];
    case opKindGet:
      return anyOutput || p.outputId[i] === state ? state : -1;
    case opKindDelete:
      return anyOutput || p.outputId[i] === (state !== 0 ? 1 : 0) ? 0 : -1;
    case opKindClear:
      return 0;
    default: {
      const swapped = state === p.expectedId[i];
      if (!anyOutput && p.outputId[i] !== (swapped ? 1 : 0)) return -1;
      return swapped ? p.valueId[i] : state;
    }
  }
}

/**
 * The event list as dancing links over typed arrays. Node 0 is the head sentinel; op i has its
 * call at node 2i+1 and its return at node 2i+2, so the op and the kind of a node are
 * arithmetic and a call's return is the next node number (not the next in the list).
 *
 *   head(0) <-> call a <-> call b <-> ret a <-> call c <-> ret b <-> ret c -> -1
 *
 * Invariant: `next` and `prev` link exactly the nodes of ops not yet linearized, in time order.
 * A lifted node keeps its own `next`/`prev`, which is what lets `unlift` put it back, provided
 * lifts are undone in reverse order (they are: the stack undoes them).
 */
interface EventList {
  next: Int32Array;
  prev: Int32Array;
}

function buildEventList(p: KeyProblem): EventList {
  const n = p.ops.length;
  const time = (node: number): number => {
    const op = p.ops[(node - 1) >> 1];
    return (node & 1) === 1 ? op.call : (op.return ?? Infinity);
  };
  const order = Array.from({ length: 2 * n }, (_, j) => j + 1);
  // At equal times, calls go before returns: an op that returns at t and one called at t count
  // as concurrent and may be linearized in either order. This is the permissive choice: with
  // coarse simulated clocks, equal stamps do not prove that one op finished before the other
  // began, so we never reject a history on the strength of a tie. Remaining ties fall back to
  // node number, which keeps the order, and so the search, deterministic.
  order.sort((a, b) => time(a) - time(b) || (a & 1 ? 0 : 1) - (b & 1 ? 0 : 1) || a - b);
  const next = new Int32Array(2 * n + 1).fill(-1);
  const prev = new Int32Array(2 * n + 1).fill(-1);
  let last = 0;
  for (const node of order) {
    next[last] = node;
    prev[node] = last;
    last = node;
  }
  return { next, prev };
}

/** Removes the call node `c` and its return node `c + 1` from the list. */
function lift(list: EventList, c: number): void {
  const { next, prev } = list;
  next[prev[c]] = next[c];
  if (next[c] !== -1) prev[next[c]] = prev[c];
  const r = c + 1;
  next[prev[r]] = next[r];
  if (next[r] !== -1) prev[next[r]] = prev[r];
}

/** Undoes `lift(list, c)`; valid only if every later lift has been undone already. */
function unlift(list: EventList, c: number): void {
  const { next, prev } = list;
  const r = c + 1;
  next[prev[r]] = r;
  if (next[r] !== -1) prev[next[r]] = r;
  next[prev[c]] = c;
  if (next[c] !== -1) prev[next[c]] = c;
}

/**
 * Lowe's cache of configurations already explored, extended with dominance for pending ops.
 *
 * A configuration is (completed ops linearized, pending ops linearized, state). Pruning a
 * configuration that was seen before is Lowe's rule: its future was or is being explored.
 * Pending ops add a second rule. A configuration (C, P, s) is dominated by (C, P', s) when
 * P' is a subset of P: a pending op constrains no other op (its return is at +infinity) and
 * may take effect never, so any way to finish from (C, P, s) is also a way to finish from
 * (C, P', s). We therefore prune any configuration whose pending set includes the pending set
 * of a remembered one with the same completed set and state. Without this, each pending op
 * before a failure doubles the work of proving the failure, and the simulator, which times
 * clients out on purpose, would see 'unknown' where a clear 'not linearizable' is due.
 *
 * The hash covers the completed set and the state only, so configurations that differ only in
 * their pending set share a chain, where the subset test runs. Each chain is kept an
 * antichain: an entry that a new one dominates can never prune anything the new one does not,
 * so it is dropped.
 */
class SearchCache {
  private readonly chains = new Map<number, CacheEntry[]>();
  /** 32-bit words held by the bitsets of all entries; bounded by the caller. */
  words = 0;

  /** Remembers the configuration and returns false, or returns true if one seen dominates it. */
  visit(hash: number, done: Uint32Array, state: number, pend: Uint32Array): boolean {
    let chain = this.chains.get(hash);
    if (chain === undefined) {
      this.chains.set(hash, (chain = []));
    } else {
      let kept = 0;
      for (const e of chain) {
        const same = e.state === state && sameBits(e.done, done);
        if (same && isSubset(e.pend, pend)) return true;
        if (same && isSubset(pend, e.pend)) {
          this.words -= e.done.length + e.pend.length;
        } else {
          chain[kept++] = e;
        }
      }
      chain.length = kept;
    }
    chain.push({ done: done.slice(), state, pend: pend.length === 0 ? pend : pend.slice() });
    this.words += done.length + pend.length;
    return false;
  }
}

interface CacheEntry {
  done: Uint32Array;
  state: number;
  pend: Uint32Array;
}

/** Zobrist key of slot i: a fixed pseudo-random 32-bit value (murmur3's finalizer of i). */
function zobrist(i: number): number {
  let h = Math.imul(i + 1, 0x9e3779b9);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

function cacheHash(doneHash: number, state: number): number {
  return (doneHash ^ Math.imul(state + 1, 0x27d4eb2f)) | 0;
}

function sameBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let w = 0; w < a.length; w++) if (a[w] !== b[w]) return false;
  return true;
}

/** Whether every bit set in `a` is set in `b`. */
function isSubset(a: Uint32Array, b: Uint32Array): boolean {
  for (let w = 0; w < a.length; w++) if ((a[w] & ~b[w]) !== 0) return false;
  return true;
}

/**
 * Groups pending ops into twin classes: same kind, same value written, same expected value.
 * Pending twins are interchangeable: their outputs are ignored, they constrain no other op, and
 * whichever is called first can stand in for a later one at any point the later one could take
 * effect. So the search only ever linearizes the first k twins of a class in call order (k = 0,
 * 1, ...), never another subset, which removes the factorial blow-up of choosing among them.
 * `rank` is an op's position in its class in event-list order (call time, then op index, as in
 * {@link buildEventList}); for completed ops `cls` and `rank` are -1.
 */
function classifyPendingTwins(p: KeyProblem): { cls: Int32Array; rank: Int32Array; classCount: number } {
  const n = p.ops.length;
  const cls = new Int32Array(n).fill(-1);
  const rank = new Int32Array(n).fill(-1);
  const pendingOps: number[] = [];
  for (let i = 0; i < n; i++) if (p.pending[i] === 1) pendingOps.push(i);
  pendingOps.sort((a, b) => p.ops[a]!.call - p.ops[b]!.call || a - b);
  const classOf = new Map<string, number>();
  const sizes: number[] = [];
  for (const i of pendingOps) {
    const twinKey = `${p.kind[i]}:${p.valueId[i]}:${p.kind[i] === opKindCas ? p.expectedId[i] : 0}`;
    let k = classOf.get(twinKey);
    if (k === undefined) {
      classOf.set(twinKey, (k = sizes.length));
      sizes.push(0);
    }
    cls[i] = k;
    rank[i] = sizes[k]!++;
  }
  return { cls, rank, classCount: sizes.length };
}

/**
 * The search for one key (see the file comment). Among the candidates at each point (the calls
 * before the first return in the list) completed ops are tried first, pending ops second
 * (`phase` 0, then 1). Trying pending ops last means the first configurations reached have the
 * smallest pending sets, which makes the dominance rule of {@link SearchCache} prune the most.
 */
function searchKey(allOps: readonly HistoryOp[], stepsMax: number): KeyOutcome {
  const p = compileKey(allOps);
  const n = p.ops.length;
  /** Index of op i among the completed ops, or among the pending ops: its bit in `done`/`pend`. */
  const slot = new Int32Array(n);
  let completedCount = 0;
  let pendingCount = 0;
  for (let i = 0; i < n; i++) slot[i] = p.pending[i] === 1 ? pendingCount++ : completedCount++;
  if (completedCount === 0) return { kind: 'ok' };
  const twins = classifyPendingTwins(p);
  /** classUsed[k]: how many pending ops of twin class k are linearized (always the first ones). */
  const classUsed = new Int32Array(twins.classCount);

  const list = buildEventList(p);
  const { next } = list;
  const zob = new Int32Array(completedCount);
  for (let i = 0; i < completedCount; i++) zob[i] = zobrist(i);
  const done = new Uint32Array((completedCount + 31) >>> 5);
  const pend = new Uint32Array((pendingCount + 31) >>> 5);
  /** Invariant: doneHash is the XOR of zob[s] over the slots s set in `done`. */
  let doneHash = 0;
  let state = 0;
  const cache = new SearchCache();
  cache.visit(cacheHash(doneHash, state), done, state, pend);
  let completedLeft = completedCount;
  /** Invariant: stackOp[0..depth) are the ops linearized so far, in order. */
  const stackOp = new Int32Array(n);
  const stackState = new Int32Array(n);
  let depth = 0;
  let longest: Int32Array = stackOp.slice(0, 0);

  let entry = next[0];
  let phase = 0;
  for (let steps = 1; ; steps++) {
    if (steps > stepsMax) {
      return { kind: 'unknown', reason: `search gave up after maxStepsPerKey (${stepsMax}) steps` };
    }
    // The list ends in a return of a completed op while any is unlinearized (completed returns
    // are finite, pending ones +infinity), and the walk stops at returns, so it never runs off.
    if (entry === -1) fail('linearizability: the walk stays inside the event list');
    const i = (entry - 1) >> 1;
    if ((entry & 1) === 1) {
      const eligible = p.pending[i] === phase && (phase === 0 || classUsed[twins.cls[i]] === twins.rank[i]);
      const nextState = eligible ? stepModel(p, i, state) : -1;
      if (nextState >= 0) {
        const bits = phase === 1 ? pend : done;
        const s = slot[i];
        const mask = 1 << (s & 31);
        bits[s >>> 5] |= mask;
        const hash = cacheHash(phase === 1 ? doneHash : doneHash ^ zob[s], nextState);
        if (!cache.visit(hash, done, nextState, pend)) {
          if (cache.words > searchCacheWordsPerKeyMax) {
            return { kind: 'unknown', reason: `search cache exceeded ${searchCacheWordsPerKeyMax} words` };
          }
          stackOp[depth] = i;
          stackState[depth] = state;
          depth++;
          state = nextState;
          if (phase === 0) {
            doneHash ^= zob[s];
            if (--completedLeft === 0) return { kind: 'ok' };
          } else {
            classUsed[twins.cls[i]]++;
          }
          lift(list, entry);
          entry = next[0];
          phase = 0;
          continue;
        }
        bits[s >>> 5] &= ~mask;
      }
      entry = next[entry];
      continue;
    }
    // A return: op i had to be linearized by now, and every candidate of this phase was tried.
    if (phase === 0 && pendingCount > 0) {
      phase = 1;
      entry = next[0];
      continue;
    }
    if (depth === 0) {
      return { kind: 'fail', longestPrefix: Array.from(longest, (j) => p.ops[j]!) };
    }
    // Every push is popped before a failure, so the deepest stack is seen here; copying only
    // on pops keeps a search that never backtracks free of copies.
    if (depth > longest.length) longest = stackOp.slice(0, depth);
    depth--;
    const j = stackOp[depth];
    state = stackState[depth];
    const s = slot[j];
    phase = p.pending[j];
    (phase === 1 ? pend : done)[s >>> 5] &= ~(1 << (s & 31));
    if (phase === 0) {
      doneHash ^= zob[s];
      completedLeft++;
    } else {
      classUsed[twins.cls[j]]--;
    }
    // Resume with the candidates after j, in j's phase.
    const c = 2 * j + 1;
    unlift(list, c);
    entry = next[c];
  }
}

/** One op on one line: client, op and arguments, output, [call, return]. */
export function formatHistoryOp(op: HistoryOp): string {
  const q = (v: string | null): string => (v === null ? 'null' : JSON.stringify(v));
  let call: string;
  switch (op.op) {
    case 'put':
      call = `put(${q(op.key)}, ${q(op.value)})`;
      break;
    case 'cas':
      call = `cas(${q(op.key)}, ${q(op.expected)} -> ${q(op.value)})`;
      break;
    default:
      call = `${op.op}(${q(op.key)})`;
  }
  const output =
    op.return === null ? '?' : typeof op.output === 'string' ? q(op.output) : String(op.output);
  const ret = op.return === null ? 'never' : String(op.return);
  return `client ${op.client}: ${call} => ${output} [${op.call}, ${ret}]`;
}

function formatReport(key: string, ops: readonly HistoryOp[], longestPrefix: readonly HistoryOp[]): string {
  const lines = [
    `history of key ${JSON.stringify(key)} is not linearizable`,
    `ops of the key, by call time (${ops.length}):`,
    ...ops.map((op) => '  ' + formatHistoryOp(op)),
    `longest linearizable prefix found (${longestPrefix.length} of ${ops.length} ops):`,
    ...longestPrefix.map((op) => '  ' + formatHistoryOp(op)),
  ];
  return lines.join('\n');
}
