// Model shapes, GPU specs and the KV capacity an engine would derive from them.

export type ModelName = 'llama2-7b' | 'llama2-13b' | 'llama2-70b';
export type GpuName = 'a100-80gb' | 'h100' | 'h200';
export type WeightDtype = 'bf16' | 'fp16' | 'fp8' | 'int8' | 'int4';
export type KvDtype = 'bf16' | 'fp16' | 'fp8';

export interface ModelShape {
  readonly name: ModelName;
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly ffnSize: number;
  readonly vocabSize: number;
}

export interface GpuSpec {
  readonly name: GpuName;
  readonly memoryBytes: number;
  /** Spec HBM bandwidth. */
  readonly memoryBytesPerS: number;
  /** Dense bf16 tensor-core peak. */
  readonly bf16FlopsPerS: number;
  /** NVLink bandwidth per direction, for tensor-parallel all-reduce. */
  readonly nvlinkBytesPerS: number;
  /** Host-to-device bandwidth (LoRA adapter loads). */
  readonly pcieBytesPerS: number;
}

export const MODELS: Readonly<Record<ModelName, ModelShape>> = {
  'llama2-7b': { name: 'llama2-7b', numLayers: 32, hiddenSize: 4096, numHeads: 32, numKvHeads: 32, ffnSize: 11008, vocabSize: 32000 },
  'llama2-13b': { name: 'llama2-13b', numLayers: 40, hiddenSize: 5120, numHeads: 40, numKvHeads: 40, ffnSize: 13824, vocabSize: 32000 },
  'llama2-70b': { name: 'llama2-70b', numLayers: 80, hiddenSize: 8192, numHeads: 64, numKvHeads: 8, ffnSize: 28672, vocabSize: 32000 },
};

const GB = 1e9;
export const GPUS: Readonly<Record<GpuName, GpuSpec>> = {
  'a100-80gb': { name: 'a100-80gb', memoryBytes: 80 * GB, memoryBytesPerS: 2.039e12, bf16FlopsPerS: 312e12, nvlinkBytesPerS: 300e9, pcieBytesPerS: 25e9 },
  // H100 SXM5 80 GB (HBM3): the device tool's other card; its profile is measured
  // (calibration/runs/2026-12-07-h100).
  h100: { name: 'h100', memoryBytes: 80 * GB, memoryBytesPerS: 3.35e12, bf16FlopsPerS: 989e12, nvlinkBytesPerS: 450e9, pcieBytesPerS: 50e9 },
  h200: { name: 'h200', memoryBytes: 141 * GB, memoryBytesPerS: 4.8e12, bf16FlopsPerS: 989e12, nvlinkBytesPerS: 450e9, pcieBytesPerS: 50e9 },
};

export const MODEL_NAMES = Object.keys(MODELS) as ModelName[];
export const GPU_NAMES = Object.keys(GPUS) as GpuName[];

/** The catalog GPU a device name (nvidia-smi's, the addon's) is, or null. */
export function gpuOfDeviceName(name: string): GpuName | null {
  if (/H200/i.test(name)) return 'h200';
  if (/H100/i.test(name)) return 'h100';
  if (/A100/i.test(name)) return 'a100-80gb';
  return null;
}
export const WEIGHT_DTYPES: readonly WeightDtype[] = ['bf16', 'fp16', 'fp8', 'int8', 'int4'];
export const KV_DTYPES: readonly KvDtype[] = ['bf16', 'fp16', 'fp8'];

export const WEIGHT_BYTES: Readonly<Record<WeightDtype, number>> = { bf16: 2, fp16: 2, fp8: 1, int8: 1, int4: 0.5 };
export const KV_BYTES: Readonly<Record<KvDtype, number>> = { bf16: 2, fp16: 2, fp8: 1 };

export function headDim(m: ModelShape): number {
  return m.hiddenSize / m.numHeads;
}

