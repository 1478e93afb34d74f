/**
 * The simulator's own state machine beside the store (kv/app-machine.ts), for runs with
 * `appCommands`: its state is a digest of every command it applied with the command's index,
 * and at each index the first replica to apply it records its digest, which every other
 * replica must reach too. A replica whose machine diverges (a command applied twice or lost,
 * a snapshot restored wrong, a machine that is not deterministic) is a violation at once.
 *
 * The planted bug `app-nondeterministic` mixes the node's id into every seventh command's
 * digest, as a machine that read its clock or its host name would: the check must catch it.
 */
import type { StateMachine } from '../kv/index.ts';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

export class AppDigests {
  /** The digest the first replica reached at each index it applied a command at. */
  private readonly byIndex = new Map<number, number>();
  /** Commands applied, by all replicas. */
  applied = 0;

  constructor(
    private readonly onDiverge: (what: string) => void,
    private readonly nondeterministic: boolean,
  ) {}

  /** A machine for node `node` (a new one each time its store is made or restored). */
  machine(node: number): StateMachine {
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
        let h = Math.imul(digest ^ (index >>> 0), FNV_PRIME) >>> 0;
        for (const byte of command) h = Math.imul(h ^ byte, FNV_PRIME) >>> 0;
        count++;
        if (this.nondeterministic && count % 7 === 0) h = Math.imul(h ^ node, FNV_PRIME) >>> 0;
        digest = h;
        this.applied++;
        const first = this.byIndex.get(index);
        if (first === undefined) this.byIndex.set(index, digest);
        else if (first !== digest) this.onDiverge(`state machine divergence: node ${node} reached digest ${digest.toString(16)} at index ${index}, another replica ${first.toString(16)}`);
        return bytes();
      },
      query: () => bytes(),
      snapshot: () => bytes(),
      restore: (chunks) => {
        const all = [...chunks];
        const b = all.length === 1 ? all[0]! : Uint8Array.from(all.flatMap((c) => [...c]));
        if (b.length !== 8) throw new RangeError(`a digest snapshot is 8 bytes, got ${b.length}`);
        const view = new DataView(b.buffer, b.byteOffset, 8);
        digest = view.getUint32(0);
        count = view.getUint32(4);
      },
    };
  }
}
