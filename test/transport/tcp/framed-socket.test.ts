// Proves FramedSocket's bookkeeping on a stand-in socket (an event emitter with the few socket
// methods it calls), where each event can be fired by hand: every way a socket ends is
// reported once with its kind and typed code (bytes that are not frames, a frame cut short by
// the end of the stream, a clean end, a socket error); a throw out of the frame handler (the
// caller's onMessage) goes on up untouched, even a TcpTransportError, and is not taken for a
// corrupt frame; a write the socket pushes back on marks it blocked until 'drain', and the
// clock check closes it after the stall or idle timeout; messages in writes never handed to
// the kernel stay counted once it has ended.
import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../src/base/index.ts';
import { FrameType, TcpTransportError, encodeFrame } from '../../../src/transport/tcp/index.ts';
import { type CloseKind, FramedSocket } from '../../../src/transport/tcp/framed-socket.ts';
import { caught } from '../../core/helpers/errors.ts';

class FakeSocket extends EventEmitter {
  accepts = true;
  destroyed = false;
  readonly callbacks: (() => void)[] = [];
  setNoDelay(): this {
    return this;
  }
  write(_data: Uint8Array, callback?: () => void): boolean {
    if (callback) this.callbacks.push(callback);
    return this.accepts;
  }
  end(): this {
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
}

function setUp(frame: (type: FrameType, payload: Uint8Array) => boolean = () => true): { fake: FakeSocket; link: FramedSocket; closes: [CloseKind, TcpTransportError | undefined][] } {
  const fake = new FakeSocket();
  const closes: [CloseKind, TcpTransportError | undefined][] = [];
  const link = new FramedSocket(fake as unknown as Socket, 4096, true, { frame, drain: () => {}, closed: (kind, error) => closes.push([kind, error]) });
  return { fake, link, closes };
}

describe('FramedSocket', () => {
  it('reports bytes that are not frames as corrupt, once, and destroys the socket', () => {
    const { fake, closes } = setUp();
    fake.emit('data', Buffer.from('garbage!garbage!'));
    fake.emit('close');
    expect(closes.map(([k, e]) => [k, e?.code])).toEqual([['corrupt', ErrorCode.CORRUPT_FRAME]]);
    expect(fake.destroyed).toBe(true);
  });

  it('tells a frame cut short by the end of the stream from a clean end, and reports socket errors', () => {
    const cut = setUp();
    cut.fake.emit('data', encodeFrame(FrameType.PING).subarray(0, 5));
    cut.fake.emit('end');
    expect(cut.closes.map(([k, e]) => [k, e?.code])).toEqual([['corrupt', ErrorCode.CORRUPT_FRAME]]);
    const clean = setUp();
    clean.fake.emit('data', encodeFrame(FrameType.PING));
    clean.fake.emit('end');
    expect(clean.closes.map(([k, e]) => [k, e?.code])).toEqual([['closed', ErrorCode.CONNECTION_FAILED]]);
    const broken = setUp();
    broken.fake.emit('error', new Error('ECONNRESET'));
    expect(broken.closes.map(([k, e]) => [k, e?.code])).toEqual([['closed', ErrorCode.CONNECTION_FAILED]]);
    expect((broken.closes[0]![1]!.cause as Error).message).toBe('ECONNRESET');
  });

  it('lets a throw out of the frame handler go on up, even a TcpTransportError, without calling it corrupt', () => {
    const thrown = new TcpTransportError('CORRUPT_FRAME', 'thrown by the caller');
    const { fake, closes } = setUp(() => {
      throw thrown;
    });
    expect(caught(() => fake.emit('data', encodeFrame(FrameType.PING)))).toBe(thrown);
    expect(closes).toEqual([]);
  });

  it('marks a pushed-back write blocked until drain; the clock check closes on a stall or on silence', () => {
    const { fake, link, closes } = setUp();
    fake.accepts = false;
    link.write(encodeFrame(FrameType.PING), 3);
    expect(link.isBlocked).toBe(true);
    expect(link.unwrittenMessages).toBe(3);
    fake.emit('drain');
    expect(link.isBlocked).toBe(false);
    fake.callbacks.shift()!();
    expect(link.unwrittenMessages).toBe(0);

    link.write(encodeFrame(FrameType.PING), 2);
    const since = link.blockedSinceMs!;
    // Just under and just over the timeout: the clock is performance.now(), fractional, so an
    // exact `since + 100` may round to a hair over 100 ms after it.
    expect(link.checkTimeouts(since + 99.5, 100, 10_000)).toBe(false);
    expect(link.checkTimeouts(since + 100.5, 100, 10_000)).toBe(true);
    expect(closes.map(([k, e]) => [k, e?.code])).toEqual([['write-stall', ErrorCode.TIMEOUT]]);
    // Node reports the unfinished write as done once the socket is destroyed; the loss stays counted.
    fake.callbacks.shift()!();
    expect(link.unwrittenMessages).toBe(2);

    const quiet = setUp();
    expect(quiet.link.checkTimeouts(quiet.link.lastReceivedMs + 51, 10_000, 50)).toBe(true);
    expect(quiet.closes.map(([k, e]) => [k, e?.code])).toEqual([['idle', ErrorCode.TIMEOUT]]);
  });
});
