/**
 * A node's metrics and health over HTTP (`--listen-metrics`): `GET /metrics` in the Prometheus
 * text format (through prom-client, on a registry of this node's own), `GET /health` as JSON.
 *
 * Each scrape takes one snapshot (the node thread's status and latency histograms through one
 * control call, the peer transport's and the server's counters) and every metric reads that
 * snapshot: a scrape costs the node one control message, whatever the number of metrics.
 *
 * | metric | type | labels | what |
 * | --- | --- | --- | --- |
 * | `ringraft_node_term`, `_commit_index`, `_applied_index`, `_last_index` | gauge | | the node's Raft state |
 * | `ringraft_node_is_leader`, `ringraft_node_leader_id` | gauge | | its role, and who leads as it knows (0: unknown) |
 * | `ringraft_leader_changes_total` | counter | | leaders this node has seen take over since it started |
 * | `ringraft_peer_messages_sent_total`, `_received_total`, `_dropped_total`, `_send_failures_total` | counter | `peer`, `lane` | the TCP transport's counters (dropped: a full queue, as network loss; failures: lost with a connection) |
 * | `ringraft_peer_queue_messages`, `ringraft_peer_queue_bytes`, `ringraft_peer_connected` | gauge | `peer`, `lane` | what waits to be sent, and whether the dialled connection is up |
 * | `ringraft_peer_messages_refused_total` | counter | | messages from peers that did not decode or named another node |
 * | `ringraft_peer_messages_dropped_node_total` | counter | | messages from peers dropped because the node's ring was full |
 * | `ringraft_client_connections`, `ringraft_client_requests_in_flight` | gauge | | client port connections, and requests the node has not answered (proposals and reads pending) |
 * | `ringraft_client_requests_shed_total` | counter | | requests answered UNAVAILABLE because too many waited |
 * | `ringraft_client_requests_forwarded_total` | counter | | writes and reads this follower sent on to its leader |
 * | `ringraft_client_errors_total` | counter | `code` | error replies to clients, by code (proposals failed) |
 * | `ringraft_wal_write_seconds` | histogram | | each Ready's WAL write: one `writev` and one `fdatasync` |
 * | `ringraft_apply_seconds` | histogram | | applying each Ready's committed entries |
 * | `ringraft_event_loop_delay_seconds` | gauge | `quantile` (0.5, 0.99, 1) | how late the socket thread's event loop ran its timers since the process started (`monitorEventLoopDelay`): what peers and clients wait beyond the network |
 *
 * `/health` answers 200 `{"status":"ok",...}` when the node runs and knows a leader, 503 with
 * the reason otherwise. Anything else is 404 (405 for a method other than GET or HEAD); the
 * HTTP server's own limits bound what one connection can make it hold (headers, time, count).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Registry } from 'prom-client';
import { ErrorCode, RingraftError } from '../base/index.ts';
import { LATENCY_BUCKETS_SECONDS, type LatencySnapshot, type NodeStatus, type NodeTimings } from '../runtime/index.ts';
import { TCP_LANES, type TcpTransportStats } from '../transport/index.ts';
import { formatHostPort, type HostPort } from './host-port.ts';
import type { Logger } from './log.ts';
import type { NodeServerStats } from './node-server.ts';

/** What the metrics read, once per scrape. */
export interface MetricsSnapshot {
  /** Undefined when the node's thread does not answer (down, or stuck). */
  readonly node: { readonly status: NodeStatus; readonly timings: NodeTimings | undefined } | undefined;
  readonly transport: TcpTransportStats | undefined;
  readonly server: NodeServerStats;
}

export interface MetricsSource {
  snapshot(): Promise<MetricsSnapshot>;
}

/** HTTP connections the metrics port holds at once. */
const CONNECTIONS_MAX = 64;
const REQUEST_TIMEOUT_MS = 10_000;
/** The event-loop delay monitor's timer, in milliseconds. */
const LOOP_DELAY_RESOLUTION_MS = 10;

export class MetricsServer {
  readonly registry = new Registry();
  private current: MetricsSnapshot | undefined;
  private loopDelay: IntervalHistogram | undefined;

  private constructor(
    private readonly http: Server,
    private readonly source: MetricsSource,
    private readonly log: Logger,
  ) {
    this.define();
  }

