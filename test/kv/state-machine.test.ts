// Proves the KV state machine's contract: put/get/delete/cas semantics; exactly-once client
// sessions (duplicate, stale, expired, deterministic eviction by oldest last-applied index);
// client ids registered through the log (register-clients: disjoint blocks from a counter
// that starts at 2^32, is carried in snapshots and refuses to pass 2^53 - 1); snapshots that
// restore to the same reads, the same bytes and the same deduplication, and that refuse
// damage with a typed error (and other format versions with UNSUPPORTED_FORMAT); onChange
// delivering each change once in log order. A fast-check property feeds random command
// sequences (with retries, stale and unknown clients, registrations, skipped indexes) to a
// machine and to a twin that is snapshotted and restored at random points, and checks both
// against a naive reference model and each other byte for byte; another checks that no id
// is ever handed out twice across any restore points.
import { Buffer } from 'node:buffer';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteReader, DecodeError } from '../../src/codec/index.ts';
import type { DecodeErrorReason } from '../../src/codec/index.ts';
import {
  encodeKvRequest,
  forEachKvBatchRequest,
  KV_CLIENT_ID_REGISTERED_FIRST,
  KV_REGISTER_CLIENTS_COUNT_MAX,
  KV_SNAPSHOT_FORMAT_VERSION,
  KvApplyOutcomes,
  KvBatchBuilder,
  KvError,
  KvStateMachine,
} from '../../src/kv/index.ts';
import type { KvApplyOutcome, KvChange, KvCommand, KvResult, KvWriteResult } from '../../src/kv/index.ts';

const bytesOf = (text: string): Uint8Array => new TextEncoder().encode(text);
const textOf = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : new TextDecoder().decode(bytes);

function request(clientId: number, seq: number, command: KvCommand): Uint8Array {
  return encodeKvRequest({ clientId, seq, command });
}
function registration(count: number): Uint8Array {
  return encodeKvRequest({ op: 'register-clients', count });
}
/** The outcome of a registration that got the block starting at `first`. */
const registered = (first: number): KvApplyOutcome => ({ clientId: 0, seq: 0, result: { op: 'register-clients', clientIdFirst: first }, status: 'applied' });
const put = (key: string, value: string): KvCommand => ({ op: 'put', key: bytesOf(key), value: bytesOf(value) });
const del = (key: string): KvCommand => ({ op: 'delete', key: bytesOf(key) });
const cas = (key: string, expected: string | undefined, value: string): KvCommand => ({
  op: 'cas',
  key: bytesOf(key),
  expected: expected === undefined ? undefined : bytesOf(expected),
  value: bytesOf(value),
});

/** Applies commands at consecutive indexes, each from its own fresh client (seq 1). */
class Driver {
  readonly machine: KvStateMachine;
  private nextClientId = 1000;
  constructor(machine = new KvStateMachine()) {
    this.machine = machine;
  }
  send(clientId: number, seq: number, command: KvCommand): KvApplyOutcome {
    return this.machine.apply(this.machine.appliedIndex + 1, request(clientId, seq, command));
  }
  run(command: KvCommand): KvWriteResult | undefined {
    return this.send(this.nextClientId++, 1, command).result;
  }
}

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw, but nothing was thrown');
}

function expectCorruptSnapshot(bytes: Uint8Array, reason?: DecodeErrorReason): void {
  const error = thrown(() => KvStateMachine.restore(bytes));
  expect(error).toBeInstanceOf(KvError);
  expect((error as KvError).code).toBe('CORRUPT_SNAPSHOT');
  expect((error as KvError).cause).toBeInstanceOf(DecodeError);
  if (reason !== undefined) expect(((error as KvError).cause as DecodeError).reason).toBe(reason);
}

/** Rewrites the trailing CRC so that a deliberately malformed body passes the checksum. */
function withFreshCrc(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(bytes);
  new DataView(copy.buffer, copy.byteOffset, copy.byteLength).setUint32(copy.length - 4, crc32(copy.subarray(0, copy.length - 4)), true);
  return copy;
}

describe('commands', () => {
  it('put stores and overwrites; get returns the value or undefined', () => {
    const d = new Driver();
    expect(d.machine.get(bytesOf('a'))).toBeUndefined();
    expect(d.run(put('a', '1'))).toEqual({ op: 'put' });
    expect(textOf(d.machine.get(bytesOf('a')))).toBe('1');
    d.run(put('a', '2'));
    expect(textOf(d.machine.get(bytesOf('a')))).toBe('2');
    d.run(put('b', ''));
    expect(d.machine.get(bytesOf('b'))).toEqual(new Uint8Array(0));
    expect(d.machine.size).toBe(2);
  });

  it('delete removes a key and reports whether it existed', () => {
    const d = new Driver();
    d.run(put('a', '1'));
    expect(d.run(del('a'))).toEqual({ op: 'delete', existed: true });
    expect(d.machine.get(bytesOf('a'))).toBeUndefined();
    expect(d.run(del('a'))).toEqual({ op: 'delete', existed: false });
    expect(d.machine.size).toBe(0);
  });

  it('cas swaps only when the current value matches, and undefined means absent', () => {
    const d = new Driver();
    expect(d.run(cas('n', '0', '1'))).toEqual({ op: 'cas', swapped: false });
    expect(d.machine.get(bytesOf('n'))).toBeUndefined();
    expect(d.run(cas('n', undefined, '1'))).toEqual({ op: 'cas', swapped: true });
    expect(d.run(cas('n', undefined, '9'))).toEqual({ op: 'cas', swapped: false });
    expect(d.run(cas('n', '2', '9'))).toEqual({ op: 'cas', swapped: false });
    expect(d.run(cas('n', '1', '2'))).toEqual({ op: 'cas', swapped: true });
    expect(textOf(d.machine.get(bytesOf('n')))).toBe('2');
    // The empty value is a value, not absence.
    d.run(put('e', ''));
    expect(d.run(cas('e', undefined, 'x'))).toEqual({ op: 'cas', swapped: false });
    expect(d.run(cas('e', '', 'x'))).toEqual({ op: 'cas', swapped: true });
  });

  it('keeps binary keys apart, including bytes above 0x7f', () => {
    const d = new Driver();
    const keys = [Uint8Array.of(0xc3, 0xa9), Uint8Array.of(0xe9), Uint8Array.of(0), Uint8Array.of(0, 0)];
    keys.forEach((key, i) => d.run({ op: 'put', key, value: Uint8Array.of(i) }));
    keys.forEach((key, i) => expect(d.machine.get(key)).toEqual(Uint8Array.of(i)));
    expect(d.machine.size).toBe(keys.length);
  });

  it('get returns a copy, so a caller cannot change the replicated state', () => {
    const d = new Driver();
    d.run(put('a', '1'));
    d.machine.get(bytesOf('a'))!.fill(0);
    expect(textOf(d.machine.get(bytesOf('a')))).toBe('1');
  });

  it('stored values do not alias the entry bytes passed to apply', () => {
    const machine = new KvStateMachine();
    const data = request(1, 1, put('a', 'v'));
    machine.apply(1, data);
    data.fill(0);
    expect(textOf(machine.get(bytesOf('a')))).toBe('v');
  });
});

