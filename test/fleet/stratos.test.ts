import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readConfigObject } from '../../experiments/config-file.js';
import { runStacks } from '../../experiments/stratos/parallel.js';
import { ASSUMED, CASE, cappedLognormalMean, FULL_POOLS, peakRatePerS, sliceScale, slaCreditUsdPerWindow } from '../../experiments/stratos/scenario.js';
import { contradictions, itlAfterContradiction, renderTable, tableRows } from '../../experiments/stratos/table.js';
import { parseSimConfig } from '../../sim/config.js';

describe('the case-study scenario', () => {
  it('derives its load and prices from the case study', () => {
    const meanOut = cappedLognormalMean(CASE.outputMedianTokens, ASSUMED.outputSigma, 1e12);
    expect(meanOut).toBeCloseTo(847 * Math.exp(0.18), 0);
    expect(peakRatePerS()).toBeGreaterThan(80);
    expect(peakRatePerS()).toBeLessThan(95);
    expect(slaCreditUsdPerWindow()).toBeCloseTo(32.5, 1);
    expect(sliceScale(1)).toEqual({ gpus: 1, traffic: expect.closeTo(1, 9) });
  });

  it('the one-replica ITL config carries the scenario\'s per-GPU 13B peak load', () => {
    const config = parseSimConfig(readConfigObject(fileURLToPath(new URL('../../experiments/stratos/itl-13b-replica.yaml', import.meta.url))));
    const replicas13b = FULL_POOLS.find((p) => p.name === '13b')!.replicas;
    expect(config.workload.rate).toBeCloseTo((peakRatePerS() * CASE.shareOf13b) / replicas13b, 2);
    expect(config.workload.inputTokens).toBe(`lognormal:${ASSUMED.inputMedianTokens}:${ASSUMED.inputSigma}`);
    expect(config.workload.outputTokens).toBe(`lognormal:${CASE.outputMedianTokens}:${ASSUMED.outputSigma}`);
  });

  it('worker threads give the same summaries as one thread, and the table has every row', async () => {
    const runs = (['baseline', 'optimized'] as const).map((stack) => ({ stack, slice: 32, durationS: 1800, seed: 3 }));
    const parallel = await runStacks(runs, true);
    const serial = await runStacks(runs, false);
    expect(JSON.stringify(parallel)).toEqual(JSON.stringify(serial));
    const [b, a] = parallel as Record<string, any>[];
    for (const s of [b, a]) expect(s.completed + s.rejected + s.aborted + s.failed).toBe(s.requests);
    const rows = tableRows(b, a, 32);
    expect(rows.map((r) => r.metric)).toContain('Gross margin on inference');
    expect(renderTable(rows).split('\n').length).toBe(rows.length + 2);
    expect(contradictions(b, a).length).toBeGreaterThanOrEqual(8);
    expect(contradictions(b, a)).toContain(itlAfterContradiction(a));
  });

  it('the ITL item states the case study\'s targets against figures read from the optimized summary', () => {
    const dist = (count: number, p50: number, p99: number): Record<string, number> => ({ count, mean: p50, p50, p90: p50, p95: p50, p99 });
    // A pool's peak gaps: the p99 of all, the interrupted ones (count, median), the back-to-back ones (count, median, p99).
    const pool = (p99: number, interrupted: [number, number], backToBack: [number, number, number], preemptions = 0): Record<string, unknown> => ({
      preemptions,
      peak: { itl_ms: dist(interrupted[0] + backToBack[0], 0, p99), itl_interrupted_ms: dist(interrupted[0], interrupted[1], 0), itl_back_to_back_ms: dist(...backToBack) },
    });
    const after = {
      sla: { thresholds: { ttft_ms_p99: 500, itl_ms_p99: 50 } },
      sla_peak: { window_s: 300, pool_windows: 30, pool_windows_violated: 27, pool_windows_violated_ttft: 4, pool_windows_violated_itl: 25, violation_rate: 0.9 },
      pools: {
        '7b': pool(88.8, [30, 70], [970, 30, 34.2]),
        // 13B: 1.5% interrupted (median 140 ms), back-to-back median 40 ms, p99 45.5 ms; p99 of all 120.25 ms.
        '13b': pool(120.25, [15, 140], [985, 40, 45.5], 3),
        '70b': pool(150, [20, 200], [980, 55, 61]),
      },
    };
    expect(itlAfterContradiction(after)).toBe(
      "The case study's optimized stack reaches p99 ITL < 35 ms with < 1% of peak windows violated; simulated, the 13B pool's peak p99 ITL is 120.3 ms " +
        'and 90.0% of (pool, 5-minute window) pairs miss the SLA (p99 ITL 50 ms or p99 TTFT 500 ms): 25 of 30 by ITL, 4 by TTFT. ' +
        "The cause, as simulated: continuous batching without chunked prefill runs an admitted prompt's whole prefill as a step of its own, and every running sequence waits for it. " +
        'In the 13B pool 1.50% of peak inter-token gaps span such a wait ("interrupted"; median 140.0 ms; 3 preemptions all day), more than 1% of all, so they set the p99; ' +
        'the back-to-back gaps alone, one decode step each, have median 40.0 ms and p99 45.5 ms: under the 50 ms SLA, over the 35 ms target. ' +
        'Peak p99 ITL of the other pools: 7B 88.8 ms, 3.00% interrupted, back-to-back p99 34.2 ms (under the SLA); 70B 150.0 ms, 2.00% interrupted, back-to-back p99 61.0 ms (over the SLA).',
    );
    // Fewer than 1% interrupted: they do not set the p99, and nothing says they do.
    after.pools['13b'] = pool(34, [5, 90], [995, 30, 33]);
    const text = itlAfterContradiction(after);
    expect(text).toContain('0.50% of peak inter-token gaps span such a wait ("interrupted"; median 90.0 ms; no preemptions all day); the back-to-back');
    expect(text).toContain('p99 33.0 ms: under the 50 ms SLA, under the 35 ms target.');
  });
});
