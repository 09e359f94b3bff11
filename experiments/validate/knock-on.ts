// Does the error budget's rest (the schedule's share) follow the priced error? Re-runs the simulator on
// three missed workloads with every decode-only step's GPU time priced a few percent longer or shorter
// (a wrapper around the report's cost model, used by the simulation and the step pricing alike) and
// prints the ITL-mean budget each time: where the rest shrinks with the priced part, it is the priced
// error compounding through the schedule (a step priced short puts the next arrivals into different
// batches), not an error of its own. A diagnostic, not a fit: the report's prices are untouched.
//   npx tsx experiments/validate/knock-on.ts [LOGS_DIR]   (default: results/h200/logs; about 30 s)
import type { CostModel, StepShape } from '../../sim/cost/cost-model.js';
import { compareWorkload, engineTermsOf, points, readManifest } from './compare.js';

/** The inner model with decode-only steps' GPU time (price − host) times `scale`; no decode-run fast path. */
class DecodeScaled implements CostModel {
  readonly name: string;
  readonly calibration: CostModel['calibration'];
  readonly newPowerState?: CostModel['newPowerState'];

  constructor(private readonly inner: CostModel, private readonly scale: number) {
    this.name = `${inner.name}+decode×${scale}`;
    this.calibration = inner.calibration;
    if (inner.newPowerState !== undefined) this.newPowerState = () => inner.newPowerState!();
  }

  stepUs(shape: StepShape): number {
    const us = this.inner.stepUs(shape);
    if (shape.numPrefillTokens > 0 || shape.numDecodeTokens === 0) return us;
    const hostUs = this.inner.hostUs(shape.numSeqs);
    return Math.max(1, Math.round(hostUs + (us - hostUs) * this.scale));
  }

  hostUs(numSeqs: number): number {
    return this.inner.hostUs(numSeqs);
  }
}

const logsDir = process.argv[2] ?? 'experiments/validate/results/h200/logs';
const manifest = readManifest(logsDir);
const terms = await engineTermsOf(manifest, logsDir);
const cases: [string, number[]][] = [
  ['poisson-lognormal-7b-page16', [1, 1.01, 1.02, 1.03]],
  ['todo8-7b-continuous', [1, 0.995, 0.99, 0.985]],
  ['azure-conv-7b-1.20x', [1, 1.01, 1.02, 1.03]],
];
const pts = (x: number): string => points(x, 2);
console.log('ITL mean against engine run 1, in points: workload | decode GPU priced × | simulator error | decode GPU | prefill GPU | host | rest | error against the runs\' mean');
for (const [name, scales] of cases) {
  const w = manifest.workloads.find((x) => x.name === name);
  if (w === undefined) throw new Error(`${logsDir}: no workload ${name}`);
  for (const scale of scales) {
    const c = await compareWorkload(w, manifest, logsDir, terms, scale === 1 ? undefined : (inner) => new DecodeScaled(inner, scale));
    const b = c.budget.itlMean;
    console.log(`${name} | ×${scale} | ${pts(b.simError)} | ${pts(b.decodeGpu)} | ${pts(b.prefillGpu)} | ${pts(b.host)} | ${pts(b.schedule)} | ${pts(c.relError.itlMsMean)}`);
  }
}
