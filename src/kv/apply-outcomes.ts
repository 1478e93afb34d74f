/**
 * The outcomes of one batch entry's requests, written by `KvStateMachine.applyBatchInto` into
 * storage reused from batch to batch: a plain put that applied (nearly every request of a
 * write-heavy batch) is recorded as its session's two numbers, with no object made; any other
 * outcome is kept as the object the state machine made for it.
 *
 * Memory: two Float64Arrays and one array of references, each as long as the largest batch
 * seen (at most KV_BATCH_REQUESTS_MAX requests, 24 bytes each); `clear` drops the references.
 */
import { fail } from '../base/index.ts';
import type { KvApplyOutcome } from './state-machine.ts';
import type { KvResult, KvWriteResult } from './commands.ts';

/** The result of every put that applied: one shared frozen object (see the state machine's results). */
export const KV_RESULT_PUT: KvResult = Object.freeze({ op: 'put' });

export class KvApplyOutcomes {
  private countValue = 0;
  private clientIds = new Float64Array(64);
  private seqs = new Float64Array(64);
  /** Request i's outcome object; undefined for a put that applied (see isPutApplied). */
  private objects: (KvApplyOutcome | undefined)[] = [];
  /** Whether any slot below countValue holds an object (so `clear` has references to drop). */
  private holdsObjects = false;

  /** The result a put that applied answers with. */
  readonly putResult: KvWriteResult = KV_RESULT_PUT;

  /** How many requests the last batch held. */
  get count(): number {
    return this.countValue;
  }

  /** Forgets the last batch's outcomes (and the objects among them). */
  clear(): void {
    if (this.holdsObjects) {
      this.objects.fill(undefined, 0, this.countValue);
      this.holdsObjects = false;
    }
    this.countValue = 0;
  }

  /** Records that the next request is a put that applied now, for session `clientId` at `seq`. */
  addPutApplied(clientId: number, seq: number): void {
    const i = this.slot();
    this.clientIds[i] = clientId;
    this.seqs[i] = seq;
    this.objects[i] = undefined;
  }

  /** Records the next request's outcome. */
  add(outcome: KvApplyOutcome): void {
    const i = this.slot();
    this.objects[i] = outcome;
    this.holdsObjects = true;
  }

  /** Whether request `i` is a put that applied now: its answer is putResult, at its entry's index. */
  isPutApplied(i: number): boolean {
    return this.objects[i] === undefined;
  }

  /** Request `i`'s outcome as an object (made now for a put that applied). */
  outcome(i: number): KvApplyOutcome {
    if (!(i >= 0 && i < this.countValue)) fail(`outcome ${i} of ${this.countValue}`);
    return this.objects[i] ?? { clientId: this.clientIds[i]!, seq: this.seqs[i]!, result: KV_RESULT_PUT, status: 'applied' };
  }

  /** Every outcome as an object, in request order. */
  toArray(): KvApplyOutcome[] {
    const out: KvApplyOutcome[] = [];
    for (let i = 0; i < this.countValue; i++) out.push(this.outcome(i));
    return out;
  }

  /** The next slot, the columns grown (doubled) to hold it. */
  private slot(): number {
    const i = this.countValue++;
    if (i === this.clientIds.length) {
      const clientIds = new Float64Array(i * 2);
      clientIds.set(this.clientIds);
      this.clientIds = clientIds;
      const seqs = new Float64Array(i * 2);
      seqs.set(this.seqs);
      this.seqs = seqs;
    }
    return i;
  }
}
