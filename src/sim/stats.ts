/**
 * What a simulated run counts, to show it exercised what it was meant to: faults by kind,
 * crashes and what they did to disks, what the start guard refused, snapshots, membership
 * changes and reads. The simulator's parts update one `SimStats` as they go; the run returns it.
 */
import { FAULT_KINDS, type FaultKind } from './options.ts';

export interface SimStats {
  faultsByKind: Record<FaultKind, number>;
  crashes: number;
  tornWrites: number;
  /** Crash points armed at a node's next directory sync instead of its next fdatasync. */
  dirSyncCrashes: number;
  /** Syncs that landed at a later event (deferredSync runs). */
  syncsDeferred: number;
  /** Crashes of a node holding Readys whose writes had not synced yet (deferredSync runs). */
  crashesWithSyncPending: number;
  /** Nodes that found their log corrupt on restart and stayed down. */
  corruptLogStops: number;
  bitFlips: number;
  /** Crashes that also wiped the node's disk. */
  diskWipes: number;
  /** Nodes the start guard refused on restart with STATE_LOST (their disk was wiped): they stayed down. */
  stateLostStops: number;
  /** Starts of nodes with a configuration the cluster does not have (the 'misconfigure' fault). */
  misconfiguredStarts: number;
  /** Of those, the ones the start guard refused with CONFIG_MISMATCH. */
  misconfiguredRefusals: number;
  snapshotsInstalled: number;
  confChangesApplied: number;
  readsLease: number;
  readsSafe: number;
  /** Of the linearizable reads, those served by the node they reached (follower reads). */
  readsFollower: number;
  /** Puts, deletes and reads sent as Redis's SET, DEL and GET (runs with redisCommands). */
  redisCommands: number;
  /** Of those reads, the range reads. */
  rangeReads: number;
  /** Completed range reads the final check compared with the log replayed to their index. */
  rangeReadsChecked: number;
  /** Acknowledged transactions the final check compared with the log replayed to their index. */
  txnsChecked: number;
  /** Lease grants and keep-alives the cluster acknowledged. */
  leaseRenewals: number;
  /** Leases that expired (their expiry applied). */
  leasesExpired: number;
  /** Renewals of leases that expired, each checked to be a whole TTL before the expiry. */
  leaseRenewalsChecked: number;
}

/** The counts of a run that has not started. */
export function newSimStats(): SimStats {
  return {
    faultsByKind: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
    crashes: 0,
    tornWrites: 0,
    dirSyncCrashes: 0,
    syncsDeferred: 0,
    crashesWithSyncPending: 0,
    corruptLogStops: 0,
    bitFlips: 0,
    snapshotsInstalled: 0,
    confChangesApplied: 0,
    readsLease: 0,
    readsSafe: 0,
    readsFollower: 0,
    redisCommands: 0,
    rangeReads: 0,
    rangeReadsChecked: 0,
    txnsChecked: 0,
    leaseRenewals: 0,
    leasesExpired: 0,
    leaseRenewalsChecked: 0,
    diskWipes: 0,
    stateLostStops: 0,
    misconfiguredStarts: 0,
    misconfiguredRefusals: 0,
  };
}

/** The total of the faults injected, of every kind. */
export function faultCount(stats: SimStats): number {
  return Object.values(stats.faultsByKind).reduce((a, b) => a + b, 0);
}
