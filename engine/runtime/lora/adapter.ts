// A LoRA adapter in memory: per layer and target module, A [rank, in] and B [out, rank] as f32
// values (bf16-exact for adapters read from bf16 files and for random ones), and the scale PEFT
// applies (lora_alpha / r, or lora_alpha / sqrt(r) with rsLoRA). The delta of a module is
// scale · B · A · x, i.e. the merged weight is W + scale · B · A.
import { createHash } from 'node:crypto';
import { bf16ToF32, f32ToBf16 } from '../../../native/index.js';
import { EngineError } from '../errors.js';
import type { ModelConfig } from '../model-config.js';

export const LORA_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraModule = (typeof LORA_MODULES)[number];
export const ATTENTION_MODULES: readonly LoraModule[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];
/** Ranks the engine serves (the issue's 8–64, and anything up to the kernels' 64 with the MLP's stacked 2r <= 128). */
export const LORA_MAX_RANK = 64;

/** A LoRA-typed error that names the adapter (version mismatch, unknown adapter, bad folder). */
export class LoraError extends EngineError {
  constructor(
    code: 'lora_version' | 'lora_unknown' | 'lora_format' | 'lora_tenant' | 'lora_rank',
    readonly adapter: string,
    message: string,
  ) {
    super(code, `LoRA adapter ${adapter}: ${message}`);
    this.name = 'LoraError';
  }
}

export interface LoraPair {
  /** [rank, inDim] */
  readonly a: Float32Array;
  /** [outDim, rank] */
  readonly b: Float32Array;
}

export interface LoraAdapter {
  readonly name: string;
  readonly rank: number;
  readonly alpha: number;
  readonly useRslora: boolean;
  /** The factor on B·A·x. */
  readonly scale: number;
  readonly targets: readonly LoraModule[];
  readonly numLayers: number;
  /** Key `${layer}.${module}`; every layer has every target. */
  readonly pairs: ReadonlyMap<string, LoraPair>;
}

export const pairKey = (layer: number, module: LoraModule): string => `${layer}.${module}`;

export function loraScale(alpha: number, rank: number, useRslora: boolean): number {
  return useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
}

/** [inDim, outDim] of a target module's base weight (out × in, as Hugging Face stores it). */
export function moduleDims(c: ModelConfig, module: LoraModule): { inDim: number; outDim: number } {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  switch (module) {
    case 'q_proj': return { inDim: c.hiddenSize, outDim: q };
    case 'k_proj':
    case 'v_proj': return { inDim: c.hiddenSize, outDim: kv };
    case 'o_proj': return { inDim: q, outDim: c.hiddenSize };
    case 'gate_proj':
    case 'up_proj': return { inDim: c.hiddenSize, outDim: c.ffnSize };
    case 'down_proj': return { inDim: c.ffnSize, outDim: c.hiddenSize };
  }
}

/** The Hugging Face module path of a target (`self_attn.q_proj`, `mlp.down_proj`). */
export function modulePath(module: LoraModule): string {
  return ATTENTION_MODULES.includes(module) ? `self_attn.${module}` : `mlp.${module}`;
}

export interface RandomAdapterSpec {
  readonly name: string;
  readonly seed: number;
  readonly rank: number;
  /** Default 2 × rank (PEFT's common choice; scale 2). */
  readonly alpha?: number;
  /** Default q/k/v/o. */
  readonly targets?: readonly LoraModule[];
  /** Size of B relative to a unit-variance delta: the delta is about `deltaScale` of the base output. */
  readonly deltaScale?: number;
}

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return mix32(h);
}

/** Uniform [-1, 1) values × scale, rounded to bf16, from (seed, name, tensor key): deterministic everywhere. */
function fillRandom(out: Float32Array, seed: number, key: string, scale: number): void {
  const base = mix32(nameHash(key) ^ mix32(seed + 0x9e3779b9));
  for (let i = 0; i < out.length; i++) {
    const u = (mix32(base + Math.imul(i, 0x27d4eb2f)) >>> 8) / 8388608 - 1;
    out[i] = bf16ToF32(f32ToBf16(Math.fround(u * scale)));
  }
}

export function checkRank(name: string, rank: number): void {
  if (!Number.isSafeInteger(rank) || rank < 1 || rank > LORA_MAX_RANK) throw new LoraError('lora_rank', name, `rank = ${rank}: allowed: 1..${LORA_MAX_RANK}`);
}

/**
 * A deterministic random adapter for benchmarks: A like a Kaiming-uniform init, B non-zero (PEFT
 * starts B at zero, which would make every check trivial) and sized so the delta is about
 * `deltaScale` (default 0.2) of a unit-variance projection output.
 */
export function randomAdapter(config: ModelConfig, spec: RandomAdapterSpec): LoraAdapter {
  checkRank(spec.name, spec.rank);
  const targets = spec.targets ?? ATTENTION_MODULES;
  const alpha = spec.alpha ?? 2 * spec.rank;
  const scale = loraScale(alpha, spec.rank, false);
  const delta = spec.deltaScale ?? 0.2;
  const pairs = new Map<string, LoraPair>();
  for (let l = 0; l < config.numLayers; l++) {
    for (const m of targets) {
      const { inDim, outDim } = moduleDims(config, m);
      const a = new Float32Array(spec.rank * inDim);
      const b = new Float32Array(outDim * spec.rank);
      fillRandom(a, spec.seed, `${spec.name}/${pairKey(l, m)}/A`, Math.sqrt(3 / inDim));
      fillRandom(b, spec.seed, `${spec.name}/${pairKey(l, m)}/B`, (delta / scale) * Math.sqrt(3 / spec.rank));
      pairs.set(pairKey(l, m), { a, b });
    }
  }
  return { name: spec.name, rank: spec.rank, alpha, useRslora: false, scale, targets, numLayers: config.numLayers, pairs };
}

/**
 * The adapter's content hash: sha256 over rank, alpha, rsLoRA, targets and every tensor's f32
 * bytes in (layer, module) order. Identical content gives an identical hash on any machine.
 */
export function adapterContentSha256(adapter: LoraAdapter): string {
  const h = createHash('sha256');
  h.update(JSON.stringify({ rank: adapter.rank, alpha: adapter.alpha, useRslora: adapter.useRslora, targets: adapter.targets, numLayers: adapter.numLayers }));
  for (let l = 0; l < adapter.numLayers; l++) {
    for (const m of adapter.targets) {
      const p = adapter.pairs.get(pairKey(l, m))!;
      h.update(new Uint8Array(p.a.buffer, p.a.byteOffset, p.a.byteLength));
      h.update(new Uint8Array(p.b.buffer, p.b.byteOffset, p.b.byteLength));
    }
  }
  return h.digest('hex');
}

/** W + scale · B · A for one module's base weight [out, in] (f32), the merged model's weight. */
export function mergedWeight(base: Float32Array, pair: LoraPair, rank: number, inDim: number, outDim: number, scale: number): Float32Array {
  if (base.length !== inDim * outDim) throw new Error(`merge: base has ${base.length} values, expected ${outDim} x ${inDim}`);
  const out = Float32Array.from(base);
  for (let o = 0; o < outDim; o++) {
    for (let i = 0; i < inDim; i++) {
      let s = 0;
      for (let r = 0; r < rank; r++) s += pair.b[o * rank + r] * pair.a[r * inDim + i];
      out[o * inDim + i] += scale * s;
    }
  }
  return out;
}
