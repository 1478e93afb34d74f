// Proves the ring across real threads: fast-check picks capacities, frame sizes and random
// pacing for a producer and a consumer in two worker threads (test/fixtures/ring-stream.mjs),
// and every frame must arrive exactly once, in order, intact (index, length, checksum and
// every byte checked against the frame regenerated from the seed), wrapping frames included.
// It also proves waking: an idle consumer asleep in Atomics.wait, or on a Doorbell shared by
// several rings, wakes on a push well within a second; a main-thread consumer awaits a
// worker's push on a Doorbell without blocking; and a main-thread producer feeds one worker
// through three rings and a Doorbell under back-pressure, retrying a refused frame on a later
// turn of its event loop as the runtime's Outbox does. Every run is bounded in frames and
// time, and the test terminates its workers by handle whatever happens.
//
// Workers run compiled JavaScript: these tests use dist/ (`npm test` builds it first).
import { existsSync, statSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  Doorbell,
  RING_CONTROL_BYTES,
  RingConsumer,
  RingProducer,
  createRing,
  ringFrameBytesMax,
} from '../../dist/src/transport/index.js';
import { CONSUMER_WAITING_WORD } from './helpers.ts';

const fixturesUrl = new URL('../fixtures/', import.meta.url);
const builtRingUrl = new URL('../../dist/src/transport/ring.js', import.meta.url);
const sourceRingUrl = new URL('../../src/transport/ring.ts', import.meta.url);

/** Longest any worker may wait for the other side before it reports a stall. */
const WORKER_WAIT_MS = 2_000;
/** Longest one run of workers may take before the test gives up on it. */
const RUN_TIMEOUT_MS = 10_000;
/** Generous bound on waking: this proves waking, it does not time it. */
const WAKE_BOUND_MS = 1_000;

interface WorkerResult {
  readonly ok: true;
  readonly [key: string]: unknown;
}

/**
 * A worker running a fixture, with its first 'ready' message (if the fixture sends one) and
 * its final result as promises. The result rejects on { ok: false }, an error event, or an
 * exit before a result.
 */
class FixtureWorker {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  readonly result: Promise<WorkerResult>;

  constructor(fixture: string, workerData: Record<string, unknown>) {
    this.worker = new Worker(new URL(fixture, fixturesUrl), { workerData });
    let onReady: () => void = () => {};
    this.ready = new Promise<void>((resolve) => (onReady = resolve));
    this.result = new Promise<WorkerResult>((resolve, reject) => {
      this.worker.on('message', (m: { ready?: boolean; ok?: boolean; error?: string }) => {
        if (m.ready === true) onReady();
        else if (m.ok === true) resolve(m as WorkerResult);
        else reject(new Error(`${fixture} (${String(workerData.role)}) failed: ${m.error}`));
      });
      this.worker.on('error', reject);
      this.worker.on('exit', (code) => reject(new Error(`${fixture} (${String(workerData.role)}) exited with code ${code} before its result`)));
    });
    // Unhandled until awaited: a failing worker in a test that already failed must not
    // turn into an unhandled rejection.
    this.result.catch(() => {});
  }
}

/** Rejects after `ms`, so that a hung worker fails its test instead of hanging it. */
function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Runs `body` with the workers it starts, and terminates them all afterwards, however it ends. */
async function withWorkers<T>(body: (start: (fixture: string, data: Record<string, unknown>) => FixtureWorker) => Promise<T>): Promise<T> {
  const started: FixtureWorker[] = [];
  try {
    return await body((fixture, data) => {
      const w = new FixtureWorker(fixture, data);
      started.push(w);
      return w;
    });
  } finally {
    await Promise.all(started.map((w) => w.worker.terminate()));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const now = (): number => performance.timeOrigin + performance.now();

/**
 * Pushes `bytes`, trying again on a later turn of the event loop while the ring is full, as
 * the endpoint's Outbox keeps what does not fit and flushes it on its next turn; false if
 * `ms` pass first. It never blocks the main thread.
 */
async function pushOnLaterTurns(producer: RingProducer, bytes: Uint8Array, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!producer.tryPush(bytes)) {
    if (performance.now() > deadline) return false;
    await nextTurn();
  }
  return true;
}

/** Resolves once `condition` holds, polling every millisecond; rejects after `ms`. */
async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(1);
  }
}