describe('log indexes', () => {
  it('apply and skip advance appliedIndex, with gaps allowed', () => {
    const machine = new KvStateMachine();
    expect(machine.appliedIndex).toBe(0);
    machine.skip(1);
    machine.apply(2, request(1, 1, put('a', '1')));
    machine.apply(5, request(1, 2, put('a', '2')));
    expect(machine.appliedIndex).toBe(5);
    machine.skip(9);
    expect(machine.appliedIndex).toBe(9);
  });

  it('crashes with a plain Error on an index at or below appliedIndex', () => {
    const machine = new KvStateMachine();
    machine.apply(3, request(1, 1, put('a', '1')));
    for (const run of [
      () => machine.apply(3, request(1, 2, put('a', '2'))),
      () => machine.apply(2, request(1, 2, put('a', '2'))),
      () => machine.skip(3),
      () => machine.apply(4.5, request(1, 2, put('a', '2'))),
    ]) {
      const error = thrown(run);
      expect(error).toBeInstanceOf(Error);
      expect(error).not.toBeInstanceOf(KvError);
    }
    expect(machine.appliedIndex).toBe(3);
    expect(textOf(machine.get(bytesOf('a')))).toBe('1');
  });

  it('refuses an undecodable entry with CORRUPT_COMMAND and changes nothing', () => {
    const machine = new KvStateMachine();
    machine.apply(1, request(1, 1, put('a', '1')));
    const before = machine.snapshot();
    const error = thrown(() => machine.apply(2, Uint8Array.of(1, 1, 0)));
    expect(error).toBeInstanceOf(KvError);
    expect((error as KvError).code).toBe('CORRUPT_COMMAND');
    expect(machine.appliedIndex).toBe(1);
    expect(machine.snapshot()).toEqual(before);
  });

  it('refuses a bad sessionsMax with INVALID_ARGUMENT', () => {
    for (const sessionsMax of [0, -1, 1.5, 2 ** 32]) {
      const error = thrown(() => new KvStateMachine({ sessionsMax }));
      expect((error as KvError).code).toBe('INVALID_ARGUMENT');
    }
  });
});

describe('client sessions (exactly-once, Raft thesis §6.3)', () => {
  it('a retried duplicate returns the cached result and does not overwrite a later write', () => {
    const d = new Driver();
    expect(d.send(1, 1, put('k', 'from-1'))).toEqual({ clientId: 1, seq: 1, result: { op: 'put' }, status: 'applied' });
    d.send(2, 1, put('k', 'from-2'));
    // A duplicate names the index where the request applied (1), not its retry's (3).
    expect(d.send(1, 1, put('k', 'from-1'))).toEqual({ clientId: 1, seq: 1, result: { op: 'put' }, status: 'duplicate', appliedAt: 1 });
    expect(textOf(d.machine.get(bytesOf('k')))).toBe('from-2');
  });

  it('a duplicate returns the result computed when the request first ran, not a fresh one', () => {
    const d = new Driver();
    d.send(1, 1, put('k', 'v'));
    expect(d.send(1, 2, del('k')).result).toEqual({ op: 'delete', existed: true });
    // Run again now, the delete would find nothing; the retry must still say it existed.
    expect(d.send(1, 2, del('k'))).toEqual({ clientId: 1, seq: 2, result: { op: 'delete', existed: true }, status: 'duplicate', appliedAt: 2 });
    d.send(2, 1, put('k', 'again'));
    expect(d.send(1, 2, del('k')).status).toBe('duplicate');
    expect(textOf(d.machine.get(bytesOf('k')))).toBe('again');
  });

  it('a request older than the session latest is stale: no result, no change', () => {
    const d = new Driver();
    d.send(1, 1, put('k', 'one'));
    d.send(1, 2, put('k', 'two'));
    expect(d.send(1, 1, put('k', 'one'))).toEqual({ clientId: 1, seq: 1, result: undefined, status: 'stale' });
    expect(textOf(d.machine.get(bytesOf('k')))).toBe('two');
    expect(d.machine.appliedIndex).toBe(3);
  });

  it('seq may jump forward; the latest becomes the one deduplicated', () => {
    const d = new Driver();
    d.send(1, 1, put('k', '1'));
    expect(d.send(1, 5, put('k', '5')).status).toBe('applied');
    expect(d.send(1, 5, put('k', 'x')).status).toBe('duplicate');
    expect(d.send(1, 4, put('k', 'x')).status).toBe('stale');
    expect(textOf(d.machine.get(bytesOf('k')))).toBe('5');
  });

  it('an unknown client with seq > 1 is expired and changes nothing; seq 1 opens a session', () => {
    const d = new Driver();
    expect(d.send(9, 2, put('k', 'v'))).toEqual({ clientId: 9, seq: 2, result: undefined, status: 'expired' });
    expect(d.machine.get(bytesOf('k'))).toBeUndefined();
    expect(d.send(9, 2, put('k', 'v')).status).toBe('expired');
    expect(d.send(9, 1, put('k', 'v')).status).toBe('applied');
    expect(d.send(9, 2, put('k', 'w')).status).toBe('applied');
    expect(textOf(d.machine.get(bytesOf('k')))).toBe('w');
  });

  it('evicts the session with the smallest last applied index when a new client exceeds sessionsMax', () => {
    const d = new Driver(new KvStateMachine({ sessionsMax: 2 }));
    d.send(1, 1, put('a', '1')); // index 1: session 1 at 1
    d.send(2, 1, put('b', '1')); // index 2: session 2 at 2
    d.send(1, 2, put('a', '2')); // index 3: session 1 at 3, so session 2 is now the oldest
    d.send(3, 1, put('c', '1')); // index 4: a third client evicts session 2
    expect(d.send(2, 2, put('b', '2')).status).toBe('expired');
    expect(d.send(1, 2, put('a', 'x')).status).toBe('duplicate');
    expect(d.send(3, 1, put('c', 'x')).status).toBe('duplicate');
    expect(textOf(d.machine.get(bytesOf('b')))).toBe('1');
  });

  it('a duplicate does not refresh a session: eviction goes by the last applied index', () => {
    const d = new Driver(new KvStateMachine({ sessionsMax: 2 }));
    d.send(1, 1, put('a', '1')); // session 1 at 1
    d.send(2, 1, put('b', '1')); // session 2 at 2
    expect(d.send(1, 1, put('a', '1')).status).toBe('duplicate'); // session 1 stays at 1
    d.send(3, 1, put('c', '1')); // evicts session 1
    expect(d.send(1, 2, put('a', '2')).status).toBe('expired');
    expect(d.send(2, 1, put('b', 'x')).status).toBe('duplicate');
  });

  it('stale, duplicate and expired requests still consume their log index', () => {
    const d = new Driver();
    d.send(1, 1, put('a', '1'));
    d.send(1, 1, put('a', '1'));
    d.send(7, 3, put('a', '1'));
    expect(d.machine.appliedIndex).toBe(3);
  });
});

