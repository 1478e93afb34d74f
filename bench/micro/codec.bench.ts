/**
 * The message codec micro-benchmark: what encoding and decoding one Raft message costs on the
 * messages that make up the hot path, and how many bytes each takes in a ring.
 *
 *   node dist/bench/micro/codec.bench.js [--quick]
 *
 * Messages (terms around 10^3, indexes around 5 × 10^6, as in a cluster that has run a
 * while): a heartbeat, an AppResp, and an App carrying 1 and 64 entries of 128 B.
 *
 * Tasks per message:
 * - `encode`: what a sender does, `encodedMessageBytes` to reserve ring space, then
 *   `encodeMessageInto` straight into ring memory (a SharedArrayBuffer);
 * - `decode`: what a receiver does, `decodeMessage` from ring memory with payloads copied
 *   out (the default);
 * - `decode-view`: `decodeMessage(bytes, { copyPayloads: false })`, payloads left as views.
 *
 * Ring memory matters: on Node.js 20 each `set` into or out of a SharedArrayBuffer costs
 * about 70 ns against about 20 ns between ordinary buffers, so encoding 64 payloads into a
 * ring takes about twice as long as into an ordinary buffer.
 *
 * Variants: `ringraft`, the codec of src/codec/message-codec.ts (presence bitmap and
 * varints), and `fixed-u64`, a baseline with the plainest layout there is (every number in 8
 * bytes, every entry behind a fixed 21-byte header, payloads as views) that the format was
 * chosen against. The baseline has no validation beyond bounds and no snapshot support: it
 * is a yardstick, not a codec.
 *
 * A sample runs one task over and over, about SAMPLE_BYTES_TARGET encoded bytes in all, and
 * reports the mean time of one operation, so that tinybench's per-sample overhead does not
 * swamp a 50 ns call. Before anything is timed, every variant must round-trip every message.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { decodeMessage, encodeMessageInto, encodedMessageBytes } from '../../src/codec/index.ts';
import { MessageType, makeMessage, type Entry, type EntryType, type Message } from '../../src/core/index.ts';
import { measure, perOpRow, type MeasureOptions, type ResultRow, type Timed } from '../shared/measure.ts';

/** Encoded bytes handled per sample (rounded to whole messages, at least OPS_PER_SAMPLE_MIN). */
const SAMPLE_BYTES_TARGET = 128 * 1024;
const OPS_PER_SAMPLE_MIN = 16;
/** Time budget per task when run alone, in milliseconds (`--quick`: QUICK_TIME_MS). */
const DEFAULT_TIME_MS = 1000;
const QUICK_TIME_MS = 100;
/** Ring memory the encode task writes into, large enough for any benchmarked message. */
const RING_BYTES = 64 * 1024;

const TERM = 1234;
const INDEX = 5_000_000;
const ENTRY_PAYLOAD_BYTES = 128;

export interface CodecBenchOptions {
  /** Time budget per measured task, in milliseconds. */
  readonly timeMs: number;
  /** Called before each task with a line saying what is being measured. */
  readonly onProgress?: (line: string) => void;
}

/** One message the benchmark measures. */
export interface CodecBenchMessage {
  readonly name: string;
  readonly message: Message;
}

/** A codec under measurement. */
interface CodecVariant {
  readonly name: string;
  readonly sizeBytes: (m: Message) => number;
  readonly encodeInto: (m: Message, target: Uint8Array, offset: number) => number;
  readonly decode: (bytes: Uint8Array) => Message;
  /** Decoding that leaves payloads as views of the input, if the variant has one. */
  readonly decodeView?: (bytes: Uint8Array) => Message;
}

const ringraftVariant: CodecVariant = {
  name: 'ringraft',
  sizeBytes: encodedMessageBytes,
  encodeInto: encodeMessageInto,
  decode: (bytes) => decodeMessage(bytes),
  decodeView: (bytes) => decodeMessage(bytes, { copyPayloads: false }),
};

// ---------------------------------------------------------------------------------------
// The fixed-width baseline
// ---------------------------------------------------------------------------------------

/** version, type, 9 numbers of 8 bytes, reject, entries count (u32). */
const FIXED_HEADER_BYTES = 2 + 9 * 8 + 1 + 4;
/** type, index, term, data length (u32). */
const FIXED_ENTRY_HEADER_BYTES = 1 + 8 + 8 + 4;
const TWO_POW_32 = 0x1_0000_0000;

function writeU32(target: Uint8Array, at: number, value: number): void {
  target[at] = value;
  target[at + 1] = value >>> 8;
  target[at + 2] = value >>> 16;
  target[at + 3] = value >>> 24;
}

function writeU64(target: Uint8Array, at: number, value: number): void {
  const low = value >>> 0;
  writeU32(target, at, low);
  writeU32(target, at + 4, (value - low) / TWO_POW_32);
}

function readU32(source: Uint8Array, at: number): number {
  return (source[at]! | (source[at + 1]! << 8) | (source[at + 2]! << 16) | (source[at + 3]! << 24)) >>> 0;
}

