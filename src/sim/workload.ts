/**
 * The simulated clients and their history. Each client runs a key-value workload (puts, gets,
 * deletes, compare-and-swaps over a few keys), one operation at a time, and records every
 * operation with its call and return times for the linearizability check. Requests and
 * replies ride the simulated network like Raft messages; at the node they enter the real host
 * loop (`NodeHost`) as the client protocol would hand them over.
 */
import type { Invariants } from './invariants.ts';
import { ErrorCode, fail } from '../base/index.ts';
import type { Rand } from '../core/index.ts';
import { decodeTxnResult, encodeKvRequest, type KvCommand, type KvRangeQuery, type KvRangeResult, type KvTxn, type KvWriteResult, type TxnCompare, type TxnOp } from '../kv/index.ts';
import type { ClientReply as HostReply } from '../runtime/index.ts';
import type { HistoryOp } from './history.ts';
import { LeaseHolder, type LeaseRenewal } from './lease-holders.ts';
import { SimActor } from './sim-actor.ts';
import type { LeaseOp } from '../runtime/index.ts';
import type { SimNetwork } from './network.ts';
import type { SimOptions } from './options.ts';
import type { SimNode } from './sim-node.ts';
import type { SimStats } from './stats.ts';
import type { TraceRecorder } from './trace-recorder.ts';

export type SimRequest =
  | { kind: 'write'; client: number; opId: number; clientId: number; seq: number; command: KvCommand }
  /** `redis`: sent as Redis's GET on the read path (kv/redis.ts), answered with its RESP reply. */
  | { kind: 'read'; client: number; opId: number; key: string; mode: ReadMode; redis?: boolean }
  | { kind: 'range'; client: number; opId: number; query: KvRangeQuery; mode: ReadMode }
  | { kind: 'lease'; client: number; opId: number; op: LeaseOp; id: number };
type ClientRequest = SimRequest;

/**
 * `proposed` on a refusal: whether the request may have entered a log before it was refused.
 * `index` on a write: its log entry's; `range` on a range read: what it read.
 */
export type SimReply =
  | { opId: number; ok: true; output: string | boolean | null; index?: number; range?: KvRangeResult; txn?: Uint8Array; leaseId?: number; appOutcome?: Uint8Array }
  | { opId: number; ok: false; code: string; leaderHint: number; proposed: boolean };
type ClientReply = SimReply;

/**
 * A command for the cluster's own state machine as its client saw it (app-history.ts checks
 * these against a sequential model): its outcome (kv/app-machine.ts), or null and no return
 * if the client never learned it (it may have applied, or not).
 */
export interface AppOp {
  readonly client: number;
  readonly call: number;
  return: number | null;
  readonly command: Uint8Array;
  outcome: Uint8Array | null;
}

/**
 * A range read a client completed, kept beside the history (the per-key linearizability check
 * cannot judge an operation over many keys): simulation.ts checks it against the committed
 * log replayed to its index, and its index against the writes acknowledged before its call.
 */
export interface RangeRead {
  readonly client: number;
  readonly query: KvRangeQuery;
  readonly mode: ReadMode;
  readonly call: number;
  readonly return: number;
  readonly result: KvRangeResult;
}

/**
 * A transaction a client saw acknowledged, kept beside the history (its reads span keys):
 * simulation.ts checks its result against the committed log replayed to its index, and its
 * index against the writes acknowledged before its call.
 */
export interface TxnAck {
  readonly client: number;
  readonly clientId: number;
  readonly seq: number;
  readonly call: number;
  readonly return: number;
  /** The index of the entry that carried it. */
  readonly index: number;
  /** Its result as encoded (kv/txn.ts). */
  readonly result: Uint8Array;
}

/** A write a client saw acknowledged: when, and the index of the entry that carried it. */
export interface WriteAck {
  readonly return: number;
  readonly index: number;
}

/**
 * How a simulated read is served: 'safe' a linearizable read at the leader (ReadIndex),
 * 'lease' a lease read, 'follower' a linearizable read served by whichever node it reaches
 * (a follower asks the leader for a read index).
 */
export type ReadMode = 'safe' | 'lease' | 'follower';

/** Of the reads, one in this many (by operation number) is a follower read, sent to a node picked by that number. */
const FOLLOWER_READ_EVERY = 3;

