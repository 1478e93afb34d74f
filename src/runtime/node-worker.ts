/**
 * The worker entry: a thread that runs one Raft node or several (a cluster with fewer cores
 * than nodes puts several on one thread: `nodeThreads`, cluster/options.ts). The thread owns
 * its loop, so it blocks: it sleeps in `Atomics.wait` on its doorbell (which every ring into
 * any of its nodes rings) until a frame arrives or a node's next tick is due. Each pass gives
 * every node a turn: it ticks the node for each tick due (read from the clock at the start of
 * that node's turn), drains its inbound rings, and hands the whole batch to its
 * {@link NodeHost}, whose Ready becomes one WAL write, the outgoing frames and the applied
 * entries. Busy nodes never sleep and take all that has arrived per turn, so
 * batches grow with load. Nodes on one thread hand each other their messages as they are,
 * with no encoding, copy or decoding, while the receiver runs and nothing waits in the
 * ring's queue before it (else, and between threads, they go through the rings).
 *
 * Control messages arrive on MessagePorts read with `receiveMessageOnPort` when a control
 * word moves: the loop never returns to the event loop, so nothing here depends on it. Each
 * node has its port and word (status, partition, membership, close), and the thread has one
 * of its own (host a node, crash one, exit). Replies, and the diagnostics of this thread (the
 * core's decisions, what WAL recovery repaired), go to the main thread with
 * `parentPort.postMessage`, which needs no event loop either; the main thread publishes the
 * diagnostics on its own channels (diagnostics.ts).
 *
 * Nothing a client writes can stop a node: request frames go to
 * {@link NodeHost.handleRequestFrame}, which refuses what is malformed; a client link whose
 * shared ring memory itself is corrupt (a bad header or index, on the request or the reply
 * ring) is cut off for good, its frames and replies dropped and counted, and the node goes on.
 * A node that fails (its storage, or a bug) is dropped from the thread and reported ('left',
 * with its error); the other nodes of the thread go on.
 */

import { performance } from 'node:perf_hooks';
import { ErrorCode, fail, RingraftError } from '../base/index.ts';
import { readlinkSync } from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { type Message, type TraceEvent } from '../core/index.ts';
import { DecodeError, decodeMessage, encodedMessageBytes, encodeMessageInto } from '../codec/index.ts';
import { MemoryStorage, WalStorage, walRecoveryChannel, type RecoveryReport } from '../storage/index.ts';
import { Doorbell, RingConsumer, RingError, RingErrorCode, RingProducer } from '../transport/index.ts';
import { encodedReplyBytes, writeReplyTo, type ClientReply } from './client-protocol.ts';
import { KV_RESULT_PUT, type KvWriteResult, type StateMachine } from '../kv/index.ts';
import { checkedMachine, importFactory } from './state-machine-module.ts';
import { LatencyHistogram } from './latency.ts';
import { NodeHost, type HostStorage } from './node-host.ts';
import { Outbox, type FrameCodec } from './outbox.ts';
import { ThreadSyncAgent } from './sync-thread.ts';
import {
  plainError,
  type ClientLinkData,
  type ControlReply,
  type ControlRequest,
  type ForwardedDiagnostic,
  type NodeThreadData,
  type NodeWorkerData,
  type PeerLink,
  type StateMachineSpec,
  type ThreadRequest,
} from './worker-protocol.ts';

/** Frames taken from one ring per turn, so that no ring starves the others or the clock. */
const FRAMES_PER_RING_MAX = 4096;
/** Messages waiting at most in a node's inbox from the nodes of its thread; beyond, they go by ring. */
const LOCAL_INBOX_MAX = 65_536;
/** Ticks replayed at most after the loop was held up; beyond that the time is skipped. */
const TICKS_CATCH_UP_MAX = 1000;
/** Ticks an idle node sleeps at most before it looks at its clock again. */
const TICKS_IDLE_MAX = 100;
/**
 * How long a thread of the cluster's looks for input before it sleeps, after a pass that
 * worked: a client that sends again within this finds it awake and needs no wake-up (its
 * futex call, and the sleeper's latency). On 2 cores, the three nodes on one thread: 8% more
 * linearizable gets/s at 256 in flight (the client's CPU per get 1.27 -> 1.18 µs), some 3%
 * more puts; an idle node spends it once per timer that wakes it. Not for a server's node
 * thread (unmeasured there).
 */
const SPIN_AFTER_WORK_MS = 0.03;
/** The longest a thread sleeps with no node due sooner (control messages wake it at once). */
const THREAD_IDLE_MS_MAX = 10_000;
/** Replies queued for one client link beyond its ring (watches are cut off at half; see replyQueueBytesMax). */
const REPLY_QUEUE_MAX = 1 << 20;

