/**
 * `ringraft/sim`: tests a state machine of yours under Raft's faults. Each seed runs a
 * simulated cluster (3 or 5 nodes by default) with your machine on every replica, through
 * partitions, message loss and delay, crashes at the worst moments, torn writes and bit flips
 * on a simulated disk, snapshots and restarts from them, and membership changes, while
 * clients propose the commands you generate. It checks, beside Raft's own invariants:
 *
 * - every replica answers the command at each log index the same (result, or what it threw);
 * - a machine restored from a snapshot gives back the same bytes from its own `snapshot()`;
 * - at the end, replicas that applied as far hold machines with the same snapshot.
 *
 * A machine that is not deterministic (it reads the clock, draws random numbers, iterates in
 * an order that differs between runs) fails these checks. A failing seed replays exactly
 * (`replay` says how) and comes with the last events of each node before the violation.
 *
 * Given a sequential `model` of the machine, each seed also checks that the clients' history
 * is linearizable against it (sim/app-history.ts).
 *
 * A machine may restore or give its snapshot async (kv/app-machine.ts): each run waits for
 * that work before its next event, so a seed replays the same however long the work takes in
 * real time, and a node whose restore is async is held (it drops what it is sent) for a time
 * the seed draws. The `model` must restore and snapshot at once.
 *
 * Stability: experimental until 1.0.
 *
 * @experimental
 * @module ringraft/sim
 */
import { ErrorCode, RingraftError } from './base/index.ts';
import type { StateMachineFactory } from './kv/index.ts';
import { defaultSimOptions, FAULT_KINDS, Simulation, type FaultKind } from './sim/index.ts';

export type { StateMachine, StateMachineFactory } from './kv/index.ts';
export { FAULT_KINDS, type FaultKind };

/** What to simulate. */
export interface StateMachineSimulation {
  /** Makes the machine under test, once per replica and per restore: a module's default export, or any factory. */
  readonly stateMachine: StateMachineFactory;
  /** What `stateMachine` is called with. */
  readonly options?: unknown;
  /** The command client `client` proposes as its op `op`; `random()` draws from the client's seeded generator. Default: `a<client>-<op>` as text. */
  readonly command?: (random: () => number, client: number, op: number) => Uint8Array;
  /**
   * A sequential model to check the clients' history against (linearizability): a factory,
   * called with `options`, of a machine whose `apply` does not depend on the index it is given
   * (often `stateMachine` itself). Each seed then also checks that some order of the commands,
   * each between its call and its answer, explains every answer.
   */
  readonly model?: StateMachineFactory;
  /** The first seed (default 1): seeds [start, start + seeds) run, each below 2^32. */
  readonly start?: number;
  /** How many seeds run, 1 to 1,000,000 (default 100). */
  readonly seeds?: number;
  /** Cluster sizes, taken in turn from seed to seed (default [3, 5]). */
  readonly nodes?: readonly number[];
  /** The share of client writes that are commands for the machine, in (0, 1] (default 0.5; the rest exercise the store beside it). */
  readonly commandShare?: number;
  /** The faults to inject (FAULT_KINDS); default: each seed's own draw of them. */
  readonly faults?: readonly FaultKind[];
  /** Real time (ms) a seed waits at most for an async restore or snapshot chunk before it fails (one that never settles); default 30,000. */
  readonly asyncWorkWaitMs?: number;
}

/** A seed that failed, with what it violated and how to run it again. */
export interface StateMachineSimFailure {
  /** The seed. */
  readonly seed: number;
  /** The cluster size it ran with. */
  readonly nodes: number;
  /** What went wrong, in words: one of this module's checks (answers, snapshots) or one of Raft's invariants. */
  readonly violation: string;
  /** The call that runs this seed again, exactly. */
  readonly replay: string;
  /** The last events of each node before the violation, one a line. */
  readonly lastEvents: readonly string[];
}

/** What {@link simulateStateMachine} found. */
export interface StateMachineSimReport {
  /** Seeds run: all of them, failed or not. */
  readonly runs: number;
  /** Commands applied, summed over every replica of every run. */
  readonly commandsApplied: number;
  /** Seeds that failed, all of them (0: every seed passed). */
  readonly failed: number;
  /** The seeds that failed, in order: the first 10 only (empty: every seed passed). */
  readonly failures: readonly StateMachineSimFailure[];
}

