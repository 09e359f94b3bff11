// Each missed target of a workload in one line: by how much, and its cause as the logs split it (the
// error budget's terms for the means, the per-step error spread for tails). report.md and report.html
// both list them.
import { pct, type TargetKey, type WorkloadComparison } from './compare.js';

export const TARGET_LABEL: Record<TargetKey, string> = {
  throughput: 'throughput', itlMean: 'ITL mean', itlP99: 'ITL p99', e2eMean: 'E2E mean', e2eP99: 'E2E p99',
  ttftMean: 'TTFT mean', ttftP99: 'TTFT p99', preemptions: 'preemptions',
};

/** |x| as a percentage with one decimal. */
export const abs1 = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : String(x));

const BUDGETED: Partial<Record<TargetKey, keyof WorkloadComparison['budget']>> = { ttftMean: 'ttftMean', itlMean: 'itlMean', e2eMean: 'e2eMean' };

/** One line per missed target of workload w: by how much, and the error budget's split where it has one. */
export function missLines(w: WorkloadComparison): string[] {
  const lines: string[] = [];
  const pts = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}`;
  for (const t of w.targets) {
    if (!t.applies || t.met) continue;
    // Two decimals: a miss by a hair would read as its own target with one.
    const head = `- **${w.name}**, ${TARGET_LABEL[t.target]}: ${(t.error * 100).toFixed(2)}% against ${abs1(t.limit)} (engine spread ±${abs1(t.engineSpread)})`;
    const key = BUDGETED[t.target];
    if (key !== undefined) {
      const b = w.budget[key];
      const terms: [string, number][] = [['decode GPU', b.decodeGpu], ['prefill GPU', b.prefillGpu], ['host', b.host], ['schedule', b.schedule]];
      const largest = terms.reduce((a, x) => (Math.abs(x[1]) > Math.abs(a[1]) ? x : a));
      lines.push(`${head}: ${pct(b.simError)} against run 1 = ${terms.map(([n, x]) => `${n} ${pts(x)}`).join(', ')}; largest: ${largest[0]}.`);
    } else if (t.target === 'throughput') {
      lines.push(`${head}: run 1's step periods priced ${pct(w.stepCost.period.totalSigned)} in total.`);
    } else {
      const s = w.stepCost;
      lines.push(`${head}: a tail, which the budget of means does not split; per-step price errors |p90| ${abs1(s.gpuDecode.absP90)} on decode steps, ${abs1(s.gpuPrefill.absP90)} on steps with prefill.`);
    }
  }
  return lines;
}
