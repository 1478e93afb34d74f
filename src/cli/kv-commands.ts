/**
 * The commands that talk to a running cluster over the network (an etcdctl for ringraft):
 * `put`, `get`, `del`, `cas`, `txn`, `lease`, `watch`, `status`, `move-leader`, `member`. Each connects to the
 * endpoints (`--endpoints` or RINGRAFT_ENDPOINTS, `HOST:PORT,...` of the nodes' client ports)
 * with the cluster's token (`--cluster-token` or RINGRAFT_CLUSTER_TOKEN), does one thing,
 * prints it (`-w table`, the default, for people; `-w json`, one JSON object per line, for
 * scripts) and exits: 0 done; 1 refused or failed (a typed error, one line on stderr: a
 * timeout, no reachable node, a cas that did not swap); 2 a bad command line.
 *
 * Keys and values are taken and printed as UTF-8; in JSON a value that is not valid UTF-8 is
 * printed in base64 with `"encoding": "base64"`.
 */
import { performance } from 'node:perf_hooks';
import { ErrorCode, RingraftError } from '../base/index.ts';
import { adminCall, connect, parseEndpoint, type NetworkClient, type TlsFiles, type TxnSpec } from '../client/index.ts';
import { parseArgs, UsageError, type Output } from './args.ts';
import { parseDurationMs } from './load-command.ts';

export const KV_USAGE = `ringraft put KEY VALUE [--lease ID]     write KEY (attached to lease ID: deleted when it ends)
ringraft get KEY [--consistency linearizable|lease|stale]
ringraft get KEY [END] [--prefix] [--limit N] [--keys-only] [--count-only] [--reverse]
                                        a range in byte order: the keys from KEY up to before
                                        END ('' for no end), or those under KEY with --prefix;
                                        one line per key (KEY VALUE), then a count if more are left
ringraft del KEY                        prints 1 if KEY existed, else 0
ringraft del KEY [END] [--prefix]       delete a range (as get's) in one entry; prints the count
ringraft cas KEY EXPECTED NEXT [--absent]   swap if KEY holds EXPECTED (--absent: if it has
                                        no value; then give no EXPECTED); exit 1 if not swapped
ringraft txn JSON                       a transaction, { "if": [...], "then": [...], "else": [...] }
                                        as KvClient.txn takes it (keys and values as strings; '-'
                                        reads it from stdin); prints SUCCEEDED or FAILED, then one
                                        line per result
ringraft lease grant TTL_MS             prints the new lease's id
ringraft lease revoke ID                end lease ID now; prints how many keys it deleted
ringraft lease ttl ID                   the lease's TTL, the time it has left, and its keys
ringraft lease keep-alive ID [--count N]   renew every third of its TTL (N times, or until
                                        interrupted); one line per renewal
ringraft watch PREFIX [--after-index N] [--count N]   print changes under PREFIX ('' for all)
ringraft status                         every member: id, role, term, commit, applied, leader
ringraft move-leader ID                 ask the leader to hand leadership to node ID
ringraft member list                    every member: id, peer address, voter or learner
ringraft member add ID HOST:PORT        add node ID (start it first with --join; it joins as a
                                        learner and becomes a voter once it has caught up)
ringraft member remove ID               remove node ID from the cluster
  common: --endpoints HOST:PORT,...  (or RINGRAFT_ENDPOINTS)
          --cluster-token TOKEN      (or RINGRAFT_CLUSTER_TOKEN)
          -w table|json  output (default table); --timeout-ms N (default 5000)
          --tls-ca FILE [--tls-cert FILE --tls-key FILE]  TLS to the nodes (or RINGRAFT_TLS_CA,
                                     RINGRAFT_TLS_CERT, RINGRAFT_TLS_KEY)
  exit codes: 0 done; 1 refused or failed; 2 a bad command line`;

const KV_COMMANDS = ['put', 'get', 'del', 'cas', 'txn', 'lease', 'watch', 'status', 'move-leader', 'member'] as const;
export type KvCommandName = (typeof KV_COMMANDS)[number];

