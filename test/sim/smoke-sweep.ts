/** Shared body of the simulator smoke tests: runs a range of seeds and totals what happened. */
import { expect } from 'vitest';
import { FAULT_KINDS, defaultSimOptions, runSimulation, type FaultKind } from '../../src/sim/simulation.ts';

export function smokeSweep(nodes: number, start: number, count: number) {
  const failures: string[] = [];
  const faults = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  let crashes = 0;
  let snapshots = 0;
  let confChanges = 0;
  let elections = 0;
  let readsLease = 0;
  let answered = 0;
  let tornWrites = 0;
  let syncsDeferred = 0;
  let crashesWithSyncPending = 0;
  let corruptLogStops = 0;
  let diskWipes = 0;
  let stateLostStops = 0;
  let misconfiguredStarts = 0;
  let misconfiguredRefusals = 0;
  let walRuns = 0;
  for (let seed = start; seed < start + count; seed++) {
    const r = runSimulation(defaultSimOptions(seed, { nodes }));
    if (!r.ok) failures.push(`seed ${seed}: ${r.violation}`);
    for (const k of FAULT_KINDS) faults[k] += r.stats.faultsByKind[k];
    crashes += r.stats.crashes;
    snapshots += r.stats.snapshotsInstalled;
    confChanges += r.stats.confChangesApplied;
    elections += r.elections;
    readsLease += r.stats.readsLease;
    answered += r.operationsCompleted;
    tornWrites += r.stats.tornWrites;
    syncsDeferred += r.stats.syncsDeferred;
    crashesWithSyncPending += r.stats.crashesWithSyncPending;
    corruptLogStops += r.stats.corruptLogStops;
    diskWipes += r.stats.diskWipes;
    stateLostStops += r.stats.stateLostStops;
    misconfiguredStarts += r.stats.misconfiguredStarts;
    misconfiguredRefusals += r.stats.misconfiguredRefusals;
    if (defaultSimOptions(seed).storage === 'wal') walRuns++;
  }
  return {
    failures,
    runs: count,
    expectCoverage(): void {
      for (const k of FAULT_KINDS) expect(faults[k], `fault ${k} injected`).toBeGreaterThan(count / 4);
      expect(crashes).toBeGreaterThan(count / 2);
      expect(snapshots, 'followers installed snapshots').toBeGreaterThan(count / 10);
      // Each run bootstraps with one conf change entry per node; churn adds more.
      expect(confChanges, 'membership changes applied').toBeGreaterThan(count * nodes * 2);
      expect(elections, 'leaders elected').toBeGreaterThan(count * 2);
      expect(readsLease).toBeGreaterThan(count * 10);
      expect(answered).toBeGreaterThan(count * 100);
      // The real WAL ran on the simulated disk, which crashes tore and bit flips corrupted;
      // every corrupted log was detected on restart (the node stopped instead of serving).
      expect(walRuns, 'runs on the real WAL').toBeGreaterThan(count / 5);
      expect(tornWrites, 'torn writes').toBeGreaterThan(count / 10);
      expect(corruptLogStops, 'corrupted logs detected').toBeGreaterThan(0);
      // Some runs synced later, as a node with a sync thread does, and crashes found nodes
      // holding Readys whose writes had not synced.
      expect(syncsDeferred, 'syncs that landed later').toBeGreaterThan(count * 10);
      expect(crashesWithSyncPending, 'crashes with syncs pending').toBeGreaterThan(0);
      // Disks were wiped, and every node that lost its disk was refused on restart (every
      // crashed node restarts by the end), never one that did not; every start with a wrong
      // configuration was refused.
      expect(diskWipes, 'disks wiped').toBeGreaterThan(count / 20);
      expect(stateLostStops, 'nodes with a wiped disk refused on restart').toBe(diskWipes);
      expect(misconfiguredStarts, 'starts with a wrong configuration').toBeGreaterThan(count / 4);
      expect(misconfiguredRefusals, 'starts with a wrong configuration refused').toBe(misconfiguredStarts);
    },
  };
}
