// ringraft/sim: a user's state machine under Raft's faults. A deterministic counter passes;
// a machine that reads the clock, one whose snapshot is not a function of its state, and one
// that keeps state outside itself are each caught, and a failing seed replays exactly.
import { describe, expect, it } from 'vitest';
import counter from '../../examples/state-machines/counter.ts';
import { simulateStateMachine, type StateMachine } from '../../src/lib-sim.ts';
import { ErrorCode } from '../../src/base/index.ts';

const i32 = (n: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n);
  return b;
};
/** Increments of 1 to 9, drawn from the client's seeded generator. */
const increments = (random: () => number): Uint8Array => i32(1 + Math.floor(random() * 9));

describe('ringraft/sim', () => {
  it('passes a deterministic counter on every seed, its commands applied on every replica', async () => {
    const report = await simulateStateMachine({ stateMachine: counter as (o: unknown) => StateMachine, options: { start: 10 }, command: increments, seeds: 20 });
    expect(report.failures).toEqual([]);
    expect(report.runs).toBe(20);
    expect(report.commandsApplied).toBeGreaterThan(500);
  });

  it('catches a machine that reads the clock, and the failing seed replays exactly', async () => {
    const clocked = (): StateMachine => {
      let total = 0;
      return {
        apply: (c) => {
          total += c[3]!;
          // The bug: an answer that depends on when the replica applied it.
          return i32(total + (performance.now() % 2 < 1 ? 0 : 1));
        },
        query: () => i32(total),
        snapshot: () => i32(total),
        restore: (chunks) => {
          total = new DataView([...chunks][0]!.buffer).getInt32(0);
        },
      };
    };
    const report = await simulateStateMachine({ stateMachine: clocked, command: increments, seeds: 10 });
    expect(report.failures.length).toBeGreaterThan(0);
    expect(report.failed).toBe(report.failures.length);
    const f = report.failures[0]!;
    expect(f.violation).toMatch(/^state machine divergence: node \d+ answered the command at index \d+ otherwise than another replica did/);
    expect(f.replay).toBe(`simulateStateMachine({ ...spec, start: ${f.seed}, seeds: 1, nodes: [${f.nodes}] })`);
    expect(f.lastEvents.length).toBeGreaterThan(0);
  });

  it('catches a snapshot that is not a function of the state', async () => {
    const noisy = (): StateMachine => {
      let total = 0;
      let restores = 0;
      return {
        apply: (c) => {
          total += c[3]!;
          return undefined;
        },
        query: () => i32(total),
        // The bug: the bytes carry how often this replica was restored, not only its state.
        snapshot: () => Uint8Array.of(...i32(total), restores),
        restore: (chunks) => {
          const b = [...chunks][0]!;
          total = new DataView(b.buffer, b.byteOffset).getInt32(0);
          restores++;
        },
      };
    };
    const report = await simulateStateMachine({ stateMachine: noisy, command: increments, seeds: 40, commandShare: 1 });
    expect(report.failures.map((f) => f.violation)).toContainEqual(expect.stringMatching(/^state machine snapshot: node \d+, restored from a snapshot|^state machine divergence: nodes \d+ and \d+ applied up to index/));
  });

  it('replays a seed exactly: the same violation and the same commands applied', async () => {
    let calls = 0;
    const shared = (): StateMachine => ({
      // The bug: state shared by every replica (a module-level variable), so each answers differently.
      apply: () => i32(++calls),
      query: () => i32(calls),
      snapshot: () => new Uint8Array(0),
      restore: () => {},
    });
    const first = await simulateStateMachine({ stateMachine: shared, seeds: 1, start: 3, nodes: [3] });
    calls = 0;
    const again = await simulateStateMachine({ stateMachine: shared, seeds: 1, start: 3, nodes: [3] });
    expect(first.failures[0]?.violation).toMatch(/^state machine divergence/);
    expect(again).toEqual(first);
    // Every failure is counted; the first 10 are kept.
    const many = await simulateStateMachine({ stateMachine: shared, seeds: 12, nodes: [3] });
    expect([many.failed, many.failures.length]).toEqual([12, 10]);
  });

  it('checks the clients\' history against a sequential model: the counter fits its model, a counter that answers the total before its increment does not', async () => {
    const model = counter as (o: unknown) => StateMachine;
    const good = await simulateStateMachine({ stateMachine: model, model, command: increments, seeds: 10 });
    expect(good.failures).toEqual([]);
    const before = (): StateMachine => {
      const c = (counter as (o: unknown) => StateMachine)({});
      let total = 0;
      return {
        ...c,
        // Deterministic, the same on every replica, and wrong: the total before this increment.
        apply: (command, index) => {
          const answer = i32(total);
          c.apply(command, index);
          total = new DataView(c.query(new Uint8Array(0))!.buffer).getInt32(0);
          return answer;
        },
        restore: (chunks) => {
          c.restore(chunks);
          total = new DataView(c.query(new Uint8Array(0))!.buffer).getInt32(0);
        },
      };
    };
    const bad = await simulateStateMachine({ stateMachine: before, model, command: increments, seeds: 5 });
    expect(bad.failures.length).toBeGreaterThan(0);
    expect(bad.failures[0]!.violation).toMatch(/^state machine history: no order of the \d+ commands explains their answers/);
  });

  it('passes when every write is a command for the machine (commandShare 1)', async () => {
    const report = await simulateStateMachine({ stateMachine: counter as (o: unknown) => StateMachine, command: increments, seeds: 5, commandShare: 1 });
    expect(report.failures).toEqual([]);
  });

  it('passes a counter that restores and gives its snapshot async, taken at its call (the model restores at once)', async () => {
    let restores = 0;
    let chunksRead = 0;
    const asyncCounter = (options: unknown): StateMachine => {
      const c = (counter as (o: unknown) => StateMachine)(options);
      return {
        ...c,
        // The state as it is now, read out later, in two chunks, with a turn of the event loop between.
        snapshot() {
          const state = c.snapshot() as Uint8Array;
          return (async function* () {
            chunksRead++;
            yield state.subarray(0, 2);
            await new Promise((resolve) => setImmediate(resolve));
            chunksRead++;
            yield state.subarray(2);
          })();
        },
        async restore(chunks) {
          const parts: Uint8Array[] = [];
          for await (const chunk of chunks) parts.push(chunk);
          await new Promise((resolve) => setImmediate(resolve));
          c.restore({ [Symbol.iterator]: () => parts[Symbol.iterator](), [Symbol.asyncIterator]: () => chunks[Symbol.asyncIterator]() });
          restores++;
        },
      };
    };
    const report = await simulateStateMachine({ stateMachine: asyncCounter, model: counter as (o: unknown) => StateMachine, command: increments, seeds: 30, commandShare: 1 });
    expect(report.failures).toEqual([]);
    expect(restores, 'async restores run').toBeGreaterThan(0);
    expect(chunksRead, 'async snapshots read').toBeGreaterThan(0);
  });

  it('catches an async snapshot that reads the live state when it is read, not the state at its call', async () => {
    const lazy = (options: unknown): StateMachine => {
      const c = (counter as (o: unknown) => StateMachine)(options);
      return {
        ...c,
        // The bug: the state is read when the first chunk is asked for, after more commands applied.
        snapshot() {
          return (async function* () {
            yield c.snapshot() as Uint8Array;
          })();
        },
      };
    };
    const report = await simulateStateMachine({ stateMachine: lazy, command: increments, seeds: 30, commandShare: 1 });
    expect(report.failures.length).toBeGreaterThan(0);
    expect(report.failures[0]!.violation).toMatch(/^state machine (divergence|snapshot)/);
  });

  it('refuses a model that restores async', async () => {
    const model = (options: unknown): StateMachine => {
      const c = (counter as (o: unknown) => StateMachine)(options);
      return { ...c, restore: async (chunks) => c.restore(chunks) };
    };
    const report = await simulateStateMachine({ stateMachine: counter as (o: unknown) => StateMachine, model, command: increments, seeds: 2, commandShare: 1 });
    expect(report.failures.map((f) => f.violation)).toContainEqual(expect.stringMatching(/state machine history undecided: the model: its restore\(\) returned a promise/));
  });

  it('refuses a bad spec with INVALID_ARGUMENT', async () => {
    for (const spec of [{}, { stateMachine: 1 }, { stateMachine: counter, seeds: 0 }, { stateMachine: counter, nodes: [] }, { stateMachine: counter, commandShare: 2 }, { stateMachine: counter, faults: ['meteor'] }]) {
      await expect(simulateStateMachine(spec as never)).rejects.toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    }
    // The value at fault is the one named.
    await expect(simulateStateMachine({ stateMachine: counter as never, seeds: 0 })).rejects.toThrow(/^seeds must be/);
  });
});