beforeAll(() => {
  const built = fileURLToPath(builtRingUrl);
  if (!existsSync(built)) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.json` first (npm test does)');
  if (statSync(built).mtimeMs < statSync(fileURLToPath(sourceRingUrl)).mtimeMs) {
    throw new Error('dist/src/transport/ring.js is older than its source: rebuild with `npx tsc -p tsconfig.json`');
  }
});

describe('ring between two worker threads', () => {
  it('delivers every frame exactly once, in order and intact, under random sizes and pacing', async () => {
    let wrapsSeen = 0;
    let framesSeen = 0;
    const runArb = fc.record({
      capacityBytes: fc.constantFrom(64, 128, 256, 1024, 4096),
      /** Largest frame as a fraction of the ring's maximum. */
      // Fractions and probabilities in whole percent: fc.double favours values near 0.
      sizeFraction: fc.oneof(fc.constant(1), fc.integer({ min: 5, max: 100 }).map((p) => p / 100)),
      frames: fc.integer({ min: 50, max: 1500 }),
      seed: fc.integer({ min: 0, max: 0x7fff_ffff }),
      producerPauseProbability: fc.integer({ min: 0, max: 30 }).map((p) => p / 100),
      consumerPauseProbability: fc.integer({ min: 0, max: 30 }).map((p) => p / 100),
      pauseMicrosMax: fc.integer({ min: 0, max: 300 }),
    });
    await fc.assert(
      fc.asyncProperty(runArb, async (run) => {
        const ring = createRing(run.capacityBytes);
        const sizeMax = Math.max(1, Math.floor(run.sizeFraction * ringFrameBytesMax(run.capacityBytes)));
        const common = { ring, frames: run.frames, seed: run.seed, sizeMax, pauseMicrosMax: run.pauseMicrosMax, waitMs: WORKER_WAIT_MS };
        const consumed = await withWorkers(async (start) => {
          const producer = start('ring-stream.mjs', { ...common, role: 'producer', pauseProbability: run.producerPauseProbability });
          const consumer = start('ring-stream.mjs', { ...common, role: 'consumer', pauseProbability: run.consumerPauseProbability });
          const [, c] = await withTimeout(Promise.all([producer.result, consumer.result]), RUN_TIMEOUT_MS, `a run of ${run.frames} frames`);
          return c;
        });
        expect(consumed.received).toBe(run.frames);
        wrapsSeen += consumed.wraps as number;
        framesSeen += run.frames;
        // The consumer has released everything: both indices are equal.
        const words = new Int32Array(ring, 0, RING_CONTROL_BYTES / 4);
        expect(Atomics.load(words, 128 / 4)).toBe(Atomics.load(words, 256 / 4));
      }),
      {
        numRuns: 12,
        // A failing run costs up to WORKER_WAIT_MS; shrinking would repeat that many times.
        // The counterexample (with its seed) is reported as found.
        endOnFailure: true,
        // A small ring and frames up to its maximum: wrap headers are certain.
        examples: [
          [{ capacityBytes: 64, sizeFraction: 1, frames: 1500, seed: 1, producerPauseProbability: 0.1, consumerPauseProbability: 0.1, pauseMicrosMax: 50 }],
          [{ capacityBytes: 4096, sizeFraction: 1, frames: 1500, seed: 2, producerPauseProbability: 0, consumerPauseProbability: 0, pauseMicrosMax: 0 }],
        ],
      },
    );
    expect(framesSeen).toBeGreaterThan(0);
    expect(wrapsSeen).toBeGreaterThan(0);
  }, 30_000);
});

describe('waking a sleeping consumer', () => {
  it('a consumer asleep in Atomics.wait wakes on a push within a bounded time', async () => {
    const ring = createRing(1024);
    await withWorkers(async (start) => {
      const sleeper = start('ring-wake.mjs', { role: 'sleeper', rings: [ring], waitMs: 10_000 });
      await withTimeout(sleeper.ready, RUN_TIMEOUT_MS, 'the sleeper to start');
      // The consumer raises its waiting flag just before Atomics.wait; give it time to be there.
      const words = new Int32Array(ring, 0, RING_CONTROL_BYTES / 4);
      await until(() => Atomics.load(words, CONSUMER_WAITING_WORD) === 1, RUN_TIMEOUT_MS, 'the consumer to sleep');
      await sleep(50);
      expect(Atomics.load(words, CONSUMER_WAITING_WORD)).toBe(1);
      const pushedAtMs = now();
      expect(new RingProducer(ring).tryPush(new Uint8Array([42]))).toBe(true);
      const r = await withTimeout(sleeper.result, RUN_TIMEOUT_MS, 'the sleeper to wake');
      expect(r.woke).toBe(true);
      expect(r.frame).toEqual(new Uint8Array([42]));
      expect((r.wokeAtMs as number) - pushedAtMs).toBeLessThan(WAKE_BOUND_MS);
    });
  });

  it('a consumer asleep on a Doorbell for three rings wakes on a push to any of them', async () => {
    const bell = Doorbell.create();
    const rings = [createRing(256), createRing(256), createRing(256)];
    await withWorkers(async (start) => {
      const sleeper = start('ring-wake.mjs', { role: 'bell-sleeper', rings, doorbell: bell.buffer, waitMs: 10_000 });
      await withTimeout(sleeper.ready, RUN_TIMEOUT_MS, 'the sleeper to start');
      // Word 2 of a doorbell counts its waiters (ring.ts, Doorbell).
      const bellWords = new Int32Array(bell.buffer);
      await until(() => Atomics.load(bellWords, 2) === 1, RUN_TIMEOUT_MS, 'the consumer to wait on the bell');
      await sleep(50);
      const pushedAtMs = now();
      expect(new RingProducer(rings[1]!, { doorbell: bell }).tryPush(new Uint8Array([7, 7]))).toBe(true);
      const r = await withTimeout(sleeper.result, RUN_TIMEOUT_MS, 'the sleeper to wake');
      expect(r.woke).toBe(true);
      expect(r.ringIndex).toBe(1);
      expect(r.frame).toEqual(new Uint8Array([7, 7]));
      expect((r.wokeAtMs as number) - pushedAtMs).toBeLessThan(WAKE_BOUND_MS);
      expect(Atomics.load(bellWords, 2)).toBe(0);
    });
  });

  it('a main-thread consumer awaits, on a Doorbell, a push from a worker without blocking its event loop', async () => {
    const ring = createRing(256);
    const consumer = new RingConsumer(ring);
    const bell = Doorbell.create();
    await withWorkers(async (start) => {
      const producer = start('ring-wake.mjs', { role: 'producer', rings: [ring], doorbell: bell.buffer, delayMs: 50, waitMs: 5_000 });
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 5);
      try {
        expect(await bell.waitAsync(10_000, () => consumer.hasData())).toBe(true);
      } finally {
        clearInterval(ticker);
      }
      const wokeAtMs = now();
      const r = await withTimeout(producer.result, RUN_TIMEOUT_MS, 'the producer');
      expect(wokeAtMs - (r.pushedAtMs as number)).toBeLessThan(WAKE_BOUND_MS);
      expect(ticks).toBeGreaterThan(0); // timers ran while the consumer waited
      expect(consumer.tryPop()).toEqual(new Uint8Array([1, 2, 3]));
    });
  });

  it('a main-thread producer feeds a worker through three rings and a Doorbell under back-pressure', async () => {
    const bell = Doorbell.create();
    const rings = [createRing(256), createRing(256), createRing(256)];
    const framesPerRing = 2_000;
    await withWorkers(async (start) => {
      const consumer = start('ring-wake.mjs', { role: 'bell-consumer', rings, doorbell: bell.buffer, frames: framesPerRing, waitMs: WORKER_WAIT_MS });
      await withTimeout(consumer.ready, RUN_TIMEOUT_MS, 'the consumer to start');
      const producers = rings.map((r) => new RingProducer(r, { doorbell: bell }));
      let fullRefusals = 0;
      const feed = async (ringIndex: number): Promise<void> => {
        const producer = producers[ringIndex]!;
        for (let index = 0; index < framesPerRing; index++) {
          const bytes = new Uint8Array(4 + (index % 60));
          new DataView(bytes.buffer).setUint32(0, index, true);
          for (let b = 4; b < bytes.length; b++) bytes[b] = (index + b) & 0xff;
          if (producer.tryPush(bytes)) continue;
          fullRefusals++;
          expect(await pushOnLaterTurns(producer, bytes, WORKER_WAIT_MS)).toBe(true);
        }
      };
      await withTimeout(Promise.all([feed(0), feed(1), feed(2)]), RUN_TIMEOUT_MS, 'feeding three rings');
      const r = await withTimeout(consumer.result, RUN_TIMEOUT_MS, 'the consumer');
      expect(r.received).toBe(3 * framesPerRing);
      expect(r.next).toEqual([framesPerRing, framesPerRing, framesPerRing]);
      expect(fullRefusals).toBeGreaterThan(0); // the rings did fill up: back-pressure was exercised
    });
  });
});
