// The metrics port: Prometheus text with the node's state, its peers' counters and its WAL
// latency; /health; and what it does with requests that are not what it serves.
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { configOf, freePort, HOST, portsFor, servers, tempDirs, waitFor } from './helpers.ts';

const dirs = tempDirs();
const start = servers();

async function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://${HOST}:${port}${path}`, { method });
  return { status: res.status, body: await res.text() };
}

describe('metrics port', () => {
  it('serves the node state, WAL write latency and peer counters in the Prometheus format, and /health', async () => {
    const ports = await portsFor(2);
    const metricsPort = await freePort();
    // Node 2 never starts: node 1 has a peer to count messages to, and no quorum.
    await start(configOf(1, dirs(), ports, { listenMetrics: `${HOST}:${metricsPort}` }));
    const health = await get(metricsPort, '/health');
    expect(health.status).toBe(503);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'no-leader' });
    const text = await waitFor(async () => {
      const m = await get(metricsPort, '/metrics');
      // Its pre-votes to node 2 wait in the control lane's queue (node 2 is not there to dial).
      return /^ringraft_peer_queue_messages\{peer="2",lane="control"\} [1-9]/m.test(m.body) ? m.body : undefined;
    }, 'pre-votes queued for node 2');
    expect(text).toMatch(/^ringraft_node_term [0-9]+$/m);
    expect(text).toMatch(/^ringraft_node_is_leader 0$/m);
    expect(text).toMatch(/^ringraft_wal_write_seconds_bucket\{le="0\.001"\} [0-9]+$/m);
    expect(text).toMatch(/^ringraft_wal_write_seconds_count [1-9][0-9]*$/m);
    expect(text).toMatch(/^# TYPE ringraft_wal_write_seconds histogram$/m);
    expect(text).toMatch(/^ringraft_peer_connected\{peer="2",lane="control"\} 0$/m);
  });

  it('a one-node leader is healthy; other paths, methods and bytes that are not HTTP get their error, and the port serves on', async () => {
    const ports = await portsFor(1);
    const metricsPort = await freePort();
    await start(configOf(1, dirs(), ports, { listenMetrics: `${HOST}:${metricsPort}` }));
    const health = await waitFor(async () => {
      const h = await get(metricsPort, '/health');
      return h.status === 200 ? h : undefined;
    }, 'healthy');
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok', role: 'leader', leader: 1 });
    expect((await get(metricsPort, '/nope')).status).toBe(404);
    expect((await get(metricsPort, '/metrics', 'POST')).status).toBe(405);
    const reply = await new Promise<string>((resolve) => {
      const s = connect({ host: HOST, port: metricsPort }, () => s.end('\x00\x01garbage that is not HTTP\r\n\r\n'));
      let got = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => (got += d));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    const m = await get(metricsPort, '/metrics');
    expect(m.status).toBe(200);
    expect(m.body).toMatch(/^ringraft_node_is_leader 1$/m);
    expect(m.body).toMatch(/^ringraft_leader_changes_total 1$/m);
    expect(m.body).toMatch(/^ringraft_event_loop_delay_seconds\{quantile="0\.99"\} [0-9.e-]+$/m);
  });
});
