/**
 * The workload every system in the peer comparison runs: the same keys, the same value,
 * the same closed-loop cells (an operation at a number of requests in flight), in the same
 * order, with the same time and count bounds.
 */

/** Bytes of every key: `k` and a zero-padded index, ASCII. */
export const KEY_BYTES = 16;
/** Bytes of every value. */
export const VALUE_BYTES = 128;

export type PeerOp = 'put' | 'get';

/** One measured cell: `op` from `inFlight` concurrent callers. */
export interface Cell {
  readonly op: PeerOp;
  readonly inFlight: number;
  /** Redis only: SETs per pipeline; each of `inFlight / pipelineDepth` callers sends one pipeline at a time. */
  readonly pipelineDepth?: number;
}

export interface Plan {
  /** Length of one measured closed loop. */
  readonly durationMs: number;
  /** An unmeasured loop at the same concurrency before each measured one. */
  readonly warmupMs: number;
  /** Each cell is measured this many times (rounds go through all cells in turn); the median round is reported. */
  readonly rounds: number;
  /** Distinct keys; puts cycle through them, gets read them after a preload has written each once. */
  readonly keysCount: number;
  /** Requests in flight while preloading the keys. */
  readonly preloadInFlight: number;
  /** The main concurrencies: put and get at each, on every system. */
  readonly inFlights: readonly number[];
  /** Cells beyond the main ones, per system, to set beside the reference figures. */
  readonly extraCells: Readonly<Record<'ringraft' | 'etcd' | 'redis', readonly Cell[]>>;
  /** etcd: requests in flight at most (a cell asking for more runs at this and says so). */
  readonly etcdInFlightMax: number;
  /** Redis: connections at most; a cell's requests in flight are spread over min(inFlight, this) connections. */
  readonly redisConnectionsMax: number;
  /** Operations per closed loop at most, whatever the time. */
  readonly loopOpsMax: number;
  /** Every single request gives up after this long. */
  readonly requestTimeoutMs: number;
}

/** Redis's reference: 50 clients, with and without 16-deep pipelining (as redis-benchmark -c 50 -P 16). */
export const REFERENCE_CLIENTS = 50;
export const REFERENCE_PIPELINE_DEPTH = 16;
/** etcd's reference figure was taken at 64 puts in flight. */
export const REFERENCE_ETCD_IN_FLIGHT = 64;

/**
 * etcd's cells ask for at most this many requests in flight. Measured here: from 1,024 to
 * 4,096 in flight the etcd3 client (one Node.js thread, grpc-js, one HTTP/2 connection per
 * member) gained no throughput (3,501 and 3,187 puts/s; 2,172 and 2,641 gets/s) while the
 * median latency went from 0.29 to 1.0 s for puts and from 0.42 to 1.5 s for gets: the
 * extra requests only queue. A 4,096 cell runs at this cap and its row says so.
 */
export const ETCD_IN_FLIGHT_MAX = 1_024;

const REFERENCE_CELLS = {
  ringraft: [
    { op: 'put', inFlight: REFERENCE_ETCD_IN_FLIGHT },
    { op: 'get', inFlight: REFERENCE_ETCD_IN_FLIGHT },
    { op: 'put', inFlight: REFERENCE_CLIENTS },
    { op: 'put', inFlight: REFERENCE_CLIENTS * REFERENCE_PIPELINE_DEPTH },
  ],
  etcd: [
    { op: 'put', inFlight: REFERENCE_ETCD_IN_FLIGHT },
    { op: 'get', inFlight: REFERENCE_ETCD_IN_FLIGHT },
  ],
  redis: [
    { op: 'put', inFlight: REFERENCE_CLIENTS },
    { op: 'put', inFlight: REFERENCE_CLIENTS * REFERENCE_PIPELINE_DEPTH, pipelineDepth: REFERENCE_PIPELINE_DEPTH },
  ],
} as const satisfies Plan['extraCells'];

const COMMON = {
  keysCount: 10_000,
  preloadInFlight: 64,
  inFlights: [1, 16, 256, 4096],
  extraCells: REFERENCE_CELLS,
  etcdInFlightMax: ETCD_IN_FLIGHT_MAX,
  redisConnectionsMax: REFERENCE_CLIENTS,
  loopOpsMax: 5_000_000,
  requestTimeoutMs: 10_000,
} as const;

/** The full run: three rounds of 3 s per cell, each after 0.5 s of warm-up. */
export const FULL_PLAN: Plan = { ...COMMON, durationMs: 3_000, warmupMs: 500, rounds: 3 };

/** A smoke run, not for numbers: one round of 0.4 s per cell. */
export const QUICK_PLAN: Plan = { ...COMMON, durationMs: 400, warmupMs: 100, rounds: 1, keysCount: 1_000 };

/** The cells of one system, puts before gets (gets read the keys the preload wrote). */
export function cellsOf(plan: Plan, system: 'ringraft' | 'etcd' | 'redis'): Cell[] {
  const main = plan.inFlights.flatMap((inFlight): Cell[] => [{ op: 'put', inFlight }, { op: 'get', inFlight }]);
  const all: Cell[] = [...main, ...plan.extraCells[system]];
  const order = (c: Cell) => (c.op === 'put' ? 0 : 1);
  return all.sort((a, b) => order(a) - order(b) || a.inFlight - b.inFlight || (a.pipelineDepth ?? 1) - (b.pipelineDepth ?? 1));
}

/** `count` distinct keys of {@link KEY_BYTES} ASCII bytes each. */
export function makeKeys(count: number): Buffer[] {
  const digits = KEY_BYTES - 1;
  if (!(Number.isSafeInteger(count) && count >= 1 && String(count - 1).length <= digits)) throw new RangeError(`keysCount ${count} does not fit ${digits} digits`);
  return Array.from({ length: count }, (_, i) => Buffer.from(`k${String(i).padStart(digits, '0')}`, 'latin1'));
}

/** The value every put writes: {@link VALUE_BYTES} bytes of a fixed pattern. */
export function makeValue(): Buffer {
  return Buffer.from(Array.from({ length: VALUE_BYTES }, (_, i) => 'abcdefghijklmnopqrstuvwxyz0123456789'.charCodeAt(i % 36)));
}

/** An error a get throws when it reads something other than the value the preload wrote. */
export class WrongValueError extends Error {
  readonly code = 'WRONG_VALUE';
  constructor(length: number | undefined) {
    super(`a get read ${length === undefined ? 'nothing' : `${length} bytes`}, not the ${VALUE_BYTES}-byte value`);
  }
}

/** Checks what a get read; throws {@link WrongValueError} unless it is the value. */
export function checkValue(read: Uint8Array | null | undefined, value: Buffer): void {
  if (read === null || read === undefined || read.length !== value.length || !value.equals(read)) throw new WrongValueError(read?.length ?? undefined);
}
