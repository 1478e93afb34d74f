/** The entry of a sync thread (sync-thread.ts): it runs until its WAL closes. */
import { fdatasyncSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import { Doorbell } from '../transport/index.ts';
import { runSyncThread, type SyncThreadData } from './sync-thread.ts';

const data = workerData as SyncThreadData;
const doorbell = new Doorbell(data.doorbell);
runSyncThread(data, fdatasyncSync, () => doorbell.ring());
