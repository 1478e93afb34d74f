// Proves the TCP transport's wire pieces one by one, without sockets: frames round-trip through
// the decoder with the byte layout frame.ts documents; each named corruption (type 0, an
// unknown type, non-zero reserved bytes, a length over the limit or the type's range, a bad
// CRC, a malformed batch) is refused with its typed code before anything is allocated for it;
// handshakes and refusals round-trip and mismatches are named; clusterIdOf is stable and
// distinguishes tokens; the redial delay doubles within its bounds; and the settings refuse an
// unknown name or a broken relation with INVALID_ARGUMENT naming it.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { ErrorCode, RingraftError } from '../../../src/base/index.ts';
import {
  FRAME_OVERHEAD_BYTES,
  FrameDecoder,
  FrameType,
  HANDSHAKE_MAGIC,
  PROTOCOL_VERSION,
  TCP_TRANSPORT_SETTINGS,
  TcpTransportError,
  clusterIdOf,
  decodeHandshake,
  decodeRefusal,
  encodeBatchFrame,
  encodeFrame,
  encodeHandshake,
  encodeRefusal,
  forEachBatchMessage,
  messageBytesMaxOf,
  redialDelayMs,
  resolveTcpTransportSettings,
} from '../../../src/transport/tcp/index.ts';
import { handshakeMismatch } from '../../../src/transport/tcp/handshake.ts';
import { caught } from '../../core/helpers/errors.ts';

const FRAME_MAX = 4096;

function decodeAll(bytes: Uint8Array, frameBytesMax = FRAME_MAX): { type: number; payload: Uint8Array }[] {
  const frames: { type: number; payload: Uint8Array }[] = [];
  new FrameDecoder(frameBytesMax).push(bytes, (type, payload) => {
    frames.push({ type, payload: Uint8Array.from(payload) });
    return true;
  });
  return frames;
}

function expectFrameCode(fn: () => unknown, code: ErrorCode): TcpTransportError {
  const error = caught(fn);
  expect(error).toBeInstanceOf(TcpTransportError);
  expect((error as TcpTransportError).code).toBe(code);
  return error as TcpTransportError;
}

