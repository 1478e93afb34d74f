// Proves that every option naming an output file (sim --history, load --history) is checked
// before any work: a missing directory, a path that is a directory or ends in "/", a file in
// the way of a directory and an empty name are one-line usage errors with exit code 2, and
// nothing has run (no summary, no progress). Also that a write that still fails (a full disk:
// /dev/full), to the history or to stdout, is one line with exit code 1, never a stack trace,
// and that an option followed by another option instead of its value, or given twice, is
// refused rather than taken as a file name or overridden. Runs `main()` in-process where it
// can, and the built bin where what reaches the terminal matters (`npm test` builds first).
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { captureOutput, expectOneLineError, runBin } from './helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'ringraft-cli-paths-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const aFile = join(root, 'a-file');
writeFileSync(aFile, 'not a directory\n');
const aDirectory = join(root, 'a-directory');
mkdirSync(aDirectory);

/** Output paths that cannot be written, each with what the error must say. */
const badPaths: readonly [string, RegExp][] = [
  [join(root, 'missing', 'h.jsonl'), /directory .*missing does not exist/],
  [aDirectory, /is a directory; give a file name/],
  [join(root, 'new-dir') + '/', /names a directory; give a file name/],
  [join(aFile, 'h.jsonl'), /a part of the path is not a directory/],
  ['', /--history needs a file name/],
];

async function runMain(argv: string[]) {
  const out = captureOutput();
  const code = await main(argv, out);
  return { code, ...out };
}

describe('ringraft sim --history', () => {
  it('refuses a path it cannot write, with exit code 2, before the run', async () => {
    for (const [path, what] of badPaths) {
      const r = await runMain(['sim', '--seed', '1', `--history=${path}`]);
      expect(r.code, path).toBe(2);
      expectOneLineError(r.stderrLines.join('\n'), what);
      expect(r.stdoutLines, 'the run did not happen').toEqual([]);
    }
  });

  it('prints one line and no stack trace from the built command', () => {
    const path = join(root, 'missing', 'h.jsonl');
    const started = Date.now();
    const r = runBin(['sim', '--seed', '1', '--history', path]);
    expect(r.status).toBe(2);
    expectOneLineError(r.stderr, /--history .*missing.*h\.jsonl: directory .*missing does not exist/);
    expect(r.stdout).toBe('');
    expect(existsSync(join(root, 'missing'))).toBe(false);
    // Well under the run it refused (a seed simulates seconds of cluster time).
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('reports a write that fails after the run in one line with exit code 1', () => {
    // /dev/full passes every check (it exists and is writable) and fails the write with ENOSPC.
    const r = runBin(['sim', '--seed', '1', '--history', '/dev/full']);
    expect(r.status).toBe(1);
    expectOneLineError(r.stderr, /ENOSPC/);
  });

  it('refuses an option where the file name should be, and an option given twice', async () => {
    // In a directory of its own: without the check, this writes a file named "--json" there.
    const cwd = join(root, 'cwd');
    mkdirSync(cwd);
    const option = runBin(['sim', '--seed', '1', '--history', '--json'], { cwd });
    expect(option.status).toBe(2);
    expectOneLineError(option.stderr, /--history needs a value, got the option --json/);
    expect(existsSync(join(cwd, '--json'))).toBe(false);
    const twice = await runMain(['sim', '--seed', '1', '--seed', '2']);
    expect(twice.code).toBe(2);
    expectOneLineError(twice.stderrLines.join('\n'), /--seed is given twice/);
  });
});

describe('ringraft load --history', () => {
  it('refuses a path it cannot write, with exit code 2, before the run', async () => {
    for (const [path, what] of badPaths) {
      // Short and small, so that a run that was not refused still ends.
      const r = await runMain(['load', '--duration', '200ms', '--nodes', '1', '--threads', '1', '--concurrency', '1', `--history=${path}`]);
      expect(r.code, path).toBe(2);
      expectOneLineError(r.stderrLines.join('\n'), what);
      expect(r.stdoutLines, 'the run did not happen').toEqual([]);
      expect(r.progressLines, 'the run did not start').toEqual([]);
    }
  });
});

describe('ringraft with stdout on a full disk', () => {
  it('exits 1 with one line, no stack trace', () => {
    const fd = openSync('/dev/full', 'w');
    try {
      const r = runBin(['sim', '--seed', '1'], { stdio: ['ignore', fd, 'pipe'] });
      expect(r.status).toBe(1);
      expectOneLineError(r.stderr, /^ringraft: cannot write the output: ENOSPC/);
    } finally {
      closeSync(fd);
    }
  });
});