/** Failures kept in a report; the runs go on and are counted. */
const FAILURES_KEPT_MAX = 10;
const SEEDS_MAX = 1_000_000;

/**
 * Runs the seeds of `spec`, one after another in this thread; see the module comment for what
 * is checked. Rejects with INVALID_ARGUMENT for a spec it cannot run; a seed that fails is in
 * the report's `failures`, never a rejection.
 */
export async function simulateStateMachine(spec: StateMachineSimulation): Promise<StateMachineSimReport> {
  const s = checkSpec(spec);
  let commandsApplied = 0;
  let failed = 0;
  const failures: StateMachineSimFailure[] = [];
  for (let i = 0; i < s.seeds; i++) {
    const seed = s.start + i;
    const nodes = s.nodes[i % s.nodes.length]!;
    const sim = new Simulation(
      defaultSimOptions(seed, {
        nodes,
        appCommands: s.commandShare,
        stateMachine: {
          factory: spec.stateMachine,
          options: spec.options,
          ...(spec.command === undefined ? {} : { command: spec.command }),
          ...(spec.model === undefined ? {} : { model: spec.model }),
        },
        ...(spec.faults === undefined ? {} : { faults: spec.faults }),
        ...(spec.asyncWorkWaitMs === undefined ? {} : { asyncWorkWaitMs: spec.asyncWorkWaitMs }),
      }),
    );
    const r = await sim.runAsync();
    commandsApplied += sim.appCheck?.applied ?? 0;
    if (r.ok) continue;
    failed++;
    if (failures.length >= FAILURES_KEPT_MAX) continue;
    failures.push({
      seed,
      nodes,
      violation: r.violation!,
      replay: `simulateStateMachine({ ...spec, start: ${seed}, seeds: 1, nodes: [${nodes}] })`,
      lastEvents: r.lastEvents,
    });
  }
  return { runs: s.seeds, commandsApplied, failed, failures };
}

function checkSpec(spec: StateMachineSimulation): { start: number; seeds: number; nodes: readonly number[]; commandShare: number } {
  const invalid = (message: string): RingraftError => new RingraftError(ErrorCode.INVALID_ARGUMENT, message);
  if (typeof spec !== 'object' || spec === null) throw invalid('simulateStateMachine takes { stateMachine, options, command, start, seeds, nodes, commandShare, faults }');
  if (typeof spec.stateMachine !== 'function') throw invalid('stateMachine must be a function that makes the machine (a module\'s default export)');
  if (spec.command !== undefined && typeof spec.command !== 'function') throw invalid('command must be a function (random, client, op) => Uint8Array');
  if (spec.model !== undefined && typeof spec.model !== 'function') throw invalid('model must be a function that makes a sequential model of the machine');
  const start = spec.start ?? 1;
  const seeds = spec.seeds ?? 100;
  if (!(Number.isInteger(seeds) && seeds >= 1 && seeds <= SEEDS_MAX)) throw invalid(`seeds must be an integer in [1, ${SEEDS_MAX}], got ${String(seeds)}`);
  const nodes = spec.nodes ?? [3, 5];
  const commandShare = spec.commandShare ?? 0.5;
  if (!(Number.isInteger(start) && start >= 0 && start + seeds - 1 <= 0xffffffff)) throw invalid(`start must be an integer seed in [0, 2^32), got ${String(start)}`);
  if (!(Array.isArray(nodes) && nodes.length > 0 && nodes.every((n) => Number.isInteger(n) && n >= 1 && n <= 7))) throw invalid('nodes must be a non-empty list of cluster sizes from 1 to 7');
  if (!(typeof commandShare === 'number' && commandShare > 0 && commandShare <= 1)) throw invalid(`commandShare must be in (0, 1], got ${String(commandShare)}`);
  if (spec.asyncWorkWaitMs !== undefined && !(Number.isInteger(spec.asyncWorkWaitMs) && spec.asyncWorkWaitMs >= 1)) throw invalid(`asyncWorkWaitMs must be a positive integer, got ${String(spec.asyncWorkWaitMs)}`);
  if (spec.faults !== undefined && !(Array.isArray(spec.faults) && spec.faults.every((f) => (FAULT_KINDS as readonly string[]).includes(f)))) throw invalid(`faults must be a list of ${FAULT_KINDS.join(', ')}`);
  return { start, seeds, nodes, commandShare };
}
