/**
 * What an assertion message built before the check costs on the encoder's hot path: the real
 * `ByteWriter` (its checks written `if (!ok) fail(`...`)`, so a message is built only when a
 * check fails) against a copy of its write path whose checks pass a template literal to
 * `assert` (built on every call, as the writer did before the base layer). Both write the
 * fields of one client put as it travels (kind, request id, session, sequence, key, value),
 * in alternating rounds in one process; the figure is CPU time per put from
 * `process.cpuUsage`, the median of the rounds.
 *
 *     npm run build && node dist/bench/micro/assert-message.bench.js
 */
import { assert } from '../../src/base/index.ts';
import { ByteWriter } from '../../src/codec/index.ts';

const U32_MAX = 0xffff_ffff;
const TWO_POW_32 = 0x1_0000_0000;

/** The writer's write path with its checks' messages built eagerly. */
class EagerWriter {
  private at = 0;
  private end = 0;
  constructor(private readonly target: Uint8Array) {}
  window(offsetBytes: number, lengthBytes: number): void {
    assert(offsetBytes >= 0 && lengthBytes >= 0 && offsetBytes + lengthBytes <= this.target.length, `window [${offsetBytes}, +${lengthBytes}) is inside the target`);
    this.at = offsetBytes;
    this.end = offsetBytes + lengthBytes;
  }
  u8(value: number): void {
    assert(Number.isInteger(value) && value >= 0 && value <= 0xff, `u8 value ${value} is in [0, 255]`);
    this.target[this.claim(1)] = value;
  }
  u32(value: number): void {
    assert(Number.isInteger(value) && value >= 0 && value <= U32_MAX, `u32 value ${value} is in [0, 2^32)`);
    putU32(this.target, this.claim(4), value);
  }
  u64Number(value: number): void {
    assert(Number.isSafeInteger(value) && value >= 0, `u64 value ${value} is a safe non-negative integer`);
    const at = this.claim(8);
    putU32(this.target, at, value % TWO_POW_32);
    putU32(this.target, at + 4, Math.floor(value / TWO_POW_32));
  }
  bytes(value: Uint8Array): void {
    this.u32(value.length);
    this.target.set(value, this.claim(value.length));
  }
  private claim(sizeBytes: number): number {
    const at = this.at;
    assert(at + sizeBytes <= this.end, `write of ${sizeBytes} bytes at ${at} fits before ${this.end}`);
    this.at = at + sizeBytes;
    return at;
  }
}

function putU32(target: Uint8Array, at: number, value: number): void {
  target[at] = value & 0xff;
  target[at + 1] = (value >>> 8) & 0xff;
  target[at + 2] = (value >>> 16) & 0xff;
  target[at + 3] = (value >>> 24) & 0xff;
}

interface Writer {
  window(offsetBytes: number, lengthBytes: number): void;
  u8(value: number): void;
  u32(value: number): void;
  u64Number(value: number): void;
  bytes(value: Uint8Array): void;
}

const PUTS_PER_ROUND = 2_000_000;
const ROUNDS = 9;
const key = new Uint8Array(16).fill(1);
const value = new Uint8Array(128).fill(2);
const memory = new Uint8Array(1 << 20);

/** CPU nanoseconds per put over one round. */
function round(writer: Writer): number {
  const before = process.cpuUsage();
  for (let i = 0; i < PUTS_PER_ROUND; i++) {
    writer.window((i % 4000) * 200, 200);
    writer.u8(1);
    writer.u32(i >>> 0);
    writer.u64Number(TWO_POW_32 + i);
    writer.u64Number(i);
    writer.bytes(key);
    writer.bytes(value);
  }
  const used = process.cpuUsage(before);
  return ((used.user + used.system) * 1000) / PUTS_PER_ROUND;
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const eager: number[] = [];
const lazy: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  eager.push(round(new EagerWriter(memory)));
  lazy.push(round(new ByteWriter(memory)));
}
console.log(`messages built eagerly: ${median(eager).toFixed(0)} ns of CPU per put (median of ${ROUNDS} rounds)`);
console.log(`messages built on failure only (ByteWriter): ${median(lazy).toFixed(0)} ns of CPU per put`);
console.log(`ratio ${(median(eager) / median(lazy)).toFixed(2)}`);
