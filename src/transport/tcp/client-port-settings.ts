/**
 * The settings of the client port (client-port.ts) and of its client connections
 * (client-connection.ts), each defined once with its default, range and doc comment
 * (base/settings.ts). Both sides read the one group: the server the bounds it keeps per
 * connection, the client its send queue and keepalive; the frame limit and the timers apply
 * to both. How they relate (keepalive within the idle timeout, a batch within a frame) is
 * checked when they are resolved.
 */
import { checkOrder, integer, resolveSettings, type Settings, type SettingsInput } from '../../base/index.ts';
import { FRAME_BYTES_LIMIT, FRAME_BYTES_MIN } from './frame.ts';

const MS_MAX = 3_600_000;

export const CLIENT_PORT_SETTINGS = {
  /** Server: client connections held at once. One past it is answered with a REFUSAL ('full') and closed; past it by more than 64 (connections still being refused), the listener drops new ones on accept. Default 1,024. */
  connectionsMax: integer(1_024, 1, 1 << 16),
  /** Server: requests a connection may have unanswered (delivered to `onRequest` and not yet ended by a reply); announced to the client in the WELCOME. One more cuts the connection off (TOO_MANY_REQUESTS). A watch counts until it ends. Default 4,096. */
  requestsInFlightMax: integer(4_096, 1, 1 << 16),
  /** Server: replies queued per connection and not yet handed to its socket; one more cuts the connection off (QUEUE_FULL): a client that does not read its replies never makes the server's memory grow. Default 16,384. */
  replyQueueCountMax: integer(16_384, 1, 1 << 20),
  /** Server: bytes of those replies, at most. Default 16 MiB. */
  replyQueueBytesMax: integer(16 << 20, 1, Number.MAX_SAFE_INTEGER),
  /** Client: requests `send` queues while the socket pushes back (or before the turn's flush); one more is refused (QUEUE_FULL). Default 16,384. */
  sendQueueCountMax: integer(16_384, 1, 1 << 20),
  /** Client: bytes of those requests, at most. Default 16 MiB. */
  sendQueueBytesMax: integer(16 << 20, 1, Number.MAX_SAFE_INTEGER),
  /** Largest frame, header and CRC included, a side sends or accepts; checked on a frame's header before anything is allocated for it. Each side announces it in the handshake, and sends the other nothing larger: one client-protocol frame is at most the smaller of the two less 16 bytes. Default 16 MiB (a write request of the largest key and value is some 2 MiB). */
  frameBytesMax: integer(16 << 20, FRAME_BYTES_MIN, FRAME_BYTES_LIMIT),
  /** A flush packs queued client-protocol frames into one BATCH frame, written with one call, of at most this many bytes; a larger one travels alone. Default 256 KiB. */
  batchBytesMax: integer(256 << 10, FRAME_BYTES_MIN, FRAME_BYTES_LIMIT),
  /** A write the socket has not taken (no 'drain') for this long closes the connection (TIMEOUT). Default 5,000 ms. */
  writeStallTimeoutMs: integer(5_000, 1, MS_MAX),
  /** A connection that has received nothing for this long (since it was made, or since its last frame) is closed as half-open (TIMEOUT); on the client this also bounds the connect and its handshake. Default 5,000 ms. */
  idleTimeoutMs: integer(5_000, 2, MS_MAX),
  /** Client: a PING this often, which the server answers with a PONG, so that a quiet connection proves itself both ways. Less than idleTimeoutMs. Default 1,000 ms. */
  keepaliveIntervalMs: integer(1_000, 1, MS_MAX),
} as const;

/** Every client port setting, resolved. */
export type ClientPortSettings = Settings<typeof CLIENT_PORT_SETTINGS>;
/** The client port settings a caller may give; the rest take their defaults. */
export type ClientPortSettingsInput = SettingsInput<typeof CLIENT_PORT_SETTINGS>;

/**
 * Resolves client port settings and checks how they relate; `path` prefixes names in errors.
 * An unknown name, a bad value or a broken relation is an INVALID_ARGUMENT naming them.
 */
export function resolveClientPortSettings(input: unknown, path = ''): ClientPortSettings {
  const s = resolveSettings(CLIENT_PORT_SETTINGS, input, path);
  checkOrder(s, path, 'keepaliveIntervalMs', 'idleTimeoutMs', 'less');
  checkOrder(s, path, 'batchBytesMax', 'frameBytesMax', 'at-most');
  return s;
}
