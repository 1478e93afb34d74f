/** The `ringraft` command. */
import { processOutput, UsageError, type Output } from './args.ts';
import { LOAD_USAGE, loadCommand } from './load-command.ts';
import { SIM_USAGE, simCommand } from './sim-command.ts';
import { WAL_USAGE, walCommand } from './wal-command.ts';

const USAGE = `ringraft: a Raft consensus engine and replicated key-value store

commands:
  sim     run the deterministic simulator (ringraft sim --help)
  wal     verify or dump a node's write-ahead log (ringraft wal --help)
  load    drive a cluster with load and faults (ringraft load --help)
  help    this text

${SIM_USAGE}

${WAL_USAGE}

${LOAD_USAGE}`;

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
    throw error;
  }
}
