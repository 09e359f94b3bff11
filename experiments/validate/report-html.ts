// report.html: the validation report's evidence as charts (d3, one self-contained file like the sweep
// report): per workload, KV blocks in use over time and the per-request TTFT, ITL (TPOT) and E2E
// distributions, the simulator's next to each engine run's; above them the targets table and every
// miss with its cause, as in report.md.
import { chartPageHtml, escapeHtml } from '../report/html.js';
import type { ChartSpec } from '../report/charts.js';
import { TARGETS, type Comparison, type Curve, type TargetKey, type WorkloadComparison } from './compare.js';
import { missLines, TARGET_LABEL, targetOf } from './misses.js';

function seriesOf(sim: Curve, engine: readonly Curve[]): { name: string; points: [number, number][] }[] {
  return [{ name: 'simulator', points: sim }, ...engine.map((points, i) => ({ name: `engine run ${i + 1}`, points }))];
}

function workloadCharts(w: WorkloadComparison, index: number): ChartSpec[] {
  const c = w.curves;
  const id = (what: string): string => `${what}-${index}`;
  return [
    { kind: 'line', id: id('kv'), title: `${w.name}: KV blocks in use`, xLabel: 'time (s)', yLabel: 'KV blocks in use', series: seriesOf(c.kvBlocks.sim, c.kvBlocks.engine) },
    { kind: 'line', id: id('ttft'), title: `${w.name}: TTFT per request (CDF)`, xLabel: 'TTFT (ms, log)', yLabel: 'share of requests', xLog: true, series: seriesOf(c.ttftMs.sim, c.ttftMs.engine) },
    { kind: 'line', id: id('tpot'), title: `${w.name}: mean ITL per request (CDF)`, xLabel: 'time per output token (ms)', yLabel: 'share of requests', series: seriesOf(c.tpotMs.sim, c.tpotMs.engine) },
    { kind: 'line', id: id('e2e'), title: `${w.name}: E2E latency per request (CDF)`, xLabel: 'E2E (ms)', yLabel: 'share of requests', series: seriesOf(c.e2eMs.sim, c.e2eMs.engine) },
  ];
}

/** Inline markdown of the miss lines (**bold** only) as HTML. */
const inlineHtml = (md: string): string => escapeHtml(md).replace(/\*\*([^*]+)\*\*/g, '<b>$1</b>');

export function reportHtml(c: Comparison, command: string): string {
  const keys = Object.keys(TARGETS) as TargetKey[];
  const cell = (w: WorkloadComparison, key: TargetKey): string => {
    const { t, mark } = targetOf(w, key);
    return `<td${t.applies && !t.met ? ' style="color:#b00"' : ''}>${(t.error * 100).toFixed(1)}%${mark}</td>`;
  };
  const rows = c.workloads.map((w) => `<tr><td style="text-align:left">${escapeHtml(w.name)}</td>${keys.map((k) => cell(w, k)).join('')}</tr>`).join('\n');
  const misses = c.workloads.flatMap(missLines).map((l) => `<li>${inlineHtml(l.replace(/^- /, ''))}</li>`).join('\n');
  const beforeHtml = `<p>Recompute: <code>${escapeHtml(command)}</code> (also writes report.md and report.json). GPU: ${escapeHtml(c.gpu)}; cost model <code>${escapeHtml(c.costModel)}</code>; ${c.workloads.length} workloads.</p>
<h2>Targets</h2>
<p>|simulator − engine mean| / engine mean; ✓/✗ against the target where it applies (TTFT at 0.85× load).</p>
<table><thead><tr><th>workload</th>${keys.map((k) => `<th>${escapeHtml(TARGET_LABEL[k])} (≤ ${(TARGETS[k] * 100).toFixed(0)}%)</th>`).join('')}</tr></thead>
<tbody>
${rows}
</tbody></table>
${misses.length > 0 ? `<h2>Misses and their causes</h2>\n<ul class="notes">\n${misses}\n</ul>` : ''}
<h2>Per workload</h2>
<p>The simulator's curves beside each engine run's: KV blocks in use over time (sampled at ${c.workloads[0]?.curves.kvBlocks.sim.length ?? 0} times), and the distributions of per-request TTFT, mean ITL and E2E.</p>`;
  return chartPageHtml({ title: `Simulator vs real engine (${c.gpu})`, beforeHtml, afterHtml: '', charts: c.workloads.flatMap(workloadCharts) });
}