describe('snapshot and restore', () => {
  function busyMachine(): Driver {
    const d = new Driver(new KvStateMachine({ sessionsMax: 3 }));
    d.send(1, 1, put('zebra', 'z'));
    d.send(2, 1, put('apple', 'a'));
    d.send(3, 1, put('mango', 'm'));
    d.send(1, 2, del('zebra'));
    d.machine.skip(d.machine.appliedIndex + 2);
    d.send(4, 1, cas('kiwi', undefined, 'k')); // evicts session 2
    d.send(3, 2, put('mango', 'M'));
    return d;
  }

  it('restores the same reads, appliedIndex and snapshot bytes', () => {
    const original = busyMachine().machine;
    const bytes = original.snapshot();
    const restored = KvStateMachine.restore(bytes, { sessionsMax: 3 });
    expect(restored.appliedIndex).toBe(original.appliedIndex);
    expect(restored.size).toBe(original.size);
    for (const key of ['zebra', 'apple', 'mango', 'kiwi', 'absent']) {
      expect(restored.get(bytesOf(key))).toEqual(original.get(bytesOf(key)));
    }
    expect(restored.snapshot()).toEqual(bytes);
  });

  it('carries the sessions, so deduplication behaves the same after restore', () => {
    const original = busyMachine();
    const restored = new Driver(KvStateMachine.restore(original.machine.snapshot(), { sessionsMax: 3 }));
    const probes: [number, number, KvCommand][] = [
      [1, 2, del('zebra')], // duplicate: cached existed = true
      [1, 1, put('zebra', 'again')], // stale
      [2, 2, put('apple', 'b')], // expired: session 2 was evicted
      [3, 2, put('mango', 'x')], // duplicate
      [4, 2, put('kiwi', 'K')], // applied
      [5, 1, put('new', 'n')], // applied: opens a session, evicting session 1
      [1, 3, put('zebra', 'z')], // expired
    ];
    for (const [clientId, seq, command] of probes) {
      expect(restored.send(clientId, seq, command)).toEqual(original.send(clientId, seq, command));
    }
    expect(restored.send(1, 2, del('zebra')).status).toBe('expired');
    expect(original.send(1, 2, del('zebra')).status).toBe('expired');
    expect(restored.machine.snapshot()).toEqual(original.machine.snapshot());
  });

  it('writes entries in ascending key-byte order, whatever the insertion order', () => {
    const keys = [Uint8Array.of(0xff), Uint8Array.of(1, 0), Uint8Array.of(0x80), Uint8Array.of(1), Uint8Array.of(0x7f, 0xff)];
    const d = new Driver();
    for (const key of keys) d.run({ op: 'put', key, value: Uint8Array.of() });
    const bytes = d.machine.snapshot();
    const reader = new ByteReader(bytes.subarray(0, bytes.length - 4));
    reader.raw(4 + 1 + 8 + 8);
    reader.raw(reader.u32() * 25);
    const written = Array.from({ length: reader.u32() }, () => {
      const key = [...reader.bytes(4096)];
      reader.bytes(0);
      // Revisions: createIndex, modIndex, version; then the lease (none).
      const row = [key, reader.u64Number(), reader.u64Number(), reader.u64Number()];
      expect(reader.u64Number()).toBe(0);
      return row;
    });
    // The lease table: the next id (1), no lease; no state machine of the cluster's own.
    expect([reader.u64Number(), reader.u32()]).toEqual([1, 0]);
    expect(reader.u8()).toBe(0);
    reader.expectEnd();
    expect(written.map(([key]) => key)).toEqual([[1], [1, 0], [0x7f, 0xff], [0x80], [0xff]]);
    // Each key was written once, by the entry at its place in `keys` (indexes from 1).
    for (const [key, createIndex, modIndex, version] of written) {
      const at = keys.findIndex((k) => [...k].join() === (key as number[]).join()) + 1;
      expect([createIndex, modIndex, version]).toEqual([at, at, 1]);
    }
  });

  it('snapshots an empty machine and restores it', () => {
    const bytes = new KvStateMachine().snapshot();
    const restored = KvStateMachine.restore(bytes);
    expect(restored.appliedIndex).toBe(0);
    expect(restored.size).toBe(0);
    expect(restored.snapshot()).toEqual(bytes);
  });

  it('refuses any single damaged byte with CORRUPT_SNAPSHOT', () => {
    const bytes = busyMachine().machine.snapshot();
    for (let at = 0; at < bytes.length; at++) {
      const damaged = bytes.slice();
      damaged[at]! ^= 0x01 << at % 8;
      expectCorruptSnapshot(damaged, 'checksum_mismatch');
    }
  });

  it('refuses every truncation with CORRUPT_SNAPSHOT', () => {
    const bytes = busyMachine().machine.snapshot();
    for (let length = 0; length < bytes.length; length++) {
      expectCorruptSnapshot(bytes.subarray(0, length));
    }
  });

  it('refuses a well-checksummed snapshot with a bad structure', () => {
    const bytes = busyMachine().machine.snapshot();
    const patched = (at: number, value: number): Uint8Array => {
      const copy = bytes.slice();
      copy[at] = value;
      return withFreshCrc(copy);
    };
    expectCorruptSnapshot(patched(0, 0x00), 'invalid'); // magic
    expectCorruptSnapshot(patched(17, 0), 'invalid'); // clientIdNext 2^32 -> 0, below the registered ids
    expectCorruptSnapshot(patched(20, 0x20), 'out_of_range'); // clientIdNext above 2^53 - 1
    expectCorruptSnapshot(patched(21, 0xff), 'length_over_max'); // session count
    expectCorruptSnapshot(patched(25 + 24, 9), 'invalid'); // first session's result code
    expectCorruptSnapshot(patched(25, 0), 'invalid'); // first session's clientId 1 -> 0
    expectCorruptSnapshot(patched(25 + 7, 0x20), 'out_of_range'); // first session's clientId above 2^53 - 1
    const unsorted = new Driver();
    unsorted.run(put('a', ''));
    unsorted.run(put('b', ''));
    const sorted = unsorted.machine.snapshot();
    // Swap the two one-byte keys 'a' and 'b' in the entry section.
    const swapped = sorted.slice();
    const first = swapped.indexOf(0x61, 25 + 2 * 25 + 4);
    const second = swapped.indexOf(0x62, first);
    swapped[first] = 0x62;
    swapped[second] = 0x61;
    expectCorruptSnapshot(withFreshCrc(swapped), 'invalid');
    const longer = new Uint8Array(bytes.length + 4);
    longer.set(bytes);
    expectCorruptSnapshot(withFreshCrc(longer), 'trailing_bytes');
  });

  /**
   * A snapshot of `d` in an earlier format: version 3 is version 4 without each entry's lease
   * and the lease table; version 2 is version 3 without the revisions too (d holds no lease).
   */
  function olderSnapshot(d: Driver, version: 2 | 3): Uint8Array {
    const v4 = d.machine.snapshot();
    const reader = new ByteReader(v4.subarray(0, v4.length - 4));
    const head = reader.raw(4 + 1 + 8 + 8);
    const sessions = reader.u32();
    reader.raw(sessions * 25);
    const parts: Uint8Array[] = [head.slice(), v4.slice(21, reader.offset)];
    const count = reader.u32();
    const countBytes = new Uint8Array(4);
    new DataView(countBytes.buffer).setUint32(0, count, true);
    parts.push(countBytes);
    for (let i = 0; i < count; i++) {
      const start = reader.offset;
      reader.bytes(4096);
      reader.bytes(1 << 20);
      if (version === 3) reader.raw(24);
      parts.push(v4.slice(start, reader.offset));
      reader.raw(version === 3 ? 8 : 32);
    }
    const older = Buffer.concat([...parts, new Uint8Array(4)]);
    older[4] = version;
    return withFreshCrc(older);
  }

  it('reads a snapshot of format 3 (no leases): the same keys and revisions, no lease', () => {
    const d = busyMachine();
    const restored = KvStateMachine.restore(olderSnapshot(d, 3));
    expect(restored.range({})).toEqual(d.machine.range({}));
    expect([...restored.leases()]).toEqual([]);
    expect(restored.snapshot()).toEqual(d.machine.snapshot());
  });

  it('reads a snapshot of the previous format (2, no revisions): each key created and changed at its appliedIndex, version 1', () => {
    const d = busyMachine();
    const restored = KvStateMachine.restore(olderSnapshot(d, 2));
    expect(restored.size).toBe(d.machine.size);
    const all = restored.range({});
    expect(all.entries.map((e) => [textOf(e.key), textOf(e.value)])).toEqual(d.machine.range({}).entries.map((e) => [textOf(e.key), textOf(e.value)]));
    for (const e of all.entries) expect([e.createIndex, e.modIndex, e.version]).toEqual([restored.appliedIndex, restored.appliedIndex, 1]);
    // Written again in the current format.
    expect(restored.snapshot()[4]).toBe(KV_SNAPSHOT_FORMAT_VERSION);
  });

  it('refuses another format version, its CRC intact, with UNSUPPORTED_FORMAT (not as corrupt)', () => {
    const bytes = busyMachine().machine.snapshot();
    expect(bytes[4]).toBe(KV_SNAPSHOT_FORMAT_VERSION);
    for (const version of [0, 1, KV_SNAPSHOT_FORMAT_VERSION + 1, 255]) {
      const copy = bytes.slice();
      copy[4] = version;
      const error = thrown(() => KvStateMachine.restore(withFreshCrc(copy)));
      expect(error).toBeInstanceOf(KvError);
      expect((error as KvError).code).toBe('UNSUPPORTED_FORMAT');
    }
    // A snapshot of the previous format (version 1: u32 client ids, no counter) of one session.
    const v1 = new Uint8Array(4 + 1 + 8 + 4 + 21 + 4 + 4);
    const view = new DataView(v1.buffer);
    v1.set([0x52, 0x4b, 0x56, 0x53, 1]);
    view.setUint32(5, 1, true); // appliedIndex 1
    view.setUint32(13, 1, true); // one session
    view.setUint32(17, 7, true); // clientId 7
    view.setUint32(21, 1, true); // lastSeq 1
    view.setUint32(29, 1, true); // lastIndex 1
    v1[37] = 1; // result: put
    const error = thrown(() => KvStateMachine.restore(withFreshCrc(v1)));
    expect((error as KvError).code).toBe('UNSUPPORTED_FORMAT');
  });

  it('restores into a smaller sessionsMax by evicting the oldest sessions', () => {
    const original = busyMachine(); // sessions, oldest first: client 1, client 4, client 3
    const restored = new Driver(KvStateMachine.restore(original.machine.snapshot(), { sessionsMax: 1 }));
    expect(restored.send(3, 2, put('mango', 'x')).status).toBe('duplicate');
    expect(restored.send(1, 2, del('zebra')).status).toBe('expired');
    expect(restored.send(4, 2, put('kiwi', 'x')).status).toBe('expired');
    // Documented limit: a client's first request (seq 1) retried after its session was
    // evicted looks like a new session and runs again.
    expect(restored.send(4, 1, cas('kiwi', undefined, 'k')).status).toBe('applied');
  });
});

