/**
 * The leases of the key-value state machine: which exist, each one's TTL, and the keys
 * attached to it. A lease is replicated state like the data: granted and revoked through the
 * log, so every replica holds the same table. Its clock is not: when a lease expires is the
 * leader's decision, by its own clock (runtime/lease-keeper.ts), and reaches the table as a
 * revocation through the log.
 *
 * Ids come from a counter that only grows (in the snapshot), so an id is never handed out
 * twice, and a key attached to a revoked lease can never be taken for another's.
 */

import { ByteReader, ByteWriter, DecodeError } from '../codec/index.ts';

/** Leases the table holds at most: a grant beyond it is refused with LEASES_FULL. */
export const KV_LEASES_MAX = 1 << 20;
/** The shortest TTL a lease may be granted with, in ms. */
export const KV_LEASE_TTL_MS_MIN = 100;
/** The longest TTL, in ms (a timer's limit). */
export const KV_LEASE_TTL_MS_MAX = 2 ** 31 - 1;

interface Lease {
  readonly id: number;
  readonly ttlMs: number;
  /** The keys attached (latin1 key strings, as the state machine keys its Map). */
  readonly keys: Set<string>;
}

/** A lease as callers see it. */
export interface LeaseInfo {
  readonly id: number;
  readonly ttlMs: number;
  /** How many keys are attached. */
  readonly keys: number;
}

export class LeaseTable {
  private readonly leases = new Map<number, Lease>();
  /** The id the next grant gets; ids start at 1 (0 means "no lease" on a key). */
  private idNext = 1;

  get size(): number {
    return this.leases.size;
  }

  has(id: number): boolean {
    return this.leases.has(id);
  }

  info(id: number): LeaseInfo | undefined {
    const l = this.leases.get(id);
    return l === undefined ? undefined : { id, ttlMs: l.ttlMs, keys: l.keys.size };
  }

  /** Every lease, in id order (the order they were granted). */
  *all(): Generator<LeaseInfo> {
    for (const l of this.leases.values()) yield { id: l.id, ttlMs: l.ttlMs, keys: l.keys.size };
  }

  /** Grants a lease of `ttlMs` (checked by the caller); undefined when the table is full. */
  grant(ttlMs: number): number | undefined {
    if (this.leases.size >= KV_LEASES_MAX) return undefined;
    const id = this.idNext++;
    this.leases.set(id, { id, ttlMs, keys: new Set() });
    return id;
  }

  /**
   * Removes lease `id`; returns its keys in byte order (the order their deletes are told in,
   * the same on every replica however each built its table), or undefined if it does not exist.
   */
  revoke(id: number): string[] | undefined {
    const l = this.leases.get(id);
    if (l === undefined) return undefined;
    this.leases.delete(id);
    return [...l.keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  attach(id: number, key: string): void {
    this.leases.get(id)?.keys.add(key);
  }

  detach(id: number, key: string): void {
    this.leases.get(id)?.keys.delete(key);
  }

  /** Bytes of {@link write}. */
  encodedBytes(): number {
    return 8 + 4 + this.leases.size * (8 + 4);
  }

  /** The table without its keys (each key names its lease): idNext u64, count u32, then (id u64, ttlMs u32) by id. */
  write(w: ByteWriter): void {
    w.u64Number(this.idNext);
    w.u32(this.leases.size);
    for (const l of this.leases.values()) {
      w.u64Number(l.id);
      w.u32(l.ttlMs);
    }
  }

  /** Reads {@link write}'s bytes into this (empty) table; keys are attached by the caller. */
  read(r: ByteReader): void {
    const at = r.offset;
    this.idNext = r.u64Number();
    const count = r.u32();
    if (this.idNext < 1 || count > KV_LEASES_MAX || count > Math.floor(r.remainingBytes / 12)) throw new DecodeError('invalid', at, `lease table of ${count} leases, next id ${this.idNext}, does not fit`);
    let previous = 0;
    for (let i = 0; i < count; i++) {
      const leaseAt = r.offset;
      const id = r.u64Number();
      const ttlMs = r.u32();
      if (id <= previous || id >= this.idNext || ttlMs < KV_LEASE_TTL_MS_MIN || ttlMs > KV_LEASE_TTL_MS_MAX) throw new DecodeError('invalid', leaseAt, `lease ${id} (ttl ${ttlMs} ms) is out of order or range`);
      this.leases.set(id, { id, ttlMs, keys: new Set() });
      previous = id;
    }
  }
}
