// Prices run9's prefill forwards (one sequence, no cached tokens) with a calibration profile, op by
// op and whole, next to what run9 measured: where a prefill step's price goes wrong.
// Usage: npx tsx experiments/validate/prefill-ops.ts GPU PROFILE RUN9_JSON
import { readFileSync } from 'node:fs';
import { GPUS, MODELS, type GpuName } from '../../sim/catalog.js';
import { loadProfile } from '../../sim/cost/profile.js';
import { DEFAULT_PROFILE_OPTIONS, ProfileCostModel } from '../../sim/cost/profile-model.js';
import { shapeOfPlan } from '../../sim/replica/step-shape.js';
import type { BatchPlan } from '../../engine/policy/index.js';

/** Estimated cost of the event pair around each op (run7's profile: event-timed sums exceed graph times by ~2 us per op). */
const EVENT_PAIR_US = 2;

const [gpu, profileFile, runFile] = process.argv.slice(2);
if (runFile === undefined) {
  process.stderr.write('usage: npx tsx experiments/validate/prefill-ops.ts GPU PROFILE RUN9_JSON\n');
  process.exit(2);
}
const profile = loadProfile(profileFile);
const run = JSON.parse(readFileSync(runFile, 'utf8')) as Record<string, Record<string, { ops: Record<string, { launches: number; us_total: number }>; forward_gpu_ms_cool_median: number; forward_gpu_ms_hot_median: number }>>;
const prefillPlan = (tokens: number): BatchPlan => ({
  stepIndex: 0, numSteps: 1, items: [{ seqId: 0, contextTokens: 0, numNewTokens: tokens, isPrefill: true, samples: true, adapterSlot: -1 }],
  numPrefillTokens: tokens, numDecodeTokens: 0, preempted: [], loraLoads: [], loraEvictions: [], blockCopies: [], kvBlocksUsedPerStep: [0],
});
const out: string[] = [`Profile ${profile.name} on ${gpu}; measured: ${runFile}. Op rows: price, measured (event pairs less ${EVENT_PAIR_US} us each), measured / price.`];
for (const name of ['llama2-7b', 'llama2-13b'] as const) {
  // The engine's own layout: rows padded to powers of two, q/k/v as three GEMMs; no host or launch-gap terms.
  const cost = new ProfileCostModel({ model: MODELS[name], gpu: GPUS[gpu as GpuName], tp: 1, weightDtype: 'bf16', kvDtype: 'bf16' }, profile,
    { ...DEFAULT_PROFILE_OPTIONS, samplingMethod: 'greedy', hostOverheadUs: 0, rowBuckets: 'pow2', qkvFused: false, power: false });
  for (const [key, r] of Object.entries(run[name] ?? {})) {
    const tokens = Number(key.replace('tokens', ''));
    const shape = shapeOfPlan(prefillPlan(tokens), new Set());
    const measured = (label: string): number => r.ops[label].us_total - EVENT_PAIR_US * r.ops[label].launches;
    // The engine's profiler names attention by its kernel ('prefill').
    const rows = cost.layerOpsUs(shape).map(({ op, us }): [string, number, number] => (op === 'attention' ? ['prefill attention', us, measured('prefill')] : [op, us, measured(op)]));
    const stepMs = cost.stepUs(shape) / 1000;
    out.push('', `${name}, ${tokens} tokens: whole forward priced ${stepMs.toFixed(2)} ms (hot); measured cool ${r.forward_gpu_ms_cool_median.toFixed(2)} ms (${(r.forward_gpu_ms_cool_median / stepMs).toFixed(3)}), hot ${r.forward_gpu_ms_hot_median.toFixed(2)} ms (${(r.forward_gpu_ms_hot_median / stepMs).toFixed(3)})`);
    out.push('', '| op | price us | measured us | measured / price |', '|---|---|---|---|');
    let sumPrice = 0;
    let sumMeasured = 0;
    for (const [label, price, us] of rows) {
      sumPrice += price;
      sumMeasured += us;
      out.push(`| ${label} | ${price.toFixed(0)} | ${us.toFixed(0)} | ${(us / price).toFixed(3)} |`);
    }
    out.push(`| all ops | ${sumPrice.toFixed(0)} | ${sumMeasured.toFixed(0)} | ${(sumMeasured / sumPrice).toFixed(3)} |`);
  }
}
process.stdout.write(out.join('\n') + '\n');
