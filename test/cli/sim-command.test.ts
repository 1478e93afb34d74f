// Proves the `ringraft sim` command works end to end as users run it: the built bin replays
// one seed (with its JSON summary and history file), fans seeds out over the worker pool,
// reports a planted bug with its replay command and a non-zero exit, and the failing seed's
// replay with each node's last events; `--trace` prints every event of a run; it rejects bad
// input (in one line, exit code 2), including arguments it used to ignore, seeds it could not
// replay and `--trace` with many seeds; its default worker count fits any machine.
// `npm test` builds first; these tests run the compiled command in a child process.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { historyFromJsonLines } from '../../src/sim/history.ts';
import { checkLinearizable } from '../../src/sim/linearizability.ts';
import { expectOneLineError } from './helpers.ts';

const bin = join(import.meta.dirname, '../../bin/ringraft.js');
const dir = mkdtempSync(join(tmpdir(), 'ringraft-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });
}

describe('ringraft sim', () => {
  it('replays one seed and writes its history as JSON lines', () => {
    const file = join(dir, 'h.jsonl');
    const out = execFileSync(process.execPath, [bin, 'sim', '--seed', '5', '--json', '--history', file], { encoding: 'utf8' });
    const summary = JSON.parse(out);
    expect(summary).toMatchObject({ runs: 1, violations: 0, failures: [] });
    expect(summary.operations).toBeGreaterThan(0);
    const history = historyFromJsonLines(readFileSync(file, 'utf8'));
    expect(history.length).toBe(summary.operations);
    expect(checkLinearizable(history).ok).toBe(true);
    for (const op of history) expect(['put', 'get', 'delete', 'cas', 'clear']).toContain(op.op);
  });

  it('fans seeds out over the pool and prints the summary object', () => {
    const r = run(['sim', '--seeds', '12', '--nodes', '3,5', '--json', '--workers', '2']);
    expect(r.status).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.runs).toBe(12);
    expect(summary.violations).toBe(0);
    expect(summary.elections).toBeGreaterThan(12);
    expect(summary.faults).toBeGreaterThan(0);
    expect(Object.keys(summary).sort()).toEqual(['elections', 'failures', 'faults', 'operations', 'runs', 'violations']);
  });

  it('reports a planted bug with the exact replay command and exits non-zero', () => {
    // How fast each bug is caught is the planted-bug tests' business (test/sim); this one needs
    // a run with at least one violation to check the replay line. The 'misconfigure' fault
    // changed the seeds' schedules: no-truncate is now first caught at seed 4.
    const r = run(['sim', '--seeds', '10', '--plant', 'no-truncate', '--workers', '1']);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/violations ([1-9]|10)\b/);
    const replay = /replay: ringraft (sim --seed \d+ --nodes 3 --plant no-truncate)/.exec(r.stdout);
    expect(replay).not.toBeNull();
    const again = run(replay![1]!.split(' '));
    expect(again.status).toBe(1);
    expect(again.stdout).toContain('VIOLATION');
  });

  it("prints a failing seed's last events of each node, one a line with its time", () => {
    // Seed 4 is the first seed that catches no-truncate (see the test above).
    const r = run(['sim', '--seed', '4', '--plant', 'no-truncate']);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^seed 4, 3 nodes: VIOLATION\n/);
    expect(r.stdout).toMatch(/^ {2}state machine safety: /m);
    expect(r.stdout).toMatch(/^ {2}last events before the violation, by node/m);
    for (const id of [1, 2, 3]) {
      // The node's group: its heading, then its events, each `[  1234 ms] nID ...`.
      const events = new RegExp(`^ {4}node ${id}:\n((?: {6}\\[ *\\d+ ms\\] n${id} .*\n)+)`, 'm').exec(r.stdout);
      expect(events, `node ${id}`).not.toBeNull();
      expect(events![1]!.split('\n').length - 1, `node ${id}`).toBeLessThanOrEqual(40);
      expect(events![1], `node ${id}`).toMatch(new RegExp(`n${id} t\\d+ (becomes (leader|follower|candidate)|(pre-)?vote for \\d)`));
    }
    expect(r.stdout).toMatch(/\] n\d t\d+ becomes leader \(won\)\n/);
    expect(r.stdout).toMatch(/\] n\d t\d+ vote for \d \(t\d+\) granted\n/);
    expect(r.stdout).toMatch(/\] VIOLATION state machine safety: /);
  });

  it('--trace prints every event of the run as it happens, then the summary', () => {
    const r = run(['sim', '--seed', '5', '--trace']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.at(-2)).toBe('seed 5, 3 nodes: ok');
    const events = lines.slice(0, -2);
    expect(events.length).toBeGreaterThan(100);
    for (const line of events) expect(line).toMatch(/^\[ *\d+ ms\] (n\d+|c\d+|network|quiet) /);
    expect(events).toContainEqual(expect.stringMatching(/^\[ *\d+ ms\] n\d t\d+ becomes leader \(won\)$/));
    expect(events[0]).toBe('[     0 ms] n1 starts with bootstrap voters [1,2,3]');
    // In time order.
    const times = events.map((l) => Number(/\d+/.exec(l)![0]));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it('rejects bad arguments with exit code 2', () => {
    for (const args of [['sim'], ['sim', '--seed', 'x'], ['sim', '--seeds', '2', '--faults', 'meteor'], ['sim', '--seed', '1', '--bogus'], ['nope']]) {
      const r = run(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/ringraft: /);
    }
  });

  it('rejects arguments it would ignore, and seeds whose replay command would be refused', () => {
    const cases: [string[], RegExp][] = [
      [['sim', '--seed', '1', 'extra'], /unexpected argument "extra"/],
      [['sim', '--seed', '1', '--workers', '2'], /--workers goes with --seeds/],
      [['sim', '--seed', '1', '--start', '5'], /--start goes with --seeds/],
      // Seed 4294967296 would print the replay command --seed 4294967296, which --seed refuses.
      [['sim', '--seeds', '2', '--start', '4294967295', '--workers', '1'], /goes past the largest seed, 4294967295/],
      // Many runs on a pool cannot print their events one a line in order: trace one seed.
      [['sim', '--seeds', '5', '--trace'], /--trace goes with --seed \(one run\)/],
      [['sim', '--seed', '5', '--trace', '--json'], /--trace prints lines, --json one object/],
    ];
    for (const [args, what] of cases) {
      const r = run(args);
      expect(r.status, args.join(' ')).toBe(2);
      expectOneLineError(r.stderr, what);
      expect(r.stdout).toBe('');
    }
  });

  it('defaults --workers to one per core, at most 64 and at most one per run, on a machine with 128 cores', () => {
    // availableParallelism() says 128, in the command and in its worker threads.
    const preload = `data:text/javascript,${encodeURIComponent(
      "import os from 'node:os'; import { syncBuiltinESMExports } from 'node:module'; os.availableParallelism = () => 128; syncBuiltinESMExports();",
    )}`;
    const r = spawnSync(process.execPath, ['--import', preload, bin, 'sim', '--seeds', '2', '--json'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ runs: 2, violations: 0 });
  });
});
