// Every example in examples/ runs, as a user would run it (`node examples/NAME.mjs`, importing
// the package by its own name, which resolves to the build; a state machine written in
// TypeScript, examples/state-machines/, loaded as built), and says it got what it checks.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const EXAMPLES = join(ROOT, 'examples');

/** The line each example prints last when all its checks held. */
const DONE: Record<string, string> = {
  'raw-node.mjs': 'every replica counted to 55',
  'replicated-counter.mjs': 'the counter counted to 155',
  'sim-counter.mjs': 'the counter passed 20 seeds',
  'job-queue.mjs': 'six jobs, each done once',
};

describe('examples', () => {
  it('has a check for every example', () => {
    expect(readdirSync(EXAMPLES).filter((f) => f.endsWith('.mjs')).sort()).toEqual(Object.keys(DONE).sort());
  });

  it.each(Object.keys(DONE))('%s runs and checks out', (file) => {
    const r = spawnSync(process.execPath, ['--no-addons', join(EXAMPLES, file)], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(DONE[file]);
  });
});
