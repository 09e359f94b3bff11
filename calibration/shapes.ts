// The model shapes the calibration grids cover, sharded per GPU the way the simulator's profile
// cost model asks for them (sim/cost/layer-shapes.ts: fused QKV and gate/up, column-parallel
// q/k/v and gate/up, row-parallel o and down, vocab-parallel LM head, one replicated KV head when
// tp > KV heads). calibration/ may not import sim/, so the Llama-2 dimensions are repeated here;
// test/calibration/shapes.test.ts checks both sides agree.

export type CalibModel = 'llama2-7b' | 'llama2-13b' | 'llama2-70b';

export interface ModelDims {
  readonly numLayers: number;
  readonly hidden: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly ffn: number;
  readonly vocab: number;
}

export const CALIB_MODELS: Readonly<Record<CalibModel, ModelDims>> = {
  'llama2-7b': { numLayers: 32, hidden: 4096, heads: 32, kvHeads: 32, ffn: 11008, vocab: 32000 },
  'llama2-13b': { numLayers: 40, hidden: 5120, heads: 40, kvHeads: 40, ffn: 13824, vocab: 32000 },
  'llama2-70b': { numLayers: 80, hidden: 8192, heads: 64, kvHeads: 8, ffn: 28672, vocab: 32000 },
};

/** Tensor-parallel degrees calibrated per model: 70B as 1/2/4/8 shards, the others whole. */
export const CALIB_TP: Readonly<Record<CalibModel, readonly number[]>> = {
  'llama2-7b': [1],
  'llama2-13b': [1],
  'llama2-70b': [1, 2, 4, 8],
};

export interface Shard {
  readonly model: CalibModel;
  readonly tp: number;
  readonly hidden: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly ffnShard: number;
  readonly vocabShard: number;
}

export function shardOf(model: CalibModel, tp: number): Shard {
  const m = CALIB_MODELS[model];
  return {
    model,
    tp,
    hidden: m.hidden,
    heads: m.heads / tp,
    kvHeads: Math.max(1, m.kvHeads / tp),
    headDim: m.hidden / m.heads,
    ffnShard: m.ffn / tp,
    vocabShard: Math.ceil(m.vocab / tp),
  };
}

export function shardsOf(models: readonly CalibModel[]): Shard[] {
  return models.flatMap((m) => CALIB_TP[m].map((tp) => shardOf(m, tp)));
}

/** A layer's GEMMs as (n, k) weight shapes, plus the LM head. */
export function gemmShapes(s: Shard): { name: string; n: number; k: number; lmHead: boolean }[] {
  return [
    { name: 'qkv', n: (s.heads + 2 * s.kvHeads) * s.headDim, k: s.hidden, lmHead: false },
    { name: 'o', n: s.hidden, k: s.heads * s.headDim, lmHead: false },
    { name: 'gateUp', n: 2 * s.ffnShard, k: s.hidden, lmHead: false },
    { name: 'down', n: s.hidden, k: s.ffnShard, lmHead: false },
    { name: 'lmHead', n: s.vocabShard, k: s.hidden, lmHead: true },
  ];
}

/** LoRA on q, k, v, o as (inDim, outDim). */
export function loraShapes(s: Shard): { inDim: number; outDim: number }[] {
  return [
    { inDim: s.hidden, outDim: s.heads * s.headDim },
    { inDim: s.hidden, outDim: s.kvHeads * s.headDim },
    { inDim: s.hidden, outDim: s.kvHeads * s.headDim },
    { inDim: s.heads * s.headDim, outDim: s.hidden },
  ];
}
