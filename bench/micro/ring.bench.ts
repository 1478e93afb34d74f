/**
 * The ring micro-benchmark: a SharedArrayBuffer ring against `postMessage`, between two
 * worker threads, side by side in one run (DESIGN.md, "Threads and rings").
 *
 * 1. Throughput: one worker sends 150-byte messages as fast as it can, the other receives
 *    them. Ring: the sender encodes each message straight into ring memory (a copy of a
 *    template and a 4-byte sequence number, standing in for an encoder) and the receiver
 *    drains in place (`drainRanges`), checking each sequence number; sleeping in
 *    `Atomics.wait` whenever its side cannot go on. Twice: each message published alone,
 *    and messages staged and published RING_PUBLISH_BATCH_DEFAULT at a time (as a host
 *    loop would publish a Ready's messages). postMessage: the sender posts
 *    one 150-byte Uint8Array per message over a MessageChannel (structured clone), with a
 *    window of unreceived messages so that the receiver's queue stays bounded, as a full
 *    ring bounds the ring's sender. The receiver publishes its count in shared memory; the
 *    main thread reads it after a warm-up and again `timeMs` later: messages/s is the
 *    difference over the elapsed time.
 * 2. Round-trip latency (ping-pong): one worker sends a 150-byte ping and waits for the
 *    pong, the other answers each ping. Ring: two rings, both sides sleeping in
 *    `Atomics.wait` when idle. postMessage: each side answers from its `message` handler.
 *    Every round trip after the warm-up is one sample; p50 and p99 come from the sorted
 *    samples (hdr-histogram-js is not installed here, and a run holds at most
 *    LATENCY_SAMPLES_MAX samples, so sorting them is cheap).
 *
 * Workers run this same file, compiled (dist/bench/micro/ring.bench.js), with a role in
 * `workerData`. Each case starts fresh workers and terminates them by handle at its end.
 *
 * Run alone: `node dist/bench/micro/ring.bench.js [--time-ms N]` (prints a summary); or call
 * {@link runRingBench} from the bench runner.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MessageChannel, type MessagePort, Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { RingConsumer, RingProducer, createRing } from '../../src/transport/index.ts';

/** Bytes of every benchmark message. */
const MESSAGE_BYTES_DEFAULT = 150;
/** Ring data region for the throughput case: room for about 400 messages of 150 bytes. */
const RING_CAPACITY_BYTES_DEFAULT = 64 * 1024;
/** Messages the batching ring sender stages before it publishes them with one store. */
const RING_PUBLISH_BATCH_DEFAULT = 64;
/** Messages the postMessage sender may have in flight, unreceived. */
const POST_WINDOW_MESSAGES_DEFAULT = 4096;
const TIME_MS_DEFAULT = 1500;
const WARMUP_MS_DEFAULT = 250;
/** Round trips recorded at most per latency case (bounded memory). */
const LATENCY_SAMPLES_MAX = 1 << 20;
/** How often a looping worker looks at the stop word, in messages. */
const STOP_CHECK_MESSAGES = 256;
/** Longest a sleeping worker waits before it looks at the stop word again. */
const IDLE_WAIT_MS = 50;
/** Longest one case may take beyond its time budget before the run fails. */
const CASE_GRACE_MS = 10_000;

// Int32 words of the control buffer shared by the main thread and a case's workers.
const CONTROL_START = 0;
const CONTROL_STOP = 1;
/** Messages received so far (throughput receivers publish it). */
const CONTROL_RECEIVED = 2;
/** Workers that have started (each adds 1 before it takes its role). */
const CONTROL_READY = 3;
const CONTROL_WORDS = 4;

export interface RingBenchOptions {
  /** Measured time per case, in milliseconds (after the warm-up). */
  readonly timeMs?: number;
  readonly warmupMs?: number;
  readonly messageBytes?: number;
  readonly ringCapacityBytes?: number;
  readonly ringPublishBatch?: number;
  readonly postWindowMessages?: number;
  /** Called before each case with a line saying what is being measured. */
  readonly onProgress?: (line: string) => void;
}

export interface ThroughputResult {
  readonly messagesPerSec: number;
  readonly messages: number;
  readonly elapsedMs: number;
}

export interface LatencyResult {
  readonly p50Us: number;
  readonly p99Us: number;
  readonly meanUs: number;
  readonly samples: number;
}

