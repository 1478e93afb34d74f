/**
 * The check of lease expiries: no lease expires before a whole TTL has passed since the call
 * of any renewal of it (a grant or a keep-alive the cluster acknowledged), by the simulated
 * clock, whatever leader changes, partitions and pauses came between. The time a lease
 * expired is when the first node applied its expiry (a lease-expire request in the committed
 * log): from then on its keys are gone. A leader that expired it by deadlines it did not give
 * a full TTL afresh (a new leader trusting the grant time), or by a clock that ran ahead, is
 * caught here.
 */
import { EntryType, type Entry } from '../core/index.ts';
import { decodeKvRequest, forEachKvBatchRequest, isKvBatch, isKvSessionRequest, KvError, type KvLogRequest } from '../kv/index.ts';
import type { LeaseRenewal } from './lease-holders.ts';

export interface LeaseCheckResult {
  readonly violation: string | undefined;
  /** Leases that expired in the run. */
  readonly expired: number;
  /** Renewals judged against an expiry. */
  readonly checked: number;
}

export function checkLeaseExpiries(renewals: readonly LeaseRenewal[], applied: ReadonlyMap<number, Entry>, appliedAt: ReadonlyMap<number, number>): LeaseCheckResult {
  /** The first expiry of each lease: its index and when it first applied. */
  const expiries = new Map<number, { index: number; at: number }>();
  const indexes = [...applied.keys()].sort((a, b) => a - b);
  for (const index of indexes) {
    const e = applied.get(index)!;
    if (e.type !== EntryType.Normal || e.data.length === 0) continue;
    for (const req of requestsOf(e.data)) {
      if (isKvSessionRequest(req) || req.op !== 'lease-expire' || expiries.has(req.id)) continue;
      expiries.set(req.id, { index, at: appliedAt.get(index)! });
    }
  }
  let checked = 0;
  for (const r of renewals) {
    const expiry = expiries.get(r.lease);
    if (expiry === undefined) continue;
    checked++;
    if (expiry.at < r.call + r.ttlMs) {
      return {
        violation: `lease ${r.lease} (TTL ${r.ttlMs} ms) expired at ${expiry.at} ms (its expiry applied at index ${expiry.index}), ${r.call + r.ttlMs - expiry.at} ms early: holder ${r.holder} renewed it by a call at ${r.call} ms, acknowledged at ${r.return} ms`,
        expired: expiries.size,
        checked,
      };
    }
  }
  return { violation: undefined, expired: expiries.size, checked };
}

/** The requests of an entry's data that decode (a batch's one by one). */
function requestsOf(data: Uint8Array): KvLogRequest[] {
  const out: KvLogRequest[] = [];
  const decode = (bytes: Uint8Array): void => {
    try {
      out.push(decodeKvRequest(bytes));
    } catch (error) {
      if (!(error instanceof KvError)) throw error;
    }
  };
  if (isKvBatch(data)) forEachKvBatchRequest(data, decode);
  else decode(data);
  return out;
}
