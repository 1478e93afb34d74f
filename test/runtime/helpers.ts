// Helpers for the runtime tests: the in-memory HostStorage the node worker uses (copied from
// node-worker.ts, which does not export it), KV request builders, and a tiny hand-driven
// network of NodeHosts. The network has no threads and no clocks: a HostSink queues each
// node's Raft messages and records its client replies, `deliverAll()` steps queued messages
// into their recipients and processes their Readys until nothing moves, and `tickAll()`
// supplies time. Isolated nodes lose every message to and from them.
import { NONE, type Message, type RaftConfig } from '../../src/core/index.ts';
import { encodeKvRequest, type KvCommand, type KvWriteResult } from '../../src/kv/index.ts';
import { NodeHost, type ClientReply, type ClientRequest, type NodeHostOptions } from '../../src/runtime/index.ts';
import { MemoryStorage } from '../../src/storage/index.ts';

export { MemoryStorage };

export const bytesOf = (text: string): Uint8Array => new TextEncoder().encode(text);
export const textOf = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : new TextDecoder().decode(bytes);

export const put = (key: string, value: string): KvCommand => ({ op: 'put', key: bytesOf(key), value: bytesOf(value) });
export const del = (key: string): KvCommand => ({ op: 'delete', key: bytesOf(key) });

/** A write request carrying `command` in session (clientId, seq). */
export function writeReq(requestId: number, clientId: number, seq: number, command: KvCommand): ClientRequest {
  return { kind: 'write', requestId, data: encodeKvRequest({ clientId, seq, command }) };
}

export function readReq(requestId: number, key: string, consistency: 'linearizable' | 'lease' | 'stale' = 'linearizable'): ClientRequest {
  return { kind: 'read', requestId, consistency, key: bytesOf(key) };
}

export function watchReq(requestId: number, prefix: string, afterIndex?: number): ClientRequest {
  return { kind: 'watch', requestId, afterIndex, prefix: bytesOf(prefix) };
}

/** Host options for every node of a network; `raft` fields override the network's Raft defaults. */
export interface HostNetworkOptions extends Omit<NodeHostOptions, 'raft' | 'storage'> {
  readonly raft?: Partial<Omit<RaftConfig, 'id' | 'storage' | 'seed'>>;
  /** Puts that applied are answered through the sink's `replyWrite`, as on a node thread (recorded as write replies). */
  readonly replyWrite?: boolean;
  /** Reads of one key are answered through the sink's `replyRead` (their values copied at once, as a node thread encodes them). */
  readonly replyRead?: boolean;
}

export interface HostNode {
  readonly id: number;
  host: NodeHost;
  readonly storage: MemoryStorage;
  /** Every client reply this node gave, in order (kept across restarts). */
  readonly replies: ClientReply[];
}

const ROUNDS_MAX = 10_000;

export class HostNetwork {
  readonly nodes = new Map<number, HostNode>();
  /** Raft messages sent and not yet delivered, oldest first. */
  queue: Message[] = [];
  /** Every Raft message any node sent, in sending order (dropped ones too). */
  readonly sent: Message[] = [];
  /** Nodes whose messages, in and out, are lost. */
  readonly isolated = new Set<number>();
  /** Called with each Raft message as its sender's host hands it over, before it is queued. */
  readonly sendHooks: ((m: Message) => void)[] = [];
  /** Called with the node id when a host makes its sent messages visible (HostSink.flushRaft). */
  readonly flushHooks: ((id: number) => void)[] = [];

  constructor(
    private readonly voters: readonly number[],
    private readonly options: HostNetworkOptions = {},
  ) {
    for (const id of voters) this.start(id);
  }

