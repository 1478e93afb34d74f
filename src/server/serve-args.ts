/**
 * The command line of `ringraft serve`: its flags, read into a {@link ServeConfigInput} over
 * the `--config` file's values, and resolved. It lives here, not in cli/, because cli/ is the
 * top of the layers (nothing imports it, so its small parser cannot be shared with this
 * layer); it reads argv with `node:util`'s `parseArgs`, in its token mode, and makes the same
 * checks as cli/args.ts: an unknown flag, a flag given twice, a value missing or swallowing
 * the next flag are refused, naming the flag.
 */
import { parseArgs } from 'node:util';
import { readServeConfigFile, resolveServeConfig, type ServeConfig, type ServeConfigInput, type ServeConfigKey } from './config.ts';
import { ServeConfigError, ServeConfigErrorReason } from './errors.ts';

/** Each flag that sets a configuration key, and the key. */
const FLAG_KEYS = {
  id: 'id',
  'data-dir': 'dataDir',
  'listen-peer': 'listenPeer',
  'listen-client': 'listenClient',
  'listen-metrics': 'listenMetrics',
  'listen-resp': 'listenResp',
  'resp-password': 'respPassword',
  'resp-moved': 'respMoved',
  'initial-cluster': 'initialCluster',
  'cluster-token': 'clusterToken',
  join: 'join',
  'log-level': 'logLevel',
  'tls-cert': 'tlsCert',
  'tls-key': 'tlsKey',
  'tls-ca': 'tlsCa',
  'client-cert-required': 'clientCertRequired',
  'state-machine': 'stateMachine',
} as const satisfies Record<string, ServeConfigKey>;
type KeyFlag = keyof typeof FLAG_KEYS;

/** Flags that take no value. */
const SWITCHES: readonly string[] = ['join', 'client-cert-required', 'help'];
const FLAGS: readonly string[] = [...Object.keys(FLAG_KEYS), 'config', 'help'];

export const SERVE_USAGE = `usage: ringraft serve [--config FILE] --id ID --data-dir DIR --listen-peer HOST:PORT
                      --listen-client HOST:PORT --initial-cluster ID=HOST:PORT,...
                      --cluster-token TOKEN [--listen-metrics HOST:PORT] [--join]
                      [--log-level debug|info|warn|error]
                      [--tls-cert FILE --tls-key FILE --tls-ca FILE [--client-cert-required]]
                      [--state-machine MODULE] [--listen-resp HOST:PORT [--resp-password PASSWORD]
                       [--resp-moved ID=HOST:PORT,...]]

Runs one ringraft node over TCP. HOST is an IP address (an IPv6 one in brackets,
[::1]:7000), never a name. --initial-cluster lists every node's peer address by id,
this node's too (its --listen-peer address, or the same port if it listens on 0.0.0.0
or ::). A node added to a running cluster starts with --join. With --tls-*, peers talk
mutual TLS (each node's certificate names it: CN or DNS name node-<id>) and clients TLS.

--state-machine MODULE runs a state machine of your own beside the store (a module
path or file URL whose default export makes it; every node of a cluster runs the same);
clients propose to it and query it. In the file: "stateMachine": { "module": ...,
"options": ... }, the options given to its default export.

--listen-resp HOST:PORT speaks the Redis protocol (RESP2, RESP3 after HELLO 3) there:
redis-cli, redis-benchmark and Redis clients read and write the replicated store, every
write through Raft, reads linearizable unless a connection asks otherwise (RINGRAFT READ
lease|stale). --resp-password makes clients AUTH first. A follower forwards what needs the
leader; with --resp-moved (every node's RESP address) it answers -MOVED 0 HOST:PORT instead,
for clients that follow (redis-cli -c).

--config FILE reads a JSON object with the same keys in camelCase (dataDir,
listenPeer, ...) and the setting groups raft, node, peerTransport and clientPort;
flags override the file's values.`;

/** What the command line asks for: the usage, or a node with this configuration. */
export type ServeArgs = { readonly kind: 'help'; readonly usage: string } | { readonly kind: 'serve'; readonly config: ServeConfig };

