/**
 * The settings of the TCP peer transport, each defined once with its default, range and doc
 * comment (base/settings.ts). The coming `serve` command reads them from its configuration
 * file and passes them to `TcpTransport.start({ settings })`; how they relate (keepalive
 * within the idle timeout, the back-off floor below its cap, a batch within a frame) is
 * checked here, when they are resolved.
 */
import { checkOrder, integer, resolveSettings, type Settings, type SettingsInput } from '../../base/index.ts';
import { FRAME_BYTES_LIMIT, FRAME_BYTES_MIN, FRAME_OVERHEAD_BYTES, MESSAGE_PREFIX_BYTES } from './frame.ts';

const MS_MAX = 3_600_000;

export const TCP_TRANSPORT_SETTINGS = {
  /** Messages queued per peer and lane while the connection is down or pushing back; past this the new message is dropped as network loss and counted. Default 1,024. */
  queueMessagesMax: integer(1_024, 1, 1 << 20),
  /** Bytes of those messages, at most, per peer and lane. Default 32 MiB: twice the default Raft in-flight bytes, so that appends within the window are not dropped. */
  queueBytesMax: integer(32 << 20, 1, Number.MAX_SAFE_INTEGER),
  /** Largest frame, header and CRC included, that a connection sends or accepts; checked on a frame's header before anything is allocated for it. A message must fit one frame: at most this less 16 bytes. Default 16 MiB (the default 8 MiB proposal fits, with its entry and message framing). */
  frameBytesMax: integer(16 << 20, FRAME_BYTES_MIN, FRAME_BYTES_LIMIT),
  /** A flush packs queued messages into one frame, written with one call, of at most this many bytes; a larger message travels alone. Default 256 KiB. */
  batchBytesMax: integer(256 << 10, FRAME_BYTES_MIN, FRAME_BYTES_LIMIT),
  /** A write the socket has not taken (no 'drain') for this long tears the connection down; it is redialled. Default 5,000 ms. */
  writeStallTimeoutMs: integer(5_000, 1, MS_MAX),
  /** A connection that has received nothing for this long (since it was dialled or accepted, or since its last frame) is torn down as half-open; it is redialled. Default 5,000 ms. */
  idleTimeoutMs: integer(5_000, 2, MS_MAX),
  /** A dialler sends a keepalive ping this often on each connection, and the far side answers: a quiet link then still proves itself both ways. Less than idleTimeoutMs. Default 1,000 ms. */
  keepaliveIntervalMs: integer(1_000, 1, MS_MAX),
  /** Delay before the first redial after a connection fails; it doubles with each failure in a row (each delay drawn in [half, all] of it). Default 50 ms. */
  redialBackoffMsMin: integer(50, 1, MS_MAX),
  /** Largest redial delay: well below an election timeout (a node server refuses more than half of its own), so that a peer back from a restart is reached before it could time out. Default 200 ms, under half of the default 500 ms election timeout. */
  redialBackoffMsMax: integer(200, 1, MS_MAX),
  /** Inbound connections held at once (every peer dials three lanes); more are dropped on accept. Default 1,024. */
  inboundConnectionsMax: integer(1_024, 1, 1 << 16),
} as const;

/** Every TCP transport setting, resolved. */
export type TcpTransportSettings = Settings<typeof TCP_TRANSPORT_SETTINGS>;
/** The TCP transport settings a caller may give; the rest take their defaults. */
export type TcpTransportSettingsInput = SettingsInput<typeof TCP_TRANSPORT_SETTINGS>;

/**
 * Resolves TCP transport settings and checks how they relate; `path` prefixes names in errors
 * (`transport.`). An unknown name, a bad value or a broken relation is an INVALID_ARGUMENT
 * that names the settings.
 */
export function resolveTcpTransportSettings(input: unknown, path = ''): TcpTransportSettings {
  const s = resolveSettings(TCP_TRANSPORT_SETTINGS, input, path);
  checkOrder(s, path, 'keepaliveIntervalMs', 'idleTimeoutMs', 'less');
  checkOrder(s, path, 'redialBackoffMsMin', 'redialBackoffMsMax', 'at-most');
  checkOrder(s, path, 'batchBytesMax', 'frameBytesMax', 'at-most');
  return s;
}

/** The largest message `send` takes under `frameBytesMax`: one message alone in a batch frame. */
export function messageBytesMaxOf(frameBytesMax: number): number {
  return frameBytesMax - FRAME_OVERHEAD_BYTES - MESSAGE_PREFIX_BYTES;
}
