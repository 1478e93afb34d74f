/**
 * The picture of a benchmark run: one HTML page with SVG charts drawn by echarts'
 * server-side renderer (no browser, no DOM) — throughput against requests in flight, and
 * the latency percentile curve of every loop — above the tables of the run.
 *
 * It reads only the JSON document (bench/shared/result.ts), so `npm run bench:peers` can draw its
 * rows with it too: rows with a `system` are charted as that system's series.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as echarts from 'echarts';
import { targets } from '../../bench.config.ts';
import { CURVE_PERCENTILES } from '../load/loops.ts';
import { formatMs, formatNumber, targetMatches, type BenchJson, type BenchRow } from './result.ts';

const THROUGHPUT_SIZE = { width: 960, height: 480 };
const CURVE_SIZE = { width: 470, height: 370 };
/** Room on the throughput chart's right for its legend, one series a line. */
const LEGEND_WIDTH = 300;

type AnyRow = BenchRow & { readonly system?: string };

/** Writes the report of `result` to `file` (making its directory) and returns the HTML. */
export function writeReport(file: string, result: BenchJson): string {
  const html = renderReport(result);
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileSync(file, html);
  return html;
}

export function renderReport(result: BenchJson): string {
  const rows: AnyRow[] = [...result.scenarios, ...result.peers];
  const m = result.machine;
  const parts: string[] = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><title>ringraft benchmark</title>',
    '<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;font-size:12px;margin:8px 0 24px}',
    'td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td.l,th.l{text-align:left}.met{color:#070}.missed{color:#a00}',
    '.charts{display:flex;flex-wrap:wrap;gap:8px}</style></head><body>',
    '<h1>ringraft benchmark</h1>',
    `<p>${escape(m.cpu)}, ${m.cores} cores, Node.js ${escape(m.node)}${result.startedAt === undefined ? '' : `, ${escape(result.startedAt)}`}${
      result.command === undefined ? '' : ` — <code>${escape(result.command)}</code>`
    }</p>`,
  ];
  if (result.targets !== undefined && result.targets.length > 0) {
    parts.push('<h2>Targets</h2><ul>');
    for (const t of result.targets) parts.push(`<li><b class="${t.status === 'met' ? 'met' : 'missed'}">${t.status}</b> ${escape(t.name)} <small>(${escape(t.detail)})</small></li>`);
    parts.push('</ul>');
  }
  if (rows.length > 0) {
    parts.push('<h2>Throughput against requests in flight</h2>', throughputChart(rows));
    parts.push('<h2>Latency percentiles</h2><div class="charts">');
    for (const [title, group] of groupBy(rows, (r) => `${seriesOwner(r)} ${r.op}`)) parts.push(curveChart(title, group));
    parts.push('</div>', '<h2>Rows</h2>', rowsTable(rows));
  }
  if (result.limits !== undefined && result.limits.length > 0) {
    parts.push('<h2>Limits</h2><table><tr><th class="l">scenario</th><th class="l">limit</th><th class="l">bounds</th><th>bytes/op</th><th>ops/s</th></tr>');
    for (const l of result.limits) {
      parts.push(`<tr><td class="l">${escape(l.scenario)}</td><td class="l">${escape(l.name)}</td><td class="l">${escape(l.ops.join(', '))}</td><td>${l.bytesPerOp}</td><td>${formatNumber(l.opsPerSec)}</td></tr>`);
    }
    parts.push('</table>');
  }
  parts.push('</body></html>\n');
  return parts.join('\n');
}

/** Who a row's series belongs to: its system (peers) or its scenario. */
function seriesOwner(r: AnyRow): string {
  return r.system === undefined ? r.name : `${r.system} ${r.durable ? 'durable' : 'in memory'}`;
}

function groupBy<T>(items: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const x of items) {
    const k = key(x);
    const list = out.get(k);
    if (list === undefined) out.set(k, [x]);
    else list.push(x);
  }
  return out;
}