describe('client registration (register-clients, Raft thesis §6.3)', () => {
  it('hands out consecutive disjoint blocks from 2^32 on, with no session and no change', () => {
    const machine = new KvStateMachine();
    const changes: KvChange[] = [];
    machine.onChange((c) => changes.push(c));
    expect(machine.clientIdNext).toBe(KV_CLIENT_ID_REGISTERED_FIRST);
    expect(machine.apply(1, registration(4096))).toEqual(registered(2 ** 32));
    expect(machine.apply(2, registration(1))).toEqual(registered(2 ** 32 + 4096));
    // A retry of the same request is not deduplicated: it takes another block.
    expect(machine.apply(3, registration(1))).toEqual(registered(2 ** 32 + 4097));
    expect(machine.clientIdNext).toBe(2 ** 32 + 4098);
    expect(machine.appliedIndex).toBe(3);
    expect(changes).toEqual([]);
    // No session was opened: a session request with seq 2 of a registered id is expired.
    expect(machine.apply(4, request(2 ** 32, 2, put('a', '1'))).status).toBe('expired');
    expect(machine.apply(5, request(2 ** 32, 1, put('a', '1'))).status).toBe('applied');
  });

  it('registers inside a batch, each registration in order', () => {
    const m = new KvStateMachine();
    const b = new KvBatchBuilder(8);
    for (const r of [registration(10), request(1, 1, put('a', '1')), registration(5)]) b.add(r, 0, r.length);
    const outcomes = m.applyBatch(1, b.finish());
    expect(outcomes).toEqual([registered(2 ** 32), { clientId: 1, seq: 1, result: { op: 'put' }, status: 'applied' }, registered(2 ** 32 + 10)]);
  });

  it('carries the counter in the snapshot: a restored machine goes on where the original was', () => {
    const original = new KvStateMachine();
    original.apply(1, registration(4096));
    original.apply(2, request(2 ** 32, 1, put('a', '1')));
    const restored = KvStateMachine.restore(original.snapshot());
    expect(restored.clientIdNext).toBe(original.clientIdNext);
    expect(restored.apply(3, registration(7))).toEqual(original.apply(3, registration(7)));
    expect(restored.snapshot()).toEqual(original.snapshot());
  });

  it('refuses a registration that would pass 2^53 - 1, and changes nothing', () => {
    const near = new KvStateMachine().snapshot();
    // clientIdNext (bytes 13..20) -> 2^53 - 11.
    new DataView(near.buffer, near.byteOffset).setUint32(13, (2 ** 53 - 11) % 2 ** 32, true);
    new DataView(near.buffer, near.byteOffset).setUint32(17, Math.floor((2 ** 53 - 11) / 2 ** 32), true);
    const machine = KvStateMachine.restore(withFreshCrc(near));
    expect(machine.clientIdNext).toBe(2 ** 53 - 11);
    expect(machine.apply(1, registration(11)).status).toBe('invalid');
    expect(machine.clientIdNext).toBe(2 ** 53 - 11);
    expect(machine.apply(2, registration(10))).toEqual(registered(2 ** 53 - 11));
    expect(machine.clientIdNext).toBe(Number.MAX_SAFE_INTEGER);
    expect(machine.apply(3, registration(1)).status).toBe('invalid');
    expect(KvStateMachine.restore(machine.snapshot()).clientIdNext).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('property: no id is handed out twice, whatever the counts and the restore points', () => {
    const stepArb = fc.record({
      count: fc.oneof(fc.integer({ min: 1, max: 5000 }), fc.constantFrom(1, 4096, KV_REGISTER_CLIENTS_COUNT_MAX)),
      restoreAfter: fc.boolean(),
      write: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 60 }), (steps) => {
        let machine = new KvStateMachine();
        const blocks: [number, number][] = [];
        let index = 0;
        for (const step of steps) {
          const outcome = machine.apply(++index, registration(step.count));
          expect(outcome.status).toBe('applied');
          const first = (outcome.result as { clientIdFirst: number }).clientIdFirst;
          blocks.push([first, first + step.count]);
          // Writes under a registered id between registrations change nothing about the counter.
          if (step.write) machine.apply(++index, request(first, 1, put('k', String(index))));
          if (step.restoreAfter) machine = KvStateMachine.restore(machine.snapshot());
        }
        // Blocks come in order, each starting where the previous ended: disjoint, none below 2^32.
        let expectedFirst = KV_CLIENT_ID_REGISTERED_FIRST;
        for (const [first, end] of blocks) {
          expect(first).toBe(expectedFirst);
          expectedFirst = end;
        }
        expect(machine.clientIdNext).toBe(expectedFirst);
      }),
      { numRuns: 300 },
    );
  });
});