const messageCodec: FrameCodec<Message> = {
  encodedBytes: encodedMessageBytes,
  write: (m, writer, memory, offset) => {
    const length = encodeMessageInto(m, memory, offset);
    if (length !== writer.remainingBytes) fail(`a message of ${length} bytes filled a frame of ${writer.remainingBytes}`);
  },
};

/**
 * The host numbers the requests of every client link in one space: link * 2^32 + the
 * client's own u32 request id. Replies go back on the link, with the client's number.
 */
const LINK_SPAN = 2 ** 32;

const replyCodec: FrameCodec<ClientReply> = {
  encodedBytes: encodedReplyBytes,
  write: (r, writer) => writeReplyTo(writer, r, r.requestId % LINK_SPAN),
};

/** One client thread's rings. */
interface ClientLink {
  /** The link's request ids are [base, base + LINK_SPAN). */
  readonly base: number;
  readonly requests: RingConsumer;
  readonly replies: Outbox<ClientReply>;
  /** Hands one request frame of this link to the host (made once: no closure per turn). */
  readonly take: (memory: Uint8Array, offset: number, length: number) => void;
  /** Its ring memory was found corrupt: nothing is read from or written to it any more. */
  broken: boolean;
}

interface Peer {
  readonly inbound: RingConsumer;
  readonly outbox: Outbox<Message>;
}

/** Where a node of a thread stands: waiting for 'run', running Raft, or gone. */
type NodeState = 'pending' | 'running' | 'closed';

/** The running node of this thread with id `id`, if there is one. */
type SiblingOf = (id: number) => NodeWorker | undefined;

/** A write reply whose fields the node worker sets for each answer (see sendWriteReply). */
interface WriteReplyScratch {
  readonly kind: 'write';
  requestId: number;
  result: KvWriteResult;
  index: number;
}

/** A read reply whose fields the node worker sets for each answer (see sendReadReply). */
interface ReadReplyScratch {
  readonly kind: 'read';
  requestId: number;
  index: number;
  value: Uint8Array | undefined;
}

function copyWriteReply(r: ClientReply): ClientReply {
  return { ...r };
}

/** A read reply that must wait: its value is the store's bytes only for now (HostSink.replyRead). */
function copyReadReply(r: ClientReply): ClientReply {
  return r.kind === 'read' ? { kind: 'read', requestId: r.requestId, index: r.index, value: r.value?.slice() } : r;
}

class NodeWorker {
  readonly id: number;
  private readonly writeReply: WriteReplyScratch = { kind: 'write', requestId: 0, result: KV_RESULT_PUT, index: 0 };
  private readonly readReply: ReadReplyScratch = { kind: 'read', requestId: 0, index: 0, value: undefined };
  state: NodeState = 'pending';
  /** When the node wants its next turn if no frame comes first (performance.now() ms). */
  wakeAt = 0;
  private readonly host: NodeHost;
  private readonly peers = new Map<number, Peer>();
  /**
   * Messages from the running nodes of this thread, as they were sent, in order; taken at
   * this node's next turn (every pass gives each node one), so they never outlast a pass;
   * past LOCAL_INBOX_MAX the senders use the ring. `spareInbox` is the other array of the two
   * swapped at each turn.
   */
  private localInbox: Message[] = [];
  private spareInbox: Message[] = [];
  /** By link index. */
  private readonly clients: ClientLink[] = [];
  private readonly controlWord: Int32Array;
  private controlSeen = 0;
  private cut = new Set<number>();
  private nextTickAt = 0;
  /** A 'close' arrived: the node closes at the start of its turn. */
  private closeRequested = false;
  private readonly tickMs: number;
  private readonly replyQueueBytesMax: number;
  private readonly peerQueueBytesMax: number;
  /** Whether its log syncs each write (a data directory, fsync 'always'). */
  private readonly syncs: boolean;
  private readonly persistLatency = new LatencyHistogram();
  private readonly applyLatency = new LatencyHistogram();
  /**
   * When each Ready whose writes are not durable yet was taken (performance.now()), oldest
   * first from `readyAtHead`: a Ready's writes may become durable after later Readys are taken
   * (a sync thread), and they finish in order.
   */
  private readonly readyAt: number[] = [];
  private readyAtHead = 0;
  /** When the last Ready finished its writes. */
  private persistedAt = 0;

