// The write batcher against a model: every write handed to it is answered exactly once, and
// with the right answer, whatever happens to its batch (applied as proposed, replaced by
// another leader's entry of another term, of the same count or another, its index taken by an
// entry that is no batch, the node losing its role, the proposal refused, or made while the
// node follows), with entries that are not the batcher's between and below its batches, and
// many batches in flight so its deques wrap and grow; answered the same through a sink with
// `replyWrite` (no object per put that applied) as through one with `reply` alone.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/base/index.ts';
import { EntryType, NotLeaderError, type Entry, type RaftNode } from '../../src/core/index.ts';
import { encodeKvRequest, isKvBatch, KvBatchBuilder, KvStateMachine, type KvWriteResult } from '../../src/kv/index.ts';
import type { ClientReply, HostSink } from '../../src/runtime/index.ts';
import { WriteBatcher } from '../../src/runtime/write-batcher.ts';
import { bytesOf } from './helpers.ts';

/** The part of a RaftNode the batcher uses: a leader that hands out log indexes in order. */
class FakeRaft {
  role: 'leader' | 'follower' = 'leader';
  leaderId = 1;
  term = 1;
  indexNext = 1;
  /** The next propose throws this. */
  refuseNext: Error | undefined;
  readonly proposed = new Map<number, Entry>();

  propose(data: Uint8Array): number {
    if (this.role !== 'leader') throw new NotLeaderError(this.leaderId);
    if (this.refuseNext !== undefined) {
      const error = this.refuseNext;
      this.refuseNext = undefined;
      throw error;
    }
    const index = this.indexNext++;
    this.proposed.set(index, { index, term: this.term, type: EntryType.Normal, data });
    return index;
  }
}

/** A sink recording replies; with `scratch`, writes come through replyWrite, one object reused (as the node worker does). */
function recordingSink(scratch: boolean): { sink: HostSink; replies: ClientReply[] } {
  const replies: ClientReply[] = [];
  const reused = { kind: 'write' as const, requestId: 0, result: undefined as unknown as KvWriteResult, index: 0 };
  const sink: HostSink = {
    sendRaft: () => {},
    reply: (r) => replies.push(r),
    ...(scratch
      ? {
          replyWrite: (requestId: number, result: KvWriteResult, index: number) => {
            reused.requestId = requestId;
            reused.result = result;
            reused.index = index;
            replies.push({ ...reused });
          },
        }
      : {}),
  };
  return { sink, replies };
}

type Step =
  | { readonly op: 'add'; readonly writes: number; readonly cas: boolean }
  | { readonly op: 'flush'; readonly refused: boolean }
  | { readonly op: 'apply'; readonly how: 'ours' | 'other-term' | 'other-batch' | 'not-a-batch' }
  /** An entry the batcher did not propose (a configuration change, a request of another host, an empty entry). */
  | { readonly op: 'foreign'; readonly kind: 'empty' | 'single' }
  | { readonly op: 'lose-role' }
  | { readonly op: 'elect' };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constant('add' as const), writes: fc.integer({ min: 1, max: 40 }), cas: fc.boolean() }),
  fc.record({ op: fc.constant('flush' as const), refused: fc.integer({ min: 0, max: 9 }).map((n) => n === 0) }),
  fc.record({ op: fc.constant('apply' as const), how: fc.constantFrom('ours' as const, 'ours' as const, 'ours' as const, 'other-term' as const, 'other-batch' as const, 'not-a-batch' as const) }),
  fc.record({ op: fc.constant('foreign' as const), kind: fc.constantFrom('empty' as const, 'single' as const) }),
  fc.record({ op: fc.constant('lose-role' as const) }),
  fc.record({ op: fc.constant('elect' as const) }),
);

/** A batch of `count` puts by clients of its own: another leader's entry. */
function otherBatch(count: number, clientFirst: number): Uint8Array {
  const batch = new KvBatchBuilder();
  for (let i = 0; i < count; i++) {
    const data = encodeKvRequest({ clientId: clientFirst + i, seq: 1, command: { op: 'put', key: bytesOf(`o${i}`), value: bytesOf('o') } });
    batch.add(data, 0, data.length);
  }
  return batch.finish().slice();
}

/** Applies a committed entry as the node host does (NodeHost.applyEntry). */
function applyEntry(e: Entry, batcher: WriteBatcher, kv: KvStateMachine): void {
  if (e.data.length === 0) {
    kv.skip(e.index);
    batcher.skipped(e.index);
  } else if (!isKvBatch(e.data)) {
    kv.apply(e.index, e.data);
    batcher.skipped(e.index);
  } else {
    batcher.apply(e, kv);
  }
}

/** What each request must be answered with. */
type Expected = { kind: 'put' | 'cas'; index: number } | { kind: 'not-leader'; proposed: boolean };

/**
 * Runs `steps` on a batcher over `sink`; returns what each request must be answered with.
 * A request still waiting at the end (its batch not applied, or not flushed) expects nothing.
 */
