// Driving the Raft core by hand, as a sans-I/O library is used: three RawNodes in one
// process, an in-memory "network" (a queue of messages), MemoryStorage for their logs, and a
// replicated counter as the state machine. The host loop below is all a host does: tick,
// deliver, and process each Ready in order (persist, send, apply, advance).
//
//   node examples/raw-node.mjs
import { RawNode, EntryType, encodeMessage, decodeMessage } from 'ringraft/core';
import { MemoryStorage } from 'ringraft/storage';

const ids = [1, 2, 3];
const nodes = new Map();
for (const id of ids) {
  const storage = new MemoryStorage();
  const node = new RawNode({ id, storage, seed: id, voters: ids, electionTimeoutTicks: 10, heartbeatIntervalTicks: 1 });
  nodes.set(id, { node, storage, counter: 0, applied: [], reads: new Map() });
}

/** Messages in flight, as bytes: what a real transport would carry. */
let wire = [];

/** Step 1 to 4 of every Ready a node has. */
function processReadys(n) {
  while (n.node.hasReady()) {
    const rd = n.node.ready();
    n.storage.persist(rd); // 1. persist (MemoryStorage; WalStorage would also sync here)
    for (const m of rd.messages) wire.push(encodeMessage(m)); // 2. send
    for (const e of rd.committedEntries) {
      // 3. apply: an empty entry (a new leader's) or a membership change carries no command.
      if (e.type !== EntryType.Normal || e.data.length === 0) continue;
      const amount = new DataView(e.data.buffer, e.data.byteOffset, e.data.byteLength).getInt32(0);
      n.counter += amount;
      n.applied.push(e.index);
    }
    for (const rs of rd.readStates) n.reads.set(rs.requestId, rs.index);
    n.node.advance(rd); // 4. advance
  }
}

/** Delivers everything on the wire (and what it causes) until it is quiet. */
function deliverAll() {
  for (let rounds = 0; wire.length > 0; rounds++) {
    if (rounds > 1000) throw new Error('the network does not settle');
    const batch = wire;
    wire = [];
    for (const bytes of batch) {
      const m = decodeMessage(bytes);
      const to = nodes.get(m.to);
      to.node.step(m);
      processReadys(to);
    }
  }
}

function leader() {
  return ids.map((id) => nodes.get(id)).find((n) => n.node.status().role === 'leader');
}

// Time passes until someone wins an election.
for (let t = 0; t < 100 && leader() === undefined; t++) {
  for (const n of nodes.values()) {
    n.node.tick();
    processReadys(n);
  }
  deliverAll();
}
const l = leader();
if (l === undefined) throw new Error('no leader after 100 ticks');
console.log(`leader: node ${l.node.id} in term ${l.node.status().term}`);

// Ten increments, proposed on the leader, committed and applied everywhere.
for (let i = 1; i <= 10; i++) {
  const command = new Uint8Array(4);
  new DataView(command.buffer).setInt32(0, i);
  l.node.propose(command);
  processReadys(l);
  deliverAll();
}
// A heartbeat round tells the followers the last commit index.
for (const n of nodes.values()) {
  n.node.tick();
  processReadys(n);
}
deliverAll();

// A linearizable read: the leader confirms it still leads, then says which index to read at.
l.node.readIndex(7);
processReadys(l);
deliverAll();
const readAt = l.reads.get(7);
console.log(`read index ${readAt}: counter ${l.counter}`);

for (const id of ids) {
  const n = nodes.get(id);
  console.log(`node ${id}: counter ${n.counter}, applied ${n.applied.length} commands, commit ${n.node.status().commitIndex}`);
}
const counters = ids.map((id) => nodes.get(id).counter);
if (!counters.every((c) => c === 55)) throw new Error(`the replicas disagree: ${counters.join(', ')}`);
console.log('every replica counted to 55');
