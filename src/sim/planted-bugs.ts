/**
 * Classic Raft bugs, each planted into an otherwise correct node through the seams
 * RaftNode exposes for this purpose (or into the host loop, or into the operator's start
 * checks), so that tests (and `ringraft sim --plant NAME`) can show that the simulator's
 * checks catch them. None of this is used outside those checks.
 */
import {
  decodeConfChange,
  MessageType,
  RaftNode,
  jointCommitted,
  type Entry,
  type Message,
  type RaftConfig,
} from '../core/index.ts';
import { DEFAULT_NETWORK } from './network.ts';
import type { SimOverrides } from './options.ts';

export const PLANTED_BUGS = [
  'vote-ignores-log',
  'commit-old-term',
  'no-truncate',
  'read-without-quorum',
  'hardstate-not-persisted',
  'stale-term-append',
  'lease-ignores-expiry',
  'serve-damaged-log',
  'torn-write-refused',
  'host-sends-before-persist',
  'host-sends-before-sync',
  'wiped-node-rejoins',
  'wrong-bootstrap-config',
  'range-reads-stale',
  'txn-split',
  'lease-no-fresh-ttl',
  'follower-read-unapplied',
  'app-nondeterministic',
  'write-answered-twice',
  'learner-add-ignored',
] as const;
export type PlantedBug = (typeof PLANTED_BUGS)[number];

/** Grants votes without the §5.4.1 up-to-date check. */
class VoteIgnoresLog extends RaftNode {
  protected override voteUpToDate(): boolean {
    return true;
  }
}

/** Commits entries of earlier terms by counting replicas (the Figure 8 bug). */
class CommitOldTerm extends RaftNode {
  protected override maybeCommit(): boolean {
    const index = jointCommitted(this.conf.voters, this.conf.votersOutgoing, (id) => this.progress.get(id)?.match);
    if (index <= this.log.committed || index > this.log.lastIndex()) return false;
    this.log.commitTo(index);
    this.afterCommit();
    return true;
  }
}

/** Appends only entries beyond its last index and keeps a conflicting suffix. */
class NoTruncate extends RaftNode {
  protected override followerAppend(m: Message): number | undefined {
    if (!this.log.matchTerm(m.index, m.logTerm)) return undefined;
    const last = this.log.lastIndex();
    const fresh = m.entries.filter((e) => e.index > last);
    if (fresh.length > 0) this.log.append(fresh);
    const lastNew = m.index + m.entries.length;
    this.log.commitTo(Math.min(m.commit, lastNew, this.log.lastIndex()));
    return lastNew;
  }
}

/** Answers ReadIndex at once, without confirming it is still the leader. */
class ReadWithoutQuorum extends RaftNode {
  protected override confirmRead(requestId: number, from?: number): void {
    this.releaseRead(requestId, this.log.committed, from);
  }
}

/** Processes AppendEntries from a leader of an older term. */
class StaleTermAppend extends RaftNode {
  protected override acceptsStaleTerm(m: Message): boolean {
    return m.type === MessageType.App;
  }
}

/** Serves lease reads for as long as it believes it leads, ignoring when the lease ran out. */
class LeaseIgnoresExpiry extends RaftNode {
  protected override leaseValid(): boolean {
    return this.role === 'leader';
  }
}

/** A node of even id applies no conf change that adds a learner (its configuration drifts from the others'). */
class LearnerAddIgnored extends RaftNode {
  protected override applyConfChange(e: Entry): void {
    if (this.id % 2 === 0 && decodeConfChange(e.data).changes.some((c) => c.op === 'addLearner')) return;
    super.applyConfChange(e);
  }
}

const NODE_CLASSES: Partial<Record<PlantedBug, new (config: RaftConfig) => RaftNode>> = {
  'vote-ignores-log': VoteIgnoresLog,
  'commit-old-term': CommitOldTerm,
  'no-truncate': NoTruncate,
  'read-without-quorum': ReadWithoutQuorum,
  'stale-term-append': StaleTermAppend,
  'lease-ignores-expiry': LeaseIgnoresExpiry,
  'learner-add-ignored': LearnerAddIgnored,
};

/**
 * For bugs that let a vote or an acknowledgement out before it is durable: crashes at the
 * points around votes and appends, and frequent faults, since the window is a crash right
 * after such a message and before the write it depends on.
 */
const DURABILITY_HUNT: SimOverrides = {
  nodes: 3,
  raft: { checkQuorum: false, preVote: false },
  crashPointProbability: 0.3,
  faultMeanIntervalMs: 100,
  faults: ['crash', 'isolate', 'partition'],
};

/**
 * For each bug, the run profile under which it can show, as swarm testing does: a lease bug
 * needs check-quorum on and fast-failing clients, the Figure 8 bug needs entries to travel one
 * at a time and crashes at the moments around elections and commits. These override the
 * per-seed profile; everything else still varies with the seed.
 */
