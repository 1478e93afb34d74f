// Proves that the configuration of `ringraft serve` is read and checked as documented in
// src/server/config.ts: the defaults, a full flag set and a config file resolving to the
// expected ServeConfig (flags over file), and each bad input refused with an INVALID_ARGUMENT
// that names the flag, key or file it is about. Config files are written to a temporary
// directory removed after each test.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/base/index.ts';
import { RAFT_SETTINGS, resolveRaftSettings } from '../../src/core/index.ts';
import { resolveNodeSettings, WRITE_REQUEST_BYTES_MAX } from '../../src/runtime/index.ts';
import {
  parseHostPort,
  parseInitialCluster,
  parseServeArgs,
  resolveServeConfig,
  SERVE_USAGE,
  ServeConfigError,
  ServeConfigErrorReason,
  type ServeConfig,
  type ServeConfigInput,
} from '../../src/server/index.ts';
import { clusterIdOf, resolveClientPortSettings, resolveTcpTransportSettings } from '../../src/transport/index.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ringraft-serve-config-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(content: unknown, name = 'node.json'): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return path;
}

const REQUIRED_FLAGS = [
  '--id', '2',
  '--data-dir', '/var/lib/ringraft/n2',
  '--listen-peer', '10.0.0.2:7001',
  '--listen-client', '0.0.0.0:7101',
  '--initial-cluster', '1=10.0.0.1:7001,2=10.0.0.2:7001,3=[2001:db8::3]:7001',
  '--cluster-token', 'orders',
];
const MINIMAL: ServeConfigInput = {
  id: 2,
  dataDir: 'd',
  listenPeer: '10.0.0.2:7001',
  listenClient: '10.0.0.2:7101',
  initialCluster: '1=10.0.0.1:7001,2=10.0.0.2:7001,3=10.0.0.3:7001',
  clusterToken: 't',
};

function serve(argv: string[]): ServeConfig {
  const r = parseServeArgs(argv);
  if (r.kind !== 'serve') throw new Error('expected a configuration');
  return r.config;
}

