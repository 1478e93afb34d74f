/** A small argument parser for the `ringraft` command, its checks of paths, and its output channel. */
import { accessSync, constants, statSync, type Stats } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { ErrorCode, RingraftError } from '../base/index.ts';

/** A command line the `ringraft` command cannot take (code INVALID_ARGUMENT). */
export class UsageError extends RingraftError {
  constructor(message: string) {
    super(ErrorCode.INVALID_ARGUMENT, message);
    this.name = 'UsageError';
  }
}

export interface ParsedArgs {
  readonly flags: ReadonlySet<string>;
  readonly values: ReadonlyMap<string, string>;
  readonly positional: readonly string[];
}

/**
 * Parses `--flag`, `--name value` and `--name=value`. Unknown options, an option given twice
 * and `--name` followed by another option instead of its value are UsageErrors: each would
 * otherwise be a silent surprise (the last value winning, or `--history --json` writing a
 * file named "--json"). A value that starts with `--` can still be given as `--name=--value`.
 */
export function parseArgs(argv: readonly string[], spec: { flags: readonly string[]; values: readonly string[] }): ParsedArgs {
  const flags = new Set<string>();
  const values = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    if (spec.flags.includes(name)) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      flags.add(name);
    } else if (spec.values.includes(name)) {
      const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new UsageError(`--${name} needs a value`);
      if (eq < 0 && v.startsWith('--')) throw new UsageError(`--${name} needs a value, got the option ${v} (for a value that starts with --, write --${name}=${v})`);
      if (values.has(name)) throw new UsageError(`--${name} is given twice`);
      values.set(name, v);
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  return { flags, values, positional };
}

/**
 * Checks, before any work, that the file an option names can be written: the path is not a
 * directory, and its parent directory exists and is writable (or the file exists and is
 * writable). A run of minutes must not end in a failed write, so a bad path is a UsageError
 * up front. The write itself can still fail (a full disk, a directory removed meanwhile);
 * main() reports that in one line too.
 */
export function checkOutputFile(path: string, option: string): void {
  const what = `--${option} ${path}`;
  if (path === '') throw new UsageError(`--${option} needs a file name`);
  if (path.endsWith('/') || path.endsWith(sep)) throw new UsageError(`${what} names a directory; give a file name`);
  const stats = statOrMissing(path, what);
  if (stats !== undefined) {
    if (stats.isDirectory()) throw new UsageError(`${what} is a directory; give a file name`);
    if (!isAccessible(path, constants.W_OK)) throw new UsageError(`${what} is not writable`);
    return;
  }
  const parent = dirname(resolve(path));
  const parentStats = statOrMissing(parent, what);
  if (parentStats === undefined) throw new UsageError(`${what}: directory ${parent} does not exist`);
  if (!parentStats.isDirectory()) throw new UsageError(`${what}: ${parent} is not a directory`);
  // Creating a file needs write and search permission on the directory.
  if (!isAccessible(parent, constants.W_OK | constants.X_OK)) throw new UsageError(`${what}: directory ${parent} is not writable`);
}

/** The stats of `path`, undefined if nothing is there; any other failure is a UsageError about `what`. */
function statOrMissing(path: string, what: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return undefined;
    // ENOTDIR (a file where a directory should be on the way), EACCES, ELOOP, ENAMETOOLONG.
    throw new UsageError(`${what}: ${e.code === 'ENOTDIR' ? 'a part of the path is not a directory' : (e.code ?? e.message)}`);
  }
}

function isAccessible(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

/** An error of the operating system (a failed open, read or write): it carries an errno code and the call. */
export function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && typeof (error as NodeJS.ErrnoException).syscall === 'string';
}

/** Where the command writes: results to stdout, progress to stderr (on a terminal, in place). */
export interface Output {
  stdout(line: string): void;
  stderr(line: string): void;
  progress(line: string): void;
  progressDone(): void;
}

export function processOutput(): Output {
  const tty = process.stderr.isTTY === true;
  let shown = false;
  // A reader that went away (`ringraft wal dump DIR | head`) is not an error: stop quietly.
  // Any other failure to write the results (stdout on a full disk) is one line and exit 1:
  // the output is incomplete, so the run cannot report success.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    process.stderr.write(`ringraft: cannot write the output: ${error.message}\n`);
    process.exit(1);
  });
  return {
    stdout: (line) => void process.stdout.write(line + '\n'),
    stderr: (line) => void process.stderr.write(line + '\n'),
    progress: (line) => {
      if (tty) {
        process.stderr.write(`\r\x1b[2K${line}`);
        shown = true;
      } else process.stderr.write(line + '\n');
    },
    progressDone: () => {
      if (tty && shown) process.stderr.write('\n');
      shown = false;
    },
  };
}
