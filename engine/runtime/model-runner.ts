import { cpu, decode, gpu, SAMPLE_STATUS, SAMPLING_MAX_VOCAB_GPU, type SampleResult } from '../../native/index.js';
import { DecodeGraphs } from './decode-graphs.js';
import { cpuDevice, gpuDevice, gpuRowBucket, type Device, type SampleParams } from './device.js';
import { EngineError } from './errors.js';
import { LlamaModel, type DeviceLogits, type ForwardSeq, type HostLogits, type KvCacheShape } from './llama.js';
import type { LoraModule } from './lora/adapter.js';
import type { LoraRegistry } from './lora/registry.js';
import { LoraSlots } from './lora/slots.js';
import type { ModelRunner, RunnerItem, RunnerResult, RunnerStep } from './runner.js';
import type { ModelWeights } from './weights.js';
import type { SeqId } from '../policy/index.js';

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
  /**
   * False: the no-KV-cache baseline. Every step recomputes each sequence from its first token
   * (a full prefill over prompt + generated tokens; nothing computed in an earlier step is
   * read), in forwards of at most maxNumBatchedTokens tokens. Default true.
   */
  readonly kvCache?: boolean;
  /** Multi-tenant LoRA: adapters come from the registry into `numSlots` slots (the policy's LoRA cache decides which). */
  readonly lora?: LlamaLoraOptions;
  /**
   * Replay decode-only steps from CUDA graphs (decode-graphs.ts; GPU only, default off): the
   * device then runs on a stream of its own. Steps with a prefill chunk, a LoRA adapter, block
   * copies, host sampling or more rows than `graphMaxRows` run eagerly. `useGraphs` switches it.
   */
  readonly cudaGraphs?: boolean;
  /** Largest decode batch replayed from a graph (rounded up to a row bucket; default maxNumSeqs). */
  readonly graphMaxRows?: number;
  /** One q/k/v GEMM in single-row steps without LoRA (LlamaModel.fuseQkv; default off). */
  readonly fuseQkv?: boolean;
  /** Batch-1 decode steps through the fused one-row kernels (LlamaModel.fuseDecode; default off). */
  readonly fuseDecode?: boolean;
  /** Shortest flash-decoding split in tokens (LlamaModel.decodeMinPartitionTokens): a power of two in [16, 512], default 128. */
  readonly decodeMinPartitionTokens?: number;
}

export interface LlamaLoraOptions {
  readonly registry: LoraRegistry;
  readonly numSlots: number;
  /** Largest rank served (rounded up to a multiple of 8). */
  readonly maxRank: number;
  /** Modules the served adapters may target (slot memory is allocated for these only). */
  readonly targets: readonly LoraModule[];
}