describe('frames', () => {
  it('lay out as documented: u32 length, u8 type, three zero bytes, payload, CRC-32 of all before it', () => {
    const frame = encodeFrame(FrameType.BATCH, Uint8Array.of(1, 0, 0, 0, 0xaa));
    expect(frame.length).toBe(FRAME_OVERHEAD_BYTES + 5);
    expect(frame.readUInt32LE(0)).toBe(5);
    expect([...frame.subarray(4, 8)]).toEqual([FrameType.BATCH, 0, 0, 0]);
    expect([...frame.subarray(8, 13)]).toEqual([1, 0, 0, 0, 0xaa]);
    // CRC-32 (IEEE) by the textbook bitwise definition, to pin the checksum independently of zlib.
    let crc = 0xffffffff;
    for (const byte of frame.subarray(0, 13)) {
      crc ^= byte;
      for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
    }
    expect(frame.readUInt32LE(13)).toBe((crc ^ 0xffffffff) >>> 0);
  });

  it('round-trip through the decoder, batches message by message in order', () => {
    const messages = [Uint8Array.of(1, 2, 3), new Uint8Array(0), Uint8Array.of(9)];
    const payloadBytes = messages.reduce((n, m) => n + 4 + m.length, 0);
    const stream = Buffer.concat([encodeFrame(FrameType.PING), encodeBatchFrame(messages, 0, 3, payloadBytes), encodeFrame(FrameType.PONG)]);
    const frames = decodeAll(stream);
    expect(frames.map((f) => f.type)).toEqual([FrameType.PING, FrameType.BATCH, FrameType.PONG]);
    const out: number[][] = [];
    expect(forEachBatchMessage(frames[1]!.payload, (m) => (out.push([...m]), true))).toBe(3);
    expect(out).toEqual([[1, 2, 3], [], [9]]);
  });

  it('a handler that returns false stops the decoder for good', () => {
    const stream = Buffer.concat([encodeFrame(FrameType.PING), encodeFrame(FrameType.PING)]);
    const decoder = new FrameDecoder(FRAME_MAX);
    let seen = 0;
    decoder.push(stream, () => (seen++, false));
    decoder.push(stream, () => (seen++, true));
    expect(seen).toBe(1);
  });

  const corruptions: { name: string; bytes: () => Uint8Array; code: ErrorCode }[] = [
    { name: 'frame type 0', bytes: () => new Uint8Array(12), code: ErrorCode.CORRUPT_FRAME },
    { name: 'an unknown type', bytes: () => withByte(encodeFrame(FrameType.PING), 4, 7), code: ErrorCode.CORRUPT_FRAME },
    { name: 'non-zero reserved bytes', bytes: () => withByte(encodeFrame(FrameType.PING), 6, 1), code: ErrorCode.CORRUPT_FRAME },
    { name: 'a length over frameBytesMax', bytes: () => header(0x7fff_ffff, FrameType.BATCH), code: ErrorCode.FRAME_TOO_LARGE },
    { name: 'a length just over frameBytesMax', bytes: () => header(FRAME_MAX - FRAME_OVERHEAD_BYTES + 1, FrameType.BATCH), code: ErrorCode.FRAME_TOO_LARGE },
    { name: 'a PING with a payload', bytes: () => header(4, FrameType.PING), code: ErrorCode.CORRUPT_FRAME },
    { name: 'a HELLO of the wrong size', bytes: () => header(31, FrameType.HELLO), code: ErrorCode.CORRUPT_FRAME },
    { name: 'a bad CRC', bytes: () => withByte(encodeFrame(FrameType.BATCH, Uint8Array.of(0, 0, 0, 0)), 15, 0x55), code: ErrorCode.CORRUPT_FRAME },
    { name: 'a flipped payload byte', bytes: () => withByte(encodeFrame(FrameType.BATCH, Uint8Array.of(1, 0, 0, 0, 7)), 12, 8), code: ErrorCode.CORRUPT_FRAME },
  ];
  for (const c of corruptions) {
    it(`refuses ${c.name} with ${c.code}, allocating nothing for its payload`, () => {
      const decoder = new FrameDecoder(FRAME_MAX);
      const bytes = c.bytes();
      // Header alone first: a bad header must be refused before any payload byte arrives.
      const headerOnly = c.name.includes('CRC') || c.name.includes('flipped');
      if (!headerOnly) expectFrameCode(() => decoder.push(bytes.subarray(0, 8), () => true), c.code);
      else expectFrameCode(() => decoder.push(bytes, () => true), c.code);
      expect(decoder.allocatedBytesMax).toBeLessThanOrEqual(FRAME_MAX);
      if (!headerOnly) expect(decoder.allocatedBytesMax).toBe(0);
    });
  }

  it('refuses a malformed batch whole: a message length past the payload delivers nothing', () => {
    const payload = Uint8Array.of(1, 0, 0, 0, 5, 9, 0, 0, 0, 1);
    const delivered: Uint8Array[] = [];
    expectFrameCode(() => forEachBatchMessage(payload, (m) => (delivered.push(m), true)), ErrorCode.CORRUPT_FRAME);
    expect(delivered).toEqual([]);
  });

  it('counts a frame cut short as partial bytes (the connection reports it at end of stream)', () => {
    const frame = encodeFrame(FrameType.BATCH, Uint8Array.of(1, 0, 0, 0, 7));
    const decoder = new FrameDecoder(FRAME_MAX);
    decoder.push(frame.subarray(0, 10), () => true);
    expect(decoder.partialBytes).toBe(10);
    decoder.push(frame.subarray(10), () => true);
    expect(decoder.partialBytes).toBe(0);
  });
});