function render(option: echarts.EChartsCoreOption, size: { width: number; height: number }): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: size.width, height: size.height });
  try {
    chart.setOption({ animation: false, backgroundColor: '#fff', ...option });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

/**
 * Closed-loop ops/s at each level of requests in flight, one line per scenario and op
 * (dashed: durable), with each throughput target as a dotted line on the series it judges.
 */
function throughputChart(rows: readonly AnyRow[]): string {
  const closed = rows.filter((r) => (r.loop ?? 'closed') === 'closed');
  const levels = [...new Set(closed.map((r) => r.inFlight))].sort((a, b) => a - b);
  const drawn = new Set<string>();
  const series = [...groupBy(closed, (r) => `${seriesOwner(r)} ${r.op}`)].map(([name, group]) => {
    // Each target once, on the first series it judges.
    const goals = targets.filter((t) => t.opsPerSecMin !== undefined && !drawn.has(t.name) && group.some((r) => r.system === undefined && targetMatches(t, r)));
    for (const t of goals) drawn.add(t.name);
    return {
      name,
      type: 'line',
      symbolSize: 6,
      lineStyle: { type: group[0]!.durable ? 'dashed' : 'solid' },
      data: levels.map((n) => {
        const r = group.find((x) => x.inFlight === n);
        return r === undefined || r.opsPerSec <= 0 ? null : Math.round(r.opsPerSec);
      }),
      ...(goals.length === 0
        ? {}
        : {
            markLine: {
              symbol: 'none',
              lineStyle: { type: 'dotted' },
              label: { position: 'insideEndTop' },
              data: goals.map((t) => ({ yAxis: t.opsPerSecMin, label: { formatter: `target: ${t.name}` } })),
            },
          }),
    };
  });
  // A log axis spans its data only: reach up to the targets too, so that their lines show.
  const highest = Math.max(1, ...closed.map((r) => r.opsPerSec), ...targets.map((t) => t.opsPerSecMin ?? 0));
  return render(
    {
      legend: { orient: 'vertical', left: THROUGHPUT_SIZE.width - LEGEND_WIDTH + 20, top: 40 },
      grid: { left: 90, right: LEGEND_WIDTH, top: 40, bottom: 50 },
      xAxis: { type: 'category', name: 'requests in flight', nameLocation: 'middle', nameGap: 30, data: levels.map(String) },
      yAxis: { type: 'log', name: 'operations/s', max: 10 ** Math.ceil(Math.log10(highest)), axisLabel: { formatter: (v: number) => formatNumber(v) } },
      series,
    },
    THROUGHPUT_SIZE,
  );
}

/** Latency at each recorded percentile, one line per loop of one scenario and op. */
function curveChart(title: string, rows: readonly AnyRow[]): string {
  const labels = CURVE_PERCENTILES.map((p) => (p === 100 ? 'max' : String(p)));
  const series = rows
    .filter((r) => r.curveMs !== undefined && r.curveMs.length > 0)
    .map((r) => ({
      name: r.loop === 'open' ? `open @${formatNumber(r.offeredOpsPerSec ?? 0)}/s` : `${r.inFlight} in flight`,
      type: 'line',
      symbolSize: 4,
      lineStyle: { type: r.loop === 'open' ? 'dashed' : 'solid' },
      data: CURVE_PERCENTILES.map((p) => {
        const point = r.curveMs!.find((c) => c.percentile === p);
        return point === undefined || point.ms <= 0 ? null : point.ms;
      }),
    }));
  return render(
    {
      title: { text: title, left: 'center', textStyle: { fontSize: 13 } },
      legend: { top: 26, left: 'center', width: CURVE_SIZE.width - 40, itemGap: 20, textStyle: { fontSize: 11 } },
      grid: { left: 60, right: 20, top: 105, bottom: 45 },
      xAxis: { type: 'category', name: 'percentile', nameLocation: 'middle', nameGap: 28, data: labels, axisLabel: { interval: 0, fontSize: 10 } },
      yAxis: { type: 'log', name: 'ms', axisLabel: { formatter: (v: number) => formatMs(v) } },
      series,
    },
    CURVE_SIZE,
  );
}

function rowsTable(rows: readonly AnyRow[]): string {
  const head = ['system', 'scenario', 'op', 'loop', 'in flight', 'ops/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'limit', 'limit ops/s', 'ratio'];
  const out = [`<table><tr>${head.map((h, i) => `<th${i < 4 || i === 10 ? ' class="l"' : ''}>${h}</th>`).join('')}</tr>`];
  for (const r of rows) {
    const l = r.latencyMs;
    const cells = [
      r.system ?? 'ringraft',
      r.name,
      r.op,
      r.loop === 'open' ? `open @${formatNumber(r.offeredOpsPerSec ?? 0)}/s` : (r.loop ?? 'closed'),
      String(r.inFlight),
      formatNumber(r.opsPerSec),
      formatMs(l.p50),
      formatMs(l.p99),
      formatMs(l.p999),
      formatMs(l.max),
      r.limit?.name ?? '',
      r.limit === null ? '' : formatNumber(r.limit.opsPerSec),
      r.ratio === null ? '' : r.ratio.toFixed(3),
    ];
    out.push(`<tr>${cells.map((c, i) => `<td${i < 4 || i === 10 ? ' class="l"' : ''}>${escape(c)}</td>`).join('')}</tr>`);
  }
  out.push('</table>');
  return out.join('\n');
}

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
