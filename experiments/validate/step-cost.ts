// Step-level evidence: every plan the engine ran, priced by the simulator's cost model, against
// the engine's GPU time (the cost model's own term) and against the step's whole period (GPU plus
// host). And the engine's own cost terms (row padding, launch gaps, host time per step),
// calibrated from one plan log.
import type { CostModel } from '../../sim/cost/cost-model.js';
import type { RowBuckets } from '../../sim/cost/profile-model.js';
import { shapeOfPlan } from '../../sim/replica/step-shape.js';
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
  /** Mean host time per step (period − GPU time), the top 1% (stalls) trimmed, µs. */
  readonly hostOverheadUs: number;
  readonly hostMedianUs: number;
  /** Least-squares slope of host time per sequence in the batch, µs (reported; the cost model takes a constant). */
  readonly hostPerSeqUs: number;
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

/** Steps followed by another step with no idle between (the engine did not sleep). */
function busySteps(steps: readonly LoggedStep[]): { step: LoggedStep; periodUs: number }[] {
  const out: { step: LoggedStep; periodUs: number }[] = [];
  for (let i = 0; i + 1 < steps.length; i++) {
    const s = steps[i];
    if (s.plan.items.length === 0 || s.gpuUs === null) continue;
    const periodUs = steps[i + 1].startUs - s.startUs;
    // More than 5 ms between this step's end and the next start: the engine slept (idle), not host work.
    if (steps[i + 1].startUs - s.endUs > 5000) continue;
    out.push({ step: s, periodUs });
  }
  return out;
}

function trimmedMean(sorted: readonly number[], lowShare: number, highShare: number): number {
  const lo = Math.floor(sorted.length * lowShare);
  const hi = Math.max(lo + 1, Math.ceil(sorted.length * (1 - highShare)));
  const kept = sorted.slice(lo, hi);
  return kept.reduce((a, x) => a + x, 0) / kept.length;
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
  const fwd = leastSquares(decode.map(({ step }) => ({ x: step.plan.items.length, y: step.gpuUs! - bare.stepUs(shapeOfPlan(step.plan, slots)) })));
  const forwardOverheadUs = Math.max(0, Math.round(fwd.intercept));
  const sampledRowOverheadUs = Math.max(0, Math.round(fwd.slope * 100) / 100);
  const after = decode.map(({ step }) => Math.abs(step.gpuUs! - bare.stepUs(shapeOfPlan(step.plan, slots)) - forwardOverheadUs - sampledRowOverheadUs * step.plan.items.length)).sort((a, b) => a - b);
  const rows = busy.map(({ step, periodUs }) => ({ hostUs: periodUs - step.gpuUs!, seqs: step.plan.items.length }));
  const host = rows.map((r) => r.hostUs).sort((a, b) => a - b);
  const hostLine = leastSquares(rows.map((r) => ({ x: r.seqs, y: r.hostUs })));
  return {
    rowBuckets,
    qkvFused,
    forwardOverheadUs,
    sampledRowOverheadUs,
    forwardResidualAbsMedianUs: Math.round(after[after.length >> 1]),
    hostOverheadUs: Math.round(trimmedMean(host, 0, 0.01)),
    hostMedianUs: host[host.length >> 1],
    hostPerSeqUs: Math.round(hostLine.slope * 100) / 100,
    steps: busy.length,
  };
}

function leastSquares(points: readonly { x: number; y: number }[]): { intercept: number; slope: number } {
  const mx = points.reduce((a, p) => a + p.x, 0) / points.length;
  const my = points.reduce((a, p) => a + p.y, 0) / points.length;
  let sxy = 0;
  let sxx = 0;
  for (const p of points) {
    sxy += (p.x - mx) * (p.y - my);
    sxx += (p.x - mx) ** 2;
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

export function stepCostErrors(steps: readonly LoggedStep[], cost: CostModel, hostOverheadUs: number): StepCostErrors {
  const slots = new Set<number>();
  const decode: { predicted: number; measured: number }[] = [];
  const prefill: { predicted: number; measured: number }[] = [];
  const period: { predicted: number; measured: number }[] = [];
  for (const { step, periodUs } of busySteps(steps)) {
    const totalUs = cost.stepUs(shapeOfPlan(step.plan, slots));
    const gpuPredicted = totalUs - hostOverheadUs;
    (step.plan.numPrefillTokens > 0 ? prefill : decode).push({ predicted: gpuPredicted, measured: step.gpuUs! });
    period.push({ predicted: totalUs, measured: periodUs });
  }
  return { gpuDecode: stats(decode), gpuPrefill: stats(prefill), period: stats(period) };
}
