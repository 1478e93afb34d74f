// Writes through three node hosts under random isolation, leadership transfers, partial
// deliveries and partial flushes: every write is answered exactly once, by the node it was
// sent to, and a write's reply names a committed entry that holds that very request (its
// client id); nothing is left unanswered once the network heals. Each seed runs through a
// sink with `replyWrite` (a put that applied makes no reply object, as on a node thread) and
// through one with `reply` alone. No two committed entries ever share an index.
import { describe, expect, it } from 'vitest';
import { RingraftError } from '../../src/base/index.ts';
import { getU32 } from '../../src/codec/index.ts';
import { EntryType, type Entry } from '../../src/core/index.ts';
import { decodeKvRequest, isKvBatch, isKvSessionRequest, KV_BATCH_HEADER_BYTES } from '../../src/kv/index.ts';
import { HostNetwork, put, writeReq } from './helpers.ts';

const SEEDS = 200;
const STEPS = 300;

/** The client ids of the requests an entry carries (a batch's each; none for an entry without requests). */
function clientIdsOf(e: Entry): number[] {
  if (e.type !== EntryType.Normal || e.data.length === 0) return [];
  const ids = (bytes: Uint8Array): number[] => {
    const request = decodeKvRequest(bytes);
    return isKvSessionRequest(request) ? [request.clientId] : [];
  };
  if (!isKvBatch(e.data)) return ids(e.data);
  const out: number[] = [];
  for (let at = KV_BATCH_HEADER_BYTES; at < e.data.length; ) {
    const length = getU32(e.data, at);
    out.push(...ids(e.data.subarray(at + 4, at + 4 + length)));
    at += 4 + length;
  }
  return out;
}

/** A small generator of its own, so that a seed replays exactly. */
function generator(seed: number): (n: number) => number {
  let s = (seed * 2654435761) >>> 0;
  return (n) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % n;
  };
}

function run(seed: number, replyWrite: boolean): void {
  const random = generator(seed);
  const committed = new Map<number, Entry>();
  const net = new HostNetwork([1, 2, 3], {
    replyWrite,
    hooks: {
      afterAdvance: (rd) => {
        for (const e of rd.committedEntries) {
          const before = committed.get(e.index);
          if (before !== undefined && before.term !== e.term) throw new Error(`two committed entries at ${e.index}`);
          committed.set(e.index, e);
        }
      },
    },
  });
  net.elect(1);
  /** The node each write went to; request id and client id are the same number. */
  const sentTo = new Map<number, number>();
  let next = 1000;
  for (let step = 0; step < STEPS; step++) {
    const r = random(20);
    if (r < 9) {
      const node = 1 + random(3);
      const host = net.host(node);
      for (let n = 1 + random(4); n > 0; n--) {
        const id = next++;
        sentTo.set(id, node);
        host.handleRequest(writeReq(id, id, 1, put(`k${id % 7}`, `v${id}`)));
      }
      // Sometimes the batch waits for a later flush.
      if (random(3) > 0) {
        host.flush();
        host.processReady();
      }
    } else if (r < 12) {
      net.tickAll(1);
    } else if (r < 14) {
      // At most one node cut off at a time: a majority stays.
      const node = 1 + random(3);
      if (net.isolated.has(node)) net.isolated.delete(node);
      else if (net.isolated.size === 0) net.isolated.add(node);
    } else if (r < 16) {
      net.deliverAll();
    } else if (r < 17) {
      const leader = [...net.nodes.values()].find((n) => n.host.raft.role === 'leader');
      try {
        leader?.host.transferLeadership(1 + random(3));
      } catch (error) {
        // A transfer already under way, or to itself: refused with a typed error, nothing else.
        if (!(error instanceof RingraftError)) throw error;
      }
    } else if (r < 19) {
      const node = 1 + random(3);
      net.deliverWhere((m) => m.to === node, random(2) === 0);
    } else {
      for (const n of net.nodes.values()) {
        n.host.flush();
        n.host.processReady();
      }
    }
  }
  net.isolated.clear();
  for (const n of net.nodes.values()) n.host.flush();
  net.tickAll(60);

  const answered = new Set<number>();
  for (const node of net.nodes.values()) {
    for (const reply of node.replies) {
      const to = sentTo.get(reply.requestId);
      if (to === undefined) continue;
      expect(to, `request ${reply.requestId} answered by node ${node.id}`).toBe(node.id);
      expect(answered.has(reply.requestId), `request ${reply.requestId} answered twice`).toBe(false);
      answered.add(reply.requestId);
      if (reply.kind === 'write') {
        const entry = committed.get(reply.index);
        expect(entry, `write ${reply.requestId}: no entry committed at ${reply.index}`).toBeDefined();
        expect(clientIdsOf(entry!), `write ${reply.requestId} at ${reply.index}`).toContain(reply.requestId);
      } else {
        expect(reply.kind).toBe('error');
      }
    }
  }
  const unanswered = [...sentTo.keys()].filter((id) => !answered.has(id));
  expect(unanswered, 'writes never answered').toEqual([]);
}

describe('writes through node hosts under faults', () => {
  it('are answered once each, by their node, with an entry that holds them', () => {
    // Each run asserts as it checks the replies.
    for (let seed = 1; seed <= SEEDS; seed++) {
      run(seed, true);
      run(seed, false);
    }
  });
});
