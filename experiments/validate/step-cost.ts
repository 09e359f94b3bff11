// Step-level evidence: every plan the engine ran, priced by the simulator's cost model, against
// the engine's GPU time (the cost model's own term) and against the step's whole period (GPU plus
// host). And the engine's own cost terms (row padding, launch gaps, host time per step),
// calibrated from one plan log.
import type { CostModel } from '../../sim/cost/cost-model.js';
import type { RowBuckets } from '../../sim/cost/profile-model.js';
import { planDurationUs, shapeOfPlan } from '../../sim/replica/step-shape.js';
import type { LoggedStep } from './plan-log.js';

/** The engine's own terms of the cost model, calibrated on one plan log (the capacity run). */
export interface EngineTerms {
  /** The engine pads token rows to its GEMM buckets (a fact of its code, not fitted). */
  readonly rowBuckets: RowBuckets;
  /** The engine runs q, k and v as three GEMMs (a fact of its code). */
  readonly qkvFused: boolean;
  /**
   * GPU time beyond the kernels the profile prices, fitted as forwardOverheadUs + sampledRowOverheadUs
   * × rows by least squares on the decode-only steps (prefill steps carry the prefill pricing's own
   * error, reported per workload instead), µs.
   */
  readonly forwardOverheadUs: number;
  readonly sampledRowOverheadUs: number;
  /** Median |residual| of the decode steps after the fit, µs. */
  readonly forwardResidualAbsMedianUs: number;
  /**
   * Host time per step (period − GPU time) as hostOverheadUs + hostPerSeqUs × sequences in the
   * step, by least squares over the busy steps with the top 1% (stalls) trimmed, µs. The engine's
   * host work per step (schedule, per-sequence input arrays, bookkeeping) grows with the batch: a
   * constant fitted on the capacity run, whose batches are large, over-priced the small batches of
   * moderate load by 2-4x.
   */
  readonly hostOverheadUs: number;
  readonly hostPerSeqUs: number;
  readonly hostMedianUs: number;
  readonly steps: number;
}

export interface ErrorStats {
  readonly steps: number;
  /** Mean of (predicted − measured) / measured. */
  readonly meanSigned: number;
  readonly absP50: number;
  readonly absP90: number;
  /** Σ predicted / Σ measured − 1: the error on total time, what throughput feels. */
  readonly totalSigned: number;
}

export interface StepCostErrors {
  /** Cost model without its host term vs GPU events: decode-only steps. */
  readonly gpuDecode: ErrorStats;
  /** … steps with a prefill chunk. */
  readonly gpuPrefill: ErrorStats;
  /** Whole step (cost model with host overhead) vs the engine's step period (start to next start), busy steps. */
  readonly period: ErrorStats;
}

/**
 * Whether step i is followed by idle: the last step (no next start, no period), or more than 5 ms
 * between its end and the next start (the engine slept, not host work).
 */
export function idleAfter(steps: readonly LoggedStep[], i: number): boolean {
  return i + 1 >= steps.length || steps[i + 1].startUs - steps[i].endUs > 5000;
}

/** Steps followed by another step with no idle between (the engine did not sleep). */
export function busySteps(steps: readonly LoggedStep[]): { step: LoggedStep; periodUs: number }[] {
  const out: { step: LoggedStep; periodUs: number }[] = [];
  for (let i = 0; i + 1 < steps.length; i++) {
    const s = steps[i];
    if (s.plan.items.length === 0 || s.gpuUs === null || idleAfter(steps, i)) continue;
    out.push({ step: s, periodUs: steps[i + 1].startUs - s.startUs });
  }
  return out;
}

/**
 * Fits the engine's terms on a plan log: `bare` is the cost model with the engine's row buckets
 * and no host or forward overhead, so GPU time − bare price is the forward's unpriced time.
 */