/** One read in this many is a range read (of every key, or of a slice of them). */
const RANGE_READ_EVERY = 4;
/** Of the operations drawn as deletes, one in this many (by operation number) is a delete-range. */
const DELETE_RANGE_EVERY = 3;
/** Of the operations drawn as compare-and-swaps, one in this many (by operation number) is a transaction. */
const TXN_EVERY = 2;

/** Client c's network address: clients and nodes share the network, so they need distinct addresses. */
const CLIENT_ADDRESS_BASE = 1000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What the workload needs of the simulation around it. */
export interface WorkloadHost {
  readonly options: SimOptions;
  /** The run's generator: the clients fork theirs from it. */
  readonly rand: Rand;
  readonly network: SimNetwork;
  readonly stats: SimStats;
  readonly nodes: ReadonlyMap<number, SimNode>;
  readonly recorder: TraceRecorder;
  /** Simulated time now, in ms. */
  readonly time: number;
  at(delayMs: number, run: () => void): void;
  /** The nodes a client may try: the members of the cluster as far as known. */
  members(): number[];
  /** Runs the node's host loop until it has no Ready left. */
  drain(node: SimNode): void;
  /** A node that was paused takes the ticks it missed, and finishes work of its state machine that settled, before any input: whether it is still up (that work may reach a crash point). */
  catchUp(node: SimNode): boolean;
  /** Where a broken property is recorded. */
  readonly invariants: Invariants;
}

export class Workload {
  /** Every client operation, in call order; the linearizability check judges it at the end. */
  readonly history: HistoryOp[] = [];
  /** Range reads that completed, in completion order. */
  readonly ranges: RangeRead[] = [];
  /** Commands for the cluster's own state machine, as the clients saw them (runs with appCommands). */
  readonly appOps: AppOp[] = [];
  /** Writes that completed, in completion order, with their log indexes. */
  readonly writeAcks: WriteAck[] = [];
  /** Transactions that completed, in completion order. */
  readonly txns: TxnAck[] = [];
  /** Lease renewals (grants and keep-alives) the cluster acknowledged, in completion order. */
  readonly renewals: LeaseRenewal[] = [];
  /** Leases found gone by their holder while renewing. */
  leasesLost = 0;
  /** The key-value clients, then the lease holders, by client address - 1. */
  private readonly clients: { onReply(reply: ClientReply, from: number): void }[] = [];

  constructor(private readonly sim: WorkloadHost) {}

  /** Makes the clients and schedules each one's first operation. */
  start(): void {
    const sim = this.sim;
    const kvClients: SimClient[] = [];
    for (let c = 0; c < sim.options.clients; c++) kvClients.push(new SimClient(sim, this, c + 1, sim.rand.fork()));
    this.clients.push(...kvClients);
    for (const c of kvClients) sim.at(sim.rand.int(0, 50), () => c.next());
    for (let h = 0; h < sim.options.leaseHolders; h++) {
      const holder = new LeaseHolder(sim, this, this.clients.length + 1, sim.rand.fork());
      this.clients.push(holder);
      holder.start();
    }
  }

  noteLeaseLost(): void {
    this.leasesLost++;
  }

  recordOp(op: HistoryOp): void {
    this.history.push(op);
  }

  /** Forgets an operation that certainly had no effect (a read, or a write never proposed). */
  forgetOp(op: HistoryOp): void {
    const i = this.history.lastIndexOf(op);
    if (i >= 0) this.history.splice(i, 1);
  }

  completedWrites(): number {
    return this.history.filter((h) => h.op !== 'get' && h.return !== null).length + this.appOps.filter((a) => a.return !== null).length;
  }

  /** A client sends `req` to node `to` over the network. */
  sendRequest(to: number, req: ClientRequest): void {
    for (const d of this.sim.network.delays(CLIENT_ADDRESS_BASE + req.client, to)) {
      this.sim.at(d, () => this.handleRequest(to, req));
    }
  }

