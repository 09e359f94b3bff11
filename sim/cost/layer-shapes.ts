// The kernels one decoder layer of a Llama-2 model runs on one GPU of a tensor-parallel group,
// and their fixed dimensions: what the profile cost model looks up. Fused QKV and gate/up
// projections (as vLLM runs them); column-parallel q/k/v and gate/up, row-parallel o and down;
// a vocab-parallel LM head. With tp > numKvHeads each GPU keeps one (replicated) KV head.
import { headDim, type ModelShape } from '../catalog.js';

export interface ShardDims {
  readonly hidden: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly ffnShard: number;
  readonly vocabShard: number;
}

export interface LayerGemm {
  readonly name: 'qkv' | 'q' | 'k' | 'v' | 'o' | 'gateUp' | 'down';
  readonly n: number;
  readonly k: number;
}

export interface LoraProjection {
  readonly name: 'q' | 'k' | 'v' | 'o';
  readonly inDim: number;
  readonly outDim: number;
}

export function shardDims(model: ModelShape, tp: number): ShardDims {
  const hd = headDim(model);
  return {
    hidden: model.hiddenSize,
    heads: model.numHeads / tp,
    kvHeads: Math.max(1, model.numKvHeads / tp),
    headDim: hd,
    ffnShard: model.ffnSize / tp,
    vocabShard: Math.ceil(model.vocabSize / tp),
  };
}

export function layerGemms(d: ShardDims): LayerGemm[] {
  return [
    { name: 'qkv', n: (d.heads + 2 * d.kvHeads) * d.headDim, k: d.hidden },
    { name: 'o', n: d.hidden, k: d.heads * d.headDim },
    { name: 'gateUp', n: 2 * d.ffnShard, k: d.hidden },
    { name: 'down', n: d.hidden, k: d.ffnShard },
  ];
}

/** The same layer for an engine that runs q, k and v as three GEMMs (ours does; gate/up stays fused). */
export function layerGemmsSeparateQkv(d: ShardDims): LayerGemm[] {
  return layerGemms(d).flatMap((g): LayerGemm[] =>
    g.name !== 'qkv'
      ? [g]
      : [
          { name: 'q', n: d.heads * d.headDim, k: d.hidden },
          { name: 'k', n: d.kvHeads * d.headDim, k: d.hidden },
          { name: 'v', n: d.kvHeads * d.headDim, k: d.hidden },
        ],
  );
}

export function lmHeadGemm(d: ShardDims): { n: number; k: number } {
  return { n: d.vocabShard, k: d.hidden };
}

/** LoRA on q, k, v, o (the case study's adapters), sharded like the base projections. */
export function loraProjections(d: ShardDims): LoraProjection[] {
  return [
    { name: 'q', inDim: d.hidden, outDim: d.heads * d.headDim },
    { name: 'k', inDim: d.hidden, outDim: d.kvHeads * d.headDim },
    { name: 'v', inDim: d.hidden, outDim: d.kvHeads * d.headDim },
    { name: 'o', inDim: d.heads * d.headDim, outDim: d.hidden },
  ];
}
