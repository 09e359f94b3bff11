// Writes raw samples as CSV, one row as soon as it is measured (a run cut short keeps its rows).
// The reader is sim/cost/samples.ts; the first line carries the provenance as JSON.
import { appendFileSync, writeFileSync } from 'node:fs';
import type { Case } from './grids.js';
import type { TimingStats } from './harness.js';

export const SAMPLES_MARKER = '# stratos-calibration-samples ';
export const SAMPLES_END_MARKER = '# stratos-calibration-end ';
export const SAMPLE_COLUMNS = ['family', 'config', 'point', 'set', 'median_us', 'p10_us', 'p90_us', 'min_us', 'max_us', 'reps', 'calls_per_rep'] as const;

export function keyText(values: Readonly<Record<string, number | string>>): string {
  return Object.entries(values).map(([k, v]) => `${k}=${v}`).join(';');
}

const fmt = (us: number): string => (us >= 100 ? us.toFixed(2) : us.toPrecision(5));

export function sampleRow(c: Case, t: TimingStats): string {
  return [c.family, keyText(c.config), keyText(c.point), c.set, fmt(t.medianUs), fmt(t.p10Us), fmt(t.p90Us), fmt(t.minUs), fmt(t.maxUs), t.reps, t.callsPerRep].join(',');
}

export class SamplesWriter {
  constructor(readonly path: string, provenance: Record<string, unknown>) {
    writeFileSync(path, `${SAMPLES_MARKER}${JSON.stringify(provenance)}\n${SAMPLE_COLUMNS.join(',')}\n`);
  }
  add(c: Case, t: TimingStats): void {
    appendFileSync(this.path, sampleRow(c, t) + '\n');
  }
  end(summary: Record<string, unknown>): void {
    appendFileSync(this.path, `${SAMPLES_END_MARKER}${JSON.stringify(summary)}\n`);
  }
}