export interface RingBenchResult {
  readonly messageBytes: number;
  readonly throughput: {
    /** Each message published on its own: one store and one check for a sleeper each. */
    readonly ring: ThroughputResult;
    /** Messages staged and published `ringPublishBatch` at a time, as a host loop sends a Ready. */
    readonly ringBatched: ThroughputResult;
    readonly postMessage: ThroughputResult;
    readonly ringOverPostMessage: number;
    readonly ringBatchedOverPostMessage: number;
    readonly ringPublishBatch: number;
  };
  readonly latency: { readonly ring: LatencyResult; readonly postMessage: LatencyResult };
}

type Role = 'ring-sender' | 'ring-receiver' | 'post-sender' | 'post-receiver' | 'ring-pinger' | 'ring-ponger' | 'post-pinger' | 'post-ponger';

interface WorkerInput {
  readonly ringBenchRole: Role;
  readonly control: SharedArrayBuffer;
  readonly messageBytes: number;
  readonly rings?: readonly SharedArrayBuffer[];
  readonly port?: MessagePort;
  readonly postWindowMessages?: number;
  readonly publishBatch?: number;
  readonly warmupMs?: number;
  readonly timeMs?: number;
}

function assertCompiled(): void {
  if (fileURLToPath(import.meta.url).endsWith('.ts')) {
    throw new Error('the ring benchmark runs its workers from compiled JavaScript: use dist/bench/micro/ring.bench.js');
  }
}

/** Runs both cases, ring and postMessage side by side in each, and returns the figures. */
export async function runRingBench(options: RingBenchOptions = {}): Promise<RingBenchResult> {
  assertCompiled();
  const timeMs = options.timeMs ?? TIME_MS_DEFAULT;
  const warmupMs = options.warmupMs ?? WARMUP_MS_DEFAULT;
  const messageBytes = options.messageBytes ?? MESSAGE_BYTES_DEFAULT;
  const ringCapacityBytes = options.ringCapacityBytes ?? RING_CAPACITY_BYTES_DEFAULT;
  const postWindowMessages = options.postWindowMessages ?? POST_WINDOW_MESSAGES_DEFAULT;
  const ringPublishBatch = options.ringPublishBatch ?? RING_PUBLISH_BATCH_DEFAULT;
  const progress = options.onProgress ?? (() => {});

  progress(`ring throughput: ${messageBytes}-byte messages through a ${ringCapacityBytes / 1024} KiB ring, each published alone, ${timeMs} ms`);
  const ringThroughput = await runThroughputCase('ring', { messageBytes, warmupMs, timeMs, rings: [createRing(ringCapacityBytes)], publishBatch: 1 });
  progress(`ring throughput: the same, published ${ringPublishBatch} at a time, ${timeMs} ms`);
  const ringBatched = await runThroughputCase('ring', { messageBytes, warmupMs, timeMs, rings: [createRing(ringCapacityBytes)], publishBatch: ringPublishBatch });
  progress(`postMessage throughput: ${messageBytes}-byte messages, window ${postWindowMessages}, ${timeMs} ms`);
  const postThroughput = await runThroughputCase('post', { messageBytes, warmupMs, timeMs, postWindowMessages });
  progress(`ring round trip: ${messageBytes}-byte ping and pong, both sides sleeping in Atomics.wait, ${timeMs} ms`);
  const ringLatency = await runLatencyCase('ring', { messageBytes, warmupMs, timeMs, rings: [createRing(ringCapacityBytes), createRing(ringCapacityBytes)] });
  progress(`postMessage round trip: ${messageBytes}-byte ping and pong, ${timeMs} ms`);
  const postLatency = await runLatencyCase('post', { messageBytes, warmupMs, timeMs });

  return {
    messageBytes,
    throughput: {
      ring: ringThroughput,
      ringBatched,
      postMessage: postThroughput,
      ringOverPostMessage: ringThroughput.messagesPerSec / postThroughput.messagesPerSec,
      ringBatchedOverPostMessage: ringBatched.messagesPerSec / postThroughput.messagesPerSec,
      ringPublishBatch,
    },
    latency: { ring: ringLatency, postMessage: postLatency },
  };
}

