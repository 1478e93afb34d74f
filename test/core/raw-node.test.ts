// RawNode, the core as a library (`ringraft/core`): driven by hand over an in-memory wire it
// elects a leader and commits; its boundary refuses what is not a message, a Ready out of
// turn and bad arguments with typed errors and goes on unharmed; its status is a copy and its
// internals are out of reach.
import { describe, expect, it } from 'vitest';
import { EntryType, MessageType, RawNode, RingraftError, ErrorCode, NotLeaderError, decodeMessage, encodeMessage, type Message } from '../../src/lib-core.ts';
import { MemoryStorage } from '../../src/lib-storage.ts';
import { makeMessage } from '../../src/core/index.ts';

interface Host {
  readonly node: RawNode;
  readonly storage: MemoryStorage;
  readonly applied: Uint8Array[];
  /** Read states by request id. */
  readonly reads: Map<number, number>;
}

/** Three RawNodes and a wire of encoded messages; `run` ticks and delivers until `done` or a bound. */
function cluster(ids = [1, 2, 3]) {
  const hosts = new Map<number, Host>();
  for (const id of ids) {
    const storage = new MemoryStorage();
    hosts.set(id, { node: new RawNode({ id, storage, seed: id * 31, voters: ids, electionTimeoutTicks: 10, heartbeatIntervalTicks: 1 }), storage, applied: [], reads: new Map() });
  }
  let wire: Uint8Array[] = [];
  const process = (h: Host): void => {
    while (h.node.hasReady()) {
      const rd = h.node.ready();
      h.storage.persist(rd);
      for (const m of rd.messages) wire.push(encodeMessage(m));
      for (const e of rd.committedEntries) if (e.type === EntryType.Normal && e.data.length > 0) h.applied.push(e.data);
      for (const r of rd.readStates) h.reads.set(r.requestId, r.index);
      h.node.advance(rd);
    }
  };
  const deliver = (): void => {
    while (wire.length > 0) {
      const batch = wire;
      wire = [];
      for (const bytes of batch) {
        const m = decodeMessage(bytes);
        const h = hosts.get(m.to)!;
        h.node.step(m);
        process(h);
      }
    }
  };
  const round = (): void => {
    for (const h of hosts.values()) {
      h.node.tick();
      process(h);
    }
    deliver();
  };
  const leader = (): Host | undefined => [...hosts.values()].find((h) => h.node.status().role === 'leader');
  const elect = (): Host => {
    for (let t = 0; t < 200 && leader() === undefined; t++) round();
    const l = leader();
    if (l === undefined) throw new Error('no leader');
    return l;
  };
  return { hosts, process, deliver, round, leader, elect };
}

const text = new TextEncoder();

