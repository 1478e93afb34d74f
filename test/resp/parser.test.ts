// The RESP request parser (src/resp/parser.ts): arrays of bulk strings and inline commands,
// pipelined, give the same commands however the stream is cut into reads (a property over
// random cuts); inline words split as redis-cli's (quotes, escapes); every bound refuses with
// Redis's own text; and the RESP2 to RESP3 rewrite of the store's replies.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resp2ToResp3, RespProtocolError, RespRequestParser, RespWriter, splitInline } from '../../src/resp/index.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
const LIMITS = { bulkBytesMax: 1024, argsMax: 16, lineBytesMax: 64, commandBytesMax: 4096 };

function encodeArray(words: readonly Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [enc.encode(`*${words.length}\r\n`)];
  for (const w of words) parts.push(enc.encode(`$${w.length}\r\n`), w, enc.encode('\r\n'));
  return Buffer.concat(parts);
}

const text = (commands: Uint8Array[][]): string[][] => commands.map((c) => c.map((w) => dec.decode(w)));

function parseAll(bytes: Uint8Array, cuts: readonly number[] = []): Uint8Array[][] {
  const p = new RespRequestParser(LIMITS);
  const out: Uint8Array[][] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(...p.push(bytes.slice(at, Math.max(at, cut))));
    at = Math.max(at, cut);
  }
  expect(p.bufferedBytes).toBe(0);
  return out;
}

function refusal(bytes: string | Uint8Array): string {
  const p = new RespRequestParser(LIMITS);
  p.push(typeof bytes === 'string' ? enc.encode(bytes) : bytes);
  expect(p.failure).toBeInstanceOf(RespProtocolError);
  // Nothing more is taken after a refusal.
  expect(p.push(enc.encode('PING\r\n'))).toEqual([]);
  return p.failure!.message;
}