export interface RingThroughputOptions {
  readonly messageBytes: number;
  /** Messages staged per publish (1: each published alone). */
  readonly publishBatch: number;
  readonly timeMs: number;
  readonly warmupMs?: number;
  readonly ringCapacityBytes?: number;
}

/**
 * The ring throughput case alone (sender and receiver workers, as in {@link runRingBench}),
 * for a benchmark that takes the ring as the limit of what crosses it.
 */
export async function runRingThroughput(options: RingThroughputOptions): Promise<ThroughputResult> {
  assertCompiled();
  return runThroughputCase('ring', {
    messageBytes: options.messageBytes,
    warmupMs: options.warmupMs ?? WARMUP_MS_DEFAULT,
    timeMs: options.timeMs,
    rings: [createRing(options.ringCapacityBytes ?? RING_CAPACITY_BYTES_DEFAULT)],
    publishBatch: options.publishBatch,
  });
}

/** One line per figure, for a terminal. */
export function formatRingBench(result: RingBenchResult): string[] {
  const rate = (t: ThroughputResult) => `${Math.round(t.messagesPerSec).toLocaleString('en-US')} msg/s`;
  const lat = (l: LatencyResult) => `p50 ${l.p50Us.toFixed(1)} µs, p99 ${l.p99Us.toFixed(1)} µs (mean ${l.meanUs.toFixed(1)}, ${l.samples.toLocaleString('en-US')} samples)`;
  const { throughput: t, latency: l } = result;
  return [
    `throughput, ${result.messageBytes}-byte messages: postMessage ${rate(t.postMessage)}`,
    `  ring, each published alone:       ${rate(t.ring)}, ×${t.ringOverPostMessage.toFixed(1)} postMessage`,
    `  ring, published ${t.ringPublishBatch} at a time:     ${rate(t.ringBatched)}, ×${t.ringBatchedOverPostMessage.toFixed(1)} postMessage`,
    `round trip, ring (Atomics.wait): ${lat(l.ring)}`,
    `round trip, postMessage:         ${lat(l.postMessage)}`,
  ];
}

interface CaseInput {
  readonly messageBytes: number;
  readonly warmupMs: number;
  readonly timeMs: number;
  readonly rings?: readonly SharedArrayBuffer[];
  readonly postWindowMessages?: number;
  readonly publishBatch?: number;
}

/** Starts a worker on this file in `role`; its one result message resolves the promise. */
function startWorker(input: WorkerInput, transferList: MessagePort[] = []): { worker: Worker; result: Promise<unknown> } {
  const worker = new Worker(new URL(import.meta.url), { workerData: input, transferList });
  const result = new Promise<unknown>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`ring bench worker ${input.ringBenchRole} exited with code ${code}`)));
  });
  result.catch(() => {});
  return { worker, result };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function runThroughputCase(kind: 'ring' | 'post', input: CaseInput): Promise<ThroughputResult> {
  const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
  const words = new Int32Array(control);
  const common = { control, messageBytes: input.messageBytes, rings: input.rings, postWindowMessages: input.postWindowMessages, publishBatch: input.publishBatch };
  let sender: ReturnType<typeof startWorker>;
  let receiver: ReturnType<typeof startWorker>;
  if (kind === 'ring') {
    sender = startWorker({ ...common, ringBenchRole: 'ring-sender' });
    receiver = startWorker({ ...common, ringBenchRole: 'ring-receiver' });
  } else {
    const { port1, port2 } = new MessageChannel();
    sender = startWorker({ ...common, ringBenchRole: 'post-sender', port: port1 }, [port1]);
    receiver = startWorker({ ...common, ringBenchRole: 'post-receiver', port: port2 }, [port2]);
  }
  try {
    // Both workers run before the clock starts (a loaded machine may take long to start one).
    await bothStarted(words);
    Atomics.store(words, CONTROL_START, 1);
    Atomics.notify(words, CONTROL_START);
    await sleep(input.warmupMs);
    const received0 = Atomics.load(words, CONTROL_RECEIVED);
    const t0 = performance.now();
    await sleep(input.timeMs);
    const received1 = Atomics.load(words, CONTROL_RECEIVED);
    const t1 = performance.now();
    Atomics.store(words, CONTROL_STOP, 1);
    if (kind === 'ring') {
      // The ring workers end their loops on the stop word and report any error they met.
      await withTimeout(Promise.all([sender.result, receiver.result]), CASE_GRACE_MS, 'the ring throughput workers');
      checkWorkerResults([await sender.result, await receiver.result]);
    }
    const messages = received1 - received0;
    const elapsedMs = t1 - t0;
    return { messagesPerSec: (messages * 1000) / elapsedMs, messages, elapsedMs };
  } finally {
    await Promise.all([sender.worker.terminate(), receiver.worker.terminate()]);
  }
}

