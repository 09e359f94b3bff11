import type { BatchPlan } from '../../engine/policy/index.js';
import type { CostModel, StepShape } from '../cost/cost-model.js';
import type { PowerState } from '../cost/power.js';

/** The shape of a single-step plan (numSteps = 1), read from its items. */
export function shapeOfPlan(plan: BatchPlan, adapterSlots: Set<number>): StepShape {
  let contextTokensSum = 0;
  let prefillAttentionPairs = 0;
  let numSampled = 0;
  let decodeContextTokensSum = 0;
  let numPrefillSeqs = 0;
  let longestKvTokens = 0;
  let prefillLongestNewTokens = 0;
  let prefillLongestContextTokens = 0;
  adapterSlots.clear();
  for (const item of plan.items) {
    contextTokensSum += item.contextTokens;
    if (item.isPrefill) {
      numPrefillSeqs++;
      const pairs = (item.numNewTokens * (2 * item.contextTokens + item.numNewTokens + 1)) / 2;
      prefillAttentionPairs += pairs;
      if (item.contextTokens + item.numNewTokens > longestKvTokens) {
        longestKvTokens = item.contextTokens + item.numNewTokens;
        prefillLongestNewTokens = item.numNewTokens;
        prefillLongestContextTokens = item.contextTokens;
      }
    } else decodeContextTokensSum += item.contextTokens;
    if (item.samples) numSampled++;
    if (item.adapterSlot >= 0) adapterSlots.add(item.adapterSlot);
  }
  return {
    numSeqs: plan.items.length,
    numPrefillTokens: plan.numPrefillTokens,
    numDecodeTokens: plan.numDecodeTokens,
    contextTokensSum,
    prefillAttentionPairs,
    numSampled,
    numLoraLoads: plan.loraLoads.length,
    numAdapters: adapterSlots.size,
    decodeContextTokensSum,
    numPrefillSeqs,
    prefillLongestNewTokens,
    prefillLongestContextTokens,
  };
}

/**
 * Step `i` of a steady decode run over `numSeqs` sequences whose contexts sum to `contextTokens0`
 * at the run's start: exactly the shape the same step would have if planned on its own.
 */
export function decodeRunStepShape(numSeqs: number, contextTokens0: number, numAdapters: number, i: number): StepShape {
  return {
    numSeqs,
    numPrefillTokens: 0,
    numDecodeTokens: numSeqs,
    contextTokensSum: contextTokens0 + i * numSeqs,
    prefillAttentionPairs: 0,
    numSampled: numSeqs,
    numLoraLoads: 0,
    numAdapters,
    decodeContextTokensSum: contextTokens0 + i * numSeqs,
    numPrefillSeqs: 0,
  };
}

/**
 * How long a single-step plan that starts at `startUs` runs, as the replica prices it (an empty
 * plan takes no time): its price, re-priced by the GPU's power state when it has prefill tokens
 * (decode-only plans are noted there as work that heats the GPU).
 * The engine's fake runner uses it too, so both runners price a plan the same way.
 */
export function planDurationUs(cost: CostModel, plan: BatchPlan, adapterSlots: Set<number>, startUs: number, power: PowerState | null): number {
  if (plan.items.length === 0) return 0;
  const shape = shapeOfPlan(plan, adapterSlots);
  const priceUs = cost.stepUs(shape);
  if (power === null) return priceUs;
  if (plan.numPrefillTokens > 0) return power.prefillStepUs(startUs, priceUs, shape.numSeqs, plan.numPrefillTokens + plan.numDecodeTokens);
  power.decodeWork(startUs, priceUs, shape.numSeqs);
  return priceUs;
}