describe('onChange', () => {
  it('sees every change once, in log order, and nothing for requests that change nothing', () => {
    const d = new Driver();
    const seen: { index: number; key: string; value: string | undefined }[] = [];
    d.machine.onChange((change) => seen.push({ index: change.index, key: textOf(change.key)!, value: textOf(change.value) }));
    d.send(1, 1, put('a', '1')); // 1: change
    d.send(1, 1, put('a', '1')); // 2: duplicate
    d.send(2, 1, del('b')); // 3: nothing existed
    d.send(2, 2, del('a')); // 4: change
    d.send(2, 1, put('a', 'x')); // 5: stale
    d.send(3, 4, put('a', 'x')); // 6: expired
    d.send(3, 1, cas('a', 'x', 'y')); // 7: no swap
    d.send(4, 1, cas('a', undefined, 'y')); // 8: change
    d.machine.skip(9);
    d.send(4, 2, put('c', '')); // 10: change
    expect(seen).toEqual([
      { index: 1, key: 'a', value: '1' },
      { index: 4, key: 'a', value: undefined },
      { index: 8, key: 'a', value: 'y' },
      { index: 10, key: 'c', value: '' },
    ]);
  });

  it('unsubscribes, also from inside a notification, and twice is harmless', () => {
    const d = new Driver();
    const calls: string[] = [];
    const offFirst = d.machine.onChange(() => {
      calls.push('first');
      offFirst();
    });
    const offSecond = d.machine.onChange(() => calls.push('second'));
    d.run(put('a', '1'));
    d.run(put('a', '2'));
    offSecond();
    offSecond();
    d.run(put('a', '3'));
    expect(calls).toEqual(['first', 'second', 'second']);
  });

  it('a throwing listener does not stop the others; the error surfaces after the change is made', () => {
    const d = new Driver();
    const seen: number[] = [];
    d.machine.onChange(() => {
      throw new Error('listener bug');
    });
    d.machine.onChange((change) => seen.push(change.index));
    expect(() => d.run(put('a', '1'))).toThrow('listener bug');
    expect(seen).toEqual([1]);
    expect(textOf(d.machine.get(bytesOf('a')))).toBe('1');
    expect(d.machine.appliedIndex).toBe(1);
  });
});

