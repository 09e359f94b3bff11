// What a profile report shows, as plain data: the fit errors per family against the goal, and
// efficiency curves (the interpolation drawn densely, the measured grid points as dots).
import { EfficiencyGrid } from './interp.js';
import { FAMILIES, FAMILY_SPECS, type Family } from './op-work.js';
import { configText, type ErrorStats, type Profile, type ProfileTable } from './profile.js';

export const LOO_GOAL = { median: 0.03, p90: 0.1 } as const;

export interface ErrorRow {
  readonly family: Family;
  readonly loo: ErrorStats | null;
  readonly looEdge: ErrorStats | null;
  readonly holdout: ErrorStats | null;
  readonly meetsGoal: boolean | null;
}

export interface CurveSeries {
  readonly name: string;
  readonly line: [number, number][];
  readonly measured: [number, number][];
}

export interface CurveChart {
  readonly title: string;
  readonly xLabel: string;
  readonly series: CurveSeries[];
}

export function errorRows(profile: Profile): ErrorRow[] {
  return FAMILIES.filter((f) => profile.tables.some((t) => t.family === f)).map((family) => {
    const loo = profile.fit.looError[family] ?? null;
    return {
      family,
      loo,
      looEdge: profile.fit.looEdgeError?.[family] ?? null,
      holdout: profile.fit.holdoutError?.[family] ?? null,
      meetsGoal: loo ? loo.median <= LOO_GOAL.median && loo.p90 <= LOO_GOAL.p90 : null,
    };
  });
}

const pct = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? '-' : `${(100 * x).toFixed(1)}%`);

/** The error table as text (what `stratos calibrate report` and `fit` print). */
export function errorTable(profile: Profile): string {
  const head = ['family', 'LOO median', 'LOO p90', 'n', 'edge median', 'edge p90', 'holdout median', 'holdout p90', 'n', 'goal'];
  const rows = errorRows(profile).map((r) => [
    r.family, pct(r.loo?.median), pct(r.loo?.p90), String(r.loo?.n ?? 0), pct(r.looEdge?.median), pct(r.looEdge?.p90),
    pct(r.holdout?.median), pct(r.holdout?.p90), String(r.holdout?.n ?? 0), r.meetsGoal === null ? '-' : r.meetsGoal ? 'met' : 'MISSED',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The axis drawn along x for each family; the others become series (a few values) or are fixed. */
const X_AXIS: Readonly<Record<Family, string>> = {
  gemm: 'm', decode: 'ctx', prefill: 'chunk', sampling: 'batch', hostSampling: 'batch', lora: 'tokens',
  rmsnorm: 'tokens', rope: 'tokens', siluMul: 'tokens', kvWrite: 'tokens', embedding: 'tokens', copyH2D: 'bytes', copyD2H: 'bytes',
};

/** The axis whose values become separate series in multi-axis families. */
const SERIES_AXIS: Readonly<Partial<Record<Family, string>>> = { decode: 'batch', prefill: 'ctx', lora: 'adapters', sampling: 'vocab' };

/** At most `n` values spread over `values` (first and last included). */
function spread(values: readonly number[], n: number): number[] {
  if (values.length <= n) return [...values];
  return Array.from({ length: n }, (_, i) => values[Math.round((i * (values.length - 1)) / (n - 1))]);
}

function tableSeries(t: ProfileTable, grid: EfficiencyGrid, label: string, fixed: Record<string, number>): CurveSeries[] {
  const xName = X_AXIS[t.family];
  const xAxis = t.axes.find((a) => a.name === xName);
  if (!xAxis) return [];
  const others = t.axes.filter((a) => a.name !== xName);
  // Series over the first other axis (up to 4 values); remaining axes fixed at `fixed` or their middle value.
  const seriesAxis = others.find((a) => a.name === SERIES_AXIS[t.family]);
  const seriesValues = seriesAxis ? spread(seriesAxis.values, 4) : [NaN];
  const lo = xAxis.values[0];
  const hi = xAxis.values[xAxis.values.length - 1];
  const dense = Array.from({ length: 60 }, (_, i) => (lo + xAxis.offset) * ((hi + xAxis.offset) / (lo + xAxis.offset)) ** (i / 59) - xAxis.offset);
  return seriesValues.map((sv) => {
    const pointOf = (x: number): number[] =>
      t.axes.map((a) => (a.name === xName ? x : seriesAxis && a.name === seriesAxis.name ? sv : fixed[a.name] ?? a.values[Math.floor((a.values.length - 1) / 2)]));
    const line = dense.map((x) => [x, grid.efficiency(pointOf(x))] as [number, number]);
    const measured: [number, number][] = [];
    for (let idx = 0; idx < grid.size; idx++) {
      const e = grid.measuredAt(idx);
      if (e === null) continue;
      const ind = grid.indices(idx);
      const p = t.axes.map((a, i) => a.values[ind[i]]);
      const want = pointOf(p[t.axes.indexOf(xAxis)]);
      if (p.every((v, i) => v === want[i])) measured.push([p[t.axes.indexOf(xAxis)], e]);
    }
    const name = seriesAxis ? `${label}${label ? ', ' : ''}${seriesAxis.name}=${sv}` : label;
    return { name, line, measured };
  });
}

/** Charts of efficiency against the family's main axis. */
export function curveCharts(profile: Profile, maxSeriesPerChart = 8): CurveChart[] {
  const charts: CurveChart[] = [];
  for (const family of FAMILIES) {
    const tables = profile.tables.filter((t) => t.family === family);
    if (tables.length === 0) continue;
    const fixed: Record<string, number> = family === 'decode' ? { page: 16 } : family === 'lora' ? { rank: 16 } : family === 'prefill' ? { seqs: 1 } : {};
    const oneAxis = FAMILY_SPECS[family].axes.length === 1;
    if (oneAxis) {
      // One chart per family with a series per config, split to keep charts readable.
      const all = tables.flatMap((t) => tableSeries(t, new EfficiencyGrid(t.axes, t.efficiency), configText(family, t.config) || family, fixed));
      for (let i = 0; i < all.length; i += maxSeriesPerChart) {
        charts.push({ title: `${family}: ${FAMILY_SPECS[family].describe}${all.length > maxSeriesPerChart ? ` (${i / maxSeriesPerChart + 1})` : ''}`, xLabel: X_AXIS[family], series: all.slice(i, i + maxSeriesPerChart) });
      }
    } else {
      for (const t of tables) {
        const fixedText = Object.entries(fixed).map(([k, v]) => `${k}=${v}`).join(', ');
        charts.push({
          title: `${family} ${configText(family, t.config)}${fixedText ? ` (${fixedText})` : ''}`,
          xLabel: X_AXIS[family],
          series: tableSeries(t, new EfficiencyGrid(t.axes, t.efficiency), '', fixed),
        });
      }
    }
  }
  return charts;
}
