// The error budget splits a workload's TTFT-, ITL- and E2E-mean errors into the cost model's terms by
// weighting each logged step's pricing error: checked by hand on a five-step log.
import { describe, expect, it } from 'vitest';
import type { PlanItem } from '../../engine/policy/index.js';
import type { CostModel } from '../../sim/cost/cost-model.js';
import { errorBudget } from '../../experiments/validate/error-budget.js';
import type { LoggedStep } from '../../experiments/validate/plan-log.js';
import type { RequestTable } from '../../experiments/validate/requests.js';

function step(i: number, startUs: number, periodUs: number, gpuUs: number, item: PlanItem): LoggedStep {
  const prefill = item.isPrefill ? item.numNewTokens : 0;
  return {
    plan: {
      stepIndex: i, numSteps: 1, items: [item], numPrefillTokens: prefill, numDecodeTokens: item.isPrefill ? 0 : 1,
      preempted: [], loraLoads: [], loraEvictions: [], blockCopies: [], kvBlocksUsedPerStep: [1],
    },
    // The engine's end is before the next start (bookkeeping); only start and GPU time are read.
    startUs, endUs: startUs + periodUs - 10, scheduleUs: 5, runUs: gpuUs + 5, gpuUs, liveTokens0: 0,
  };
}

const prefillItem = (seqId: number): PlanItem => ({ seqId, contextTokens: 0, numNewTokens: 100, isPrefill: true, samples: true, adapterSlot: -1 });
const decodeItem = (seqId: number, ctx: number): PlanItem => ({ seqId, contextTokens: ctx, numNewTokens: 1, isPrefill: false, samples: true, adapterSlot: -1 });

// Request 0: arrives at 0, prefill step at 0 ms (GPU 9 of its 10 ms), first token at 10 ms, decode
// steps at 10, 20, 30 and 40 ms (GPU 9.5 of 10 ms each), finished at 50 ms. The last step has no
// successor, so no period: the steps cover 40 of its 50 ms in the system and 30 of its 40 ms decoding.
// Request 1 arrives at 25 ms and is aborted: the metrics count completed requests only.
const steps: LoggedStep[] = [
  step(0, 0, 10_000, 9_000, prefillItem(0)),
  step(1, 10_000, 10_000, 9_500, decodeItem(0, 100)),
  step(2, 20_000, 10_000, 9_500, decodeItem(0, 101)),
  step(3, 30_000, 10_000, 9_500, decodeItem(0, 102)),
  step(4, 40_000, 10_000, 9_500, decodeItem(0, 103)),
];
const table: RequestTable = {
  ids: [0, 1], status: ['completed', 'aborted'], arrivalS: [0, 0.025], ttftMs: [10, Number.NaN], e2eMs: [50, Number.NaN], tpotMs: [10, Number.NaN],
  finishS: [0.05, 0.03], outputTokens: [5, 0], preemptions: [0, 0],
};
// A prefill step priced 12 ms, a decode step 10.2 ms, 0.5 ms of each the host's: GPU errors +2.5 ms per
// prefill step and +0.2 ms per decode step, host errors -0.5 and 0 ms.
const cost: CostModel = {
  name: 'stub', calibration: 'calibrated',
  stepUs: (s) => (s.numPrefillTokens > 0 ? 12_000 : 10_200),
  hostUs: () => 500,
};

