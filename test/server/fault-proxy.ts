// A fault-injecting TCP proxy for tests between the peers of a process cluster: it listens on
// 127.0.0.1 (a port found free), forwards to one target, and can blackhole what flows (bytes
// read and discarded, sockets left open: a partition as a peer sees one), delay it, or pass it.
// Every socket's errors are handled here: a proxy never throws into the test.
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export type Fault = 'pass' | 'blackhole';

export class FaultProxy {
  private fault: Fault = 'pass';
  private delayMs = 0;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** Starts a proxy to `target` (an IP and a port). */
  static async start(target: { readonly host: string; readonly port: number }): Promise<FaultProxy> {
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const proxy = new FaultProxy(server, (server.address() as AddressInfo).port);
    server.on('connection', (client) => proxy.onConnection(client, target));
    server.on('error', () => {});
    return proxy;
  }

  /** From now on bytes either way are read and dropped; connections stay open and new ones are accepted. */
  blackhole(): void {
    this.fault = 'blackhole';
  }

  /** Every chunk waits `ms` before it is passed on (order kept per connection and direction). */
  delay(ms: number): void {
    this.delayMs = ms;
  }

  /** Back to passing everything at once (what was dropped meanwhile stays lost). */
  heal(): void {
    this.fault = 'pass';
    this.delayMs = 0;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(client: Socket, target: { readonly host: string; readonly port: number }): void {
    const upstream = connect({ host: target.host, port: target.port, noDelay: true });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    this.pipe(client, upstream);
    this.pipe(upstream, client);
  }

  private pipe(from: Socket, to: Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (this.fault === 'blackhole') return;
      if (this.delayMs === 0) {
        to.write(chunk);
        return;
      }
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        if (this.fault === 'pass') to.write(chunk);
      }, this.delayMs);
      this.timers.add(timer);
    });
  }
}
