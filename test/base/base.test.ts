// Proves the base layer is the one place for assertions and error codes: assert throws an
// AssertionError (never a RingraftError) and builds a lazy message only on failure; every code
// has its own wire number that decodes back to it, and anything else decodes to undefined; each
// layer's code list is a subset of the one list; and a scan of src/ finds no other assertion
// helper, no other code list, no error class outside the one base, and no cast to ErrorCode, and
// no declaration under two stacked doc comments. Planted broken invariants in the core and the
// codec throw AssertionError.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AssertionError,
  ERROR_CODE_WIRE_MAX,
  ErrorCode,
  RingraftError,
  assert,
  errorCodeFromWire,
  errorCodeWire,
  parseErrorCode,
} from '../../src/base/index.ts';
import { ByteWriter } from '../../src/codec/index.ts';
import { CoreErrorCode, Inflights } from '../../src/core/index.ts';
import { KvErrorCode } from '../../src/kv/index.ts';
import { StorageErrorCode } from '../../src/storage/index.ts';
import { RingErrorCode } from '../../src/transport/index.ts';

const SRC = resolve(import.meta.dirname, '../../src');
/** Thrown to unwind a simulated crash through the code under test; never reported as an error. */
const CRASH_SIGNALS = ['CrashSignal', 'SimulatedCrash'];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('assert', () => {
  it('throws AssertionError, not a RingraftError, and passes a true condition', () => {
    expect(() => assert(false, 'x is 1')).toThrow(AssertionError);
    expect(() => assert(false, 'x is 1')).toThrow('assertion failed: x is 1');
    let caught: unknown;
    try {
      assert(0, 'zero');
    } catch (error) {
      caught = error;
    }
    expect(caught).not.toBeInstanceOf(RingraftError);
    expect(() => assert(true, 'fine')).not.toThrow();
  });

  it('builds a lazy message only when the assertion fails', () => {
    let built = 0;
    const message = (): string => `built ${++built}`;
    for (let i = 0; i < 100; i++) assert(i >= 0, message);
    expect(built).toBe(0);
    expect(() => assert(false, message)).toThrow('assertion failed: built 1');
    expect(built).toBe(1);
  });

  it('a planted broken invariant in the core and in the codec throws AssertionError', () => {
    const inflights = new Inflights(1, 0);
    inflights.add(5, 10);
    expect(() => inflights.add(6, 10)).toThrow(AssertionError);
    expect(() => new ByteWriter(2).u32(1)).toThrow(AssertionError);
    expect(() => new ByteWriter(4).u8(256)).toThrow(AssertionError);
  });
});

describe('error codes', () => {
  it('every code has its own wire number, which decodes back to it', () => {
    const codes = Object.values(ErrorCode);
    const wires = codes.map(errorCodeWire);
    expect(new Set(wires).size).toBe(codes.length);
    for (const code of codes) {
      expect(ErrorCode[code]).toBe(code);
      expect(errorCodeFromWire(errorCodeWire(code))).toBe(code);
      expect(parseErrorCode(code)).toBe(code);
    }
    expect(Math.max(...wires)).toBe(ERROR_CODE_WIRE_MAX);
    expect(ERROR_CODE_WIRE_MAX).toBeLessThanOrEqual(0xffff);
  });

  it('anything that is not a code decodes to undefined', () => {
    for (const wire of [0, -1, 1.5, ERROR_CODE_WIRE_MAX + 1, 0xffff, Number.NaN]) expect(errorCodeFromWire(wire)).toBeUndefined();
    for (const value of ['', 'not_leader', 'toString', '__proto__', 'hasOwnProperty', 7, null, undefined, {}]) expect(parseErrorCode(value)).toBeUndefined();
  });

  it("each layer's codes come from the one list", () => {
    for (const list of [CoreErrorCode, KvErrorCode, StorageErrorCode, RingErrorCode]) {
      for (const [name, code] of Object.entries(list)) {
        expect(name).toBe(code);
        expect(parseErrorCode(code)).toBe(code);
      }
    }
    // The core's list holds no other layer's codes.
    for (const code of ['IO_ERROR', 'CORRUPT_LOG', 'NODE_DOWN', 'DATA_DIR_LOCKED', 'TIMEOUT', 'CLOSED']) expect(Object.values(CoreErrorCode)).not.toContain(code);
  });
});

describe('src/ has one of each', () => {
  const files = sources(SRC).map((path) => ({ path: relative(SRC, path), text: readFileSync(path, 'utf8') }));
  const outsideBase = files.filter((f) => !f.path.startsWith('base/'));

  it('one assert helper, and no inline "assertion failed"', () => {
    for (const f of outsideBase) {
      expect(f.text, f.path).not.toMatch(/function\s+(assert\w*|fail|crash)\s*\(/);
      expect(f.text, f.path).not.toMatch(/['`]assertion failed/);
    }
  });

  it('no assertion builds its message before it fails (a template literal is written `if (!ok) fail(`...`)`)', () => {
    for (const f of files) {
      const eager = f.text.split('\n').flatMap((line, i) => (/\bassert\((?:(?!\(\) =>).)*,\s*`/.test(line) ? [`${f.path}:${i + 1}: ${line.trim()}`] : []));
      expect(eager).toEqual([]);
    }
  });

  it('no declaration under two stacked doc comments (the older one went stale)', () => {
    for (const f of files) {
      const stacked = [...f.text.matchAll(/\*\/\n[ \t]*\/\*\*/g)].map((m) => `${f.path}:${f.text.slice(0, m.index).split('\n').length}`);
      expect(stacked).toEqual([]);
    }
  });

  it('one error code list, one error base, and no cast to ErrorCode', () => {
    for (const f of outsideBase) {
      expect(f.text, f.path).not.toMatch(/\bas\s+ErrorCode\b/);
      // A layer's codes are picked from the list, never written out as strings of their own.
      expect(f.text, f.path).not.toMatch(/ErrorCode\s*=\s*\{/);
      // Every error class extends RingraftError (or one of its subclasses), not Error; the
      // exceptions are not errors but signals that unwind a simulated crash.
      const classes = [...f.text.matchAll(/class\s+(\w+)\s+extends\s+(?:Error|TypeError|RangeError)\b/g)].map((m) => m[1]);
      expect(classes.filter((name) => !CRASH_SIGNALS.includes(name!)), f.path).toEqual([]);
      expect(f.text, f.path).not.toMatch(/throw new (Error|TypeError|RangeError)\(/);
    }
  });
});
