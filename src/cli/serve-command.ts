/**
 * `ringraft serve`: runs one node over TCP until SIGTERM or SIGINT (server/node-server.ts).
 * The configuration is checked before anything is opened or bound: a bad flag, key or value
 * exits 2 with one line naming it. A node that cannot start (its directory locked, lost or of
 * another cluster; an address it cannot bind) exits 1 with its typed error. The first signal
 * stops the node gracefully (a leader hands leadership off first, requests in flight finish,
 * the WAL is closed) and exits 0; a second signal exits at once, with 128 + its number. A node
 * that stops by itself (its thread failed) exits 1.
 *
 * The log is JSON lines on standard error (server/log.ts); `--log-level` sets the least
 * severe level written.
 */
import { ErrorCode, RingraftError } from '../base/index.ts';
import { createLogger, isWildcardHost, NodeServer, parseServeArgs, type ServeConfig } from '../server/index.ts';
import { UsageError, type Output } from './args.ts';

export { SERVE_USAGE } from '../server/index.ts';

const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;

export async function serveCommand(argv: readonly string[], out: Output): Promise<number> {
  let parsed: ReturnType<typeof parseServeArgs>;
  try {
    parsed = parseServeArgs(argv);
  } catch (error) {
    if (error instanceof RingraftError && error.code === ErrorCode.INVALID_ARGUMENT) throw new UsageError(error.message);
    throw error;
  }
  if (parsed.kind === 'help') {
    out.stdout(parsed.usage);
    return 0;
  }
  const config = parsed.config;
  const log = createLogger(config.id, config.logLevel);
  warnIfExposed(config, log);
  const server = await NodeServer.start(config, log);
  log.log('info', 'ready', `node ${config.id} serving: peers on ${server.peerAddressText}, clients on ${server.clientAddressText}`, {
    peer: server.peerAddressText,
    client: server.clientAddressText,
  });
  let signalled: (name: string) => void = () => {};
  const requested = new Promise<string>((resolve) => (signalled = resolve));
  let signals = 0;
  const onSignal = (name: keyof typeof SIGNAL_NUMBERS): void => {
    signals++;
    if (signals > 1) {
      log.log('warn', 'exit-now', `second ${name}: exiting at once`);
      process.exit(128 + SIGNAL_NUMBERS[name]);
    }
    log.log('info', 'shutdown', `${name}: stopping gracefully (send it again to exit at once)`);
    signalled(name);
  };
  const handlers = (Object.keys(SIGNAL_NUMBERS) as (keyof typeof SIGNAL_NUMBERS)[]).map((name) => {
    const handler = (): void => onSignal(name);
    process.on(name, handler);
    return [name, handler] as const;
  });
  try {
    const first = await Promise.race([requested.then(() => ({ failure: undefined })), server.stopped.then((failure) => ({ failure }))]);
    await server.shutdown();
    if (first.failure !== undefined) {
      out.stderr(`ringraft: ${first.failure.code}: ${first.failure.message}`);
      return 1;
    }
    return 0;
  } finally {
    for (const [name, handler] of handlers) process.off(name, handler);
  }
}

/** Without TLS, a listener on an address other than loopback is reachable by anyone who can reach the host: said once, at start. */
function warnIfExposed(config: ServeConfig, log: ReturnType<typeof createLogger>): void {
  if (config.tls !== undefined) return;
  const exposed = [config.listenPeer, config.listenClient, config.listenMetrics].filter(
    (a) => a !== undefined && (isWildcardHost(a.host) || !(a.host.startsWith('127.') || a.host === '::1')),
  );
  if (exposed.length === 0) return;
  log.log('warn', 'no-tls', 'listening beyond loopback without TLS: any host that can reach these ports can talk to the node', {
    addresses: exposed.map((a) => `${a!.host}:${a!.port}`),
  });
}
