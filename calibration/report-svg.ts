// Renders a calibration report as one self-contained HTML page: the fit-error table and the
// efficiency curves as static SVG (d3 scales and line paths computed here; no script in the page).
import { line as d3line, scaleLog, schemeTableau10 } from 'd3';

export interface ReportSeries {
  readonly name: string;
  readonly line: readonly [number, number][];
  readonly measured: readonly [number, number][];
}
export interface ReportChart {
  readonly title: string;
  readonly xLabel: string;
  readonly series: readonly ReportSeries[];
}
export interface ReportPage {
  readonly title: string;
  readonly subtitle: string;
  readonly errorTable: string;
  readonly notes: readonly string[];
  readonly charts: readonly ReportChart[];
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function fmtTick(v: number): string {
  if (v >= 1e9) return `${v / 1e9}G`;
  if (v >= 1e6) return `${v / 1e6}M`;
  if (v >= 1e3) return `${v / 1e3}k`;
  return String(Number(v.toPrecision(3)));
}

/** At most about `max` ticks on a log axis: 1-2-5 steps, thinned to powers of ten when crowded. */
function logTicks([lo, hi]: [number, number], max: number): number[] {
  for (const mantissas of [[1, 2, 5], [1, 3], [1]]) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const mm of mantissas) {
        const v = mm * 10 ** e;
        if (v >= lo && v <= hi) out.push(v);
      }
    }
    if (out.length <= max || mantissas.length === 1) return out.length <= max ? out : out.filter((_, i) => i % Math.ceil(out.length / max) === 0);
  }
  return [];
}

export function chartSvg(chart: ReportChart, width = 560, height = 320): string {
  const m = { top: 28, right: 12, bottom: 40, left: 52 };
  const pts = chart.series.flatMap((s) => [...s.line, ...s.measured]).filter(([x, y]) => x > 0 && y > 0);
  if (pts.length === 0) return `<svg width="${width}" height="40"><text x="4" y="20">${esc(chart.title)}: no data</text></svg>`;
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const x = scaleLog().domain([Math.min(...xs), Math.max(...xs)]).range([m.left, width - m.right]);
  const y = scaleLog().domain([Math.min(...ys) * 0.9, Math.max(1.05, Math.max(...ys) * 1.1)]).range([height - m.bottom, m.top]);
  const path = d3line<[number, number]>().x((d) => Math.round(x(d[0]) * 10) / 10).y((d) => Math.round(y(d[1]) * 10) / 10);
  const color = (i: number) => schemeTableau10[i % schemeTableau10.length];
  const parts: string[] = [];
  parts.push(`<text x="${m.left}" y="16" font-size="13" font-weight="600">${esc(chart.title)}</text>`);
  for (const t of logTicks(x.domain() as [number, number], 8)) {
    parts.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${m.top}" y2="${height - m.bottom}" stroke="#eee"/><text x="${x(t)}" y="${height - m.bottom + 14}" font-size="10" text-anchor="middle">${fmtTick(t)}</text>`);
  }
  for (const t of logTicks(y.domain() as [number, number], 6)) {
    parts.push(`<line x1="${m.left}" x2="${width - m.right}" y1="${y(t)}" y2="${y(t)}" stroke="#eee"/><text x="${m.left - 4}" y="${y(t) + 3}" font-size="10" text-anchor="end">${fmtTick(t)}</text>`);
  }
  parts.push(`<text x="${(m.left + width - m.right) / 2}" y="${height - 6}" font-size="11" text-anchor="middle">${esc(chart.xLabel)} (log)</text>`);
  parts.push(`<text transform="translate(12 ${(m.top + height - m.bottom) / 2}) rotate(-90)" font-size="11" text-anchor="middle">efficiency = roofline / measured (log)</text>`);
  chart.series.forEach((s, i) => {
    const linePts = s.line.filter(([a, b]) => a > 0 && b > 0) as [number, number][];
    parts.push(`<path d="${path(linePts) ?? ''}" fill="none" stroke="${color(i)}" stroke-width="1.5"/>`);
    for (const [a, b] of s.measured) if (a > 0 && b > 0) parts.push(`<circle cx="${x(a).toFixed(1)}" cy="${y(b).toFixed(1)}" r="2.5" fill="${color(i)}"/>`);
    parts.push(`<rect x="${width - m.right - 190}" y="${m.top + 2 + i * 13}" width="8" height="8" fill="${color(i)}"/><text x="${width - m.right - 178}" y="${m.top + 10 + i * 13}" font-size="10">${esc(s.name.slice(0, 34))}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">${parts.join('')}</svg>`;
}

export function renderReportHtml(page: ReportPage): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(page.title)}</title>
<style>body{font-family:sans-serif;margin:24px;max-width:1200px} pre{background:#f6f6f6;padding:8px;overflow-x:auto} .charts{display:flex;flex-wrap:wrap;gap:12px}</style>
</head><body>
<h1>${esc(page.title)}</h1>
<p>${esc(page.subtitle)}</p>
<h2>Fit errors (relative time error; goal: LOO median &le; 3%, p90 &le; 10%)</h2>
<pre>${esc(page.errorTable)}</pre>
${page.notes.length ? `<ul>${page.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
<h2>Efficiency curves</h2>
<p>Lines: the interpolation the cost model prices with; dots: measured grid points.</p>
<div class="charts">
${page.charts.map((c) => chartSvg(c)).join('\n')}
</div>
</body></html>
`;
}
