import { describe, expect, it } from 'vitest';
import { runStacks } from '../../experiments/stratos/parallel.js';
import { ASSUMED, CASE, cappedLognormalMean, peakRatePerS, sliceScale, slaCreditUsdPerWindow } from '../../experiments/stratos/scenario.js';
import { contradictions, renderTable, tableRows } from '../../experiments/stratos/table.js';

describe('the case-study scenario', () => {
  it('derives its load and prices from the case study', () => {
    const meanOut = cappedLognormalMean(CASE.outputMedianTokens, ASSUMED.outputSigma, 1e12);
    expect(meanOut).toBeCloseTo(847 * Math.exp(0.18), 0);
    expect(peakRatePerS()).toBeGreaterThan(80);
    expect(peakRatePerS()).toBeLessThan(95);
    expect(slaCreditUsdPerWindow()).toBeCloseTo(32.5, 1);
    expect(sliceScale(1)).toEqual({ gpus: 1, traffic: expect.closeTo(1, 9) });
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
  });
});