// --- Property: random histories against a naive model, with snapshot/restore in between ---

type SeqChoice = 'next' | 'retry' | 'older' | 'jump';
type Step =
  | { kind: 'skip'; restoreAfter: boolean }
  | { kind: 'register'; count: number; restoreAfter: boolean }
  | { kind: 'request'; clientId: number; seqChoice: SeqChoice; command: KvCommand; restoreAfter: boolean };

const KEY_SPACE = [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(1, 0), Uint8Array.of(0xff), Uint8Array.of(0x80, 1)];
const keyArb = fc.constantFrom(...KEY_SPACE);
const valueArb = fc.oneof(
  fc.constantFrom(Uint8Array.of(), Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(1, 2)),
  fc.uint8Array({ maxLength: 4 }),
);
const commandArb: fc.Arbitrary<KvCommand> = fc.oneof(
  fc.record({ op: fc.constant('put' as const), key: keyArb, value: valueArb }),
  fc.record({ op: fc.constant('delete' as const), key: keyArb }),
  fc.record({ op: fc.constant('cas' as const), key: keyArb, expected: fc.option(valueArb, { nil: undefined }), value: valueArb }),
  fc.record({
    op: fc.constant('delete-range' as const),
    key: fc.oneof(keyArb, fc.constant(new Uint8Array())),
    end: fc.option(fc.oneof(keyArb, fc.constant(Uint8Array.of(2, 0))), { nil: undefined }),
  }),
);
const restoreAfterArb = fc.integer({ min: 0, max: 7 }).map((n) => n === 0);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('skip' as const), restoreAfter: restoreAfterArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('register' as const), count: fc.integer({ min: 1, max: 10_000 }), restoreAfter: restoreAfterArb }) },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('request' as const),
      clientId: fc.integer({ min: 1, max: 6 }),
      seqChoice: fc.constantFrom<SeqChoice>('next', 'next', 'next', 'retry', 'older', 'jump'),
      command: commandArb,
      restoreAfter: restoreAfterArb,
    }),
  },
);

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** The obvious implementation: linear-scan eviction, hex-keyed data, no cleverness. */
class Model {
  readonly data = new Map<string, Uint8Array>();
  /** Each live key's createIndex and version. */
  readonly revisions = new Map<string, { createIndex: number; version: number }>();
  readonly sessions = new Map<number, { lastSeq: number; lastIndex: number; result: KvResult }>();
  readonly changes: KvChange[] = [];
  clientIdNext = 2 ** 32;
  constructor(private readonly sessionsMax: number) {}

  register(count: number): KvApplyOutcome {
    const first = this.clientIdNext;
    this.clientIdNext += count;
    return registered(first);
  }

  apply(index: number, clientId: number, seq: number, command: KvCommand): KvApplyOutcome {
    const session = this.sessions.get(clientId);
    if (session === undefined && seq > 1) return { clientId, seq, result: undefined, status: 'expired' };
    if (session !== undefined && seq < session.lastSeq) return { clientId, seq, result: undefined, status: 'stale' };
    if (session !== undefined && seq === session.lastSeq) return { clientId, seq, result: session.result, status: 'duplicate', appliedAt: session.lastIndex };
    const result = this.execute(index, command);
    if (session === undefined && this.sessions.size >= this.sessionsMax) {
      let oldest: number | undefined;
      for (const [id, s] of this.sessions) {
        if (oldest === undefined || s.lastIndex < this.sessions.get(oldest)!.lastIndex) oldest = id;
      }
      this.sessions.delete(oldest!);
    }
    this.sessions.set(clientId, { lastSeq: seq, lastIndex: index, result });
    return { clientId, seq, result, status: 'applied' };
  }