describe('RawNode', () => {
  it('elects a leader and commits proposals on every replica, driven by hand', () => {
    const c = cluster();
    const l = c.elect();
    const followers = [...c.hosts.values()].filter((h) => h !== l);
    expect(followers.every((h) => h.node.status().leaderId === l.node.id)).toBe(true);
    for (let i = 0; i < 5; i++) {
      l.node.propose(text.encode(`cmd-${i}`));
      c.process(l);
      c.deliver();
    }
    c.round();
    const want = Array.from({ length: 5 }, (_, i) => `cmd-${i}`);
    for (const h of c.hosts.values()) expect(h.applied.map((d) => new TextDecoder().decode(d))).toEqual(want);
    const st = l.node.status();
    expect(st.commitIndex).toBe(st.lastIndex);
    expect([...st.progress!.keys()].sort()).toEqual([1, 2, 3]);
    expect([...st.progress!.values()].every((p) => p.match === st.lastIndex)).toBe(true);
  });

  it('keeps a copy of what is proposed: the caller may reuse its buffer', () => {
    const c = cluster();
    const l = c.elect();
    const buffer = new Uint8Array(1);
    for (let i = 1; i <= 3; i++) {
      buffer[0] = i;
      l.node.propose(buffer);
    }
    c.process(l);
    c.deliver();
    c.round();
    for (const h of c.hosts.values()) expect(h.applied.map((d) => d[0])).toEqual([1, 2, 3]);
  });

  it('answers a ReadIndex with the index to read at, after a round of heartbeats', () => {
    const c = cluster();
    const l = c.elect();
    l.node.propose(text.encode('x'));
    c.process(l);
    c.deliver();
    l.node.readIndex(42);
    c.process(l);
    // Not before the leader has heard from a majority.
    expect(l.reads.has(42)).toBe(false);
    c.deliver();
    expect(l.reads.get(42)).toBe(l.node.status().commitIndex);
  });

  it('refuses a proposal off the leader with NotLeaderError naming the leader', () => {
    const c = cluster();
    const l = c.elect();
    const f = [...c.hosts.values()].find((h) => h !== l)!;
    let error: unknown;
    try {
      f.node.propose(text.encode('no'));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NotLeaderError);
    expect((error as RingraftError).code).toBe(ErrorCode.NOT_LEADER);
  });

  it('refuses what is not a well-formed message with INVALID_ARGUMENT, and goes on unharmed', () => {
    const c = cluster();
    const l = c.elect();
    const f = [...c.hosts.values()].find((h) => h !== l)!;
    const good: Message = makeMessage({ type: MessageType.App, from: l.node.id, to: f.node.id, term: l.node.status().term });
    const bad: unknown[] = [
      null,
      'App',
      { ...good, type: 99 },
      { ...good, from: 0 },
      { ...good, to: -1 },
      { ...good, term: -1 },
      { ...good, index: 1.5 },
      { ...good, commit: Number.NaN },
      { ...good, reject: 'no' },
      { ...good, entries: 'x' },
      { ...good, entries: [{ index: 5, term: 1, type: EntryType.Normal, data: new Uint8Array(1) }] },
      { ...good, entries: [{ index: 1, term: 0, type: EntryType.Normal, data: new Uint8Array(1) }] },
      { ...good, entries: [{ index: 1, term: 1, type: 7, data: new Uint8Array(1) }] },
      { ...good, entries: [{ index: 1, term: 1, type: EntryType.Normal, data: 'abc' }] },
      { ...good, type: MessageType.Heartbeat, entries: [{ index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(1) }] },
      { ...good, type: MessageType.Snap },
      { ...good, type: MessageType.Snap, snapshot: { meta: { index: 1, term: 1, conf: { voters: [1], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false } }, totalBytes: 1, offset: 0, data: new Uint8Array(2) } },
      { ...good, snapshot: { meta: { index: 1, term: 1 } } },
    ];
    for (const m of bad) {
      let error: unknown;
      try {
        f.node.step(m as Message);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(m)).toBeInstanceOf(RingraftError);
      expect((error as RingraftError).code).toBe(ErrorCode.INVALID_ARGUMENT);
    }
    // Unharmed: the cluster commits on, the follower with it.
    l.node.propose(text.encode('after'));
    c.process(l);
    c.deliver();
    c.round();
    expect(new TextDecoder().decode(f.applied.at(-1))).toBe('after');
  });

  it('hands out one Ready at a time: another before advance(), or advance() of any other, is INVALID_ARGUMENT', () => {
    const storage = new MemoryStorage();
    const node = new RawNode({ id: 1, storage, seed: 1, voters: [1], electionTimeoutTicks: 10, heartbeatIntervalTicks: 1 });
    for (let t = 0; t < 30 && !node.hasReady(); t++) node.tick();
    expect(node.hasReady()).toBe(true);
    const rd = node.ready();
    expect(node.hasReady()).toBe(false);
    expect(() => node.ready()).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    expect(() => node.advance({ ...rd })).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    storage.persist(rd);
    node.advance(rd);
    expect(() => node.advance(rd)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    // The single voter goes on to lead.
    for (let t = 0; t < 50 && node.status().role !== 'leader'; t++) {
      while (node.hasReady()) {
        const next = node.ready();
        storage.persist(next);
        node.advance(next);
      }
      node.tick();
    }
    expect(node.status().role).toBe('leader');
  });

  it('refuses bad configs and arguments with INVALID_ARGUMENT naming them', () => {
    const storage = new MemoryStorage();
    const code = { code: ErrorCode.INVALID_ARGUMENT };
    expect(() => new RawNode({ id: 0, storage, seed: 1 })).toThrow(expect.objectContaining(code));
    expect(() => new RawNode({ id: 1, storage: undefined as unknown as MemoryStorage, seed: 1 })).toThrow(/storage/);
    expect(() => new RawNode({ id: 1, storage, seed: -1 })).toThrow(/seed/);
    expect(() => new RawNode({ id: 1, storage, seed: 1, voters: [1, 0] })).toThrow(/voters/);
    expect(() => new RawNode({ id: 1, storage, seed: 1, electionTimeoutTick: 3 } as never)).toThrow(/electionTimeoutTick/);
    const node = new RawNode({ id: 1, storage, seed: 1, voters: [1] });
    expect(() => node.propose('text' as unknown as Uint8Array)).toThrow(expect.objectContaining(code));
    expect(() => node.readIndex(-1)).toThrow(expect.objectContaining(code));
    expect(() => node.readIndex(1, 'fast' as never)).toThrow(expect.objectContaining(code));
    expect(() => node.transferLeadership(0)).toThrow(expect.objectContaining(code));
    expect(() => node.proposeConfChange({ changes: [{ op: 'promote' as never, nodeId: 2 }] })).toThrow(expect.objectContaining(code));
  });

  it('gives a status that is a copy, and keeps its internals out of reach', () => {
    const c = cluster();
    const l = c.elect();
    const st = l.node.status();
    (st.conf.voters as number[]).push(99);
    (st.progress as Map<number, unknown>).clear();
    const again = l.node.status();
    expect(again.conf.voters).toEqual([1, 2, 3]);
    expect(again.progress!.size).toBe(3);
    expect(Object.keys(l.node)).toEqual([]);
    expect((l.node as unknown as { raft?: unknown }).raft).toBeUndefined();
    expect(Object.getOwnPropertyNames(Object.getPrototypeOf(l.node)).sort()).toEqual(
      ['constructor', 'id', 'tick', 'step', 'propose', 'readIndex', 'transferLeadership', 'proposeConfChange', 'ticksUntilDue', 'hasReady', 'ready', 'advance', 'status'].sort(),
    );
  });
});
