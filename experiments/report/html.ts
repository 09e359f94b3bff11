import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ChartPlan, ChartSpec } from './charts.js';
import type { ReportData } from './data.js';
import { METRIC_COLUMNS } from '../sweep/csv.js';

const require = createRequire(import.meta.url);

/** node_modules/d3/dist/d3.min.js (the package's exports hide dist/ and package.json). */
function d3BundlePath(): string {
  // require.resolve('d3') gives .../d3/src/index.js (the CommonJS entry); dist/ sits beside src/.
  return join(dirname(require.resolve('d3')), '..', 'dist', 'd3.min.js');
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** JSON safe inside a <script> element (no "</script>" or "<!--" can close or confuse it). */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

/** What a chart page holds besides d3 and its script: the title, HTML before and after the charts, the chart specs. */
export interface ChartPage {
  readonly title: string;
  /** Trusted HTML (the caller escapes what it interpolates) between the title and the charts. */
  readonly beforeHtml: string;
  readonly afterHtml: string;
  readonly charts: readonly ChartSpec[];
}

/** A page as one HTML file: d3, the drawing script and the data inline; no network. */
export function chartPageHtml(page: ChartPage): string {
  const d3 = readFileSync(d3BundlePath(), 'utf8');
  const client = readFileSync(new URL('./client.js', import.meta.url), 'utf8');
  const errorsJs = readFileSync(new URL('./errors.js', import.meta.url), 'utf8');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(page.title)}</title>
<script>${errorsJs}</script>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 22px; } h2 { font-size: 16px; margin: 24px 0 4px; }
.chart-box { margin-bottom: 16px; }
svg.chart { background: #fff; border: 1px solid #ddd; max-width: 100%; height: auto; }
.axis-label { font-size: 12px; fill: #333; }
ul.legend { list-style: none; padding: 0; margin: 4px 0; font-size: 12px; columns: 2; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; }
table { border-collapse: collapse; font-size: 12px; } td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
.notes li { color: #555; }
</style>
</head>
<body>
<h1>${escapeHtml(page.title)}</h1>
${page.beforeHtml}
<div id="charts"></div>
${page.afterHtml}
<script id="report-data" type="application/json">${scriptJson({ charts: page.charts })}</script>
<script>${d3.replace(/<\/script/gi, '<\\/script')}</script>
<script>${client}</script>
</body>
</html>
`;
}

/** The sweep report as one HTML file. */
export function reportHtml(data: ReportData, plan: ChartPlan): string {
  const head = ['#', ...data.keys, 'throughput (tok/s)', 'TTFT p99 (ms)', 'ITL p99 (ms)', 'SLA attainment', 'KV util'];
  const pick = (s: Record<string, any>): string[] =>
    [s.throughput_output_tokens_per_s, s.ttft_ms?.p99, s.itl_ms?.p99, s.sla?.attainment, s.kv?.utilization_mean].map((v) => (v === null || v === undefined ? '' : String(v)));
  const tableRows = data.rows
    .slice(0, 200)
    .map((r) => `<tr>${[String(r.index), ...data.keys.map((k) => String(r.values[k])), ...pick(r.record.summary)].map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`)
    .join('\n');
  const notes = plan.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('\n');
  return chartPageHtml({
    title: 'Stratos sweep report',
    beforeHtml: `<p>${data.rows.length} of ${data.totalPoints} points finished. Swept keys: ${escapeHtml(data.keys.join(', ') || '(none)')}; varied: ${escapeHtml(data.varied.join(', ') || '(none)')}.
Metrics per point are in results.csv (${METRIC_COLUMNS.length} headline columns); latency CDFs come from every request of a point.</p>
<h2>Notes</h2>
<ul class="notes">
${notes}
</ul>`,
    afterHtml: `<h2>Points${data.rows.length > 200 ? ' (first 200)' : ''}</h2>
<table><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>
<tbody>
${tableRows}
</tbody></table>`,
    charts: plan.charts,
  });
}