  private execute(index: number, command: KvCommand): KvResult {
    if (command.op === 'txn' || command.op === 'lease-grant' || command.op === 'lease-revoke' || command.op === 'app' || command.op === 'redis') throw new Error('the reference model has no transactions, leases, state machine or Redis commands');
    const key = hex(command.key);
    const current = this.data.get(key);
    /** The change of a write at `index`: the key created here (version 1) or one version on. */
    const written = (value: Uint8Array): KvChange => {
      const rev = this.revisions.get(key);
      const next = rev === undefined ? { createIndex: index, version: 1 } : { createIndex: rev.createIndex, version: rev.version + 1 };
      this.revisions.set(key, next);
      this.data.set(key, value);
      return { index, position: 0, key: command.key, value, ...next };
    };
    switch (command.op) {
      case 'put':
        this.changes.push(written(command.value));
        return { op: 'put' };
      case 'delete':
        if (current !== undefined) this.changes.push({ index, position: 0, key: command.key, value: undefined, createIndex: 0, version: 0 });
        this.revisions.delete(key);
        return { op: 'delete', existed: this.data.delete(key) };
      case 'cas': {
        const matches =
          command.expected === undefined ? current === undefined : current !== undefined && hex(current) === hex(command.expected);
        if (matches) this.changes.push(written(command.value));
        return { op: 'cas', swapped: matches };
      }
      case 'delete-range': {
        // Hex order is byte order: every byte is two digits, and digits sort before letters.
        const low = hex(command.key);
        const high = command.end === undefined ? undefined : hex(command.end);
        const gone = [...this.data.keys()].filter((k) => k >= low && (high === undefined || k < high)).sort();
        gone.forEach((k, position) => {
          this.data.delete(k);
          this.revisions.delete(k);
          this.changes.push({ index, position, key: Uint8Array.from(Buffer.from(k, 'hex')), value: undefined, createIndex: 0, version: 0 });
        });
        return { op: 'delete-range', deleted: gone.length };
      }
    }
  }
}

describe('property: replicas agree with each other and with a naive model', () => {
  it('same random history -> same outcomes, byte-identical snapshots, model state and changes', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 120 }), fc.integer({ min: 1, max: 4 }), (steps, sessionsMax) => {
        const options = { sessionsMax };
        const model = new Model(sessionsMax);
        const straight = new KvStateMachine(options);
        let restarted = new KvStateMachine(options);
        const changes: { straight: KvChange[]; restarted: KvChange[] } = { straight: [], restarted: [] };
        straight.onChange((change) => changes.straight.push(change));
        const watchRestarted = (): void => {
          restarted.onChange((change) => changes.restarted.push(change));
        };
        watchRestarted();

        const lastSent = new Map<number, number>();
        let index = 0;
        for (const step of steps) {
          index += 1;
          if (step.kind === 'skip') {
            straight.skip(index);
            restarted.skip(index);
          } else if (step.kind === 'register') {
            const expected = model.register(step.count);
            expect(straight.apply(index, registration(step.count))).toEqual(expected);
            expect(restarted.apply(index, registration(step.count))).toEqual(expected);
          } else {
            const last = lastSent.get(step.clientId) ?? 0;
            const seq =
              step.seqChoice === 'next' ? last + 1
              : step.seqChoice === 'retry' ? Math.max(last, 1)
              : step.seqChoice === 'older' ? Math.max(last - 1, 1)
              : last + 3;
            lastSent.set(step.clientId, Math.max(last, seq));
            const data = encodeKvRequest({ clientId: step.clientId, seq, command: step.command });
            const expected = model.apply(index, step.clientId, seq, step.command);
            expect(straight.apply(index, data)).toEqual(expected);
            expect(restarted.apply(index, data)).toEqual(expected);
          }
          if (step.restoreAfter) {
            restarted = KvStateMachine.restore(restarted.snapshot(), options);
            watchRestarted();
          }
        }

        const snapshot = straight.snapshot();
        expect(restarted.snapshot()).toEqual(snapshot);
        expect(KvStateMachine.restore(snapshot, options).snapshot()).toEqual(snapshot);
        expect(straight.appliedIndex).toBe(index);
        expect(straight.clientIdNext).toBe(model.clientIdNext);
        expect(restarted.clientIdNext).toBe(model.clientIdNext);
        expect(straight.size).toBe(model.data.size);
        for (const key of KEY_SPACE) {
          expect(straight.get(key)).toEqual(model.data.get(hex(key)));
          expect(restarted.get(key)).toEqual(model.data.get(hex(key)));
        }
        expect(changes.straight).toEqual(model.changes);
        expect(changes.restarted).toEqual(model.changes);
      }),
      { numRuns: 300 },
    );
  });
});

