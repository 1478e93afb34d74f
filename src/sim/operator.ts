/**
 * The simulator as the operator of its cluster. Whoever starts Raft nodes must know two
 * things the logs cannot tell: which nodes have run (an empty log is "new" or "lost", and
 * only the starter knows which), and which configuration a brand-new node may bootstrap
 * (a node that bootstraps voters of its own makes two clusters in one). The embedding API
 * keeps both in the cluster's record, `CLUSTER` (src/storage/cluster-manifest.ts); the simulator keeps
 * the same record in memory and checks every start of a node against it with the same shared
 * functions, in this order:
 *
 * 1. Membership: a node the record does not list is refused with CONFIG_MISMATCH. Starting
 *    one is the mistake of reopening a 3-node cluster with `nodes: 5`.
 * 2. Bootstrap voters: the voters a node is started with must be the record's
 *    (bootstrapVotersOf): the cluster's first configuration for an original member (used
 *    only while its log is pristine), none for a node added later. Else CONFIG_MISMATCH.
 * 3. The disk. In 'wal' mode, checkNodeDirectory: the identity file must be the node's own,
 *    and a node that has run must find its log (else STATE_LOST); a new node's identity is
 *    written. In 'memory' mode there is no directory and so no identity, only the log: the
 *    same STATE_LOST rule holds for the node's in-memory log.
 *
 * Checks 1 and 2 come first because they touch nothing: a refused node leaves no identity
 * file behind. A refused node does not start.
 */
import { ErrorCode, fail, RingraftError } from '../base/index.ts';
import { bootstrapVotersOf, checkNodeDirectory, expectationOf, type ClusterManifest, type FileSystem } from '../storage/index.ts';

/**
 * A node's disk as the start guard sees it. 'memory': `hasLog` says whether the node's
 * in-memory log exists (it is made at the node's first start, like the WAL's first segment,
 * and gone after a wipe).
 */
export type SimDisk = { readonly kind: 'wal'; readonly fs: FileSystem; readonly dir: string } | { readonly kind: 'memory'; readonly hasLog: boolean };

/** Which checks the guard runs: all of them, except where a planted bug skips one. */
export interface StartChecks {
  /** Checks 1 and 2: membership and bootstrap voters. */
  readonly configuration: boolean;
  /** Check 3: the node's disk. */
  readonly directory: boolean;
}

/** The record of a new cluster of nodes 1..nodes; its id is drawn from the seed, so a run replays. */
export function newSimRecord(seed: number, nodes: number): ClusterManifest {
  if (!(Number.isSafeInteger(nodes) && nodes >= 1)) fail(`cluster of ${nodes} nodes`);
  const ids = Array.from({ length: nodes }, (_, i) => i + 1);
  return {
    clusterId: `sim${(seed >>> 0).toString(16).padStart(8, '0')}`,
    nodeIdNext: nodes + 1,
    bootstrapVoters: ids,
    members: ids.map((id) => ({ id, hasRun: false })),
  };
}

/** Records a new member (not yet run), as the embedding API's addNode does before starting it. */
export function addSimMember(record: ClusterManifest, id: number): void {
  if (id < record.nodeIdNext) fail(`node id ${id} was handed out before (next is ${record.nodeIdNext})`);
  record.members.push({ id, hasRun: false });
  record.nodeIdNext = id + 1;
}

/** Notes that member `id` has started: from now on its disk must hold its log. */
export function noteSimStarted(record: ClusterManifest, id: number): void {
  const member = record.members.find((m) => m.id === id);
  if (member !== undefined) member.hasRun = true;
}

/**
 * Checks that node `id` may start with bootstrap voters `voters` from `disk` (see the
 * module comment), and in 'wal' mode writes a new node's identity. Throws RingraftError
 * CONFIG_MISMATCH or STATE_LOST (or CORRUPT_LOG for a damaged identity file) if it may not.
 */
export function checkSimStart(record: ClusterManifest, id: number, voters: readonly number[], disk: SimDisk, checks: StartChecks): void {
  if (checks.configuration) {
    if (!record.members.some((m) => m.id === id)) {
      throw new RingraftError(
        ErrorCode.CONFIG_MISMATCH,
        `node ${id} is not a member of cluster ${record.clusterId} (members ${record.members.map((m) => m.id).join(', ')}): ` +
          'started, it would bootstrap a configuration of its own',
      );
    }
    const expected = bootstrapVotersOf(record, id);
    if (!sameIds(voters, expected)) {
      throw new RingraftError(
        ErrorCode.CONFIG_MISMATCH,
        `node ${id} was given bootstrap voters [${voters.join(', ')}], but the cluster's record says [${expected.join(', ')}]`,
      );
    }
  }
  if (!checks.directory) return;
  const expectation = expectationOf(record, id);
  if (disk.kind === 'wal') {
    checkNodeDirectory(disk.fs, disk.dir, expectation);
    return;
  }
  if (expectation.hasRun && !disk.hasLog) {
    throw new RingraftError(ErrorCode.STATE_LOST, `node ${id} has run before but its in-memory log is gone: it must not vote under its old identity`);
  }
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  const x = [...a].sort((p, q) => p - q);
  const y = [...b].sort((p, q) => p - q);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}