export function fitEngineTerms(steps: readonly LoggedStep[], bare: CostModel, rowBuckets: RowBuckets, qkvFused: boolean): EngineTerms {
  const busy = busySteps(steps);
  if (busy.length < 20) throw new Error(`engine terms: only ${busy.length} busy steps with GPU times in the plan log (need 20)`);
  const slots = new Set<number>();
  const decode = busy.filter(({ step }) => step.plan.numPrefillTokens === 0);
  if (decode.length < 20) throw new Error(`engine terms: only ${decode.length} decode-only steps in the plan log (need 20)`);
  // GPU time no priced kernel covers, per decode step (rows = sequences).
  const unpriced = decode.map(({ step }) => ({ x: step.plan.items.length, y: step.gpuUs! - bare.stepUs(shapeOfPlan(step.plan, slots)), w: 1 / step.gpuUs! ** 2 }));
  const fwd = leastSquares(unpriced);
  const forwardOverheadUs = Math.max(0, Math.round(fwd.intercept));
  const sampledRowOverheadUs = Math.max(0, Math.round(fwd.slope * 100) / 100);
  const after = unpriced.map((p) => Math.abs(p.y - forwardOverheadUs - sampledRowOverheadUs * p.x)).sort((a, b) => a - b);
  const rows = busy.map(({ step, periodUs }) => ({ x: step.plan.items.length, y: periodUs - step.gpuUs! }));
  const host = rows.map((r) => r.y).sort((a, b) => a - b);
  // Trim the top 1% of host times (stalls: the collector, the OS), ties kept in step order.
  const limit = host[Math.floor(host.length * 0.99) - 1];
  const hostLine = leastSquares(rows.filter((r) => r.y <= limit));
  return {
    rowBuckets,
    qkvFused,
    forwardOverheadUs,
    sampledRowOverheadUs,
    forwardResidualAbsMedianUs: Math.round(after[after.length >> 1]),
    hostOverheadUs: Math.max(0, Math.round(hostLine.intercept)),
    hostPerSeqUs: Math.max(0, Math.round(hostLine.slope * 100) / 100),
    hostMedianUs: host[host.length >> 1],
    steps: busy.length,
  };
}

function leastSquares(points: readonly { x: number; y: number; w?: number }[]): { intercept: number; slope: number } {
  let sw = 0;
  let mx = 0;
  let my = 0;
  for (const p of points) {
    const w = p.w ?? 1;
    sw += w;
    mx += w * p.x;
    my += w * p.y;
  }
  mx /= sw;
  my /= sw;
  let sxy = 0;
  let sxx = 0;
  for (const p of points) {
    const w = p.w ?? 1;
    sxy += w * (p.x - mx) * (p.y - my);
    sxx += w * (p.x - mx) ** 2;
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  return { intercept: my - slope * mx, slope };
}

function stats(pairs: readonly { predicted: number; measured: number }[]): ErrorStats {
  if (pairs.length === 0) return { steps: 0, meanSigned: Number.NaN, absP50: Number.NaN, absP90: Number.NaN, totalSigned: Number.NaN };
  const rel = pairs.map((p) => (p.predicted - p.measured) / p.measured);
  const abs = rel.map(Math.abs).sort((a, b) => a - b);
  const sumP = pairs.reduce((a, p) => a + p.predicted, 0);
  const sumM = pairs.reduce((a, p) => a + p.measured, 0);
  return {
    steps: pairs.length,
    meanSigned: rel.reduce((a, x) => a + x, 0) / rel.length,
    absP50: abs[Math.floor(abs.length * 0.5)],
    absP90: abs[Math.min(abs.length - 1, Math.floor(abs.length * 0.9))],
    totalSigned: sumP / sumM - 1,
  };
}

/**
 * Every logged step priced as the simulator prices it (planDurationUs: the shape's price, re-priced by
 * the GPU's power state when the cost model has one), the power state following the engine's own
 * timeline (every logged step in order, at its logged start), µs.
 */
export function pricedSteps(steps: readonly LoggedStep[], cost: CostModel): Map<LoggedStep, number> {
  const slots = new Set<number>();
  const power = cost.newPowerState?.() ?? null;
  const priced = new Map<LoggedStep, number>();
  for (const step of steps) priced.set(step, planDurationUs(cost, step.plan, slots, step.startUs, power));
  return priced;
}

/** Every busy step the engine ran, priced as the simulator prices it (`priced`: pricedSteps), against its times. */
export function stepCostErrors(steps: readonly LoggedStep[], cost: CostModel, priced: ReadonlyMap<LoggedStep, number> = pricedSteps(steps, cost)): StepCostErrors {
  const decode: { predicted: number; measured: number }[] = [];
  const prefill: { predicted: number; measured: number }[] = [];
  const period: { predicted: number; measured: number }[] = [];
  for (const { step, periodUs } of busySteps(steps)) {
    const totalUs = priced.get(step)!;
    const gpuPredicted = totalUs - cost.hostUs(step.plan.items.length);
    (step.plan.numPrefillTokens > 0 ? prefill : decode).push({ predicted: gpuPredicted, measured: step.gpuUs! });
    period.push({ predicted: totalUs, measured: periodUs });
  }
  return { gpuDecode: stats(decode), gpuPrefill: stats(prefill), period: stats(period) };
}
