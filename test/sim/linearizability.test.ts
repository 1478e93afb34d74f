// Proves that checkLinearizable accepts exactly the linearizable key-value histories: classic
// anomalies are rejected by name, executions of a real map with random concurrency windows are
// accepted, small random histories agree with a brute-force search over all orders, and the
// JSON-lines history format round-trips and refuses malformed lines with their line number.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type HistoryOp,
  type KvOpKind,
  historyFromJsonLines,
  historyToJsonLines,
  InvalidHistoryError,
} from '../../src/sim/history.ts';
import { checkLinearizable, formatHistoryOp } from '../../src/sim/linearizability.ts';

// Builders. A `ret` of null makes the op pending (the client never heard back); its output
// is then null whatever is passed.

function put(key: string, value: string, call: number, ret: number | null, client = 0): HistoryOp {
  return { client, op: 'put', key, value, expected: null, output: null, call, return: ret };
}

function get(key: string, output: string | null, call: number, ret: number | null, client = 0): HistoryOp {
  return { client, op: 'get', key, value: null, expected: null, output: ret === null ? null : output, call, return: ret };
}

function del(key: string, existed: boolean, call: number, ret: number | null, client = 0): HistoryOp {
  return { client, op: 'delete', key, value: null, expected: null, output: ret === null ? null : existed, call, return: ret };
}

/** One key's share of a delete-range: absent after it, no output. */
function clear(key: string, call: number, ret: number | null, client = 0): HistoryOp {
  return { client, op: 'clear', key, value: null, expected: null, output: null, call, return: ret };
}

function cas(
  key: string,
  expected: string | null,
  value: string,
  swapped: boolean,
  call: number,
  ret: number | null,
  client = 0,
): HistoryOp {
  return { client, op: 'cas', key, value, expected, output: ret === null ? null : swapped, call, return: ret };
}

function expectOk(history: HistoryOp[]): void {
  const result = checkLinearizable(history);
  if (result.ok !== true) throw new Error(`expected linearizable, got ${JSON.stringify(result, null, 2)}`);
}

function expectRejected(history: HistoryOp[], key = 'x'): void {
  const result = checkLinearizable(history);
  expect(result.ok).toBe(false);
  if (result.ok === false) expect(result.key).toBe(key);
}

describe('sequential histories', () => {
  it('accepts the empty history', () => {
    expect(checkLinearizable([])).toEqual({ ok: true, keys: 0, ops: 0 });
  });

  it('accepts a sequential run of every op kind', () => {
    const history = [
      get('x', null, 0, 1),
      del('x', false, 2, 3),
      cas('x', null, 'a', true, 4, 5),
      get('x', 'a', 6, 7),
      cas('x', 'b', 'c', false, 8, 9),
      put('x', 'b', 10, 11),
      cas('x', 'b', 'c', true, 12, 13),
      del('x', true, 14, 15),
      get('x', null, 16, 17),
      cas('x', 'c', 'd', false, 18, 19),
    ];
    expect(checkLinearizable(history)).toEqual({ ok: true, keys: 1, ops: 10 });
  });

  it('checks keys independently and counts them', () => {
    const history = [put('x', '1', 0, 1), put('y', '2', 2, 3), get('x', '1', 4, 5), get('y', '2', 4, 5), get('z', null, 6, 7)];
    expect(checkLinearizable(history)).toEqual({ ok: true, keys: 3, ops: 5 });
  });

  it('does not depend on the order of the input', () => {
    const history = [get('x', '2', 20, 21), put('x', '2', 10, 11), put('x', '1', 0, 1), get('x', '1', 5, 6)];
    expectOk(history);
  });
});