export const HUNTING_PROFILES: Record<PlantedBug, SimOverrides> = {
  'vote-ignores-log': {},
  // The bug is the core's, whatever the host's sync mode; with syncs landing later the first
  // seed to catch it (61) shows it as a history the linearizability search gives up on rather
  // than as the state machine safety violation this profile is meant to show.
  'commit-old-term': {
    nodes: 3,
    deferredSync: false,
    raft: { appendBytesMax: 1, inflightMessagesMax: 1, checkQuorum: false, preVote: false },
    crashPointProbability: 0.3,
    faults: ['crash', 'isolate'],
  },
  'no-truncate': {},
  'read-without-quorum': { clientTimeoutMs: 60, keys: 1, clients: 8, faults: ['isolate', 'partition', 'asymmetric'] },
  'hardstate-not-persisted': DURABILITY_HUNT,
  'stale-term-append': { raft: { checkQuorum: false }, faults: ['isolate', 'partition'] },
  'lease-ignores-expiry': {
    raft: { checkQuorum: true },
    clientTimeoutMs: 60,
    keys: 1,
    clients: 8,
    faults: ['transfer', 'asymmetric', 'isolate'],
    network: { ...DEFAULT_NETWORK, longDelayProbability: 0.05, longDelayMaxMs: 400 },
  },
  'host-sends-before-persist': DURABILITY_HUNT,
  'host-sends-before-sync': { ...DURABILITY_HUNT, storage: 'wal', deferredSync: true },
  'serve-damaged-log': {
    storage: 'wal',
    bitFlipProbability: 1,
    crashPointProbability: 0.05,
    faults: ['crash', 'partition', 'isolate'],
  },
  // Crashes in the middle of writes, and no fault of the media: no log may be found corrupt.
  'torn-write-refused': {
    storage: 'wal',
    bitFlipProbability: 0,
    crashPointProbability: 0.05,
    faults: ['crash', 'partition'],
  },
  // A wiped node's one chance to do harm: a vote for a stale candidate (or a second vote in
  // a term it already voted in) before it has caught up. Crashes at the vote and commit
  // points, and cuts that leave a follower behind, make that candidate.
  'wiped-node-rejoins': {
    ...DURABILITY_HUNT,
    diskWipeProbability: 1,
  },
  'wrong-bootstrap-config': {
    diskWipeProbability: 0,
    faults: ['misconfigure', 'crash', 'partition'],
  },
  // Clients that give up on a node quickly land on followers, which a partition holds behind.
  'range-reads-stale': { clientTimeoutMs: 60, clients: 8, keys: 3, faults: ['isolate', 'partition', 'asymmetric'] },
  // Many clients over few keys: reads land between a transaction's entry and the next.
  'txn-split': { clients: 8, keys: 3 },
  // Leader changes while holders keep their leases alive.
  'lease-no-fresh-ttl': { leaseHolders: 6, faults: ['transfer', 'isolate', 'pause'] },
  // Many readers over few keys; lost appends leave a follower's commit index behind its leader's.
  'follower-read-unapplied': { clients: 8, keys: 3, faults: ['drop', 'partition', 'asymmetric'] },
  // Many commands for the cluster's own state machine.
  'app-nondeterministic': { appCommands: 0.5 },
  // Any run with writes shows it.
  'write-answered-twice': {},
  // Membership changes, and nothing that hides them.
  'learner-add-ignored': { faults: ['membership'] },
};

/** The simulator options that plant `bug`, with the profile under which it shows. */
export function plantBug(bug: PlantedBug): SimOverrides {
  const profile = HUNTING_PROFILES[bug];
  if (bug === 'hardstate-not-persisted') return { ...profile, hostBugs: { persistHardStateLate: true } };
  if (bug === 'serve-damaged-log') return { ...profile, hostBugs: { truncateCorruptLog: true } };
  if (bug === 'torn-write-refused') return { ...profile, hostBugs: { refuseTornTail: true } };
  if (bug === 'host-sends-before-persist') return { ...profile, hostBugs: { sendBeforePersist: true } };
  if (bug === 'host-sends-before-sync') return { ...profile, hostBugs: { sendBeforeSync: true } };
  if (bug === 'range-reads-stale') return { ...profile, hostBugs: { rangeReadsLocal: true } };
  if (bug === 'txn-split') return { ...profile, hostBugs: { splitTxn: true } };
  if (bug === 'lease-no-fresh-ttl') return { ...profile, hostBugs: { leaseNoFreshTtl: true } };
  if (bug === 'follower-read-unapplied') return { ...profile, hostBugs: { followerReadsUnapplied: true } };
  if (bug === 'write-answered-twice') return { ...profile, hostBugs: { answerWritesTwice: true } };
  if (bug === 'app-nondeterministic') return { ...profile, hostBugs: { appNondeterministic: true } };
  if (bug === 'wiped-node-rejoins') return { ...profile, operatorBugs: { skipDirectoryCheck: true } };
  if (bug === 'wrong-bootstrap-config') return { ...profile, operatorBugs: { skipConfigurationCheck: true } };
  const Cls = NODE_CLASSES[bug]!;
  return { ...profile, createNode: (config: RaftConfig) => new Cls(config) };
}