  constructor(
    private readonly data: NodeWorkerData,
    app: (() => StateMachine) | undefined,
    /** Wakes the thread (rings its doorbell): the state machine's async work has settled. */
    private readonly wake: () => void,
    private readonly siblingOf: SiblingOf,
    /** The thread's doorbell, which a node's sync thread rings after each sync. */
    doorbell: SharedArrayBuffer,
  ) {
    const s = data.settings;
    this.id = data.id;
    this.tickMs = s.node.tickMs;
    this.replyQueueBytesMax = s.node.replyQueueBytesMax;
    this.peerQueueBytesMax = s.node.peerQueueBytesMax;
    this.syncs = s.dataDir !== undefined && s.node.fsync === 'always';
    for (const link of data.peers) this.addPeer(link);
    this.cut = new Set(data.cut);
    this.controlWord = new Int32Array(data.controlWord);
    const storage: HostStorage = s.dataDir === undefined ? new MemoryStorage() : openWal(s.dataDir, s.node.fsync, this.syncs && s.node.syncThread ? doorbell : undefined);
    // A host that cannot be made (a snapshot it cannot restore, a state machine whose factory
    // throws) leaves no file open behind it.
    try {
      this.host = this.makeHost(data, storage, app);
    } catch (error) {
      storage.abandon?.();
      throw error;
    }
    // After the host: a link hands its frames to it.
    for (const link of data.clients) this.addClient(link);
  }

  private makeHost(data: NodeWorkerData, storage: HostStorage, app: (() => StateMachine) | undefined): NodeHost {
    const s = data.settings;
    return new NodeHost(
      {
        raft: { ...s.raft, id: data.id, voters: data.voters, seed: data.seed, trace: forwardTrace },
        storage,
        node: s.node,
        ...(app === undefined ? {} : { app }),
        // The time of each Ready's write (its writev and fdatasync, and early sends) and of
        // its apply, for the node's metrics.
        hooks: {
          beforePersist: () => {
            this.readyAt.push(performance.now());
          },
          afterPersist: (rd) => {
            this.persistedAt = performance.now();
            const readyAt = this.readyAt[this.readyAtHead++]!;
            if (this.readyAtHead === this.readyAt.length) {
              this.readyAt.length = 0;
              this.readyAtHead = 0;
            }
            if (rd.entries.length > 0 || rd.hardState !== undefined || rd.snapshot !== undefined) this.persistLatency.observeMs(this.persistedAt - readyAt);
          },
          afterAdvance: (rd) => {
            if (rd.committedEntries.length > 0) this.applyLatency.observeMs(performance.now() - this.persistedAt);
          },
        },
      },
      {
        sendRaft: (m) => this.sendRaft(m),
        reply: (r) => this.sendReply(r),
        replyWrite: (requestId, result, index) => this.sendWriteReply(requestId, result, index),
        replyRead: (requestId, index, value) => this.sendReadReply(requestId, index, value),
        // A leader's early AppendEntries leave before its own fdatasync, and a follower's
        // acknowledgement before it applies: the peers work meanwhile.
        flushRaft: () => {
          for (const p of this.peers.values()) p.outbox.flush();
        },
        awaiting: (work) => {
          void work.then(this.wake);
        },
      },
    );
  }

  /**
   * One turn of the node; whether it did any work. A pending node only reads its control
   * port for 'run' (or 'close'); a running one reads control, ticks what has come due, drains
   * its rings, processes the Ready and flushes what it sends. When it did nothing,
   * {@link wakeAt} says when it wants its next turn. The clock is read here, at the start of
   * this node's turn, never passed in: on a shared thread another node's turn (a long write)
   * may come between, and a lease must be judged by the time of now.
   */
  turn(): boolean {
    const wasPending = this.state === 'pending';
    let worked = this.readControl();
    // A close asked by control runs here, outside the handling of the message, so that what
    // it throws (a failed last write) is the node's failure, not an answer nobody awaits.
    if (this.closeRequested) {
      this.close();
      return true;
    }
    const now = performance.now();
    if (wasPending) {
      // Told to run: its clock starts now, and its first turn is the next.
      if (this.state === 'running') this.nextTickAt = now + this.tickMs;
      this.wakeAt = now + (this.state === 'running' ? 0 : TICKS_IDLE_MAX * this.tickMs);
      return worked;
    }
    if (this.state !== 'running') return worked;
    // A restore of the state machine that has settled is finished before anything else: until
    // then the node would drop what it takes.
    if (this.host.hasSettledWork) worked = this.host.processReady() || worked;
    // Time first: every tick that has come due, in order (an idle node sleeps through
    // several), before any request is judged. A leader whose thread was paused (a stopped
    // process, a long write) must see its lease run out before it looks at a lease read that
    // waited meanwhile, or it would answer from a lease that had expired while it slept.
    for (let ticks = 0; now >= this.nextTickAt; ticks++) {
      if (ticks === TICKS_CATCH_UP_MAX) {
        // Far behind: the missed time is not replayed tick by tick (a lease is long over).
        this.nextTickAt = now + this.tickMs;
        break;
      }
      this.host.tick();
      this.nextTickAt += this.tickMs;
      worked = true;
    }
    worked = this.drainPeers() || worked;
    worked = this.drainRequests() || worked;
    this.host.flush();
    worked = this.host.processReady() || worked;
    this.flushOutboxes();
    const backedUp = this.endLaggingWatches();
    // Nothing to do until a frame arrives or the node's next timer is due; a client whose
    // requests wait for it to read its replies is looked at again after one tick.
    const idleTicks = backedUp ? 1 : Math.min(this.host.raft.ticksUntilDue(), TICKS_IDLE_MAX);
    this.wakeAt = this.nextTickAt + (idleTicks - 1) * this.tickMs;
    return worked;
  }

