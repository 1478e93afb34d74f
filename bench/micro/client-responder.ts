/**
 * The node side of the client benchmark (client.bench.ts), in its own worker thread: it
 * answers every request on its ring at once, with no Raft and no state machine, so that
 * the client thread's CPU per call is the client's alone. Writes are answered "put done"
 * (a register-clients request with its block of ids), reads "present" with a 128-byte value.
 */
import { workerData } from 'node:worker_threads';
import { ByteWriter } from '../../src/codec/index.ts';
import { encodedReplyBytes, REQUEST_KIND, writeReplyTo, type ClientReply } from '../../src/runtime/index.ts';
import { Doorbell, RingConsumer, RingProducer } from '../../src/transport/index.ts';

export interface ResponderData {
  readonly requestRing: SharedArrayBuffer;
  readonly replyRing: SharedArrayBuffer;
  /** Rung by the client after it publishes requests. */
  readonly nodeDoorbell: SharedArrayBuffer;
  /** Rung by this thread after it publishes replies. */
  readonly clientDoorbell: SharedArrayBuffer;
  /** Set to 1 by the client to stop this thread. */
  readonly stop: SharedArrayBuffer;
}

/** The byte after the request header and the KvRequest's version: its op (see kv/commands.ts). */
const OP_REGISTER_CLIENTS = 4;
const VALUE_BYTES = 128;

const data = workerData as ResponderData;
const doorbell = new Doorbell(data.nodeDoorbell);
const requests = new RingConsumer(data.requestRing);
const replies = new RingProducer(data.replyRing, { doorbell: new Doorbell(data.clientDoorbell) });
const writer = new ByteWriter(replies.memory);
const view = new DataView(data.requestRing);
const stop = new Int32Array(data.stop);
let index = 0;
let clientIdNext = 1;

const value = new Uint8Array(VALUE_BYTES);

function reply(memory: Uint8Array, offset: number, length: number): void {
  const kind = memory[offset]!;
  const requestId = view.getUint32(offset + 1, true);
  index++;
  let answer: ClientReply;
  if (kind === REQUEST_KIND.write && length > 6 && memory[offset + 6] === OP_REGISTER_CLIENTS) {
    answer = { kind: 'write', requestId, index, result: { op: 'register-clients', clientIdFirst: clientIdNext } };
    clientIdNext += view.getUint32(offset + 7, true);
  } else if (kind === REQUEST_KIND.write) {
    answer = { kind: 'write', requestId, index, result: { op: 'put' } };
  } else {
    answer = { kind: 'read', requestId, index, value };
  }
  const bytes = encodedReplyBytes(answer);
  for (;;) {
    const r = replies.tryReserve(bytes);
    if (r !== undefined) {
      writer.window(r.offsetBytes, bytes);
      writeReplyTo(writer, answer);
      r.stage();
      return;
    }
    replies.publish();
    replies.waitForRoom(bytes, 1000);
  }
}

while (Atomics.load(stop, 0) === 0) {
  if (requests.drainRanges(reply) > 0) replies.publish();
  else doorbell.wait(50, () => requests.hasData() || Atomics.load(stop, 0) !== 0);
}
