/**
 * A client of a cluster from another thread: the thread that owns the cluster calls
 * `cluster.connectEndpoint()` and posts the descriptor here (everything in it is shared
 * memory or plain data); this side builds its own {@link ClientEndpoint} on those rings.
 * Load generators run here, on a pool of worker threads, so the main thread is not their
 * bottleneck.
 */

import { Doorbell } from '../transport/index.ts';
import { KvClient } from './client.ts';
import type { EndpointDescriptor } from './cluster.ts';
import { ClientEndpoint } from './endpoint.ts';

const LIVENESS_ALIVE = 1;

/** A cluster's endpoint on another thread, from {@link connectEndpoint}: clients on its rings. */
export interface RemoteEndpoint {
  /** A key-value client on this thread's rings. */
  client(): KvClient;
  /** Fails what is in flight with CLOSED and stops the endpoint's timers. */
  close(): void;
}

/**
 * On the thread that received `descriptor` (from {@link Cluster.connectEndpoint}): an endpoint
 * on its rings, to make clients with. It registers client ids of its own through the log.
 */
export function connectEndpoint(descriptor: EndpointDescriptor): RemoteEndpoint {
  const liveness = new Int32Array(descriptor.liveness);
  const nodeIds = descriptor.links.map((l) => l.nodeId);
  // Client ids are not taken from the descriptor: the endpoint registers its own through
  // the log, as the cluster's thread does (see SessionPool).
  const endpoint = new ClientEndpoint(
    {
      requestTimeoutMs: descriptor.requestTimeoutMs,
      electionTimeoutMs: descriptor.electionTimeoutMs,
      requestsInFlightMax: descriptor.requestsInFlightMax,
    },
    { nodeIds: () => nodeIds, isAlive: (id) => Atomics.load(liveness, id) === LIVENESS_ALIVE },
    new Doorbell(descriptor.doorbell),
  );
  for (const link of descriptor.links) endpoint.addLink(link);
  return {
    client: () => new KvClient(endpoint),
    close: () => endpoint.close(),
  };
}
