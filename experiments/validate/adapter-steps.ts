// Where the LoRA mix's prefill-step error comes from (issue 7, lora-mix-7b: prefill steps right on
// average but |error| p90 15.6%). Every prefill step of engine run 1 is priced twice as the report
// prices it (the power state following the engine's timeline): as logged, and with every adapter
// removed (the base forward's price). GPU time − base price is then the engine's measured cost of
// LoRA in that step, against the cost model's LoRA price (full − base). Steps are classed by the
// share of their tokens that carry an adapter: the cost model prices every token of a step with
// adapters as if it carried one (StepShape has no count of adapter tokens).
//   npx tsx experiments/validate/adapter-steps.ts [LOGS_DIR] [WORKLOAD]   (defaults: results/h200/logs lora-mix-7b)
import { join } from 'node:path';
import type { BatchPlan } from '../../engine/policy/index.js';
import { costModelOf, engineTermsOf, readManifest } from './compare.js';
import { readPlanLog } from './plan-log.js';
import { pricedSteps } from './step-cost.js';

const logsDir = process.argv[2] ?? 'experiments/validate/results/h200/logs';
const name = process.argv[3] ?? 'lora-mix-7b';
const manifest = readManifest(logsDir);
const workload = manifest.workloads.find((w) => w.name === name);
if (workload === undefined) throw new Error(`${logsDir}: no workload ${name} (have: ${manifest.workloads.map((w) => w.name).join(', ')})`);
const { cost } = await costModelOf(workload, manifest, logsDir, await engineTermsOf(manifest, logsDir));
const steps = readPlanLog(join(logsDir, name, 'run1', 'steps.jsonl.gz'));

// Two pricings as the report prices steps (each its own power state following every logged step in order).
const withoutAdapters = (p: BatchPlan): BatchPlan => ({ ...p, items: p.items.map((x) => ({ ...x, adapterSlot: -1 })) });
const pricedFull = pricedSteps(steps, cost);
const baseSteps = steps.map((s) => ({ ...s, plan: withoutAdapters(s.plan) }));
const pricedBase = pricedSteps(baseSteps, cost);
type Row = { step: number; tokens: number; adapterTokens: number; gpuMs: number; pricedMs: number; baseMs: number };
const rows: Row[] = [];
for (let i = 0; i < steps.length; i++) {
  const s = steps[i];
  if (s.plan.numPrefillTokens === 0 || s.gpuUs === null) continue;
  const host = cost.hostUs(s.plan.items.length);
  const full = pricedFull.get(s)! - host;
  const base = pricedBase.get(baseSteps[i])! - host;
  const tokens = s.plan.items.reduce((a, x) => a + x.numNewTokens, 0);
  const adapterTokens = s.plan.items.reduce((a, x) => a + (x.adapterSlot >= 0 ? x.numNewTokens : 0), 0);
  if (adapterTokens === 0) continue;
  rows.push({ step: i, tokens, adapterTokens, gpuMs: s.gpuUs / 1000, pricedMs: full / 1000, baseMs: base / 1000 });
}
const f = (x: number): string => x.toFixed(2);
console.log(`${name}, engine run 1: prefill steps with adapters (ms; LoRA measured = GPU − base price)`);
console.log('step | tokens | adapter tokens | GPU | priced | error | LoRA priced | LoRA measured');
for (const r of rows) console.log(`${r.step} | ${r.tokens} | ${r.adapterTokens} | ${f(r.gpuMs)} | ${f(r.pricedMs)} | ${(((r.pricedMs - r.gpuMs) / r.gpuMs) * 100).toFixed(1)}% | ${f(r.pricedMs - r.baseMs)} | ${f(r.gpuMs - r.baseMs)}`);
const classes: [string, (r: Row) => boolean][] = [
  ['every token on an adapter, < 1,024 tokens', (r) => r.adapterTokens === r.tokens && r.tokens < 1024],
  ['every token on an adapter, >= 1,024 tokens', (r) => r.adapterTokens === r.tokens && r.tokens >= 1024],
  ['adapter tokens >= half', (r) => r.adapterTokens < r.tokens && r.adapterTokens * 2 >= r.tokens],
  ['adapter tokens < half', (r) => r.adapterTokens * 2 < r.tokens],
];
console.log('\nclass | steps | mean error | LoRA priced mean | LoRA measured mean (ms)');
for (const [label, pick] of classes) {
  const xs = rows.filter(pick);
  if (xs.length === 0) continue;
  const mean = (g: (r: Row) => number): number => xs.reduce((a, r) => a + g(r), 0) / xs.length;
  console.log(`${label} | ${xs.length} | ${(mean((r) => (r.pricedMs - r.gpuMs) / r.gpuMs) * 100).toFixed(1)}% | ${f(mean((r) => r.pricedMs - r.baseMs))} | ${f(mean((r) => r.gpuMs - r.baseMs))}`);
}
