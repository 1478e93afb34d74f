/**
 * How call arguments become bytes (src/cluster/client-args.ts): a string is its UTF-8,
 * whichever way it is encoded (a loop for short ASCII, TextEncoder otherwise), and one
 * holding a lone surrogate is refused, never silently changed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isWellFormed, keyBytes, valueBytes } from '../../src/cluster/client-args.ts';
import { ErrorCode } from '../../src/index.ts';
import { expectCode } from '../core/helpers/errors.ts';

const utf8 = new TextEncoder();

describe('string arguments', () => {
  it('are their UTF-8, ASCII or not, short or long', () => {
    const stringArb = fc.oneof(
      fc.string({ minLength: 1, maxLength: 80, unit: fc.constantFrom(...'ak09 ~\x7f\x00') }),
      // Mostly ASCII, with the first code points past it (Latin-1, two bytes each), and wider ones.
      fc.string({ minLength: 1, maxLength: 80, unit: fc.constantFrom(...Array.from('aaaaz\x7f\x80\u00e9\u00ff\u0100\u20ac\u{1f600}')) }),
      fc.string({ minLength: 1, maxLength: 80, unit: 'grapheme' }),
      fc.string({ minLength: 1, maxLength: 80, unit: 'binary' }).filter(isWellFormed),
    );
    fc.assert(
      fc.property(stringArb, (s) => {
        expect(keyBytes(s)).toEqual(utf8.encode(s));
        expect(valueBytes(s, 'value')).toEqual(utf8.encode(s));
      }),
      { numRuns: 2000 },
    );
  });

  it('holding a lone surrogate are refused, short or long', () => {
    for (const s of ['a\uD800', '\uDC00', 'k'.repeat(70) + '\uD83D']) {
      expect(expectCode(() => keyBytes(s), ErrorCode.INVALID_ARGUMENT).message).toMatch(/lone surrogate/);
    }
  });
});