/**
 * Reads `argv` (the arguments after `serve`), then the `--config` file if one is named, and
 * resolves the two, flags over file. A refusal is a {@link ServeConfigError}, or an
 * INVALID_ARGUMENT from a setting group's own checks, naming the flag a value came from
 * (`--listen-peer`), else its key in the file (`listenPeer`, `raft.appendBytesMax`); a
 * required value given nowhere is named by its flag.
 */
export function parseServeArgs(argv: readonly string[]): ServeArgs {
  const given = readFlags(argv);
  if (given.has('help')) return { kind: 'help', usage: SERVE_USAGE };
  const configFile = given.get('config');
  const file: ServeConfigInput = typeof configFile === 'string' ? readServeConfigFile(configFile) : {};
  const fromFlags: Record<string, unknown> = {};
  const flagOfKey = new Map<ServeConfigKey, string>();
  for (const [flag, key] of Object.entries(FLAG_KEYS) as [KeyFlag, ServeConfigKey][]) {
    flagOfKey.set(key, `--${flag}`);
    const value = given.get(flag);
    if (value === undefined) continue;
    fromFlags[key] = flagValue(key, value);
  }
  // --state-machine names the module; the file may still give the options its factory takes.
  const fileMachine = file.stateMachine as { options?: unknown } | undefined;
  if (fromFlags.stateMachine !== undefined && typeof fileMachine === 'object' && fileMachine !== null && 'options' in fileMachine) {
    fromFlags.stateMachine = { ...(fromFlags.stateMachine as object), options: fileMachine.options };
  }
  const nameOf = (key: ServeConfigKey): string => (key in fromFlags || !(key in file) ? (flagOfKey.get(key) ?? key) : key);
  return { kind: 'serve', config: resolveServeConfig({ ...file, ...fromFlags }, nameOf) };
}

/** A flag's text as the key's value: `--id 3` is the number 3 (anything else stays text, for the check to refuse); a switch is true. */
function flagValue(key: ServeConfigKey, value: string | true): unknown {
  if (key === 'id' && typeof value === 'string' && /^[0-9]{1,16}$/.test(value)) return Number(value);
  if (key === 'stateMachine') return { module: value };
  return value;
}

/** The flags given, each with its value (true for a switch). */
function readFlags(argv: readonly string[]): Map<string, string | true> {
  const options = Object.fromEntries(FLAGS.map((f) => [f, { type: SWITCHES.includes(f) ? ('boolean' as const) : ('string' as const) }]));
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  const given = new Map<string, string | true>();
  for (const t of tokens) {
    if (t.kind === 'positional') throw new ServeConfigError(ServeConfigErrorReason.UNKNOWN_FLAG, `unexpected argument ${JSON.stringify(t.value)}`);
    if (t.kind === 'option-terminator') throw new ServeConfigError(ServeConfigErrorReason.UNKNOWN_FLAG, 'unexpected argument "--"');
    if (t.kind !== 'option') continue;
    if (!FLAGS.includes(t.name) || !t.rawName.startsWith('--')) {
      throw new ServeConfigError(ServeConfigErrorReason.UNKNOWN_FLAG, `unknown flag ${t.rawName} (known: ${FLAGS.map((f) => `--${f}`).join(', ')})`);
    }
    if (given.has(t.name)) throw usage(`${t.rawName} is given twice`);
    if (SWITCHES.includes(t.name)) {
      if (t.value !== undefined) throw usage(`${t.rawName} takes no value`);
      given.set(t.name, true);
      continue;
    }
    if (t.value === undefined) throw usage(`${t.rawName} needs a value`);
    if (!t.inlineValue && t.value.startsWith('--')) {
      throw usage(`${t.rawName} needs a value, got the flag ${t.value} (for a value that starts with --, write ${t.rawName}=${t.value})`);
    }
    given.set(t.name, t.value);
  }
  return given;
}

function usage(message: string): ServeConfigError {
  return new ServeConfigError(ServeConfigErrorReason.FLAG_USAGE, message);
}
