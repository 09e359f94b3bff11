// Model weights: the tensor list of a Llama checkpoint (Hugging Face names and layouts), seeded
// random weights, loading from a Hugging Face folder and writing one.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bf16ToF32, f16ToF32, f32ToBf16 } from '../../native/index.js';
import { EngineError } from './errors.js';
import { fromHfConfig, toHfConfig, type ModelConfig } from './model-config.js';
import { numElements, openCheckpoint, readTensorData, writeSafetensors, type StArray } from './safetensors.js';

export type WeightDtype = 'bf16' | 'f32';

/** How a random tensor is drawn: value = offset + scale × u, u uniform in [-1, 1). */
export interface RandomInit {
  readonly offset: number;
  readonly scale: number;
}

export interface WeightSpec {
  /** The Hugging Face name (LlamaForCausalLM). */
  readonly name: string;
  /** [out, in] for linear layers (c = x Wᵀ), as Hugging Face stores them. */
  readonly shape: readonly number[];
  readonly init: RandomInit;
}

export const layerName = (layer: number, part: string): string => `model.layers.${layer}.${part}.weight`;

/** Every tensor of the model, in checkpoint order. Random scales keep activations of order 1. */
export function weightSpecs(c: ModelConfig): WeightSpec[] {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const linear = (inDim: number): RandomInit => ({ offset: 0, scale: Math.fround(Math.sqrt(3 / inDim)) });
  const norm: RandomInit = { offset: 1, scale: Math.fround(0.1) };
  const specs: WeightSpec[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, c.hiddenSize], init: { offset: 0, scale: 1 } }];
  for (let l = 0; l < c.numLayers; l++) {
    specs.push(
      { name: layerName(l, 'input_layernorm'), shape: [c.hiddenSize], init: norm },
      { name: layerName(l, 'self_attn.q_proj'), shape: [q, c.hiddenSize], init: linear(c.hiddenSize) },
      { name: layerName(l, 'self_attn.k_proj'), shape: [kv, c.hiddenSize], init: linear(c.hiddenSize) },
      { name: layerName(l, 'self_attn.v_proj'), shape: [kv, c.hiddenSize], init: linear(c.hiddenSize) },
      { name: layerName(l, 'self_attn.o_proj'), shape: [c.hiddenSize, q], init: linear(q) },
      { name: layerName(l, 'post_attention_layernorm'), shape: [c.hiddenSize], init: norm },
      { name: layerName(l, 'mlp.gate_proj'), shape: [c.ffnSize, c.hiddenSize], init: linear(c.hiddenSize) },
      { name: layerName(l, 'mlp.up_proj'), shape: [c.ffnSize, c.hiddenSize], init: linear(c.hiddenSize) },
      { name: layerName(l, 'mlp.down_proj'), shape: [c.hiddenSize, c.ffnSize], init: linear(c.ffnSize) },
    );
  }
  specs.push({ name: 'model.norm.weight', shape: [c.hiddenSize], init: norm }, { name: 'lm_head.weight', shape: [c.vocabSize, c.hiddenSize], init: linear(c.hiddenSize) });
  return specs;
}

/** Where tensor `name` starts in the random pool: a stable hash of its name, so adding a tensor moves no other. */
export interface RandomRecipe extends RandomInit {
  readonly start: number;
}

export interface ModelWeights {
  readonly config: ModelConfig;
  readonly source: string;
  /** The seed of random weights (null for a checkpoint). */
  readonly seed: number | null;
  readonly specs: readonly WeightSpec[];
  /** The tensor as `dtype` (bf16 bits or f32 values), row-major in the spec's shape. */
  tensor(name: string, dtype: WeightDtype): StArray;
  /** Random weights only: how the tensor is drawn from the pool (the GPU fills it by copies). */
  recipe(name: string): RandomRecipe | null;
}

// ---- seeded random weights -------------------------------------------------------------------

/** Pool length: a prime, so rows of any width are distinct windows of the pool. */
export const RANDOM_POOL_SIZE = 16_777_213;

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Pool element j for `seed`: uniform in [-1, 1), exactly representable in f32 (24 bits). */
export function poolValue(seed: number, j: number): number {
  const h = mix32(j ^ mix32(seed + 0x9e3779b9));
  return (h >>> 8) / 8388608 - 1;
}

function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return mix32(h);
}

/** f32 arithmetic for offset + scale × u, so another language computing in f32 gets the same bits. */
function drawValue(init: RandomInit, u: number): number {
  return Math.fround(Math.fround(Math.fround(init.scale) * u) + Math.fround(init.offset));
}

