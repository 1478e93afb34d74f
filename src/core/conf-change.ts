/**
 * Membership configurations: building the next configuration from a change, validating
 * it, and the binary form a ConfChange takes inside a log entry.
 *
 * Byte layout (little-endian): u8 version (1), u16 count, then count × (u8 op, u32 nodeId).
 * op: 1 addVoter, 2 removeNode, 3 addLearner.
 */
import { ErrorCode, invalidArgument, RingraftError } from '../base/index.ts';
import type { ConfChange, ConfChangeItem, ConfChangeOp, ConfState, NodeId } from './types.ts';

const VERSION = 1;
const CHANGES_MAX = 64;
const OP_CODES: Record<ConfChangeOp, number> = { addVoter: 1, removeNode: 2, addLearner: 3 };
const OPS_BY_CODE: readonly (ConfChangeOp | undefined)[] = [undefined, 'addVoter', 'removeNode', 'addLearner'];

/** The bytes of `cc` as a ConfChange entry's `data` holds them; INVALID_ARGUMENT for more than 64 changes. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  if (cc.changes.length > CHANGES_MAX) throw invalidArgument(`a conf change holds at most ${CHANGES_MAX} changes`);
  // What would not decode back as it was (an unknown op, an id past u32) is refused here.
  for (const c of cc.changes) {
    if (!Object.hasOwn(OP_CODES, c.op)) throw invalidArgument(`unknown conf change op ${String(c.op)}`);
    if (!(Number.isInteger(c.nodeId) && c.nodeId >= 1 && c.nodeId <= 0xffff_ffff)) throw invalidArgument(`conf change node id ${String(c.nodeId)} is not an integer in [1, 2^32 - 1]`);
  }
  const out = new Uint8Array(3 + cc.changes.length * 5);
  const view = new DataView(out.buffer);
  out[0] = VERSION;
  view.setUint16(1, cc.changes.length, true);
  cc.changes.forEach((c, i) => {
    out[3 + i * 5] = OP_CODES[c.op];
    view.setUint32(4 + i * 5, c.nodeId, true);
  });
  return out;
}

/** The change a ConfChange entry's `data` holds; INVALID_ARGUMENT for bytes that are not one. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.length < 3 || data[0] !== VERSION) throw new RingraftError(ErrorCode.INVALID_ARGUMENT, 'malformed conf change entry');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = view.getUint16(1, true);
  if (count > CHANGES_MAX || data.length !== 3 + count * 5) throw new RingraftError(ErrorCode.INVALID_ARGUMENT, 'malformed conf change entry');
  const changes: ConfChangeItem[] = [];
  for (let i = 0; i < count; i++) {
    const op = OPS_BY_CODE[data[3 + i * 5]!];
    if (op === undefined) throw new RingraftError(ErrorCode.INVALID_ARGUMENT, 'malformed conf change entry');
    changes.push({ op, nodeId: view.getUint32(4 + i * 5, true) });
  }
  return { changes };
}

export function isJoint(conf: ConfState): boolean {
  return conf.votersOutgoing.length > 0;
}

export function isVoter(conf: ConfState, id: NodeId): boolean {
  return conf.voters.includes(id) || conf.votersOutgoing.includes(id);
}

/** Every node that receives the log: voters of both halves and learners. */
export function allMembers(conf: ConfState): NodeId[] {
  const ids = new Set<NodeId>([...conf.voters, ...conf.votersOutgoing, ...conf.learners, ...conf.learnersNext]);
  return [...ids].sort((a, b) => a - b);
}

/** Whether a change alters the voters (then it needs a joint configuration). */
export function changesVoters(conf: ConfState, cc: ConfChange): boolean {
  return cc.changes.some((c) => c.op === 'addVoter' ? !conf.voters.includes(c.nodeId) : conf.voters.includes(c.nodeId));
}

/**
 * The configuration after applying `cc` to `conf`. An empty change leaves a joint
 * configuration. Throws INVALID_ARGUMENT for a change that cannot apply.
 */
export function nextConf(conf: ConfState, cc: ConfChange): ConfState {
  if (cc.changes.length === 0) {
    if (!isJoint(conf)) throw invalidArgument('not in a joint configuration: nothing to leave');
    const learners = sortedUnique([...conf.learners, ...conf.learnersNext]);
    return { voters: conf.voters, votersOutgoing: [], learners, learnersNext: [], autoLeave: false };
  }
  if (isJoint(conf)) throw new RingraftError(ErrorCode.CONF_CHANGE_PENDING, 'leave the joint configuration before the next change');
  // From an empty configuration (bootstrap) there is no old majority to keep: no joint step.
  const joint = changesVoters(conf, cc) && conf.voters.length > 0;
  const voters = new Set(conf.voters);
  const learners = new Set(conf.learners);
  const learnersNext = new Set<NodeId>();
  for (const c of cc.changes) {
    if (!Number.isInteger(c.nodeId) || c.nodeId < 1 || c.nodeId > 0xffffffff) throw invalidArgument(`bad node id ${c.nodeId}`);
    // Changes apply in order: the last one naming a node decides its role.
    switch (c.op) {
      case 'addVoter':
        voters.add(c.nodeId);
        learners.delete(c.nodeId);
        learnersNext.delete(c.nodeId);
        break;
      case 'removeNode':
        voters.delete(c.nodeId);
        learners.delete(c.nodeId);
        learnersNext.delete(c.nodeId);
        break;
      case 'addLearner':
        voters.delete(c.nodeId);
        // A voter demoted in a joint configuration keeps voting in the outgoing half until
        // the joint configuration is left, so it cannot be a learner before then.
        if (joint && conf.voters.includes(c.nodeId)) learnersNext.add(c.nodeId);
        else learners.add(c.nodeId);
        break;
    }
  }
  if (voters.size === 0) throw invalidArgument('a configuration needs at least one voter');
  return {
    voters: sortedUnique([...voters]),
    votersOutgoing: joint ? [...conf.voters] : [],
    learners: sortedUnique([...learners]),
    learnersNext: sortedUnique([...learnersNext]),
    autoLeave: joint,
  };
}

/** A configuration as a node's status shows it: both halves' voters together, and whether it is joint. */
export interface ConfView {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly joint: boolean;
}

/**
 * Whether `cc` is in force in `view`: the configuration is not joint (a change of voters
 * is done only once its joint step is left), and every node the change names holds the
 * role the last item naming it gives. A change applied at its index but not in force
 * was lost (its entry was replaced under a new leader) and must be proposed again.
 */
export function confChangeInForce(cc: ConfChange, view: ConfView): boolean {
  if (view.joint) return false;
  const last = new Map<NodeId, ConfChangeOp>();
  for (const c of cc.changes) last.set(c.nodeId, c.op);
  for (const [id, op] of last) {
    const voter = view.voters.includes(id);
    const learner = view.learners.includes(id);
    if (op === 'addVoter' ? !voter : op === 'addLearner' ? voter || !learner : voter || learner) return false;
  }
  return true;
}

function sortedUnique(ids: NodeId[]): NodeId[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}

