/**
 * The peer comparison as text: one table of every row, then ringraft against etcd per
 * concurrency, both durable, both separate processes over TCP where ringraft-tcp ran, as
 * the ratio ringraft / etcd.
 */

import type { PeerRow } from './peers.ts';

function formatNumber(x: number): string {
  return x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toPrecision(3);
}

function ms(x: number): string {
  return x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(x >= 10 ? 1 : 2);
}

function ratio(x: number | null): string {
  return x === null ? '' : `${x.toFixed(2)}×`;
}

/** Lays out cells in columns; the columns in `left` are left-aligned, the rest right-aligned. */
function layout(header: readonly string[], cells: readonly (readonly string[])[], left: ReadonlySet<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]) => c.map((s, i) => (left.has(i) ? s.padEnd(widths[i]!) : s.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** Every row; `ringraft/peer` is ringraft's ops/s (over TCP where it ran) at the same op and concurrency over the row's. */
export function formatPeersTable(rows: readonly PeerRow[]): string {
  const header = ['system', 'config', 'nodes', 'durable', 'in flight', 'op', 'ops/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'errors', 'ringraft ops/s', 'ringraft/peer', 'note'];
  const cells = rows.map((r) => [
    r.system,
    configOf(r),
    String(r.nodes),
    r.durable ? 'yes' : 'no',
    String(r.inFlight),
    r.op,
    formatNumber(r.opsPerSec),
    ms(r.latencyMs.p50),
    ms(r.latencyMs.p99),
    ms(r.latencyMs.p999),
    ms(r.latencyMs.max),
    String(r.errors),
    r.limit === null ? '' : formatNumber(r.limit.opsPerSec),
    ratio(r.ratio),
    r.note ?? '',
  ]);
  return layout(header, cells, new Set([0, 1, 3, 5, 14]));
}

/** A short label of what a row ran beyond its system's name. */
function configOf(r: PeerRow): string {
  if (r.system === 'redis') return r.name.includes('everysec') ? 'appendfsync everysec' : 'appendfsync always';
  if (r.system === 'etcd') return r.name.split(',')[0]!;
  if (r.system === 'ringraft-tcp') return "processes over TCP, fsync 'always'";
  return "worker threads, fsync 'always'";
}

/** ringraft against etcd, both durable, at each concurrency both ran: puts and gets side by side. */
export function formatEtcdRatios(rows: readonly PeerRow[]): string {
  const etcd = rows.filter((r) => r.system === 'etcd' && r.ratio !== null && r.limit !== null);
  if (etcd.length === 0) return '';
  const inFlights = [...new Set(etcd.map((r) => r.inFlightAsked ?? r.inFlight))].sort((a, b) => a - b);
  const cell = (op: string, inFlight: number): string[] => {
    const r = etcd.find((x) => x.op === op && (x.inFlightAsked ?? x.inFlight) === inFlight);
    if (r === undefined) return ['', '', ''];
    return [formatNumber(r.limit!.opsPerSec), formatNumber(r.opsPerSec) + (r.inFlightAsked !== undefined ? ` (at ${r.inFlight})` : ''), ratio(r.ratio)];
  };
  const header = ['in flight', 'ringraft put/s', 'etcd put/s', 'put ratio', 'ringraft get/s', 'etcd get/s', 'get ratio'];
  const cells = inFlights.map((n) => [String(n), ...cell('put', n), ...cell('get', n)]);
  return layout(header, cells, new Set());
}