function readU64(source: Uint8Array, at: number): number {
  return readU32(source, at + 4) * TWO_POW_32 + readU32(source, at);
}

function fixedSizeBytes(m: Message): number {
  let size = FIXED_HEADER_BYTES;
  for (let i = 0; i < m.entries.length; i++) size += FIXED_ENTRY_HEADER_BYTES + m.entries[i]!.data.length;
  return size;
}

function fixedEncodeInto(m: Message, target: Uint8Array, offset: number): number {
  if (m.snapshot !== undefined) throw new Error('the fixed-u64 baseline does not encode snapshots');
  let at = offset;
  target[at] = 1;
  target[at + 1] = m.type;
  at += 2;
  writeU64(target, at, m.from);
  writeU64(target, at + 8, m.to);
  writeU64(target, at + 16, m.term);
  writeU64(target, at + 24, m.logTerm);
  writeU64(target, at + 32, m.index);
  writeU64(target, at + 40, m.commit);
  writeU64(target, at + 48, m.rejectHint);
  writeU64(target, at + 56, m.context);
  writeU64(target, at + 64, m.sentTick);
  at += 9 * 8;
  target[at++] = m.reject ? 1 : 0;
  const entries = m.entries;
  writeU32(target, at, entries.length);
  at += 4;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    target[at] = e.type;
    writeU64(target, at + 1, e.index);
    writeU64(target, at + 9, e.term);
    writeU32(target, at + 17, e.data.length);
    at += FIXED_ENTRY_HEADER_BYTES;
    target.set(e.data, at);
    at += e.data.length;
  }
  return at - offset;
}

function fixedDecode(bytes: Uint8Array): Message {
  if (bytes.length < FIXED_HEADER_BYTES || bytes[0] !== 1) throw new Error('not a fixed-u64 message');
  const count = readU32(bytes, 75);
  const entries: Entry[] = [];
  let at = FIXED_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (bytes.length - at < FIXED_ENTRY_HEADER_BYTES) throw new Error('truncated');
    const length = readU32(bytes, at + 17);
    const dataAt = at + FIXED_ENTRY_HEADER_BYTES;
    if (length > bytes.length - dataAt) throw new Error('truncated');
    const data = new Uint8Array(bytes.buffer, bytes.byteOffset + dataAt, length);
    entries.push({ term: readU64(bytes, at + 9), index: readU64(bytes, at + 1), type: bytes[at]! as EntryType, data });
    at = dataAt + length;
  }
  if (at !== bytes.length) throw new Error('trailing bytes');
  return {
    type: bytes[1]! as MessageType,
    from: readU64(bytes, 2),
    to: readU64(bytes, 10),
    term: readU64(bytes, 18),
    logTerm: readU64(bytes, 26),
    index: readU64(bytes, 34),
    entries,
    commit: readU64(bytes, 42),
    reject: bytes[74] === 1,
    rejectHint: readU64(bytes, 50),
    context: readU64(bytes, 58),
    sentTick: readU64(bytes, 66),
    snapshot: undefined,
  };
}

const fixedVariant: CodecVariant = {
  name: 'fixed-u64',
  sizeBytes: fixedSizeBytes,
  encodeInto: fixedEncodeInto,
  decode: fixedDecode,
};

export const codecVariants: readonly CodecVariant[] = [ringraftVariant, fixedVariant];

// ---------------------------------------------------------------------------------------
// Messages and tasks
// ---------------------------------------------------------------------------------------

function appWithEntries(entriesCount: number): Message {
  const entries = Array.from({ length: entriesCount }, (_, i): Entry => {
    const data = new Uint8Array(ENTRY_PAYLOAD_BYTES);
    for (let j = 0; j < data.length; j++) data[j] = (i * 7 + j * 31) & 0xff;
    return { term: TERM, index: INDEX + 1 + i, type: 0, data };
  });
  return makeMessage({ type: MessageType.App, from: 1, to: 2, term: TERM, logTerm: TERM, index: INDEX, commit: INDEX - 10, entries });
}

/** The benchmarked messages, as a leader and its followers exchange them in steady state. */
export function codecBenchMessages(): CodecBenchMessage[] {
  return [
    { name: 'heartbeat', message: makeMessage({ type: MessageType.Heartbeat, from: 1, to: 2, term: TERM, commit: INDEX - 10, sentTick: 987_654 }) },
    { name: 'AppResp', message: makeMessage({ type: MessageType.AppResp, from: 2, to: 1, term: TERM, index: INDEX + 64 }) },
    { name: 'App 1×128B', message: appWithEntries(1) },
    { name: 'App 64×128B', message: appWithEntries(64) },
  ];
}

/** Loop results land here so that no compiler can drop a loop whose result goes unused. */
let sink = 0;

