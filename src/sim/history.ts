/**
 * The client-side history of a key-value store run: what each client asked, what it was
 * told, and when. The simulator records one {@link HistoryOp} per client operation and the
 * linearizability checker (`linearizability.ts`) judges the whole list afterwards.
 *
 * On disk a history is JSON lines: one op per line, as a JSON object whose keys come in the
 * fixed order `client, op, key, value, expected, output, call, return`. A fixed key order keeps
 * saved histories diffable and byte-identical for the same run, so a failing seed's history can
 * be compared with the history of the same seed after a fix.
 *
 * | field      | put          | get                 | delete          | cas                   |
 * |------------|--------------|---------------------|-----------------|-----------------------|
 * | `value`    | value written| null                | null            | new value             |
 * | `expected` | null         | null                | null            | expected (null=absent)|
 * | `output`   | null         | value read or null  | key existed     | swapped               |
 *
 * A `clear` is one key's share of a delete-range: the key is absent after it, and the
 * client was told only a count for the whole range, so `value`, `expected` and `output`
 * are null.
 *
 * When `return` is null the client never got an answer and `output` must be null.
 */
import { ErrorCode, RingraftError } from '../base/index.ts';

export type KvOpKind = 'put' | 'get' | 'delete' | 'cas' | 'clear';

/** One client operation as the client saw it. Times are simulated time units (numbers). */
export interface HistoryOp {
  client: number;
  op: KvOpKind;
  key: string;
  /** put: the value written; cas: the new value; get/delete: null */
  value: string | null;
  /** cas: the expected current value (null = key absent); others: null */
  expected: string | null;
  /** get: value read (null = absent); delete: whether the key existed; cas: whether it swapped; put: null.
   *  When `return` is null (the client never got an answer) output is null and must be ignored. */
  output: string | boolean | null;
  call: number;
  /** null when the client never got an answer: the op may or may not have taken effect, at any time after call. */
  return: number | null;
}

/**
 * Thrown for a history that breaks the rules above, whether it comes from a file or from
 * code: a {@link RingraftError} with code INVALID_ARGUMENT.
 */
export class InvalidHistoryError extends RingraftError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.INVALID_ARGUMENT, message, options);
    this.name = 'InvalidHistoryError';
  }
}

/**
 * Longest line `historyFromJsonLines` accepts. The simulator writes short keys and values, so
 * a longer line means a corrupt or foreign file; refusing it bounds what one line can make
 * `JSON.parse` allocate.
 */
export const historyLineCharsMax = 1024 * 1024;

/** Field names in the order they are written; parsing insists on exactly this set. */
const historyFieldNames = [
  'client',
  'op',
  'key',
  'value',
  'expected',
  'output',
  'call',
  'return',
] as const;

const kvOpKinds: readonly string[] = ['put', 'get', 'delete', 'cas', 'clear'] satisfies KvOpKind[];

/**
 * Checks that `raw` is a well-formed op and returns a fresh copy with its fields in the
 * canonical order. `where` names the op in error messages ("line 3", "history[7]").
 *
 * Every rule lives here so that reading a file, writing one and checking a history in memory
 * all agree on what a valid op is.
 *
 * @throws InvalidHistoryError naming `where` and the offending field.
 */
