/** Assertion helpers for typed errors: tests compare errors by code, never by message. */
import { expect } from 'vitest';
import { type ErrorCode, RingraftError } from '../../../src/base/index.ts';

/** What `fn` throws; fails the test if it returns normally. */
export function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

/** Asserts that `fn` throws a RingraftError with `code`, and returns it. */
export function expectCode(fn: () => unknown, code: ErrorCode): RingraftError {
  const error = caught(fn);
  expect(error).toBeInstanceOf(RingraftError);
  expect((error as RingraftError).code).toBe(code);
  return error as RingraftError;
}
