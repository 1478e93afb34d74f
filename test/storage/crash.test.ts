// Proves, with real processes and real kills, that an acknowledged write survives a crash:
// a child process (test/fixtures/wal-writer.mjs) appends batches (some overwriting a suffix
// with a higher term, some snapshots) with durability 'always' and prints each batch's
// intent before it and "ack" after its sync; the test SIGKILLs it at a random moment (20
// rounds, 5 to 200 ms after it started in odd rounds, which kills it during start-up and
// recovery too, and after it reported its log open in even rounds, so that every round
// writes whatever the machine's start-up time), reopens the WAL and
// checks that the log is exactly the acknowledged one, or that plus the one batch in flight:
// every acknowledged entry present with its term and intact data, and nothing that a
// truncation discarded back. Needs the build (`npm test` builds first).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WalStorage } from '../../src/storage/index.ts';
import { freshDir, tempDir } from './helpers.ts';

const fixture = join(import.meta.dirname, '../fixtures/wal-writer.mjs');
const root = tempDir('ringraft-wal-crash-');
const ROUNDS = 20;

/** The same data function as the fixture's. */
function entryData(index: number, term: number, length: number): Uint8Array {
  const data = new Uint8Array(length);
  for (let i = 0; i < length; i++) data[i] = (index * 131 + term * 17 + i * 7) & 0xff;
  return data;
}

/** The log as the test knows it: snapshot index and the term of every entry after it. */
interface Model {
  snapIndex: number;
  terms: Map<number, number>;
  last: number;
}

type Intent = { kind: 'append'; from: number; to: number; term: number } | { kind: 'snap'; index: number };

function applyIntent(m: Model, intent: Intent): Model {
  const next: Model = { snapIndex: m.snapIndex, terms: new Map(m.terms), last: m.last };
  if (intent.kind === 'snap') {
    for (let i = next.snapIndex + 1; i <= intent.index; i++) next.terms.delete(i);
    next.snapIndex = intent.index;
    return next;
  }
  for (let i = intent.from; i <= next.last; i++) next.terms.delete(i);
  for (let i = intent.from; i <= intent.to; i++) next.terms.set(i, intent.term);
  next.last = intent.to;
  return next;
}

function parseIntent(line: string): Intent {
  const [, kind, a, b, c] = line.split(' ');
  return kind === 'snap' ? { kind, index: Number(a) } : { kind: 'append', from: Number(a), to: Number(b), term: Number(c) };
}

/** Reads the WAL back and returns it as a model; checks every entry's data on the way. */
function readBack(dir: string): Model {
  const s = WalStorage.open(dir, { segmentSizeBytesMax: 64 * 1024 });
  try {
    const terms = new Map<number, number>();
    for (const e of s.allEntries()) {
      expect(e.data, `data of entry ${e.index}`).toEqual(entryData(e.index, e.term, e.data.length));
      terms.set(e.index, e.term);
    }
    return { snapIndex: s.snapshot().meta.index, terms, last: s.lastIndex() };
  } finally {
    s.close();
  }
}

function sameLog(a: Model, b: Model): boolean {
  if (a.snapIndex !== b.snapIndex || a.last !== b.last || a.terms.size !== b.terms.size) return false;
  for (const [i, t] of a.terms) if (b.terms.get(i) !== t) return false;
  return true;
}

/**
 * Runs the writer until it is killed `killAfterMs` after it was started, or after it printed
 * its "ready" line; returns its complete output lines.
 */
function runAndKill(dir: string, seed: number, killAfterMs: number, from: 'start' | 'ready'): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fixture, dir, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      timer ??= setTimeout(() => {
        if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
      }, killAfterMs);
    };
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (from === 'ready' && out.includes('\n')) arm();
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    if (from === 'start') arm();
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') {
        reject(new Error(`writer exited by itself (code ${code}): ${err}`));
        return;
      }
      // A line cut short by the kill is not an acknowledgement.
      const lines = out.split('\n');
      lines.pop();
      resolve(lines);
    });
  });
}

describe('WAL under SIGKILL', () => {
  it(`keeps every acknowledged write across ${ROUNDS} kills`, async () => {
    const dir = freshDir(root);
    let model: Model = { snapIndex: 0, terms: new Map(), last: 0 };
    let seed = 12345;
    let acked = 0;
    let inFlight = 0;
    const started = Date.now();
    for (let round = 1; round <= ROUNDS; round++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const killAfterMs = 5 + (seed % 196);
      const lines = await runAndKill(dir, seed, killAfterMs, round % 2 === 1 ? 'start' : 'ready');
      let pending: Intent | undefined;
      for (const line of lines) {
        if (line.startsWith('try ')) pending = parseIntent(line);
        else if (line === 'ack') {
          expect(pending, `round ${round}: ack without intent`).toBeDefined();
          model = applyIntent(model, pending!);
          pending = undefined;
          acked++;
        } else if (line.startsWith('ready ')) {
          const [, first, last] = line.split(' ').map(Number);
          expect([first, last], `round ${round}: state at start`).toEqual([model.snapIndex + 1, model.last]);
        }
      }
      const actual = readBack(dir);
      const withPending = pending === undefined ? undefined : applyIntent(model, pending);
      const ok = sameLog(actual, model) || (withPending !== undefined && sameLog(actual, withPending));
      expect(ok, `round ${round} (seed ${seed}, kill after ${killAfterMs} ms): the log is neither the acknowledged one nor that plus the batch in flight`).toBe(true);
      if (withPending !== undefined && sameLog(actual, withPending) && !sameLog(actual, model)) inFlight++;
      model = actual;
    }
    expect(acked).toBeGreaterThan(ROUNDS);
    expect(Date.now() - started).toBeLessThan(60_000);
    if (process.env.RINGRAFT_DEBUG) console.log({ acked, inFlight, last: model.last, snapIndex: model.snapIndex });
  });
});