  /** Closes the node: a pending one closes its storage, a running one also sends what it has queued. */
  close(): void {
    if (this.state === 'closed') return;
    const wasRunning = this.state === 'running';
    this.state = 'closed';
    this.data.controlPort.close();
    this.localInbox.length = 0;
    this.host.close();
    if (wasRunning) this.flushOutboxes();
  }

  /**
   * Drops the node as a crash would: its files are closed and nothing more is written (a
   * deferred hard state is lost, as in a crash), nothing queued is sent. For a node that
   * failed, and for a crash asked of one node of a shared thread.
   */
  abandon(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.data.controlPort.close();
    this.localInbox.length = 0;
    this.host.abandon();
  }

  /**
   * Whether the node leads, syncs its writes, and has messages from the nodes of its thread
   * waiting (their acknowledgements): then it commits sooner by taking them at once. In
   * memory there is no sync to save, and the extra turn only made its batches smaller (5 to 9%
   * fewer puts/s; durable, 15 to 20% more).
   */
  get isSyncingLeaderWithDirectInput(): boolean {
    return this.syncs && this.localInbox.length > 0 && this.state === 'running' && this.host.raft.role === 'leader';
  }

  /** Whether the node waits for its state machine's async work (a restore, a snapshot): the thread must turn its event loop. */
  get isAwaiting(): boolean {
    return this.state === 'running' && this.host.isAwaiting;
  }

  /** Whether anything waits for this node: a control message, a request, a peer's frame, its state machine's work done. */
  hasInput(): boolean {
    if (Atomics.load(this.controlWord, 0) !== this.controlSeen) return true;
    if (this.state !== 'running') return false;
    if (this.host.hasSettledWork || this.localInbox.length > 0) return true;
    for (const c of this.clients) if (c !== undefined && this.isReadable(c) && this.hasRequests(c)) return true;
    for (const p of this.peers.values()) if (p.inbound.hasData()) return true;
    return false;
  }

  /**
   * Whether the node reads this link's requests now: not if its ring is corrupt, nor while
   * more than half its reply queue's bytes wait for the client to read them (a client that
   * does not read its replies is given no more work, rather than have them discarded).
   */
  private isReadable(c: ClientLink): boolean {
    return !c.broken && c.replies.queuedBytes <= this.replyQueueBytesMax / 2;
  }

  private hasRequests(c: ClientLink): boolean {
    try {
      return c.requests.hasData();
    } catch (error) {
      this.breakLink(c, error);
      return false;
    }
  }

  /**
   * Ends the watches of every client link whose reply queue is past half its bounds (the
   * client does not keep up with its watches); returns whether any link holds back its
   * requests for that reason.
   */
  private endLaggingWatches(): boolean {
    let backedUp = false;
    for (const c of this.clients) {
      if (c === undefined || c.broken || !this.isLagging(c)) continue;
      this.host.endWatches(ErrorCode.WATCH_LAGGING, c.base, c.base + LINK_SPAN);
      backedUp ||= c.replies.queuedBytes > this.replyQueueBytesMax / 2;
    }
    return backedUp;
  }

  /** Whether a link's reply queue is past half of either of its bounds. */
  private isLagging(c: ClientLink): boolean {
    return c.replies.queuedCount > REPLY_QUEUE_MAX / 2 || c.replies.queuedBytes > this.replyQueueBytesMax / 2;
  }

  /**
   * A write's answer, from one reply object reused for every call: the outbox encodes it at
   * once, or copies it if it has to wait (see Outbox.send).
   */
  private sendWriteReply(requestId: number, result: KvWriteResult, index: number): void {
    const r = this.writeReply;
    r.requestId = requestId;
    r.result = result;
    r.index = index;
    this.sendReply(r, copyWriteReply);
  }

