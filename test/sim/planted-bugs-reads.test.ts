// Proves the simulator catches bugs that break what clients see or what survives a crash:
// reads answered by a leader that did not confirm it still leads, lease reads served after
// the lease ran out, range reads served from a follower's own state, a transaction applied in two entries, a lease expired by a new leader without a fresh TTL, a follower read answered before its read index applied, a term or vote sent before it was durable, a node that "repairs" a
// corrupt WAL by cutting it and serves from what is left, a WAL that takes a torn write for
// damage (no crash alone may leave a log found corrupt), and a host that answers a write twice. Each is found within a bounded
// number of seeds, by the check that bug must trip, and the same seed passes without it.
import { describe, expect, it } from 'vitest';
import { huntBug } from './planted-bugs.ts';

const SEEDS_MAX = 400;

describe('planted read and persistence bugs are caught', () => {
  it('a leader answering reads without confirming its leadership', () => {
    // A stale get fails the history's check; a stale range read, which reads the same way, the range check.
    // Or a keep-alive a deposed leader answered, which the lease check sees.
    const found = huntBug('read-without-quorum', SEEDS_MAX, /^linearizability: history of key|^range reads and transactions: .*missed a completed write|^leases: lease \d+ .* early/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
  });

  it('range reads served from whatever node they reach, without ReadIndex (a follower behind its leader)', () => {
    const found = huntBug('range-reads-stale', SEEDS_MAX, /^range reads and transactions: .*missed a completed write|^range reads and transactions: .*the committed log up to/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
  });

  it('a transaction applied in two entries (its puts after the first one entry late)', () => {
    // A read between the two halves: a transaction's or a range's against the log replayed, or a get in the history.
    const found = huntBug('txn-split', SEEDS_MAX, /^range reads and transactions: .*(the committed log replayed answers|the committed log up to)|^linearizability: history of key/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
  });

  it('a new leader that expires leases by their grant time instead of a full TTL afresh', () => {
    const found = huntBug('lease-no-fresh-ttl', SEEDS_MAX, /^leases: lease \d+ \(TTL \d+ ms\) expired at \d+ ms .* ms early: holder \d+ renewed it/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
    expect(found!.controlStats.leaseRenewalsChecked).toBeGreaterThan(0);
  });

  it('a follower read answered when its read index arrives, before the follower applied that far', () => {
    const found = huntBug('follower-read-unapplied', SEEDS_MAX, /^linearizability: history of key|^range reads and transactions: .*the committed log up to/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
    expect(found!.controlStats.readsFollower).toBeGreaterThan(0);
  });

  it('a lease read served after check-quorum would have deposed the leader', () => {
    const found = huntBug('lease-ignores-expiry', SEEDS_MAX, /^linearizability: history of key/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
  });

  it('term or vote not persisted before replying', () => {
    const found = huntBug('hardstate-not-persisted', SEEDS_MAX, /election safety|leader completeness|state machine safety|linearizability/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
  });

  it('a host loop that sends a vote or an acknowledgement before its write is durable', () => {
    const found = huntBug('host-sends-before-persist', SEEDS_MAX, /election safety|leader completeness|state machine safety|log matching|linearizability/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
  });

  it('a host loop that sends once a Ready is written, before its deferred sync lands', () => {
    const found = huntBug('host-sends-before-sync', SEEDS_MAX, /election safety|leader completeness|state machine safety|log matching|linearizability/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
  });

  it('a torn write taken for damage (a log a crash alone left is refused at restart as corrupt)', () => {
    const found = huntBug('torn-write-refused', SEEDS_MAX, /found its log corrupt on restart, and no fault of the media/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
  });

  it('a write answered twice (each request gets exactly one reply)', () => {
    const found = huntBug('write-answered-twice', SEEDS_MAX, /^exactly one reply: node \d+ answered request \d+ again \(write\)/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
  });

  it('serving from a damaged log (a corrupt WAL cut at the bad record instead of stopping)', () => {
    const found = huntBug('serve-damaged-log', SEEDS_MAX, /leader completeness|log matching|state machine safety|linearizability/);
    expect(found, 'no seed caught it').toBeDefined();
    expect(found!.controlViolation, 'the same seed without the bug').toBeUndefined();
  });
});
