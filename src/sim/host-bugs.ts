/**
 * The planted bugs of the host side (`HostBugs` in options.ts): a storage that writes hard
 * states a tick late, a host loop that sends before it persists, a recovery that "repairs"
 * a corrupt log by cutting it, range reads served from whatever node they reach, and a
 * state machine that applies a transaction in two entries. Each breaks a rule the real host
 * keeps, so the bug-planting suite can show the simulator's checks catch it. Never used
 * outside those checks.
 */
import { fail } from '../base/index.ts';
import type { ConfState, Entry, InitialState, Snapshot } from '../core/index.ts';
import { KvStateMachine, type KvApplyOutcome, type KvApplyOutcomes } from '../kv/index.ts';
import { LeaseKeeper, NodeHost, type HostSink, type HostStorage, type NodeHostOptions } from '../runtime/index.ts';
import type { CorruptLogError, PersistBatch } from '../storage/index.ts';
import type { SimFileSystem } from './sim-fs.ts';

/**
 * The persistHardStateLate host bug: the storage writes entries and snapshots, but a hard
 * state only at the next tick, so a vote or a term can leave before it is durable.
 */
export class LateHardStateStorage implements HostStorage {
  late: PersistBatch['hardState'] = undefined;
  constructor(readonly inner: HostStorage) {}
  initialState(): InitialState {
    return this.inner.initialState();
  }
  entries(lo: number, hi: number, bytesMax: number): Entry[] {
    return this.inner.entries(lo, hi, bytesMax);
  }
  term(i: number): number {
    return this.inner.term(i);
  }
  firstIndex(): number {
    return this.inner.firstIndex();
  }
  lastIndex(): number {
    return this.inner.lastIndex();
  }
  snapshot(): Snapshot {
    return this.inner.snapshot();
  }
  persist(batch: PersistBatch): void {
    if (batch.hardState !== undefined) this.late = batch.hardState;
    this.inner.persist({ ...batch, hardState: undefined });
  }
  createSnapshot(index: number, conf: ConfState, data: Uint8Array, retainEntries?: number): Snapshot {
    return this.inner.createSnapshot(index, conf, data, retainEntries);
  }
  /** The tick after: the hard state reaches the disk. */
  flushLate(): void {
    if (this.late === undefined) return;
    this.inner.persist({ hardState: this.late });
    this.late = undefined;
  }
}

/** The rangeReadsLocal host bug: range reads answered by whichever node they reach, from its own state, as stale ones are. */
export class RangeReadsLocalHost extends NodeHost {
  protected override rangeReadsServedLocally(): boolean {
    return true;
  }
}

/**
 * The splitTxn bug's state machine: a transaction's first put applies in its entry, the
 * others only after the next entry (so the log holds it whole, but the state shows half of it
 * for the length of one entry, and the rest at the wrong index).
 */
class SplitTxnStateMachine extends KvStateMachine {
  private deferred: { key: Uint8Array; value: Uint8Array; lease: number }[] = [];

  protected override txnPut(index: number, key: Uint8Array, value: Uint8Array, lease: number, nth: number): void {
    if (nth === 0) {
      super.txnPut(index, key, value, lease, nth);
      return;
    }
    this.deferred.push({ key, value, lease });
  }

  override apply(index: number, data: Uint8Array): KvApplyOutcome {
    const carried = this.take();
    const outcome = super.apply(index, data);
    this.late(index, carried);
    return outcome;
  }

  override applyBatchInto(index: number, data: Uint8Array, outcomes: KvApplyOutcomes | undefined): void {
    const carried = this.take();
    super.applyBatchInto(index, data, outcomes);
    this.late(index, carried);
  }

  override skip(index: number): void {
    const carried = this.take();
    super.skip(index);
    this.late(index, carried);
  }

  private take(): { key: Uint8Array; value: Uint8Array; lease: number }[] {
    const carried = this.deferred;
    this.deferred = [];
    return carried;
  }

