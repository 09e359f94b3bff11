import { EngineError } from './errors.js';

/** A Llama-architecture decoder: RMSNorm, RoPE (rotate-halves, as Hugging Face stores Llama), GQA, SwiGLU. */
export interface ModelConfig {
  readonly name: string;
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly ffnSize: number;
  readonly vocabSize: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly maxPositionEmbeddings: number;
}

const LLAMA2 = { rmsNormEps: 1e-5, ropeTheta: 10000, maxPositionEmbeddings: 4096 } as const;

/**
 * Built-in shapes. `tiny` is small enough for the CPU backend in CI and still runs on the GPU
 * kernels (head dim 64, every width a multiple of 8).
 */
export const MODEL_CONFIGS: Readonly<Record<string, ModelConfig>> = {
  tiny: { name: 'tiny', numLayers: 2, hiddenSize: 256, numHeads: 4, numKvHeads: 2, headDim: 64, ffnSize: 512, vocabSize: 256, ...LLAMA2, maxPositionEmbeddings: 2048 },
  'llama2-7b': { name: 'llama2-7b', numLayers: 32, hiddenSize: 4096, numHeads: 32, numKvHeads: 32, headDim: 128, ffnSize: 11008, vocabSize: 32000, ...LLAMA2 },
  'llama2-13b': { name: 'llama2-13b', numLayers: 40, hiddenSize: 5120, numHeads: 40, numKvHeads: 40, headDim: 128, ffnSize: 13824, vocabSize: 32000, ...LLAMA2 },
};

export const MODEL_CONFIG_NAMES = Object.keys(MODEL_CONFIGS);

export function modelConfig(name: string): ModelConfig {
  const config = MODEL_CONFIGS[name];
  if (config === undefined) throw new EngineError('model', `model = ${name}: allowed: ${MODEL_CONFIG_NAMES.join(', ')} (or a Hugging Face folder with --checkpoint)`);
  return config;
}

/** Shape errors, each naming the key, the value and what is allowed. */
export function modelConfigErrors(c: ModelConfig): string[] {
  const errors: string[] = [];
  for (const key of ['numLayers', 'hiddenSize', 'numHeads', 'numKvHeads', 'headDim', 'ffnSize', 'vocabSize', 'maxPositionEmbeddings'] as const) {
    if (!Number.isSafeInteger(c[key]) || c[key] <= 0) errors.push(`${key} = ${c[key]}: must be a positive integer`);
  }
  if (c.numHeads % c.numKvHeads !== 0) errors.push(`numKvHeads = ${c.numKvHeads}: must divide numHeads = ${c.numHeads}`);
  if (c.headDim % 2 !== 0) errors.push(`headDim = ${c.headDim}: must be even (RoPE rotates pairs)`);
  if (!(c.rmsNormEps > 0)) errors.push(`rmsNormEps = ${c.rmsNormEps}: must be > 0`);
  if (!(c.ropeTheta > 1)) errors.push(`ropeTheta = ${c.ropeTheta}: must be > 1`);
  return errors;
}

/** Parameters, counted from the tensors `weightSpecs` lists. */
export function numParams(c: ModelConfig): number {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const perLayer = c.hiddenSize * (q + 2 * kv) + q * c.hiddenSize + 3 * c.hiddenSize * c.ffnSize + 2 * c.hiddenSize;
  return c.numLayers * perLayer + 2 * c.vocabSize * c.hiddenSize + c.hiddenSize;
}

/** KV bytes per token for the whole model: K and V × layers × KV heads × head dim × element bytes. */
export function kvBytesPerToken(c: ModelConfig, elementBytes: number): number {
  return 2 * c.numLayers * c.numKvHeads * c.headDim * elementBytes;
}

/** Reads a Hugging Face `config.json` (LlamaForCausalLM) into a ModelConfig. */
export function fromHfConfig(json: Record<string, unknown>, name: string): ModelConfig {
  const num = (key: string, fallback?: number): number => {
    const v = json[key];
    if (typeof v === 'number') return v;
    if (fallback !== undefined) return fallback;
    throw new EngineError('checkpoint', `config.json: ${key} is missing or not a number (got ${JSON.stringify(v)})`);
  };
  const archs = json.architectures;
  if (Array.isArray(archs) && !archs.some((a) => a === 'LlamaForCausalLM')) {
    throw new EngineError('checkpoint', `config.json: architectures = ${JSON.stringify(archs)}: allowed: LlamaForCausalLM`);
  }
  if (json.tie_word_embeddings === true) throw new EngineError('checkpoint', 'config.json: tie_word_embeddings = true: not supported (Llama-2 has a separate lm_head)');
  const hidden = num('hidden_size');
  const heads = num('num_attention_heads');
  const config: ModelConfig = {
    name,
    numLayers: num('num_hidden_layers'),
    hiddenSize: hidden,
    numHeads: heads,
    numKvHeads: num('num_key_value_heads', heads),
    headDim: num('head_dim', hidden / heads),
    ffnSize: num('intermediate_size'),
    vocabSize: num('vocab_size'),
    rmsNormEps: num('rms_norm_eps', 1e-6),
    ropeTheta: num('rope_theta', 10000),
    maxPositionEmbeddings: num('max_position_embeddings', 4096),
  };
  const errors = modelConfigErrors(config);
  if (errors.length > 0) throw new EngineError('checkpoint', `config.json:\n  ${errors.join('\n  ')}`);
  return config;
}

/** The `config.json` Hugging Face transformers needs to load our weights as LlamaForCausalLM. */
export function toHfConfig(c: ModelConfig, torchDtype: 'bfloat16' | 'float32'): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: c.hiddenSize,
    intermediate_size: c.ffnSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    vocab_size: c.vocabSize,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    max_position_embeddings: c.maxPositionEmbeddings,
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: torchDtype,
  };
}
