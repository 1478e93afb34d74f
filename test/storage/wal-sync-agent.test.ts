// WalStorage.persistLater with a sync agent (WalOptions.syncAgent): batches are written at
// once and numbered, the agent syncs them later, and durableSequence says how far they are
// durable. Checked on the simulated disk (sim-fs.ts), whose crash keeps only a random prefix
// of what was not synced: after any crash, every batch the WAL reported durable is there. A
// batch that starts a new segment is synced at once, with the segment it leaves; close syncs
// what the agent has not; an agent's failed sync fails the storage for good.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { emptyConfState, Rand } from '../../src/core/index.ts';
import { SimFileSystem } from '../../src/sim/sim-fs.ts';
import { FaultyFileSystem, SimulatedCrash, StorageError, StorageErrorCode, WalStorage, type Fd, type SyncAgent } from '../../src/storage/index.ts';
import { ents, plain } from './helpers.ts';

/** An agent the test drives: it records what it is asked and syncs only when told. */
class ManualAgent implements SyncAgent {
  readonly asked: { fd: Fd; sequence: number }[] = [];
  /** Descriptors handed over to reclaim, still open. */
  readonly reclaimed: Fd[] = [];
  /** At each hand-over, the directory changes a crash could still undo. */
  readonly dirChangesUnsyncedAtReclaim: number[] = [];
  syncedSequence = 0;
  failure: StorageError | undefined;
  closed = false;

  constructor(private readonly fs: SimFileSystem) {}

  request(fd: Fd, sequence: number): void {
    this.asked.push({ fd, sequence });
  }

  synced(): number {
    if (this.failure !== undefined) throw this.failure;
    return this.syncedSequence;
  }

