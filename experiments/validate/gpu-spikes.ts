// Decode steps whose GPU time runs far past their price (> 1.2×), per workload and engine run: how
// many, and what they add to decode GPU time. Only the LoRA mix has them (2.7% and 4.7% of its decode
// steps, 0.7% and 1.3% of its decode GPU time): a few a second run 1.5-4.7 ms over their price with the
// same plan as their neighbours. The simulator prices the mean step; these are in no term.
//   npx tsx experiments/validate/gpu-spikes.ts [LOGS_DIR]   (default: results/h200/logs; 5 s)
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { costModelOf, engineTermsOf, readManifest } from './compare.js';
import { readPlanLog } from './plan-log.js';
import { busySteps, pricedSteps } from './step-cost.js';

const logsDir = process.argv[2] ?? 'experiments/validate/results/h200/logs';
const manifest = readManifest(logsDir);
const terms = await engineTermsOf(manifest, logsDir);
const pct = (x: number, digits = 1): string => `${(x * 100).toFixed(digits)}%`;
console.log('workload run | decode steps | GPU > 1.2x price | their excess over price, of all decode GPU time | mean decode error without them');
for (const w of [manifest.capacity!, ...manifest.workloads]) {
  const { cost } = await costModelOf(w, manifest, logsDir, terms);
  for (let k = 1; k <= 2; k++) {
    const file = join(logsDir, w.name, `run${k}`, 'steps.jsonl.gz');
    if (!existsSync(file)) continue; // the capacity run runs once
    const steps = readPlanLog(file);
    const priced = pricedSteps(steps, cost);
    const decode = busySteps(steps)
      .filter(({ step }) => step.plan.numPrefillTokens === 0)
      .map(({ step }) => ({ gpuUs: step.gpuUs!, priceUs: priced.get(step)! - cost.hostUs(step.plan.items.length) }));
    const spikes = decode.filter((d) => d.gpuUs > 1.2 * d.priceUs);
    const rest = decode.filter((d) => d.gpuUs <= 1.2 * d.priceUs);
    const excess = spikes.reduce((a, d) => a + d.gpuUs - d.priceUs, 0) / decode.reduce((a, d) => a + d.gpuUs, 0);
    const error = rest.reduce((a, d) => a + (d.priceUs - d.gpuUs) / d.gpuUs, 0) / Math.max(1, rest.length);
    console.log(`${w.name} run ${k} | ${decode.length} | ${pct(spikes.length / decode.length)} | ${pct(excess, 2)} | ${error >= 0 ? '+' : ''}${pct(error, 2)}`);
  }
}
