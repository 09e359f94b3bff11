// The wrapCostModel hook (what-if pricing for diagnostics, experiments/validate/knock-on.ts): a
// wrapper that prices as its inner model, but without the decode-run fast path, gives the same
// requests byte for byte (the replicas then price every step through stepUs); one that prices
// decode steps longer gives longer inter-token gaps.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSimConfig } from '../../sim/config.js';
import type { CostModel, StepShape } from '../../sim/cost/cost-model.js';
import { runConfig } from '../../sim/run.js';

class Scaled implements CostModel {
  readonly name = 'scaled';
  readonly calibration: CostModel['calibration'];
  readonly newPowerState?: CostModel['newPowerState'];
  calls = 0;
  constructor(private readonly inner: CostModel, private readonly decodeScale: number) {
    this.calibration = inner.calibration;
    // The power state re-prices prefill steps: a wrapper that prices as its inner model keeps it.
    if (inner.newPowerState !== undefined) this.newPowerState = () => inner.newPowerState!();
  }
  stepUs(s: StepShape): number {
    this.calls++;
    const us = this.inner.stepUs(s);
    return s.numPrefillTokens === 0 ? Math.round(us * this.decodeScale) : us;
  }
  hostUs(numSeqs: number): number {
    return this.inner.hostUs(numSeqs);
  }
}

const input = { model: 'llama2-7b', gpu: 'h200', seed: 5, workload: { rate: 8, durationS: 20, inputTokens: 'uniform:64:900', outputTokens: 'lognormal:120:0.8:600' } };

function run(wrap?: (inner: CostModel) => CostModel): { requests: string; itlMsMean: number } {
  const dir = mkdtempSync(join(tmpdir(), 'stratos-wrap-'));
  runConfig(parseSimConfig(input), { outDir: dir, ...(wrap !== undefined ? { hooks: { wrapCostModel: wrap } } : {}) });
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as { itl_ms: { mean: number } };
  return { requests: readFileSync(join(dir, 'requests.csv'), 'utf8'), itlMsMean: summary.itl_ms.mean };
}

describe('SimulationHooks.wrapCostModel', () => {
  const base = run();

  it('an identity wrapper (no decode-run fast path) writes the same requests, every step priced through it', () => {
    let wrapper: Scaled | null = null;
    const same = run((inner) => (wrapper = new Scaled(inner, 1)));
    expect(wrapper!.calls).toBeGreaterThan(1000);
    expect(same.requests).toEqual(base.requests);
  });

  it('decode steps priced 10% longer lengthen the inter-token gaps', () => {
    const slower = run((inner) => new Scaled(inner, 1.1));
    expect(slower.itlMsMean).toBeGreaterThan(base.itlMsMean * 1.05);
  });
});
