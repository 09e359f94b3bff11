// The engine's own terms in the profile cost model (cost.rowBuckets, cost.forwardOverheadUs,
// cost.sampledRowOverheadUs): off by default, and each adds exactly what it says.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StepShape } from '../../sim/cost/cost-model.js';
import { bucketRows, engineKernelsPerForward } from '../../sim/cost/profile-model.js';
import { parseSimConfig, type SimConfigInput } from '../../sim/config.js';
import { buildCostModel, replicaShape } from '../../sim/simulation.js';

function model(cost: SimConfigInput['cost'] = {}) {
  const config = parseSimConfig({ model: 'llama2-7b', gpu: 'h200', cost: { samplingMethod: 'greedy', ...cost } });
  return buildCostModel(config, replicaShape(config));
}

const decodeShape = (n: number, ctx: number): StepShape => ({
  numSeqs: n, numPrefillTokens: 0, numDecodeTokens: n, contextTokensSum: ctx, prefillAttentionPairs: 0, numSampled: n,
  numLoraLoads: 0, numAdapters: 0, decodeContextTokensSum: ctx, numPrefillSeqs: 0,
});

describe('engine cost terms', () => {
  it('bucketRows: powers of two to 1,024, then multiples of 1,024 (the engine gpuRowBucket)', () => {
    expect([1, 2, 3, 5, 64, 65, 1000, 1024, 1025, 3000].map((n) => bucketRows(n, 'pow2'))).toEqual([1, 2, 4, 8, 64, 128, 1024, 1024, 2048, 3072]);
    expect(bucketRows(65, 'none')).toBe(65);
    fc.assert(fc.property(fc.integer({ min: 1, max: 100_000 }), (n) => {
      const b = bucketRows(n, 'pow2');
      return b >= n && b < 2 * n + 1024 && bucketRows(b, 'pow2') === b;
    }));
  });

  it('defaults leave the model unchanged; overheads add exactly their amounts', () => {
    const base = model();
    const withZero = model({ rowBuckets: 'none', forwardOverheadUs: 0, sampledRowOverheadUs: 0 });
    const fwd = model({ forwardOverheadUs: 900 });
    const perRow = model({ sampledRowOverheadUs: 8 });
    fc.assert(fc.property(fc.integer({ min: 1, max: 256 }), fc.integer({ min: 0, max: 2000 }), (n, perSeqCtx) => {
      const s = decodeShape(n, n * perSeqCtx);
      const b = base.stepUs(s);
      expect(withZero.stepUs(s)).toBe(b);
      // stepUs rounds up once, so a whole-µs addition can move the result by exactly that amount or one less.
      expect(Math.abs(fwd.stepUs(s) - (b + 900))).toBeLessThanOrEqual(1);
      expect(Math.abs(perRow.stepUs(s) - (b + 8 * n))).toBeLessThanOrEqual(1);
    }), { numRuns: 60 });
  });

  it('steps with adapters carry the forward overhead of their extra kernels: a shrink and an expand per LoRA site and layer', () => {
    const lora = { numSlots: 4, rank: 16 };
    const at = (cost: SimConfigInput['cost']) => {
      const config = parseSimConfig({ model: 'llama2-7b', gpu: 'h200', lora, cost: { samplingMethod: 'greedy', qkvFused: false, ...cost } });
      return buildCostModel(config, replicaShape(config));
    };
    const bare = at({});
    const fwd = at({ forwardOverheadUs: 870 });
    // Llama-2-7B: 32 layers of 13 kernels (q, k, v apart) + 7; LoRA on q, k, v, o: 256 kernels.
    expect(engineKernelsPerForward(32, false)).toBe(423);
    expect(engineKernelsPerForward(32, true)).toBe(359);
    const gapsUs = (870 * 256) / 423;
    fc.assert(fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 4 }), (n, adapters) => {
      const s = { ...decodeShape(n, n * 400), numAdapters: adapters };
      const added = fwd.stepUs(s) - bare.stepUs(s);
      // Base steps gain the forward overhead only; steps with adapters gain it and the gaps (± rounding).
      expect(Math.abs(fwd.stepUs(decodeShape(n, n * 400)) - bare.stepUs(decodeShape(n, n * 400)) - 870)).toBeLessThanOrEqual(1);
      expect(Math.abs(added - 870 - gapsUs)).toBeLessThanOrEqual(1);
    }), { numRuns: 40 });
  });

  it('row buckets price a step as its padded row count for the token-wise ops', () => {
    const padded = model({ rowBuckets: 'pow2' });
    const base = model();
    // 65 decode rows run as 128: dearer than unpadded, never dearer than 128 real rows.
    expect(padded.stepUs(decodeShape(65, 65 * 500))).toBeGreaterThan(base.stepUs(decodeShape(65, 65 * 500)));
    expect(padded.stepUs(decodeShape(64, 64 * 500))).toBe(base.stepUs(decodeShape(64, 64 * 500)));
  });
});

describe('q/k/v as three GEMMs', () => {
  it('prices the separate projections: never cheaper than the fused one at batch 1 (three weight reads, three launches)', () => {
    const fused = model();
    const separate = model({ qkvFused: false });
    for (const n of [1, 8, 64]) expect(separate.stepUs(decodeShape(n, n * 300))).toBeGreaterThanOrEqual(fused.stepUs(decodeShape(n, n * 300)) - 1);
  });
});
