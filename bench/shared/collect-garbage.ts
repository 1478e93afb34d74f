/**
 * A full collection of this thread's heap, run between scenarios so that one scenario's garbage
 * is not billed to the next one's loops.
 *
 * Why: the in-memory scenario ends with an open loop, which keeps tens of thousands of calls in
 * flight once it falls behind its schedule. Their objects were promoted, and left some 250 MB of
 * garbage in the client thread's old generation, with no full collection to take it until well
 * into the durable scenario. Meanwhile each scavenge took 1.5 to 1.9 ms instead of 0.7. The
 * durable scenario's loops then cost the client 1.5 to 1.9 µs per get against 1.0 when that
 * scenario ran alone, and the nodes' threads more too (they poll for a slower client):
 * 530k to 690k durable gets/s against 920k to 970k alone.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

export function collectGarbage(): void {
  if (gc === undefined) {
    // A context made after the flag is set has `gc`; this one keeps it for later calls.
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}
