/**
 * The in-memory log of a node without a data directory: {@link MemoryStorage} with the
 * host's persist step. Nothing survives the process, so such a node cannot restart.
 */

import { MemoryStorage, type PersistBatch } from '../storage/index.ts';
import type { HostStorage } from './node-host.ts';

export class MemoryHostStorage extends MemoryStorage implements HostStorage {
  persist(batch: PersistBatch): void {
    if (batch.snapshot !== undefined) this.applySnapshot(batch.snapshot);
    if (batch.entries !== undefined && batch.entries.length > 0) this.append(batch.entries);
    if (batch.hardState !== undefined) this.setHardState(batch.hardState);
  }
}