  /** A host's answer to a client request goes back over the network. */
  onHostReply(node: SimNode, r: HostReply): void {
    const req = node.requests.get(r.requestId);
    if (req === undefined) {
      // A host answers each request once. (Ids below requestFirst belong to an incarnation
      // that crashed: work its host left behind may still call its sink, to nobody.)
      if (r.requestId >= node.requestFirst && r.requestId < node.requestNext) this.sim.invariants.fail(`exactly one reply: node ${node.id} answered request ${r.requestId} again (${r.kind})`);
      return;
    }
    node.requests.delete(r.requestId);
    let reply: ClientReply;
    switch (r.kind) {
      case 'write':
        // A transaction's result is copied: it is the session's own array.
        if (r.result.op === 'txn') reply = { opId: req.opId, ok: true, output: null, index: r.index, txn: r.result.encoded.slice() };
        else if (r.result.op === 'lease-grant') reply = { opId: req.opId, ok: true, output: null, index: r.index, leaseId: r.result.id };
        else if (r.result.op === 'app') reply = { opId: req.opId, ok: true, output: null, index: r.index, appOutcome: r.result.encoded.slice() };
        else if (r.result.op === 'redis') reply = { opId: req.opId, ok: true, output: redisWriteOutput(r.result.encoded), index: r.index };
        else reply = { opId: req.opId, ok: true, output: resultOutput(r.result), index: r.index };
        break;
      case 'lease':
        reply = { opId: req.opId, ok: true, output: null };
        break;
      case 'range':
        // Copied now: the entries hold the state machine's own arrays.
        reply = { opId: req.opId, ok: true, output: null, range: copyRange(r.result) };
        break;
      case 'read':
        if (req.redis === true) reply = { opId: req.opId, ok: true, output: redisGetOutput(r.value) };
        else reply = { opId: req.opId, ok: true, output: r.value === undefined ? null : decoder.decode(r.value) };
        break;
      case 'error':
        reply = { opId: req.opId, ok: false, code: r.code, leaderHint: r.leaderHint, proposed: r.proposed };
        break;
      default:
        return;
    }
    this.replyTo(node.id, req.client, reply);
  }

  private replyTo(from: number, client: number, reply: ClientReply): void {
    for (const d of this.sim.network.delays(from, CLIENT_ADDRESS_BASE + client)) {
      this.sim.at(d, () => this.clients[client - 1]!.onReply(reply, from));
    }
  }

  private handleRequest(to: number, req: ClientRequest): void {
    const node = this.sim.nodes.get(to);
    const host = node?.host;
    if (node === undefined || host === undefined) return; // A crashed node answers nothing.
    if (this.sim.time < node.pausedUntil) {
      this.sim.at(node.pausedUntil - this.sim.time, () => this.handleRequest(to, req));
      return;
    }
    // Finishing a restore first may crash the node: then nothing answers.
    if (!this.sim.catchUp(node) || node.host !== host) return;
    const requestId = node.requestNext++;
    node.requests.set(requestId, { client: req.client, opId: req.opId, ...(req.kind === 'read' && req.redis === true ? { redis: true } : {}) });
    if (req.kind === 'write') {
      if (req.command.op === 'redis') this.sim.stats.redisCommands++;
      const data = encodeKvRequest({ clientId: req.clientId, seq: req.seq, command: req.command });
      host.addWrite(requestId, data, 0, data.length);
    } else if (req.kind === 'lease') {
      host.handleRequest({ kind: 'lease', requestId, op: req.op, id: req.id });
    } else {
      if (req.mode === 'lease') this.sim.stats.readsLease++;
      else if (req.mode === 'follower') this.sim.stats.readsFollower++;
      else this.sim.stats.readsSafe++;
      const consistency = req.mode === 'lease' ? 'lease' : req.mode === 'follower' ? 'follower' : 'linearizable';
      if (req.kind === 'range') {
        this.sim.stats.rangeReads++;
        host.handleRequest({ kind: 'range', requestId, consistency, query: req.query });
      } else if (req.redis === true) {
        this.sim.stats.redisCommands++;
        host.handleRequest({ kind: 'redis', requestId, consistency, commands: [[encoder.encode('GET'), encoder.encode(req.key)]] });
      } else {
        host.handleRequest({ kind: 'read', requestId, consistency, key: encoder.encode(req.key) });
      }
    }
    host.flush();
    this.sim.drain(node);
  }
}

function copyRange(r: KvRangeResult): KvRangeResult {
  return { ...r, entries: r.entries.map((e) => ({ ...e, key: e.key.slice(), value: e.value?.slice() })) };
}

/**
 * A range query drawn from the op's number and its roll (no extra draw of the generator):
 * every key, or the keys from k<a> up to before k<b>, sometimes in reverse or with a limit.
 */
