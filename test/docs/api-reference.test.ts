// `npm run docs` builds the API reference of the package's four entry points with TypeDoc
// (tools/docs, installed there on first use), and passes only when every exported name and
// member has a doc comment and no comment links to what the reference leaves out: this runs it
// into a temporary folder and reads what it made. The entry points say which are experimental.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const out = mkdtempSync(join(tmpdir(), 'ringraft-api-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('npm run docs', () => {
  it('is configured to fail on an undocumented export, member or a broken link', () => {
    const config = JSON.parse(readFileSync(join(ROOT, 'tools/docs/typedoc.json'), 'utf8')) as Record<string, unknown>;
    expect(config.treatWarningsAsErrors).toBe(true);
    expect(config.validation).toMatchObject({ notDocumented: true, invalidLink: true });
    expect(config.requiredToBeDocumented).toEqual(expect.arrayContaining(['Variable', 'Function', 'Class', 'Interface', 'TypeAlias', 'Method', 'Property', 'Accessor']));
    const exports = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { default: string }> }).exports;
    // Every entry point of the package, and no other, is in the reference.
    const entries = (config.entryPoints as string[]).map((p) => p.replace('../../src/', '')).sort();
    expect(entries).toEqual(Object.values(exports).map((e) => e.default.replace('./dist/src/', '').replace(/\.js$/, '.ts')).sort());
  });

  it('builds the reference of every entry point, each with its stability', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'tools/docs/run.mjs'), '--out', out], { cwd: ROOT, encoding: 'utf8', timeout: 240_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(/\[warning\]|\[error\]/);
    const modules = readdirSync(join(out, 'modules'));
    expect(modules.length).toBe(4);
    const page = (name: string): string => readFileSync(join(out, 'modules', modules.find((m) => m.replace(/\.html$/, '') === name)!), 'utf8');
    for (const [module, names] of [
      ['ringraft', ['createCluster', 'KvClient', 'StateMachine', 'connect', 'createNode']],
      ['ringraft_core', ['RawNode', 'decodeMessage', 'MessageType']],
      ['ringraft_storage', ['WalStorage', 'MemoryStorage']],
      ['ringraft_sim', ['simulateStateMachine']],
    ] as const) {
      expect(modules.map((m) => m.replace(/\.html$/, ''))).toContain(module);
      for (const name of names) expect(page(module), `${module} lists ${name}`).toContain(`>${name}<`);
    }
    for (const module of ['ringraft_core', 'ringraft_storage', 'ringraft_sim']) expect(page(module), `${module} is marked experimental`).toMatch(/Experimental/);
    expect(page('ringraft')).not.toMatch(/Experimental/);
    expect(existsSync(join(out, 'index.html'))).toBe(true);
  });
});