/** Parameters: attention (q, o full; k, v per KV head), gated FFN (3 matrices), embeddings and LM head. */
export function numParams(m: ModelShape): number {
  const kvDim = m.numKvHeads * headDim(m);
  const attention = 2 * m.hiddenSize * m.hiddenSize + 2 * m.hiddenSize * kvDim;
  const ffn = 3 * m.hiddenSize * m.ffnSize;
  return m.numLayers * (attention + ffn) + 2 * m.vocabSize * m.hiddenSize;
}

/** KV bytes per token of the whole model = 2 (K and V) × layers × kv heads × head dim × bytes. */
export function kvBytesPerToken(m: ModelShape, kvDtype: KvDtype): number {
  return 2 * m.numLayers * m.numKvHeads * headDim(m) * KV_BYTES[kvDtype];
}

export interface ReplicaShape {
  readonly model: ModelShape;
  readonly gpu: GpuSpec;
  readonly tp: number;
  readonly weightDtype: WeightDtype;
  readonly kvDtype: KvDtype;
}

export interface KvCapacityInput {
  readonly shape: ReplicaShape;
  /** Fraction of GPU memory the engine may use (vLLM's gpu_memory_utilization). */
  readonly gpuMemoryUtilization: number;
  /** Peak tokens in one step: sizes the activation workspace. */
  readonly maxNumBatchedTokens: number;
  readonly pageSizeTokens: number;
}

export interface KvCapacity {
  readonly weightBytesPerGpu: number;
  readonly activationBytesPerGpu: number;
  readonly kvBytesPerGpu: number;
  readonly numBlocks: number;
  readonly numTokens: number;
}

/** Fixed per-GPU reservation for the CUDA context, NCCL buffers and CUDA graphs. */
const RUNTIME_OVERHEAD_BYTES = 1.5 * GB;

/**
 * KV capacity as an engine computes it at start-up: usable memory minus the weight shard, minus
 * the activation peak of the largest step (as vLLM's profiling run measures it), divided into
 * pages. Throws when the model does not fit, naming what was asked.
 */
export function kvCapacity(input: KvCapacityInput): KvCapacity {
  const { model, gpu, tp, weightDtype, kvDtype } = input.shape;
  if (model.numKvHeads % tp !== 0 && tp % model.numKvHeads !== 0) {
    throw new CatalogError(`tp = ${tp}: must divide ${model.name}'s ${model.numKvHeads} KV heads`);
  }
  const weightBytesPerGpu = (numParams(model) * WEIGHT_BYTES[weightDtype]) / tp;
  // Live activations of one step: residual + q/k/v/o + gated FFN intermediates in bf16, plus the
  // fp32 logits of the sampled rows (bounded by the token budget).
  const perToken = (4 * model.hiddenSize + (3 * model.ffnSize) / tp) * 2;
  const activationBytesPerGpu = input.maxNumBatchedTokens * perToken + RUNTIME_OVERHEAD_BYTES;
  const usable = gpu.memoryBytes * input.gpuMemoryUtilization;
  const kvBytesPerGpu = usable - weightBytesPerGpu - activationBytesPerGpu;
  const blockBytesPerGpu = (kvBytesPerToken(model, kvDtype) / tp) * input.pageSizeTokens;
  const numBlocks = Math.floor(kvBytesPerGpu / blockBytesPerGpu);
  if (numBlocks <= 0) {
    const gib = (b: number): string => (b / GB).toFixed(1);
    throw new CatalogError(
      `tp = ${tp}: ${model.name} (${weightDtype}) needs ${gib(weightBytesPerGpu)} GB of weights per GPU, leaving no KV space on ${gpu.name} ` +
        `(${gib(usable)} GB usable); allowed: a larger tp or a smaller weight dtype`,
    );
  }
  return { weightBytesPerGpu, activationBytesPerGpu, kvBytesPerGpu, numBlocks, numTokens: numBlocks * input.pageSizeTokens };
}

/** A model/GPU/dtype/TP combination that cannot work, with the key, the value and what is allowed. */
export class CatalogError extends Error {
  readonly code = 'catalog' as const;
  constructor(message: string) {
    super(message);
    this.name = 'CatalogError';
  }
}