  /** Listens on `address` (an IP and a port; 0 takes a free one). Rejects with CONNECTION_FAILED if it cannot bind. */
  static async start(address: HostPort, source: MetricsSource, log: Logger): Promise<MetricsServer> {
    const http = createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, maxHeaderSize: 8 << 10 });
    http.maxConnections = CONNECTIONS_MAX;
    const server = new MetricsServer(http, source, log);
    http.on('request', (req, res) => void server.handle(req, res));
    http.on('clientError', (error, socket) => {
      // Bytes that are not HTTP: a 400 and the connection closed; the server goes on.
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
      log.log('debug', 'metrics-bad-request', `a metrics client sent what is not HTTP: ${error.message}`);
    });
    await new Promise<void>((resolve, reject) => {
      http.once('error', (error: NodeJS.ErrnoException) =>
        reject(new RingraftError(ErrorCode.CONNECTION_FAILED, `cannot listen for metrics on ${formatHostPort(address)}: ${error.code ?? error.message}`, { cause: error })),
      );
      http.listen({ host: address.host, port: address.port }, () => resolve());
    });
    return server;
  }

  get address(): HostPort {
    const a = this.http.address();
    if (a === null || typeof a === 'string') throw new RingraftError(ErrorCode.CLOSED, 'the metrics port is not listening');
    return { host: a.address, port: a.port };
  }

  close(): Promise<void> {
    this.loopDelay?.disable();
    return new Promise((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'only GET and HEAD\n');
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/metrics') {
        this.current = await this.source.snapshot();
        return send(res, 200, this.registry.contentType, await this.registry.metrics());
      }
      if (path === '/health') {
        const s = await this.source.snapshot();
        const node = s.node?.status;
        const body = node === undefined ? { status: 'down', reason: "the node's thread does not answer" } : node.leaderId === 0 ? { status: 'no-leader', role: node.role, term: node.term } : { status: 'ok', role: node.role, term: node.term, leader: node.leaderId };
        return send(res, body.status === 'ok' ? 200 : 503, 'application/json', `${JSON.stringify(body)}\n`);
      }
      return send(res, 404, 'text/plain', 'not found: /metrics or /health\n');
    } catch (error) {
      this.log.log('warn', 'metrics-failed', `a metrics request failed: ${(error as Error).message}`, { error });
      if (!res.headersSent) send(res, 500, 'text/plain', 'metrics unavailable\n');
      else res.destroy();
    }
  }

  // ─── The metrics ────────────────────────────────────────────────────────────────

  private define(): void {
    const r = this.registry;
    const snap = (): MetricsSnapshot | undefined => this.current;
    const nodeGauge = (name: string, help: string, read: (s: NodeStatus) => number): void => {
      new Gauge({
        name,
        help,
        registers: [r],
        collect() {
          const s = snap()?.node?.status;
          this.reset();
          if (s !== undefined) this.set(read(s));
        },
      });
    };
    nodeGauge('ringraft_node_term', 'The current Raft term.', (s) => s.term);
    nodeGauge('ringraft_node_commit_index', 'The highest log index known committed.', (s) => s.commitIndex);
    nodeGauge('ringraft_node_applied_index', 'The highest log index applied to the state machine.', (s) => s.appliedIndex);
    nodeGauge('ringraft_node_last_index', 'The last index in the log.', (s) => s.lastIndex);
    nodeGauge('ringraft_node_is_leader', '1 if this node leads, else 0.', (s) => (s.role === 'leader' ? 1 : 0));
    nodeGauge('ringraft_node_leader_id', 'The leader this node knows of (0: none).', (s) => s.leaderId);
    const total = (name: string, help: string, read: (s: MetricsSnapshot) => number | undefined): void => {
      new Counter({
        name,
        help,
        registers: [r],
        collect() {
          const s = snap();
          const v = s === undefined ? undefined : read(s);
          this.reset();
          if (v !== undefined) this.inc(v);
        },
      });
    };
    total('ringraft_leader_changes_total', 'Leaders this node has seen take over since it started.', (s) => s.server.leaderChanges);
    total('ringraft_peer_messages_refused_total', 'Messages from peers that did not decode or named another node.', (s) => s.node?.status.peerMessagesRefused);
    total('ringraft_peer_messages_dropped_node_total', "Messages from peers dropped because the node's ring was full.", (s) => s.server.peerMessagesDropped);
    total('ringraft_client_requests_shed_total', 'Client requests answered UNAVAILABLE because too many waited.', (s) => s.server.requestsShed);
    total('ringraft_client_requests_forwarded_total', 'Client requests this node forwarded to its leader.', (s) => s.server.requestsForwarded);
    const serverGauge = (name: string, help: string, read: (s: NodeServerStats) => number): void => {
      new Gauge({
        name,
        help,
        registers: [r],
        collect() {
          const s = snap();
          this.reset();
          if (s !== undefined) this.set(read(s.server));
        },
      });
    };
    serverGauge('ringraft_client_connections', 'Client port connections.', (s) => s.clientConnections);
    serverGauge('ringraft_client_requests_in_flight', 'Client requests the node has not answered: proposals and reads pending.', (s) => s.requestsInFlight);
    new Counter({
      name: 'ringraft_client_errors_total',
      help: 'Error replies to clients, by code.',
      labelNames: ['code'],
      registers: [r],
      collect() {
        const s = snap();
        this.reset();
        if (s !== undefined) for (const [code, n] of Object.entries(s.server.errorReplies)) this.inc({ code }, n);
      },
    });
    const laneMetric = (kind: 'counter' | 'gauge', name: string, help: string, read: (lane: TcpTransportStats['peers'][number]['lanes']['control']) => number): void => {
      const Kind = kind === 'counter' ? Counter : Gauge;
      new Kind({
        name,
        help,
        labelNames: ['peer', 'lane'],
        registers: [r],
        collect(this: Counter | Gauge) {
          const t = snap()?.transport;
          this.reset();
          if (t === undefined) return;
          for (const p of t.peers) {
            for (const lane of TCP_LANES) {
              const v = read(p.lanes[lane]);
              if (this instanceof Counter) this.inc({ peer: String(p.peerId), lane }, v);
              else this.set({ peer: String(p.peerId), lane }, v);
            }
          }
        },
      });
    };
    laneMetric('counter', 'ringraft_peer_messages_sent_total', 'Messages handed to the socket, per peer and lane.', (l) => l.messagesSent);
    laneMetric('counter', 'ringraft_peer_messages_received_total', 'Messages received, per peer and lane.', (l) => l.messagesReceived);
    laneMetric('counter', 'ringraft_peer_messages_dropped_total', "Messages dropped because the lane's queue was full (network loss).", (l) => l.messagesDropped);
    laneMetric('counter', 'ringraft_peer_send_failures_total', 'Messages lost with a connection that ended before the kernel took them.', (l) => l.sendFailures);
    laneMetric('gauge', 'ringraft_peer_queue_messages', 'Messages waiting in the lane queue.', (l) => l.queuedMessages);
    laneMetric('gauge', 'ringraft_peer_queue_bytes', 'Bytes waiting in the lane queue.', (l) => l.queuedBytes);
    laneMetric('gauge', 'ringraft_peer_connected', '1 if the dialled connection is up.', (l) => (l.connected ? 1 : 0));
    const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
    loopDelay.enable();
    this.loopDelay = loopDelay;
    new Gauge({
      name: 'ringraft_event_loop_delay_seconds',
      help: "How late the socket thread's event loop ran, by quantile, since the process started.",
      labelNames: ['quantile'],
      registers: [r],
      collect() {
        this.reset();
        if (loopDelay.count === 0) return;
        // Each sample is the whole timer interval: what lies beyond the resolution is the delay.
        const late = (ns: number): number => Math.max(0, ns - LOOP_DELAY_RESOLUTION_MS * 1e6) / 1e9;
        this.set({ quantile: '0.5' }, late(loopDelay.percentile(50)));
        this.set({ quantile: '0.99' }, late(loopDelay.percentile(99)));
        this.set({ quantile: '1' }, late(loopDelay.max));
      },
    });
    r.registerMetric(new SnapshotHistogram('ringraft_wal_write_seconds', "Each Ready's WAL write: one writev and one fdatasync.", () => snap()?.node?.timings?.persist) as never);
    r.registerMetric(new SnapshotHistogram('ringraft_apply_seconds', "Applying each Ready's committed entries.", () => snap()?.node?.timings?.apply) as never);
  }
}

/** A histogram whose buckets are kept elsewhere (the node's thread) and read from a snapshot. */
class SnapshotHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read: () => LatencySnapshot | undefined,
  ) {}

  get(): { name: string; help: string; type: string; aggregator: string; values: { labels: Record<string, string | number>; value: number; metricName: string }[] } {
    const h = this.read();
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    if (h !== undefined) {
      let cumulative = 0;
      LATENCY_BUCKETS_SECONDS.forEach((le, i) => {
        cumulative += h.counts[i]!;
        values.push({ labels: { le }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf' }, value: h.count, metricName: `${this.name}_bucket` });
      values.push({ labels: {}, value: h.sumSeconds, metricName: `${this.name}_sum` });
      values.push({ labels: {}, value: h.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
