// Does the error budget's rest (the schedule's share) follow the priced error? Re-runs the simulator on
// three missed workloads with the forward overhead moved by a few steps of ±50-100 µs (all decode steps
// priced that much longer or shorter) and prints the ITL-mean budget each time: where the rest shrinks
// with the priced part, it is the priced error compounding through the schedule (a step priced short
// puts the next arrivals into different batches), not an error of its own.
//   npx tsx experiments/validate/knock-on.ts [LOGS_DIR]   (default: results/h200/logs; about 30 s)
import { compareWorkload, engineTermsOf, readManifest } from './compare.js';

const logsDir = process.argv[2] ?? 'experiments/validate/results/h200/logs';
const manifest = readManifest(logsDir);
const terms = await engineTermsOf(manifest, logsDir);
const cases: [string, number[]][] = [
  ['poisson-lognormal-7b-page16', [0, 90, 180, 270]],
  ['todo8-7b-continuous', [0, -50, -100, -150]],
  ['azure-conv-7b-1.20x', [0, 100, 200]],
];
const pts = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)}`;
console.log('ITL mean against engine run 1, in points: workload | forward overhead moved by | simulator error | decode GPU | prefill GPU | host | rest | error against the runs\' mean');
for (const [name, deltasUs] of cases) {
  const w = manifest.workloads.find((x) => x.name === name);
  if (w === undefined) throw new Error(`${logsDir}: no workload ${name}`);
  for (const d of deltasUs) {
    const c = await compareWorkload(w, manifest, logsDir, { ...terms, forwardOverheadUs: terms.forwardOverheadUs + d });
    const b = c.budget.itlMean;
    console.log(`${name} | ${d >= 0 ? '+' : ''}${d} us | ${pts(b.simError)} | ${pts(b.decodeGpu)} | ${pts(b.prefillGpu)} | ${pts(b.host)} | ${pts(b.schedule)} | ${pts(c.relError.itlMsMean)}`);
  }
}