describe('concurrent histories', () => {
  it('accepts concurrent writes only in the order a later read forces', () => {
    // Both puts overlap; the read after both must see the one linearized last.
    expectOk([put('x', '1', 0, 10, 1), put('x', '2', 0, 10, 2), get('x', '1', 11, 12, 3)]);
    expectOk([put('x', '1', 0, 10, 1), put('x', '2', 0, 10, 2), get('x', '2', 11, 12, 3)]);
    // A read during the puts that saw 2, then a read after that saw 1: only 2-then-1 works.
    expectOk([put('x', '1', 0, 10, 1), put('x', '2', 0, 10, 2), get('x', '2', 1, 2, 3), get('x', '1', 11, 12, 3)]);
  });

  it('accepts racing cas ops when exactly one swapped, in the order the outputs force', () => {
    const history = [
      put('x', 'a', 0, 1),
      cas('x', 'a', 'b', false, 2, 10, 1),
      cas('x', 'a', 'c', true, 3, 9, 2),
      get('x', 'c', 11, 12),
    ];
    expectOk(history);
    // The same outputs with the winner's value swapped in the read have no valid order.
    expectRejected([...history.slice(0, 3), get('x', 'b', 11, 12)]);
  });

  it('treats an op returning at t and one called at t as concurrent (calls sort before returns)', () => {
    expectOk([put('x', '1', 0, 5), get('x', null, 5, 6)]);
    expectRejected([put('x', '1', 0, 5), get('x', null, 5.5, 6)]);
  });

  it('accepts a read concurrent with a write seeing either value', () => {
    expectOk([put('x', '1', 0, 1), put('x', '2', 2, 8), get('x', '1', 3, 4), get('x', '2', 5, 6)]);
  });
});

describe('non-linearizable histories', () => {
  it('rejects a stale read: a completed put, then a later read of absent', () => {
    expectRejected([put('x', '1', 0, 1), get('x', null, 2, 3)]);
  });

  it('rejects a lost write: a completed put overwritten by nothing, then read as the older value', () => {
    expectRejected([
      put('x', 'a', 0, 1, 1),
      put('x', 'b', 2, 3, 2),
      get('x', 'b', 4, 5, 1),
      get('x', 'a', 6, 7, 2),
    ]);
    expectRejected([put('x', 'a', 0, 1, 1), put('x', 'b', 2, 3, 2), get('x', 'a', 4, 5, 1)]);
  });

  it('rejects non-monotonic reads: a read sees the new value, a later-started read the older one', () => {
    // Both reads overlap the second put, but the second read started after the first returned.
    expectRejected([put('x', '1', 0, 1), put('x', '2', 2, 20), get('x', '2', 3, 4, 1), get('x', '1', 5, 6, 2)]);
  });

  it('rejects two cas ops that both swapped from the same expected value', () => {
    expectRejected([put('x', 'a', 0, 1), cas('x', 'a', 'b', true, 2, 5, 1), cas('x', 'a', 'c', true, 3, 6, 2)]);
  });

  it('rejects a delete reporting the key absent after a completed put', () => {
    expectRejected([put('x', '1', 0, 1), del('x', false, 2, 3)]);
  });

  it('rejects a read of a value never written', () => {
    expectRejected([put('x', '1', 0, 10), get('x', '2', 1, 2)]);
  });

  it('names the failing key and reports its ops by call time and the longest prefix found', () => {
    const p = put('x', '1', 0, 1, 7);
    const g = get('x', null, 2, 3, 8);
    const other = put('y', '1', 0, 1);
    const result = checkLinearizable([g, other, p]);
    if (result.ok !== false) throw new Error('expected a failure');
    expect(result.key).toBe('x');
    expect(result.ops).toEqual([p, g]);
    expect(result.longestPrefix).toEqual([p]);
    expect(result.report).toBe(
      [
        'history of key "x" is not linearizable',
        'ops of the key, by call time (2):',
        '  client 7: put("x", "1") => null [0, 1]',
        '  client 8: get("x") => null [2, 3]',
        'longest linearizable prefix found (1 of 2 ops):',
        '  client 7: put("x", "1") => null [0, 1]',
      ].join('\n'),
    );
  });

  it('formats every op kind with its arguments and output', () => {
    expect(formatHistoryOp(cas('k', null, 'v', true, 1, 2, 3))).toBe('client 3: cas("k", null -> "v") => true [1, 2]');
    expect(formatHistoryOp(del('k', false, 1, null, 3))).toBe('client 3: delete("k") => ? [1, never]');
    expect(formatHistoryOp(get('k', 'v', 1, 2))).toBe('client 0: get("k") => "v" [1, 2]');
  });
});