  /**
   * A read's answer, as sendWriteReply does; `value` is the store's bytes only for this call,
   * so a reply that has to wait holds a copy of them.
   */
  private sendReadReply(requestId: number, index: number, value: Uint8Array | undefined): void {
    const r = this.readReply;
    r.requestId = requestId;
    r.index = index;
    r.value = value;
    this.sendReply(r, copyReadReply);
    r.value = undefined;
  }

  /**
   * The host's reply sink. A watch event for a link past half its reply queue's bounds ends
   * that link's watches instead of being queued: events are never discarded from the middle
   * of a watch (which only the queue's full bounds would do), a gap its client could not see.
   */
  private sendReply(r: ClientReply, keep?: (r: ClientReply) => ClientReply): void {
    const c = this.clients[Math.floor(r.requestId / LINK_SPAN)];
    if (c === undefined || c.broken) return;
    if (r.kind === 'watch-event' && this.isLagging(c)) {
      this.host.endWatches(ErrorCode.WATCH_LAGGING, c.base, c.base + LINK_SPAN);
      return;
    }
    try {
      c.replies.send(r, keep);
    } catch (error) {
      // A reply larger than the link's frames fails its own request (or ends its watch), typed;
      // the link and the node go on. Every kind of reply is bounded below the frames the node
      // is given, so this is a bound set wrong, not load: it must not take the node down.
      if (error instanceof RingError && error.code === RingErrorCode.FRAME_TOO_LARGE && r.kind !== 'error' && r.kind !== 'watch-end') {
        this.host.noteReplyTooLarge();
        const code = ErrorCode.FRAME_TOO_LARGE;
        this.sendReply(r.kind === 'watch-event' || r.kind === 'watch-start' ? { kind: 'watch-end', requestId: r.requestId, code } : { kind: 'error', requestId: r.requestId, code, leaderHint: 0, proposed: false });
        return;
      }
      this.breakLink(c, error);
    }
  }

  /**
   * Cuts off a client link whose ring memory is corrupt (its client wrote what the ring
   * protocol does not allow): its frames are not read, its replies not written, its
   * watches dropped; the node goes on serving everyone else. Any other error is a bug.
   */
  private breakLink(c: ClientLink, error: unknown): void {
    if (!(error instanceof RingError && error.code === RingErrorCode.CORRUPT_RING)) throw error;
    if (c.broken) return;
    c.broken = true;
    c.replies.clear();
    this.host.noteRequestFramesDropped(1);
    this.host.endWatches(ErrorCode.CLOSED, c.base, c.base + LINK_SPAN);
  }

  private addPeer(link: PeerLink): void {
    const producer = new RingProducer(link.outRing, { doorbell: new Doorbell(link.peerDoorbell) });
    this.peers.set(link.id, {
      inbound: new RingConsumer(link.inRing),
      outbox: new Outbox(producer, messageCodec, this.data.settings.node.peerQueueMessagesMax, this.peerQueueBytesMax),
    });
  }

  private sendRaft(m: Message): void {
    if (this.cut.has(m.to)) return;
    const peer = this.peers.get(m.to);
    if (peer === undefined) return;
    const sibling = peer.outbox.queuedCount === 0 ? this.siblingOf(m.to) : undefined;
    if (sibling === undefined || !sibling.receiveLocal(m)) peer.outbox.send(m);
  }

  /**
   * Takes a message from a running node of this thread; false (the sender uses the ring)
   * beyond LOCAL_INBOX_MAX waiting, so that no sender's messages are ever dropped here: the
   * senders whose turns come first must not crowd out the others'.
   */
  receiveLocal(m: Message): boolean {
    if (this.state === 'closed' || this.localInbox.length >= LOCAL_INBOX_MAX) return false;
    this.localInbox.push(m);
    return true;
  }

  private drainPeers(): boolean {
    let frames = 0;
    for (const [id, peer] of this.peers) {
      const cut = this.cut.has(id);
      frames += peer.inbound.drainRanges((memory, offset, length) => {
        if (!cut) this.stepFrom(id, memory.subarray(offset, offset + length));
      }, FRAMES_PER_RING_MAX);
    }
    // After the rings: what waits there was mostly sent before what was handed over directly.
    const inbox = this.localInbox;
    if (inbox.length === 0) return frames > 0;
    this.localInbox = this.spareInbox;
    let stepped = 0;
    try {
      for (const m of inbox) {
        if (this.cut.has(m.from)) continue;
        stepped++;
        this.host.step(m);
      }
    } finally {
      inbox.length = 0;
      this.spareInbox = inbox;
      this.host.notePeerMessagesDirect(stepped);
    }
    return true;
  }