describe('handshakes', () => {
  it('round-trip with the documented layout', () => {
    const frame = encodeHandshake(FrameType.HELLO, 'snapshot', 0x0123_4567_89ab_cdefn, 7, 2 ** 40);
    const payload = frame.subarray(8, 8 + 32);
    expect(payload.readUInt32LE(0)).toBe(HANDSHAKE_MAGIC);
    expect(payload.subarray(0, 4).toString('latin1')).toBe('RGRP');
    expect(payload.readUInt16LE(4)).toBe(PROTOCOL_VERSION);
    expect(payload[6]).toBe(3);
    expect(decodeHandshake(payload)).toEqual({ magic: HANDSHAKE_MAGIC, version: PROTOCOL_VERSION, laneWire: 3, clusterId: 0x0123_4567_89ab_cdefn, senderId: 7, receiverId: 2 ** 40 });
  });

  it('name the first mismatch: version, cluster, receiver, lane, sender', () => {
    const expected = { clusterId: 5n, receiverId: 2, lane: undefined, acceptSender: (id: number) => id === 1 };
    const h = decodeHandshake(encodeHandshake(FrameType.HELLO, 'control', 5n, 1, 2).subarray(8, 40));
    expect(handshakeMismatch(h, expected)).toBeUndefined();
    expect(handshakeMismatch({ ...h, version: 2 }, expected)).toBe('version');
    expect(handshakeMismatch({ ...h, magic: 0 }, expected)).toBe('version');
    expect(handshakeMismatch({ ...h, clusterId: 6n }, expected)).toBe('cluster');
    expect(handshakeMismatch({ ...h, receiverId: 3 }, expected)).toBe('receiver');
    expect(handshakeMismatch({ ...h, laneWire: 4 }, expected)).toBe('lane');
    expect(handshakeMismatch({ ...h, senderId: 9 }, expected)).toBe('sender');
    expect(handshakeMismatch({ ...h, senderId: 2 }, { ...expected, acceptSender: () => true })).toBe('sender');
    expect(handshakeMismatch({ ...h, senderId: -1 }, { ...expected, acceptSender: () => true })).toBe('sender');
  });

  it('refusals carry their reason and a detail cut to 256 bytes', () => {
    const frame = encodeRefusal('cluster', 'x'.repeat(1000));
    const [decoded] = decodeAll(frame);
    expect(decoded!.type).toBe(FrameType.REFUSAL);
    const refusal = decodeRefusal(decoded!.payload);
    expect(refusal.reason).toBe('cluster');
    expect(refusal.detail).toBe('x'.repeat(256));
    expect(decodeRefusal(Uint8Array.of(200, 0, 0, 0)).reason).toBe('unknown');
  });

  it('clusterIdOf is the first 8 bytes of SHA-256, stable, and tells tokens apart', () => {
    expect(clusterIdOf('ringraft')).toBe(clusterIdOf('ringraft'));
    expect(clusterIdOf('ringraft')).not.toBe(clusterIdOf('ringraft2'));
    // sha256("a") begins ca 97 81 12 ca 1b bd ca; read little-endian.
    expect(clusterIdOf('a')).toBe(Buffer.from('ca978112ca1bbdca', 'hex').readBigUInt64LE(0));
    expect(caught(() => clusterIdOf(''))).toBeInstanceOf(RingraftError);
  });
});

describe('redial back-off', () => {
  it('doubles from the floor to the cap, each delay in the upper half of its ceiling', () => {
    for (const random of [() => 0, () => 0.5, () => 0.999999]) {
      for (let failures = 1; failures <= 12; failures++) {
        const ceiling = Math.min(1000, 50 * 2 ** (failures - 1));
        const delay = redialDelayMs(failures, 50, 1000, random);
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
    expect(redialDelayMs(1, 50, 1000, () => 1)).toBe(50);
    expect(redialDelayMs(100, 50, 1000, () => 1)).toBe(1000);
  });
});

describe('settings', () => {
  it('have the documented defaults', () => {
    const s = resolveTcpTransportSettings(undefined);
    expect(s).toEqual({
      queueMessagesMax: 1024,
      queueBytesMax: 32 << 20,
      frameBytesMax: 16 << 20,
      batchBytesMax: 256 << 10,
      writeStallTimeoutMs: 5000,
      idleTimeoutMs: 5000,
      keepaliveIntervalMs: 1000,
      redialBackoffMsMin: 50,
      redialBackoffMsMax: 200,
      inboundConnectionsMax: 1024,
    });
    expect(Object.keys(TCP_TRANSPORT_SETTINGS).sort()).toEqual(Object.keys(s).sort());
    expect(messageBytesMaxOf(s.frameBytesMax)).toBe((16 << 20) - 16);
  });

  const refusals: { input: object; names: string }[] = [
    { input: { queueMessageMax: 3 }, names: 'unknown option settings.queueMessageMax' },
    { input: { idleTimeoutMs: 1.5 }, names: 'settings.idleTimeoutMs' },
    { input: { keepaliveIntervalMs: 5000 }, names: 'settings.keepaliveIntervalMs' },
    { input: { redialBackoffMsMin: 2000 }, names: 'settings.redialBackoffMsMin' },
    { input: { batchBytesMax: 32 << 20 }, names: 'settings.batchBytesMax' },
    { input: { frameBytesMax: 100 }, names: 'settings.frameBytesMax' },
  ];
  for (const r of refusals) {
    it(`refuse ${JSON.stringify(r.input)} with INVALID_ARGUMENT naming ${r.names}`, () => {
      const error = caught(() => resolveTcpTransportSettings(r.input, 'settings.'));
      expect(error).toBeInstanceOf(RingraftError);
      expect((error as RingraftError).code).toBe(ErrorCode.INVALID_ARGUMENT);
      expect((error as RingraftError).message).toContain(r.names);
    });
  }
});

function withByte(frame: Uint8Array, at: number, value: number): Uint8Array {
  const copy = Uint8Array.from(frame);
  copy[at] = value;
  return copy;
}

function header(payloadBytes: number, type: number): Uint8Array {
  const out = Buffer.alloc(8);
  out.writeUInt32LE(payloadBytes, 0);
  out[4] = type;
  return out;
}
