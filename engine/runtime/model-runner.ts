import { cpu, decode, SAMPLE_STATUS, SAMPLING_MAX_VOCAB_GPU, type SampleResult } from '../../native/index.js';
import { cpuDevice, gpuDevice, gpuRowBucket, type Device, type SampleParams } from './device.js';
import { EngineError } from './errors.js';
import { LlamaModel, type DeviceLogits, type ForwardSeq, type HostLogits, type KvCacheShape } from './llama.js';
import type { ModelRunner, RunnerResult, RunnerStep } from './runner.js';
import type { ModelWeights } from './weights.js';

export type Backend = 'cpu' | 'gpu';

export interface LlamaRunnerOptions {
  readonly backend: Backend;
  /** Activation, weight and KV dtype: bf16 (both backends) or f32 (CPU only). */
  readonly dtype: 'bf16' | 'f32';
  readonly kv: KvCacheShape;
  /** Most tokens in one step (sizes the GPU workspace). */
  readonly maxNumBatchedTokens: number;
  /** Most sequences in one step (sizes the GPU logits buffer). */
  readonly maxNumSeqs: number;
  /** Pad token rows to the GPU's buckets (default: on the GPU only; tests turn it on for the CPU). */
  readonly bucketRows?: boolean;
  /**
   * Sample with the fused sampler on the device and copy back only tokens, logprobs and status
   * (default: on the GPU, where vocab <= SAMPLING_MAX_VOCAB_GPU; tests turn it on for the CPU).
   * Off: the logits come back to the host (greedy: argmax over the raw bits; else the CPU sampler).
   */
  readonly sampleOnDevice?: boolean;
}

/** GPU workspace bytes for a step of `tokens` tokens and `seqs` sampled rows (every scratch tensor, aligned). */
function workspaceBytes(w: ModelWeights, tokens: number, seqs: number): number {
  const c = w.config;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const perToken = (4 * c.hiddenSize + 2 * qDim + 2 * kvDim + 3 * c.ffnSize) * 2 + 9 * 4 + 64;
  const perSeq = (3 * c.hiddenSize + c.vocabSize) * 2 + 64 * 4;
  return tokens * perToken + seqs * perSeq + 64 * 1024 * 1024;
}

/**
 * The Llama model as a runner: one forward over the whole mixed batch, then sampling. On the GPU
 * the sampled rows' bf16 logits are widened to f32 on the device (castF32) and the fused sampler
 * runs there; only tokens, logprobs and status come back. Greedy picks the largest logit, lowest
 * index on ties, on either path (the widening is exact, so the order is the bf16 bits' order).
 */
export class LlamaRunner implements ModelRunner {
  readonly name: string;
  readonly vocabSize: number;
  readonly model: LlamaModel;
  private readonly device: Device;
  private readonly sampleOnDevice: boolean;
  /** Log-probabilities (raw logits' log-softmax) of the last step's sampled tokens, device path only. */
  lastLogprobs: Float32Array | null = null;

  constructor(weights: ModelWeights, readonly options: LlamaRunnerOptions) {
    if (options.backend === 'gpu' && options.dtype !== 'bf16') throw new EngineError('dtype', `dtype = ${options.dtype}: the GPU backend runs bf16 only`);
    this.device =
      options.backend === 'cpu'
        ? cpuDevice(options.dtype, options.bucketRows === true ? gpuRowBucket : (n) => n)
        : gpuDevice('bf16', workspaceBytes(weights, gpuRowBucket(options.maxNumBatchedTokens), gpuRowBucket(options.maxNumSeqs)), 0n);
    this.model = new LlamaModel(this.device, weights, options.kv);
    this.name = `llama-${options.backend}-${options.dtype}`;
    this.vocabSize = weights.config.vocabSize;
    const fits = this.vocabSize <= SAMPLING_MAX_VOCAB_GPU || options.backend === 'cpu';
    this.sampleOnDevice = (options.sampleOnDevice ?? options.backend === 'gpu') && fits;
  }

  execute(step: RunnerStep): RunnerResult {
    // LoRA is a later piece of work (multi-LoRA kernels exist in native/): running an adapter's
    // request on the base model would be a silent wrong answer, so it is refused.
    const adapterItem = step.plan.items.find((item) => item.adapterSlot >= 0);
    if (adapterItem !== undefined || step.plan.loraLoads.length > 0) {
      throw new EngineError('lora', `request ${adapterItem?.seqId ?? step.plan.loraLoads[0].adapter} uses a LoRA adapter: the model runner does not serve adapters yet (use a workload without tenant adapters)`);
    }
    const items = step.items.filter((item) => item.samples);
    this.lastLogprobs = null;
    this.device.resetScratch();
    const params = this.sampleOnDevice && items.length > 0 ? this.device.stageSampleParams(samplingParams(items)) : null;
    this.device.beginTiming();
    // A runner item is a forward sequence (token ids, context, block table, samples).
    const out = this.model.forward({ seqs: step.items, blockCopies: step.plan.blockCopies });
    if (out !== null && out.rows !== items.length) throw new Error(`forward returned ${out.rows} logit rows for ${items.length} sampling items`);
    let gpuMs: number | null;
    let sampled: Int32Array | null = null;
    if (out === null) {
      gpuMs = this.device.endTimingMs();
    } else if (params !== null) {
      // GPU time covers the forward, the cast and the sampler; the small copy back is after it.
      const read = this.device.sample(out.logits, out.dtype, out.rows, this.vocabSize, params);
      gpuMs = this.device.endTimingMs();
      const result = read();
      checkStatus(result);
      sampled = result.tokens;
      this.lastLogprobs = result.logprobs;
    } else {
      gpuMs = this.device.endTimingMs();
      const logits = this.readLogits(out);
      sampled = items.every((x) => x.sampling.temperature === 0) ? argmaxRows(logits, this.vocabSize) : sampleOnHost(toF32(logits), this.vocabSize, items);
    }
    const tokens = new Int32Array(step.items.length).fill(-1);
    if (sampled !== null) {
      let r = 0;
      step.items.forEach((item, i) => {
        if (item.samples) tokens[i] = sampled[r++];
      });
    }
    return { tokens, gpuTimeUs: gpuMs === null ? null : Math.round(gpuMs * 1000) };
  }