async function runLatencyCase(kind: 'ring' | 'post', input: CaseInput): Promise<LatencyResult> {
  const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
  const words = new Int32Array(control);
  const common = { control, messageBytes: input.messageBytes, rings: input.rings, warmupMs: input.warmupMs, timeMs: input.timeMs };
  let pinger: ReturnType<typeof startWorker>;
  let ponger: ReturnType<typeof startWorker>;
  if (kind === 'ring') {
    pinger = startWorker({ ...common, ringBenchRole: 'ring-pinger' });
    ponger = startWorker({ ...common, ringBenchRole: 'ring-ponger' });
  } else {
    const { port1, port2 } = new MessageChannel();
    pinger = startWorker({ ...common, ringBenchRole: 'post-pinger', port: port1 }, [port1]);
    ponger = startWorker({ ...common, ringBenchRole: 'post-ponger', port: port2 }, [port2]);
  }
  try {
    await bothStarted(words);
    Atomics.store(words, CONTROL_START, 1);
    Atomics.notify(words, CONTROL_START);
    const result = await withTimeout(pinger.result, input.warmupMs + input.timeMs + CASE_GRACE_MS, 'the pinger');
    Atomics.store(words, CONTROL_STOP, 1);
    checkWorkerResults([result]);
    return latencyOf((result as { samples: Float64Array }).samples);
  } finally {
    await Promise.all([pinger.worker.terminate(), ponger.worker.terminate()]);
  }
}

/** Resolves once both workers of a case have started; fails after CASE_GRACE_MS. */
async function bothStarted(words: Int32Array): Promise<void> {
  const deadline = performance.now() + CASE_GRACE_MS;
  while (Atomics.load(words, CONTROL_READY) < 2) {
    if (performance.now() > deadline) throw new Error(`the ring bench workers did not start within ${CASE_GRACE_MS} ms`);
    await sleep(5);
  }
  // A moment more for both to reach their loops.
  await sleep(10);
}

