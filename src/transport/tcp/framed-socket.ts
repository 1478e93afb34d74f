/**
 * One TCP socket that carries frames, either way: it decodes what arrives into frames, keeps
 * the two clocks the transport's timeouts read (when it last heard anything, since when a
 * write has waited for 'drain'), and turns every way a socket can end into one report, once,
 * with a kind and a typed error. The dialled and the accepted side (outbound.ts, inbound.ts)
 * decide what the frames mean.
 */
import type { Buffer } from 'node:buffer';
import type { Server, Socket } from 'node:net';
import type { RingraftError } from '../../base/index.ts';
import { performance } from 'node:perf_hooks';
import { TcpTransportError } from './errors.ts';
import { FrameDecoder, type FrameType } from './frame.ts';

/**
 * Why a connection ended. `closed`: it broke or the far side closed it (CONNECTION_FAILED).
 * `corrupt`: bytes that are not frames (CORRUPT_FRAME, FRAME_TOO_LARGE). `write-stall`,
 * `idle`: a timeout (TIMEOUT). `refused`: this side refused the handshake; `refused-by-peer`:
 * the far side did (HANDSHAKE_REFUSED). `replaced`: a newer connection from the same peer
 * and lane took its place. `removed`: its peer was removed, or moved to another address.
 * `closing`: the transport closed.
 */
export type CloseKind = SocketCloseKind | 'refused' | 'refused-by-peer' | 'replaced' | 'removed' | 'closing' | 'peer-stopping';
/** The kinds a {@link FramedSocket} reports by itself; its owner adds its own (`K`). */
export type SocketCloseKind = 'closed' | 'corrupt' | 'write-stall' | 'idle';

/**
 * What a framed socket tells its owner. `K` is the owner's close kinds (the peer transport's
 * {@link CloseKind}; the client port has its own) and `E` the errors it closes with.
 */
export interface FramedSocketEvents<K extends string = CloseKind, E extends RingraftError = TcpTransportError> {
  /** One frame, valid only during the call. Return false if the connection was closed inside, to stop reading. */
  frame(type: FrameType, payload: Uint8Array): boolean;
  /** Writes may go on: the socket took what was buffered. */
  drain(): void;
  /** The connection ended; called exactly once. `error` is undefined for `replaced`, `removed` and `closing`. */
  closed(kind: K | SocketCloseKind, error: E | TcpTransportError | undefined): void;
}

/**
 * Binds `server` to `address` (an IP literal and a port, 0 for any free one) and resolves once
 * it listens, or rejects with the system's error (EADDRINUSE, ...). A connection dropped past
 * `server.maxConnections` is reported to `onDrop` with its remote address; later listener errors
 * go to `onError`. Both listeners, the peer transport's and the client port's, start this way.
 */
export async function listenOn(
  server: Server,
  address: { readonly host: string; readonly port: number },
  onDrop: (remote: string) => void,
  onError: (error: Error) => void,
): Promise<void> {
  server.on('drop', (data) => onDrop(`${data?.remoteAddress ?? '?'}:${data?.remotePort ?? '?'}`));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address.host, port: address.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', onError);
}

export function nowMs(): number {
  return performance.now();
}

