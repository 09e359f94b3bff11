import { describe, expect, it } from 'vitest';
import { buildCases } from '../../calibration/grids.js';
import { CALIB_MODELS, CALIB_TP, gemmShapes, loraShapes, shardOf, type CalibModel } from '../../calibration/shapes.js';
import { MODELS } from '../../sim/catalog.js';
import { layerGemms, lmHeadGemm, loraProjections, shardDims } from '../../sim/cost/layer-shapes.js';

// calibration/ may not import sim/, so it repeats the model shapes: both sides must agree, or the
// profile model would price the simulator's shapes with the nearest measured ones.
describe('calibration shapes match the simulator\'s', () => {
  for (const name of Object.keys(CALIB_MODELS) as CalibModel[]) {
    it(`${name}: dimensions, GEMMs and LoRA projections per TP shard`, () => {
      const m = MODELS[name];
      const c = CALIB_MODELS[name];
      expect([c.numLayers, c.hidden, c.heads, c.kvHeads, c.ffn, c.vocab]).toEqual([m.numLayers, m.hiddenSize, m.numHeads, m.numKvHeads, m.ffnSize, m.vocabSize]);
      for (const tp of CALIB_TP[name]) {
        const sim = shardDims(m, tp);
        const cal = shardOf(name, tp);
        expect(gemmShapes(cal).map(({ n, k }) => ({ n, k }))).toEqual([...layerGemms(sim).map(({ n, k }) => ({ n, k })), lmHeadGemm(sim)]);
        expect(loraShapes(cal)).toEqual(loraProjections(sim).map(({ inDim, outDim }) => ({ inDim, outDim })));
        expect([cal.heads, cal.kvHeads, cal.headDim, cal.ffnShard, cal.vocabShard]).toEqual([sim.heads, sim.kvHeads, sim.headDim, sim.ffnShard, sim.vocabShard]);
      }
    });
  }

  it('the full grid covers 1..16,384 tokens for GEMMs and every family', () => {
    const cases = buildCases({ models: ['llama2-7b', 'llama2-13b', 'llama2-70b'], grid: 'full' });
    const ms = cases.filter((c) => c.family === 'gemm' && c.set === 'fit').map((c) => c.point.m);
    expect(Math.min(...ms)).toBe(1);
    expect(Math.max(...ms)).toBe(16384);
    expect(new Set(cases.map((c) => c.family)).size).toBe(13);
    // Holdout shapes are off the grid of their family and config.
    const key = (c: { family: string; config: object; point: object }) => `${c.family}|${JSON.stringify(c.config)}|${JSON.stringify(c.point)}`;
    const fit = new Set(cases.filter((c) => c.set === 'fit').map(key));
    const hold = cases.filter((c) => c.set === 'holdout');
    expect(hold.length).toBeGreaterThan(200);
    expect(hold.filter((c) => fit.has(key(c))).length).toBe(0);
    // Deterministic: the same cases every time.
    expect(buildCases({ models: ['llama2-7b', 'llama2-13b', 'llama2-70b'], grid: 'full' })).toEqual(cases);
  });
});
