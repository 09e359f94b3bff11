/**
 * What the cost model prices: one step's composition, independent of which sequences ran it. A
 * multi-step decode run is priced one step at a time with the same shape a single step would
 * have, so lazy and step-by-step simulation agree to the microsecond.
 */
export interface StepShape {
  readonly numSeqs: number;
  readonly numPrefillTokens: number;
  readonly numDecodeTokens: number;
  /** Σ contextTokens over items: KV read by attention before this step's tokens. */
  readonly contextTokensSum: number;
  /** Σ numNewTokens × (contextTokens + (numNewTokens + 1) / 2) over prefill items: causal attention pairs. */
  readonly prefillAttentionPairs: number;
  /** Tokens sampled at the end of the step. */
  readonly numSampled: number;
  readonly numLoraLoads: number;
  /** Distinct adapters in the batch (each adds a LoRA matmul pass). */
  readonly numAdapters: number;
  /** Σ contextTokens over decode items only (the profile model prices decode attention with it). */
  readonly decodeContextTokensSum?: number;
  /** Prefill items in the step. */
  readonly numPrefillSeqs?: number;
  /** The prefill item with the most keys (cached + new): its new and cached tokens (its kernel blocks are the critical path). */
  readonly prefillLongestNewTokens?: number;
  readonly prefillLongestContextTokens?: number;
}

import type { PowerState } from './power.js';

export interface CostModel {
  readonly name: string;
  /** "uncalibrated" until a measured profile backs the model; copied into every output. */
  readonly calibration: 'uncalibrated' | 'calibrated';
  /** Duration of one step in integer microseconds (>= 1). Pure: same shape, same answer. */
  stepUs(shape: StepShape): number;
  /**
   * The host part of a step of `numSeqs` sequences (scheduling, input preparation, launches):
   * included in stepUs, not GPU time. Validation takes it off a price to compare with GPU events.
   */
  hostUs(numSeqs: number): number;
  /**
   * A fresh power state for one GPU (replica) when the model prices the GPU's power management
   * (sim/cost/power.ts): steps with prefill tokens then go through it in start order. Absent or
   * null: every step costs stepUs.
   */
  newPowerState?(): PowerState | null;
}