export function isKvCommand(name: string | undefined): name is KvCommandName {
  return (KV_COMMANDS as readonly (string | undefined)[]).includes(name);
}

/** Positional arguments each command takes. */
const ARITY: Record<KvCommandName, readonly number[]> = { put: [2], get: [1, 2], del: [1, 2], cas: [2, 3], txn: [1], lease: [2], watch: [1], status: [0], 'move-leader': [1], member: [1, 2, 3] };

interface Common {
  readonly endpoints: readonly string[];
  readonly clusterToken: string;
  readonly json: boolean;
  readonly timeoutMs: number;
  readonly tls: TlsFiles | undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export async function kvCommand(name: KvCommandName, argv: readonly string[], out: Output, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const args = parseArgs(
    argv.map((a) => (a === '-w' ? '--write-out' : a)),
    { flags: ['absent', 'prefix', 'keys-only', 'count-only', 'reverse'], values: ['endpoints', 'cluster-token', 'write-out', 'timeout-ms', 'consistency', 'after-index', 'count', 'limit', 'lease', 'tls-ca', 'tls-cert', 'tls-key'] },
  );
  const p = args.positional;
  if (!ARITY[name].includes(p.length)) throw new UsageError(`${name} takes ${ARITY[name].join(' or ')} arguments, got ${p.length}`);
  const common = commonOptions(args.values, env);
  const print = (table: string, json: object): void => out.stdout(common.json ? JSON.stringify(json) : table);
  if (name === 'status' || name === 'move-leader') return adminCommand(name, p, common, out, print);
  if (name === 'member') return memberCommand(p, common, out, print);
  const client = await connect({ endpoints: common.endpoints, clusterToken: common.clusterToken, client: { requestTimeoutMs: common.timeoutMs }, ...(common.tls === undefined ? {} : { tls: common.tls }) });
  try {
    return await run(name, p, args, client, out, print);
  } finally {
    await client.close();
  }
}

async function run(
  name: KvCommandName,
  p: readonly string[],
  args: ReturnType<typeof parseArgs>,
  client: NetworkClient,
  out: Output,
  print: (table: string, json: object) => void,
): Promise<number> {
  const key = p[0]!;
  switch (name) {
    case 'put': {
      const leaseText = args.values.get('lease');
      const lease = leaseText === undefined ? undefined : nonNegativeInt(leaseText, 'lease');
      await client.put(key, p[1]!, lease === undefined ? {} : { lease });
      print('OK', { op: 'put', key, ok: true, ...(lease === undefined ? {} : { lease }) });
      return 0;
    }
    case 'txn':
      return txnCommand(key === '-' ? await readStdin() : key, client, print);
    case 'lease':
      return leaseCommand(key, p[1]!, args, client, print);
    case 'get': {
      const consistency = choice(args.values.get('consistency') ?? 'linearizable', ['linearizable', 'lease', 'stale'] as const, 'consistency');
      const ranged = p.length === 2 || ['prefix', 'keys-only', 'count-only', 'reverse'].some((f) => args.flags.has(f)) || args.values.has('limit');
      if (ranged) return rangeCommand(key, p[1], args, consistency, client, print);
      const value = await client.get(key, { consistency });
      if (value === undefined) print('', { op: 'get', key, found: false });
      else print(textOf(value) ?? Buffer.from(value).toString('base64'), { op: 'get', key, found: true, ...valueJson(value) });
      return 0;
    }
    case 'del': {
      if (p.length === 2 || args.flags.has('prefix')) {
        if (args.flags.has('prefix') && p.length === 2) throw new UsageError('del --prefix takes KEY only, not an END');
        const spec = args.flags.has('prefix') ? { prefix: key } : { start: key, ...(p[1] === '' ? {} : { end: p[1]! }) };
        const deleted = await client.deleteRange(spec);
        print(String(deleted), { op: 'del', ...spec, deleted });
        return 0;
      }
      const existed = await client.delete(key);
      print(existed ? '1' : '0', { op: 'del', key, deleted: existed ? 1 : 0 });
      return 0;
    }
    case 'cas': {
      const absent = args.flags.has('absent');
      if (absent !== (p.length === 2)) throw new UsageError(absent ? 'cas --absent takes KEY NEXT' : 'cas takes KEY EXPECTED NEXT (or --absent KEY NEXT)');
      const expected = absent ? undefined : p[1]!;
      const next = p[p.length - 1]!;
      const swapped = await client.cas(key, expected, next);
      print(swapped ? 'OK' : 'NOT SWAPPED', { op: 'cas', key, swapped });
      if (!swapped) out.stderr(`ringraft: cas: ${key} did not hold ${absent ? 'no value' : JSON.stringify(expected)}; nothing written`);
      return swapped ? 0 : 1;
    }
    case 'watch': {
      const afterText = args.values.get('after-index');
      const afterIndex = afterText === undefined ? undefined : nonNegativeInt(afterText, 'after-index');
      const countText = args.values.get('count');
      const count = countText === undefined ? Number.POSITIVE_INFINITY : nonNegativeInt(countText, 'count');
      let seen = 0;
      if (count === 0) return 0;
      for await (const e of client.watch(key, afterIndex === undefined ? {} : { afterIndex })) {
        const k = textOf(e.key) ?? Buffer.from(e.key).toString('base64');
        const table = e.value === undefined ? `${e.index} DELETE ${k}` : `${e.index} PUT ${k} ${textOf(e.value) ?? Buffer.from(e.value).toString('base64')}`;
        print(table, { op: 'watch', type: e.value === undefined ? 'delete' : 'put', index: e.index, key: k, ...(e.value === undefined ? {} : valueJson(e.value)), createIndex: e.createIndex, version: e.version });
        if (++seen >= count) break;
      }
      return 0;
    }
    default:
      throw new UsageError(`unknown command ${name}`);
  }
}

/** `txn JSON`: the transaction as KvClient.txn takes it; SUCCEEDED or FAILED, then a line per result. */
async function txnCommand(json: string, client: NetworkClient, print: (table: string, json: object) => void): Promise<number> {
  let spec: unknown;
  try {
    spec = JSON.parse(json);
  } catch (error) {
    throw new UsageError(`txn takes a JSON object: ${(error as Error).message}`);
  }
  const r = await client.txn(spec as TxnSpec);
  const shown = (b: Uint8Array): string => textOf(b) ?? Buffer.from(b).toString('base64');
  const lines = r.results.map((x): string => {
    switch (x.op) {
      case 'put':
        return 'put OK';
      case 'delete':
        return `delete ${x.existed ? 1 : 0}`;
      case 'deleteRange':
        return `deleteRange ${x.deleted}`;
      case 'get':
        return x.entry === undefined ? (x.truncated ? 'get (truncated)' : 'get (absent)') : `get ${shown(x.entry.value)}`;
      case 'range':
        return [`range ${x.result.entries.length} of ${x.result.count}${x.result.more ? '; more' : ''}`, ...x.result.entries.map((e) => `  ${shown(e.key)} ${e.value === undefined ? '' : shown(e.value)}`.trimEnd())].join('\n');
    }
  });
  const results = r.results.map((x) => {
    if (x.op === 'get') return { op: 'get', found: x.entry !== undefined, truncated: x.truncated, ...(x.entry === undefined ? {} : { ...valueJson(x.entry.value), createIndex: x.entry.createIndex, modIndex: x.entry.modIndex, version: x.entry.version }) };
    if (x.op === 'range') return { op: 'range', count: x.result.count, more: x.result.more, entries: x.result.entries.map((e) => ({ key: shown(e.key), ...(e.value === undefined ? {} : valueJson(e.value)), createIndex: e.createIndex, modIndex: e.modIndex, version: e.version })) };
    return x;
  });
  print([r.succeeded ? 'SUCCEEDED' : 'FAILED', ...lines].join('\n'), { op: 'txn', succeeded: r.succeeded, index: r.index, results });
  return 0;
}

/** `lease grant|revoke|ttl|keep-alive`. */
async function leaseCommand(sub: string, arg: string, args: ReturnType<typeof parseArgs>, client: NetworkClient, print: (table: string, json: object) => void): Promise<number> {
  const n = nonNegativeInt(arg, sub === 'grant' ? 'TTL_MS' : 'ID');
  switch (sub) {
    case 'grant': {
      const { id, ttlMs } = await client.grantLease(n);
      print(String(id), { op: 'lease-grant', id, ttlMs });
      return 0;
    }
    case 'revoke': {
      const deleted = await client.revokeLease(n);
      print(String(deleted), { op: 'lease-revoke', id: n, deleted });
      return 0;
    }
    case 'ttl': {
      const s = await client.leaseTimeToLive(n);
      print(`lease ${s.id}: ttl ${s.ttlMs} ms, ${s.remainingMs} ms left, ${s.keys} keys`, { op: 'lease-ttl', ...s });
      return 0;
    }
    case 'keep-alive': {
      const countText = args.values.get('count');
      const count = countText === undefined ? Number.POSITIVE_INFINITY : nonNegativeInt(countText, 'count');
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      process.once('SIGINT', onSignal);
      try {
        for (let i = 0; i < count && !stop.signal.aborted; i++) {
          const s = await client.keepAlive(n);
          print(`lease ${s.id}: renewed, ${s.remainingMs} ms left`, { op: 'lease-keep-alive', ...s });
          if (i + 1 < count) await abortableSleep(s.ttlMs / 3, stop.signal);
        }
      } finally {
        process.off('SIGINT', onSignal);
      }
      return 0;
    }
    default:
      throw new UsageError(`lease takes grant TTL_MS, revoke ID, ttl ID or keep-alive ID, got ${JSON.stringify(sub)}`);
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** `get` of a range: one line per key, or one JSON object for the page. */
async function rangeCommand(
  key: string,
  end: string | undefined,
  args: ReturnType<typeof parseArgs>,
  consistency: 'linearizable' | 'lease' | 'stale',
  client: NetworkClient,
  print: (table: string, json: object) => void,
): Promise<number> {
  const prefix = args.flags.has('prefix');
  if (prefix && end !== undefined) throw new UsageError('get --prefix takes KEY only, not an END');
  const limitText = args.values.get('limit');
  const limit = limitText === undefined ? undefined : nonNegativeInt(limitText, 'limit');
  if (limit === 0) throw new UsageError('--limit takes a count of at least 1');
  const spec = prefix ? { prefix: key } : { start: key, ...(end === undefined || end === '' ? {} : { end }) };
  const r = await client.range(spec, {
    consistency,
    ...(limit === undefined ? {} : { limit }),
    ...(args.flags.has('keys-only') ? { keysOnly: true } : {}),
    ...(args.flags.has('count-only') ? { countOnly: true } : {}),
    ...(args.flags.has('reverse') ? { reverse: true } : {}),
  });
  const shownText = (b: Uint8Array): string => textOf(b) ?? Buffer.from(b).toString('base64');
  const lines = r.entries.map((e) => (e.value === undefined ? shownText(e.key) : `${shownText(e.key)} ${shownText(e.value)}`));
  if (args.flags.has('count-only')) lines.push(String(r.count));
  else if (r.more) lines.push(`(${r.entries.length} of ${r.count}; more)`);
  print(lines.join('\n'), {
    op: 'range',
    index: r.index,
    count: r.count,
    more: r.more,
    entries: r.entries.map((e) => ({ key: shownText(e.key), ...(e.value === undefined ? {} : valueJson(e.value)), createIndex: e.createIndex, modIndex: e.modIndex, version: e.version })),
  });
  return 0;
}

/** `status` and `move-leader`: admin commands to each endpoint (server/admin.ts). */
async function adminCommand(name: 'status' | 'move-leader', p: readonly string[], common: Common, out: Output, print: (table: string, json: object) => void): Promise<number> {
  if (name === 'move-leader') {
    const target = nonNegativeInt(p[0]!, 'ID');
    if (target === 0) throw new UsageError('move-leader takes a node id >= 1');
    const statuses = await allStatuses(common);
    const leader = statuses.find((s) => s.status?.role === 'leader');
    if (leader === undefined) throw new RingraftError(ErrorCode.UNAVAILABLE, 'no reachable node leads now; try again');
    if (leader.status!.id === target) {
      print(`node ${target} leads already`, { op: 'move-leader', target, leader: target });
      return 0;
    }
    await adminCall(leader.endpoint, common.clusterToken, { op: 'transfer-leadership', target }, common.timeoutMs, common.tls);
    const deadline = performance.now() + common.timeoutMs;
    for (;;) {
      const now = (await allStatuses(common)).find((s) => s.status?.role === 'leader');
      if (now?.status?.id === target) {
        print(`node ${target} leads now`, { op: 'move-leader', target, leader: target });
        return 0;
      }
      if (performance.now() > deadline) throw new RingraftError(ErrorCode.TIMEOUT, `node ${target} did not take over within ${common.timeoutMs} ms (leader now: ${now?.status?.id ?? 'none'})`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const statuses = await allStatuses(common);
  if (common.json) {
    for (const s of statuses) out.stdout(JSON.stringify({ endpoint: s.endpoint, ...(s.status === undefined ? { error: s.error } : s.status) }));
  } else {
    const rows = [['endpoint', 'id', 'role', 'term', 'commit', 'applied', 'leader'], ...statuses.map((s) => (s.status === undefined ? [s.endpoint, '-', `unreachable: ${s.error}`, '', '', '', ''] : [s.endpoint, String(s.status.id), s.status.role, String(s.status.term), String(s.status.commitIndex), String(s.status.appliedIndex), String(s.status.leaderId)]))];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) out.stdout(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  }
  return statuses.some((s) => s.status !== undefined) ? 0 : 1;
}

/** `member list|add|remove`: admin commands to the leader (server/admin.ts). */
async function memberCommand(p: readonly string[], common: Common, out: Output, print: (table: string, json: object) => void): Promise<number> {
  const [sub, ...rest] = p;
  const arity: Record<string, number> = { list: 0, add: 2, remove: 1 };
  if (sub === undefined || !(sub in arity)) throw new UsageError(`member takes list, add ID HOST:PORT or remove ID, got ${JSON.stringify(sub ?? '')}`);
  if (rest.length !== arity[sub]) throw new UsageError(`member ${sub} takes ${arity[sub]} arguments, got ${rest.length}`);
  const leader = (await allStatuses(common)).find((s) => s.status?.role === 'leader');
  if (leader === undefined) throw new RingraftError(ErrorCode.UNAVAILABLE, 'no reachable node leads now; try again');
  const timeoutMs = Math.max(common.timeoutMs, 35_000);
  if (sub === 'list') {
    const answer = (await adminCall(leader.endpoint, common.clusterToken, { op: 'member-list' }, timeoutMs, common.tls)) as { members: { id: number; peerAddress: string | null; role: string }[] };
    if (common.json) for (const m of answer.members) out.stdout(JSON.stringify(m));
    else for (const m of answer.members) out.stdout(`${m.id}  ${m.peerAddress ?? '-'}  ${m.role}`);
    return 0;
  }
  const id = nonNegativeInt(rest[0]!, 'ID');
  if (id === 0) throw new UsageError('a node id is >= 1');
  if (sub === 'add') {
    const answer = (await adminCall(leader.endpoint, common.clusterToken, { op: 'member-add', id, peerAddress: rest[1]! }, timeoutMs, common.tls)) as { voters: number[] };
    print(`node ${id} added; voters ${answer.voters.join(', ')}`, { op: 'member-add', id, ...answer });
    return 0;
  }
  const answer = (await adminCall(leader.endpoint, common.clusterToken, { op: 'member-remove', id }, timeoutMs, common.tls)) as { voters: number[] };
  print(`node ${id} removed; voters ${answer.voters.join(', ')}`, { op: 'member-remove', id, ...answer });
  return 0;
}

interface EndpointStatus {
  readonly endpoint: string;
  readonly status?: { readonly id: number; readonly role: string; readonly term: number; readonly commitIndex: number; readonly appliedIndex: number; readonly leaderId: number };
  readonly error?: string;
}

async function allStatuses(common: Common): Promise<EndpointStatus[]> {
  return Promise.all(
    common.endpoints.map(async (endpoint): Promise<EndpointStatus> => {
      try {
        const answer = (await adminCall(endpoint, common.clusterToken, { op: 'status' }, common.timeoutMs, common.tls)) as { node: EndpointStatus['status'] };
        return { endpoint, status: answer.node };
      } catch (error) {
        if (!(error instanceof RingraftError)) throw error;
        return { endpoint, error: `${error.code}: ${error.message}` };
      }
    }),
  );
}

function commonOptions(values: ReadonlyMap<string, string>, env: NodeJS.ProcessEnv): Common {
  const endpointsText = values.get('endpoints') ?? env['RINGRAFT_ENDPOINTS'];
  if (endpointsText === undefined || endpointsText === '') throw new UsageError('no endpoints: give --endpoints HOST:PORT,... or set RINGRAFT_ENDPOINTS');
  const clusterToken = values.get('cluster-token') ?? env['RINGRAFT_CLUSTER_TOKEN'];
  if (clusterToken === undefined || clusterToken === '') throw new UsageError('no cluster token: give --cluster-token TOKEN or set RINGRAFT_CLUSTER_TOKEN');
  const writeOut = choice(values.get('write-out') ?? 'table', ['table', 'json'] as const, 'w');
  const timeoutText = values.get('timeout-ms');
  const timeoutMs = timeoutText === undefined ? 5_000 : parseDurationMs(timeoutText, 'timeout-ms');
  if (!(timeoutMs >= 1 && timeoutMs <= 2 ** 31 - 1)) throw new UsageError(`--timeout-ms must be between 1 and ${2 ** 31 - 1}`);
  const endpoints = endpointsText.split(',');
  endpoints.forEach((e, i) => {
    try {
      parseEndpoint(e, `endpoint ${i + 1}`);
    } catch (error) {
      if (error instanceof RingraftError && error.code === ErrorCode.INVALID_ARGUMENT) throw new UsageError(error.message);
      throw error;
    }
  });
  const caFile = values.get('tls-ca') ?? env['RINGRAFT_TLS_CA'];
  const certFile = values.get('tls-cert') ?? env['RINGRAFT_TLS_CERT'];
  const keyFile = values.get('tls-key') ?? env['RINGRAFT_TLS_KEY'];
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (caFile === undefined && certFile !== undefined) throw new UsageError('--tls-cert needs --tls-ca');
  const tls = caFile === undefined ? undefined : { caFile, ...(certFile === undefined ? {} : { certFile, keyFile: keyFile! }) };
  return { endpoints, clusterToken, json: writeOut === 'json', timeoutMs, tls };
}

function choice<T extends string>(text: string, allowed: readonly T[], name: string): T {
  if (!(allowed as readonly string[]).includes(text)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(text)}`);
  return text as T;
}

function nonNegativeInt(text: string, name: string): number {
  const n = Number(text);
  if (!/^[0-9]{1,16}$/.test(text) || !Number.isSafeInteger(n)) throw new UsageError(`${name} must be a non-negative integer, got ${JSON.stringify(text)}`);
  return n;
}

function textOf(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

function valueJson(value: Uint8Array): { value: string; encoding?: 'base64' } {
  const text = textOf(value);
  return text === undefined ? { value: Buffer.from(value).toString('base64'), encoding: 'base64' } : { value: text };
}
