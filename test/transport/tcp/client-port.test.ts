// Proves the client port's exchange on real sockets on 127.0.0.1: many pipelined request
// frames (built by the real client-protocol encoder) reach onRequest in order and whole, in
// few frames; replies reach the client in the order the server sent them; a client of another
// cluster is refused with HANDSHAKE_REFUSED and reason 'cluster'; a client past connectionsMax
// with reason 'full'; a host's close(error) reaches the client as that code; the server's
// close reaches the client as CLOSED; and the transport's header size is the protocol's.
import { describe, expect, it } from 'vitest';
import { ErrorCode, RingraftError } from '../../../src/base/index.ts';
import { REQUEST_HEADER_BYTES, decodeRequest } from '../../../src/runtime/client-protocol.ts';
import { CLIENT_FRAME_HEADER_BYTES, ClientPortConnection, ClientPortError, clusterIdOf } from '../../../src/transport/tcp/index.ts';
import { waitFor } from './helpers.ts';
import { CLIENT_CLUSTER_ID, clientPortResources, readFrame, requestIdOf } from './client-port-helpers.ts';

const { serve, dial } = clientPortResources();

describe('ClientPortServer and ClientPortConnection', () => {
  it('the transport header is the client protocol header', () => {
    expect(CLIENT_FRAME_HEADER_BYTES).toBe(REQUEST_HEADER_BYTES);
  });

  it('carries many pipelined requests in order, and replies in the order sent', async () => {
    const { server, requests } = await serve();
    const client = await dial(server);
    expect(client.conn.requestsInFlightMax).toBe(server.settings.requestsInFlightMax);
    expect(client.conn.nodeId).toBe(7);
    const count = 3_000;
    for (let i = 1; i <= count; i++) client.conn.send(readFrame(i));
    await waitFor(() => requests.length === count, 'every request');
    expect(requests.map((r) => decodeRequest(r.frame).requestId)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    // Reply in reverse: the client sees exactly that order.
    for (let i = count - 1; i >= 0; i--) expect(requests[i]!.conn.reply(readFrame(requestIdOf(requests[i]!.frame)))).toBe(true);
    await waitFor(() => client.replies.length === count, 'every reply');
    expect(client.replies.map(requestIdOf)).toEqual(Array.from({ length: count }, (_, i) => count - i));
    expect(requests[0]!.conn.requestsInFlight).toBe(0);
  });

  it('refuses a client of another cluster with a typed reason, and serves the next', async () => {
    const { server, logs } = await serve();
    const error = await ClientPortConnection.connect(server.address, { clusterId: clusterIdOf('another'), onReply: () => {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientPortError);
    expect((error as ClientPortError).code).toBe(ErrorCode.HANDSHAKE_REFUSED);
    expect((error as ClientPortError).refusalReason).toBe('cluster');
    expect(logs.some((e) => e.kind === 'refused' && e.refusalReason === 'cluster')).toBe(true);
    const good = await dial(server, {}, CLIENT_CLUSTER_ID);
    expect(good.conn.isClosed).toBe(false);
  });

  it('refuses a client past connectionsMax with reason full', async () => {
    const { server } = await serve({ settings: { connectionsMax: 2 } });
    await dial(server);
    await dial(server);
    const error = (await dial(server).catch((e: unknown) => e)) as ClientPortError;
    expect(error.code).toBe(ErrorCode.HANDSHAKE_REFUSED);
    expect(error.refusalReason).toBe('full');
  });

  it("passes the host's close(error) and the server's close to the client as typed codes", async () => {
    const { server, requests } = await serve();
    const a = await dial(server);
    const b = await dial(server);
    a.conn.send(readFrame(1));
    await waitFor(() => requests.length === 1, 'a request');
    requests[0]!.conn.close(new RingraftError(ErrorCode.PROTOCOL_ERROR, 'bad request'));
    await waitFor(() => a.closes.length === 1, 'a closed');
    expect(a.closes[0]!.code).toBe(ErrorCode.PROTOCOL_ERROR);
    await server.close();
    await waitFor(() => b.closes.length === 1, 'b closed');
    expect(b.closes[0]!.code).toBe(ErrorCode.CLOSED);
    expect(() => b.conn.send(readFrame(2))).toThrow(expect.objectContaining({ code: ErrorCode.CLOSED }) as Error);
  });
});
