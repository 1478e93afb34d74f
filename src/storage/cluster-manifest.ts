/**
 * The cluster's own record in its data directory, `CLUSTER`: which cluster this is, which
 * nodes are its members, which of them have run (and so must have state), and which node ids
 * were ever handed out (an id is never given twice, so a removed or replaced node's directory
 * can never be mistaken for a new member's).
 *
 * Raft's configuration in the logs decides who votes; this record decides only what the
 * embedding API (and the simulator, as the cluster's operator) starts and how it checks each node directory before a node starts. It is a
 * checked record (one JSON line and its CRC-32, see node-identity.ts), rewritten
 * atomically after each change:
 *
 * ```
 * {"format":1,"clusterId":"<hex>","nodeIdNext":4,"bootstrapVoters":[1,2,3],
 *  "members":[{"id":1,"hasRun":true},{"id":2,"hasRun":true},{"id":3,"hasRun":false}]}
 * crc32 <8 hex digits>
 * ```
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ErrorCode, RingraftError } from '../base/index.ts';
import type { FileSystem } from './fs.ts';
import { readCheckedRecord, writeCheckedRecord, type NodeExpectation } from './node-identity.ts';

export const MANIFEST_FILE = 'CLUSTER';
const MANIFEST_FORMAT = 1;

export interface ManifestMember {
  readonly id: number;
  /** Its first start completed: from now on its directory must hold its log. */
  hasRun: boolean;
}

export interface ClusterManifest {
  readonly clusterId: string;
  /** The next node id to hand out; ids below it are taken for good. */
  nodeIdNext: number;
  /** The voters the cluster was created with: a member among them that has not run yet bootstraps with them. */
  readonly bootstrapVoters: readonly number[];
  /** Current members, by ascending id. */
  members: ManifestMember[];
}

/** A new cluster of nodes 1..count. */
export function newManifest(count: number): ClusterManifest {
  const ids = Array.from({ length: count }, (_, i) => i + 1);
  return { clusterId: randomBytes(16).toString('hex'), nodeIdNext: count + 1, bootstrapVoters: ids, members: ids.map((id) => ({ id, hasRun: false })) };
}

export function readManifest(fs: FileSystem, dir: string): ClusterManifest | undefined {
  const path = join(dir, MANIFEST_FILE);
  const record = readCheckedRecord(fs, path) as Partial<{ format: unknown; clusterId: unknown; nodeIdNext: unknown; bootstrapVoters: unknown; members: unknown }> | undefined;
  if (record === undefined) return undefined;
  if (record.format !== MANIFEST_FORMAT) throw new RingraftError(ErrorCode.UNSUPPORTED_FORMAT, `${path}: format ${String(record.format)}; this build reads ${MANIFEST_FORMAT}`);
  const { clusterId, nodeIdNext, bootstrapVoters, members } = record;
  const ok =
    typeof clusterId === 'string' &&
    isNodeId(nodeIdNext) &&
    Array.isArray(bootstrapVoters) &&
    bootstrapVoters.every(isNodeId) &&
    Array.isArray(members) &&
    members.every((m: unknown) => typeof m === 'object' && m !== null && isNodeId((m as ManifestMember).id) && typeof (m as ManifestMember).hasRun === 'boolean');
  if (!ok) throw new RingraftError(ErrorCode.CORRUPT_LOG, `${path} is damaged: fields missing or of the wrong type`);
  return {
    clusterId,
    nodeIdNext,
    bootstrapVoters: bootstrapVoters as number[],
    members: (members as ManifestMember[]).map((m) => ({ id: m.id, hasRun: m.hasRun })),
  };
}

export function writeManifest(fs: FileSystem, dir: string, m: ClusterManifest): void {
  writeCheckedRecord(fs, dir, MANIFEST_FILE, {
    format: MANIFEST_FORMAT,
    clusterId: m.clusterId,
    nodeIdNext: m.nodeIdNext,
    bootstrapVoters: m.bootstrapVoters,
    members: [...m.members].sort((a, b) => a.id - b.id),
  });
}

/** What the node directory of member `id` must hold (see checkNodeDirectory). */
export function expectationOf(m: ClusterManifest, id: number): NodeExpectation {
  const member = m.members.find((x) => x.id === id);
  return { clusterId: m.clusterId, nodeId: id, hasRun: member?.hasRun ?? false };
}

/**
 * The voters node `id` starts with: the cluster's first configuration for an original
 * member, none for a node added later (it learns its configuration from the leader). The
 * node uses them only if its log is pristine (RaftNode bootstraps empty storage only): an
 * original member whose first batch never became durable (killed at once) bootstraps again
 * with the very same first entry, and one with a log ignores them.
 */
export function bootstrapVotersOf(m: ClusterManifest, id: number): readonly number[] {
  const member = m.members.find((x) => x.id === id);
  return member !== undefined && m.bootstrapVoters.includes(id) ? m.bootstrapVoters : [];
}

function isNodeId(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 1;
}