  /**
   * Steps one message from peer `id`'s ring. Over TCP a peer is another process: a message
   * that does not decode, or that names another sender than the link's or another receiver
   * than this node, is dropped and counted, never the node's death.
   */
  private stepFrom(id: number, bytes: Uint8Array): void {
    let m: Message;
    try {
      m = decodeMessage(bytes);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      this.host.notePeerMessageRefused();
      return;
    }
    if (m.from !== id || m.to !== this.data.id) {
      this.host.notePeerMessageRefused();
      return;
    }
    this.host.step(m);
  }

  private addClient(link: ClientLinkData): void {
    if (this.clients[link.index] !== undefined) return;
    const base = link.index * LINK_SPAN;
    let requests: RingConsumer;
    let replies: Outbox<ClientReply>;
    try {
      requests = new RingConsumer(link.requestRing);
      // Requests left from before a crash belong to attempts the client has already failed
      // (and will retry): serving them now would only answer no one, or start orphan watches.
      requests.drainRanges(() => {});
      const producer = new RingProducer(link.replyRing, { doorbell: new Doorbell(link.clientDoorbell) });
      replies = new Outbox(producer, replyCodec, REPLY_QUEUE_MAX, this.replyQueueBytesMax);
    } catch (error) {
      // A ring already corrupt: the link is not made (a later add-client may try again).
      if (!(error instanceof RingError && error.code === RingErrorCode.CORRUPT_RING)) throw error;
      this.host.noteRequestFramesDropped(1);
      return;
    }
    const host = this.host;
    this.clients[link.index] = {
      base,
      requests,
      replies,
      // Writes go straight from ring memory into the batch entry: no decoded copy.
      take: (memory, offset, length) => host.handleRequestFrame(memory, offset, length, base),
      broken: false,
    };
  }

  private drainRequests(): boolean {
    let frames = 0;
    for (const c of this.clients) {
      if (c === undefined || !this.isReadable(c)) continue;
      try {
        frames += c.requests.drainRanges(c.take, FRAMES_PER_RING_MAX);
      } catch (error) {
        this.breakLink(c, error);
      }
    }
    return frames > 0;
  }

  private flushOutboxes(): void {
    for (const p of this.peers.values()) p.outbox.flush();
    for (const c of this.clients) {
      if (c === undefined || c.broken) continue;
      try {
        c.replies.flush();
      } catch (error) {
        this.breakLink(c, error);
      }
    }
  }

  private readControl(): boolean {
    const seen = Atomics.load(this.controlWord, 0);
    if (seen === this.controlSeen) return false;
    this.controlSeen = seen;
    while (this.state !== 'closed' && !this.closeRequested) {
      const msg = receiveMessageOnPort(this.data.controlPort);
      if (msg === undefined) break;
      this.handleControl(msg.message as ControlRequest);
    }
    return true;
  }

  private handleControl(req: ControlRequest): void {
    let reply: ControlReply;
    try {
      reply = { type: 'reply', callId: req.callId, ...this.control(req) };
    } catch (error) {
      if (!(error instanceof RingraftError)) throw error;
      reply = { type: 'error', callId: req.callId, code: error.code, message: error.message };
    }
    parentPort!.postMessage(reply);
  }

  private control(req: ControlRequest): Omit<Extract<ControlReply, { type: 'reply' }>, 'type' | 'callId'> {
    // The starter says 'run' or 'close' first, and nothing else before it.
    if (this.state === 'pending' && req.type !== 'run' && req.type !== 'close') fail(`control message ${req.type} before run`);
    switch (req.type) {
      case 'run':
        if (this.state !== 'pending') fail(`node ${this.id} told to run twice`);
        this.state = 'running';
        return {};
      case 'status':
        return { status: this.host.status(), timings: { persist: this.persistLatency.snapshot(), apply: this.applyLatency.snapshot() } };
      case 'transfer-leadership':
        this.host.transferLeadership(req.target);
        return {};
      case 'conf-change':
        return { index: this.host.proposeConfChange(req.change) };
      case 'partition':
        this.cut = new Set(req.cut);
        return {};
      case 'add-peer':
        if (!this.peers.has(req.link.id)) this.addPeer(req.link);
        return {};
      case 'add-client':
        this.addClient(req.link);
        return {};
      case 'close':
        this.closeRequested = true;
        return {};
      default:
        throw new RingraftError(ErrorCode.INVALID_ARGUMENT, `unknown control message ${(req as { type: string }).type}`);
    }
  }
}

/** Opens a node's WAL, its syncs on a sync thread ringing `doorbell` if given; the thread stops if the WAL does not open. */
function openWal(dir: string, durability: 'always' | 'none', doorbell: SharedArrayBuffer | undefined): WalStorage {
  const syncAgent = doorbell === undefined ? undefined : new ThreadSyncAgent(doorbell);
  try {
    return WalStorage.open(dir, { durability, ...(syncAgent === undefined ? {} : { syncAgent }) });
  } catch (error) {
    syncAgent?.close();
    throw error;
  }
}

