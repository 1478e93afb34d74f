// A cluster's own state machine beside the key-value store: its commands ('app') are applied
// once per session however often they are retried, an apply that throws or returns what is not
// bytes is answered with an error outcome the same on every replica and changes nothing, its
// state rides the store's snapshots (chunks joined, restored, the bytes identical across
// replicas), a node without one answers with an error outcome, and a mismatch between a
// snapshot and the node is refused.
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  APP_RESULT_BYTES_MAX,
  decodeAppOutcome,
  decodeKvRequest,
  encodeKvRequest,
  KvErrorCode as ErrorCode,
  KvStateMachine,
  type AppOutcome,
  type KvWriteResult,
  type StateMachine,
} from '../../src/kv/index.ts';

/** A counter: a command is a big-endian i32 to add; the result and a query's answer are the total. */
class Counter implements StateMachine {
  value = 0;
  /** Every command it was given, as given (to check they are copies of the log's bytes). */
  readonly kept: Uint8Array[] = [];
  apply(command: Uint8Array): Uint8Array {
    if (command.length !== 4) throw new RangeError(`a command is 4 bytes, got ${command.length}`);
    this.kept.push(command);
    this.value += new DataView(command.buffer, command.byteOffset, 4).getInt32(0);
    return i32(this.value);
  }
  query(): Uint8Array {
    return i32(this.value);
  }
  snapshot(): Iterable<Uint8Array> {
    // In two chunks, to prove they are joined.
    const b = i32(this.value);
    return [b.subarray(0, 1), b.subarray(1)];
  }
  restore(chunks: Iterable<Uint8Array>): void {
    const all = Uint8Array.from([...chunks].flatMap((c) => [...c]));
    if (all.length !== 4) throw new Error(`a counter snapshot is 4 bytes, got ${all.length}`);
    this.value = new DataView(all.buffer).getInt32(0);
  }
}

function i32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n);
  return b;
}

function valueOf(outcome: AppOutcome | undefined): number {
  if (outcome === undefined || !outcome.ok) throw new Error(`not a result: ${JSON.stringify(outcome)}`);
  return new DataView(outcome.result.buffer, outcome.result.byteOffset, 4).getInt32(0);
}

function outcomeOf(result: KvWriteResult | undefined): AppOutcome | undefined {
  if (result?.op !== 'app') throw new Error(`not an app result: ${JSON.stringify(result)}`);
  return decodeAppOutcome(result.encoded);
}

/** A store with a counter, and the counter. */
function withCounter(): { kv: KvStateMachine; counter: () => Counter } {
  let made: Counter | undefined;
  const kv = new KvStateMachine({ app: () => (made = new Counter()) });
  return { kv, counter: () => made! };
}

const app = (clientId: number, seq: number, data: Uint8Array): Uint8Array => encodeKvRequest({ clientId, seq, command: { op: 'app', data } });