export class FramedSocket<K extends string = CloseKind, E extends RingraftError = TcpTransportError> {
  /** When anything last arrived (or the socket connected). */
  lastReceivedMs: number;
  /** Since when a write has waited for 'drain'; undefined while the socket takes writes. */
  blockedSinceMs: number | undefined;
  /** Whether the TCP connection was made (an accepted socket always was). */
  connected: boolean;
  /** Messages in writes the socket has not yet handed to the kernel; once closed, those it never did (lost). */
  unwrittenMessages = 0;
  private readonly decoder: FrameDecoder;
  private closedReported = false;
  /** Destroys a socket that was ended with a last frame but that the far side does not close. */
  private lingerTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: Socket,
    frameBytesMax: number,
    connected: boolean,
    private readonly events: FramedSocketEvents<K, E>,
  ) {
    this.decoder = new FrameDecoder(frameBytesMax);
    this.lastReceivedMs = nowMs();
    this.connected = connected;
    socket.setNoDelay(true);
    // A throw out of the frame handler (the caller's onMessage) is a bug of the caller, not a
    // bad frame: it goes on up, whatever its type.
    let handlerThrew = false;
    const onFrame = (type: FrameType, payload: Uint8Array): boolean => {
      try {
        return events.frame(type, payload);
      } catch (error) {
        handlerThrew = true;
        throw error;
      }
    };
    socket.on('connect', () => {
      this.connected = true;
      this.lastReceivedMs = nowMs();
    });
    socket.on('data', (chunk: Buffer) => {
      this.lastReceivedMs = nowMs();
      try {
        this.decoder.push(chunk, onFrame);
      } catch (error) {
        if (handlerThrew || !(error instanceof TcpTransportError)) throw error;
        this.close('corrupt', error);
      }
    });
    socket.on('end', () => {
      const partialBytes = this.decoder.partialBytes;
      if (partialBytes > 0) this.close('corrupt', new TcpTransportError('CORRUPT_FRAME', `stream ended ${partialBytes} bytes into a frame`));
      else this.close('closed', new TcpTransportError('CONNECTION_FAILED', 'closed by the far side'));
    });
    socket.on('error', (cause: Error) => {
      this.close('closed', new TcpTransportError('CONNECTION_FAILED', `${this.connected ? 'connection broke' : 'could not connect'}: ${cause.message}`, { cause }));
    });
    socket.on('drain', () => {
      this.blockedSinceMs = undefined;
      if (!this.closedReported) events.drain();
    });
    socket.on('close', () => {
      clearTimeout(this.lingerTimer);
      this.close('closed', new TcpTransportError('CONNECTION_FAILED', 'socket closed'));
    });
  }

  get isClosed(): boolean {
    return this.closedReported;
  }

  /** Whether writes should wait for 'drain'. */
  get isBlocked(): boolean {
    return this.blockedSinceMs !== undefined;
  }

  /**
   * Writes one buffer (one or more whole frames, carrying `messages` messages) with one
   * call, and marks the socket blocked when it pushes back. Until the socket has handed the
   * buffer to the kernel, its messages count in {@link unwrittenMessages}.
   */
  write(frames: Buffer, messages = 0): void {
    if (this.closedReported) return;
    this.unwrittenMessages += messages;
    const written = messages === 0 ? undefined : (): void => {
      // After the connection ended, Node reports even an unfinished write as done: the
      // count taken at the end stands.
      if (!this.closedReported) this.unwrittenMessages -= messages;
    };
    if (!this.socket.write(frames, written) && this.blockedSinceMs === undefined) this.blockedSinceMs = nowMs();
  }

  /** Sends a last frame and half-closes; the far side reads it before its end of stream. Reports `kind` now. */
  endWith(lastFrame: Buffer, kind: K | SocketCloseKind, error: E | TcpTransportError | undefined, lingerMs: number): void {
    if (this.closedReported) return;
    this.report(kind, error);
    this.socket.end(lastFrame);
    this.lingerTimer = setTimeout(() => this.socket.destroy(), lingerMs);
    this.lingerTimer.unref();
  }

  /** Ends the connection now (idempotent: only the first kind is reported). */
  close(kind: K | SocketCloseKind, error: E | TcpTransportError | undefined): void {
    if (!this.closedReported) this.report(kind, error);
    this.socket.destroy();
  }

  /**
   * Closes the connection if a write has waited past `writeStallTimeoutMs` or nothing has
   * arrived for `idleTimeoutMs`; returns whether it did.
   */
  checkTimeouts(now: number, writeStallTimeoutMs: number, idleTimeoutMs: number): boolean {
    if (this.closedReported) return false;
    if (this.blockedSinceMs !== undefined && now - this.blockedSinceMs > writeStallTimeoutMs) {
      this.close('write-stall', new TcpTransportError('TIMEOUT', `a write waited ${Math.round(now - this.blockedSinceMs)} ms for the socket (writeStallTimeoutMs ${writeStallTimeoutMs})`));
      return true;
    }
    if (now - this.lastReceivedMs > idleTimeoutMs) {
      this.close('idle', new TcpTransportError('TIMEOUT', `nothing received for ${Math.round(now - this.lastReceivedMs)} ms (idleTimeoutMs ${idleTimeoutMs})`));
      return true;
    }
    return false;
  }

  private report(kind: K | SocketCloseKind, error: E | TcpTransportError | undefined): void {
    this.closedReported = true;
    this.events.closed(kind, error);
  }
}
