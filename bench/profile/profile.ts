/**
 * `npm run profile -- <scenario> [--tool flame|doctor|cpu]...`: runs one `npm run bench`
 * scenario (short, `--quick`) under a profiler and says where the report is.
 *
 * - `flame` and `doctor` are clinic's (the main thread: the client side of the cluster).
 * - `cpu` is V8's own profiler in every thread (`--cpu-prof`), which is what sees the
 *   nodes' worker threads; it prints the hottest functions of each thread by self time.
 *
 * Default: all three. Reports go under .tmp/profile/<scenario>/.
 */

import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { scenarios } from '../../bench.config.ts';
import { hottestFunctions, type CpuProfile } from './cpu-profile.ts';

const USAGE = 'usage: npm run profile -- <scenario> [--tool flame|doctor|cpu]... [--top N]';
const TOOLS = ['flame', 'doctor', 'cpu'] as const;
type Tool = (typeof TOOLS)[number];

function run(command: string, args: readonly string[]): number {
  console.error(`$ ${command} ${args.join(' ')}`);
  // clinic asks on a terminal whether it may report usage, and otherwise stops without a
  // word; it also looks for updates over the network. Neither, here.
  const env = { ...process.env, NO_INSIGHT: '1', NO_UPDATE_NOTIFIER: '1' };
  const r = spawnSync(command, args, { stdio: 'inherit', env });
  return r.status ?? 1;
}

function main(): number {
  let parsed;
  try {
    parsed = parseArgs({ options: { tool: { type: 'string', multiple: true }, top: { type: 'string' }, help: { type: 'boolean' } }, allowPositionals: true });
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const [name] = parsed.positionals;
  if (parsed.values.help === true || name === undefined) {
    console.error(`${USAGE}\nscenarios: ${scenarios.map((s) => s.name).join(', ')}`);
    return name === undefined && parsed.values.help !== true ? 2 : 0;
  }
  if (!scenarios.some((s) => s.name === name)) {
    console.error(`unknown scenario '${name}'; known: ${scenarios.map((s) => s.name).join(', ')}`);
    return 2;
  }
  const tools = (parsed.values.tool ?? [...TOOLS]) as Tool[];
  for (const t of tools) {
    if (!TOOLS.includes(t)) {
      console.error(`unknown tool '${t}'; known: ${TOOLS.join(', ')}`);
      return 2;
    }
  }
  const top = Number(parsed.values.top ?? 3);
  const dir = resolve('.tmp', 'profile', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const bench = ['dist/bench/run.js', '--scenario', name, '--quick'];
  const clinic = resolve('node_modules', '.bin', 'clinic');
  let failed = 0;
  for (const tool of tools) {
    if (tool === 'cpu') {
      const cpuDir = join(dir, 'cpu');
      failed += run(process.execPath, ['--cpu-prof', '--cpu-prof-dir', cpuDir, ...bench]) === 0 ? 0 : 1;
      const files = readdirSync(cpuDir).filter((f) => f.endsWith('.cpuprofile')).sort();
      console.log(`\nV8 CPU profiles (one per thread) in ${cpuDir}; open them in Chrome DevTools. Hottest functions by self time:`);
      for (const f of files) {
        const hot = hottestFunctions(JSON.parse(readFileSync(join(cpuDir, f), 'utf8')) as CpuProfile, top);
        console.log(`  ${f}`);
        for (const h of hot) console.log(`    ${(h.share * 100).toFixed(1).padStart(5)}%  ${h.name}`);
      }
      continue;
    }
    const dest = join(dir, tool);
    failed += run(clinic, [tool, '--dest', dest, '--open=false', '--', process.execPath, ...bench]) === 0 ? 0 : 1;
    const html = readdirSync(dest, { withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.html'));
    if (html.length === 0) {
      console.error(`clinic ${tool} wrote no report under ${dest}`);
      failed++;
    } else {
      console.log(`\nclinic ${tool} report (the main thread; see the cpu tool for the nodes' threads): ${join(dest, html[0]!.name)}`);
    }
  }
  return failed === 0 ? 0 : 1;
}

process.exitCode = main();
