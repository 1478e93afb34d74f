/**
 * Which ordered index the key-value store should keep beside its `Map` (issue 12's ranges),
 * measured against the apply budget (0.5 µs of CPU per put per replica for the whole state
 * machine): the CPU cost per operation of `sorted-btree`'s B+ tree keyed by the store's
 * latin1 key strings (one char per byte, so `<` is byte order), beside the `Map` operations
 * the store does today, in the same run.
 *
 * Variants, each over a structure already holding `--keys` random 16-byte keys:
 * - `map update` / `map insert+delete`: today's apply (an overwrite; a new key then its removal);
 * - `btree update`: the tree as the only index, a put to an existing key;
 * - `btree insert+delete`: a new key in the tree, then its removal (what a Map-plus-tree store
 *   pays beyond the Map only when a key is created or deleted, never on an overwrite);
 * - `btree range 100`: 100 keys in order from a random key (a range read's walk).
 *
 * Rounds alternate the variants; each reports the median round's CPU ns per operation
 * (`process.cpuUsage()`, user + system).
 *
 * Measured 2026-12-03 (2-core AMD EPYC, Node.js 20.20.2, idle machine; 100,000 keys, 100,000
 * operations a round, 5 rounds), CPU ns per operation at 32 / 64 / 128 keys a node:
 *
 * | variant             |     32 |     64 |    128 |
 * | ------------------- | -----: | -----: | -----: |
 * | map update          |    451 |    562 |    562 |
 * | map insert+delete   |    694 |    687 |    717 |
 * | btree update        |  1,387 |  1,129 |  1,252 |
 * | btree insert+delete |  4,632 |  3,422 |  5,187 |
 * | btree range 100     | 26,176 |  8,821 | 34,818 |
 *
 * So the store keeps a Map for point operations and touches the tree (64 keys a node) only
 * when a key is created or deleted: an overwrite, the common put, costs nothing more, and a
 * new key some 1.4 µs more than the Map alone (half the pair). kv-apply.bench.ts measures
 * the whole apply before and after: within its noise (about 3 µs a put either way).
 *
 *     npm run build && node dist/bench/micro/ordered-index.bench.js [--keys N] [--rounds N] [--ops N] [--node-size N]
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { cpuNsPerOp, median } from './cpu.ts';
import { createRequire } from 'node:module';
import type SortedBtree from 'sorted-btree';

/**
 * The package is CommonJS with the class as `exports.default`. Required, not imported: an
 * ESM import's default is the whole `exports` under Node.js but the class itself under some
 * loaders (vitest's), and `require` gives `exports` under all of them.
 */
const BTree = (createRequire(import.meta.url)('sorted-btree') as typeof SortedBtree).default;
type BTree<K, V> = InstanceType<typeof BTree<K, V>>;

type Entry = { readonly key: string; value: number };

const byteOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function keys(count: number): string[] {
  const bytes = randomBytes(16 * count);
  return Array.from({ length: count }, (_, i) => bytes.toString('latin1', 16 * i, 16 * i + 16));
}

function main(): void {
  const { values } = parseArgs({ options: { keys: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '5' }, ops: { type: 'string', default: '200000' }, 'node-size': { type: 'string', default: '64' } } });
  const n = Number(values.keys);
  const rounds = Number(values.rounds);
  const ops = Number(values.ops);
  const nodeSize = Number(values['node-size']);
  if (![n, rounds, ops, nodeSize].every((x) => Number.isInteger(x) && x >= 1) || nodeSize < 4) {
    console.error('usage: node dist/bench/micro/ordered-index.bench.js [--keys N>=1] [--rounds N>=1] [--ops N>=1] [--node-size N>=4]');
    process.exitCode = 2;
    return;
  }
  const present = keys(n);
  const fresh = keys(ops);
  const map = new Map<string, Entry>();
  const tree: BTree<string, Entry> = new BTree<string, Entry>(undefined, byteOrder, nodeSize);
  for (const k of present) {
    const e = { key: k, value: 0 };
    map.set(k, e);
    tree.set(k, e);
  }
  let sink = 0;
  const variants: Record<string, () => number> = {
    'map update': () => cpuNsPerOp(ops, () => {
      for (let i = 0; i < ops; i++) {
        const k = present[(i * 7919) % n]!;
        map.set(k, { key: k, value: i });
      }
    }),
    'map insert+delete': () => cpuNsPerOp(ops, () => {
      for (let i = 0; i < ops; i++) map.set(fresh[i]!, { key: fresh[i]!, value: i });
      for (let i = 0; i < ops; i++) map.delete(fresh[i]!);
    }),
    'btree update': () => cpuNsPerOp(ops, () => {
      for (let i = 0; i < ops; i++) {
        const k = present[(i * 7919) % n]!;
        tree.set(k, { key: k, value: i });
      }
    }),
    'btree insert+delete': () => cpuNsPerOp(ops, () => {
      for (let i = 0; i < ops; i++) tree.set(fresh[i]!, { key: fresh[i]!, value: i });
      for (let i = 0; i < ops; i++) tree.delete(fresh[i]!);
    }),
    'btree range 100': () => {
      const scans = Math.max(1, Math.floor(ops / 100));
      return cpuNsPerOp(scans, () => {
        for (let i = 0; i < scans; i++) {
          let taken = 0;
          for (const [, e] of tree.entries(present[(i * 104_729) % n]!)) {
            sink += e.value;
            if (++taken === 100) break;
          }
        }
      });
    },
  };
  const results = new Map<string, number[]>(Object.keys(variants).map((v) => [v, []]));
  for (const run of Object.values(variants)) run(); // warm-up
  for (let r = 0; r < rounds; r++) for (const [name, run] of Object.entries(variants)) results.get(name)!.push(run());
  console.log(`ordered index: ${n.toLocaleString('en-US')} keys of 16 random bytes, ${nodeSize} keys a node, ${ops.toLocaleString('en-US')} operations a round, median of ${rounds} rounds (CPU ns per operation; insert+delete counts the pair as one)`);
  for (const [name, xs] of results) console.log(`  ${name.padEnd(20)} ${Math.round(median(xs)).toLocaleString('en-US').padStart(8)} ns${name === 'btree range 100' ? ' per 100-key walk' : ''}`);
  if (sink === -1) console.log(sink);
}

main();