function timeLoop(count: number, op: () => number): Timed {
  const start = performance.now();
  let acc = 0;
  for (let i = 0; i < count; i++) acc ^= op();
  const elapsed = performance.now() - start;
  sink ^= acc;
  return { ms: elapsed / count };
}

/** Throws unless `variant` encodes `m` in exactly its stated size and decodes it back deep-equal. */
function verifyRoundTrip(variant: CodecVariant, name: string, m: Message): Uint8Array {
  const bytes = new Uint8Array(variant.sizeBytes(m));
  const written = variant.encodeInto(m, bytes, 0);
  if (written !== bytes.length) throw new Error(`${variant.name}: ${name} encoded in ${written} bytes, its size said ${bytes.length}`);
  for (const decode of [variant.decode, variant.decodeView]) {
    if (decode !== undefined && !isDeepStrictEqual({ ...decode(bytes) }, { ...m })) {
      throw new Error(`${variant.name}: ${name} does not decode to the message it encodes`);
    }
  }
  return bytes;
}

/**
 * Measures every task on every message and variant; returns one row per measurement, with
 * the encoded size as `bytesPerOp`.
 */
export async function runCodecBench(options: CodecBenchOptions): Promise<ResultRow[]> {
  const measureOptions: MeasureOptions = { timeMs: options.timeMs, warmupTimeMs: Math.min(250, options.timeMs / 4) };
  const progress = options.onProgress ?? (() => {});
  const ring = new Uint8Array(new SharedArrayBuffer(RING_BYTES));
  const rows: ResultRow[] = [];
  // Messages outside, variants inside: the alternatives for one message are measured back
  // to back, so that drift in the machine's speed hits them alike.
  for (const { name, message } of codecBenchMessages()) {
    for (const variant of codecVariants) {
      const encoded = verifyRoundTrip(variant, name, message);
      const sizeBytes = encoded.length;
      if (sizeBytes > RING_BYTES) throw new Error(`${name} takes ${sizeBytes} bytes, more than the ${RING_BYTES}-byte ring`);
      // Decoding reads from ring memory, as a receiver does: copies out of a SharedArrayBuffer
      // cost more per call than copies between ordinary buffers.
      const bytes = new Uint8Array(new SharedArrayBuffer(sizeBytes));
      bytes.set(encoded);
      const count = Math.max(OPS_PER_SAMPLE_MIN, Math.ceil(SAMPLE_BYTES_TARGET / sizeBytes));
      const tasks: [string, string, () => number][] = [
        [
          'encode',
          'message encoded',
          () => {
            const reservedBytes = variant.sizeBytes(message);
            return variant.encodeInto(message, ring, 0) ^ reservedBytes;
          },
        ],
        ['decode', 'message decoded', () => variant.decode(bytes).term],
      ];
      const decodeView = variant.decodeView;
      if (decodeView !== undefined) tasks.push(['decode-view', 'message decoded', () => decodeView(bytes).term]);
      for (const [task, op, fn] of tasks) {
        progress(`codec: ${task} ${name} (${variant.name}, ${sizeBytes} B), ${count} per sample`);
        const m = await measure(`${task}-${name}-${variant.name}`, () => timeLoop(count, fn), measureOptions);
        rows.push(perOpRow(m, sizeBytes, { name: 'codec', kind: 'codec', task: `${task} ${name}`, variant: variant.name, batch: message.entries.length, op }));
      }
    }
  }
  if (sink === 0.5) throw new Error('unreachable: keeps `sink` observable');
  return rows;
}

/** One line per message: each variant's size and its encode / decode / decode-view ns. */
export function formatCodecRows(rows: readonly ResultRow[]): string[] {
  const header = ['message', 'variant', 'bytes', 'encode ns', 'decode ns', 'decode-view ns'];
  const cells: string[][] = [];
  for (const { name } of codecBenchMessages()) {
    for (const variant of codecVariants) {
      const ns = (task: string) => {
        const row = rows.find((r) => r.kind === 'codec' && r.task === `${task} ${name}` && r.variant === variant.name);
        return row === undefined ? '' : Math.round(row.nsPerOp).toLocaleString('en-US');
      };
      const size = rows.find((r) => r.kind === 'codec' && r.task.endsWith(` ${name}`) && r.variant === variant.name)?.bytesPerOp;
      if (size === undefined) continue;
      cells.push([name, variant.name, String(size), ns('encode'), ns('decode'), ns('decode-view')]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]) => c.map((s, i) => (i < 2 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  const timeMs = values.quick ? QUICK_TIME_MS : DEFAULT_TIME_MS;
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown';
  process.stdout.write(`codec bench: ${cpu}, ${os.availableParallelism()} cores, Node.js ${process.version}, ${timeMs} ms per task\n`);
  const rows = await runCodecBench({ timeMs, onProgress: (line) => process.stderr.write(`${line}\n`) });
  process.stdout.write(`${formatCodecRows(rows).join('\n')}\n`);
}

// Run alone (node dist/bench/micro/codec.bench.js): measure and print. Imported: do nothing.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
