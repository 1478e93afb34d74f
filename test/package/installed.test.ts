// Proves that the published package works once installed, as a user gets it: `npm pack`s the
// built tree, installs the tarball into a new project in a temporary directory with only its
// runtime dependencies (`npm install --omit=dev`), and from that project runs the README's
// embedding example (`import { createCluster } from 'ringraft'`) and every command of the
// `ringraft` bin: `--help` of each, a short `load`, `sim --seed 1`, and `wal verify` on the
// data directory the example left. It cannot pass on the repository's files by accident: the
// project lies outside the repository, the children's PATH and npm settings are stripped of the
// repository's, the bin must resolve into the installed copy (a real directory, not a link),
// and the installed copy must hold none of bench/ and none of the development dependencies.
// It packs without running `prepare` (which would rebuild dist/ under the feet of the tests
// running beside it), so it first checks that dist/ is at least as new as every source file
// (`npm test` builds first). Every child runs in its own process group, bounded by a timeout
// after which the group is killed by its id.
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  readonly name: string;
  readonly version: string;
  readonly dependencies: Record<string, string>;
  readonly devDependencies: Record<string, string>;
};

/** Bytes of a child's stdout or stderr kept; the rest is dropped (and said so). */
const OUTPUT_BYTES_MAX = 1 << 20;
const INSTALL_TIMEOUT_MS = 120_000;
const COMMAND_TIMEOUT_MS = 60_000;

const work = mkdtempSync(join(tmpdir(), 'ringraft-installed-'));
const project = join(work, 'project');
const dataDir = join(work, 'data');
const installed = join(project, 'node_modules', PACKAGE.name);
/** Process groups of children still running: killed in afterAll if a test gave up on them. */
const running = new Set<number>();

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The environment of every child: this one without npm's per-script settings (`npm_*`, which
 * would point npm at the repository) and without any node_modules/.bin on the PATH (the
 * repository's), with this process's Node.js first on the PATH, so that the bin's
 * `#!/usr/bin/env node` runs the Node.js line this suite runs on.
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.toLowerCase().startsWith('npm_')) env[key] = value;
  }
  const path = (process.env.PATH ?? '').split(delimiter).filter((p) => p !== '' && !p.includes(`node_modules${sep}.bin`));
  env.PATH = [dirname(process.execPath), ...path].join(delimiter);
  env.npm_config_update_notifier = 'false';
  return env;
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone: nothing to kill.
  }
}

/**
 * Runs `command` in `cwd` in a process group of its own (npx runs the bin through a shell,
 * so killing the child alone could leave the bin running) and resolves with its exit code
 * and output; rejects, after killing the group, if it outlives `timeoutMs`.
 */
function run(command: string, args: readonly string[], cwd: string, timeoutMs = COMMAND_TIMEOUT_MS): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: childEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const pid = child.pid;
    if (pid !== undefined) running.add(pid);
    const output = { stdout: '', stderr: '' };
    const keep = (stream: 'stdout' | 'stderr') => (chunk: string) => {
      if (output[stream].length < OUTPUT_BYTES_MAX) output[stream] += chunk.slice(0, OUTPUT_BYTES_MAX - output[stream].length);
    };
    child.stdout.setEncoding('utf8').on('data', keep('stdout'));
    child.stderr.setEncoding('utf8').on('data', keep('stderr'));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (pid !== undefined) killGroup(pid);
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (pid !== undefined) {
        // Whatever the child left behind in its group goes with it.
        killGroup(pid);
        running.delete(pid);
      }
      const what = `${command} ${args.join(' ')} (in ${cwd})`;
      if (timedOut) reject(new Error(`${what} ran longer than ${timeoutMs} ms\nstdout:\n${output.stdout}\nstderr:\n${output.stderr}`));
      else resolve({ code, ...output });
    });
  });
}

/** Asserts exit code 0, showing the output when it is not. */
function expectSuccess(r: Run, what: string): void {
  expect(r.code, `${what} exited with ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
}

/**
 * `ringraft ARGS` through npx from the project: the installed bin, never one to download
 * (`--no`). The `--` is needed: without it npx 11 takes `ringraft --help` as its own --help.
 */
function ringraft(...args: string[]): Promise<Run> {
  return run('npx', ['--no', '--', 'ringraft', ...args], project);
}

/** The .ts files under `dir`, relative to ROOT. */
function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => join(dir, f));
}

/** Where each subpath resolves in the installed project, and the type of a few of its exports. */
const SUBPATHS = `
const out = {};
for (const [name, keys] of [['ringraft/core', ['RawNode', 'decodeMessage', 'MessageType']], ['ringraft/storage', ['MemoryStorage', 'WalStorage']], ['ringraft/sim', ['simulateStateMachine']]]) {
  const m = await import(name);
  out[name] = { url: import.meta.resolve(name), ...Object.fromEntries(keys.map((k) => [k, typeof m[k]])) };
}
console.log(JSON.stringify(out));
`;

/**
 * The README's embedding example, made to check itself: each step prints one JSON line
 * `[step, value]`. A stale read answers from any node's state, which may lag behind the
 * write, so it is asked until it sees it (bounded), as is a node that restarted.
 */
const EXAMPLE = `import { createCluster } from 'ringraft';

const dataDir = process.argv[2];
const text = (bytes) => (bytes === undefined ? null : new TextDecoder().decode(bytes));
const log = (step, value) => console.log(JSON.stringify([step, value]));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, check) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await sleep(20);
  }
}

