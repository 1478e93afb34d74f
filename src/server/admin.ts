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
 */
import { invalidArgument } from '../base/index.ts';
import type { NodeStatus } from '../runtime/index.ts';
import type { NodeServerStats } from './node-server.ts';

/** What an admin command needs of its node's server. */
export interface AdminTarget {
  status(): Promise<NodeStatus>;
  stats(): NodeServerStats;
  transferLeadership(target: number): Promise<void>;
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
    default:
      throw invalidArgument(`unknown admin op ${JSON.stringify(op)} (known: status, transfer-leadership)`);
  }
}

function onlyFields(fields: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(fields)) if (!known.includes(key)) throw invalidArgument(`unknown field ${JSON.stringify(key)} in an admin command (known: op${known.map((k) => `, ${k}`).join('')})`);
}
