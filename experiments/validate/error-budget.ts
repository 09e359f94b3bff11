// Where a workload's TTFT-, ITL- and E2E-mean errors come from (issue 7: "the report says by how much
// and why"). Engine run 1's own steps, priced by the cost model, split the error into its terms, each
// step weighted by how much of the metric it makes up. The three metrics are sums of time that
// requests spend in a phase: TTFT mean = Σ (first token − arrival) / requests, E2E mean =
// Σ (finish − arrival) / requests, ITL mean = Σ (finish − first token) / Σ (tokens − 1). So a step adds
// its period once for every request in the phase during it (waiting for its first token, in the
// system, or past its first token and not finished; a request there for part of the step counts for
// that part), whether or not the request is in its batch (a decode paused by a prefill step, or a
// request queued, waits through it all the same).
// The step's error (price − period) is GPU (price less its host part, against GPU events; decode-only
// steps and steps with prefill apart) plus host (the price's host part against period − GPU events).
// What the simulator's error (against run 1) has beyond their sum is the schedule's: the simulator
// batching differently once its clock drifts, queueing, idle gaps no step covers.
import type { CostModel } from '../../sim/cost/cost-model.js';
import type { LoggedStep } from './plan-log.js';
import type { RequestTable } from './requests.js';
import { busySteps, pricedSteps } from './step-cost.js';

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
  readonly ttftMean: MetricBudget;
  readonly itlMean: MetricBudget;
  readonly e2eMean: MetricBudget;
}

/** The means a budget splits (Metrics of compare.ts has them). */
export interface BudgetMetrics {
  readonly ttftMsMean: number;
  readonly itlMsMean: number;
  readonly e2eMsMean: number;
}

interface StepParts {
  readonly periodUs: number;
  readonly gpuErrUs: number;
  readonly hostErrUs: number;
  readonly prefill: boolean;
  readonly startUs: number;
}

/**
 * Each step's weight in a metric: Σ over requests of the share of the step's period [start, start +
 * period) that the request spends in its phase [from, to). Requests that enter or leave the phase
 * mid-step (an arrival waits out the step in progress; a first token comes at its step's end, before
 * the period's bookkeeping is over) count for the part they are in it. Steps ascend by start.
 */
function phaseWeights(from: readonly number[], to: readonly number[], parts: readonly StepParts[]): number[] {
  const weights = new Array<number>(parts.length).fill(0);
  for (let r = 0; r < from.length; r++) {
    // The first step that ends after the phase starts (binary search over starts + periods, which ascend).
    let lo = 0;
    let hi = parts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (parts[mid].startUs + parts[mid].periodUs <= from[r]) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < parts.length && parts[i].startUs < to[r]; i++) {
      const p = parts[i];
      const overlapUs = Math.min(to[r], p.startUs + p.periodUs) - Math.max(from[r], p.startUs);
      if (overlapUs > 0) weights[i] += overlapUs / p.periodUs;
    }
  }
  return weights;
}

/**
 * The budget of run 1 (`steps`, `table`: its plan log and requests) against the simulator's metrics
 * (`sim`) and run 1's (`engine`).
 */
export function errorBudget(
  steps: readonly LoggedStep[], table: RequestTable, cost: CostModel,
  sim: BudgetMetrics, engine: BudgetMetrics,
): ErrorBudget {
  const priced = pricedSteps(steps, cost);
  const parts: StepParts[] = busySteps(steps).map(({ step, periodUs }) => {
    const hostUs = cost.hostUs(step.plan.items.length);
    const gpuUs = step.gpuUs!;
    return { periodUs, gpuErrUs: priced.get(step)! - hostUs - gpuUs, hostErrUs: hostUs - (periodUs - gpuUs), prefill: step.plan.numPrefillTokens > 0, startUs: step.startUs };
  });

  // Each metric's phase per request, in µs of the engine's clock: the times it starts and ends and
  // their sum. E2E and ITL count completed requests (ITL those with two tokens or more: a one-token
  // request has no interval); TTFT every request with a first token, as the summary counts them.
  const phase = () => ({ from: [] as number[], to: [] as number[], sumUs: 0 });
  const ttft = phase();
  const itl = phase();
  const e2e = phase();
  const add = (p: ReturnType<typeof phase>, from: number, to: number): void => {
    p.from.push(from);
    p.to.push(to);
    p.sumUs += to - from;
  };
  for (let i = 0; i < table.ids.length; i++) {
    const arrival = table.arrivalS[i] * 1e6;
    const first = arrival + table.ttftMs[i] * 1000;
    const finish = table.finishS[i] * 1e6;
    if (Number.isFinite(first)) add(ttft, arrival, first);
    if (table.status[i] !== 'completed') continue;
    add(e2e, arrival, finish);
    if (table.outputTokens[i] > 1) add(itl, first, finish);
  }

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
    ttftMean: budget(phaseWeights(ttft.from, ttft.to, parts), sim.ttftMsMean, engine.ttftMsMean, ttft.sumUs),
    itlMean: budget(phaseWeights(itl.from, itl.to, parts), sim.itlMsMean, engine.itlMsMean, itl.sumUs),
    e2eMean: budget(phaseWeights(e2e.from, e2e.to, parts), sim.e2eMsMean, engine.e2eMsMean, e2e.sumUs),
  };
}