log('resolved', import.meta.resolve('ringraft'));
const cluster = await createCluster({ nodes: 3, dataDir });
const kv = cluster.client();
await kv.put('user:1', 'alice');
log('get', text(await kv.get('user:1')));
log('get lease', text(await kv.get('user:1', { consistency: 'lease' })));
log('get stale', text(await until('a stale read of user:1', () => kv.get('user:1', { consistency: 'stale' }))));
log('cas absent', await kv.cas('n', undefined, '1'));
log('cas wrong', await kv.cas('n', undefined, '2'));
log('cas present', await kv.cas('n', '1', '2'));
log('get n', text(await kv.get('n')));
log('delete', await kv.delete('user:1'));
log('delete again', await kv.delete('user:1'));
log('get deleted', text(await kv.get('user:1')));

const events = [];
for await (const ev of kv.watch('user:', { afterIndex: 0 })) {
  events.push([ev.type, text(ev.key), text(ev.value)]);
  if (events.length === 2) break;
}
log('watch', events);

let st = await cluster.status();
log('status', { leader: st.leaderId !== undefined, nodes: st.nodes.map((n) => [n.id, n.alive]) });
const crashed = st.leaderId;
await cluster.crash(crashed);
log('crashed alive', (await cluster.status()).nodes.find((n) => n.id === crashed).alive);
await kv.put('after-crash', 'x');
await cluster.restart(crashed);
log('restarted reads', text(await until('the restarted node to catch up', () =>
  kv.get('after-crash', { consistency: 'stale', nodeId: crashed }).catch(() => undefined))));

await cluster.partition([1], [2, 3]);
await kv.put('during-partition', 'y');
await cluster.heal();
log('get after heal', text(await kv.get('during-partition')));

st = await until('a leader', async () => { const s = await cluster.status(); return s.leaderId === undefined ? undefined : s; });
const target = st.nodes.find((n) => n.alive && n.id !== st.leaderId).id;
await cluster.transferLeadership(target);
log('transferred', (await cluster.status()).leaderId === target);

const id = await cluster.addNode();
log('added', { id, nodes: (await cluster.status()).nodes.length });
await kv.put('after-add', 'z');
await cluster.removeNode(id);
log('removed', (await cluster.status()).nodes.some((n) => n.id === id));
log('get after remove', text(await kv.get('after-add')));

