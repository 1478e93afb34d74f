/**
 * Admin commands: what a client asks of a node's server process rather than of its key-value
 * store (an `admin` request of runtime/client-protocol.ts, a JSON object with an `op`). The
 * server answers them itself, through control calls to its node's thread; a refusal is an
 * error reply with its code. `ringraft status` and `ringraft move-leader` use them.
 *
 * | op                    | fields             | answer                                              |
 * | --------------------- | ------------------ | --------------------------------------------------- |
 * | `status`              |                    | `{ node: NodeStatus, server: NodeServerStats }`      |
 * | `transfer-leadership` | `target` (node id) | `{}` once the leader has been asked (it may refuse)  |
 * | `member-list`         |                    | `{ members: [{ id, peerAddress, role }] }` (role: voter, learner, or none: known, not in the configuration) |
 * | `member-add`          | `id`, `peerAddress` | `{ voters, learners }` once the node is a voter |
 * | `member-remove`       | `id`               | `{ voters, learners }` once the removal is applied   |
 *
 * Membership commands go to the leader (another node answers NOT_LEADER with the leader's id)
 * and run one at a time. `member-add` records the new node's address in every member's table
 * (members.ts), adds it as a learner, waits until it has caught up (it must be running, started
 * with `--join`), then makes it a voter; run it again after a TIMEOUT to carry on where it
 * stopped. `member-remove` removes it from the configuration, then from every table (its
 * connections are refused from then on); a removed leader hands leadership off by itself. It
 * is refused (NO_QUORUM) when the voters left would not have a majority this leader reaches.
 */
import { performance } from 'node:perf_hooks';
import { ErrorCode, invalidArgument, RingraftError } from '../base/index.ts';
import { confChangeInForce, type ConfChange } from '../core/index.ts';
import type { NodeStatus } from '../runtime/index.ts';
import { formatHostPort, isWildcardHost, parseHostPort, type HostPort } from './host-port.ts';
import type { MemberUpdate } from './members.ts';
import type { NodeServerStats } from './node-server.ts';

/** Time a membership command may take, the catch-up of a new node included. */
export const MEMBER_CHANGE_TIMEOUT_MS = 30_000;

/** What an admin command needs of its node's server. */
export interface AdminTarget {
  status(): Promise<NodeStatus>;
  stats(): NodeServerStats;
  transferLeadership(target: number): Promise<void>;
  proposeConfChange(change: ConfChange): Promise<number>;
  applyMembers(update: MemberUpdate): void;
  broadcastMembers(): void;
  memberAddresses(): ReadonlyMap<number, HostPort>;
  /** The peers this node reaches now: its dialled control connection to each is up. */
  reachablePeers(): readonly number[];
}

/** Membership commands, one at a time per process. */
let membershipQueue: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(change: () => Promise<T>): Promise<T> {
  const run = membershipQueue.then(change, change);
  membershipQueue = run.catch(() => undefined);
  return run;
}

export interface AdminStatus {
  readonly node: NodeStatus;
  readonly server: NodeServerStats;
}

/** Runs the admin command `body` against `target`; resolves to the answer's JSON. INVALID_ARGUMENT for a command it does not know. */
export async function runAdmin(target: AdminTarget, body: string): Promise<string> {
  let command: unknown;
  try {
    command = JSON.parse(body);
  } catch {
    throw invalidArgument('an admin command is a JSON object');
  }
  if (typeof command !== 'object' || command === null || Array.isArray(command)) throw invalidArgument('an admin command is a JSON object');
  const { op, ...fields } = command as { op?: unknown; [key: string]: unknown };
  switch (op) {
    case 'status': {
      onlyFields(fields, []);
      const answer: AdminStatus = { node: await target.status(), server: target.stats() };
      return JSON.stringify(answer);
    }
    case 'transfer-leadership': {
      onlyFields(fields, ['target']);
      const to = fields['target'];
      if (!(typeof to === 'number' && Number.isSafeInteger(to) && to >= 1)) throw invalidArgument(`transfer-leadership's target is a node id, got ${JSON.stringify(to)}`);
      await target.transferLeadership(to);
      return '{}';
    }
    case 'member-list': {
      onlyFields(fields, []);
      const st = await target.status();
      const ids = new Set([...target.memberAddresses().keys(), ...st.voters, ...st.learners]);
      const members = [...ids].sort((a, b) => a - b).map((id) => {
        const a = target.memberAddresses().get(id);
        return { id, peerAddress: a === undefined ? null : formatHostPort(a), role: st.voters.includes(id) ? 'voter' : st.learners.includes(id) ? 'learner' : 'none' };
      });
      return JSON.stringify({ members });
    }
    case 'member-add': {
      onlyFields(fields, ['id', 'peerAddress']);
      const id = nodeIdOf(fields['id']);
      if (typeof fields['peerAddress'] !== 'string') throw invalidArgument('member-add needs peerAddress, HOST:PORT');
      const address = parseHostPort(fields['peerAddress'], 'peerAddress');
      if (address.port === 0 || isWildcardHost(address.host)) throw invalidArgument(`peerAddress ${fields['peerAddress']} cannot be dialled`);
      return oneAtATime(() => addMember(target, id, address));
    }
    case 'member-remove': {
      onlyFields(fields, ['id']);
      const id = nodeIdOf(fields['id']);
      return oneAtATime(() => removeMember(target, id));
    }
    default:
      throw invalidArgument(`unknown admin op ${JSON.stringify(op)} (known: status, transfer-leadership, member-list, member-add, member-remove)`);
  }
}

