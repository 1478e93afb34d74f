/**
 * A state machine of the cluster's own (kv/app-machine.ts) in the simulator, for runs with
 * `appCommands`: the user's own (`stateMachine`, what `ringraft/sim` tests), or the
 * simulator's digest machine, whose state is a digest of every command it applied with the
 * command's index. Either way every replica's machine is wrapped and three things are checked:
 *
 * - At each index, the first replica to apply a command records a digest of the command and of
 *   what `apply` answered (its result, or what it threw), and every other replica must answer
 *   the same: a replica that diverges (a machine that is not deterministic, a command applied
 *   twice or lost, a snapshot restored wrong) is a violation at once.
 * - A machine restored from a snapshot must give back the same bytes from its own `snapshot()`:
 *   a snapshot is a deterministic function of the state.
 * - At the end of a run, replicas that applied as far have machines with the same snapshot.
 *
 * The planted bug `app-nondeterministic` mixes the node's id into every seventh command's
 * digest of the simulator's machine, as a machine that read its clock or its host name would.
 */
import { appSnapshotBytes, restoreApp, runApp, type StateMachine, type StateMachineFactory } from '../kv/index.ts';
import { checkedMachine } from '../runtime/index.ts';
import { sameBytes } from './invariants.ts';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** A user's state machine under test: its factory and options, and the commands its clients propose. */
export interface SimStateMachine {
  readonly factory: StateMachineFactory;
  readonly options?: unknown;
  /** The command client `client` proposes as its op number `op`; `random` draws from the client's seeded generator. */
  readonly command?: (random: () => number, client: number, op: number) => Uint8Array;
  /** A sequential model to check the clients' history against (app-history.ts), made with `options`: often the factory itself. */
  readonly model?: StateMachineFactory;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function fnv(h: number, bytes: Uint8Array): number {
  for (const byte of bytes) h = Math.imul(h ^ byte, FNV_PRIME) >>> 0;
  return h;
}


/** What the check needs of the run, for state machines that work async. */
export interface AppCheckRun {
  /** The run waits for `work` before its next event. */
  awaitWork(work: Promise<unknown>): void;
  /** Calls `f` at a later event of the run (a time the seed draws) and waits for it then. */
  later<T>(f: () => Promise<T>): Promise<T>;
}

function isAsyncIterable(x: unknown): x is AsyncIterable<Uint8Array> {
  return typeof x === 'object' && x !== null && !(x instanceof Uint8Array) && typeof (x as Partial<AsyncIterable<Uint8Array>>)[Symbol.asyncIterator] === 'function';
}

export class AppCheck {
  /** What the first replica answered at each index it applied a command at (a digest). */
  private readonly byIndex = new Map<string, number>();
  /** The machine each node runs now (the latest made for it). */
  private readonly current = new Map<number, StateMachine>();
  /** Commands applied, by all replicas. */
  applied = 0;

  constructor(
    private readonly onDiverge: (what: string) => void,
    private readonly user: SimStateMachine | undefined,
    private readonly nondeterministic: boolean,
    private readonly run: AppCheckRun,
  ) {}

  /** A machine for node `node` (a new one each time its store is made or restored). */
  machine(node: number): StateMachine {
    const inner = this.user === undefined ? this.digestMachine(node) : checkedMachine(this.user.factory(structuredClone(this.user.options)), 'stateMachine');
    // Commands batched in one entry share its index: the k-th of them at an index is keyed (index, k).
    let lastIndex = -1;
    let atIndex = 0;
    const checked: StateMachine = {
      apply: (command, index) => {
        let thrown: { error: unknown } | undefined;
        let result: Uint8Array | undefined | void;
        // What the store would answer, to compare; the machine's own answer (or throw) goes on.
        const outcome = runApp(() => {
          try {
            result = inner.apply(command, index);
            return result;
          } catch (error) {
            thrown = { error };
            throw error;
          }
        });
        this.applied++;
        atIndex = index === lastIndex ? atIndex + 1 : 0;
        lastIndex = index;
        const digest = fnv(fnv(Math.imul(FNV_OFFSET ^ (index >>> 0), FNV_PRIME) >>> 0, command), outcome);
        const key = `${index}:${atIndex}`;
        const first = this.byIndex.get(key);
        if (first === undefined) this.byIndex.set(key, digest);
        else if (first !== digest) this.onDiverge(`state machine divergence: node ${node} answered the command at index ${index} otherwise than another replica did (digest ${digest.toString(16)}, not ${first.toString(16)})`);
        if (thrown !== undefined) throw thrown.error;
        return result;
      },
      query: (request) => inner.query(request),
      snapshot: () => {
        const taken = inner.snapshot();
        return isAsyncIterable(taken) ? this.readOverTime(taken) : taken;
      },
      restore: (chunks) => {
        const all = [...chunks];
        const bytes = all.length === 1 ? all[0]! : Uint8Array.from(all.flatMap((c) => [...c]));
        const compare = (again: Uint8Array): void => {
          if (!sameBytes(again, bytes)) this.onDiverge(`state machine snapshot: node ${node}, restored from a snapshot of ${bytes.length} bytes, gives back ${again.length} bytes that differ: its snapshot is not a function of its state`);
        };
        // Its snapshot is taken as soon as it has restored, before it applies anything more.
        const check = (): void => {
          const again = appSnapshotBytes(inner);
          if (again instanceof Promise) this.run.awaitWork(again.then(compare, (error: unknown) => this.onDiverge(`state machine snapshot: node ${node}, just restored, failed to give its snapshot: ${describe(error)}`)));
          else compare(again);
        };
        const restoring = restoreApp(inner, bytes);
        if (restoring === undefined) return check();
        // It settles for the node at a later event: meanwhile the node drops and refuses what comes.
        return this.run.later(() => restoring.then(check));
      },
    };
    this.current.set(node, inner);
    return checked;
  }

