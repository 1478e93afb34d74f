/**
 * The members' peer addresses, as a node server knows them: those of `--initial-cluster`,
 * changed since by membership changes. Raft's configuration says who votes; this table says
 * where each member listens, so that a member added later can be dialled (and its
 * connections accepted) and a removed one refused.
 *
 * The leader's server changes it (`member add`, `member remove`) and sends the whole table to
 * every peer on the control lane, and again to each peer whose control connection comes up,
 * so a node that was down meanwhile learns it when it is back. Each server keeps its table in
 * its data directory (`PEERS`, a checked record: storage/node-identity.ts) before it acts on
 * it, and starts from it: a restarted node knows the members added while it ran.
 *
 * On the wire: a tag byte {@link MEMBER_TABLE} (peer messages that are Raft messages start
 * with their format version, 1), then UTF-8 JSON `{"members":{"<id>":"HOST:PORT",...},
 * "removed":[<id>,...]}`.
 */
import { join } from 'node:path';
import { ErrorCode, RingraftError } from '../base/index.ts';
import { readCheckedRecord, realFileSystem, writeCheckedRecord } from '../storage/index.ts';
import { formatHostPort, parseHostPort, type HostPort } from './host-port.ts';

export const MEMBER_TABLE = 0xf2;
const PEERS_FILE = 'PEERS';
const PEERS_FORMAT = 1;
/** The largest table message taken from a peer. */
const TABLE_BYTES_MAX = 64 << 10;

/** Members to know (or move) and members to forget. */
export interface MemberUpdate {
  readonly members: ReadonlyMap<number, HostPort>;
  readonly removed?: readonly number[];
}

export class PeerTable {
  private readonly addresses = new Map<number, HostPort>();
  private readonly removedIds = new Set<number>();

  /** The table of `dataDir`'s PEERS record over `initial` (the record wins: it is newer). */
  constructor(
    private readonly dataDir: string,
    initial: ReadonlyMap<number, HostPort>,
  ) {
    for (const [id, a] of initial) this.addresses.set(id, a);
    const record = readCheckedRecord(realFileSystem, join(dataDir, PEERS_FILE)) as { format?: unknown; members?: unknown; removed?: unknown } | undefined;
    if (record === undefined) return;
    if (record.format !== PEERS_FORMAT) throw new RingraftError(ErrorCode.UNSUPPORTED_FORMAT, `${join(dataDir, PEERS_FILE)}: format ${String(record.format)}; this build reads ${PEERS_FORMAT}`);
    const update = parseUpdate(record.members, record.removed);
    if (update === undefined) throw new RingraftError(ErrorCode.CORRUPT_LOG, `${join(dataDir, PEERS_FILE)}: not a member table`);
    this.merge(update);
  }

  has(id: number): boolean {
    return this.addresses.has(id);
  }

  ids(): number[] {
    return [...this.addresses.keys()].sort((a, b) => a - b);
  }

  entries(): IterableIterator<[number, HostPort]> {
    return this.addresses.entries();
  }

  removed(): number[] {
    return [...this.removedIds];
  }

  describe(): string {
    return this.ids().map((id) => `${id}=${formatHostPort(this.addresses.get(id)!)}`).join(',');
  }

  /**
   * Applies `update` (never to `selfId`'s own entry, nor bringing back a removed id) and
   * writes the table if it changed; returns whether it did.
   */
  apply(update: MemberUpdate, selfId: number): boolean {
    const before = JSON.stringify(this.toJson());
    this.merge(update, selfId);
    if (JSON.stringify(this.toJson()) === before) return false;
    writeCheckedRecord(realFileSystem, this.dataDir, PEERS_FILE, { format: PEERS_FORMAT, ...this.toJson() });
    return true;
  }

  toJson(): { members: Record<string, string>; removed: number[] } {
    return { members: Object.fromEntries(this.ids().map((id) => [String(id), formatHostPort(this.addresses.get(id)!)])), removed: [...this.removedIds].sort((a, b) => a - b) };
  }

  private merge(update: MemberUpdate, selfId?: number): void {
    for (const id of update.removed ?? []) {
      if (id === selfId) continue;
      this.removedIds.add(id);
      this.addresses.delete(id);
    }
    for (const [id, a] of update.members) {
      if (id === selfId || this.removedIds.has(id)) continue;
      this.addresses.set(id, a);
    }
  }
}

export function encodeMemberTable(table: PeerTable): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(table.toJson()));
  const out = new Uint8Array(1 + json.length);
  out[0] = MEMBER_TABLE;
  out.set(json, 1);
  return out;
}

/** A member table message from a peer; undefined for one that is not (it is dropped and counted). */
export function decodeMemberTable(bytes: Uint8Array): MemberUpdate | undefined {
  if (bytes.length > TABLE_BYTES_MAX) return undefined;
  let value: { members?: unknown; removed?: unknown };
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(1))) as { members?: unknown; removed?: unknown };
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  return parseUpdate(value.members, value.removed);
}

function parseUpdate(members: unknown, removed: unknown): MemberUpdate | undefined {
  if (typeof members !== 'object' || members === null || Array.isArray(members)) return undefined;
  if (!Array.isArray(removed) || !removed.every((id) => Number.isSafeInteger(id) && (id as number) >= 1)) return undefined;
  const out = new Map<number, HostPort>();
  for (const [key, text] of Object.entries(members as Record<string, unknown>)) {
    const id = Number(key);
    if (!Number.isSafeInteger(id) || id < 1 || typeof text !== 'string') return undefined;
    try {
      out.set(id, parseHostPort(text, `member ${id}`));
    } catch {
      return undefined;
    }
  }
  return { members: out, removed: removed as number[] };
}
