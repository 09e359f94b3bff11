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
// p99s do not split into sums: for them run 1's own intervals (ITL) or requests' phases (TTFT, E2E)
// are priced step by step and their p99 set against the measured one (TailBudget).
import type { CostModel } from '../../sim/cost/cost-model.js';
import type { LoggedStep } from './plan-log.js';
import type { RequestTable } from './requests.js';
import { SampleList } from '../../sim/metrics/sample-list.js';
import { busySteps, idleAfter, pricedSteps } from './step-cost.js';

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

/**
 * A p99's error, which does not split into sums: the p99 of run 1's own intervals (or requests'
 * phases) with every step priced by the cost model, against their measured p99.
 */
export interface TailBudget {
  /** (simulator − run 1) / run 1. */
  readonly simError: number;
  /** p99 of the priced intervals / p99 of the measured ones − 1: the cost model's error at the tail, on the engine's own schedule. */
  readonly priced: number;
  /** simError − priced: the schedule's share (not additive at a percentile; a pointer, not a sum). */
  readonly schedule: number;
  /** The measured p99 rebuilt from the plan log over run 1's reported p99 (≈ 1). */
  readonly check: number;
}

export interface ErrorBudget {
  readonly ttftMean: MetricBudget;
  readonly itlMean: MetricBudget;
  readonly e2eMean: MetricBudget;
  readonly ttftP99: TailBudget;
  readonly itlP99: TailBudget;
  readonly e2eP99: TailBudget;
}

/** The metrics a budget splits (Metrics of compare.ts has them). */
export interface BudgetMetrics {
  readonly ttftMsMean: number;
  readonly itlMsMean: number;
  readonly e2eMsMean: number;
  readonly ttftMsP99: number;
  readonly itlMsP99: number;
  readonly e2eMsP99: number;
}

interface StepParts {
  readonly periodUs: number;
  /** The whole price, host included. */
  readonly priceUs: number;
  readonly gpuErrUs: number;
  readonly hostErrUs: number;
  readonly prefill: boolean;
  readonly startUs: number;
}

/**
 * Calls visit(r, i, share) for every request r and busy step i whose period [start, start + period)
 * overlaps the request's phase [from, to), with the share of the period the request spends in it.
 * Requests that enter or leave the phase mid-step (an arrival waits out the step in progress; a first
 * token comes at its step's end, before the period's bookkeeping is over) count for the part they are
 * in it. Steps ascend by start, and so do their ends (each period ends at the next logged start).
 */
function forEachOverlap(from: readonly number[], to: readonly number[], parts: readonly StepParts[], visit: (r: number, i: number, share: number) => void): void {
  for (let r = 0; r < from.length; r++) {
    // The first step that ends after the phase starts.
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
      if (overlapUs > 0) visit(r, i, overlapUs / p.periodUs);
    }
  }
}

/** Each step's weight in a metric: Σ over requests of the share of its period spent in their phase. */
function phaseWeights(from: readonly number[], to: readonly number[], parts: readonly StepParts[]): number[] {
  const weights = new Array<number>(parts.length).fill(0);
  forEachOverlap(from, to, parts, (_r, i, share) => {
    weights[i] += share;
  });
  return weights;
}

const p99Of = (values: readonly number[]): number => {
  const list = new SampleList();
  for (const v of values) list.add(v);
  return list.percentiles([99])[0];
};

/**
 * The tail budget of a per-request phase: each request's phase rebuilt from the steps it overlaps,
 * measured (Σ share × period, plus what no busy step covers) and priced (Σ share × price, plus the same).
 */
function phaseTail(from: readonly number[], to: readonly number[], parts: readonly StepParts[], simMs: number, engineMs: number): TailBudget {
  const measuredUs = from.map((f, r) => to[r] - f);
  const pricedUs = [...measuredUs];
  forEachOverlap(from, to, parts, (r, i, share) => {
    pricedUs[r] += share * (parts[i].priceUs - parts[i].periodUs);
  });
  return tailOf(measuredUs, pricedUs, simMs, engineMs);
}