function run(steps: readonly Step[], sink: HostSink): Map<number, Expected> {
  const raft = new FakeRaft();
  const batcher = new WriteBatcher(raft as unknown as RaftNode, sink, 1 << 20);
  const kv = new KvStateMachine();
  const expected = new Map<number, Expected>();
  /** The requests of the current batch, and of each proposed batch by index. */
  let current: { requestId: number; kind: 'put' | 'cas' }[] = [];
  const byIndex = new Map<number, { requestId: number; kind: 'put' | 'cas' }[]>();
  let appliedIndex = 0;
  let requestId = 2 ** 32 + 7; // past 2^31, as a client link's ids are
  let clientId = 1;
  for (const s of steps) {
    switch (s.op) {
      case 'add':
        for (let i = 0; i < s.writes; i++) {
          const id = requestId++;
          // A put that applies makes no object; a cas's outcome is one.
          const command = s.cas && i % 3 === 0 ? { op: 'cas' as const, key: bytesOf(`k${i}`), expected: undefined, value: bytesOf('v') } : { op: 'put' as const, key: bytesOf(`k${i}`), value: bytesOf(`v${id}`) };
          const data = encodeKvRequest({ clientId: clientId++, seq: 1, command });
          batcher.add(id, data, 0, data.length);
          // A follower refuses it at once.
          if (raft.role === 'leader') current.push({ requestId: id, kind: command.op });
          else expected.set(id, { kind: 'not-leader', proposed: false });
        }
        break;
      case 'flush': {
        if (current.length === 0) break;
        // Refused by the core: on purpose, or because the node follows.
        if (s.refused) raft.refuseNext = new NotLeaderError(2);
        const before = raft.indexNext;
        batcher.flush();
        if (raft.indexNext === before) {
          for (const w of current) expected.set(w.requestId, { kind: 'not-leader', proposed: false });
        } else {
          byIndex.set(before, current);
        }
        current = [];
        break;
      }
      case 'apply': {
        const index = appliedIndex + 1;
        const entry = raft.proposed.get(index);
        if (entry === undefined) break;
        appliedIndex = index;
        const ours = byIndex.get(index);
        byIndex.delete(index);
        // What becomes of the entry at our index (an entry not ours is applied as it is).
        const applied: Entry =
          ours === undefined || s.how === 'ours'
            ? entry
            : s.how === 'other-term'
              ? { ...entry, term: entry.term + 1 }
              : s.how === 'other-batch'
                ? { ...entry, term: entry.term + 1, data: otherBatch(1 + (ours.length % 3) * 2, 1_000_000 + index * 10) }
                : { ...entry, term: entry.term + 1, data: new Uint8Array(0) };
        applyEntry(applied, batcher, kv);
        for (const w of ours ?? []) expected.set(w.requestId, s.how === 'ours' ? { kind: w.kind, index } : { kind: 'not-leader', proposed: true });
        break;
      }
      case 'foreign': {
        const index = raft.indexNext++;
        const data = s.kind === 'empty' ? new Uint8Array(0) : encodeKvRequest({ clientId: clientId++, seq: 1, command: { op: 'put', key: bytesOf('f'), value: bytesOf('f') } });
        raft.proposed.set(index, { index, term: raft.term, type: EntryType.Normal, data });
        break;
      }
      case 'lose-role':
        raft.role = 'follower';
        raft.term++;
        batcher.failProposed(2);
        for (const ws of byIndex.values()) for (const w of ws) expected.set(w.requestId, { kind: 'not-leader', proposed: true });
        byIndex.clear();
        break;
      case 'elect':
        if (raft.role === 'leader') break;
        raft.role = 'leader';
        raft.term++;
        break;
    }
  }
  return expected;
}

function check(expected: Map<number, Expected>, replies: readonly ClientReply[]): void {
  const seen = new Set<number>();
  for (const r of replies) {
    expect(seen.has(r.requestId), `request ${r.requestId} answered twice`).toBe(false);
    seen.add(r.requestId);
    const want = expected.get(r.requestId);
    expect(want, `request ${r.requestId} answered before its fate was known`).toBeDefined();
    if (want!.kind === 'not-leader') {
      expect(r).toMatchObject({ kind: 'error', code: ErrorCode.NOT_LEADER, proposed: want!.proposed });
    } else {
      expect(r).toMatchObject({ kind: 'write', index: want!.index, result: { op: want!.kind } });
    }
  }
  expect(seen.size).toBe(expected.size);
}

describe('the write batcher', () => {
  it('answers every write once, rightly, whatever becomes of its batch, through either kind of sink', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 300, size: 'large' }), (steps) => {
        const withScratch = recordingSink(true);
        const plain = recordingSink(false);
        const expected = run(steps, withScratch.sink);
        check(expected, withScratch.replies);
        expect(run(steps, plain.sink)).toEqual(expected);
        expect(plain.replies).toEqual(withScratch.replies);
      }),
      { numRuns: 200, seed: 13 },
    );
  });

  it('keeps hundreds of batches and thousands of writes in flight, then answers them in order', () => {
    const steps: Step[] = [];
    for (let b = 0; b < 300; b++) steps.push({ op: 'add', writes: 7, cas: b % 5 === 0 }, { op: 'flush', refused: b % 97 === 0 });
    for (let b = 0; b < 300; b++) steps.push({ op: 'apply', how: b % 50 === 0 ? 'other-term' : b % 71 === 0 ? 'not-a-batch' : 'ours' });
    const { sink, replies } = recordingSink(true);
    const expected = run(steps, sink);
    expect(expected.size).toBe(300 * 7);
    check(expected, replies);
  });

  it('a batch whose index is taken by an entry that is no batch is answered NOT_LEADER, proposed, when that entry applies', () => {
    const { sink, replies } = recordingSink(true);
    const expected = run([{ op: 'add', writes: 3, cas: false }, { op: 'flush', refused: false }, { op: 'apply', how: 'not-a-batch' }], sink);
    expect(replies).toHaveLength(3);
    check(expected, replies);
  });
});