  /**
   * Starts (or restarts) node `id` as a NodeHost over `storage` (fresh by default). A node
   * outside the initial voters starts with none, to join through a configuration change.
   */
  start(id: number, storage = this.nodes.get(id)?.storage ?? new MemoryStorage()): HostNode {
    const { raft, replyWrite, replyRead, ...hostOptions } = this.options;
    const replies = this.nodes.get(id)?.replies ?? [];
    const host = new NodeHost(
      {
        ...hostOptions,
        raft: {
          electionTimeoutTicks: 10,
          heartbeatIntervalTicks: 1,
          preVote: true,
          checkQuorum: false,
          ...raft,
          id,
          seed: id * 7919 + 17,
          voters: this.voters.includes(id) ? this.voters : [],
        },
        storage,
      },
      {
        sendRaft: (m) => {
          for (const hook of this.sendHooks) hook(m);
          this.sent.push(m);
          this.queue.push(m);
        },
        reply: (r) => replies.push(r),
        ...(replyWrite === true ? { replyWrite: (requestId: number, result: KvWriteResult, index: number) => replies.push({ kind: 'write', requestId, result, index }) } : {}),
        ...(replyRead === true ? { replyRead: (requestId: number, index: number, value: Uint8Array | undefined) => replies.push({ kind: 'read', requestId, index, value: value?.slice() }) } : {}),
        flushRaft: () => {
          for (const hook of this.flushHooks) hook(id);
        },
      },
    );
    const node: HostNode = { id, host, storage, replies };
    this.nodes.set(id, node);
    return node;
  }

  node(id: number): HostNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  host(id: number): NodeHost {
    return this.node(id).host;
  }

  /** Hands `req` to node `id` as its worker loop would: the request, the read flush, the Readys. */
  request(id: number, ...reqs: ClientRequest[]): void {
    const host = this.host(id);
    for (const req of reqs) host.handleRequest(req);
    host.flush();
    host.processReady();
  }

  /** Replies node `id` gave to `requestId`, in order. */
  repliesTo(id: number, requestId: number): ClientReply[] {
    return this.node(id).replies.filter((r) => r.requestId === requestId);
  }

  /** Delivers queued messages and processes Readys until nothing is left to deliver. */
  deliverAll(): void {
    for (const node of this.nodes.values()) node.host.processReady();
    for (let rounds = 0; this.queue.length > 0; rounds++) {
      if (rounds > ROUNDS_MAX) throw new Error('the network does not settle');
      this.deliverWhere(() => true);
    }
  }

  /**
   * Steps the queued messages `which` selects into their recipients, in order, keeping the
   * rest queued; with `process` false the recipients' Readys are left for the test to handle.
   */
  deliverWhere(which: (m: Message) => boolean, process = true): void {
    const chosen = this.queue.filter(which);
    this.queue = this.queue.filter((m) => !which(m));
    for (const m of chosen) {
      const to = this.nodes.get(m.to);
      if (to === undefined || this.isolated.has(m.to) || this.isolated.has(m.from)) continue;
      to.host.step(m);
      if (process) to.host.processReady();
    }
  }

  /** `n` rounds of: tick every node (or those in `only`), then deliver until quiet. */
  tickAll(n = 1, only?: readonly number[]): void {
    for (let i = 0; i < n; i++) {
      for (const [id, node] of this.nodes) if (only === undefined || only.includes(id)) node.host.tick();
      this.deliverAll();
    }
  }

  /** The node that leads, among those not isolated; throws if none or several. */
  leader(): number {
    const leaders = [...this.nodes.values()].filter((n) => !this.isolated.has(n.id) && n.host.raft.role === 'leader');
    if (leaders.length !== 1) throw new Error(`expected one leader, found ${leaders.map((n) => n.id).join(', ') || 'none'}`);
    return leaders[0]!.id;
  }

  /**
   * Ticks until some node leads, hands leadership to `id` if another won, then ticks a
   * little more so that the leader's first entry commits and applies everywhere (a leader
   * serves reads only after that).
   */
  elect(id: number): void {
    let leader = this.awaitLeader();
    if (leader !== id) {
      this.host(leader).transferLeadership(id);
      this.deliverAll();
      leader = this.awaitLeader(leader);
    }
    if (leader !== id) throw new Error(`node ${id} does not take over leadership`);
    this.tickAll(2);
    for (const node of this.nodes.values()) {
      if (this.isolated.has(node.id)) continue;
      if (node.host.raft.leaderId !== id || node.host.appliedIndex !== this.host(id).raft.log.committed) {
        throw new Error(`node ${node.id} has not caught up with leader ${id}`);
      }
    }
  }

  /** Ticks every node until one not isolated (and not `notId`) leads, and returns it. */
  awaitLeader(notId = NONE): number {
    for (let i = 0; i < 200; i++) {
      const leaders = [...this.nodes.values()].filter((n) => !this.isolated.has(n.id) && n.id !== notId && n.host.raft.role === 'leader');
      if (leaders.length === 1) return leaders[0]!.id;
      this.tickAll(1);
    }
    throw new Error('no leader elected');
  }
}
