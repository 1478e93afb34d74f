// Proves the `ringraft` command stops quietly when its reader goes away (as in
// `ringraft wal dump DIR | head`): the child's stdout is closed after the first chunk, and it
// must exit 0 without an EPIPE error. Runs the built bin (`npm test` builds first).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EntryType } from '../../src/core/index.ts';
import { WalStorage } from '../../src/storage/index.ts';

const bin = join(import.meta.dirname, '../../bin/ringraft.js');
const dir = mkdtempSync(join(tmpdir(), 'ringraft-epipe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ringraft with a closed stdout', () => {
  it('exits 0 without an EPIPE error when the reader stops reading', async () => {
    const wal = WalStorage.open(dir);
    let index = 0;
    for (let b = 0; b < 400; b++) {
      const entries = Array.from({ length: 25 }, () => ({ term: 1, index: ++index, type: EntryType.Normal, data: new Uint8Array(16) }));
      wal.persist({ entries, hardState: { term: 1, vote: 1, commit: index } });
    }
    wal.close();
    const child = spawn(process.execPath, [bin, 'wal', 'dump', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(stderr).not.toMatch(/EPIPE/);
    expect(code).toBe(0);
  });
});
