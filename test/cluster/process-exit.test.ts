// An open cluster keeps its process running until close(), like a listening server; after
// cluster.unref() it does not, and a process that ends that way leaves a data directory the
// next opener uses (its lock is broken, every acknowledged write is there). Proved with child
// processes, each stopped by its PID if it outlives the test.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { afterTest, start, stopAfterEach, tempDir } from './helpers.ts';

stopAfterEach();

const DIST = new URL('../../dist/src/index.js', import.meta.url).href;

/** Runs `body` (module code with `createCluster` imported) in a child; resolves to its exit code, or 'running' after `waitMs`. */
async function runChild(body: string, waitMs: number): Promise<{ outcome: number | 'running'; stdout: string }> {
  const file = join(tempDir(), 'child.mjs');
  writeFileSync(file, `import { createCluster } from ${JSON.stringify(DIST)};\n${body}\n`);
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
  afterTest(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'running'>((resolve) => (timer = setTimeout(() => resolve('running'), waitMs)));
  const outcome = await Promise.race([exited, late]);
  clearTimeout(timer);
  return { outcome, stdout };
}

const TIMING = 'node: { tickMs: 10 }, raft: { electionTimeoutTicks: 20, heartbeatIntervalTicks: 2 }';

describe('the process and an open cluster', () => {
  it('after unref() a program that never calls close() exits by itself; without it, it keeps running', async () => {
    const dir = tempDir();
    const withUnref = await runChild(
      `const c = await createCluster({ nodes: 3, dataDir: ${JSON.stringify(dir)}, ${TIMING} });
       await c.client().put('k', 'written before exit');
       c.unref();
       process.stdout.write('done\\n');`,
      20_000,
    );
    expect(withUnref.stdout).toBe('done\n');
    expect(withUnref.outcome).toBe(0);

    const without = await runChild(
      `const c = await createCluster({ nodes: 3, ${TIMING} });
       await c.client().put('k', 'v');
       process.stdout.write('done\\n');`,
      3_000,
    );
    expect(without.stdout).toBe('done\n');
    expect(without.outcome).toBe('running');

    // The directory the unref'd program left opens, with its write.
    const c = await start({ dataDir: dir });
    expect(new TextDecoder().decode((await c.client().get('k'))!)).toBe('written before exit');
  });
});