/**
 * Posts a diagnostics message to the main thread, which publishes it on its channel of the
 * same name. Always, whether or not anyone listens there (see ForwardedDiagnostic).
 */
function forward(d: ForwardedDiagnostic): void {
  parentPort!.postMessage(d satisfies ControlReply);
}

function forwardTrace(event: TraceEvent): void {
  forward({ type: 'diagnostic', channel: 'ringraft:raft', message: event });
}

function forwardWalRecovery(message: unknown): void {
  forward({ type: 'diagnostic', channel: 'ringraft:wal:recovery', message: message as RecoveryReport & { readonly dir: string } });
}

/**
 * The thread's loop over its nodes. Nodes come and go by the thread's own control messages:
 * 'host' starts one (it opens its storage, says 'started' and waits for 'run' on its own
 * port), 'crash' drops one as a crash would, 'exit' closes them all and ends the thread. A
 * node that throws is dropped and reported ('left', with its error); the others go on. A
 * thread started for one node alone (`sole`, the server's) ends with that node instead, and
 * a node that throws kills it, as its own process would be.
 */
class NodeThread {
  private readonly nodes: NodeWorker[] = [];
  private readonly controlWord: Int32Array | undefined;
  private controlSeen = 0;
  private exiting = false;
  /** What each node that failed this pass died of, until it is reported. */
  private readonly left = new Map<number, unknown>();
  private readonly isReady = (): boolean => this.hasInput();
  private readonly wake = (): void => this.doorbell.ring();
  private readonly siblingOf: SiblingOf = (id) => {
    for (const node of this.nodes) if (node.id === id && node.state === 'running') return node;
    return undefined;
  };
  /**
   * Whether a node ever waited here for its state machine's async work: work that may still be
   * pending when the nodes are gone (a timer, a read), and would keep the thread's event loop,
   * and so the thread, alive. Such a thread ends itself once its loop is done.
   */
  awaitedWork = false;

  constructor(
    private readonly doorbell: Doorbell,
    private readonly controlPort: MessagePort | undefined,
    controlWord: SharedArrayBuffer | undefined,
    private readonly sole: boolean,
    /** Makes the cluster's own state machine for a node (one per node, and again on each snapshot it installs). */
    private readonly app: (() => StateMachine) | undefined,
  ) {
    this.controlWord = controlWord === undefined ? undefined : new Int32Array(controlWord);
  }

  /** Starts node `data` on this thread: it says 'started' (or 'left', with what failed) and waits for 'run'. */
  host(data: NodeWorkerData): void {
    let node: NodeWorker;
    try {
      node = new NodeWorker(data, this.app, this.wake, this.siblingOf, this.doorbell.buffer);
    } catch (error) {
      if (this.sole) throw error;
      data.controlPort.close();
      parentPort!.postMessage({ type: 'left', id: data.id, error: plainError(error) } satisfies ControlReply);
      return;
    }
    this.nodes.push(node);
    parentPort!.postMessage({ type: 'started', id: data.id, osThreadId: osThreadId() } satisfies ControlReply);
  }

  /**
   * The loop, until told to exit. It blocks in `Atomics.wait` while no node waits for its state
   * machine's async work; while one does, that work needs this thread's event loop, so the loop
   * yields to it after each busy pass and sleeps in `Atomics.waitAsync` instead.
   */
  async run(): Promise<void> {
    /** Whether the pass before this one worked. */
    let busy = false;
    while (!this.exiting) {
      let worked = this.readControl();
      let wakeAt = performance.now() + THREAD_IDLE_MS_MAX;
      for (const node of this.nodes) {
        worked = this.turnOf(node) || worked;
        // A durable leader of this thread takes what the node just sent it (an
        // acknowledgement) at once, not after the other nodes' turns: a commit waits for one
        // follower's fdatasync, not for every follower's.
        if (this.nodes.length > 1) {
          for (const other of this.nodes) if (other !== node && other.isSyncingLeaderWithDirectInput) this.turnOf(other);
        }
      }
      for (const node of this.nodes) if (node.state !== 'closed' && node.wakeAt < wakeAt) wakeAt = node.wakeAt;
      this.dropClosed();
      if (this.sole && this.nodes.length === 0) return;
      const sleepMs = Math.max(0, wakeAt - performance.now());
      if (this.nodes.some((node) => node.isAwaiting)) {
        this.awaitedWork = true;
        if (worked) await new Promise((resolve) => setImmediate(resolve));
        else await this.doorbell.waitAsync(sleepMs, this.isReady);
      } else if (!worked) {
        if (!this.sole && busy && this.spin(Math.min(sleepMs, SPIN_AFTER_WORK_MS))) continue;
        this.doorbell.wait(Math.max(0, wakeAt - performance.now()), this.isReady);
      }
      busy = worked;
    }
    // Each node closes on its own: one whose last write fails is that node's failure, and
    // the others still close theirs.
    for (const node of this.nodes) {
      try {
        node.close();
      } catch (error) {
        if (this.sole) throw error;
        this.fail(node, error);
      }
    }
    this.dropClosed();
  }

