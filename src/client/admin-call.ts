/**
 * One admin command (runtime/client-protocol.ts `admin`, answered by the node's server
 * process: server/admin.ts) to one endpoint, on a connection of its own that is closed when
 * the answer comes: `ringraft status` asks every endpoint, `ringraft move-leader` the leader.
 */
import { ErrorCode, RingraftError } from '../base/index.ts';
import { decodeReply, encodedRequestBytes, writeRequest, type ClientRequest } from '../runtime/index.ts';
import { ClientPortConnection, clusterIdOf, type TlsFiles } from '../transport/index.ts';
import { parseEndpoint } from './endpoint-address.ts';

/**
 * Sends `command` to `endpoint` (`HOST:PORT`) and resolves with the answer's JSON value.
 * Rejects with the node's code (INVALID_ARGUMENT for a command it does not know), TIMEOUT
 * after `timeoutMs`, or the connection's failure (CONNECTION_FAILED, HANDSHAKE_REFUSED, ...).
 */
export async function adminCall(endpoint: string, clusterToken: string, command: object, timeoutMs: number, tls?: TlsFiles): Promise<unknown> {
  const address = parseEndpoint(endpoint, 'endpoint');
  let settle!: { resolve: (value: unknown) => void; reject: (error: RingraftError) => void };
  const answer = new Promise<unknown>((resolve, reject) => (settle = { resolve, reject }));
  const timer = setTimeout(() => settle.reject(new RingraftError(ErrorCode.TIMEOUT, `${endpoint} did not answer ${JSON.stringify(command)} within ${timeoutMs} ms`)), timeoutMs);
  let conn: ClientPortConnection | undefined;
  try {
    conn = await Promise.race([
      ClientPortConnection.connect(address, {
        clusterId: clusterIdOf(clusterToken),
        ...(tls === undefined ? {} : { tls }),
        onReply: (frame) => {
          const reply = decodeReply(frame);
          if (reply.kind === 'admin') settle.resolve(JSON.parse(reply.body) as unknown);
          else if (reply.kind === 'error') settle.reject(new RingraftError(reply.code, `${endpoint} refused ${JSON.stringify(command)}: ${reply.code}`));
          else settle.reject(new RingraftError(ErrorCode.PROTOCOL_ERROR, `${endpoint} answered an admin command with a ${reply.kind} reply`));
        },
        onClose: (error) => settle.reject(error),
      }),
      answer.then(() => undefined),
    ]);
    if (conn === undefined) return await answer;
    const req: ClientRequest = { kind: 'admin', requestId: 1, body: JSON.stringify(command) };
    const frame = new Uint8Array(encodedRequestBytes(req));
    writeRequest(req, frame);
    conn.send(frame);
    return await answer;
  } finally {
    clearTimeout(timer);
    await conn?.close();
  }
}