  quiesce(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  reclaim(fd: Fd): boolean {
    this.reclaimed.push(fd);
    this.dirChangesUnsyncedAtReclaim.push(this.fs.dirChangesUnsynced());
    return true;
  }

  close(): void {
    this.closed = true;
  }

  /** Runs the newest sync asked for, as the sync thread would. */
  syncNewest(): void {
    const last = this.asked.at(-1);
    if (last === undefined) return;
    if (this.fs.isOpen(last.fd)) this.fs.fdatasync(last.fd);
    this.syncedSequence = last.sequence;
  }
}

const DIR = '/n1';

function open(fs: SimFileSystem, agent: SyncAgent | undefined, segmentSizeBytesMax = 1 << 20): WalStorage {
  return WalStorage.open(DIR, { fs, segmentSizeBytesMax, ...(agent === undefined ? {} : { syncAgent: agent }) });
}

/** A WAL over a fresh disk and a ManualAgent, with one batch written and left to the agent. */
function oneBatchWritten(): { fs: SimFileSystem; agent: ManualAgent; s: WalStorage } {
  const fs = new SimFileSystem();
  const agent = new ManualAgent(fs);
  const s = open(fs, agent);
  s.persistLater({ entries: ents(1, [1]) });
  return { fs, agent, s };
}

describe('WalStorage.persistLater', () => {
  it('writes at once, numbers the batch and leaves its sync to the agent', () => {
    const fs = new SimFileSystem();
    const agent = new ManualAgent(fs);
    const s = open(fs, agent);
    const first = s.persistLater({ entries: ents(1, [1, 1]), hardState: { term: 1, vote: 1, commit: 0 } });
    const second = s.persistLater({ entries: ents(3, [1]) });
    expect(second).toBe(first + 1);
    expect(agent.asked.map((a) => a.sequence)).toEqual([first, second]);
    // Reads see the batches at once; durability waits for the agent.
    expect(s.lastIndex()).toBe(3);
    expect(s.durableSequence()).toBeLessThan(first);
    agent.syncNewest();
    expect(s.durableSequence()).toBe(second);
    // A batch with nothing to write (a commit index alone) has nothing to wait for.
    expect(s.persistLater({ hardState: { term: 1, vote: 1, commit: 3 }, mustSync: false })).toBe(0);
    s.close();
  });

  it('without an agent, syncs at once like persist', () => {
    const fs = new SimFileSystem();
    const s = open(fs, undefined);
    const sequence = s.persistLater({ entries: ents(1, [1]) });
    expect(sequence).toBeGreaterThan(0);
    expect(s.durableSequence()).toBe(sequence);
    fs.crash(new Rand(1));
    const again = open(fs, undefined);
    expect(again.lastIndex()).toBe(1);
    again.close();
  });

  it('syncs the segment it leaves and the new one when a batch starts a segment', () => {
    const fs = new SimFileSystem();
    const agent = new ManualAgent(fs);
    const s = open(fs, agent, 4096);
    // Entries of 1 KiB: a few batches fill a 4 KiB segment. The batch that starts the next
    // one asks the agent nothing: it and everything before it are synced at once.
    let index = 1;
    let rolled = 0;
    for (; index < 50 && rolled === 0; index++) {
      const asked = agent.asked.length;
      const sequence = s.persistLater({ entries: ents(index, [1], 1024) });
      if (agent.asked.length === asked) rolled = sequence;
    }
    expect(rolled).toBeGreaterThan(1);
    expect(s.durableSequence()).toBe(rolled);
    fs.crash(new Rand(7));
    const again = open(fs, undefined, 4096);
    expect(again.lastIndex()).toBe(index - 1);
    again.close();
  });

  it('close syncs what the agent has not, and closes the agent', () => {
    const fs = new SimFileSystem();
    const agent = new ManualAgent(fs);
    const s = open(fs, agent);
    s.persistLater({ entries: ents(1, [1, 1, 1]) });
    s.close();
    expect(agent.closed).toBe(true);
    fs.crash(new Rand(3));
    const again = open(fs, undefined);
    expect(plain(again.allEntries())).toEqual(plain(ents(1, [1, 1, 1])));
    again.close();
  });

  it("an agent's failed sync fails the storage for good", () => {
    const { agent, s } = oneBatchWritten();
    agent.failure = new StorageError(StorageErrorCode.NO_SPACE, 'full');
    expect(() => s.durableSequence()).toThrow(agent.failure);
    try {
      s.persistLater({ entries: ents(2, [1]) });
      expect.unreachable('a write after a failed sync');
    } catch (error) {
      expect((error as StorageError).code).toBe(StorageErrorCode.STORAGE_FAILED);
    }
    s.abandon();
  });

  it('after any crash, every batch reported durable is there (random batches, syncs and crash)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ entries: fc.integer({ min: 0, max: 3 }), bytes: fc.integer({ min: 1, max: 1500 }), sync: fc.boolean(), truncate: fc.boolean() }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 1 << 30 }),
        (steps, seed) => {
          const fs = new SimFileSystem();
          const agent = new ManualAgent(fs);
          const s = open(fs, agent, 8192);
          // The log as written, and the log as of the newest durable sequence.
          let log: number[] = [];
          const bySequence = new Map<number, number[]>();
          let term = 1;
          for (const step of steps) {
            let from = log.length + 1;
            if (step.truncate && log.length > 0) {
              // A new leader's entries replace a suffix.
              term++;
              from = Math.max(1, log.length - 1);
            }
            const terms = Array.from({ length: step.entries }, () => term);
            if (terms.length > 0) {
              const sequence = s.persistLater({ entries: ents(from, terms, step.bytes) });
              log = [...log.slice(0, from - 1), ...terms];
              bySequence.set(sequence, log);
            }
            if (step.sync) agent.syncNewest();
          }
          const durable = s.durableSequence();
          // The log as of the newest durable batch, or as of any batch written after it (a
          // crash keeps a prefix of the writes not synced, and a batch lands whole or not at all).
          let expected: number[] = [];
          const later: number[][] = [];
          for (const [sequence, at] of bySequence) {
            if (sequence <= durable) expected = at;
            else later.push(at);
          }
          fs.crash(new Rand(seed));
          const again = open(fs, undefined, 8192);
          const recovered = again.allEntries().map((e) => e.term);
          again.close();
          expect([expected, ...later]).toContainEqual(recovered);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a failure the agent met is seen even once this thread's own sync covered everything", () => {
    const { fs, agent, s } = oneBatchWritten();
    // The agent's sync failed (the kernel reported it there), and then this thread syncs: its
    // own sync must not stand for the batch the agent's failure covered.
    agent.failure = new StorageError(StorageErrorCode.IO_ERROR, 'EIO');
    expect(() => s.syncNow()).toThrow(agent.failure);
    s.abandon();
    const again = new ManualAgent(fs);
    const t = open(fs, again);
    t.persistLater({ entries: ents(t.lastIndex() + 1, [1]) });
    t.syncNow();
    again.failure = new StorageError(StorageErrorCode.IO_ERROR, 'EIO');
    expect(() => t.durableSequence()).toThrow(again.failure);
    t.abandon();
  });
});

describe('deleting the segments a snapshot covers', () => {
  const SEGMENT_BYTES = 4096;
  const LAST = 60;
  const SNAPSHOT_AT = 55;

  /** A log of entries 1..60 of 1 KiB each, in some 20 segments of 4 KiB, all synced. */
  function filled(fs: SimFileSystem): void {
    const s = open(fs, undefined, SEGMENT_BYTES);
    for (let i = 1; i <= LAST; i++) s.persist({ entries: ents(i, [1], 1024) });
    s.close();
  }

  it('hands each deleted segment to the agent open, after its deletion is durable; one it refuses is closed', () => {
    for (const takes of [true, false]) {
      const fs = new SimFileSystem();
      filled(fs);
      const before = fs.readdir(DIR).filter((n) => n.endsWith('.wal'));
      const agent = new ManualAgent(fs);
      if (!takes) agent.reclaim = () => false;
      const s = open(fs, agent, SEGMENT_BYTES);
      const opened: number[] = [];
      const fsOpen = fs.open.bind(fs);
      fs.open = (path, mode) => {
        const fd = fsOpen(path, mode);
        if (path.endsWith('.wal') && mode === 'readWrite') opened.push(fd);
        return fd;
      };
      s.createSnapshot(SNAPSHOT_AT, emptyConfState([1]), new Uint8Array([1]));
      const after = fs.readdir(DIR).filter((n) => n.endsWith('.wal'));
      const deleted = before.length - after.length;
      expect(deleted).toBeGreaterThan(10);
      expect(opened).toHaveLength(deleted);
      expect(agent.reclaimed).toEqual(takes ? opened : []);
      expect(agent.dirChangesUnsyncedAtReclaim.every((n) => n === 0)).toBe(true);
      for (const fd of opened) expect(fs.isOpen(fd)).toBe(takes);
      // Every deletion was durable when the file was handed over: a crash brings none back.
      fs.crash(new Rand(5));
      expect(fs.readdir(DIR).filter((n) => n.endsWith('.wal'))).toEqual(after);
    }
  });

  it('a crash at any disk call, then a power loss that keeps or undoes each unsynced directory change, leaves a log that opens', () => {
    let crashes = 0;
    for (const withAgent of [false, true]) {
      for (let n = 1; ; n++) {
        let crashed = false;
        for (let seed = 1; seed <= 6; seed++) {
          const sim = new SimFileSystem();
          filled(sim);
          const fs = new FaultyFileSystem(sim, { crashAtMutation: n });
          try {
            const s = WalStorage.open(DIR, { fs, segmentSizeBytesMax: SEGMENT_BYTES, ...(withAgent ? { syncAgent: new ManualAgent(sim) } : {}) });
            s.createSnapshot(SNAPSHOT_AT, emptyConfState([1]), new Uint8Array([1]));
          } catch (error) {
            const crash = error instanceof SimulatedCrash || (error instanceof StorageError && error.cause instanceof SimulatedCrash);
            if (!crash) throw error;
          }
          if (!fs.crashed) break;
          crashed = true;
          crashes++;
          sim.crash(new Rand(seed * 1000 + n));
          const again = open(sim, undefined, SEGMENT_BYTES);
          // Before the snapshot or after it, every entry there.
          expect([0, SNAPSHOT_AT], `crash at disk call ${n}, seed ${seed}`).toContain(again.snapshot().meta.index);
          expect(again.lastIndex()).toBe(LAST);
          expect(plain(again.allEntries())).toEqual(plain(ents(again.firstIndex(), Array(LAST - again.firstIndex() + 1).fill(1), 1024)));
          again.close();
        }
        if (!crashed) break;
      }
    }
    expect(crashes).toBeGreaterThan(40);
  });
});
