// A replicated counter, the state machine of examples/replicated-counter.mjs, written in
// TypeScript: `npm run build` makes dist/examples/state-machines/counter.js, the module a
// cluster loads. A command is a big-endian i32 to add; apply and query answer the total.
// In a project of your own: import type { StateMachine } from 'ringraft';
import type { StateMachine } from '../../src/index.ts';

function i32(n: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setInt32(0, n);
  return bytes;
}

/** The factory: the module's default export, called once per node with the cluster's `stateMachine.options`. */
export default function counter(options: { readonly start?: number } = {}): StateMachine {
  let total = options.start ?? 0;
  return {
    apply(command) {
      if (command.length !== 4) throw new RangeError(`a command is 4 bytes, got ${command.length}`);
      total += new DataView(command.buffer, command.byteOffset, 4).getInt32(0);
      return i32(total);
    },
    query() {
      return i32(total);
    },
    snapshot() {
      return i32(total);
    },
    restore(chunks) {
      const bytes = Uint8Array.from([...chunks].flatMap((c) => [...c]));
      total = new DataView(bytes.buffer).getInt32(0);
    },
  };
}