function onlyFields(fields: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(fields)) if (!known.includes(key)) throw invalidArgument(`unknown field ${JSON.stringify(key)} in an admin command (known: op${known.map((k) => `, ${k}`).join('')})`);
}

async function addMember(target: AdminTarget, id: number, address: HostPort): Promise<string> {
  const deadline = performance.now() + MEMBER_CHANGE_TIMEOUT_MS;
  let st = await leaderStatus(target);
  if (st.voters.includes(id)) {
    target.applyMembers({ members: new Map([[id, address]]) });
    target.broadcastMembers();
    return JSON.stringify({ voters: st.voters, learners: st.learners });
  }
  for (const [other, a] of target.memberAddresses()) {
    if (other !== id && a.host === address.host && a.port === address.port) throw invalidArgument(`peerAddress ${formatHostPort(address)} is node ${other}'s`);
  }
  // Known everywhere before it is in the configuration: the leader can dial it, the others accept it.
  target.applyMembers({ members: new Map([[id, address]]) });
  target.broadcastMembers();
  if (!st.learners.includes(id)) await change(target, { changes: [{ op: 'addLearner', nodeId: id }] }, deadline);
  for (;;) {
    st = await leaderStatus(target);
    if ((st.matchIndex[id] ?? 0) >= st.commitIndex) break;
    if (performance.now() > deadline) {
      throw new RingraftError(ErrorCode.TIMEOUT, `node ${id} is a learner but has not caught up (match ${st.matchIndex[id] ?? 0} of ${st.commitIndex}): is it running, started with --join? Run member add again to carry on`);
    }
    await sleep(50);
  }
  await change(target, { changes: [{ op: 'addVoter', nodeId: id }] }, deadline);
  st = await target.status();
  return JSON.stringify({ voters: st.voters, learners: st.learners });
}

async function removeMember(target: AdminTarget, id: number): Promise<string> {
  const deadline = performance.now() + MEMBER_CHANGE_TIMEOUT_MS;
  const st = await leaderStatus(target);
  if (!st.voters.includes(id) && !st.learners.includes(id)) throw invalidArgument(`node ${id} is not a member (voters ${st.voters.join(', ')}; learners ${st.learners.join(', ') || 'none'})`);
  if (st.voters.includes(id) && st.voters.length === 1) throw invalidArgument(`node ${id} is the only voter`);
  // The voters left must have a live majority, or the cluster could never elect a leader again.
  const remaining = st.voters.filter((v) => v !== id);
  const reachable = new Set(target.reachablePeers());
  const live = remaining.filter((v) => v === st.id || reachable.has(v));
  const quorum = Math.floor(remaining.length / 2) + 1;
  if (st.voters.includes(id) && live.length < quorum) {
    throw new RingraftError(
      ErrorCode.NO_QUORUM,
      `removing node ${id} would leave voters ${remaining.join(', ')}, of which this leader reaches only ${live.join(', ')}, fewer than the ${quorum} a quorum needs: bring the others back first`,
    );
  }
  await change(target, { changes: [{ op: 'removeNode', nodeId: id }] }, deadline);
  target.applyMembers({ members: new Map(), removed: [id] });
  target.broadcastMembers();
  const after = await target.status();
  return JSON.stringify({ voters: after.voters, learners: after.learners });
}

/** This node's status if it leads; NOT_LEADER naming the leader it knows otherwise. */
async function leaderStatus(target: AdminTarget): Promise<NodeStatus> {
  const st = await target.status();
  if (st.role !== 'leader') throw new RingraftError(ErrorCode.NOT_LEADER, st.leaderId === 0 ? 'no leader known here' : `node ${st.leaderId} leads; ask it`);
  return st;
}

/**
 * Proposes `cc` (again while another change is pending) and waits until it is in force on
 * this node: applied, out of its joint step, and not lost to a new leader's log (then it is
 * proposed again).
 */
async function change(target: AdminTarget, cc: ConfChange, deadline: number): Promise<void> {
  for (;;) {
    let index: number;
    try {
      index = await target.proposeConfChange(cc);
    } catch (error) {
      if (!(error instanceof RingraftError) || error.code !== ErrorCode.CONF_CHANGE_PENDING || performance.now() > deadline) throw error;
      await sleep(20);
      continue;
    }
    for (;;) {
      const st = await target.status();
      if (st.appliedIndex >= index) {
        if (confChangeInForce(cc, st)) return;
        if (!st.joint) break;
      }
      if (performance.now() > deadline) throw new RingraftError(ErrorCode.TIMEOUT, `the membership change at index ${index} was not in force in time`);
      await sleep(20);
    }
  }
}

function nodeIdOf(value: unknown): number {
  if (!(typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 && value <= 0xffff_ffff)) throw invalidArgument(`a node id is an integer in [1, 2^32), got ${JSON.stringify(value)}`);
  return value;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