/** GPU workspace bytes for a step of `tokens` tokens and `seqs` sampled rows (every scratch tensor, aligned). */
function workspaceBytes(w: ModelWeights, tokens: number, seqs: number): number {
  const c = w.config;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  // Activations, index arrays and the LoRA shrink output (f32, up to 128 ranks wide).
  const perToken = (4 * c.hiddenSize + 2 * qDim + 2 * kvDim + 3 * c.ffnSize) * 2 + 11 * 4 + 64 + 128 * 4;
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
  readonly vocabSize: number;
  readonly model: LlamaModel;
  private readonly device: Device;
  /**
   * Baseline switches, settable between runs so one loaded model serves every comparison (the
   * GPU check): sampling on the device or the host, and the KV cache on or off.
   */
  sampleOnDevice: boolean;
  kvCache: boolean;
  /** The adapters' slots (null without LoRA). */
  readonly lora: LoraSlots | null;
  private readonly registry: LoraRegistry | null;
  /** No-KV-cache baseline: each live sequence's tokens so far (prompt and generated), the recompute's input. */
  private readonly history = new Map<SeqId, number[]>();
  /** Host time of the last step's sampling on the host (logits copy back + sampler), µs; 0 when sampling on the device. */
  lastHostSampleUs = 0;
  /** Forwards the last step ran (more than 1 only without a KV cache). */
  lastNumForwards = 0;
  /** Decode graphs (null unless built with cudaGraphs). */
  readonly graphs: DecodeGraphs | null;
  /** Replay fitting decode steps from graphs (settable between runs; needs cudaGraphs at construction). */
  useGraphs: boolean;
  /** Whether the last step replayed a graph. */
  lastReplayed = false;
  private readonly stream: bigint;

  constructor(weights: ModelWeights, readonly options: LlamaRunnerOptions) {
    if (options.backend === 'gpu' && options.dtype !== 'bf16') throw new EngineError('dtype', `dtype = ${options.dtype}: the GPU backend runs bf16 only`);
    if (options.cudaGraphs === true && options.backend !== 'gpu') throw new EngineError('graphs', 'cudaGraphs needs the GPU backend (the CPU backend runs every op eagerly)');
    // Graphs are captured on a stream of the device's own (the default stream cannot be captured).
    this.stream = options.cudaGraphs === true ? gpu().createStream() : 0n;
    this.device =
      options.backend === 'cpu'
        ? cpuDevice(options.dtype, options.bucketRows === true ? gpuRowBucket : (n) => n)
        : gpuDevice('bf16', workspaceBytes(weights, gpuRowBucket(options.maxNumBatchedTokens), gpuRowBucket(options.maxNumSeqs)), this.stream);
    this.model = new LlamaModel(this.device, weights, options.kv);
    this.model.fuseQkv = options.fuseQkv ?? false;
    this.model.fuseDecode = options.fuseDecode ?? false;
    const minPart = options.decodeMinPartitionTokens ?? 128;
    if (!Number.isSafeInteger(minPart) || minPart < 16 || minPart > 512 || (minPart & (minPart - 1)) !== 0) {
      throw new EngineError('decode_partition', `decodeMinPartitionTokens = ${minPart}: must be a power of two in [16, 512]`);
    }
    this.model.decodeMinPartitionTokens = minPart;
    this.vocabSize = weights.config.vocabSize;
    const fits = this.vocabSize <= SAMPLING_MAX_VOCAB_GPU || options.backend === 'cpu';
    this.sampleOnDevice = (options.sampleOnDevice ?? options.backend === 'gpu') && fits;
    this.kvCache = options.kvCache ?? true;
    this.registry = options.lora?.registry ?? null;
    this.lora = options.lora !== undefined ? new LoraSlots(this.device, weights.config, options.lora) : null;
    // Adapters in host memory are packed for their slots now, so a load in a step is only copies
    // (what the simulator prices for the host-memory tier).
    if (this.lora !== null && this.registry !== null) for (const a of this.registry.inMemory()) this.lora.prepare(a);
    this.graphs = options.cudaGraphs === true ? new DecodeGraphs(this.device, this.model, this.vocabSize, gpuRowBucket(options.graphMaxRows ?? options.maxNumSeqs)) : null;
    this.useGraphs = this.graphs !== null;
    if (!fits && options.sampleOnDevice === true) throw new EngineError('sampling', `vocab ${this.vocabSize} exceeds the GPU sampler's ${SAMPLING_MAX_VOCAB_GPU}: sample on the host`);
  }

  get name(): string {
    const o = this.options;
    return `llama-${o.backend}-${o.dtype}${this.kvCache ? '' : '-nokvcache'}${this.sampleOnDevice ? '' : '-hostsampling'}${this.lora !== null ? '-lora' : ''}${this.useGraphs ? '-graphs' : ''}`;
  }

  /** Forgets a finished sequence's history (no-KV-cache baseline; a no-op otherwise). */
  release(seqId: SeqId): void {
    this.history.delete(seqId);
  }

  execute(step: RunnerStep): RunnerResult {
    const adapterItem = step.plan.items.find((item) => item.adapterSlot >= 0);
    if (this.lora === null && (adapterItem !== undefined || step.plan.loraLoads.length > 0)) {
      // Running an adapter's request on the base model would be a silent wrong answer.
      throw new EngineError('lora', `request ${adapterItem?.seqId ?? step.plan.loraLoads[0].adapter} uses a LoRA adapter: this runner was built without LoRA slots (give it lora options)`);
    }
    this.loadAdapters(step);
    this.lastHostSampleUs = 0;
    this.lastReplayed = false;
    if (this.useGraphs && this.graphs === null) throw new EngineError('graphs', 'useGraphs: this runner was built without cudaGraphs');
    // Items are index-aligned with plan.items; a plan without items (unit tests of the runner) runs the base model.
    const planned = step.plan.items.length;
    if (planned !== 0 && planned !== step.items.length) throw new Error(`runner step: ${step.items.length} items for a plan of ${planned}`);
    const seqs: ForwardSeq[] = step.items.map((item, i) => {
      const slot = planned === 0 ? -1 : step.plan.items[i].adapterSlot;
      if (slot >= 0 && this.lora!.resident[slot] === null) throw new Error(`seq ${item.seqId}: adapter slot ${slot} is empty (no load planned)`);
      return this.kvCache ? { ...item, adapterSlot: slot } : this.recomputeSeq(item, slot);
    });
    const groups = this.kvCache ? [seqs.map((_, i) => i)] : this.recomputeGroups(seqs);
    const tokens = new Int32Array(step.items.length).fill(-1);
    const logprobs = new Float32Array(step.items.length).fill(Number.NaN);
    let gpuUs: number | null = null;
    for (const [g, group] of groups.entries()) {
      // Copy-on-write copies happen once, before the step's first forward.
      const r = this.runForward(group.map((i) => seqs[i]), step.items, group, g === 0 ? step.plan.blockCopies : []);
      if (r.gpuMs !== null) gpuUs = (gpuUs ?? 0) + Math.round(r.gpuMs * 1000);
      group.forEach((i, j) => {
        if (r.tokens[j] >= 0) tokens[i] = r.tokens[j];
        logprobs[i] = r.logprobs[j];
      });
    }
    this.lastNumForwards = groups.length;
    return { tokens, gpuTimeUs: gpuUs, logprobs };
  }

  /**
   * One forward over `seqs` (items[idx[j]] is seqs[j]'s runner item), then sampling: a token and its
   * log probability per sampling sequence, else -1 and NaN.
   */
  private runForward(seqs: readonly ForwardSeq[], allItems: readonly RunnerItem[], idx: readonly number[], blockCopies: RunnerStep['plan']['blockCopies']): { tokens: Int32Array; logprobs: Float32Array; gpuMs: number | null } {
    const items = idx.map((i) => allItems[i]).filter((item) => item.samples);
    if (this.useGraphs && this.sampleOnDevice && blockCopies.length === 0 && items.length === seqs.length) {
      const g = this.graphs!.run(seqs, items.map((x) => ({ ...x.sampling, outputIndex: x.outputIndex })));
      if (g !== null) {
        checkStatus(g.result);
        this.lastReplayed = g.replayed;
        return { tokens: g.result.tokens, logprobs: g.result.logprobs, gpuMs: g.gpuMs };
      }
    }
    this.device.resetScratch();
    const params = this.sampleOnDevice && items.length > 0 ? this.device.stageSampleParams(samplingParams(items)) : null;
    this.device.beginTiming();
    // A runner item is a forward sequence (token ids, context, block table, samples).
    const out = this.model.forward({ seqs, blockCopies, lora: this.lora });
    if (out !== null && out.rows !== items.length) throw new Error(`forward returned ${out.rows} logit rows for ${items.length} sampling items`);
    let gpuMs: number | null;
    let sampled: Int32Array | null = null;
    let sampledLogprobs: Float32Array | null = null;
    if (out === null) {
      gpuMs = this.device.endTimingMs();
    } else if (params !== null) {
      // GPU time covers the forward, the cast and the sampler; the small copy back is after it.
      const read = this.device.sample(out.logits, out.dtype, out.rows, this.vocabSize, params);
      gpuMs = this.device.endTimingMs();
      const result = read();
      checkStatus(result);
      sampled = result.tokens;
      sampledLogprobs = result.logprobs;
    } else {
      gpuMs = this.device.endTimingMs();
      // The CPU-sampling baseline: every sampled row's logits come back (waits for the forward),
      // then the host samples. Its time is in the step's wall time and in lastHostSampleUs.
      const t0 = performance.now();
      const logits = this.readLogits(out);
      // All greedy and no log probability wanted: the argmax alone, on the logits as they came back.
      if (items.every((x) => x.sampling.temperature === 0 && x.sampling.logprobs !== true)) sampled = argmaxRows(logits, this.vocabSize);
      else ({ tokens: sampled, logprobs: sampledLogprobs } = sampleOnHost(toF32(logits), this.vocabSize, items));
      this.lastHostSampleUs += Math.round((performance.now() - t0) * 1000);
    }
    const tokens = new Int32Array(seqs.length).fill(-1);
    const logprobs = new Float32Array(seqs.length).fill(Number.NaN);
    if (sampled !== null) {
      let r = 0;
      seqs.forEach((s, j) => {
        if (!s.samples) return;
        if (sampledLogprobs !== null) logprobs[j] = sampledLogprobs[r];
        tokens[j] = sampled[r++];
      });
    }
    return { tokens, logprobs, gpuMs };
  }

  /** No KV cache: the item as a prefill of every token of its sequence so far, into its own pages. */
  private recomputeSeq(item: RunnerItem, adapterSlot: number): ForwardSeq {
    let hist = this.history.get(item.seqId);
    if (hist === undefined) {
      hist = [];
      this.history.set(item.seqId, hist);
    }
    // After a preemption the sequence restarts at context 0; else the context is what we hold.
    if (hist.length < item.contextTokens) throw new Error(`seq ${item.seqId}: the no-KV-cache runner holds ${hist.length} tokens, the step reads ${item.contextTokens}`);
    hist.length = item.contextTokens;
    for (const t of item.tokenIds) hist.push(t);
    return { tokenIds: Int32Array.from(hist), contextTokens: 0, blockTable: item.blockTable, samples: item.samples, adapterSlot };
  }

  /** Item indices in forwards of at most maxNumBatchedTokens tokens and maxNumSeqs sequences, in order. */
  private recomputeGroups(seqs: readonly ForwardSeq[]): number[][] {
    const maxTokens = this.options.maxNumBatchedTokens;
    const groups: number[][] = [];
    let cur: number[] = [];
    let tokens = 0;
    seqs.forEach((s, i) => {
      const n = s.tokenIds.length;
      if (n > maxTokens) throw new EngineError('no_kv_cache', `seq ${i}: recomputing ${n} tokens exceeds the runner's ${maxTokens}-token forward (raise maxNumBatchedTokens to the longest sequence)`);
      if (cur.length > 0 && (tokens + n > maxTokens || cur.length >= this.options.maxNumSeqs)) {
        groups.push(cur);
        cur = [];
        tokens = 0;
      }
      cur.push(i);
      tokens += n;
    });
    if (cur.length > 0) groups.push(cur);
    return groups;
  }

  /** The plan's LoRA loads: each adapter is read (its sha256 verified) and written into its slot. */
  private loadAdapters(step: RunnerStep): void {
    if (this.lora === null) return;
    for (const ev of step.plan.loraEvictions) {
      if (this.lora.resident[ev.slot] !== ev.adapter) throw new Error(`LoRA eviction of ${ev.adapter} from slot ${ev.slot}, which holds ${this.lora.resident[ev.slot]}`);
      this.lora.resident[ev.slot] = null;
    }
    for (const load of step.plan.loraLoads) this.lora.load(load.slot, this.registry!.load(load.adapter));
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
    const out = this.model.forward({ seqs, blockCopies: [], lora: this.lora });
    return out === null ? { dtype: 'f32', data: new Float32Array(0) } : this.readLogits(out);
  }

  private readLogits(out: DeviceLogits): HostLogits {
    return { dtype: out.dtype, data: this.device.readHost(out.logits, out.dtype, out.rows * this.vocabSize) };
  }

  close(): void {
    this.device.free();
    if (this.stream !== 0n) gpu().destroyStream(this.stream);
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

function sampleOnHost(logits: Float32Array, vocab: number, items: readonly SamplingItem[]): { tokens: Int32Array; logprobs: Float32Array } {
  const result = cpu().sample({ batch: items.length, vocab, logits, ...samplingParams(items) });
  checkStatus(result);
  return { tokens: result.tokens, logprobs: result.logprobs };
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
