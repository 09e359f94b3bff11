// Why prefill steps are priced right in one run and 10% high in another: the H200's SM clock.
// Joins a clock log (nvidia-smi every 50 ms during engine runs, experiments/validate/clock-run.sh)
// with the runs' plan logs, prices every step with the simulator's calibrated cost model and the
// committed engine terms, and tabulates GPU time / price against the SM clock the step ran at.
// Usage: npx tsx experiments/validate/clocks.ts DIR [TERMS_REPORT_JSON]
//   DIR holds clocks.csv, validate-log.txt and logs/ (the validate logs of the clock run, unpacked
//   from the run's clock-out.tgz; committed, so CI recomputes the table);
//   writes DIR/clocks.md.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bucketRows } from '../../sim/cost/profile-model.js';
import { shapeOfPlan } from '../../sim/replica/step-shape.js';
import { costModelOf, readManifest } from './compare.js';
import { readPlanLog } from './plan-log.js';
import type { EngineTerms } from './step-cost.js';

interface ClockSample {
  readonly epochS: number;
  readonly smMhz: number;
  readonly powerW: number;
  /** The driver's software power cap was holding the clock down (null: the field was not logged). */
  readonly powerCapped: boolean | null;
}

/** nvidia-smi writes local time; the device runs in UTC, as the `date +%s` stamps of the log do. */
function readClocks(file: string): ClockSample[] {
  const lines = readFileSync(file, 'utf8').split('\n').slice(1);
  const out: ClockSample[] = [];
  for (const line of lines) {
    const f = line.split(',').map((x) => x.trim());
    if (f.length < 4) continue;
    const m = /^(\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{3})$/.exec(f[0]);
    if (!m) continue;
    const epochS = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], +m[7]) / 1000;
    out.push({ epochS, smMhz: parseFloat(f[1]), powerW: parseFloat(f[3]), powerCapped: f.length > 6 ? f[6] === 'Active' : null });
  }
  if (out.length === 0) throw new Error(`${file}: no clock samples`);
  return out;
}

/** "<epoch> [validate] NAME run 1/1: …": the epoch second each run finished. */
function readRunEnds(file: string): Map<string, number> {
  const ends = new Map<string, number>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\d+\.\d+) \[validate\] (\S+) run 1\/\d+:/.exec(line);
    if (m) ends.set(m[2], parseFloat(m[1]));
  }
  return ends;
}

function lowerBound(xs: readonly ClockSample[], t: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid].epochS < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const BIN_MHZ = 150;
const bins = (lo: number, hi: number): number[] => Array.from({ length: Math.floor((hi - lo) / BIN_MHZ) + 1 }, (_, i) => lo + i * BIN_MHZ);

/** Medians of engine GPU time / price by SM-clock bin, per workload and step kind. */
export interface ClockAnalysis {
  readonly binsMhz: readonly number[];
  readonly ratios: { workload: string; kind: 'prefill' | 'decode'; byBin: (number | null)[]; counts: number[] }[];
  readonly markdown: string;
}