describe('errorBudget', () => {
  const b = errorBudget(steps, table, cost, { ttftMsMean: 9, itlMsMean: 11, e2eMsMean: 55, ttftMsP99: 9, itlMsP99: 11, e2eMsP99: 55 }, { ttftMsMean: 10, itlMsMean: 10, e2eMsMean: 50, ttftMsP99: 10, itlMsP99: 10, e2eMsP99: 50 });

  it('E2E mean: every step the request is in the system for, over its 50 ms', () => {
    expect(b.e2eMean.simError).toBeCloseTo(0.1, 12);
    expect(b.e2eMean.decodeGpu).toBeCloseTo((3 * 200) / 50_000, 12);
    expect(b.e2eMean.prefillGpu).toBeCloseTo(2_500 / 50_000, 12);
    expect(b.e2eMean.host).toBeCloseTo(-500 / 50_000, 12);
    expect(b.e2eMean.schedule).toBeCloseTo(0.1 - (600 + 2_500 - 500) / 50_000, 12);
    expect(b.e2eMean.coverage).toBeCloseTo(40 / 50, 12);
  });

  it('TTFT mean: the steps before its first token (the prefill step), over its 10 ms; no first token, no TTFT', () => {
    expect(b.ttftMean.simError).toBeCloseTo(-0.1, 12);
    expect(b.ttftMean.prefillGpu).toBeCloseTo(2_500 / 10_000, 12);
    expect(b.ttftMean.decodeGpu).toBe(0);
    expect(b.ttftMean.host).toBeCloseTo(-500 / 10_000, 12);
    expect(b.ttftMean.coverage).toBeCloseTo(1, 12);
  });

  it('ITL mean: only the steps after its first token, over its 40 ms of decoding', () => {
    expect(b.itlMean.simError).toBeCloseTo(0.1, 12);
    expect(b.itlMean.decodeGpu).toBeCloseTo((3 * 200) / 40_000, 12);
    expect(b.itlMean.prefillGpu).toBe(0);
    expect(b.itlMean.host).toBe(0);
    expect(b.itlMean.coverage).toBeCloseTo(30 / 40, 12);
  });

  it('p99s: run 1\'s own intervals and requests priced step by step (the last step has no period: its interval is left out)', () => {
    // Three intervals of 10 ms priced 10.2; TTFT 10 ms priced 12; E2E 50 ms priced 50 + 2 + 3 × 0.2.
    expect(b.itlP99.priced).toBeCloseTo(0.02, 2);
    expect(b.itlP99.check).toBeCloseTo(1, 6);
    expect(b.ttftP99.priced).toBeCloseTo(0.2, 6);
    expect(b.e2eP99.priced).toBeCloseTo(2.6 / 50, 3);
    expect(b.e2eP99.simError).toBeCloseTo(0.1, 12);
    expect(b.e2eP99.schedule).toBeCloseTo(0.1 - 2.6 / 50, 3);
  });

  it('a decode paused behind another request\'s prefill step waits through it (ITL); an arrival mid-step waits out the rest of that step (TTFT)', () => {
    const second = [
      ...steps.slice(0, 2),
      step(2, 20_000, 10_000, 9_000, prefillItem(1)),
      ...steps.slice(3),
    ];
    // Request 1 arrives at 15 ms, in the middle of a decode step, and ends with its first token at 30 ms.
    const withSecond: RequestTable = { ...table, status: ['completed', 'completed'], arrivalS: [0, 0.015], ttftMs: [10, 15], e2eMs: [50, 15], finishS: [0.05, 0.03], outputTokens: [5, 1] };
    const c = errorBudget(second, withSecond, cost, { ttftMsMean: 10, itlMsMean: 10, e2eMsMean: 50, ttftMsP99: 15, itlMsP99: 20, e2eMsP99: 50 }, { ttftMsMean: 10, itlMsMean: 10, e2eMsMean: 50, ttftMsP99: 15, itlMsP99: 20, e2eMsP99: 50 });
    expect(c.itlMean.prefillGpu).toBeCloseTo(2_500 / 40_000, 12);
    expect(c.itlMean.decodeGpu).toBeCloseTo((2 * 200) / 40_000, 12);
    expect(c.itlMean.host).toBeCloseTo(-500 / 40_000, 12);
    // TTFT: request 0's prefill step, half of the decode step request 1 arrives in, then its prefill
    // step, over 10 + 15 ms of waiting, all of it covered.
    expect(c.ttftMean.decodeGpu).toBeCloseTo((0.5 * 200) / 25_000, 12);
    expect(c.ttftMean.prefillGpu).toBeCloseTo((2 * 2_500) / 25_000, 12);
    expect(c.ttftMean.host).toBeCloseTo((2 * -500) / 25_000, 12);
    expect(c.ttftMean.coverage).toBeCloseTo(1, 12);
    // Tails: request 0's second interval spans the prefill step (20 ms measured, 12 + 10.2 priced);
    // request 1 waits 15 ms, priced 15 + 0.5 × 0.2 + 2.
    expect(c.itlP99.priced).toBeCloseTo(22.2 / 20 - 1, 2);
    expect(c.itlP99.check).toBeCloseTo(1, 6);
    // (Percentiles go through the summary's buckets: 17,100 µs reads 17,088.)
    expect(c.ttftP99.priced).toBeCloseTo(17.1 / 15 - 1, 2);
  });
});