  private late(index: number, carried: readonly { key: Uint8Array; value: Uint8Array; lease: number }[]): void {
    for (const d of carried) {
      // A lease revoked meanwhile is not checked: this is the bug, not the store.
      super.txnPut(index, d.key, d.value, 0, 0);
    }
  }
}

/** The answerWritesTwice host bug: each put that applied is answered twice. */
export class WritesAnsweredTwiceHost extends NodeHost {
  constructor(options: NodeHostOptions, sink: HostSink) {
    const replyWrite = sink.replyWrite ?? fail('the answerWritesTwice bug needs a sink with replyWrite (the simulator\'s has it)');
    super(options, {
      ...sink,
      replyWrite: (requestId, result, index) => {
        replyWrite(requestId, result, index);
        replyWrite(requestId, result, index);
      },
    });
  }
}

/** The splitTxn host bug: the node's state machine applies a transaction in two entries (see SplitTxnStateMachine). */
export class SplitTxnHost extends NodeHost {
  protected override newStateMachine(snapshot: Uint8Array | undefined): KvStateMachine {
    return snapshot === undefined ? new SplitTxnStateMachine(this.stateMachineOptions()) : SplitTxnStateMachine.restore(snapshot, this.stateMachineOptions());
  }
}

/**
 * The leaseNoFreshTtl bug's lease clock: every node keeps a deadline for each lease from when
 * it applied the grant, and a new leader goes on with those deadlines instead of giving every
 * lease a full TTL afresh, so keep-alives the old leader answered count for nothing.
 */
class GrantTimeLeaseKeeper extends LeaseKeeper {
  override noteRole(isLeader: boolean): void {
    this.leader = isLeader;
    this.expiring.clear();
  }

  override noteRestored(): void {}

  override onLeaseChange(id: number, ttlMs: number | undefined): void {
    if (ttlMs === undefined) this.deadlines.delete(id);
    else this.deadlines.set(id, this.ticks + this.ttlTicks(ttlMs));
  }
}

/** The leaseNoFreshTtl host bug (see GrantTimeLeaseKeeper). */
export class LeaseNoFreshTtlHost extends NodeHost {
  protected override newLeaseKeeper(tickMs: number, kv: () => KvStateMachine, propose: (data: Uint8Array) => void): LeaseKeeper {
    return new GrantTimeLeaseKeeper(tickMs, kv, propose);
  }
}

/** The followerReadsUnapplied host bug: a follower read is answered as soon as the leader's read index arrives, before the follower applied that far. */
export class FollowerReadsUnappliedHost extends NodeHost {
  protected override followerReadsWaitForApply(): boolean {
    return false;
  }
}

/** The sendBeforeSync host bug: with deferred syncs, a Ready's messages leave once it is written, before its sync. */
export class SendsBeforeSyncHost extends NodeHost {
  protected override sendsBeforeSync(): boolean {
    return true;
  }
}

/** The sendBeforePersist host bug: every Ready's messages leave before its write, votes and acknowledgements too. */
export class SendsBeforePersistHost extends NodeHost {
  protected override sendsEarly(): boolean {
    return true;
  }
}

/**
 * The truncateCorruptLog host bug: "repairs" the log in `dir` that recovery found corrupt
 * (`corrupt`, in a segment) by cutting it at the bad record and deleting every segment after
 * it, so that the next open serves from what is left.
 */
export function cutCorruptLog(fs: SimFileSystem, dir: string, corrupt: CorruptLogError): void {
  const bad = `${dir}/${corrupt.fileName}`;
  const offset = corrupt.offsetBytes;
  for (const p of fs.paths()) {
    if (p.startsWith(dir + '/') && p.endsWith('.wal') && p > bad) fs.unlink(p);
  }
  if (offset <= 64) fs.unlink(bad);
  else {
    const fd = fs.open(bad, 'readWrite');
    fs.ftruncate(fd, offset);
    fs.fdatasync(fd);
    fs.close(fd);
  }
  fs.syncDir(dir);
}
