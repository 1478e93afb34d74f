// The state machine keys its maps by a key's latin1 string, one char per byte, made by
// Buffer's own decoder called on any Uint8Array: checked against String.fromCharCode on every
// byte, on views that start inside their buffer, and on long keys.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keyString } from '../../src/kv/state-machine.ts';

const byChars = (bytes: Uint8Array): string => Array.from(bytes, (b) => String.fromCharCode(b)).join('');

describe('keyString', () => {
  it('is one char per byte, for every byte value', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(keyString(all)).toBe(byChars(all));
    expect(keyString(all).length).toBe(256);
    expect(keyString(new Uint8Array(0))).toBe('');
  });

  it('reads a view where it starts, not its buffer from 0, and gives distinct strings for distinct keys', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(64), fc.nat(64), (bytes, before, after) => {
        const host = new Uint8Array(before + bytes.length + after).fill(0x7a);
        host.set(bytes, before);
        const view = host.subarray(before, before + bytes.length);
        expect(keyString(view)).toBe(byChars(bytes));
      }),
      { numRuns: 300 },
    );
    expect(keyString(Uint8Array.of(0x80, 0x9f))).not.toBe(keyString(Uint8Array.of(0x80, 0x9e)));
  });
});