await cluster.close();
log('closed', true);
`;

describe('the package installed from its tarball', () => {
  let files: string[] = [];

  beforeAll(async () => {
    // A tarball of a stale build would test old code: every source must have its build.
    const stale = sourceFiles('src').filter((f) => {
      const built = join(ROOT, 'dist', f.replace(/\.ts$/, '.js'));
      return !existsSync(built) || statSync(built).mtimeMs < statSync(join(ROOT, f)).mtimeMs;
    });
    expect(stale, 'dist/ is older than these sources: run npm run build first').toEqual([]);

    const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT);
    expectSuccess(pack, 'npm pack');
    const [tarball] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
    files = tarball!.files.map((f) => f.path);

    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'ringraft-installed-check', version: '0.0.0', private: true, type: 'module' }, null, 2));
    writeFileSync(join(project, 'example.mjs'), EXAMPLE);
    // The library's example as a user would copy it: it imports ringraft/core and ringraft/storage.
    writeFileSync(join(project, 'raw-node.mjs'), readFileSync(join(ROOT, 'examples', 'raw-node.mjs')));
    writeFileSync(join(project, 'resolve.mjs'), SUBPATHS);
    const install = await run('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', join(work, tarball!.filename)], project, INSTALL_TIMEOUT_MS);
    expectSuccess(install, 'npm install');
  }, INSTALL_TIMEOUT_MS * 2);

  afterAll(() => {
    for (const pid of running) killGroup(pid);
    rmSync(work, { recursive: true, force: true });
  });

  it('ships the build of src/ and bin/, with the load harness and none of bench/', () => {
    expect(files).toContain('bin/ringraft.js');
    expect(files).toContain('dist/src/index.js');
    expect(files).toContain('dist/src/cli/main.js');
    expect(files).toContain('dist/src/load/index.js');
    expect(files).toContain('dist/src/load/load-worker.js');
    expect(files.filter((f) => !(f.startsWith('dist/src/') || f.startsWith('bin/') || ['package.json', 'README.md', 'LICENSE'].includes(f)))).toEqual([]);
  });

  it('installs as a copy of its own, with its runtime dependencies and none of the development ones', () => {
    expect(relative(ROOT, project).startsWith('..')).toBe(true);
    expect(lstatSync(installed).isDirectory()).toBe(true);
    expect(JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')).version).toBe(PACKAGE.version);
    expect(existsSync(join(installed, 'dist', 'bench'))).toBe(false);
    expect(realpathSync(join(project, 'node_modules', '.bin', 'ringraft'))).toBe(realpathSync(join(installed, 'bin', 'ringraft.js')));
    for (const name of Object.keys(PACKAGE.dependencies)) expect(existsSync(join(project, 'node_modules', name)), `dependency ${name}`).toBe(true);
    for (const name of Object.keys(PACKAGE.devDependencies)) expect(existsSync(join(project, 'node_modules', name)), `dev dependency ${name}`).toBe(false);
  });

  it('exports ringraft/core, ringraft/storage and ringraft/sim from the installed copy, with their types, and the RawNode example runs on them', async () => {
    for (const entry of ['lib-core', 'lib-storage', 'lib-sim']) {
      expect(files).toContain(`dist/src/${entry}.js`);
      expect(files).toContain(`dist/src/${entry}.d.ts`);
    }
    const resolved = await run(process.execPath, ['--no-addons', 'resolve.mjs'], project);
    expectSuccess(resolved, 'resolving the subpaths');
    expect(JSON.parse(resolved.stdout)).toEqual({
      'ringraft/core': { url: pathToFileURL(join(realpathSync(installed), 'dist', 'src', 'lib-core.js')).href, RawNode: 'function', decodeMessage: 'function', MessageType: 'object' },
      'ringraft/storage': { url: pathToFileURL(join(realpathSync(installed), 'dist', 'src', 'lib-storage.js')).href, MemoryStorage: 'function', WalStorage: 'function' },
      'ringraft/sim': { url: pathToFileURL(join(realpathSync(installed), 'dist', 'src', 'lib-sim.js')).href, simulateStateMachine: 'function' },
    });
    const r = await run(process.execPath, ['--no-addons', 'raw-node.mjs'], project);
    expectSuccess(r, 'the RawNode example');
    expect(r.stdout).toContain('every replica counted to 55');
  });

  it("runs the README's embedding example against the installed package, with no native addon", async () => {
    const r = await run(process.execPath, ['--no-addons', 'example.mjs', dataDir], project);
    expectSuccess(r, 'the example');
    const steps = new Map(r.stdout.trim().split('\n').map((line) => JSON.parse(line) as [string, unknown]));
    expect(steps.get('resolved')).toBe(pathToFileURL(join(realpathSync(installed), 'dist', 'src', 'index.js')).href);
    expect(Object.fromEntries([...steps].filter(([step]) => step !== 'resolved' && step !== 'added'))).toEqual({
      get: 'alice',
      'get lease': 'alice',
      'get stale': 'alice',
      'cas absent': true,
      'cas wrong': false,
      'cas present': true,
      'get n': '2',
      delete: true,
      'delete again': false,
      'get deleted': null,
      watch: [
        ['put', 'user:1', 'alice'],
        ['delete', 'user:1', null],
      ],
      status: { leader: true, nodes: [[1, true], [2, true], [3, true]] },
      'crashed alive': false,
      'restarted reads': 'x',
      'get after heal': 'y',
      transferred: true,
      removed: false,
      'get after remove': 'z',
      closed: true,
    });
    expect(steps.get('added')).toEqual({ id: 4, nodes: 4 });
  });

  it('answers --help for the bin and each command', async () => {
    const expected: [string[], string][] = [
      [['--help'], 'commands:'],
      [['sim', '--help'], 'ringraft sim --seed N'],
      [['wal', '--help'], 'ringraft wal verify DIR'],
      [['load', '--help'], 'ringraft load [options]'],
    ];
    for (const [args, usage] of expected) {
      const r = await ringraft(...args);
      expectSuccess(r, `ringraft ${args.join(' ')}`);
      expect(r.stdout).toContain(usage);
    }
  });

  it('runs a short load, a simulation and a WAL check from the installed bin', async () => {
    const load = await ringraft('load', '--duration', '1s', '--concurrency', '4', '--threads', '1', '--check', '--json');
    expectSuccess(load, 'ringraft load');
    const report = JSON.parse(load.stdout) as { ops: number; durationMs: number; linearizability: { result: string } };
    expect(report.durationMs).toBe(1000);
    expect(report.ops).toBeGreaterThan(0);
    expect(report.linearizability.result).toBe('ok');

    const sim = await ringraft('sim', '--seed', '1');
    expectSuccess(sim, 'ringraft sim --seed 1');
    expect(sim.stdout).toMatch(/^seed 1, 3 nodes: ok$/m);

    // The data directory the example left (the test before this one).
    expect(existsSync(dataDir)).toBe(true);
    const wal = await ringraft('wal', 'verify', dataDir, '--json');
    expectSuccess(wal, 'ringraft wal verify');
    const verified = JSON.parse(wal.stdout) as { ok: boolean; nodes: { node: string; ok: boolean }[] };
    expect(verified.ok).toBe(true);
    // node-4 too: the node the example added and removed left its directory.
    expect(verified.nodes.map((n) => [n.node, n.ok])).toEqual([
      ['node-1', true],
      ['node-2', true],
      ['node-3', true],
      ['node-4', true],
    ]);
  });
});
