// Where a workload's ITL-mean and E2E-mean errors come from (issue 7: "the report says by how much and
// why"). Engine run 1's own steps, priced by the cost model, split the error into its terms, each
// step weighted by how much of the metric it makes up. Both metrics are sums of time that requests
// spend in a phase: E2E mean = Σ (finish − arrival) / requests, ITL mean = Σ (finish − first token) /
// Σ (tokens − 1) over completed requests. So a step adds its period once for every request in the
// phase when it starts (arrived, or past its first token, and not finished), whether or not the
// request is in its batch (a decode paused by a prefill step waits through it all the same).
// The step's error (price − period) is GPU (price less its host part, against GPU events; decode-only
// steps and steps with prefill apart) plus host (the price's host part against period − GPU events).
// What the simulator's error (against run 1) has beyond their sum is the schedule's: the simulator
// batching differently once its clock drifts, queueing, idle gaps no step covers.
import type { CostModel } from '../../sim/cost/cost-model.js';
import { planDurationUs } from '../../sim/replica/step-shape.js';
import type { LoggedStep } from './plan-log.js';
import type { RequestTable } from './requests.js';
import { busySteps } from './step-cost.js';

/** Parts of one metric's error, each a fraction of the metric as engine run 1 measured it. */
export interface MetricBudget {
  /** (simulator − run 1) / run 1. */
  readonly simError: number;
  /** The cost model's error on run 1's decode-only steps' GPU time. */
  readonly decodeGpu: number;
  /** … on the GPU time of its steps with prefill tokens. */
  readonly prefillGpu: number;
  /** … on their host time (period − GPU events). */
  readonly host: number;
  /** simError − (decodeGpu + prefillGpu + host): schedule, queueing, time no priced step covers. */
  readonly schedule: number;
  /** The weighted step periods over the metric as run 1 measured it: how much of it the steps explain (≈ 1). */
  readonly coverage: number;
}

export interface ErrorBudget {
  readonly itlMean: MetricBudget;
  readonly e2eMean: MetricBudget;
}

interface StepParts {
  readonly periodUs: number;
  readonly gpuErrUs: number;
  readonly hostErrUs: number;
  readonly prefill: boolean;
  readonly startUs: number;
}

/** Requests in the phase [from, to) at each time of `atUs` (ascending). */
function inPhase(from: number[], to: number[], atUs: readonly number[]): number[] {
  from.sort((a, b) => a - b);
  to.sort((a, b) => a - b);
  let entered = 0;
  let left = 0;
  return atUs.map((t) => {
    // Times ascend: both pointers only move forward.
    while (entered < from.length && from[entered] <= t) entered++;
    while (left < to.length && to[left] <= t) left++;
    return entered - left;
  });
}

/**
 * The budget of run 1 (`steps`, `table`: its plan log and requests) against the simulator's metrics
 * (`sim`) and run 1's (`engine`).
 */
export function errorBudget(
  steps: readonly LoggedStep[], table: RequestTable, cost: CostModel,
  sim: { itlMsMean: number; e2eMsMean: number }, engine: { itlMsMean: number; e2eMsMean: number },
): ErrorBudget {
  // Prices follow the power state along every logged step in order, as stepCostErrors prices them.
  const slots = new Set<number>();
  const power = cost.newPowerState?.() ?? null;
  const priced = new Map<LoggedStep, number>();
  for (const step of steps) priced.set(step, planDurationUs(cost, step.plan, slots, step.startUs, power));
  const parts: StepParts[] = busySteps(steps).map(({ step, periodUs }) => {
    const hostUs = cost.hostUs(step.plan.items.length);
    const gpuUs = step.gpuUs!;
    return { periodUs, gpuErrUs: priced.get(step)! - hostUs - gpuUs, hostErrUs: hostUs - (periodUs - gpuUs), prefill: step.plan.numPrefillTokens > 0, startUs: step.startUs };
  });

  // The phases of the completed requests (the metrics count no others), in µs of the engine's clock.
  const arrivalUs: number[] = [];
  const firstTokenUs: number[] = [];
  const finishUs: number[] = [];
  let e2eSumUs = 0;
  let itlSumUs = 0;
  for (let i = 0; i < table.ids.length; i++) {
    if (table.status[i] !== 'completed') continue;
    const arrival = table.arrivalS[i] * 1e6;
    const first = arrival + table.ttftMs[i] * 1000;
    const finish = table.finishS[i] * 1e6;
    arrivalUs.push(arrival);
    finishUs.push(finish);
    e2eSumUs += finish - arrival;
    // A one-token request has no inter-token interval.
    if (table.outputTokens[i] > 1) {
      firstTokenUs.push(first);
      itlSumUs += finish - first;
    }
  }
  const starts = parts.map((p) => p.startUs);
  const decoding = inPhase(firstTokenUs, table.ids.flatMap((_, i) => (table.status[i] === 'completed' && table.outputTokens[i] > 1 ? [table.finishS[i] * 1e6] : [])), starts);
  const inSystem = inPhase(arrivalUs, finishUs, starts);

  const budget = (weights: readonly number[], simMs: number, engineMs: number, metricTotalUs: number): MetricBudget => {
    let decodeGpu = 0;
    let prefillGpu = 0;
    let host = 0;
    let covered = 0;
    parts.forEach((p, i) => {
      const w = weights[i];
      if (p.prefill) prefillGpu += w * p.gpuErrUs;
      else decodeGpu += w * p.gpuErrUs;
      host += w * p.hostErrUs;
      covered += w * p.periodUs;
    });
    const simError = (simMs - engineMs) / engineMs;
    const d = decodeGpu / metricTotalUs;
    const f = prefillGpu / metricTotalUs;
    const h = host / metricTotalUs;
    return { simError, decodeGpu: d, prefillGpu: f, host: h, schedule: simError - d - f - h, coverage: covered / metricTotalUs };
  };
  return {
    itlMean: budget(decoding, sim.itlMsMean, engine.itlMsMean, itlSumUs),
    e2eMean: budget(inSystem, sim.e2eMsMean, engine.e2eMsMean, e2eSumUs),
  };
}
