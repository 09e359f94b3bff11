import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GPUS, MODELS, type GpuName, type ModelName, type ReplicaShape } from '../../sim/catalog.js';
import { parseSimConfig } from '../../sim/config.js';
import type { CostModel, StepShape } from '../../sim/cost/cost-model.js';
import { createCostModel } from '../../sim/cost/create.js';
import { NoKvCacheCostModel, noKvCacheShape, withKvCacheMode } from '../../sim/cost/no-kv-cache.js';
import { DEFAULT_ROOFLINE } from '../../sim/cost/roofline.js';
import { decodeRunStepShape } from '../../sim/replica/step-shape.js';

// kv.cache = none: a decode step at context c is a forward over all c + 1 tokens.

const shapeOf = (model: ModelName, gpu: GpuName): ReplicaShape => ({ model: MODELS[model], gpu: GPUS[gpu], tp: 1, weightDtype: 'bf16', kvDtype: 'bf16' });

const models = (kvCache: 'keep' | 'none'): [string, CostModel][] =>
  (['profile', 'roofline'] as const).flatMap((costModel) =>
    (['h200', 'a100-80gb'] as const).map((gpu) => [`${costModel} ${gpu}`, createCostModel(shapeOf('llama2-13b', gpu), { costModel, roofline: DEFAULT_ROOFLINE, pageSizeTokens: 16, kvCache })] as [string, CostModel]),
  );

/** One decode token of a sequence with `ctx` cached tokens. */
const decode1 = (ctx: number): StepShape => decodeRunStepShape(1, ctx, 0, 0);

/** A prefill of `tokens` tokens from nothing, sampling its last token (what the naive engine runs per token). */
const prefill1 = (tokens: number): StepShape => ({
  numSeqs: 1, numPrefillTokens: tokens, numDecodeTokens: 0, contextTokensSum: 0, prefillAttentionPairs: (tokens * (tokens + 1)) / 2,
  numSampled: 1, numLoraLoads: 0, numAdapters: 0, decodeContextTokensSum: 0, numPrefillSeqs: 1, prefillLongestNewTokens: tokens, prefillLongestContextTokens: 0,
});

describe('kv.cache = none (naive generation)', () => {
  const naive = models('none');
  const cached = models('keep');

  it('keep is today\'s cost model itself; none wraps it once and says so in its name', () => {
    for (const [i, [, c]] of cached.entries()) {
      expect(c).not.toBeInstanceOf(NoKvCacheCostModel);
      expect(withKvCacheMode(c, 'keep')).toBe(c);
      const n = naive[i][1];
      expect(n).toBeInstanceOf(NoKvCacheCostModel);
      expect(n.name).toBe(`${c.name}+no-kv-cache`);
      expect(n.calibration).toBe(c.calibration);
      expect(withKvCacheMode(n, 'none')).toBe(n);
    }
  });

  it('at context 0 a naive decode costs what a cached decode costs', () => {
    for (const [i, [name, n]] of naive.entries()) expect(n.stepUs(decode1(0)), name).toBe(cached[i][1].stepUs(decode1(0)));
  });

  it('a naive decode at context c costs about a prefill of c + 1 tokens, far more than a cached decode', () => {
    for (const [i, [name, n]] of naive.entries()) {
      const c = cached[i][1];
      for (const ctx of [127, 511, 2047, 4095]) {
        const naiveUs = n.stepUs(decode1(ctx));
        const prefillUs = c.stepUs(prefill1(ctx + 1));
        // Same dense work and attention pairs; the last token's attention runs in the decode kernel.
        expect(Math.abs(naiveUs - prefillUs) / prefillUs, `${name} ctx ${ctx}: naive ${naiveUs} us, prefill ${prefillUs} us`).toBeLessThan(0.1);
        // A batch-1 cached decode is bound by reading the weights; the recompute becomes compute-bound.
        expect(naiveUs, `${name} ctx ${ctx}`).toBeGreaterThan(c.stepUs(decode1(ctx)));
        if (ctx >= 2047) expect(naiveUs, `${name} ctx ${ctx}`).toBeGreaterThan(3 * c.stepUs(decode1(ctx)));
      }
    }
  });

  it('grows with context (property), and never costs less than the cached step', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 0, max: 4000 }), fc.integer({ min: 1, max: 500 }), (batch, ctx, more) => {
        for (const [i, [, n]] of naive.entries()) {
          const shorter = n.stepUs(decodeRunStepShape(batch, batch * ctx, 0, 0));
          const longer = n.stepUs(decodeRunStepShape(batch, batch * (ctx + more), 0, 0));
          if (!(longer >= shorter)) return false;
          if (!(shorter >= cached[i][1].stepUs(decodeRunStepShape(batch, batch * ctx, 0, 0)))) return false;
        }
        return true;
      }),
    );
  });

  it('leaves prefill-only steps unchanged and keeps the token count a forward runs over', () => {
    const p = prefill1(300);
    expect(noKvCacheShape(p)).toBe(p);
    const s = noKvCacheShape(decodeRunStepShape(4, 4 * 100, 0, 0));
    expect(s.numPrefillTokens + s.numDecodeTokens).toBe(4 * 101);
    expect(s.prefillAttentionPairs + s.numDecodeTokens * 101).toBe((4 * 101 * 102) / 2);
  });

  it('the config key defaults to keep; none refuses prefix caching and chunked prefill', () => {
    expect(parseSimConfig({}).kv.cache).toBe('keep');
    expect(parseSimConfig({ kv: { cache: 'none', prefixCaching: false } }).kv.cache).toBe('none');
    expect(() => parseSimConfig({ kv: { cache: 'none' } })).toThrow(/kv.prefixCaching = true/);
    expect(() => parseSimConfig({ policy: 'chunked', kv: { cache: 'none', prefixCaching: false } })).toThrow(/policy = chunked/);
    expect(() => parseSimConfig({ kv: { cache: 'off' } })).toThrow(/kv.cache = "off": allowed: keep, none/);
  });
});