describe("a cluster's own state machine in the store", () => {
  it('applies a command once per session: a retry gets the kept result and changes nothing', () => {
    const { kv, counter } = withCounter();
    expect(valueOf(outcomeOf(kv.apply(1, app(7, 1, i32(5))).result))).toBe(5);
    expect(valueOf(outcomeOf(kv.apply(2, app(8, 1, i32(10))).result))).toBe(15);
    const retry = kv.apply(3, app(7, 1, i32(5)));
    expect(retry.status).toBe('duplicate');
    expect(valueOf(outcomeOf(retry.result))).toBe(5);
    expect(counter().value).toBe(15);
    expect(valueOf(decodeAppOutcome(kv.query(new Uint8Array(0))))).toBe(15);
  });

  it('answers an apply that throws, or returns what is not bytes or too many, with the same error outcome on every replica, and goes on', () => {
    const bad: StateMachine = {
      apply: (c) => {
        if (c[0] === 1) throw new TypeError('no such command');
        if (c[0] === 2) return 'text' as unknown as Uint8Array;
        if (c[0] === 3) return new Uint8Array(APP_RESULT_BYTES_MAX + 1);
        return undefined;
      },
      query: () => {
        throw new Error('no queries');
      },
      snapshot: () => new Uint8Array(0),
      restore: () => {},
    };
    const replicas = [new KvStateMachine({ app: () => bad }), new KvStateMachine({ app: () => bad })];
    const outcomes = replicas.map((kv) => [1, 2, 3, 4].map((op, i) => outcomeOf(kv.apply(i + 1, app(1 + i, 1, Uint8Array.of(op))).result)));
    expect(outcomes[0]).toEqual(outcomes[1]);
    expect(outcomes[0]).toEqual([
      { ok: false, message: 'TypeError: no such command' },
      { ok: false, message: 'the state machine returned string, not a Uint8Array' },
      { ok: false, message: `the state machine returned ${APP_RESULT_BYTES_MAX + 1} bytes, over APP_RESULT_BYTES_MAX (${APP_RESULT_BYTES_MAX})` },
      { ok: true, result: new Uint8Array(0) },
    ]);
    expect(decodeAppOutcome(replicas[0]!.query(new Uint8Array(0)))).toEqual({ ok: false, message: 'Error: no queries' });
    expect(replicas[0]!.snapshot()).toEqual(replicas[1]!.snapshot());
  });

  it('hands apply a copy of the command, never a view of the log entry', () => {
    const { kv, counter } = withCounter();
    const entry = app(1, 1, i32(3));
    kv.apply(1, entry);
    entry.fill(0xff);
    expect([...counter().kept[0]!]).toEqual([...i32(3)]);
  });

  it("keeps the machine's state in the store's snapshots: restored from its chunks, the same bytes on every replica", () => {
    const { kv } = withCounter();
    kv.apply(1, encodeKvRequest({ clientId: 1, seq: 1, command: { op: 'put', key: Uint8Array.of(1), value: Uint8Array.of(2) } }));
    for (let i = 0; i < 10; i++) kv.apply(2 + i, app(2, 1 + i, i32(i)));
    const bytes = kv.snapshot();
    let restored: Counter | undefined;
    const copy = KvStateMachine.restore(bytes, { app: () => (restored = new Counter()) });
    expect(restored!.value).toBe(45);
    expect(valueOf(decodeAppOutcome(copy.query(new Uint8Array(0))))).toBe(45);
    expect(copy.get(Uint8Array.of(1))).toEqual(Uint8Array.of(2));
    expect(copy.snapshot()).toEqual(bytes);
    // The session's kept result came along: a retry of the last command is a duplicate there too.
    const retry = copy.apply(12, app(2, 10, i32(9)));
    expect(retry.status).toBe('duplicate');
    expect(valueOf(outcomeOf(retry.result))).toBe(45);
  });

  it('answers with an error outcome where the cluster has no state machine', () => {
    const kv = new KvStateMachine();
    expect(outcomeOf(kv.apply(1, app(1, 1, i32(1))).result)).toEqual({ ok: false, message: 'this cluster has no state machine of its own' });
    expect(decodeAppOutcome(kv.query(new Uint8Array(0)))).toEqual({ ok: false, message: 'this cluster has no state machine of its own' });
    expect(kv.hasApp).toBe(false);
  });

  it("refuses a snapshot that does not match the node's machine, and one the machine cannot restore", () => {
    const withApp = withCounter().kv;
    withApp.apply(1, app(1, 1, i32(1)));
    const plain = new KvStateMachine();
    plain.apply(1, encodeKvRequest({ clientId: 1, seq: 1, command: { op: 'delete', key: Uint8Array.of(1) } }));
    expect(() => KvStateMachine.restore(withApp.snapshot())).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    expect(() => KvStateMachine.restore(plain.snapshot(), { app: () => new Counter() })).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    const broken = (): StateMachine => Object.assign(new Counter(), { restore: () => { throw new Error('bad state'); } });
    expect(() => KvStateMachine.restore(withApp.snapshot(), { app: broken })).toThrow(expect.objectContaining({ code: ErrorCode.CORRUPT_SNAPSHOT, message: expect.stringContaining('bad state') }));
  });

  it('reads a snapshot of format 4, written before the state machine section, as a store without one', () => {
    const kv = new KvStateMachine();
    kv.apply(1, encodeKvRequest({ clientId: 1, seq: 1, command: { op: 'put', key: Uint8Array.of(1), value: Uint8Array.of(2) } }));
    const v5 = kv.snapshot();
    // Format 4: the same bytes without the section's flag (the byte before the CRC).
    const v4 = new Uint8Array(v5.length - 1);
    v4.set(v5.subarray(0, v5.length - 5));
    v4[4] = 4;
    new DataView(v4.buffer).setUint32(v4.length - 4, crc32(v4.subarray(0, v4.length - 4)), true);
    const restored = KvStateMachine.restore(v4);
    expect(restored.get(Uint8Array.of(1))).toEqual(Uint8Array.of(2));
    expect(restored.snapshot()).toEqual(v5);
  });

  it('answers whatever apply throws with an error outcome, even a value that cannot be told as text', () => {
    const nasty = [
      Object.create(null),
      { toString: () => { throw new Error('no'); } },
      Object.defineProperty(new Error('x'), 'message', { get: () => { throw new Error('no'); } }),
      Symbol('s'),
    ];
    for (const thrown of nasty) {
      const kv = new KvStateMachine({ app: () => Object.assign(new Counter(), { apply: () => { throw thrown; } }) });
      const outcome = outcomeOf(kv.apply(1, app(1, 1, i32(1))).result);
      expect(outcome?.ok).toBe(false);
    }
  });

  it('copies the chunks of a snapshot as they come: a generator may reuse one buffer', () => {
    const { kv } = withCounter();
    kv.apply(1, app(1, 1, i32(0x01020304)));
    const reusing = (): StateMachine =>
      Object.assign(new Counter(), {
        *snapshot(this: Counter) {
          const scratch = new Uint8Array(1);
          for (const byte of i32(this.value)) {
            scratch[0] = byte;
            yield scratch;
          }
        },
      });
    const src = new KvStateMachine({ app: reusing });
    src.apply(1, app(1, 1, i32(0x01020304)));
    let restored: Counter | undefined;
    KvStateMachine.restore(src.snapshot(), { app: () => (restored = new Counter()) });
    expect(restored!.value).toBe(0x01020304);
    void kv;
  });

  it('refuses a snapshot of the machine that is not bytes with APPLY_FAILED (a promise too, its rejection handled)', () => {
    for (const taken of ['text', [Uint8Array.of(1), 'x'], null, Promise.reject(new Error('an async snapshot()'))]) {
      const kv = new KvStateMachine({ app: () => Object.assign(new Counter(), { snapshot: () => taken as unknown as Uint8Array }) });
      expect(() => kv.snapshot()).toThrow(expect.objectContaining({ code: ErrorCode.APPLY_FAILED }));
    }
  });

  it('takes a snapshot given as an async sequence: the store now, the machine as it was at the call, the same bytes as at once', async () => {
    const sync = withCounter();
    let later: Counter | undefined;
    const asyncKv = new KvStateMachine({
      app: () =>
        (later = Object.assign(new Counter(), {
          snapshot(this: Counter) {
            const state = i32(this.value);
            return (async function* () {
              await new Promise((resolve) => setImmediate(resolve));
              yield state.subarray(0, 3);
              yield state.subarray(3);
            })();
          },
        })),
    });
    for (const kv of [sync.kv, asyncKv]) for (let i = 0; i < 5; i++) kv.apply(1 + i, app(2, 1 + i, i32(i)));
    expect(() => asyncKv.snapshot()).toThrow(expect.objectContaining({ code: ErrorCode.APPLY_FAILED, message: expect.stringContaining('takeSnapshot') }));
    const taking = asyncKv.takeSnapshot();
    expect(taking).toBeInstanceOf(Promise);
    // Applied after the call: in neither part of the snapshot.
    asyncKv.apply(6, encodeKvRequest({ clientId: 1, seq: 1, command: { op: 'put', key: Uint8Array.of(1), value: Uint8Array.of(2) } }));
    asyncKv.apply(7, app(2, 6, i32(100)));
    expect(later!.value).toBe(110);
    expect(await taking).toEqual(sync.kv.snapshot());
    // A failing sequence rejects with APPLY_FAILED.
    const failing = new KvStateMachine({
      app: () =>
        Object.assign(new Counter(), {
          snapshot: () =>
            (async function* () {
              yield Uint8Array.of(1);
              throw new Error('lost the disk');
            })(),
        }),
    });
    await expect(failing.takeSnapshot()).rejects.toMatchObject({ code: ErrorCode.APPLY_FAILED, message: expect.stringContaining('lost the disk') });
  });

  it('restores a machine whose restore is async: the store says so until it settles, and a rejection is CORRUPT_SNAPSHOT', async () => {
    const { kv } = withCounter();
    for (let i = 0; i < 5; i++) kv.apply(1 + i, app(2, 1 + i, i32(i)));
    const bytes = kv.snapshot();
    let restored: Counter | undefined;
    const copy = KvStateMachine.restore(bytes, {
      app: () =>
        (restored = Object.assign(new Counter(), {
          async restore(this: Counter, chunks: AsyncIterable<Uint8Array>) {
            const parts: Uint8Array[] = [];
            for await (const c of chunks) parts.push(c);
            Counter.prototype.restore.call(this, parts);
          },
        })),
    });
    expect(copy.restoring).toBeInstanceOf(Promise);
    await copy.restoring;
    expect(restored!.value).toBe(10);
    const bad = KvStateMachine.restore(bytes, { app: () => Object.assign(new Counter(), { restore: () => Promise.reject(new Error('no room')) }) });
    await expect(bad.restoring).rejects.toMatchObject({ code: ErrorCode.CORRUPT_SNAPSHOT, message: expect.stringContaining('no room') });
    expect(KvStateMachine.restore(bytes, { app: () => new Counter() }).restoring).toBeUndefined();
  });

  it('encodes a command within its bound, and decodes it as it was', () => {
    const data = Uint8Array.of(9, 8, 7);
    const decoded = decodeKvRequest(app(5, 6, data));
    expect(decoded).toEqual({ clientId: 5, seq: 6, command: { op: 'app', data } });
    expect(() => encodeKvRequest({ clientId: 1, seq: 1, command: { op: 'app', data: 'x' as unknown as Uint8Array } })).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });
});
