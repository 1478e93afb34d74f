// The leader's lease clock on its own: a full TTL afresh on becoming leader, a keep-alive that
// renews for a full TTL, the expiry proposed once a deadline passes (and keep-alives refused
// from then on), nothing kept by a follower, and a failed proposal tried again.

import { describe, expect, it } from 'vitest';
import { RingraftError } from '../../src/base/index.ts';
import { decodeKvRequest, encodeKvRequest, KvStateMachine } from '../../src/kv/index.ts';
import { LeaseKeeper } from '../../src/runtime/index.ts';

const TICK_MS = 10;

function setup() {
  const kv = new KvStateMachine();
  const proposed: number[] = [];
  let refuse = false;
  const keeper = new LeaseKeeper(TICK_MS, () => kv, (data) => {
    if (refuse) throw new RingraftError('PROPOSALS_FULL', 'full');
    const req = decodeKvRequest(data);
    if (!('op' in req) || req.op !== 'lease-expire') throw new Error('proposed something else');
    proposed.push(req.id);
  });
  kv.onLeaseChange((id, ttl) => keeper.onLeaseChange(id, ttl));
  let client = 1;
  const grant = (ttlMs: number): number => {
    const r = kv.apply(kv.appliedIndex + 1, encodeKvRequest({ clientId: client++, seq: 1, command: { op: 'lease-grant', ttlMs } })).result;
    if (r?.op !== 'lease-grant') throw new Error('no grant');
    return r.id;
  };
  const ticks = (n: number): void => {
    for (let i = 0; i < n; i++) keeper.tick();
  };
  return { kv, keeper, proposed, grant, ticks, refuseProposals: (v: boolean) => (refuse = v) };
}

describe('LeaseKeeper', () => {
  it('expires a lease a whole TTL after the grant a leader applied, not a tick before', () => {
    const { keeper, proposed, grant, ticks } = setup();
    keeper.noteRole(true);
    const id = grant(500);
    // 500 ms is 50 ticks, and one more for the tick under way: the deadline is tick 51.
    // Deadlines are looked at every 100 ms (10 ticks): the expiry is proposed at tick 60.
    ticks(59);
    expect(proposed).toEqual([]);
    ticks(1);
    expect(proposed).toEqual([id]);
    // Proposed once, and refused to keep-alives from then on.
    ticks(30);
    expect(proposed).toEqual([id]);
    expect(keeper.keepAlive(id)).toBeUndefined();
  });

  it('renews on keep-alive for a full TTL from then', () => {
    const { keeper, proposed, grant, ticks } = setup();
    keeper.noteRole(true);
    const id = grant(500);
    ticks(40);
    expect(keeper.keepAlive(id)).toEqual({ ttlMs: 500, remainingMs: 500, keys: 0 });
    // Deadline: tick 40 + 51 = 91, looked at on tick 100.
    ticks(50);
    expect(proposed).toEqual([]);
    expect(keeper.timeToLive(id)?.remainingMs).toBe(10);
    ticks(9);
    expect(proposed).toEqual([]);
    ticks(1);
    expect(proposed).toEqual([id]);
  });

  it('gives every lease a full TTL afresh on becoming leader, and a follower keeps nothing and answers nothing', () => {
    const { keeper, proposed, grant, ticks } = setup();
    const id = grant(300);
    ticks(100);
    expect(keeper.keepAlive(id)).toBeUndefined();
    expect(keeper.tracked).toBe(0);
    keeper.noteRole(true);
    ticks(30);
    expect(proposed).toEqual([]);
    keeper.noteRole(false);
    ticks(100);
    expect(proposed).toEqual([]);
    // Leader again at tick 230: deadline 230 + 31 = 261, looked at on tick 270.
    keeper.noteRole(true);
    ticks(39);
    expect(proposed).toEqual([]);
    ticks(1);
    expect(proposed).toEqual([id]);
  });

  it('proposes again at the next look when a proposal was refused, and forgets an ended lease', () => {
    const { kv, keeper, proposed, grant, ticks, refuseProposals } = setup();
    keeper.noteRole(true);
    const a = grant(200);
    const b = grant(200);
    refuseProposals(true);
    ticks(30);
    expect(proposed).toEqual([]);
    refuseProposals(false);
    ticks(10);
    expect(proposed).toEqual([a, b]);
    kv.apply(kv.appliedIndex + 1, encodeKvRequest({ op: 'lease-expire', id: a }));
    expect(keeper.tracked).toBe(1);
  });
});
