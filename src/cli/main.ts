/**
 * The `ringraft` command. Exit codes: 0 success; 1 what the command checked or ran is bad
 * (a violation, a corrupt log) or the environment failed it (a write that failed); 2 a bad
 * argument or path, found before any work. Every expected failure is one line on stderr (a
 * usage error adds a pointer to the usage); only a bug (an assertion, a TypeError) escapes
 * with its stack.
 */
import { RingraftError } from '../base/index.ts';
import { isSystemError, processOutput, UsageError, type Output } from './args.ts';
import { LOAD_USAGE, loadCommand } from './load-command.ts';
import { isKvCommand, KV_USAGE, kvCommand } from './kv-commands.ts';
import { SERVE_USAGE, serveCommand } from './serve-command.ts';
import { SIM_USAGE, simCommand } from './sim-command.ts';
import { WAL_USAGE, walCommand } from './wal-command.ts';

const USAGE = `ringraft: a Raft consensus engine and replicated key-value store

commands:
  sim     run the deterministic simulator (ringraft sim --help)
  wal     verify or dump a node's write-ahead log, or verify a cluster's (ringraft wal --help)
  load    drive a cluster with load and faults (ringraft load --help)
  serve   run one node of a cluster over TCP (ringraft serve --help)
  put, get, del, cas, watch, status, move-leader, member
          talk to a running cluster over the network (below)
  help    this text

exit codes: 0 success; 1 what was checked or run is bad (a violation, a corrupt or empty
log) or a write failed; 2 a bad argument or path (found before any work)

${SIM_USAGE}

${WAL_USAGE}

${LOAD_USAGE}

${SERVE_USAGE}

${KV_USAGE}`;

export async function main(argv: readonly string[], out: Output = processOutput()): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'sim':
        return await simCommand(rest, out);
      case 'wal':
        return walCommand(rest, out);
      case 'load':
        return await loadCommand(rest, out);
      case 'serve':
        return await serveCommand(rest, out);
      case 'put':
      case 'get':
      case 'del':
      case 'cas':
      case 'txn':
      case 'lease':
      case 'watch':
      case 'status':
      case 'move-leader':
      case 'member':
        if (!isKvCommand(command)) throw new UsageError(`unknown command "${command}"`);
        return await kvCommand(command, rest, out);
      case undefined:
      case 'help':
      case '--help':
        out.stdout(USAGE);
        return 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      out.stderr(`ringraft: ${error.message}\n(ringraft help shows the usage)`);
      return 2;
    }
    const line = failureLine(error);
    if (line === undefined) throw error;
    out.stderr(`ringraft: ${line}`);
    return 1;
  }
}

/**
 * The one-line report of an expected failure: a typed refusal of the library (a corrupt log,
 * no space left) or an error of the operating system (a write that failed: it carries an
 * errno `code` and the `syscall`). Undefined for anything else, which is a bug.
 */
function failureLine(error: unknown): string | undefined {
  if (error instanceof RingraftError) return `${error.code}: ${error.message}`;
  if (isSystemError(error)) return error.message;
  return undefined;
}