describe('the RESP request parser', () => {
  it('gives the same commands however a pipelined stream is cut into reads', () => {
    const word = fc.uint8Array({ maxLength: 40 });
    const command = fc.array(word, { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(fc.array(command, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), (commands, rawCuts) => {
        const stream = Buffer.concat(commands.map(encodeArray));
        const cuts = rawCuts.map((c) => c % (stream.length + 1)).sort((a, b) => a - b);
        expect(parseAll(stream, cuts).map((c) => c.map((w) => [...w]))).toEqual(commands.map((c) => c.map((w) => [...w])));
      }),
      { numRuns: 300 },
    );
  });

  it('reads inline commands, skips empty ones, and mixes them with arrays', () => {
    const stream = enc.encode('PING\r\n\r\nset k "a b\\x41\\n" \'it\\\'s\'\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*0\r\n');
    expect(text(parseAll(stream))).toEqual([['PING'], ['set', 'k', 'a bA\n', "it's"], ['GET', 'k']]);
    // Byte by byte, the same.
    expect(text(parseAll(stream, Array.from({ length: stream.length }, (_, i) => i)))).toEqual([['PING'], ['set', 'k', 'a bA\n', "it's"], ['GET', 'k']]);
    expect(splitInline(enc.encode('"unclosed'))).toBeUndefined();
    expect(splitInline(enc.encode('"a"b'))).toBeUndefined();
  });

  it('refuses what breaks the protocol or a bound, with Redis\'s text', () => {
    expect(refusal('*1\r\n$2000\r\n')).toBe('Protocol error: invalid bulk length');
    expect(refusal('*1\r\n$-5\r\n')).toBe('Protocol error: invalid bulk length');
    expect(refusal('*1\r\n$x\r\n')).toBe('Protocol error: invalid bulk length');
    expect(refusal('*17\r\n')).toBe('Protocol error: invalid multibulk length');
    expect(refusal('*abc\r\n')).toBe('Protocol error: invalid multibulk length');
    expect(refusal('*1\r\n:3\r\n')).toBe("Protocol error: expected '$', got ':'");
    expect(refusal(`${'A'.repeat(100)}`)).toBe('Protocol error: too big inline request');
    expect(refusal(`*${'1'.repeat(100)}`)).toBe('Protocol error: too big mbulk count string');
    expect(refusal('*1\r\n$3\r\nabcXY')).toBe('Protocol error: invalid bulk length');
    expect(refusal('SET "a\r\n')).toBe('Protocol error: unbalanced quotes in request');
    // A command over commandBytesMax: 16 bulk strings of 1000 bytes each are over 4096.
    expect(refusal(encodeArray(Array.from({ length: 16 }, () => new Uint8Array(1000))))).toBe('Protocol error: command too large');
  });

  it('keeps an unauthenticated client to small commands, one at a time, until it authenticates', () => {
    const p = new RespRequestParser(LIMITS);
    p.authenticated(false);
    const two = Buffer.concat([encodeArray([enc.encode('AUTH'), enc.encode('pw')]), encodeArray(Array.from({ length: 12 }, () => enc.encode('x')))]);
    expect(text(p.push(two))).toEqual([['AUTH', 'pw']]);
    // The AUTH succeeded: the next command, already read, is taken with the full bounds.
    p.authenticated(true);
    expect(p.push(new Uint8Array(0)).map((c) => c.length)).toEqual([12]);
    const q = new RespRequestParser(LIMITS);
    q.authenticated(false);
    q.push(encodeArray(Array.from({ length: 11 }, () => enc.encode('x'))));
    expect(q.failure?.message).toBe('Protocol error: unauthenticated multibulk length');
  });

  it('returns the commands before a refusal, then the refusal', () => {
    const p = new RespRequestParser(LIMITS);
    expect(text(p.push(enc.encode('PING\r\n*1\r\n$4\r\nECHO\r\n*1\r\n:1\r\n')))).toEqual([['PING'], ['ECHO']]);
    expect(p.failure?.message).toBe("Protocol error: expected '$', got ':'");
  });

  it('holds at most one command\'s bytes: an unterminated one waits, bounded', () => {
    const p = new RespRequestParser(LIMITS);
    expect(p.push(enc.encode('*2\r\n$3\r\nGET\r\n$100\r\n'))).toEqual([]);
    expect(p.inCommand).toBe(true);
    expect(p.push(new Uint8Array(50))).toEqual([]);
    expect(p.bufferedBytes).toBe(50);
    const [done] = p.push(Buffer.concat([new Uint8Array(50), enc.encode('\r\n')]));
    expect(done!.map((w) => w.length)).toEqual([3, 100]);
    expect(p.inCommand).toBe(false);
  });
});

describe('RESP replies', () => {
  it('writes RESP2, and RESP3 nulls and maps after HELLO 3', () => {
    const two = new RespWriter(2).simple('OK').error('ERR a\r\nb').integer(-3).bulk('hé').bulk(undefined).array(undefined).map(1).bulk('k').integer(1).take();
    expect(dec.decode(two)).toBe('+OK\r\n-ERR a  b\r\n:-3\r\n$3\r\nhé\r\n$-1\r\n*-1\r\n*2\r\n$1\r\nk\r\n:1\r\n');
    const three = new RespWriter(3).bulk(undefined).array(undefined).map(1).take();
    expect(dec.decode(three)).toBe('_\r\n_\r\n%1\r\n');
  });

  it('rewrites the store\'s RESP2 nulls at any depth for RESP3, and nothing else', () => {
    const reply = enc.encode('*4\r\n$-1\r\n*2\r\n$2\r\n-1\r\n*-1\r\n:-1\r\n$3\r\n$-1\r\n');
    expect(dec.decode(resp2ToResp3(reply))).toBe('*4\r\n_\r\n*2\r\n$2\r\n-1\r\n_\r\n:-1\r\n$3\r\n$-1\r\n');
    const plain = enc.encode('+OK\r\n');
    expect(resp2ToResp3(plain)).toBe(plain);
  });
});
