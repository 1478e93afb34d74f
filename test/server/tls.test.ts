// TLS between node servers (mutual, each certificate naming its node) and to clients, with
// certificates made in the test: a cluster with TLS serves; a peer with a certificate of
// another node, of another CA, or without TLS is refused and logged while the others serve;
// clients need the CA (and a certificate when required); certificates rotate without a restart.
import { copyFileSync, readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { RingraftError } from '../../src/base/index.ts';
import { connect } from '../../src/client/index.ts';
import { TcpTransport, clusterIdOf } from '../../src/transport/index.ts';
import { makeCa, makeCert } from './certs.ts';
import { configOf, HOST, memoryLogger, portsFor, servers, tempDirs, waitFor } from './helpers.ts';

const dirs = tempDirs();
const start = servers();

function tlsOf(cert: { certFile: string; keyFile: string }, caFile: string, clientCertRequired = false): object {
  return { tlsCert: cert.certFile, tlsKey: cert.keyFile, tlsCa: caFile, ...(clientCertRequired ? { clientCertRequired } : {}) };
}

describe('TLS', () => {
  for (const wrong of ['names another node', 'comes from another CA'] as const) {
    it(`a cluster with mutual TLS serves a client with the CA; a peer whose certificate ${wrong} is refused and logged`, async () => {
      const certs = dirs();
      const ca = makeCa(certs, 'ca');
      const other = makeCa(certs, 'other-ca');
      const node1 = makeCert(certs, ca, 'node-1');
      const ports = await portsFor(3);
      const logs = [1, 2, 3].map((id) => memoryLogger(id));
      // Nodes 1 and 2 are right, a quorum; node 3 is not.
      await start(configOf(1, dirs(), ports, tlsOf(node1, ca.certFile)), logs[0]);
      await start(configOf(2, dirs(), ports, tlsOf(makeCert(certs, ca, 'node-2'), ca.certFile)), logs[1]);
      const bad = wrong === 'names another node' ? node1 : makeCert(certs, other, 'node-3');
      await start(configOf(3, dirs(), ports, tlsOf(bad, wrong === 'names another node' ? ca.certFile : other.certFile)), logs[2]);
      const kv = await connect({ endpoints: [`${HOST}:${ports.client[0]}`, `${HOST}:${ports.client[1]}`], clusterToken: 'serve-tests', tls: { caFile: ca.certFile } });
      try {
        await kv.put('secret', 'kept');
        expect(new TextDecoder().decode(await kv.get('secret'))).toBe('kept');
        const seen = (kind: string, reason?: string) => () =>
          logs.slice(0, 2).some((log) => log.lines.some((l) => l['kind'] === kind && (reason === undefined || l['refusalReason'] === reason))) ? true : undefined;
        if (wrong === 'names another node') await waitFor(seen('peer-refused', 'identity'), 'node 3 refused: its certificate names node 1');
        else await waitFor(seen('peer-tls-failed'), 'node 3 refused in the TLS handshake');
        expect((await Promise.all([1, 2].map((id) => kv.get('secret', { nodeId: id, consistency: 'stale' })))).map((v) => new TextDecoder().decode(v))).toEqual(['kept', 'kept']);
      } finally {
        await kv.close();
      }
      // Without the right CA, or without TLS at all, a client does not get in.
      for (const tls of [{ caFile: other.certFile }, undefined]) {
        const refused = await connect({ endpoints: [`${HOST}:${ports.client[0]}`], clusterToken: 'serve-tests', connectTimeoutMs: 2_000, ...(tls === undefined ? {} : { tls }) }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(refused).toBeInstanceOf(RingraftError);
      }
    });
  }

  it('a peer without TLS is refused in the handshake; the node serves on', async () => {
    const certs = dirs();
    const ca = makeCa(certs, 'ca');
    const ports = await portsFor(2);
    const log = memoryLogger(1);
    const s = await start(configOf(1, dirs(), ports, tlsOf(makeCert(certs, ca, 'node-1'), ca.certFile)), log);
    const plain = await TcpTransport.start({ nodeId: 2, clusterId: clusterIdOf('serve-tests'), listen: { host: HOST, port: ports.peer[1]! }, peers: [[1, { host: HOST, port: ports.peer[0]! }]], onMessage: () => {} });
    try {
      plain.send(1, Uint8Array.of(1, 7, 0, 0), 'control');
      await waitFor(() => (log.lines.some((l) => l['kind'] === 'peer-tls-failed') ? true : undefined), 'the plain dialler refused');
    } finally {
      await plain.close();
    }
    expect((await s.status()).id).toBe(1);
  });

  it('with clientCertRequired a client needs a certificate from the CA; certificates rotate without a restart', async () => {
    const certs = dirs();
    const ca = makeCa(certs, 'ca');
    const ports = await portsFor(1);
    const first = makeCert(certs, ca, 'node-1', 'node-1-a');
    const live = { certFile: `${certs}/live.crt`, keyFile: `${certs}/live.key` };
    copyFileSync(first.certFile, live.certFile);
    copyFileSync(first.keyFile, live.keyFile);
    await start(configOf(1, dirs(), ports, tlsOf(live, ca.certFile, true)));
    const endpoint = `${HOST}:${ports.client[0]}`;
    const without = await connect({ endpoints: [endpoint], clusterToken: 'serve-tests', tls: { caFile: ca.certFile }, connectTimeoutMs: 2_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(without).toBeInstanceOf(RingraftError);
    const client = makeCert(certs, ca, 'a-client');
    const kv = await connect({ endpoints: [endpoint], clusterToken: 'serve-tests', tls: { caFile: ca.certFile, ...client } });
    try {
      await waitFor(async () => (await kv.put('k', 'v').then(() => true, () => undefined)), 'a write');
    } finally {
      await kv.close();
    }
    const serialOf = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = tlsConnect({ host: HOST, port: ports.client[0]!, ca: readFileSync(ca.certFile), cert: readFileSync(client.certFile), key: readFileSync(client.keyFile), checkServerIdentity: () => undefined }, () => {
          resolve(socket.getPeerCertificate().serialNumber);
          socket.destroy();
        });
        socket.on('error', reject);
      });
    const before = await serialOf();
    const second = makeCert(certs, ca, 'node-1', 'node-1-b');
    copyFileSync(second.certFile, live.certFile);
    copyFileSync(second.keyFile, live.keyFile);
    const after = await waitFor(async () => {
      const serial = await serialOf();
      return serial !== before ? serial : undefined;
    }, 'the new certificate in use', 5_000);
    expect(after).not.toBe(before);
  });
});