function rangeQueryOf(opId: number, roll: number, keys: number): KvRangeQuery {
  const bits = Math.floor(roll * 1e9);
  const reverse = (bits & 1) === 1;
  const limit = (bits & 2) === 2 ? 1 + ((bits >> 2) % 3) : undefined;
  const limited = limit === undefined ? {} : { limit };
  if (opId % 2 === 0) return { prefix: encoder.encode('k'), reverse, ...limited };
  const a = (bits >> 4) % (keys + 1);
  const b = a + ((bits >> 8) % (keys + 1));
  return { start: encoder.encode(`k${a}`), end: encoder.encode(`k${b}`), reverse, ...limited };
}

/** A write as a Redis command (kv/redis.ts), one in its log entry. */
function redisCommand(...words: string[]): KvCommand {
  return { op: 'redis', commands: [words.map((w) => encoder.encode(w))], transaction: false };
}

/** A Redis SET's or DEL's reply as the history's output: null for +OK, the DEL's count as whether the key existed. */
function redisWriteOutput(encoded: Uint8Array): boolean | null {
  const text = decoder.decode(encoded);
  if (text === '+OK\r\n') return null;
  if (text === ':1\r\n' || text === ':0\r\n') return text === ':1\r\n';
  fail(`a Redis SET or DEL answered ${JSON.stringify(text)}`);
}

/** A Redis GET's reply (`$-1` or a bulk string) as the history's output. */
function redisGetOutput(encoded: Uint8Array | undefined): string | null {
  const text = encoded === undefined ? '' : decoder.decode(encoded);
  if (text === '$-1\r\n') return null;
  const m = /^\$(\d+)\r\n/.exec(text);
  if (m === null) fail(`a Redis GET answered ${JSON.stringify(text)}`);
  return text.slice(m[0].length, m[0].length + Number(m[1]));
}

/** The trace's name for a command of the cluster's own state machine (never a key of the workload's: those are k<n>). */
const APP_KEY = '(app)';

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
    case 'delete-range':
      // Each key's share is a 'clear' in the history, which has no output.
      return null;
    case 'txn':
      fail('a transaction is recorded by its keys, not by one output');
    case 'lease-grant':
      fail('a lease grant is answered with its id, not an output');
    case 'lease-revoke':
    case 'refused':
    case 'app':
    case 'redis':
      fail(`the simulator sent no request answered with ${r.op}`);
  }
}

/**
 * One client: runs one operation at a time, picks a node (its last known leader), retries
 * after NOT_LEADER and after timeouts (writes keep their session sequence number, so a
 * retried write is applied at most once), and records every operation with its call and
 * return times. An operation given up on is recorded with return null (outcome unknown).
 */