/** The pool values for (offset, scale), rounded to `dtype`: what the GPU copies windows from. */
export function randomPool(seed: number, init: RandomInit, dtype: WeightDtype): StArray {
  const out = dtype === 'f32' ? new Float32Array(RANDOM_POOL_SIZE) : new Uint16Array(RANDOM_POOL_SIZE);
  for (let j = 0; j < RANDOM_POOL_SIZE; j++) {
    const v = drawValue(init, poolValue(seed, j));
    out[j] = dtype === 'f32' ? v : f32ToBf16(v);
  }
  return out;
}

/**
 * Weights determined by a seed: element i of a tensor is pool[(start + i) mod P] under the
 * tensor's (offset, scale), start from a hash of its name. Identical on every backend.
 */
export function randomWeights(config: ModelConfig, seed: number): ModelWeights {
  if (!Number.isSafeInteger(seed)) throw new EngineError('seed', `seed = ${seed}: must be an integer`);
  const specs = weightSpecs(config);
  const byName = new Map(specs.map((s) => [s.name, s]));
  const recipe = (name: string): RandomRecipe => {
    const spec = byName.get(name);
    if (spec === undefined) throw new EngineError('weights', `no tensor named ${name}`);
    return { ...spec.init, start: nameHash(name) % RANDOM_POOL_SIZE };
  };
  return {
    config,
    source: `random(seed=${seed})`,
    seed,
    specs,
    recipe,
    tensor(name, dtype) {
      const r = recipe(name);
      const n = numElements(byName.get(name)!.shape);
      const out = dtype === 'f32' ? new Float32Array(n) : new Uint16Array(n);
      let j = r.start;
      for (let i = 0; i < n; i++) {
        const v = drawValue(r, poolValue(seed, j));
        out[i] = dtype === 'f32' ? v : f32ToBf16(v);
        if (++j === RANDOM_POOL_SIZE) j = 0;
      }
      return out;
    },
  };
}

// ---- Hugging Face folders --------------------------------------------------------------------

function convert(data: StArray, from: 'BF16' | 'F16' | 'F32', to: WeightDtype): StArray {
  if (from === 'BF16' && to === 'bf16') return data;
  if (from === 'F32' && to === 'f32') return data;
  const n = data.length;
  if (to === 'f32') {
    const out = new Float32Array(n);
    const conv = from === 'BF16' ? bf16ToF32 : f16ToF32;
    for (let i = 0; i < n; i++) out[i] = conv(data[i]);
    return out;
  }
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = f32ToBf16(from === 'F16' ? f16ToF32(data[i]) : data[i]);
  return out;
}

/** Loads a Hugging Face Llama folder (config.json + model.safetensors or sharded with an index). */
export function loadHfFolder(dir: string): ModelWeights {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  } catch (e) {
    throw new EngineError('checkpoint', `${join(dir, 'config.json')}: ${(e as Error).message}`);
  }
  const config = fromHfConfig(json, dir);
  const checkpoint = openCheckpoint(dir);
  const specs = weightSpecs(config);
  for (const spec of specs) {
    const found = checkpoint.tensors.get(spec.name);
    if (found === undefined) throw new EngineError('checkpoint', `${dir}: tensor ${spec.name} is missing`);
    if (JSON.stringify(found.info.shape) !== JSON.stringify(spec.shape)) {
      throw new EngineError('checkpoint', `${dir}: tensor ${spec.name} has shape ${JSON.stringify(found.info.shape)}, config.json implies ${JSON.stringify(spec.shape)}`);
    }
  }
  return {
    config,
    source: `checkpoint(${dir})`,
    seed: null,
    specs,
    recipe: () => null,
    tensor(name, dtype) {
      const found = checkpoint.tensors.get(name);
      if (found === undefined) throw new EngineError('checkpoint', `${dir}: tensor ${name} is missing`);
      return convert(readTensorData(found.file, found.info), found.info.dtype, dtype);
    },
  };
}

/** Writes config.json and model.safetensors that Hugging Face transformers loads as LlamaForCausalLM. */
export function writeHfFolder(dir: string, weights: ModelWeights, dtype: WeightDtype): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(toHfConfig(weights.config, dtype === 'bf16' ? 'bfloat16' : 'float32'), null, 2) + '\n');
  writeSafetensors(
    join(dir, 'model.safetensors'),
    weights.specs.map((s) => ({ name: s.name, dtype: dtype === 'bf16' ? 'BF16' : 'F32', shape: s.shape, data: () => weights.tensor(s.name, dtype) })),
    { format: 'pt', source: weights.source },
  );
}
