// Naive generation without a KV cache (the notebook's TODO 1): nothing of a sequence is kept
// between steps, so every decode step runs the model over the sequence's whole context again.
import type { CostModel, StepShape } from './cost-model.js';

/** `keep`: K/V of past tokens stay in the cache and a decode step feeds one token; `none`: nothing is kept. */
export const KV_CACHE_MODES = ['keep', 'none'] as const;
export type KvCacheMode = (typeof KV_CACHE_MODES)[number];

/**
 * The shape of a step whose decode items keep no KV cache. A decode item with `c` tokens of
 * context is a forward over all c + 1 tokens: the c context tokens are recomputed as a prefill
 * from nothing (causal attention among them, dense layers over all of them), and the newest token
 * attends to their freshly computed K/V exactly as a cached decode would. Same work as one prefill
 * of c + 1 tokens (c(c + 1)/2 + c + 1 = (c + 1)(c + 2)/2 attention pairs), and at c = 0 it is the
 * cached decode itself.
 *
 * The shape carries only the sum of the decode contexts, so the recomputed sequences are priced as
 * a uniform batch at their mean context: exact for one sequence and for equal contexts, a lower
 * bound on attention work otherwise (Σc² ≥ (Σc)²/n). Prefill items are unchanged: with no cache
 * there is no prefix sharing and no chunking (parseSimConfig refuses both), so they start from nothing.
 */
export function noKvCacheShape(s: StepShape): StepShape {
  const numDecode = s.numDecodeTokens;
  const decodeCtx = s.decodeContextTokensSum ?? (s.numPrefillTokens === 0 ? s.contextTokensSum : 0);
  if (numDecode === 0 || decodeCtx === 0) return s;
  const meanCtx = decodeCtx / numDecode;
  const recomputePairs = (numDecode * meanCtx * (meanCtx + 1)) / 2;
  const prefillSeqs = s.numPrefillSeqs ?? (s.numPrefillTokens > 0 ? Math.max(1, s.numSeqs - numDecode) : 0);
  const longestNew = s.prefillLongestNewTokens ?? 0;
  const longestCtx = s.prefillLongestContextTokens ?? 0;
  const recomputeLongest = Math.ceil(meanCtx);
  const recomputeIsLongest = recomputeLongest > longestNew + longestCtx;
  return {
    ...s,
    numPrefillTokens: s.numPrefillTokens + decodeCtx,
    prefillAttentionPairs: s.prefillAttentionPairs + recomputePairs,
    numPrefillSeqs: prefillSeqs + numDecode,
    decodeContextTokensSum: decodeCtx,
    prefillLongestNewTokens: recomputeIsLongest ? recomputeLongest : longestNew,
    prefillLongestContextTokens: recomputeIsLongest ? 0 : longestCtx,
  };
}

/**
 * A cost model for `kv.cache: none`: the inner model prices each step as noKvCacheShape rewrites
 * it. It has no decode-run fast path on purpose: the replica then prices a decode run step by
 * step through stepUs, so lazy and step-by-step simulation still agree to the microsecond. Nor
 * does it forward newPowerState: the power term re-prices prefill steps, and here every step
 * recomputes whole sequences, which the term was not fitted for.
 */
export class NoKvCacheCostModel implements CostModel {
  readonly name: string;
  readonly calibration: CostModel['calibration'];

  constructor(readonly inner: CostModel) {
    this.name = `${inner.name}+no-kv-cache`;
    this.calibration = inner.calibration;
  }

  stepUs(shape: StepShape): number {
    return this.inner.stepUs(noKvCacheShape(shape));
  }

  hostUs(numSeqs: number): number {
    return this.inner.hostUs(numSeqs);
  }
}

/** The cost model for a KV cache mode: `keep` returns `cost` itself (today's behaviour, unchanged). */
export function withKvCacheMode(cost: CostModel, mode: KvCacheMode): CostModel {
  if (mode === 'keep' || cost instanceof NoKvCacheCostModel) return cost;
  return new NoKvCacheCostModel(cost);
}
