/**
 * What the dialled and accepted sides of a connection (outbound.ts, inbound.ts) need from the
 * transport that owns them, and the log entries the transport reports through its `onLog`.
 */
import type { Socket } from 'node:net';
import type { TcpTransportError } from './errors.ts';
import type { CloseKind } from './framed-socket.ts';
import type { RefusalReason, TcpLane } from './handshake.ts';
import type { TcpTransportSettings } from './settings.ts';

export type TcpLogLevel = 'info' | 'warn' | 'error';

/**
 * What a log entry reports. `listening`: the listener is bound. `connected`: a dialled lane
 * was accepted. `accepted`: an inbound lane passed its handshake. `refused`: this transport
 * refused a handshake (an inbound HELLO, or the WELCOME of a listener that is not the peer
 * dialled). `refused-by-peer`: the peer refused this transport's HELLO. `dial-failed`: a TCP
 * connect failed. `closed`: a connection broke or the far side closed it. `corrupt`: bytes
 * that are not frames. `write-stall`, `idle`: a timeout tore a connection down. `replaced`:
 * a newer connection from the same peer and lane took an inbound one's place. `redial`: the
 * next dial of a lane waits `delayMs`. `connection-dropped`: an inbound connection past
 * `inboundConnectionsMax`. `listener-error`: the listener failed.
 */
export type TcpLogKind =
  | 'listening'
  | 'connected'
  | 'accepted'
  | 'refused'
  | 'refused-by-peer'
  | 'dial-failed'
  | 'closed'
  | 'corrupt'
  | 'write-stall'
  | 'idle'
  | 'replaced'
  | 'peer-stopping'
  | 'redial'
  | 'connection-dropped'
  | 'listener-error'
  | 'tls-failed'
  | 'tls-reloaded'
  | 'tls-reload-failed';

/** One event of the transport, for its host's log. Compare `kind` and `error.code`, never `message`. */
export interface TcpLogEntry {
  readonly level: TcpLogLevel;
  readonly kind: TcpLogKind;
  /** The peer, once known (an inbound connection names it in its HELLO). */
  readonly peerId: number | undefined;
  readonly lane: TcpLane | undefined;
  /** `out`: a connection this transport dialled; `in`: one it accepted. */
  readonly direction: 'in' | 'out' | undefined;
  /** The far end, `host:port`. */
  readonly remote: string | undefined;
  readonly error: TcpTransportError | undefined;
  /** For `refused` and `refused-by-peer`: why. */
  readonly refusalReason: RefusalReason | undefined;
  /** For `redial`: how long the next dial waits. */
  readonly delayMs: number | undefined;
  /** One line for people. */
  readonly message: string;
}

export type LogFields = Partial<Omit<TcpLogEntry, 'level' | 'kind' | 'message'>>;

/** The transport-wide counters (stats.ts, `TcpTransportStats`). */
export interface TransportCounters {
  connectionsAccepted: number;
  connectionsRefused: number;
  connectionsCorrupt: number;
  connectionsDropped: number;
}

export interface TransportContext {
  readonly settings: TcpTransportSettings;
  readonly nodeId: number;
  readonly clusterId: bigint;
  readonly counters: TransportCounters;
  isClosing(): boolean;
  log(level: TcpLogLevel, kind: TcpLogKind, message: string, fields: LogFields): void;
  /** Keeps a socket in the set `close()` destroys and waits for. */
  trackSocket(socket: Socket): void;
  /** The peer may have lost messages: report it unreachable once this turn is over. */
  markUnreachable(peerId: number): void;
  /** With TLS: the cert, key and CA a new connection uses now. */
  readonly tls: (() => { cert?: Buffer; key?: Buffer; ca: Buffer }) | undefined;
}

/** Logs how a connection ended, unless it ended on purpose (`removed`, `closing`). */
export function logClose(ctx: TransportContext, kind: CloseKind, error: TcpTransportError | undefined, connected: boolean, fields: LogFields): void {
  const what = `${fields.direction === 'out' ? 'to' : 'from'} node ${fields.peerId ?? '?'} (${fields.lane ?? 'lane unknown'}, ${fields.remote ?? '?'})`;
  const because = error === undefined ? '' : `: ${error.message}`;
  switch (kind) {
    case 'closed':
      if (connected) ctx.log('warn', 'closed', `connection ${what} closed${because}`, { ...fields, error });
      else ctx.log('warn', 'dial-failed', `dial ${what} failed${because}`, { ...fields, error });
      return;
    case 'corrupt':
      ctx.counters.connectionsCorrupt++;
      ctx.log('error', 'corrupt', `connection ${what} sent bytes that are not frames${because}`, { ...fields, error });
      return;
    case 'write-stall':
    case 'idle':
      ctx.log('warn', kind, `connection ${what} torn down${because}`, { ...fields, error });
      return;
    case 'replaced':
      ctx.log('info', 'replaced', `connection ${what} replaced by a newer one`, fields);
      return;
    case 'peer-stopping':
      ctx.log('info', 'peer-stopping', `node ${fields.peerId ?? '?'} is stopping: connection ${what} closed`, fields);
      return;
    case 'refused':
    case 'refused-by-peer':
      // Logged where the refusal is decided, with its reason.
      return;
    case 'removed':
    case 'closing':
      return;
  }
}
