/** Shared helpers of the CLI tests: an Output that records what a command prints, and the built bin. */
import { spawnSync, type SpawnSyncOptions, type SpawnSyncReturns } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Output } from '../../src/cli/args.ts';

export const bin = join(import.meta.dirname, '../../bin/ringraft.js');

export interface CapturedOutput extends Output {
  readonly stdoutLines: string[];
  readonly stderrLines: string[];
  readonly progressLines: string[];
}

/** An Output for `main(argv, out)` that keeps every line. */
export function captureOutput(): CapturedOutput {
  const stdoutLines: string[] = [];
  const stderrLines: string[] = [];
  const progressLines: string[] = [];
  return {
    stdoutLines,
    stderrLines,
    progressLines,
    stdout: (line) => void stdoutLines.push(line),
    stderr: (line) => void stderrLines.push(line),
    progress: (line) => void progressLines.push(line),
    progressDone: () => {},
  };
}

/** Runs the built `ringraft` in a child process (`npm test` builds first). */
export function runBin(args: readonly string[], options: Omit<SpawnSyncOptions, 'encoding'> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [bin, ...args], { timeout: 120_000, ...options, encoding: 'utf8' });
}

/** What a failed command printed is one `ringraft: ` line (and maybe the usage pointer), no stack trace. */
export function expectOneLineError(stderr: string, what: RegExp): void {
  expect(stderr).toMatch(/^ringraft: /);
  expect(stderr).toMatch(what);
  expect(stderr).not.toMatch(/^\s+at /m);
  const lines = stderr.trimEnd().split('\n');
  expect(lines.length, stderr).toBeLessThanOrEqual(2);
  if (lines.length === 2) expect(lines[1]).toBe('(ringraft help shows the usage)');
}