function checkWorkerResults(results: readonly unknown[]): void {
  for (const r of results) {
    const error = (r as { error?: string }).error;
    if (error !== undefined) throw new Error(`ring bench worker failed: ${error}`);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** p50, p99 and mean of round trips in milliseconds, reported in microseconds. */
export function latencyOf(samplesMs: Float64Array): LatencyResult {
  if (samplesMs.length === 0) throw new Error('no round trip completed');
  const sorted = Float64Array.from(samplesMs).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 1000;
  let sum = 0;
  for (const x of sorted) sum += x;
  return { p50Us: at(0.5), p99Us: at(0.99), meanUs: (sum / sorted.length) * 1000, samples: sorted.length };
}

// ---- worker side ----------------------------------------------------------------------

/** Blocks until the main thread sets the start word. */
function awaitStart(words: Int32Array): void {
  while (Atomics.load(words, CONTROL_START) === 0) Atomics.wait(words, CONTROL_START, 0, IDLE_WAIT_MS);
}

function stopped(words: Int32Array): boolean {
  return Atomics.load(words, CONTROL_STOP) !== 0;
}

/** A template message: bytes 4.. hold a fixed pattern; bytes 0..3 get each sequence number. */
function templateMessage(messageBytes: number): Uint8Array {
  const bytes = new Uint8Array(messageBytes);
  for (let i = 0; i < messageBytes; i++) bytes[i] = (i * 31) & 0xff;
  return bytes;
}

function writeSeq(target: Uint8Array, at: number, seq: number): void {
  target[at] = seq;
  target[at + 1] = seq >>> 8;
  target[at + 2] = seq >>> 16;
  target[at + 3] = seq >>> 24;
}

function readSeq(source: Uint8Array, at: number): number {
  return (source[at]! | (source[at + 1]! << 8) | (source[at + 2]! << 16) | (source[at + 3]! << 24)) >>> 0;
}

function ringSender(input: WorkerInput, words: Int32Array): object {
  const producer = new RingProducer(input.rings![0]!);
  const memory = producer.memory;
  const template = templateMessage(input.messageBytes);
  const publishBatch = input.publishBatch!;
  let seq = 0;
  awaitStart(words);
  while (!stopped(words)) {
    for (let i = 0; i < STOP_CHECK_MESSAGES; i++) {
      const reservation = producer.tryReserve(input.messageBytes);
      if (reservation === undefined) {
        // Publishes what is staged, then sleeps until the receiver frees room.
        producer.waitForRoom(input.messageBytes, IDLE_WAIT_MS);
        break;
      }
      // Encode in place: the template, then the sequence number over its first 4 bytes.
      const at = reservation.offsetBytes;
      memory.set(template, at);
      writeSeq(memory, at, seq);
      seq = (seq + 1) >>> 0;
      if (seq % publishBatch === 0) reservation.commit();
      else reservation.stage();
    }
  }
  producer.publish();
  return { sent: seq };
}

function ringReceiver(input: WorkerInput, words: Int32Array): object {
  const consumer = new RingConsumer(input.rings![0]!);
  const template = templateMessage(input.messageBytes);
  const lastByte = template[template.length - 1]!;
  let expected = 0;
  let received = 0;
  let bad = 0;
  const handle = (memory: Uint8Array, offsetBytes: number, lengthBytes: number): void => {
    // Decode in place: the sequence number and the last byte.
    if (readSeq(memory, offsetBytes) !== expected || memory[offsetBytes + lengthBytes - 1] !== lastByte) bad++;
    expected = (expected + 1) >>> 0;
  };
  awaitStart(words);
  while (!stopped(words)) {
    const n = consumer.drainRanges(handle);
    if (n === 0) {
      consumer.waitForData(IDLE_WAIT_MS);
      continue;
    }
    received += n;
    Atomics.store(words, CONTROL_RECEIVED, received);
  }
  if (bad !== 0) return { error: `${bad} messages arrived out of order or damaged` };
  return { received };
}

function postSender(input: WorkerInput, words: Int32Array): object {
  const port = input.port!;
  const message = templateMessage(input.messageBytes);
  const window = input.postWindowMessages!;
  let seq = 0;
  awaitStart(words);
  while (!stopped(words)) {
    const received = Atomics.load(words, CONTROL_RECEIVED);
    if (seq - received >= window) {
      // The receiver notifies this word as it counts; the timeout covers a missed one.
      Atomics.wait(words, CONTROL_RECEIVED, received, 1);
      continue;
    }
    writeSeq(message, 0, seq);
    port.postMessage(message); // a structured clone: the 150 bytes are copied
    seq = (seq + 1) >>> 0;
  }
  return { sent: seq };
}

/** Answers from its message handler, so it returns no result: the main thread terminates it. */
function postReceiver(input: WorkerInput, words: Int32Array): void {
  const port = input.port!;
  let expected = 0;
  let received = 0;
  port.on('message', (message: Uint8Array) => {
    if (readSeq(message, 0) !== expected) throw new Error(`message ${readSeq(message, 0)} arrived, expected ${expected}`);
    expected = (expected + 1) >>> 0;
    received++;
    Atomics.store(words, CONTROL_RECEIVED, received);
    if ((received & (STOP_CHECK_MESSAGES - 1)) === 0) Atomics.notify(words, CONTROL_RECEIVED);
  });
}

function ringPinger(input: WorkerInput, words: Int32Array): object {
  const pings = new RingProducer(input.rings![0]!);
  const pongs = new RingConsumer(input.rings![1]!);
  const ping = templateMessage(input.messageBytes);
  const samples = new Float64Array(LATENCY_SAMPLES_MAX);
  let count = 0;
  let seq = 0;
  let badPongs = 0;
  const checkPong = (view: Uint8Array): void => {
    if (readSeq(view, 0) !== seq) badPongs++;
  };
  awaitStart(words);
  const warmupEnd = performance.now() + input.warmupMs!;
  const end = warmupEnd + input.timeMs!;
  for (;;) {
    const t0 = performance.now();
    if (t0 >= end || count === LATENCY_SAMPLES_MAX) break;
    writeSeq(ping, 0, seq);
    // One ping is in flight at a time, so the ring holds at most this one and the last
    // (whose space the ponger may not have released yet): a full ring is a bug.
    if (!pings.tryPush(ping)) return { error: 'ping ring full' };
    if (!pongs.waitForData(CASE_GRACE_MS)) return { error: 'no pong' };
    pongs.drain(checkPong, 1);
    const t1 = performance.now();
    if (t0 >= warmupEnd) samples[count++] = t1 - t0;
    seq = (seq + 1) >>> 0;
  }
  if (badPongs !== 0) return { error: `${badPongs} pongs answered the wrong ping` };
  return { samples: samples.slice(0, count) };
}

function ringPonger(input: WorkerInput, words: Int32Array): object {
  const pings = new RingConsumer(input.rings![0]!);
  const pongs = new RingProducer(input.rings![1]!);
  const answer = (view: Uint8Array): void => {
    // Echo the ping: the pong goes straight from one ring's memory into the other's.
    if (!pongs.tryPush(view)) throw new Error('pong ring full');
  };
  awaitStart(words);
  while (!stopped(words)) {
    if (pings.drain(answer) === 0) pings.waitForData(IDLE_WAIT_MS);
  }
  return {};
}

function postPinger(input: WorkerInput, words: Int32Array): void {
  const port = input.port!;
  const ping = templateMessage(input.messageBytes);
  const samples = new Float64Array(LATENCY_SAMPLES_MAX);
  let count = 0;
  let seq = 0;
  awaitStart(words);
  const warmupEnd = performance.now() + input.warmupMs!;
  const end = warmupEnd + input.timeMs!;
  let t0 = performance.now();
  port.on('message', (pong: Uint8Array) => {
    const t1 = performance.now();
    if (readSeq(pong, 0) !== seq) {
      parentPort!.postMessage({ error: `pong ${readSeq(pong, 0)} answered ping ${seq}` });
      return;
    }
    if (t0 >= warmupEnd) samples[count++] = t1 - t0;
    if (t1 >= end || count === LATENCY_SAMPLES_MAX) {
      port.close();
      parentPort!.postMessage({ samples: samples.slice(0, count) });
      return;
    }
    seq = (seq + 1) >>> 0;
    writeSeq(ping, 0, seq);
    t0 = performance.now();
    port.postMessage(ping);
  });
  writeSeq(ping, 0, seq);
  t0 = performance.now();
  port.postMessage(ping);
}

function postPonger(input: WorkerInput): void {
  const port = input.port!;
  port.on('message', (ping: Uint8Array) => port.postMessage(ping));
}

function runWorker(input: WorkerInput): void {
  const words = new Int32Array(input.control);
  Atomics.add(words, CONTROL_READY, 1);
  const report = (result: object): void => parentPort!.postMessage(result);
  try {
    switch (input.ringBenchRole) {
      case 'ring-sender':
        return report(ringSender(input, words));
      case 'ring-receiver':
        return report(ringReceiver(input, words));
      case 'ring-pinger':
        return report(ringPinger(input, words));
      case 'ring-ponger':
        return report(ringPonger(input, words));
      case 'post-sender':
        return report(postSender(input, words));
      case 'post-receiver':
        return postReceiver(input, words);
      case 'post-pinger':
        return postPinger(input, words);
      case 'post-ponger':
        return postPonger(input);
    }
  } catch (error) {
    report({ error: String((error as Error)?.stack ?? error) });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'time-ms': { type: 'string' } } });
  const timeMs = values['time-ms'] === undefined ? TIME_MS_DEFAULT : Number(values['time-ms']);
  if (!(timeMs > 0)) throw new Error(`--time-ms must be a positive number, not ${values['time-ms']}`);
  // Run alone, this file is its own CLI entry, so it prints.
  const result = await runRingBench({ timeMs, onProgress: (line) => process.stderr.write(`${line}\n`) });
  for (const line of formatRingBench(result)) process.stdout.write(`${line}\n`);
}

if (!isMainThread && (workerData as Partial<WorkerInput> | null)?.ringBenchRole !== undefined) {
  runWorker(workerData as WorkerInput);
} else if (isMainThread && process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
    process.exitCode = 1;
  });
}