/** Runs `f`, expects an INVALID_ARGUMENT whose message matches `message` (and, for a ServeConfigError, has `reason`). */
function refused(f: () => unknown, message: RegExp, reason?: ServeConfigErrorReason): void {
  let caught: unknown;
  try {
    f();
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected a refusal matching ${message}`).toBeInstanceOf(Error);
  expect((caught as { code?: unknown }).code).toBe(ErrorCode.INVALID_ARGUMENT);
  expect((caught as Error).message).toMatch(message);
  if (reason !== undefined) {
    expect(caught).toBeInstanceOf(ServeConfigError);
    expect((caught as ServeConfigError).reason).toBe(reason);
  }
}

describe('defaults', () => {
  it('fills every optional setting with its default', () => {
    const c = resolveServeConfig(MINIMAL);
    expect(c.join).toBe(false);
    expect(c.logLevel).toBe('info');
    expect(c.listenMetrics).toBeUndefined();
    expect(c.raft).toEqual(resolveRaftSettings(undefined));
    expect(c.node).toEqual(resolveNodeSettings(undefined));
    expect(c.peerTransport).toEqual(resolveTcpTransportSettings(undefined));
    expect(c.clientPort).toEqual(resolveClientPortSettings(undefined));
    expect(c.clusterId).toBe(clusterIdOf('t'));
    expect([...c.initialCluster.keys()]).toEqual([1, 2, 3]);
  });

  it('--help gives the usage, and nothing is required for it', () => {
    expect(parseServeArgs(['--help'])).toEqual({ kind: 'help', usage: SERVE_USAGE });
  });

  it('takes a state machine from --state-machine (a path from the current directory) or the file, and refuses a bad one naming it', () => {
    expect(resolveServeConfig(MINIMAL).stateMachine).toBeUndefined();
    const fromFlag = resolveServeConfig({ ...MINIMAL, stateMachine: { module: 'machines/counter.mjs' } });
    expect(fromFlag.stateMachine).toEqual({ module: pathToFileURL(join(process.cwd(), 'machines/counter.mjs')).href, options: undefined });
    const withOptions = resolveServeConfig({ ...MINIMAL, stateMachine: { module: 'file:///srv/m.mjs', options: { shards: 4 } } });
    expect(withOptions.stateMachine).toEqual({ module: 'file:///srv/m.mjs', options: { shards: 4 } });
    expect(() => resolveServeConfig({ ...MINIMAL, stateMachine: { module: '' } })).toThrow(/stateMachine.module/);
    expect(() => resolveServeConfig({ ...MINIMAL, stateMachine: { module: 'm.mjs', extra: 1 } as never })).toThrow(/stateMachine.extra/);
    const flags = ['--id', '2', '--data-dir', 'd', '--listen-peer', '10.0.0.2:7001', '--listen-client', '10.0.0.2:7101', '--initial-cluster', MINIMAL.initialCluster!, '--cluster-token', 't'];
    expect(serve([...flags, '--state-machine', 'm.mjs']).stateMachine).toEqual({ module: pathToFileURL(join(process.cwd(), 'm.mjs')).href, options: undefined });
    expect(() => serve([...flags, '--state-machine', ''])).toThrow(/--state-machine.module/);
    // The flag names the module; the file's options stay.
    const dir = mkdtempSync(join(tmpdir(), 'ringraft-serve-sm-'));
    try {
      const file = join(dir, 'serve.json');
      writeFileSync(file, JSON.stringify({ stateMachine: { module: 'file:///srv/old.mjs', options: { shards: 2 } } }));
      expect(serve([...flags, '--config', file, '--state-machine', 'file:///srv/new.mjs']).stateMachine).toEqual({ module: 'file:///srv/new.mjs', options: { shards: 2 } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a full configuration', () => {
  it('resolves from flags alone', () => {
    const c = serve([...REQUIRED_FLAGS, '--listen-metrics', '[::1]:9102', '--listen-resp', '127.0.0.1:6379', '--resp-password', 'sesame', '--resp-moved', '1=10.0.0.1:6379,2=10.0.0.2:6379', '--join', '--log-level=debug']);
    expect(c).toEqual({
      id: 2,
      dataDir: '/var/lib/ringraft/n2',
      listenPeer: { host: '10.0.0.2', port: 7001 },
      listenClient: { host: '0.0.0.0', port: 7101 },
      listenMetrics: { host: '::1', port: 9102 },
      listenResp: { host: '127.0.0.1', port: 6379 },
      respPassword: 'sesame',
      respMoved: new Map([
        [1, { host: '10.0.0.1', port: 6379 }],
        [2, { host: '10.0.0.2', port: 6379 }],
      ]),
      initialCluster: new Map([
        [1, { host: '10.0.0.1', port: 7001 }],
        [2, { host: '10.0.0.2', port: 7001 }],
        [3, { host: '2001:db8::3', port: 7001 }],
      ]),
      clusterToken: 'orders',
      clusterId: clusterIdOf('orders'),
      join: true,
      logLevel: 'debug',
      tls: undefined,
      raft: resolveRaftSettings(undefined),
      node: resolveNodeSettings(undefined),
      peerTransport: resolveTcpTransportSettings(undefined),
      clientPort: resolveClientPortSettings(undefined),
      stateMachine: undefined,
    } satisfies ServeConfig);
  });

  it('resolves from a file, the flags overriding its values', () => {
    const path = writeConfig({
      id: 1,
      dataDir: '/data/n1',
      listenPeer: '[::]:7001',
      listenClient: '127.0.0.1:7101',
      listenMetrics: '127.0.0.1:9101',
      initialCluster: '1=[fd00::1]:7001,2=[fd00::2]:7001,3=[fd00::3]:7001',
      clusterToken: 'from-file',
      join: false,
      logLevel: 'warn',
      raft: { electionTimeoutTicks: 20, appendBytesMax: 512 << 10 },
      node: { tickMs: 20, fsync: 'none' },
      peerTransport: { idleTimeoutMs: 3_000 },
      clientPort: { connectionsMax: 4_096 },
    });
    const c = serve(['--config', path, '--log-level', 'error', '--cluster-token', 'from-flag', '--data-dir', '/data/other']);
    expect(c.id).toBe(1);
    expect(c.listenPeer).toEqual({ host: '::', port: 7001 });
    expect(c.initialCluster.get(1)).toEqual({ host: 'fd00::1', port: 7001 });
    expect(c.listenMetrics).toEqual({ host: '127.0.0.1', port: 9101 });
    expect(c.logLevel).toBe('error');
    expect(c.clusterToken).toBe('from-flag');
    expect(c.clusterId).toBe(clusterIdOf('from-flag'));
    expect(c.dataDir).toBe('/data/other');
    expect(c.raft.electionTimeoutTicks).toBe(20);
    expect(c.raft.appendBytesMax).toBe(512 << 10);
    expect(c.raft.heartbeatIntervalTicks).toBe(RAFT_SETTINGS.heartbeatIntervalTicks.default);
    expect(c.node.tickMs).toBe(20);
    expect(c.node.fsync).toBe('none');
    expect(c.peerTransport.idleTimeoutMs).toBe(3_000);
    expect(c.clientPort.connectionsMax).toBe(4_096);
  });
});

describe('parseHostPort', () => {
  it('reads IPv4 and bracketed IPv6 literals, canonically', () => {
    expect(parseHostPort('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseHostPort('[0:0:0:0:0:0:0:1]:65535')).toEqual({ host: '::1', port: 65535 });
    expect(parseHostPort('[::FFFF:10.0.0.1]:7')).toEqual({ host: '::ffff:a00:1', port: 7 });
  });

  it.each([
    ['localhost:7000', ServeConfigErrorReason.ADDRESS_HOST_NOT_IP],
    ['db.example.com:7000', ServeConfigErrorReason.ADDRESS_HOST_NOT_IP],
    ['127.1:7000', ServeConfigErrorReason.ADDRESS_HOST_NOT_IP],
    [':7000', ServeConfigErrorReason.ADDRESS_HOST_NOT_IP],
    ['[fe80::1%eth0]:7000', ServeConfigErrorReason.ADDRESS_HOST_NOT_IP],
    ['[10.0.0.1]:7000', ServeConfigErrorReason.ADDRESS_HOST_NOT_IP],
    ['::1:7000', ServeConfigErrorReason.ADDRESS_MALFORMED],
    ['[::1:7000', ServeConfigErrorReason.ADDRESS_MALFORMED],
    ['127.0.0.1', ServeConfigErrorReason.ADDRESS_MALFORMED],
    ['', ServeConfigErrorReason.ADDRESS_MALFORMED],
    ['127.0.0.1:65536', ServeConfigErrorReason.ADDRESS_PORT],
    ['127.0.0.1:-1', ServeConfigErrorReason.ADDRESS_PORT],
    ['127.0.0.1:', ServeConfigErrorReason.ADDRESS_PORT],
    ['127.0.0.1:7e3', ServeConfigErrorReason.ADDRESS_PORT],
  ])('refuses %j (%s)', (text, reason) => {
    refused(() => parseHostPort(text, '--listen-peer'), /--listen-peer/, reason);
  });
});

describe('parseInitialCluster', () => {
  it.each([
    ['1=10.0.0.1:7001,,2=10.0.0.2:7001', /entry ""/],
    ['x=10.0.0.1:7001', /entry "x=10.0.0.1:7001"/],
    ['0=10.0.0.1:7001', /entry "0=10.0.0.1:7001"/],
    ['10.0.0.1:7001', /entry "10.0.0.1:7001"/],
    ['1=10.0.0.1:7001,1=10.0.0.2:7001', /node 1 twice/],
    ['1=10.0.0.1:7001,2=10.0.0.1:7001', /nodes 1 and 2 the same address 10.0.0.1:7001/],
    ['1=0.0.0.0:7001', /0.0.0.0 cannot be dialled/],
    ['1=[::]:7001', /:: cannot be dialled/],
    [Array.from({ length: 16 }, (_, i) => `${i + 1}=10.0.0.${i + 1}:7001`).join(','), /16 nodes; a cluster has at most 15/],
  ])('refuses %j', (text, message) => {
    refused(() => parseInitialCluster(text), message, ServeConfigErrorReason.INITIAL_CLUSTER);
  });

  it('refuses an address that is no IP, or port 0, naming the entry', () => {
    refused(() => parseInitialCluster('1=localhost:7001'), /initialCluster entry 1 .*not a name/, ServeConfigErrorReason.ADDRESS_HOST_NOT_IP);
    refused(() => parseInitialCluster('1=10.0.0.1:0'), /initialCluster entry 1: port 0/, ServeConfigErrorReason.ADDRESS_PORT);
  });
});

describe('flags', () => {
  it.each([
    [['--bogus', 'x'], /unknown flag --bogus/, ServeConfigErrorReason.UNKNOWN_FLAG],
    [['-i', '2'], /unknown flag -i/, ServeConfigErrorReason.UNKNOWN_FLAG],
    [['stray'], /unexpected argument "stray"/, ServeConfigErrorReason.UNKNOWN_FLAG],
    [['--id'], /--id needs a value/, ServeConfigErrorReason.FLAG_USAGE],
    [['--id', '--join'], /--id needs a value, got the flag --join/, ServeConfigErrorReason.FLAG_USAGE],
    [['--join=yes'], /--join takes no value/, ServeConfigErrorReason.FLAG_USAGE],
    [['--id', '1', '--id', '2'], /--id is given twice/, ServeConfigErrorReason.FLAG_USAGE],
  ] as const)('refuses %j', (argv, message, reason) => {
    refused(() => parseServeArgs([...argv]), message, reason);
  });

  it('refuses a bad value naming its flag', () => {
    const without = (flag: string): string[] => {
      const i = REQUIRED_FLAGS.indexOf(flag);
      return [...REQUIRED_FLAGS.slice(0, i), ...REQUIRED_FLAGS.slice(i + 2)];
    };
    refused(() => serve([...without('--id'), '--id', 'two']), /--id must be an integer/, ServeConfigErrorReason.BAD_VALUE);
    refused(() => serve([...without('--id'), '--id', '0']), /--id must be an integer/, ServeConfigErrorReason.BAD_VALUE);
    refused(() => serve([...without('--listen-peer'), '--listen-peer', 'localhost:7000']), /--listen-peer "localhost:7000"/, ServeConfigErrorReason.ADDRESS_HOST_NOT_IP);
    refused(() => serve([...without('--listen-client'), '--listen-client', '10.0.0.2:99999']), /--listen-client/, ServeConfigErrorReason.ADDRESS_PORT);
    refused(() => serve([...REQUIRED_FLAGS, '--log-level', 'loud']), /--log-level must be one of 'debug', 'info', 'warn', 'error'/, ServeConfigErrorReason.BAD_VALUE);
    refused(() => serve([...without('--cluster-token'), '--cluster-token', '']), /--cluster-token must be a non-empty string/, ServeConfigErrorReason.BAD_VALUE);
    refused(() => serve([...without('--data-dir'), '--data-dir=']), /--data-dir must be a non-empty string/, ServeConfigErrorReason.BAD_VALUE);
  });

  it('refuses a missing required value, naming its flag', () => {
    refused(() => serve(REQUIRED_FLAGS.slice(2)), /--id is required/, ServeConfigErrorReason.MISSING);
    refused(() => serve(REQUIRED_FLAGS.slice(0, -2)), /--cluster-token is required/, ServeConfigErrorReason.MISSING);
  });
});

describe('the initial cluster and this node', () => {
  it('refuses a cluster without this node', () => {
    refused(() => resolveServeConfig({ ...MINIMAL, id: 4 }), /initialCluster has no entry for this node, id 4 \(it lists 1, 2, 3\)/, ServeConfigErrorReason.INITIAL_CLUSTER);
  });

  it('refuses an own entry at another address than listenPeer', () => {
    refused(() => resolveServeConfig({ ...MINIMAL, listenPeer: '10.0.0.9:7001' }), /gives node 2 the address 10.0.0.2:7001, but listenPeer is 10.0.0.9:7001/, ServeConfigErrorReason.INITIAL_CLUSTER);
    refused(() => resolveServeConfig({ ...MINIMAL, listenPeer: '10.0.0.2:7002' }), /but listenPeer is 10.0.0.2:7002/, ServeConfigErrorReason.INITIAL_CLUSTER);
  });

  it('takes a wildcard listenPeer with the same port, and refuses another port', () => {
    expect(resolveServeConfig({ ...MINIMAL, listenPeer: '0.0.0.0:7001' }).listenPeer).toEqual({ host: '0.0.0.0', port: 7001 });
    expect(resolveServeConfig({ ...MINIMAL, listenPeer: '[::]:7001' }).listenPeer).toEqual({ host: '::', port: 7001 });
    refused(() => resolveServeConfig({ ...MINIMAL, listenPeer: '0.0.0.0:7002' }), /it must list port 7002/, ServeConfigErrorReason.INITIAL_CLUSTER);
  });

  it('compares addresses in canonical form', () => {
    const c = resolveServeConfig({ ...MINIMAL, listenPeer: '[2001:db8:0:0::2]:7001', initialCluster: '2=[2001:DB8::2]:7001' });
    expect(c.listenPeer).toEqual({ host: '2001:db8::2', port: 7001 });
  });

  it('names the flags when the values came from flags', () => {
    refused(() => serve([...REQUIRED_FLAGS.slice(2), '--id', '7']), /--initial-cluster has no entry for this node, --id 7/, ServeConfigErrorReason.INITIAL_CLUSTER);
  });
});

describe('the configuration file', () => {
  it('refuses an unknown key at the top level and in each group, naming its path', () => {
    const cases: [object, RegExp][] = [
      [{ listenPeers: 'x' }, /unknown option listenPeers \(known: .*listenPeer/],
      [{ raft: { electionTicks: 10 } }, /unknown option raft\.electionTicks \(known: .*electionTimeoutTicks/],
      [{ node: { tickMillis: 10 } }, /unknown option node\.tickMillis/],
      [{ peerTransport: { frameBytes: 10 } }, /unknown option peerTransport\.frameBytes/],
      [{ clientPort: { connections: 10 } }, /unknown option clientPort\.connections/],
    ];
    for (const [content, message] of cases) refused(() => serve(['--config', writeConfig({ ...MINIMAL, ...content })]), message);
  });

  it('refuses a bad value naming its path', () => {
    const cases: [object, RegExp][] = [
      [{ raft: { electionTimeoutTicks: 0 } }, /raft\.electionTimeoutTicks must be an integer/],
      [{ node: { fsync: 'sometimes' } }, /node\.fsync must be one of/],
      [{ peerTransport: { frameBytesMax: 'big' } }, /peerTransport\.frameBytesMax must be an integer/],
      [{ clientPort: { keepaliveIntervalMs: 9_000 } }, /clientPort\.keepaliveIntervalMs \(9000\) must be less than clientPort\.idleTimeoutMs/],
      [{ raft: [] }, /raft must be an object/],
      [{ initialCluster: '1=10.0.0.1:7001,1=10.0.0.2:7001' }, /initialCluster lists node 1 twice/],
      [{ initialCluster: 3 }, /initialCluster must be a non-empty string/],
      [{ listenClient: 'localhost:7000' }, /listenClient "localhost:7000"/],
      [{ clusterToken: '' }, /clusterToken must be a non-empty string/],
      [{ join: 'yes' }, /join must be true or false/],
      [{ id: '2' }, /id must be an integer/],
    ];
    for (const [content, message] of cases) refused(() => serve(['--config', writeConfig({ ...MINIMAL, ...content })]), message);
  });

  it('refuses a file that is not JSON, naming the file and the position', () => {
    const path = writeConfig('{\n  "id": 1,\n  "dataDir": }\n');
    refused(() => serve(['--config', path]), new RegExp(`${path}:3:14: not valid JSON: unexpected "}" at line 3, column 14`), ServeConfigErrorReason.FILE_NOT_JSON);
    refused(() => serve(['--config', writeConfig('{"id": 1,', 'cut.json')]), /cut\.json:1:10: not valid JSON: the file ends/, ServeConfigErrorReason.FILE_NOT_JSON);
    refused(() => serve(['--config', writeConfig('{"id": 1,}', 'comma.json')]), /comma\.json:1:10: .*unexpected "}"/, ServeConfigErrorReason.FILE_NOT_JSON);
    refused(() => serve(['--config', writeConfig('[1, 2]', 'array.json')]), /array\.json: a configuration file holds one JSON object, got an array/, ServeConfigErrorReason.FILE_NOT_JSON);
  });

  it('refuses a file that cannot be read', () => {
    refused(() => serve(['--config', join(dir, 'missing.json')]), /cannot read .*missing\.json: ENOENT/, ServeConfigErrorReason.FILE_UNREADABLE);
    refused(() => serve(['--config', dir]), /cannot read .*: EISDIR/, ServeConfigErrorReason.FILE_UNREADABLE);
  });
});

describe('relations', () => {
  it('the peer frame holds the largest append and snapshot chunk', () => {
    const frame = (raft: object, frameBytesMax: number): ServeConfigInput => ({ ...MINIMAL, raft, peerTransport: { frameBytesMax, batchBytesMax: 64 << 10 } });
    refused(() => resolveServeConfig(frame({ proposalBytesMax: 4 << 20, appendBytesMax: 8 << 20 }, 8 << 20)), /peerTransport\.frameBytesMax \(8388608\) is too small for raft\.appendBytesMax \(8388608\)/, ServeConfigErrorReason.RELATION);
    refused(() => resolveServeConfig(frame({ proposalBytesMax: 8 << 20 }, 8 << 20)), /peerTransport\.frameBytesMax \(8388608\) is too small for raft\.proposalBytesMax/, ServeConfigErrorReason.RELATION);
    refused(() => resolveServeConfig(frame({ snapshotChunkBytes: 16 << 20 }, 16 << 20)), /peerTransport\.frameBytesMax \(16777216\) is too small for raft\.snapshotChunkBytes \(16777216\)/, ServeConfigErrorReason.RELATION);
    expect(resolveServeConfig(frame({ proposalBytesMax: 4 << 20 }, (4 << 20) + (64 << 10) + 16)).peerTransport.frameBytesMax).toBe((4 << 20) + (64 << 10) + 16);
  });

  it('the client frame holds the largest write request, which must be proposable', () => {
    refused(() => resolveServeConfig({ ...MINIMAL, clientPort: { frameBytesMax: 1 << 20, batchBytesMax: 64 << 10 } }), /clientPort\.frameBytesMax \(1048576\) is too small for the largest client request \(WRITE_REQUEST_BYTES_MAX/, ServeConfigErrorReason.RELATION);
    refused(() => resolveServeConfig({ ...MINIMAL, raft: { proposalBytesMax: WRITE_REQUEST_BYTES_MAX - 1 } }), /raft\.proposalBytesMax .* must be at least/, ServeConfigErrorReason.RELATION);
  });

  it('redials wait at most half an election timeout', () => {
    // Defaults: 50 ms ticks × 10 = 500 ms; 200 ms redials pass, 251 do not.
    expect(resolveServeConfig(MINIMAL).peerTransport.redialBackoffMsMax).toBe(200);
    expect(resolveServeConfig({ ...MINIMAL, peerTransport: { redialBackoffMsMax: 250 } }).peerTransport.redialBackoffMsMax).toBe(250);
    refused(() => resolveServeConfig({ ...MINIMAL, peerTransport: { redialBackoffMsMax: 251 } }), /peerTransport\.redialBackoffMsMax \(251 ms\) must be at most half the election timeout \(node\.tickMs 50 × raft\.electionTimeoutTicks 10 = 500 ms\)/, ServeConfigErrorReason.RELATION);
    refused(() => resolveServeConfig({ ...MINIMAL, node: { tickMs: 20 } }), /redialBackoffMsMax \(200 ms\) must be at most half the election timeout .* = 200 ms/, ServeConfigErrorReason.RELATION);
  });

  it('two listeners do not share a port', () => {
    refused(() => resolveServeConfig({ ...MINIMAL, listenClient: '10.0.0.2:7001' }), /listenPeer 10.0.0.2:7001 and listenClient 10.0.0.2:7001/, ServeConfigErrorReason.RELATION);
    refused(() => resolveServeConfig({ ...MINIMAL, listenMetrics: '0.0.0.0:7101' }), /listenClient 10.0.0.2:7101 and listenMetrics 0.0.0.0:7101/, ServeConfigErrorReason.RELATION);
    expect(resolveServeConfig({ ...MINIMAL, listenClient: '127.0.0.1:0', listenMetrics: '127.0.0.1:0' }).listenMetrics).toEqual({ host: '127.0.0.1', port: 0 });
  });
});

describe('TLS', () => {
  it('takes the three files together, from flags or the file, and refuses a partial set, an unreadable file, or client certificates without TLS', () => {
    const cert = join(dir, 'n.crt');
    const key = join(dir, 'n.key');
    const ca = join(dir, 'ca.crt');
    for (const f of [cert, key, ca]) writeFileSync(f, 'pem');
    const flags = ['--id', '2', '--data-dir', 'd', '--listen-peer', '10.0.0.2:7001', '--listen-client', '10.0.0.2:7101', '--initial-cluster', '1=10.0.0.1:7001,2=10.0.0.2:7001', '--cluster-token', 't'];
    expect(serve([...flags, '--tls-cert', cert, '--tls-key', key, '--tls-ca', ca, '--client-cert-required']).tls).toEqual({ certFile: cert, keyFile: key, caFile: ca, clientCertRequired: true });
    expect(resolveServeConfig({ ...MINIMAL, tlsCert: cert, tlsKey: key, tlsCa: ca }).tls).toEqual({ certFile: cert, keyFile: key, caFile: ca, clientCertRequired: false });
    expect(resolveServeConfig(MINIMAL).tls).toBeUndefined();
    refused(() => serve([...flags, '--tls-cert', cert, '--tls-ca', ca]), /TLS needs --tls-cert, --tls-key, --tls-ca together; --tls-key is missing/, ServeConfigErrorReason.MISSING);
    refused(() => resolveServeConfig({ ...MINIMAL, tlsCert: cert, tlsKey: join(dir, 'absent.key'), tlsCa: ca }), /tlsKey .*absent\.key: cannot read it \(ENOENT\)/, ServeConfigErrorReason.FILE_UNREADABLE);
    refused(() => serve([...flags, '--client-cert-required']), /--client-cert-required needs TLS/, ServeConfigErrorReason.RELATION);
  });
});
