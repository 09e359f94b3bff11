// The prefill steps of engine run 1 of every workload, against two prices: the profile's hot price (the
// calibration's state) and the price the report uses (the power model: compute faster while the GPU is
// cool). Issue 7's 13B miss in one table: a 13B 512-token step runs slower than even its hot price,
// a 7B one as the power model prices it. Steps with adapters are left out (adapter-steps.ts).
//   npx tsx experiments/validate/prefill-steps.ts [LOGS_DIR]   (default: results/h200/logs)
import { join } from 'node:path';
import { shapeOfPlan } from '../../sim/replica/step-shape.js';
import { costModelOf, engineTermsOf, readManifest } from './compare.js';
import { readPlanLog } from './plan-log.js';
import { pricedSteps } from './step-cost.js';

const logsDir = process.argv[2] ?? 'experiments/validate/results/h200/logs';
const manifest = readManifest(logsDir);
const terms = await engineTermsOf(manifest, logsDir);
const ms = (us: number): string => (us / 1000).toFixed(2);
console.log('Prefill steps without adapters, engine run 1, means (ms): GPU events | hot price | power-model price (the report\'s) | GPU over hot');
console.log('workload | model | steps | prefill tokens | GPU | hot | power | GPU / hot');
for (const w of manifest.workloads) {
  const { config, cost } = await costModelOf(w, manifest, logsDir, terms);
  const steps = readPlanLog(join(logsDir, w.name, 'run1', 'steps.jsonl.gz'));
  // The report's prices: the power state following every logged step in order.
  const priced = pricedSteps(steps, cost);
  let n = 0;
  let tokens = 0;
  let gpu = 0;
  let hot = 0;
  let cool = 0;
  for (const s of steps) {
    if (s.plan.numPrefillTokens === 0 || s.gpuUs === null || s.plan.items.some((x) => x.adapterSlot >= 0)) continue;
    const host = cost.hostUs(s.plan.items.length);
    n++;
    tokens += s.plan.numPrefillTokens;
    gpu += s.gpuUs;
    hot += cost.stepUs(shapeOfPlan(s.plan, new Set())) - host;
    cool += priced.get(s)! - host;
  }
  if (n === 0) continue;
  console.log(`${w.name} | ${config.model} | ${n} | ${Math.round(tokens / n)} | ${ms(gpu / n)} | ${ms(hot / n)} | ${ms(cool / n)} | ${(gpu / hot).toFixed(3)}`);
}