describe('ops with unknown outcome (return null)', () => {
  it('accepts both that a pending put took effect and that it did not', () => {
    expectOk([put('x', '1', 0, null), get('x', '1', 5, 6)]);
    expectOk([put('x', '1', 0, null), get('x', null, 5, 6)]);
    // It may even take effect between two later reads.
    expectOk([put('x', '1', 0, null), get('x', null, 5, 6), get('x', '1', 7, 8)]);
  });

  it('rejects a pending put taking effect before its call', () => {
    expectRejected([get('x', '1', 0, 1), put('x', '1', 5, null)]);
  });

  it('rejects a pending op taking effect, then being undone', () => {
    expectRejected([put('x', '1', 0, null), get('x', '1', 5, 6), get('x', null, 7, 8)]);
  });

  it('applies a pending cas only if its expected value matched', () => {
    expectOk([put('x', 'b', 0, 1), cas('x', 'b', 'c', false, 2, null), get('x', 'c', 5, 6)]);
    expectRejected([put('x', 'a', 0, 1), cas('x', 'b', 'c', false, 2, null), get('x', 'c', 5, 6)]);
  });

  it('lets a pending delete explain a later read of absent', () => {
    expectOk([put('x', '1', 0, 1), del('x', false, 2, null), get('x', null, 5, 6)]);
  });

  it('explores interchangeable pending writes once, not in every order', () => {
    // Each read of "1" after a delete needs a fresh pending put to have landed just before it.
    // With 20 identical pending puts, 20 such reads fit and 21 do not; a search that told the
    // puts apart would face 20! orders and exhaust this small step bound before deciding.
    const history = (reads: number): HistoryOp[] => [
      ...Array.from({ length: 20 }, (_, c) => put('x', '1', 0, null, c)),
      ...Array.from({ length: reads }, (_, r) => [get('x', '1', 10 + 4 * r, 11 + 4 * r), del('x', true, 12 + 4 * r, 13 + 4 * r)]).flat(),
    ];
    expect(checkLinearizable(history(20), { maxStepsPerKey: 100_000 }).ok).toBe(true);
    expect(checkLinearizable(history(21), { maxStepsPerKey: 100_000 }).ok).toBe(false);
  });

  it('accepts a history of only pending ops', () => {
    expect(checkLinearizable([put('x', '1', 0, null), get('x', null, 1, null)])).toEqual({ ok: true, keys: 1, ops: 2 });
  });
});

