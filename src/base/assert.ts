/**
 * The one assertion of the tree. A false assertion is a bug, never bad input: it throws an
 * {@link AssertionError}, which no caller handles, and the thread must stop. Expected refusals
 * are {@link RingraftError}s with a code (see errors.ts); the two are told apart by type.
 *
 * Assertions stay on in production. On a hot path, build no message unless the assertion
 * fails: pass a constant string, or a function that builds it, or write
 * `if (!ok) fail(`...`)` so the template is evaluated only on failure.
 */

/** A broken invariant. Not a {@link RingraftError}: it has no code, and nothing should catch it. */
export class AssertionError extends Error {
  /** A broken invariant described by `message`, which gets `assertion failed: ` put in front. */
  constructor(message: string) {
    super(`assertion failed: ${message}`);
    this.name = 'AssertionError';
  }
}

/**
 * Throws an {@link AssertionError} when `condition` is false. `message` is a constant, or a
 * function called only on failure (so that a hot path builds no string).
 */
export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) fail(typeof message === 'string' ? message : message());
}

/** Throws an {@link AssertionError}: for `if (!ok) fail(`...`)` on hot paths and unreachable code. */
export function fail(message: string): never {
  throw new AssertionError(message);
}