describe('batch entries (many requests in one log entry)', () => {
  function batchOf(requests: Uint8Array[]): Uint8Array {
    const b = new KvBatchBuilder(8);
    for (const r of requests) b.add(r, 0, r.length);
    return b.finish();
  }

  it('applies each request in order, with its own outcome, and reports changes by position', () => {
    const m = new KvStateMachine();
    const changes: KvChange[] = [];
    m.onChange((c) => changes.push(c));
    const outcomes = m.applyBatch(1, batchOf([request(1, 1, put('a', '1')), request(2, 1, cas('a', '1', '2')), request(3, 1, del('zz'))]));
    expect(outcomes.map((o) => o.result)).toEqual([{ op: 'put' }, { op: 'cas', swapped: true }, { op: 'delete', existed: false }]);
    expect(textOf(m.get(bytesOf('a')))).toBe('2');
    expect(changes.map((c) => [c.index, c.position])).toEqual([
      [1, 0],
      [1, 1],
    ]);
    expect(m.appliedIndex).toBe(1);
  });

  it('makes no outcomes for a replica that answers nobody, and changes the same as one that does', () => {
    const batches = [
      batchOf([request(1, 1, put('a', '1')), request(2, 1, put('b', '2')), request(3, 1, cas('a', '1', '3'))]),
      // A duplicate, a stale retry, an expired session, a new key, a delete.
      batchOf([request(1, 1, put('a', '1')), request(2, 2, put('b', '4')), request(2, 1, put('b', 'stale')), request(9, 5, put('z', '9')), request(4, 1, put('c', '5')), request(3, 2, del('b'))]),
    ];
    const told = new KvStateMachine();
    const untold = new KvStateMachine();
    const changes: [KvChange[], KvChange[]] = [[], []];
    told.onChange((c) => changes[0].push(c));
    untold.onChange((c) => changes[1].push(c));
    batches.forEach((b, i) => {
      expect(told.applyBatch(i + 1, b)).toHaveLength(b === batches[0] ? 3 : 6);
      expect(untold.applyBatch(i + 1, b, false)).toEqual([]);
    });
    expect(untold.snapshot()).toEqual(told.snapshot());
    expect(changes[1]).toEqual(changes[0]);
    expect(changes[0].length).toBeGreaterThan(0);
  });

  it('records into one reused KvApplyOutcomes what applyBatch returns, a put that applied as numbers only', () => {
    const bad = request(7, 1, put('q', '1')).slice();
    bad[1] = 9; // unknown op
    const batches = [
      batchOf([request(1, 1, put('a', '1')), request(2, 1, put('b', '2')), request(3, 1, cas('a', '1', '3'))]),
      // A duplicate, a stale retry, an expired session, a new key, a delete, one that does not decode.
      batchOf([request(1, 1, put('a', '1')), request(2, 2, put('b', '4')), request(2, 1, put('b', 'stale')), request(9, 5, put('z', '9')), request(4, 1, put('c', '5')), request(3, 2, del('b')), bad]),
      batchOf([request(5, 1, put('d', '6'))]),
    ];
    const arrays = new KvStateMachine();
    const into = new KvStateMachine();
    const outcomes = new KvApplyOutcomes();
    batches.forEach((b, i) => {
      const expected = arrays.applyBatch(i + 1, b);
      into.applyBatchInto(i + 1, b, outcomes);
      expect(outcomes.toArray()).toEqual(expected);
      expect(outcomes.count).toBe(expected.length);
      expected.forEach((o, k) => expect(outcomes.isPutApplied(k)).toBe(o.status === 'applied' && o.result === outcomes.putResult));
    });
    expect(into.snapshot()).toEqual(arrays.snapshot());
    // The second batch's outcomes, spelled out: applyBatch is built on applyBatchInto.
    const second = new KvStateMachine();
    second.applyBatch(1, batches[0]!);
    second.applyBatchInto(2, batches[1]!, outcomes);
    expect(outcomes.toArray().map((o) => [o.clientId, o.seq, o.status, o.result, o.appliedAt])).toEqual([
      [1, 1, 'duplicate', { op: 'put' }, 1],
      [2, 2, 'applied', { op: 'put' }, undefined],
      [2, 1, 'stale', undefined, undefined],
      [9, 5, 'expired', undefined, undefined],
      [4, 1, 'applied', { op: 'put' }, undefined],
      [3, 2, 'applied', { op: 'delete', existed: true }, undefined],
      [0, 0, 'invalid', undefined, undefined],
    ]);
    expect(Array.from({ length: outcomes.count }, (_, k) => outcomes.isPutApplied(k))).toEqual([false, true, false, false, true, false, false]);
    second.applyBatchInto(3, batches[2]!, outcomes);
    expect(outcomes.count).toBe(1);
    expect(outcomes.isPutApplied(0)).toBe(true);
    outcomes.clear();
    expect(outcomes.count).toBe(0);
    expect(() => outcomes.outcome(0)).toThrow(/outcome 0 of 0/);
  });

  it('deduplicates a retried request inside a later batch', () => {
    const m = new KvStateMachine();
    m.applyBatch(1, batchOf([request(1, 1, put('a', 'x'))]));
    m.applyBatch(2, batchOf([request(2, 1, put('a', 'y')), request(1, 1, put('a', 'x'))]));
    expect(textOf(m.get(bytesOf('a')))).toBe('y');
  });

  it('fails a malformed request alone (status invalid), the same on every replica', () => {
    const good = request(1, 1, put('a', '1'));
    const bad = good.slice();
    bad[1] = 9; // unknown op
    const outcomes = new KvStateMachine().applyBatch(1, batchOf([bad, good]));
    expect(outcomes.map((o) => o.status)).toEqual(['invalid', 'applied']);
  });

  it('refuses a batch whose framing is broken with CORRUPT_COMMAND and changes nothing', () => {
    const data = batchOf([request(1, 1, put('a', '1'))]);
    for (const broken of [data.subarray(0, data.length - 1), new Uint8Array([...data, 0]), Uint8Array.of(2, 0, 0, 0, 0)]) {
      const m = new KvStateMachine();
      expect(thrown(() => m.applyBatch(1, broken))).toMatchObject({ code: 'CORRUPT_COMMAND' });
      expect(m.appliedIndex).toBe(0);
    }
    expect(thrown(() => forEachKvBatchRequest(Uint8Array.of(1), () => {}))).toBeInstanceOf(KvError);
  });

  it('snapshots sessions that share a batch index and restores them', () => {
    const m = new KvStateMachine();
    m.applyBatch(1, batchOf([request(1, 1, put('a', '1')), request(2, 1, put('b', '2')), request(3, 1, put('c', '3'))]));
    m.applyBatch(2, batchOf([request(4, 1, put('d', '4')), request(5, 1, put('e', '5'))]));
    const restored = KvStateMachine.restore(m.snapshot());
    expect(restored.snapshot()).toEqual(m.snapshot());
    // Sessions came through: a retry is a duplicate, not a second write.
    restored.applyBatch(3, batchOf([request(6, 1, put('a', 'other')), request(1, 1, put('a', '1'))]));
    expect(textOf(restored.get(bytesOf('a')))).toBe('other');
  });
});