describe('input checks and bounds', () => {
  it('throws a TypeError for an op returning before its call', () => {
    expect(() => checkLinearizable([put('x', '1', 5, 4)])).toThrow(InvalidHistoryError);
    expect(() => checkLinearizable([put('x', '1', 5, 4)])).toThrow(/history\[0\]/);
  });

  it('throws a TypeError for an invalid step bound', () => {
    expect(() => checkLinearizable([], { maxStepsPerKey: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => checkLinearizable([], { maxStepsPerKey: 1.5 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('answers unknown when the step bound is reached, and prefers a definite failure', () => {
    const concurrent = Array.from({ length: 8 }, (_, i) => put('y', String(i), 0, 10, i));
    const slow = [...concurrent, get('y', 'none', 11, 12)];
    expect(checkLinearizable(slow, { maxStepsPerKey: 5 })).toMatchObject({ ok: 'unknown', key: 'y' });
    const result = checkLinearizable([...slow, put('x', '1', 0, 1), get('x', null, 2, 3)], { maxStepsPerKey: 5 });
    expect(result).toMatchObject({ ok: false, key: 'x' });
  });
});

// ---------------------------------------------------------------------------------------
// Property tests.

interface PlannedOp {
  client: number;
  kind: KvOpKind;
  key: string;
  value: string;
  expected: string | null;
  /** How long before its linearization point the op was called, and after it returned. */
  before: number;
  after: number;
  fate: 'returned' | 'pending-applied' | 'pending-lost';
}

const writtenValues = ['1', '2', '3'];

const plannedOp = fc.record<PlannedOp>({
  client: fc.integer({ min: 0, max: 4 }),
  kind: fc.constantFrom<KvOpKind>('put', 'get', 'delete', 'cas', 'clear'),
  key: fc.constantFrom('a', 'b', 'c'),
  value: fc.constantFrom(...writtenValues),
  expected: fc.constantFrom(null, ...writtenValues),
  before: fc.integer({ min: 0, max: 35 }),
  after: fc.integer({ min: 0, max: 35 }),
  fate: fc.constantFrom('returned', 'returned', 'returned', 'returned', 'pending-applied', 'pending-lost'),
});

/**
 * Runs the plan against a real Map, one op every 10 time units, and records what clients would
 * have seen: each op is called before and returns after the moment it really took effect.
 * A 'pending-lost' op never takes effect; a 'pending-applied' one does but its client never
 * hears back.
 */
function execute(plan: readonly PlannedOp[]): HistoryOp[] {
  const map = new Map<string, string>();
  return plan.map((p, i) => {
    const point = 10 * (i + 1);
    let output: string | boolean | null = null;
    if (p.fate !== 'pending-lost') {
      const current = map.get(p.key) ?? null;
      switch (p.kind) {
        case 'put':
          map.set(p.key, p.value);
          break;
        case 'get':
          output = current;
          break;
        case 'delete':
          output = map.delete(p.key);
          break;
        case 'cas':
          output = current === p.expected;
          if (output) map.set(p.key, p.value);
          break;
        case 'clear':
          map.delete(p.key);
          break;
      }
    }
    const ret = p.fate === 'returned' ? point + p.after : null;
    return {
      client: p.client,
      op: p.kind,
      key: p.key,
      value: p.kind === 'put' || p.kind === 'cas' ? p.value : null,
      expected: p.kind === 'cas' ? p.expected : null,
      output: ret === null ? null : output,
      call: point - p.before,
      return: ret,
    };
  });
}

/**
 * The reference: try every order of the ops that respects real time (an op may go next unless
 * some remaining completed op returned strictly before it was called), checking outputs
 * against a Map. Pending ops may be left out. Exponential, so only for a handful of ops.
 */
function bruteForceLinearizable(history: readonly HistoryOp[]): boolean {
  const search = (remaining: readonly HistoryOp[], state: ReadonlyMap<string, string>): boolean => {
    if (remaining.every((op) => op.return === null)) return true;
    return remaining.some((op, i) => {
      const blocked = remaining.some((r) => r !== op && r.return !== null && r.return < op.call);
      if (blocked) return false;
      const next = new Map(state);
      const current = state.get(op.key) ?? null;
      let output: string | boolean | null = null;
      if (op.op === 'put') next.set(op.key, op.value as string);
      if (op.op === 'get') output = current;
      if (op.op === 'delete') output = next.delete(op.key);
      if (op.op === 'clear') next.delete(op.key);
      if (op.op === 'cas') {
        output = current === op.expected;
        if (output) next.set(op.key, op.value as string);
      }
      if (op.return !== null && output !== op.output) return false;
      return search([...remaining.slice(0, i), ...remaining.slice(i + 1)], next);
    });
  };
  return search(history, new Map());
}

describe('properties', () => {
  it('accepts every execution of a real map with random concurrency windows', () => {
    fc.assert(
      fc.property(fc.array(plannedOp, { maxLength: 80 }), fc.nat(), (plan, seed) => {
        const history = execute(plan);
        // The input order must not matter: rotate it.
        const k = history.length === 0 ? 0 : seed % history.length;
        const rotated = [...history.slice(k), ...history.slice(0, k)];
        expect(checkLinearizable(rotated).ok).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('rejects such an execution once a completed read reports a value never written', () => {
    fc.assert(
      fc.property(fc.array(plannedOp, { minLength: 1, maxLength: 80 }), fc.nat(), (plan, pick) => {
        const history = execute(plan);
        const reads = history.flatMap((op, i) => (op.op === 'get' && op.return !== null ? [i] : []));
        fc.pre(reads.length > 0);
        const i = reads[pick % reads.length]!;
        const mutated = history.map((op, j) => (j === i ? { ...op, output: 'never-written' } : op));
        const result = checkLinearizable(mutated);
        expect(result.ok).toBe(false);
        if (result.ok === false) expect(result.key).toBe(history[i]!.key);
      }),
      { numRuns: 200 },
    );
  });

  it('agrees with a brute-force search on small random histories', () => {
    const smallValue = fc.constantFrom('1', '2');
    const randomOp = fc
      .record({
        client: fc.integer({ min: 0, max: 3 }),
        kind: fc.constantFrom<KvOpKind>('put', 'get', 'delete', 'cas', 'clear'),
        key: fc.constantFrom('a', 'b'),
        value: smallValue,
        expected: fc.option(smallValue),
        read: fc.option(smallValue),
        flag: fc.boolean(),
        call: fc.integer({ min: 0, max: 10 }),
        length: fc.integer({ min: 0, max: 5 }),
        pending: fc.integer({ min: 0, max: 4 }).map((x) => x === 0),
      })
      .map((r): HistoryOp => {
        const ret = r.pending ? null : r.call + r.length;
        switch (r.kind) {
          case 'put':
            return put(r.key, r.value, r.call, ret, r.client);
          case 'get':
            return get(r.key, r.read, r.call, ret, r.client);
          case 'delete':
            return del(r.key, r.flag, r.call, ret, r.client);
          case 'cas':
            return cas(r.key, r.expected, r.value, r.flag, r.call, ret, r.client);
          case 'clear':
            return clear(r.key, r.call, ret, r.client);
        }
      });
    fc.assert(
      fc.property(fc.array(randomOp, { maxLength: 7 }), (history) => {
        expect(checkLinearizable(history).ok).toBe(bruteForceLinearizable(history));
      }),
      { numRuns: 1000 },
    );
  });
});

// ---------------------------------------------------------------------------------------
// JSON lines.

describe('history JSON lines', () => {
  it('writes one object per line with the fields in the contract order', () => {
    const text = historyToJsonLines([cas('k', null, 'v', true, 3, 4, 1), get('k', null, 5, null, 2)]);
    expect(text).toBe(
      '{"client":1,"op":"cas","key":"k","value":"v","expected":null,"output":true,"call":3,"return":4}\n' +
        '{"client":2,"op":"get","key":"k","value":null,"expected":null,"output":null,"call":5,"return":null}\n',
    );
    expect(historyToJsonLines([])).toBe('');
  });

  it('round-trips any valid history', () => {
    // Plain strings, plus the ones a line format could trip on: line breaks, quotes, escapes,
    // U+2028, astral characters and a lone surrogate.
    const tricky = ['', '\n', '\r\n', '"', '\\', '\u2028', 'é', '😀', '\ud800', '{"client":1}'];
    const text = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom(...tricky));
    const time = fc
      .oneof(fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.double({ noNaN: true, noDefaultInfinity: true }))
      .map((t) => t || 0); // JSON has no -0.
    const anyOp = fc
      .record({
        client: fc.oneof(fc.integer(), fc.maxSafeInteger()),
        kind: fc.constantFrom<KvOpKind>('put', 'get', 'delete', 'cas', 'clear'),
        key: text,
        value: text,
        expected: fc.option(text),
        read: fc.option(text),
        flag: fc.boolean(),
        t1: time,
        t2: time,
        pending: fc.boolean(),
      })
      .map((r): HistoryOp => {
        const call = Math.min(r.t1, r.t2);
        const ret = r.pending ? null : Math.max(r.t1, r.t2);
        switch (r.kind) {
          case 'put':
            return put(r.key, r.value, call, ret, r.client);
          case 'get':
            return get(r.key, r.read, call, ret, r.client);
          case 'delete':
            return del(r.key, r.flag, call, ret, r.client);
          case 'cas':
            return cas(r.key, r.expected, r.value, r.flag, call, ret, r.client);
          case 'clear':
            return clear(r.key, call, ret, r.client);
        }
      });
    fc.assert(
      fc.property(fc.array(anyOp, { maxLength: 12 }), (history) => {
        const written = historyToJsonLines(history);
        expect(written.split('\n')).toHaveLength(history.length + 1);
        expect(historyFromJsonLines(written)).toEqual(history);
      }),
    );
  });

  it('accepts CRLF line ends, blank lines and a missing final newline', () => {
    const line = historyToJsonLines([put('k', 'v', 1, 2)]).trimEnd();
    expect(historyFromJsonLines(`${line}\r\n\r\n${line}`)).toEqual([put('k', 'v', 1, 2), put('k', 'v', 1, 2)]);
  });

  const good = historyToJsonLines([put('k', 'v', 1, 2)]).trimEnd();
  const withField = (field: string, value: unknown): string => {
    const obj = JSON.parse(good) as Record<string, unknown>;
    obj[field] = value;
    return JSON.stringify(obj);
  };
  const getLine = (changes: Record<string, unknown>): string =>
    JSON.stringify({ ...(JSON.parse(historyToJsonLines([get('k', 'v', 1, 2)])) as object), ...changes });
  const malformed: [string, string, RegExp][] = [
    ['not JSON', '{"client":', /not valid JSON/],
    ['an array', '[1,2]', /expected an object/],
    ['a missing field', JSON.stringify({ ...JSON.parse(good), return: undefined }), /missing field "return"/],
    ['an unknown field', withField('extra', 1), /unknown field "extra"/],
    ['an unknown op', withField('op', 'append'), /"op"/],
    ['a fractional client', withField('client', 1.5), /"client"/],
    ['a numeric key', withField('key', 3), /"key"/],
    ['a put without a value', withField('value', null), /"value"/],
    ['a put with an expected value', withField('expected', 'v'), /"expected"/],
    ['a put with an output', withField('output', true), /"output"/],
    ['a string call time', withField('call', '1'), /"call"/],
    ['a return before the call', withField('return', 0), /"return"/],
    ['a get with a boolean output', getLine({ output: false }), /"output"/],
    ['a get with a value', getLine({ value: 'v' }), /"value"/],
    ['a pending op with an output', getLine({ return: null }), /"output"/],
    ['a delete with a string output', getLine({ op: 'delete', output: 'yes' }), /"output"/],
    ['a cas with a numeric expected value', withField('op', 'cas').replace('"expected":null', '"expected":1'), /"expected"/],
  ];

  it.each(malformed)('rejects %s, naming the line', (_name, bad, pattern) => {
    const text = `${good}\n${good}\n${bad}\n${good}\n`;
    let error: unknown;
    try {
      historyFromJsonLines(text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidHistoryError);
    expect((error as { code?: unknown }).code).toBe('INVALID_ARGUMENT');
    expect((error as Error).message).toMatch(/^line 3: /);
    expect((error as Error).message).toMatch(pattern);
  });

  it('refuses to write an invalid op', () => {
    expect(() => historyToJsonLines([put('k', 'v', 1, 2), put('k', 'v', 2, 1)])).toThrow(/history\[1\]/);
  });
});
