import type { ReportData, ReportRow } from './data.js';

// Which charts a sweep gets, decided from what it varied. Charts are plain data (specs); the
// page's script only draws them.

export interface LineChart {
  readonly kind: 'line';
  readonly id: string;
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly xLog?: boolean;
  readonly series: { name: string; points: [number, number][] }[];
}

export interface BarChart {
  readonly kind: 'bar';
  readonly id: string;
  readonly title: string;
  readonly yLabel: string;
  readonly categories: string[];
  readonly values: number[];
}

export type ChartSpec = LineChart | BarChart;

export interface ChartPlan {
  readonly charts: ChartSpec[];
  /** Sentences for the report: charts skipped and why, series capped, etc. */
  readonly notes: string[];
}

const LOAD_KEYS = ['workload.rate', 'trace.rateScale'];
const MAX_SERIES = 12;
const COMPARISONS: [string, string][] = [
  ['policy', 'Static vs continuous (vs chunked) batching'],
  ['kv.pageSizeTokens', 'Page sizes (tokens per KV page)'],
  ['lora.eviction', 'LoRA eviction policies'],
  ['lora.numSlots', 'LoRA slots'],
  ['kv.allocator', 'Paged vs contiguous KV'],
  ['scheduler.maxNumSeqs', 'Batch size limit (max sequences)'],
  ['scheduler.maxNumBatchedTokens', 'Chunk / batch token budget'],
  ['weightDtype', 'Weight dtype'],
  ['kvDtype', 'KV dtype'],
  ['gpu', 'GPU type'],
  ['model', 'Model'],
  ['cost.sampling', 'GPU vs CPU sampling'],
];

const num = (x: unknown): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * A point's KV utilization (time mean, a fraction): summary.kv's, or for a fleet (whose pools
 * differ in blocks per replica) the pools' means weighted by their GPU-hours.
 */
function kvUtilizationMean(s: Record<string, any>): number | null {
  const top = num(s.kv?.utilization_mean);
  if (top !== null || s.pools === null || typeof s.pools !== 'object') return top;
  const pools = Object.values(s.pools as Record<string, Record<string, unknown>>).filter((p) => num(p.kv_utilization_mean) !== null);
  if (pools.length === 0) return null;
  const weight = (p: Record<string, unknown>): number => num(p.gpu_hours) ?? 0;
  const total = pools.reduce((a, p) => a + weight(p), 0);
  return total > 0 ? pools.reduce((a, p) => a + weight(p) * (p.kv_utilization_mean as number), 0) / total : mean(pools.map((p) => p.kv_utilization_mean as number));
}

/** Groups rows by the values of `keys` (a series per combination), in first-seen order. */
function groupBy(rows: readonly ReportRow[], keys: readonly string[]): { name: string; rows: ReportRow[] }[] {
  const groups = new Map<string, ReportRow[]>();
  for (const r of rows) {
    const name = keys.length > 0 ? keys.map((k) => `${k}=${r.values[k]}`).join(' ') : 'all points';
    const g = groups.get(name);
    if (g === undefined) groups.set(name, [r]);
    else g.push(r);
  }
  return [...groups.entries()].map(([name, rs]) => ({ name, rows: rs }));
}

/** y vs x per series, averaging over seeds (and any row sharing x within a series). */
function curves(rows: readonly ReportRow[], xKey: string, seriesKeys: string[], y: (r: ReportRow) => number | null, suffix = ''): LineChart['series'] {
  return groupBy(rows, seriesKeys).map((g) => {
    const byX = new Map<number, number[]>();
    for (const r of g.rows) {
      const x = num(r.values[xKey]);
      const v = y(r);
      if (x === null || v === null) continue;
      byX.set(x, [...(byX.get(x) ?? []), v]);
    }
    const points = [...byX.entries()].sort((a, b) => a[0] - b[0]).map(([x, vs]) => [x, mean(vs)] as [number, number]);
    return { name: g.name + suffix, points };
  });
}

function capSeries(series: LineChart['series'], title: string, notes: string[]): LineChart['series'] {
  // A series of one point draws no line (e.g. an explicit point off the grid): leave it out.
  const kept = series.filter((s) => s.points.length > 1);
  if (kept.length === 0) return series.filter((s) => s.points.length > 0).slice(0, MAX_SERIES);
  if (kept.length <= MAX_SERIES) return kept;
  notes.push(`"${title}" shows the first ${MAX_SERIES} of ${kept.length} series.`);
  return kept.slice(0, MAX_SERIES);
}

