/**
 * The shared memory of a cluster: every directed pair of nodes has a ring, every client
 * thread has a request ring and a reply ring to every node, every node thread (one or
 * several nodes) and every client thread has a doorbell its rings ring, and one Int32 word per node id tells the client
 * threads whether a node is alive. Nothing here runs: this module makes the buffers and
 * says which go to whom.
 *
 * ```
 *   node a ──ring "a>b"──> node b            peer rings: by "from>to", one each way
 *   node a <──ring "b>a"── node b            (writer rings the reader's doorbell)
 *
 *   client thread k ──requestRing──> node n  client links: one set per client thread,
 *   client thread k <──replyRing──── node n  index 0 is the cluster's own thread
 * ```
 *
 * A removed node's rings are dropped (so replacing nodes does not pile up memory) and its
 * liveness word goes back to absent.
 */
import { invalidArgument } from '../base/index.ts';
import { createRing, Doorbell } from '../transport/index.ts';
import type { ClientLinkData, PeerLink } from '../runtime/index.ts';
import type { ClientEndpoint, EndpointLink } from './endpoint.ts';

/** Node ids an endpoint in another thread can see (liveness words): ids are below this. */
export const LIVENESS_IDS_MAX = 1024;
const LIVENESS = { absent: 0, alive: 1, down: 2 } as const;

/** The rings between one client thread and every node. */
interface ClientLinkSet {
  readonly index: number;
  readonly doorbell: SharedArrayBuffer;
  /** By node id. */
  readonly rings: Map<number, { readonly requestRing: SharedArrayBuffer; readonly replyRing: SharedArrayBuffer }>;
}

export class RingWiring {
  /** Rings between nodes, by "from>to". */
  private readonly peerRings = new Map<string, SharedArrayBuffer>();
  /** Client threads' rings; index 0 is this thread's. */
  private readonly clientLinks: ClientLinkSet[] = [];
  /** The doorbell each node sleeps on (its thread's), by node id. */
  private readonly doorbells = new Map<number, SharedArrayBuffer>();
  /** Int32 per node id: 0 absent, 1 alive, 2 down. Read by every client thread. */
  private readonly liveness = new Int32Array(new SharedArrayBuffer(4 * LIVENESS_IDS_MAX));

  constructor(
    private readonly ringBytes: number,
    /** This thread's client side: it gets link set 0. */
    private readonly endpoint: ClientEndpoint,
  ) {
    this.clientLinks.push({ index: 0, doorbell: endpoint.doorbell.buffer, rings: new Map() });
  }

  /** The liveness words, to post to another thread. */
  get livenessBuffer(): SharedArrayBuffer {
    return this.liveness.buffer as SharedArrayBuffer;
  }

  /**
   * Makes a ring each way between node `id` and every node of `peers`, and its rings with
   * every client thread; this thread's endpoint gets its link. `doorbell` is the one its
   * thread sleeps on (shared by the nodes of one thread). The node starts down.
   */
  addNode(id: number, peers: readonly number[], doorbell: SharedArrayBuffer): void {
    if (id >= LIVENESS_IDS_MAX) throw invalidArgument(`node id ${id} is past ${LIVENESS_IDS_MAX - 1}`);
    this.doorbells.set(id, doorbell);
    for (const other of peers) {
      this.peerRings.set(`${other}>${id}`, createRing(this.ringBytes));
      this.peerRings.set(`${id}>${other}`, createRing(this.ringBytes));
    }
    this.setAlive(id, false);
    for (const set of this.clientLinks) this.makeClientRings(set, id);
    const main = this.clientLinks[0]!.rings.get(id)!;
    this.endpoint.addLink({ nodeId: id, requestRing: main.requestRing, replyRing: main.replyRing, nodeDoorbell: doorbell });
  }

  /** Drops every ring of a removed node, so replacing nodes does not pile up memory. */
  removeNode(id: number): void {
    for (const key of [...this.peerRings.keys()]) {
      if (key.split('>').includes(String(id))) this.peerRings.delete(key);
    }
    for (const set of this.clientLinks) set.rings.delete(id);
    this.doorbells.delete(id);
    this.endpoint.removeLink(id);
    Atomics.store(this.liveness, id, LIVENESS.absent);
  }

  setAlive(id: number, alive: boolean): void {
    Atomics.store(this.liveness, id, alive ? LIVENESS.alive : LIVENESS.down);
  }

  doorbellOf(id: number): SharedArrayBuffer {
    return this.doorbells.get(id)!;
  }

  /** The rings node `self` uses to talk with `peer`. */
  peerLink(self: number, peer: number): PeerLink {
    return {
      id: peer,
      inRing: this.peerRings.get(`${peer}>${self}`)!,
      outRing: this.peerRings.get(`${self}>${peer}`)!,
      peerDoorbell: this.doorbells.get(peer)!,
    };
  }

  /** Node `id`'s rings with every client thread, for its thread to start with. */
  clientLinksOf(id: number): ClientLinkData[] {
    return this.clientLinks.map((set) => clientLinkData(set, id));
  }

  /**
   * Makes rings between a new client thread and every node of `nodeIds`; returns the
   * thread's link index, its doorbell and its side of each link.
   */
  addClientThread(nodeIds: readonly number[]): { readonly index: number; readonly doorbell: SharedArrayBuffer; readonly links: EndpointLink[] } {
    const set: ClientLinkSet = { index: this.clientLinks.length, doorbell: Doorbell.create().buffer, rings: new Map() };
    this.clientLinks.push(set);
    for (const id of nodeIds) this.makeClientRings(set, id);
    const links = [...set.rings].map(([nodeId, r]) => ({ nodeId, requestRing: r.requestRing, replyRing: r.replyRing, nodeDoorbell: this.doorbells.get(nodeId)! }));
    return { index: set.index, doorbell: set.doorbell, links };
  }

  /** Node `nodeId`'s side of client thread `index`'s link, to hand to the running node. */
  clientLinkOf(index: number, nodeId: number): ClientLinkData {
    return clientLinkData(this.clientLinks[index]!, nodeId);
  }

  private makeClientRings(set: ClientLinkSet, nodeId: number): void {
    set.rings.set(nodeId, { requestRing: createRing(this.ringBytes), replyRing: createRing(this.ringBytes) });
  }
}

function clientLinkData(set: ClientLinkSet, nodeId: number): ClientLinkData {
  const r = set.rings.get(nodeId)!;
  return { index: set.index, requestRing: r.requestRing, replyRing: r.replyRing, clientDoorbell: set.doorbell };
}
