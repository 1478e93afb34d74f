/**
 * What the key-value state machine's apply costs per put, beside a bare `Map.set` loop in the
 * same run (issue 13's apply budget: 0.5 µs of CPU per put per replica, with sessions,
 * revisions, the ordered index and the watch history intact).
 *
 * - `overwrite`: puts cycling over `--keys` existing keys (the cluster benchmarks' pattern),
 *   in batch entries of 64 requests as the leader proposes them, the watch history kept as a
 *   node keeps it (nobody watching);
 * - `overwrite, one per entry`: the same puts, one request per entry (decoded whole: the
 *   path of every request but a plain put in a batch);
 * - `create+delete`: each put makes a new key and a delete removes it (what the ordered index
 *   costs beyond the Map: only these touch it), in batches;
 * - `bare Map.set`: `Map.set(latin1 key string, { key, value })` for the same keys, no decoding.
 *
 * Requests are encoded before the clock starts, into one buffer per round (16-byte keys,
 * 128-byte values, 1,000 client sessions taking turns). CPU ns per operation
 * (`process.cpuUsage()`, every thread of the process, so the collector's threads too),
 * rounds alternating, median round reported.
 *
 *     npm run build && node dist/bench/micro/kv-apply.bench.js [--keys N] [--ops N] [--rounds N]
 */
import { parseArgs } from 'node:util';
import { cpuNsPerOp, median } from './cpu.ts';
import { ByteWriter } from '../../src/codec/index.ts';
import { encodedKvRequestBytes, encodeKvRequest, KV_BATCH_FORMAT_VERSION, KV_BATCH_HEADER_BYTES, KvStateMachine, writeKvRequest, type KvCommand, type KvRequest } from '../../src/kv/index.ts';
import { WatchHistory } from '../../src/runtime/watch-history.ts';

/** Requests per batch entry: what a leader under load proposes per entry, near enough. */
const BATCH_REQUESTS = 64;

function key(i: number): Uint8Array {
  return new TextEncoder().encode(`k${String(i).padStart(15, '0')}`);
}

/** `requests` as batch entries of BATCH_REQUESTS each, all in one buffer. */
function batches(requests: readonly KvRequest[]): Uint8Array[] {
  let total = 0;
  for (let i = 0; i < requests.length; i += BATCH_REQUESTS) total += KV_BATCH_HEADER_BYTES;
  for (const r of requests) total += 4 + encodedKvRequestBytes(r.command);
  const w = new ByteWriter(total);
  const out: Uint8Array[] = [];
  for (let i = 0; i < requests.length; i += BATCH_REQUESTS) {
    const start = w.offset;
    const group = requests.slice(i, i + BATCH_REQUESTS);
    w.u8(KV_BATCH_FORMAT_VERSION);
    w.u32(group.length);
    for (const r of group) {
      w.u32(encodedKvRequestBytes(r.command));
      writeKvRequest(w, r);
    }
    out.push(w.finish().subarray(start, w.offset));
  }
  return out;
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
  // The node's history bounds (runtime/settings.ts defaults), kept whether or not anyone watches.
  const history = new WatchHistory(0, 100_000, 64 << 20);
  machine.setChangeSink(history);
  let client = 1;
  let index = 0;
  for (let i = 0; i < keys; i++) machine.apply(++index, encodeKvRequest({ clientId: 1_000_000 + client++, seq: 1, command: { op: 'put', key: key(i), value } }));
  // 1,000 clients take turns (sessions kept, not new); seqs grow round after round, since a
  // repeated seq would be a duplicate, not an apply.
  const request = (i: number, seq: number, command: KvCommand): KvRequest => ({ clientId: 1 + (i % 1000), seq, command });
  const keyBytes = Array.from({ length: keys }, (_, i) => key(i));
  const bareKeys = Array.from({ length: ops }, (_, i) => String.fromCharCode(...keyBytes[i % keys]!));
  const bare = new Map<string, { key: string; value: Uint8Array }>();
  let seqBase = 1;
  let total = 0;
  const counterCommand = Uint8Array.of(0, 0, 0, 1);
  const appMachine = new KvStateMachine({
    app: () => ({
      apply: (c) => {
        total += c[3]!;
        return undefined;
      },
      query: () => undefined,
      snapshot: () => new Uint8Array(0),
      restore: () => {},
    }),
  });
  let appIndex = 0;
  const nextSeqs = (perClient: number): number => {
    const base = seqBase;
    seqBase += perClient * Math.ceil(ops / 1000);
    return base;
  };
  const variants: Record<string, () => number> = {
    overwrite: () => {
      const base = nextSeqs(1);
      const entries = batches(Array.from({ length: ops }, (_, i) => request(i, 1 + base + Math.floor(i / 1000), { op: 'put', key: keyBytes[i % keys]!, value })));
      return cpuNsPerOp(ops, () => {
        for (const e of entries) machine.applyBatch(++index, e);
      });
    },
    'overwrite, one per entry': () => {
      const base = nextSeqs(1);
      const entries = Array.from({ length: ops }, (_, i) => encodeKvRequest(request(i, 1 + base + Math.floor(i / 1000), { op: 'put', key: keyBytes[i % keys]!, value })));
      return cpuNsPerOp(ops, () => {
        for (const e of entries) machine.apply(++index, e);
      });
    },
    'create+delete': () => {
      const base = nextSeqs(2);
      const requests: KvRequest[] = [];
      for (let i = 0; i < ops; i++) {
        const k = key(keys + i);
        requests.push(request(i, 1 + base + 2 * Math.floor(i / 1000), { op: 'put', key: k, value }));
        requests.push(request(i, 2 + base + 2 * Math.floor(i / 1000), { op: 'delete', key: k }));
      }
      // A put and its delete in one batch: the delete follows its put in the same entry or the next.
      const entries = batches(requests);
      return cpuNsPerOp(ops, () => {
        for (const e of entries) machine.applyBatch(++index, e);
      });
    },
    // A command of the cluster's own state machine (kv/app-machine.ts), a counter, in the same
    // batches: what its path costs beside the store's own put.
    'app command': () => {
      const base = nextSeqs(1);
      const entries = batches(Array.from({ length: ops }, (_, i) => request(i, 1 + base + Math.floor(i / 1000), { op: 'app', data: counterCommand })));
      return cpuNsPerOp(ops, () => {
        for (const e of entries) appMachine.applyBatch(++appIndex, e);
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