export async function clockAnalysis(dir: string, termsFile: string): Promise<ClockAnalysis> {
  const clocks = readClocks(join(dir, 'clocks.csv'));
  const ends = readRunEnds(join(dir, 'validate-log.txt'));
  const terms = (JSON.parse(readFileSync(termsFile, 'utf8')) as { engineTerms: EngineTerms }).engineTerms;
  const logs = join(dir, 'logs');
  const manifest = readManifest(logs);
  const workloads = [manifest.capacity, ...manifest.workloads].filter((w): w is NonNullable<typeof w> => w !== null && ends.has(w.name));
  const clockBins = bins(1350, 1950);
  const rows: string[] = [];
  const summary: string[] = [];
  const ratios: ClockAnalysis['ratios'] = [];
  for (const w of workloads) {
    const { cost } = await costModelOf(w, manifest, logs, terms);
    const steps = readPlanLog(join(logs, w.name, 'run1', 'steps.jsonl.gz'));
    const lastEndUs = steps.reduce((a, s) => Math.max(a, s.endUs), 0);
    const endEpochS = ends.get(w.name)!;
    const slots = new Set<number>();
    const prefill = new Map<number, number[]>();
    const decode = new Map<number, number[]>();
    const runSamples = clocks.filter((c) => c.epochS >= endEpochS - lastEndUs / 1e6 && c.epochS <= endEpochS);
    for (const s of steps) {
      if (s.plan.items.length === 0 || s.gpuUs === null) continue;
      // The step's window on the clock log; ±25 ms for the 50 ms sampling.
      const t0 = endEpochS - (lastEndUs - s.startUs) / 1e6 - 0.025;
      const t1 = endEpochS - (lastEndUs - s.endUs) / 1e6 + 0.025;
      const i0 = lowerBound(clocks, t0);
      const i1 = lowerBound(clocks, t1);
      if (i1 <= i0) continue;
      let mhz = 0;
      for (let i = i0; i < i1; i++) mhz += clocks[i].smMhz;
      mhz /= i1 - i0;
      const ratio = s.gpuUs / (cost.stepUs(shapeOfPlan(s.plan, slots)) - cost.hostUs(s.plan.items.length));
      const tokens = s.plan.numPrefillTokens + s.plan.numDecodeTokens;
      const bin = clockBins.reduce((b, x) => (mhz >= x ? x : b), clockBins[0]);
      // Prefill-only steps of ≥ 512 rows: dense layers are compute-bound there.
      if (s.plan.numDecodeTokens === 0 && bucketRows(tokens, 'pow2') >= 512) (prefill.get(bin) ?? prefill.set(bin, []).get(bin)!).push(ratio);
      else if (s.plan.numPrefillTokens === 0) (decode.get(bin) ?? decode.set(bin, []).get(bin)!).push(ratio);
    }
    const cell = (m: Map<number, number[]>, b: number): string => {
      const xs = m.get(b) ?? [];
      return xs.length < 3 ? '·' : `${median(xs).toFixed(3)} (${xs.length})`;
    };
    for (const [kind, m] of [['prefill', prefill], ['decode', decode]] as const) {
      ratios.push({ workload: w.name, kind, byBin: clockBins.map((b) => ((m.get(b) ?? []).length < 3 ? null : median(m.get(b)!))), counts: clockBins.map((b) => (m.get(b) ?? []).length) });
    }
    rows.push(`| ${w.name} | prefill ≥ 512 rows | ${clockBins.map((b) => cell(prefill, b)).join(' | ')} |`);
    rows.push(`| ${w.name} | decode only | ${clockBins.map((b) => cell(decode, b)).join(' | ')} |`);
    const capped = runSamples.filter((c) => c.powerCapped === true).length;
    summary.push(`| ${w.name} | ${runSamples.length} | ${median(runSamples.map((c) => c.smMhz)).toFixed(0)} | ${Math.min(...runSamples.map((c) => c.smMhz)).toFixed(0)} | ${median(runSamples.map((c) => c.powerW)).toFixed(0)} | ${runSamples[0]?.powerCapped === null ? 'not logged' : `${((100 * capped) / runSamples.length).toFixed(0)}%`} |`);
  }
  const md = [
    '# Prefill pricing and the SM clock (h200)',
    '',
    `Recompute: \`npx tsx experiments/validate/clocks.ts ${dir} ${termsFile}\`. Runs: \`experiments/validate/clock-run.sh\` on the GPU machine (one engine run per workload, nvidia-smi every 50 ms).`,
    '',
    'Each run: SM clock and board power over the run, and the share of samples in which the driver\'s software power cap (700 W) held the clock down.',
    '',
    '| workload | samples | SM clock median MHz | min MHz | power median W | power-capped |',
    '|---|---|---|---|---|---|',
    ...summary,
    '',
    `Engine GPU time / simulator price per step (median, steps in brackets), by the SM clock averaged over the step (bins of ${BIN_MHZ} MHz, lower edge). The price uses the calibrated profile and the committed engine terms (${termsFile}).`,
    '',
    `| workload | steps | ${clockBins.map((b) => `${b}+ MHz`).join(' | ')} |`,
    `|---|---|${clockBins.map(() => '---|').join('')}`,
    ...rows,
    '',
  ].join('\n');
  return { binsMhz: clockBins, ratios, markdown: md };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dir = process.argv[2];
  if (dir === undefined || !existsSync(join(dir, 'clocks.csv'))) {
    process.stderr.write('usage: npx tsx experiments/validate/clocks.ts DIR [TERMS_REPORT_JSON]  (DIR with clocks.csv, validate-log.txt and logs/)\n');
    process.exit(2);
  }
  const { markdown } = await clockAnalysis(dir, process.argv[3] ?? 'experiments/validate/results/h200/report.json');
  writeFileSync(join(dir, 'clocks.md'), markdown);
  process.stdout.write(markdown);
}
