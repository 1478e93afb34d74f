/**
 * Memory for the encoded requests of a client's writes, reused from call to call. A write
 * is encoded once, when its call starts (so the caller may change its key and value buffers
 * at once), and its bytes stay until the call ends, for its retries; then its slot is free
 * for the next write. Allocating a buffer per write instead cost more of the client's CPU
 * than all the rest of a put (bench/micro/client.bench.ts: a `new Uint8Array` and the
 * garbage it makes were over 40% of the thread).
 *
 * Slots are SLOT_BYTES each, carved from slabs of SLOTS_PER_SLAB made as needed, up to
 * `slotsMax` slots in all: the pool holds at most slotsMax * SLOT_BYTES bytes. A request
 * larger than a slot, or one taken while every slot is in use, gets memory of its own,
 * which the garbage collector takes back once the call ends.
 *
 * A host copies a request's bytes when it sends them (or keeps a copy while it queues
 * them: see ClientEndpoint), so a slot given back may be written again at once.
 */

import { fail } from '../base/index.ts';
import { ByteWriter } from '../codec/index.ts';

export const REQUEST_SLOT_BYTES = 512;
const SLOTS_PER_SLAB = 256;
/**
 * Default bound of a pool: 65,536 slots, 32 MiB at most, made only as the writes in flight
 * need them (calls waiting for an in-flight slot hold theirs too). With 8,192 (4 MiB), a
 * client at 16,384 puts in flight gave each request past the pool an ArrayBuffer of its own:
 * 123k to 139k puts/s and 14.3 µs of CPU per put in all, against 168k and 10.9 with the
 * larger pool (bench/cluster/put-loop.ts --in-flight 16384).
 */
export const REQUEST_SLOTS_MAX = 65_536;

export class RequestBuffers {
  private readonly slabs: ArrayBuffer[] = [];
  /** One writer per slab, over all of it, windowed to each request written. */
  private readonly writers: ByteWriter[] = [];
  /** Which slab an ArrayBuffer is. */
  private readonly slabIndex = new Map<ArrayBufferLike, number>();
  /** Free slots, by number (slab * SLOTS_PER_SLAB + slot in the slab). */
  private readonly free: number[] = [];
  /** The view each slot was last handed out as: the next take of the slot at that size hands it out again. */
  private readonly views: (Uint8Array | undefined)[] = [];
  private inUse = 0;
  private writerValue: ByteWriter | undefined;

  constructor(readonly slotsMax: number = REQUEST_SLOTS_MAX) {
    if (!(Number.isSafeInteger(slotsMax) && slotsMax >= 0)) fail(`slotsMax ${slotsMax} is an integer >= 0`);
  }

  /** Slots handed out and not given back. */
  get slotsInUse(): number {
    return this.inUse;
  }

  /** Bytes of the slabs made so far (at most slotsMax * REQUEST_SLOT_BYTES, rounded up to a slab). */
  get slabBytes(): number {
    return this.slabs.length * SLOTS_PER_SLAB * REQUEST_SLOT_BYTES;
  }

  /**
   * Memory for a request of exactly `sizeBytes`: a slot when one fits and is free, else its
   * own; {@link writer} writes it. Nothing is made for a slot taken again at the size it was
   * last taken at (a client's puts are mostly of one size): its view is handed out again.
   */
  take(sizeBytes: number): Uint8Array {
    if (sizeBytes <= REQUEST_SLOT_BYTES) {
      const slot = this.free.pop() ?? this.newSlot();
      if (slot !== undefined) {
        this.inUse++;
        const slab = Math.floor(slot / SLOTS_PER_SLAB);
        const offset = (slot % SLOTS_PER_SLAB) * REQUEST_SLOT_BYTES;
        const writer = this.writers[slab]!;
        writer.window(offset, sizeBytes);
        this.writerValue = writer;
        let bytes = this.views[slot];
        if (bytes === undefined || bytes.length !== sizeBytes) {
          bytes = new Uint8Array(this.slabs[slab]!, offset, sizeBytes);
          this.views[slot] = bytes;
        }
        return bytes;
      }
    }
    const bytes = new Uint8Array(sizeBytes);
    this.writerValue = new ByteWriter(bytes);
    return bytes;
  }

  /** A writer over exactly the memory the last {@link take} returned, until the next {@link give}. */
  get writer(): ByteWriter {
    return this.writerValue ?? fail('no memory taken yet');
  }

  /** Gives back memory from {@link take} once nothing will read it again; memory of its own is left to the collector. */
  give(bytes: Uint8Array): void {
    // The writer is for the memory just taken: it must not keep memory of its own alive past its call.
    this.writerValue = undefined;
    const slab = this.slabIndex.get(bytes.buffer);
    if (slab === undefined) return;
    if (!(bytes.byteOffset % REQUEST_SLOT_BYTES === 0 && bytes.length <= REQUEST_SLOT_BYTES && this.inUse > 0)) fail('memory given back is a slot in use');
    this.inUse--;
    this.free.push(slab * SLOTS_PER_SLAB + bytes.byteOffset / REQUEST_SLOT_BYTES);
  }

  /** A slot of a new slab, or undefined when the pool is at its bound. */
  private newSlot(): number | undefined {
    const first = this.slabs.length * SLOTS_PER_SLAB;
    if (first >= this.slotsMax) return undefined;
    const slots = Math.min(SLOTS_PER_SLAB, this.slotsMax - first);
    const slab = new ArrayBuffer(SLOTS_PER_SLAB * REQUEST_SLOT_BYTES);
    this.slabIndex.set(slab, this.slabs.length);
    this.slabs.push(slab);
    this.writers.push(new ByteWriter(new Uint8Array(slab)));
    // Taken from the end: slot `first` first.
    for (let s = first + slots - 1; s > first; s--) this.free.push(s);
    return first;
  }
}
