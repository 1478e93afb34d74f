/**
 * What the key-value state machine's apply costs per put, beside a bare `Map.set` loop in the
 * same run (issue 13's apply budget: 0.5 µs of CPU per put per replica, with sessions,
 * revisions and the ordered index intact).
 *
 * - `overwrite`: puts cycling over `--keys` existing keys (the cluster benchmarks' pattern);
 * - `create+delete`: each put makes a new key and a delete removes it (what the ordered index
 *   costs beyond the Map: only these touch it);
 * - `bare Map.set`: `Map.set(latin1 key string, { key, value })` for the same keys, no decoding.
 *
 * Requests are encoded before the clock starts (16-byte keys, 128-byte values, a client
 * session each, as a batch of one). CPU ns per operation (`process.cpuUsage()`), rounds
 * alternating, median round reported.
 *
 *     npm run build && node dist/bench/micro/kv-apply.bench.js [--keys N] [--ops N] [--rounds N]
 */
import { parseArgs } from 'node:util';
import { cpuNsPerOp, median } from './cpu.ts';
import { encodeKvRequest, KvStateMachine, type KvCommand } from '../../src/kv/index.ts';

function key(i: number): Uint8Array {
  return new TextEncoder().encode(`k${String(i).padStart(15, '0')}`);
}

function main(): void {
  const { values } = parseArgs({ options: { keys: { type: 'string', default: '10000' }, ops: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '5' } } });
  const keys = Number(values.keys);
  const ops = Number(values.ops);
  const rounds = Number(values.rounds);
  if (![keys, ops, rounds].every((x) => Number.isInteger(x) && x >= 1)) {
    console.error('usage: node dist/bench/micro/kv-apply.bench.js [--keys N>=1] [--ops N>=1] [--rounds N>=1]');
    process.exitCode = 2;
    return;
  }
  const value = new Uint8Array(128).fill(7);
  const machine = new KvStateMachine();
  let client = 1;
  let index = 0;
  for (let i = 0; i < keys; i++) machine.apply(++index, encodeKvRequest({ clientId: 1_000_000 + client++, seq: 1, command: { op: 'put', key: key(i), value } }));
  // 1,000 clients take turns (sessions kept, not new); seqs grow round after round, since a
  // repeated seq would be a duplicate, not an apply.
  const request = (i: number, seq: number, command: KvCommand): Uint8Array =>
    encodeKvRequest({ clientId: 1 + (i % 1000), seq, command });
  const bareKeys = Array.from({ length: ops }, (_, i) => String.fromCharCode(...key(i % keys)));
  const bare = new Map<string, { key: string; value: Uint8Array }>();
  let seqBase = 1;
  const variants: Record<string, () => number> = {
    overwrite: () => {
      const batch = Array.from({ length: ops }, (_, i) => request(i, 1 + seqBase + Math.floor(i / 1000), { op: 'put', key: key(i % keys), value }));
      seqBase += Math.ceil(ops / 1000);
      return cpuNsPerOp(ops, () => {
        for (const r of batch) machine.apply(++index, r);
      });
    },
    'create+delete': () => {
      const made = Array.from({ length: ops }, (_, i) => request(i, 1 + seqBase + 2 * Math.floor(i / 1000), { op: 'put', key: key(keys + i), value }));
      const gone = Array.from({ length: ops }, (_, i) => request(i, 2 + seqBase + 2 * Math.floor(i / 1000), { op: 'delete', key: key(keys + i) }));
      seqBase += 2 * Math.ceil(ops / 1000);
      return cpuNsPerOp(ops, () => {
        for (let i = 0; i < ops; i++) {
          machine.apply(++index, made[i]!);
          machine.apply(++index, gone[i]!);
        }
      });
    },
    'bare Map.set': () =>
      cpuNsPerOp(ops, () => {
        for (let i = 0; i < ops; i++) bare.set(bareKeys[i]!, { key: bareKeys[i]!, value });
      }),
  };
  const results = new Map<string, number[]>(Object.keys(variants).map((v) => [v, []]));
  for (const run of Object.values(variants)) run(); // warm-up
  for (let r = 0; r < rounds; r++) for (const [name, run] of Object.entries(variants)) results.get(name)!.push(run());
  console.log(`kv apply: ${keys.toLocaleString('en-US')} keys, ${ops.toLocaleString('en-US')} operations a round, median of ${rounds} rounds (CPU ns per put; create+delete counts the pair)`);
  for (const [name, xs] of results) console.log(`  ${name.padEnd(14)} ${Math.round(median(xs)).toLocaleString('en-US').padStart(7)} ns`);
}

main();
