/**
 * The log of a `serve` process: one JSON object per line, on standard error by default, each
 * with the time, the level, the node, a `kind` that names the event (compare kinds, never
 * messages), a message for people, and the event's fields. Lines below the configured level
 * are not formatted at all. A field that is an error becomes its code and message.
 *
 * ```
 * {"time":"2026-12-02T10:00:00.000Z","level":"info","node":1,"kind":"listening","msg":"peers on 10.0.0.1:7001","address":"10.0.0.1:7001"}
 * ```
 */
import { RingraftError } from '../base/index.ts';
import { LOG_LEVELS, type LogLevel } from './config.ts';

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  readonly level: LogLevel;
  /** Whether a line at `level` would be written: check it before building costly fields. */
  enabled(level: LogLevel): boolean;
  log(level: LogLevel, kind: string, message: string, fields?: LogFields): void;
}

const RANK: Readonly<Record<LogLevel, number>> = Object.fromEntries(LOG_LEVELS.map((l, i) => [l, i])) as Record<LogLevel, number>;

/** A logger for node `nodeId` writing lines at `level` or above to `write` (standard error by default). */
export function createLogger(nodeId: number, level: LogLevel, write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const least = RANK[level];
  return {
    level,
    enabled: (l) => RANK[l] >= least,
    log(l, kind, message, fields) {
      if (RANK[l] < least) return;
      const line: Record<string, unknown> = { time: new Date().toISOString(), level: l, node: nodeId, kind, msg: message };
      if (fields !== undefined) for (const [k, v] of Object.entries(fields)) line[k] = plain(v);
      write(`${JSON.stringify(line, bigintAsString)}\n`);
    },
  };
}

/** An error as its code and message; anything else as it is. */
function plain(value: unknown): unknown {
  if (value instanceof RingraftError) return { code: value.code, message: value.message };
  if (value instanceof Error) return { message: value.message };
  return value;
}

function bigintAsString(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString(16) : value;
}