  /**
   * Runs one forward for every row bucket up to the step limits, so the GPU's GEMM plans are tuned
   * before timing starts. Writes garbage into KV block 0 only, which no sequence reads before
   * writing it.
   */
  warmup(): number {
    const page = this.options.kv.pageSizeTokens;
    let numBuckets = 0;
    // Bound: buckets grow at least by 1 each pass up to maxNumBatchedTokens.
    for (let n = 1; n <= this.options.maxNumBatchedTokens; n = this.device.rowBucket(n) + 1) {
      const rows = this.device.rowBucket(n);
      const tokens = Math.min(rows, this.options.maxNumBatchedTokens);
      const seqs: ForwardSeq[] =
        tokens <= this.options.maxNumSeqs
          ? Array.from({ length: tokens }, () => ({ tokenIds: Int32Array.of(0), contextTokens: 0, blockTable: [0], samples: true }))
          : [{ tokenIds: new Int32Array(tokens), contextTokens: 0, blockTable: new Array(Math.ceil(tokens / page)).fill(0), samples: true }];
      this.forwardHost(seqs);
      numBuckets++;
    }
    return numBuckets;
  }

  /** The f32 logits of one forward (tests and the transformers comparison). */
  forwardLogits(seqs: readonly ForwardSeq[]): Float32Array {
    return toF32(this.forwardHost(seqs));
  }

  /** One forward outside the engine loop, its logits [numSampling, vocab] read back to the host. */
  private forwardHost(seqs: readonly ForwardSeq[]): HostLogits {
    this.device.resetScratch();
    const out = this.model.forward({ seqs, blockCopies: [] });
    return out === null ? { dtype: 'f32', data: new Float32Array(0) } : this.readLogits(out);
  }

  private readLogits(out: DeviceLogits): HostLogits {
    return { dtype: out.dtype, data: this.device.readHost(out.logits, out.dtype, out.rows * this.vocabSize) };
  }

  close(): void {
    this.device.free();
  }
}

type SamplingItem = Pick<RunnerStep['items'][number], 'sampling' | 'outputIndex'>;

/** The sampler's per-row parameters: the request's params, its seed, and the output index as the stream offset. */
function samplingParams(items: readonly SamplingItem[]): SampleParams {
  return {
    temperature: Float32Array.from(items, (x) => x.sampling.temperature),
    topK: Int32Array.from(items, (x) => x.sampling.topK),
    topP: Float32Array.from(items, (x) => x.sampling.topP),
    minP: Float32Array.from(items, (x) => x.sampling.minP),
    seeds: BigUint64Array.from(items, (x) => BigInt.asUintN(64, BigInt(x.sampling.seed))),
    offsets: BigUint64Array.from(items, (x) => BigInt(x.outputIndex)),
  };
}

function checkStatus(result: SampleResult): void {
  for (let r = 0; r < result.status.length; r++) {
    if (result.status[r] !== SAMPLE_STATUS.ok) throw new Error(`sampling row ${r}: status ${result.status[r]} (NaN/inf logits or bad parameters)`);
  }
}

function sampleOnHost(logits: Float32Array, vocab: number, items: readonly SamplingItem[]): Int32Array {
  const result = cpu().sample({ batch: items.length, vocab, logits, ...samplingParams(items) });
  checkStatus(result);
  return result.tokens;
}

function toF32(logits: HostLogits): Float32Array {
  return logits.dtype === 'f32' ? (logits.data as Float32Array) : decode('bf16', logits.data);
}

/** bf16 bits → an integer in the same order as the value the bits encode (-0 ranks as 0). */
const BF16_ORDER_KEY: Int32Array = (() => {
  const keys = new Int32Array(65536);
  for (let x = 0; x < 65536; x++) keys[x] = x & 0x8000 && x !== 0x8000 ? ~x & 0xffff : (x & 0x7fff) | 0x8000;
  return keys;
})();

/**
 * Greedy sampling without converting the logits: a row's argmax over bf16 bits through an
 * order-preserving integer key (first maximum wins). One monomorphic loop per dtype: this runs
 * over batch × vocab values every step.
 */
export function argmaxRows(logits: HostLogits, vocab: number): Int32Array {
  return logits.dtype === 'bf16' ? argmaxBf16(logits.data as Uint16Array, vocab) : argmaxF32(logits.data as Float32Array, vocab);
}

function argmaxBf16(data: Uint16Array, vocab: number): Int32Array {
  const rows = data.length / vocab;
  const out = new Int32Array(rows);
  const keys = BF16_ORDER_KEY;
  for (let r = 0; r < rows; r++) {
    const base = r * vocab;
    let best = 0;
    let bestKey = -1;
    for (let v = 0; v < vocab; v++) {
      const key = keys[data[base + v]];
      if (key > bestKey) {
        bestKey = key;
        best = v;
      }
    }
    out[r] = best;
  }
  return out;
}

function argmaxF32(data: Float32Array, vocab: number): Int32Array {
  const rows = data.length / vocab;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * vocab;
    let best = 0;
    let bestValue = -Infinity;
    for (let v = 0; v < vocab; v++) {
      const x = data[base + v];
      if (x > bestValue) {
        bestValue = x;
        best = v;
      }
    }
    out[r] = best;
  }
  return out;
}
