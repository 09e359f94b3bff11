// Each missed target of a workload in one line: by how much, and its cause as the logs split it (the
// error budget's terms for the means; for a p99, run 1's own intervals or requests priced step by step
// against their measured p99). report.md and report.html both list them.
import { pct, points, type TargetCheck, type TargetKey, type WorkloadComparison } from './compare.js';

export const TARGET_LABEL: Record<TargetKey, string> = {
  throughput: 'throughput', itlMean: 'ITL mean', itlP99: 'ITL p99', e2eMean: 'E2E mean', e2eP99: 'E2E p99',
  ttftMean: 'TTFT mean', ttftP99: 'TTFT p99', preemptions: 'preemptions',
};

/** Workload w's check of target `key`, and its mark: ✓ met, ✗ missed, none where the target does not apply. */
export function targetOf(w: WorkloadComparison, key: TargetKey): { readonly t: TargetCheck; readonly mark: string } {
  const t = w.targets.find((x) => x.target === key)!;
  return { t, mark: !t.applies ? '' : t.met ? ' ✓' : ' ✗' };
}

/** |x| as a percentage with one decimal. */
export const abs1 = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : String(x));

const MEANS: Partial<Record<TargetKey, 'ttftMean' | 'itlMean' | 'e2eMean'>> = { ttftMean: 'ttftMean', itlMean: 'itlMean', e2eMean: 'e2eMean' };
const TAILS: Partial<Record<TargetKey, 'ttftP99' | 'itlP99' | 'e2eP99'>> = { ttftP99: 'ttftP99', itlP99: 'itlP99', e2eP99: 'e2eP99' };

/** One line per missed target of workload w: by how much, and the error budget's split (means) or the priced tail (p99s). */
export function missLines(w: WorkloadComparison): string[] {
  const lines: string[] = [];
  for (const t of w.targets) {
    if (!t.applies || t.met) continue;
    // Two decimals: a miss by a hair would read as its own target with one.
    const head = `- **${w.name}**, ${TARGET_LABEL[t.target]}: ${(t.error * 100).toFixed(2)}% against ${abs1(t.limit)} (engine spread ±${abs1(t.engineSpread)})`;
    const mean = MEANS[t.target];
    const tail = TAILS[t.target];
    if (mean !== undefined) {
      const b = w.budget[mean];
      const terms: [string, number][] = [['decode GPU', b.decodeGpu], ['prefill GPU', b.prefillGpu], ['host', b.host], ['schedule', b.schedule]];
      const largest = terms.reduce((a, x) => (Math.abs(x[1]) > Math.abs(a[1]) ? x : a));
      lines.push(`${head}: ${pct(b.simError)} against run 1 = ${terms.map(([n, x]) => `${n} ${points(x)}`).join(', ')}; largest: ${largest[0]}.`);
    } else if (t.target === 'throughput') {
      lines.push(`${head}: run 1's step periods priced ${pct(w.stepCost.period.totalSigned)} in total.`);
    } else if (tail !== undefined) {
      const b = w.budget[tail];
      const larger = Math.abs(b.priced) >= Math.abs(b.schedule) ? 'the prices' : 'the schedule';
      lines.push(`${head}: ${pct(b.simError)} against run 1; run 1's own ${t.target === 'itlP99' ? 'intervals' : 'requests'} priced step by step put their p99 ${pct(b.priced)} from the measured one, the schedule the rest (${pct(b.schedule)}); larger: ${larger}.`);
    } else {
      lines.push(`${head}.`);
    }
  }
  return lines;
}