export function planCharts(data: ReportData): ChartPlan {
  const notes: string[] = [];
  const charts: ChartSpec[] = [];
  const { rows, varied } = data;
  const m = (r: ReportRow): Record<string, any> => r.record.summary;

  // Latency CDFs: one line per point, at most MAX_SERIES points spread evenly over the sweep.
  const step = Math.max(1, Math.ceil(rows.length / MAX_SERIES));
  const sample = rows.filter((_, i) => i % step === 0).slice(0, MAX_SERIES);
  if (sample.length < rows.length) notes.push(`Latency CDFs show ${sample.length} of ${rows.length} points (every ${step}th).`);
  for (const [key, title] of [['ttft_ms', 'TTFT CDF'], ['e2e_ms', 'End-to-end latency CDF']] as const) {
    const series = sample
      .map((r) => ({ name: `#${r.index} ${r.label}`, points: r.record.cdf[key].filter(([, v]) => v > 0).map(([q, v]) => [v, q] as [number, number]) }))
      .filter((s) => s.points.length > 0);
    if (series.length > 0) charts.push({ kind: 'line', id: `cdf-${key}`, title, xLabel: `${key.replace('_ms', '').toUpperCase()} (ms, log scale)`, yLabel: 'fraction of requests', xLog: true, series });
  }

  const loadKey = LOAD_KEYS.find((k) => varied.includes(k));
  const others = (exclude: string[]): string[] => varied.filter((k) => !exclude.includes(k) && k !== 'seed');
  if (loadKey !== undefined) {
    const sk = others([loadKey]);
    const xLabel = loadKey === 'workload.rate' ? 'arrival rate (requests/s)' : 'trace rate scale (x native)';
    const add = (id: string, title: string, yLabel: string, parts: [string, (r: ReportRow) => number | null][]): void => {
      const series = parts.flatMap(([suffix, f]) => curves(rows, loadKey, sk, f, suffix));
      charts.push({ kind: 'line', id, title, xLabel, yLabel, series: capSeries(series, title, notes) });
    };
    add('ttft-vs-load', 'TTFT percentiles vs load', 'TTFT (ms)', [[' p50', (r) => num(m(r).ttft_ms?.p50)], [' p99', (r) => num(m(r).ttft_ms?.p99)]]);
    add('itl-vs-load', 'ITL percentiles vs load', 'ITL (ms)', [[' p50', (r) => num(m(r).itl_ms?.p50)], [' p99', (r) => num(m(r).itl_ms?.p99)]]);
    add('throughput-vs-load', 'Throughput vs load', 'output throughput (tokens/s)', [['', (r) => num(m(r).throughput_output_tokens_per_s)]]);
    add('kv-vs-load', 'KV utilization vs load', 'KV utilization, time mean (%)', [['', (r) => { const u = kvUtilizationMean(m(r)); return u === null ? null : u * 100; }]]);
  } else {
    notes.push('The sweep does not vary the load (workload.rate or trace.rateScale): no "vs load" charts.');
    const shown = rows.slice(0, 40);
    charts.push({ kind: 'bar', id: 'kv-by-point', title: 'KV utilization by point', yLabel: 'KV utilization, time mean (%)', categories: shown.map((r) => `#${r.index}`), values: shown.map((r) => (kvUtilizationMean(m(r)) ?? 0) * 100) });
  }

  if (varied.includes('replicas')) {
    const title = 'SLA attainment vs fleet size';
    charts.push({ kind: 'line', id: 'sla-vs-replicas', title, xLabel: 'replicas', yLabel: 'SLA attainment (% of requests)', series: capSeries(curves(rows, 'replicas', others(['replicas']), (r) => (num(m(r).sla?.attainment) ?? NaN) * 100), title, notes) });
  } else {
    notes.push('The sweep does not vary the fleet size (replicas): no "SLA attainment vs fleet size" chart.');
  }

  const withCost = rows.filter((r) => num(m(r).cost?.gpu_cost_usd_per_m_output_tokens) !== null);
  if (withCost.length > 0) {
    charts.push({
      kind: 'line',
      id: 'cost-vs-sla',
      title: '$/M tokens vs SLA attainment',
      xLabel: 'SLA attainment (% of requests)',
      yLabel: 'cost ($ per million output tokens)',
      series: [{ name: 'points', points: withCost.map((r) => [(num(m(r).sla?.attainment) ?? 0) * 100, m(r).cost.gpu_cost_usd_per_m_output_tokens as number] as [number, number]).sort((a, b) => a[0] - b[0]) }],
    });
  } else {
    notes.push('No cost in summary.json (runs without a `fleet` section have no pricing): the "$/M tokens vs SLA" chart is skipped.');
  }

  for (const [key, title] of COMPARISONS) {
    if (!varied.includes(key)) continue;
    const groups = groupBy(rows, [key]);
    const categories = groups.map((g) => String(g.rows[0].values[key]));
    const thr = groups.map((g) => mean(g.rows.map((r) => num(m(r).throughput_output_tokens_per_s) ?? 0)));
    const ttft = groups.map((g) => median(g.rows.map((r) => num(m(r).ttft_ms?.p99) ?? 0)));
    const slug = key.replace(/\./g, '-');
    charts.push({ kind: 'bar', id: `cmp-${slug}-throughput`, title: `${title}: output throughput (mean over the other swept values)`, yLabel: 'output throughput (tokens/s)', categories, values: thr });
    charts.push({ kind: 'bar', id: `cmp-${slug}-ttft`, title: `${title}: p99 TTFT (median over the other swept values)`, yLabel: 'p99 TTFT (ms)', categories, values: ttft });
  }
  return { charts, notes };
}