  /** Replicas that applied as far (`appliedIndex` of the live ones) must hold machines with the same snapshot. */
  checkEnd(replicas: readonly { readonly id: number; readonly appliedIndex: number }[]): string | undefined | Promise<string | undefined> {
    const taken: { id: number; appliedIndex: number; bytes: Uint8Array | Promise<Uint8Array> }[] = [];
    for (const r of replicas) {
      const machine = this.current.get(r.id);
      if (machine !== undefined) taken.push({ id: r.id, appliedIndex: r.appliedIndex, bytes: appSnapshotBytes(machine) });
    }
    const compare = (all: readonly Uint8Array[]): string | undefined => {
      const byApplied = new Map<number, { id: number; bytes: Uint8Array }>();
      for (let i = 0; i < taken.length; i++) {
        const r = taken[i]!;
        const bytes = all[i]!;
        const other = byApplied.get(r.appliedIndex);
        if (other === undefined) byApplied.set(r.appliedIndex, { id: r.id, bytes });
        else if (!sameBytes(other.bytes, bytes)) return `state machine divergence: nodes ${other.id} and ${r.id} applied up to index ${r.appliedIndex} and hold different states (snapshots of ${other.bytes.length} and ${bytes.length} bytes)`;
      }
      return undefined;
    };
    if (taken.every((t) => t.bytes instanceof Uint8Array)) return compare(taken.map((t) => t.bytes as Uint8Array));
    return Promise.all(taken.map((t) => t.bytes)).then(compare, (error: unknown) => `state machine snapshot failed at the end of the run: ${describe(error)}`);
  }

  /**
   * An async snapshot read one chunk per event of the run, each later than the one before,
   * while the replica applies on: a snapshot that reads the live state instead of the state
   * at its call takes in commands past its index, and the replicas restored from it diverge.
   */
  private readOverTime(chunks: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    return {
      [Symbol.asyncIterator]: () => {
        const it = chunks[Symbol.asyncIterator]();
        return {
          next: () => this.run.later(() => it.next()),
          return: async (value?: unknown) => (await it.return?.(value)) ?? { done: true, value: undefined },
        };
      },
    };
  }

  /** The simulator's own machine: a digest of every command with its index. */
  private digestMachine(node: number): StateMachine {
    let digest = FNV_OFFSET;
    let count = 0;
    const bytes = (): Uint8Array => {
      const b = new Uint8Array(8);
      const view = new DataView(b.buffer);
      view.setUint32(0, digest);
      view.setUint32(4, count);
      return b;
    };
    return {
      apply: (command, index) => {
        let h = fnv(Math.imul(digest ^ (index >>> 0), FNV_PRIME) >>> 0, command);
        count++;
        if (this.nondeterministic && count % 7 === 0) h = Math.imul(h ^ node, FNV_PRIME) >>> 0;
        digest = h;
        return bytes();
      },
      query: () => bytes(),
      snapshot: () => bytes(),
      restore: (chunks) => {
        const b = [...chunks][0]!;
        const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
        digest = view.getUint32(0);
        count = view.getUint32(4);
      },
    };
  }
}