export function validateHistoryOp(raw: unknown, where: string): HistoryOp {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidHistoryError(`${where}: expected an object, got ${describe(raw)}`);
  }
  const r = raw as Record<string, unknown>;
  const fail = (field: string, rule: string): never => {
    throw new InvalidHistoryError(`${where}: field "${field}" ${rule}, got ${describe(r[field])}`);
  };

  const client = r['client'];
  if (typeof client !== 'number' || !Number.isSafeInteger(client)) fail('client', 'must be a safe integer');
  const op = r['op'];
  if (typeof op !== 'string' || !kvOpKinds.includes(op)) fail('op', 'must be one of put, get, delete, cas, clear');
  const kind = op as KvOpKind;
  const key = r['key'];
  if (typeof key !== 'string') fail('key', 'must be a string');

  const value = r['value'];
  const writes = kind === 'put' || kind === 'cas';
  if (writes && typeof value !== 'string') fail('value', `must be a string for ${kind}`);
  if (!writes && value !== null) fail('value', `must be null for ${kind}`);
  const expected = r['expected'];
  if (kind === 'cas' && expected !== null && typeof expected !== 'string') {
    fail('expected', 'must be a string or null for cas');
  }
  if (kind !== 'cas' && expected !== null) fail('expected', `must be null for ${kind}`);

  const call = r['call'];
  if (typeof call !== 'number' || !Number.isFinite(call)) fail('call', 'must be a finite number');
  const ret = r['return'];
  if (ret !== null && (typeof ret !== 'number' || !Number.isFinite(ret))) {
    fail('return', 'must be a finite number or null');
  }
  if (ret !== null && (ret as number) < (call as number)) {
    fail('return', `must not be before call (${String(call)})`);
  }

  const output = r['output'];
  if (ret === null) {
    // The client never heard back, so there is nothing it could have recorded.
    if (output !== null) fail('output', 'must be null when return is null');
  } else if (kind === 'get') {
    if (output !== null && typeof output !== 'string') fail('output', 'must be a string or null for get');
  } else if (kind === 'put' || kind === 'clear') {
    if (output !== null) fail('output', `must be null for ${kind}`);
  } else if (typeof output !== 'boolean') {
    fail('output', `must be a boolean for ${kind}`);
  }

  return {
    client: client as number,
    op: kind,
    key: key as string,
    value: value as string | null,
    expected: expected as string | null,
    output: output as string | boolean | null,
    call: call as number,
    return: ret as number | null,
  };
}

/**
 * Writes `ops` as JSON lines, one op per line, each line ending in `\n`. Every op is validated
 * first: a file that cannot be read back is worse than no file.
 *
 * @throws InvalidHistoryError naming the index of the first invalid op.
 */
export function historyToJsonLines(ops: readonly HistoryOp[]): string {
  let text = '';
  for (let i = 0; i < ops.length; i++) {
    // validateHistoryOp builds the object in canonical field order, which JSON.stringify keeps.
    text += JSON.stringify(validateHistoryOp(ops[i], `history[${i}]`)) + '\n';
  }
  return text;
}

/**
 * Reads a history written by {@link historyToJsonLines}. Lines are split on `\n` (a trailing
 * `\r` is dropped); empty lines are skipped so that a final newline, or none, both work.
 * Each object must have exactly the eight fields, each valid for the op's kind.
 *
 * @throws InvalidHistoryError naming the 1-based line number of the first bad line.
 */
export function historyFromJsonLines(text: string): HistoryOp[] {
  const lines = text.split('\n');
  const ops: HistoryOp[] = [];
  for (let i = 0; i < lines.length; i++) {
    const where = `line ${i + 1}`;
    const raw = lines[i]!;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') continue;
    if (line.length > historyLineCharsMax) {
      throw new InvalidHistoryError(`${where}: longer than ${historyLineCharsMax} characters`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (cause) {
      throw new InvalidHistoryError(`${where}: not valid JSON`, { cause });
    }
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      checkFieldNames(parsed as Record<string, unknown>, where);
    }
    ops.push(validateHistoryOp(parsed, where));
  }
  return ops;
}

/** Rejects missing and unknown fields, so that a typo in a hand-edited file is not ignored. */
function checkFieldNames(obj: Record<string, unknown>, where: string): void {
  for (const name of historyFieldNames) {
    if (!Object.hasOwn(obj, name)) throw new InvalidHistoryError(`${where}: missing field "${name}"`);
  }
  const known: readonly string[] = historyFieldNames;
  for (const name of Object.keys(obj)) {
    if (!known.includes(name)) throw new InvalidHistoryError(`${where}: unknown field "${name}"`);
  }
}

/** A short description of a bad value for an error message, never the whole value. */
function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}