class SimClient extends SimActor {
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
        /** A delete-range's share of each key of the keyspace in its range, in the history in its place. */
        clears: HistoryOp[];
        /** A transaction's puts, in the history in its place (its else list writes nothing). */
        txnPuts: HistoryOp[];
        /** A command for the cluster's own state machine: kept in `appOps`, not in the history. */
        app: AppOp | undefined;
      }
    | undefined;
  private lastSeen = new Map<string, string | null>();

  /** Whether this put, delete or read goes as a Redis command (a draw only in runs with redisCommands: other runs keep their streams). */
  private asRedis(): boolean {
    const share = this.sim.options.redisCommands ?? 0;
    return share > 0 && this.rand.chance(share);
  }

  constructor(
    sim: WorkloadHost,
    private readonly workload: Workload,
    index: number,
    rand: Rand,
  ) {
    super(sim, index, rand);
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
    const clears: HistoryOp[] = [];
    const txnPuts: HistoryOp[] = [];
    if (roll < 0.35) {
      const drawn = this.rand.chance(0.5) ? 'lease' : 'safe';
      const mode: ReadMode = opId % FOLLOWER_READ_EVERY === 1 ? 'follower' : drawn;
      record = { client: this.index, op: 'get', key, value: null, expected: null, output: null, call: sim.time, return: null };
      request =
        opId % RANGE_READ_EVERY === 0
          ? { kind: 'range', client: this.index, opId, query: rangeQueryOf(opId, roll / 0.35, o.keys), mode }
          : { kind: 'read', client: this.index, opId, key, mode, ...(this.asRedis() ? { redis: true } : {}) };
    } else {
      this.seq++;
      let command: KvCommand;
      // A draw only in runs with commands for the cluster's own state machine: other runs keep their streams.
      if ((o.appCommands ?? 0) > 0 && this.rand.chance(o.appCommands!)) {
        const make = o.stateMachine?.command;
        command = { op: 'app', data: make === undefined ? encoder.encode(`a${this.index}-${opId}`) : make(() => this.rand.float(), this.index, opId) };
        // Judged by the replicas' digests (app-check.ts), not in the history: a record for the trace only.
        record = { client: this.index, op: 'put', key: APP_KEY, value, expected: null, output: null, call: sim.time, return: null };
      } else if (roll < 0.7) {
        command = this.asRedis() ? redisCommand('SET', key, value) : { op: 'put', key: encoder.encode(key), value: encoder.encode(value) };
        record = { client: this.index, op: 'put', key, value, expected: null, output: null, call: sim.time, return: null };
      } else if (roll < 0.82 && opId % DELETE_RANGE_EVERY === 0) {
        // [k<a>, k<b>) over the keyspace, or every key: one history op per key it covers.
        const bits = Math.floor(((roll - 0.7) / 0.12) * 1e9);
        const a = bits % (o.keys + 1);
        const b = a + ((bits >> 4) % (o.keys + 1));
        const all = (bits & 1) === 1;
        command = all ? { op: 'delete-range', key: encoder.encode('k'), end: encoder.encode('l') } : { op: 'delete-range', key: encoder.encode(`k${a}`), end: encoder.encode(`k${b}`) };
        for (let i = 0; i < o.keys; i++) {
          const k = `k${i}`;
          if (all || (k >= `k${a}` && k < `k${b}`)) clears.push({ client: this.index, op: 'clear', key: k, value: null, expected: null, output: null, call: sim.time, return: null });
        }
        record = { client: this.index, op: 'clear', key: all ? 'k*' : `[k${a}, k${b})`, value: null, expected: null, output: null, call: sim.time, return: null };
      } else if (roll < 0.82) {
        command = this.asRedis() ? redisCommand('DEL', key) : { op: 'delete', key: encoder.encode(key) };
        record = { client: this.index, op: 'delete', key, value: null, expected: null, output: null, call: sim.time, return: null };
      } else if (opId % TXN_EVERY === 0) {
        command = { op: 'txn', txn: this.txnOf(key, value, Math.floor(((roll - 0.82) / 0.18) * 1e9)) };
        for (const op of command.txn.then) {
          if (op.op === 'put') txnPuts.push({ client: this.index, op: 'put', key: decoder.decode(op.key), value, expected: null, output: null, call: sim.time, return: null });
        }
        record = { client: this.index, op: 'put', key: `txn(${txnPuts.map((p) => p.key).join(', ')})`, value, expected: null, output: null, call: sim.time, return: null };
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
    // A range read is judged beside the history, not in it (see RangeRead); a delete-range
    // is in it as its clears, a transaction as its puts (and beside it, see TxnAck).
    if (record.op === 'clear') for (const c of clears) this.workload.recordOp(c);
    else if (txnPuts.length > 0) for (const p of txnPuts) this.workload.recordOp(p);
    else if (request.kind !== 'range' && record.key !== APP_KEY) this.workload.recordOp(record);
    this.sim.recorder.add({ kind: 'call', node: this.target, op: record });
    const deadline = sim.time + Math.max(2000, o.clientTimeoutMs * o.clientAttemptsMax);
    let app: AppOp | undefined;
    if (request.kind === 'write' && request.command.op === 'app') {
      app = { client: this.index, call: sim.time, return: null, command: request.command.data, outcome: null };
      this.workload.appOps.push(app);
    }
    this.current = { opId, record, request, deadline, timer: 0, done: false, mayHaveEffect: false, clears, txnPuts, app };
    this.attempt();
  }

  /**
   * A transaction drawn from `bits` (no extra draw of the generator): if `key` holds what this
   * client last saw of it (absent: version 0), put `value` to it and to a second key, and
   * maybe read some back; else read it. Its else list writes nothing, so a failed one is
   * certainly without effect.
   */
  private txnOf(key: string, value: string, bits: number): KvTxn {
    const keys = this.sim.options.keys;
    const other = `k${(Number(key.slice(1)) + 1 + (bits % Math.max(1, keys - 1))) % keys}`;
    const expected = this.lastSeen.get(key) ?? null;
    const k = encoder.encode(key);
    const v = encoder.encode(value);
    const compare: TxnCompare = expected === null ? { key: k, target: 'version', op: '=', value: 0 } : { key: k, target: 'value', op: '=', value: encoder.encode(expected) };
    const then: TxnOp[] = [
      { op: 'put', key: k, value: v },
      { op: 'put', key: encoder.encode(other), value: v },
    ];
    if (((bits >> 3) & 1) === 1) then.push({ op: 'get', key: encoder.encode(other) });
    if (((bits >> 4) & 1) === 1) then.push({ op: 'range', query: { prefix: encoder.encode('k'), limit: 2 } });
    const otherwise: TxnOp[] = [{ op: 'get', key: k }];
    if (((bits >> 5) & 1) === 1) otherwise.push({ op: 'range', query: { prefix: encoder.encode('k') } });
    return { compares: [compare], then, else: otherwise };
  }

  private attempt(): void {
    const cur = this.current!;
    const timer = ++cur.timer;
    // A follower read goes to a node picked by its number (any node may serve it); a refusal's hint still leads to the leader.
    const spread = (cur.request.kind === 'read' || cur.request.kind === 'range') && cur.request.mode === 'follower' && cur.timer === 1;
    const members = this.sim.members();
    this.workload.sendRequest(spread ? members[cur.opId % members.length]! : this.target, cur.request);
    this.sim.at(this.sim.options.clientTimeoutMs, () => {
      if (cur.done || cur.timer !== timer) return;
      // No answer: the request may have been proposed before the node or the network failed.
      cur.mayHaveEffect = true;
      this.target = this.rand.pick(this.sim.members());
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
    const noEffect = cur.record.op === 'get' || !cur.mayHaveEffect;
    this.sim.recorder.add({ kind: 'gave-up', node: this.target, op: cur.record, kept: !noEffect });
    if (noEffect) {
      if (cur.app !== undefined) this.workload.appOps.splice(this.workload.appOps.indexOf(cur.app), 1);
      this.workload.forgetOp(cur.record);
      for (const c of [...cur.clears, ...cur.txnPuts]) this.workload.forgetOp(c);
    }
    if (cur.record.op !== 'get') this.newSession();
    this.sim.at(this.rand.int(1, 20), () => this.next());
  }

  /** The answer of node `from`, if it is the one awaited. */
  onReply(reply: ClientReply, from: number): void {
    const cur = this.current;
    if (cur === undefined || cur.done || reply.opId !== cur.opId) return;
    if (reply.ok) {
      cur.done = true;
      if (cur.request.kind === 'range') {
        this.workload.ranges.push({ client: this.index, query: cur.request.query, mode: cur.request.mode, call: cur.record.call, return: this.sim.time, result: reply.range! });
        this.sim.at(this.rand.int(1, 20), () => this.next());
        return;
      }
      if (reply.index !== undefined) this.workload.writeAcks.push({ return: this.sim.time, index: reply.index });
      if (cur.app !== undefined) {
        cur.app.return = this.sim.time;
        cur.app.outcome = reply.appOutcome ?? null;
      }
      if (reply.txn !== undefined && cur.request.kind === 'write') {
        this.workload.txns.push({ client: this.index, clientId: cur.request.clientId, seq: cur.request.seq, call: cur.record.call, return: this.sim.time, index: reply.index!, result: reply.txn });
        if (decodeTxnResult(reply.txn).succeeded) {
          for (const p of cur.txnPuts) {
            p.return = this.sim.time;
            this.lastSeen.set(p.key, p.value);
          }
        } else {
          // The else list writes nothing: the puts certainly did not happen.
          for (const p of cur.txnPuts) this.workload.forgetOp(p);
        }
        cur.record.return = this.sim.time;
        this.sim.recorder.add({ kind: 'return', node: from, op: cur.record });
        this.sim.at(this.rand.int(1, 20), () => this.next());
        return;
      }
      for (const c of cur.clears) {
        c.return = this.sim.time;
        this.lastSeen.set(c.key, null);
      }
      cur.record.output = reply.output;
      cur.record.return = this.sim.time;
      this.sim.recorder.add({ kind: 'return', node: from, op: cur.record });
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
    cur.timer++;
    this.retryAfterRefusal(reply.leaderHint, () => {
      if (!cur.done) this.retryOrGiveUp();
    });
  }
}
