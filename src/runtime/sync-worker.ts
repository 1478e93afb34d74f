/** The entry of a sync thread (sync-thread.ts): it runs until its WAL closes. */
import { workerData } from 'node:worker_threads';
import { realFileSystem } from '../storage/index.ts';
import { Doorbell } from '../transport/index.ts';
import { reportSyncFailure, runSyncThread, type SyncThreadData } from './sync-thread.ts';

const data = workerData as SyncThreadData;
const doorbell = new Doorbell(data.doorbell);
try {
  runSyncThread(data, realFileSystem, () => doorbell.ring());
} catch {
  // Whatever stops the loop is a sync that will not happen: the node must hear of it through
  // the words, since its thread may never turn the event loop where the worker's error lands.
  reportSyncFailure(new Int32Array(data.words), 'OTHER', () => doorbell.ring());
}