function tailOf(measuredUs: readonly number[], pricedUs: readonly number[], simMs: number, engineMs: number): TailBudget {
  const simError = (simMs - engineMs) / engineMs;
  const measured = p99Of(measuredUs);
  const priced = p99Of(pricedUs) / measured - 1;
  return { simError, priced, schedule: simError - priced, check: measured / 1000 / engineMs };
}

/**
 * The tail budget of ITL: every inter-token interval of run 1 rebuilt from the plan log (a decode
 * token's step back to its sequence's previous token's step) as the periods of the steps between,
 * measured and priced. Intervals across a step the engine idled after (a preempted sequence waiting)
 * are left out: nothing prices idle time.
 */
function itlTail(steps: readonly LoggedStep[], priced: ReadonlyMap<LoggedStep, number>, simMs: number, engineMs: number): TailBudget {
  // Prefix sums over all logged steps of period and price; a step followed by idle breaks intervals.
  const n = steps.length;
  const periodSum = new Float64Array(n + 1);
  const priceSum = new Float64Array(n + 1);
  const idleSum = new Int32Array(n + 1);
  for (let j = 0; j < n; j++) {
    const next = j + 1 < n ? steps[j + 1].startUs : Number.NaN;
    periodSum[j + 1] = periodSum[j] + (next - steps[j].startUs);
    priceSum[j + 1] = priceSum[j] + priced.get(steps[j])!;
    idleSum[j + 1] = idleSum[j] + (idleAfter(steps, j) ? 1 : 0);
  }
  const lastTokenStep = new Map<number, number>();
  const measuredUs: number[] = [];
  const pricedUs: number[] = [];
  for (let i = 0; i < n; i++) {
    for (const it of steps[i].plan.items) {
      if (!it.samples) continue;
      const prev = lastTokenStep.get(it.seqId);
      lastTokenStep.set(it.seqId, i);
      // A prefill's sampled token is a first token (TTFT), or a recomputed sequence's first after preemption.
      if (it.isPrefill || prev === undefined) continue;
      // The interval runs from the end of step prev to the end of step i: the periods of steps prev + 1 … i.
      if (idleSum[i + 1] - idleSum[prev + 1] > 0) continue;
      measuredUs.push(periodSum[i + 1] - periodSum[prev + 1]);
      pricedUs.push(priceSum[i + 1] - priceSum[prev + 1]);
    }
  }
  return tailOf(measuredUs, pricedUs, simMs, engineMs);
}

/**
 * The budget of run 1 (`steps`, `table`: its plan log and requests) against the simulator's metrics
 * (`sim`) and run 1's (`engine`); `priced`: the steps' prices (pricedSteps), when the caller has them.
 */
export function errorBudget(
  steps: readonly LoggedStep[], table: RequestTable, cost: CostModel,
  sim: BudgetMetrics, engine: BudgetMetrics, priced: ReadonlyMap<LoggedStep, number> = pricedSteps(steps, cost),
): ErrorBudget {
  const parts: StepParts[] = busySteps(steps).map(({ step, periodUs }) => {
    const hostUs = cost.hostUs(step.plan.items.length);
    const gpuUs = step.gpuUs!;
    const priceUs = priced.get(step)!;
    return { periodUs, priceUs, gpuErrUs: priceUs - hostUs - gpuUs, hostErrUs: hostUs - (periodUs - gpuUs), prefill: step.plan.numPrefillTokens > 0, startUs: step.startUs };
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
    ttftP99: phaseTail(ttft.from, ttft.to, parts, sim.ttftMsP99, engine.ttftMsP99),
    itlP99: itlTail(steps, priced, sim.itlMsP99, engine.itlMsP99),
    e2eP99: phaseTail(e2e.from, e2e.to, parts, sim.e2eMsP99, engine.e2eMsP99),
  };
}
