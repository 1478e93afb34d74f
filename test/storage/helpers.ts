/** Shared helpers of the storage tests: temporary directories, entries, reading files. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { EntryType, type Entry } from '../../src/core/index.ts';

/** A fresh directory under the OS temp dir, removed after the test file's tests. */
export function tempDir(prefix = 'ringraft-wal-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let dirCount = 0;
/** A directory name inside `parent` that does not exist yet. */
export function freshDir(parent: string): string {
  return join(parent, `log-${++dirCount}`);
}

/** An entry whose data is a function of (index, term), as Log Matching guarantees in real logs. */
export function ent(index: number, term: number, dataBytes = 8): Entry {
  const data = new Uint8Array(dataBytes);
  for (let i = 0; i < dataBytes; i++) data[i] = (index * 31 + term * 7 + i) & 0xff;
  return { index, term, type: EntryType.Normal, data };
}

/** Entries from..from+terms.length-1 with the given terms. */
export function ents(from: number, terms: readonly number[], dataBytes = 8): Entry[] {
  return terms.map((t, k) => ent(from + k, t, dataBytes));
}

/** Plain data of entries, for toEqual comparisons (Buffer views and Uint8Arrays compare alike). */
export function plain(es: readonly Entry[]): { index: number; term: number; type: number; data: number[] }[] {
  return es.map((e) => ({ index: e.index, term: e.term, type: e.type, data: [...e.data] }));
}

/** The `code` of what `f` throws, or undefined if it returns. */
export function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}