  /** Looks for input for up to `ms` without sleeping; whether some came. */
  private spin(ms: number): boolean {
    const until = performance.now() + ms;
    do if (this.hasInput()) return true;
    while (performance.now() < until);
    return false;
  }

  /** One turn of `node`; whether it worked. A node that throws is dropped (the thread's own error when it runs one node alone). */
  private turnOf(node: NodeWorker): boolean {
    try {
      return node.turn();
    } catch (error) {
      if (this.sole) throw error;
      this.fail(node, error);
      return false;
    }
  }

  private hasInput(): boolean {
    if (this.controlWord !== undefined && Atomics.load(this.controlWord, 0) !== this.controlSeen) return true;
    for (const node of this.nodes) if (node.hasInput()) return true;
    return false;
  }

  /**
   * Drops a node as a crash would (a crash asked of it: `error` undefined; or it threw
   * `error`), to be reported as 'left' with what it died of. Closing its files may fail too:
   * a failure of its own, unless it already died of one.
   */
  private fail(node: NodeWorker, error: unknown): void {
    let died = error;
    try {
      node.abandon();
    } catch (closing) {
      died ??= closing;
    }
    if (died !== undefined) this.left.set(node.id, died);
  }

  /** Takes the nodes that closed, crashed or failed out of the loop, and says so to the main thread. */
  private dropClosed(): void {
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i]!;
      if (node.state !== 'closed') continue;
      this.nodes.splice(i, 1);
      if (this.sole) continue;
      const error = this.left.get(node.id);
      this.left.delete(node.id);
      parentPort!.postMessage({ type: 'left', id: node.id, ...(error === undefined ? {} : { error: plainError(error) }) } satisfies ControlReply);
    }
  }

  private readControl(): boolean {
    if (this.controlWord === undefined || this.controlPort === undefined) return false;
    const seen = Atomics.load(this.controlWord, 0);
    if (seen === this.controlSeen) return false;
    this.controlSeen = seen;
    for (let msg = receiveMessageOnPort(this.controlPort); msg !== undefined; msg = receiveMessageOnPort(this.controlPort)) {
      const req = msg.message as ThreadRequest;
      switch (req.type) {
        case 'host':
          this.host(req.node);
          break;
        case 'crash':
          for (const node of this.nodes) if (node.id === req.id) this.fail(node, undefined);
          this.dropClosed();
          break;
        case 'exit':
          this.exiting = true;
          break;
        default:
          fail(`unknown thread message ${(req as { type: string }).type}`);
      }
    }
    return true;
  }
}

// What WAL recovery repairs is reported on the main thread, once for the thread's nodes.
walRecoveryChannel.subscribe(forwardWalRecovery);
const data = workerData as NodeThreadData | NodeWorkerData;
if ('id' in data) {
  // One node alone (the server's): the thread ends with it.
  const thread = new NodeThread(new Doorbell(data.doorbell), undefined, undefined, true, await appOf(data.stateMachine));
  thread.host(data);
  await thread.run();
  if (thread.awaitedWork) process.exit(0);
} else {
  const thread = new NodeThread(new Doorbell(data.doorbell), data.controlPort, data.controlWord, false, await appOf(data.stateMachine));
  await thread.run();
  data.controlPort.close();
  if (thread.awaitedWork) process.exit(0);
}

/**
 * The maker of the cluster's own state machine: the module imported (once per thread) and its
 * default export called with the options, once per node and store. A module that does not
 * load, or whose default export is not a function, fails the thread, and so the start of its
 * nodes, with an error that names it.
 */
async function appOf(spec: StateMachineSpec | undefined): Promise<(() => StateMachine) | undefined> {
  if (spec === undefined) return undefined;
  const factory = await importFactory(spec.module);
  // Each machine gets options of its own: one that kept state in them would diverge from its replicas.
  return () => checkedMachine(factory(structuredClone(spec.options)), spec.module);
}

/**
 * This thread's id in the kernel, from /proc/thread-self ("PID/task/TID"): how a benchmark
 * reads the CPU time of each node's thread (/proc/PID/task/TID/schedstat). Undefined where
 * there is no /proc.
 */
function osThreadId(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').at(-1));
    return Number.isSafeInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}
