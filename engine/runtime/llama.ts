// The Llama forward pass over one mixed batch: every sequence's new tokens (prefill chunks and
// decodes) go through the GEMMs together; attention reads each sequence's paged KV through the
// policy's block table. Decodes (one new token) use the paged-decode kernel, longer chunks the
// prefill kernel, so the token rows are laid out decodes first.
import type { BlockCopy } from '../policy/index.js';
import type { Device, Tensor, ActDtype } from './device.js';
import type { LoraSegments, LoraSlots } from './lora/slots.js';
import type { ModelConfig } from './model-config.js';
import { numElements } from './safetensors.js';
import { layerName, RANDOM_POOL_SIZE, randomPool, type ModelWeights } from './weights.js';

export interface ForwardSeq {
  /** Token ids computed in this step (positions contextTokens ..). */
  readonly tokenIds: Int32Array;
  /** KV tokens already in the cache. */
  readonly contextTokens: number;
  /** The sequence's page table (covers contextTokens + tokenIds.length tokens at least). */
  readonly blockTable: readonly number[];
  /** Return logits for the last new token. */
  readonly samples: boolean;
  /** LoRA slot of the sequence's adapter (-1 or absent: the base model). */
  readonly adapterSlot?: number;
}

export interface ForwardInput {
  readonly seqs: readonly ForwardSeq[];
  /** Copy-on-write block copies to apply before the step. */
  readonly blockCopies: readonly BlockCopy[];
  /** The adapters' slots, when any sequence has an adapterSlot >= 0. */
  readonly lora?: LoraSlots | null;
}

/** Logits on the host: f32 values, or bf16 bits (the GPU's LM head writes bf16). */
export interface HostLogits {
  readonly dtype: ActDtype;
  readonly data: Float32Array | Uint16Array;
}

/** Logits left on the device: `rows` rows of `vocab` values of `dtype` at the start of `logits`. */
export interface DeviceLogits {
  readonly dtype: ActDtype;
  readonly logits: Tensor;
  readonly rows: number;
}

export interface KvCacheShape {
  readonly numBlocks: number;
  readonly pageSizeTokens: number;
}

interface LayerWeights {
  readonly inputNorm: Tensor;
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  /** q, k and v stacked ([q + 2 kv, hidden]; q, k, v are views of it). */
  readonly qkv: Tensor;
  readonly o: Tensor;
  readonly postNorm: Tensor;
  /** gate and up stacked: [2 × ffn, hidden], so one GEMM feeds silu-mul. */
  readonly gateUp: Tensor;
  readonly down: Tensor;
}

export class LlamaModel {
  readonly config: ModelConfig;
  private readonly embed: Tensor;
  private readonly layers: LayerWeights[] = [];
  private readonly finalNorm: Tensor;
  private readonly lmHead: Tensor;
  private readonly kCache: Tensor[] = [];
  private readonly vCache: Tensor[] = [];
  private readonly blockElems: number;
  /**
   * One GEMM for q, k and v in single-row steps without LoRA (its output row is q | k | v, so
   * the three are views); with more rows the three GEMMs run, since the kernels after them take
   * q, k and v as contiguous [rows, dim] arrays. Changes rounding (another GEMM shape), so it is
   * fixed before a runner captures graphs.
   */
  fuseQkv = false;
  /**
   * Single-row decode steps without LoRA run each layer as four one-row kernels (decodeGemv):
   * q/k/v with the input norm in front, o and down adding into the residual stream, gate/up with
   * the post-attention norm in front and SiLU-and-mul behind; rope writes the KV cache in the same
   * launch (or, with decodeRopeInAttention, attention applies rope to q and the new token's k itself
   * and writes the new k and v), and attention merges its split in its own last blocks: six launches
   * a layer (five) where the unfused path has 11 with fused q/k/v and 13 without. With `decodePdl`
   * they launch as programmatic dependents on the GPU.
   * Changes rounding (f32 sums in another order), so it is fixed before a runner captures graphs.
   * Models whose widths the kernel does not take run unfused.
   */
  fuseDecode = false;
  /** fuseDecode's kernels as programmatic dependents (GPU; off only to measure what PDL buys). */
  decodePdl = true;
  /**
   * fuseDecode's rope and KV write inside the attention kernel (pagedDecode ropeNew) instead of a
   * rope launch. Off until its GPU check has run (native/gpu-tests/gemv.ts; checked on the CPU).
   */
  decodeRopeInAttention = false;
  /**
   * fuseDecode's q/k/v kernel pulls the layer's o weights into L2 once its own loads are issued, so
   * DRAM streams them through rope and attention (~10 us a layer in which it would idle) and the o
   * kernel reads L2. A hint: no result changes. Off until measured on the GPU (run7 7b-fused).
   */
  decodeL2Prefetch = false;
  /**
   * With decodeL2Prefetch, the o kernel (reading L2, so DRAM is free) prefetches this many bytes
   * of the layer's gate/up weights in turn (0: none). Off until measured (run7 7b-fused).
   */
  decodeL2PrefetchGateUpBytes = 0;
  /**
   * Shortest flash-decoding split (tokens, a power of two <= 512). Shorter splits put more blocks on
   * a small batch's attention (batch 1 has one block per head and split). Fixed before capturing graphs.
   */
  decodeMinPartitionTokens = 128;
  /** Whether decodeGemv takes this model's widths (on the GPU: multiples of 8 up to 16,384). */
  private readonly decodeGemvFits: boolean;

  constructor(
    readonly device: Device,
    weights: ModelWeights,
    readonly kv: KvCacheShape,
  ) {
    const c = (this.config = weights.config);
    const loader = new WeightLoader(device, weights);
    this.embed = loader.load(['model.embed_tokens.weight']);
    const qw = c.numHeads * c.headDim * c.hiddenSize;
    const kvw = c.numKvHeads * c.headDim * c.hiddenSize;
    for (let l = 0; l < c.numLayers; l++) {
      const qkv = loader.load([layerName(l, 'self_attn.q_proj'), layerName(l, 'self_attn.k_proj'), layerName(l, 'self_attn.v_proj')]);
      this.layers.push({
        inputNorm: loader.load([layerName(l, 'input_layernorm')]),
        qkv,
        q: device.view(qkv, device.dtype, 0, qw),
        k: device.view(qkv, device.dtype, qw, kvw),
        v: device.view(qkv, device.dtype, qw + kvw, kvw),
        o: loader.load([layerName(l, 'self_attn.o_proj')]),
        postNorm: loader.load([layerName(l, 'post_attention_layernorm')]),
        gateUp: loader.load([layerName(l, 'mlp.gate_proj'), layerName(l, 'mlp.up_proj')]),
        down: loader.load([layerName(l, 'mlp.down_proj')]),
      });
    }
    this.finalNorm = loader.load(['model.norm.weight']);
    this.lmHead = loader.load(['lm_head.weight']);
    this.blockElems = c.numKvHeads * kv.pageSizeTokens * c.headDim;
    const widths = [c.hiddenSize, c.numHeads * c.headDim, c.ffnSize];
    this.decodeGemvFits = device.kind === 'cpu' || widths.every((w) => w % 8 === 0 && w <= 16384);
    for (let l = 0; l < c.numLayers; l++) {
      this.kCache.push(device.zeros(device.dtype, kv.numBlocks * this.blockElems));
      this.vCache.push(device.zeros(device.dtype, kv.numBlocks * this.blockElems));
    }
  }

  /**
   * Runs one step and leaves the logits on the device: rows [0, rows) of `logits` are the
   * sampling sequences in input order (f32 where the device's GEMM writes f32, else bf16);
   * valid until the next step. Null when no sequence samples. Work may still be queued. Writes
   * the new tokens' K and V into the cache. Scratch comes from the device's step arena, which
   * the caller resets once per step (so it can place the step's other inputs first).
   */
  forward(input: ForwardInput): DeviceLogits | null {
    const c = this.config;
    const dev = this.device;
    const dt: ActDtype = dev.dtype;
    const page = this.kv.pageSizeTokens;
    for (const copy of input.blockCopies) {
      for (let l = 0; l < c.numLayers; l++) {
        dev.copy(this.kCache[l], copy.dstBlock * this.blockElems, this.kCache[l], copy.srcBlock * this.blockElems, this.blockElems, dt);
        dev.copy(this.vCache[l], copy.dstBlock * this.blockElems, this.vCache[l], copy.srcBlock * this.blockElems, this.blockElems, dt);
      }
    }
    const layout = planLayout(input.seqs, page, this.kv.numBlocks, (n) => dev.rowBucket(n));
    if (layout.numTokens === 0) return null;
    return this.encode(layout, stepTensors(dev.ints(layoutArrays(layout))), input.lora ?? null);
  }

  /**
   * Queues the forward of a planned step whose index arrays are already on the device (in
   * layoutArrays order). A CUDA graph records exactly these launches: every shape argument comes
   * from `layout`'s fixed-size fields, every per-step value from the index tensors.
   */
  encode(layout: StepLayout, idx: StepTensors, loraSlots: LoraSlots | null): DeviceLogits | null {
    const c = this.config;
    const dev = this.device;
    const dt: ActDtype = dev.dtype;
    // Token-wise ops run over T rows: the step's tokens padded to a bucket, so GEMM shapes (each
    // autotuned once on the GPU) repeat across steps; padding rows write no KV and are never read.
    const T = layout.ids.length;
    const S = layout.numSampled;
    const SR = layout.sampleRows.length;
    const numSegs = layout.loraSegSlots.length;
    if (numSegs > 0 && loraSlots === null) throw new Error('forward: a sequence has an adapter slot but no LoRA slots were given');
    const [ids, positions, slots, decodeTables, decodeLens, cuSeqlens, prefillLens, prefillTables, sampleRows, segStarts, segSlots] = idx;
    // LoRA deltas after each base GEMM, only in steps where some sequence has an adapter.
    const lora = numSegs > 0 ? loraSlots : null;
    const oneRow = T === 1 && lora === null;
    if (oneRow && layout.numDecode === 1 && SR <= 1 && this.fuseDecode && this.decodeGemvFits) return this.encodeOneRowDecode(layout, idx);
    const seg: LoraSegments = { segStarts, segSlots, numSegs };
    const loraY = lora !== null ? dev.scratch('f32', T * lora.maxSiteRank) : null;
    const H = c.hiddenSize;
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    const h = dev.scratch(dt, T * H); // residual stream [T, hidden]
    const x = dev.scratch(dt, T * H); // normed input of the next matmul
    const fused = this.fuseQkv && oneRow;
    const qkvOut = fused ? dev.scratch(dt, qDim + 2 * kvDim) : null;
    const q = qkvOut !== null ? dev.view(qkvOut, dt, 0, qDim) : dev.scratch(dt, T * qDim);
    const k = qkvOut !== null ? dev.view(qkvOut, dt, qDim, kvDim) : dev.scratch(dt, T * kvDim);
    const v = qkvOut !== null ? dev.view(qkvOut, dt, qDim + kvDim, kvDim) : dev.scratch(dt, T * kvDim);
    const attn = dev.scratch(dt, T * qDim);
    const y = dev.scratch(dt, T * H); // a sublayer's output, added to h by the next norm
    const gu = dev.scratch(dt, T * 2 * c.ffnSize);
    const act = dev.scratch(dt, T * c.ffnSize);
    const eps = c.rmsNormEps;
    const numDecode = layout.numDecode;
    const numPrefillSeqs = layout.prefillLens.length;
    const numPrefillTokens = layout.numTokens - numDecode;
    // The split is fixed by the decode rows' bucket and the context's bucket, so a step replayed
    // from a CUDA graph (grid sized for its bucket) splits every sequence as the eager step does.
    const partitionTokens = decodePartitionTokens(dev.rowBucket(numDecode) * c.numHeads, contextBucket(layout.decodeMaxLen), dev.smCount, this.decodeMinPartitionTokens);

    dev.embedding({ dtype: dt, vocab: c.vocabSize, hidden: H, numTokens: T, table: this.embed, ids, out: h });
    for (let l = 0; l < c.numLayers; l++) {
      const w = this.layers[l];
      if (l === 0) dev.rmsnorm({ dtype: dt, numTokens: T, hidden: H, eps, x: h, weight: w.inputNorm, out: x });
      else dev.rmsnorm({ dtype: dt, numTokens: T, hidden: H, eps, x: y, residual: h, weight: w.inputNorm, out: x });
      if (qkvOut !== null) dev.gemm({ dtype: dt, m: 1, n: qDim + 2 * kvDim, k: H, a: x, b: w.qkv, c: qkvOut });
      else {
        dev.gemm({ dtype: dt, m: T, n: qDim, k: H, a: x, b: w.q, c: q });
        dev.gemm({ dtype: dt, m: T, n: kvDim, k: H, a: x, b: w.k, c: k });
        dev.gemm({ dtype: dt, m: T, n: kvDim, k: H, a: x, b: w.v, c: v });
      }
      if (lora !== null) {
        lora.apply(l, 'q', x, q, T, seg, loraY!);
        lora.apply(l, 'k', x, k, T, seg, loraY!);
        lora.apply(l, 'v', x, v, T, seg, loraY!);
      }
      dev.rope({ dtype: dt, numTokens: T, numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, theta: c.ropeTheta, neox: true, positions, q, k });
      const cache = this.cacheArgs(l);
      dev.kvWrite({ dtype: dt, cacheDtype: dt, numTokens: T, key: k, value: v, slotMapping: slots, ...cache });
      if (numDecode > 0) {
        dev.pagedDecode({
          dtype: dt, kvDtype: dt, numSeqs: numDecode, numHeads: c.numHeads, maxPagesPerSeq: layout.decodeMaxPages, maxSeqLen: layout.decodeMaxLen, partitionTokens,
          q: dev.view(q, dt, 0, numDecode * qDim), blockTables: decodeTables, seqLens: decodeLens, out: dev.view(attn, dt, 0, numDecode * qDim), ...cache,
        });
      }
      if (numPrefillSeqs > 0) {
        dev.prefill({
          dtype: dt, numSeqs: numPrefillSeqs, numTokens: numPrefillTokens, numHeads: c.numHeads, maxPagesPerSeq: layout.prefillMaxPages, maxQLen: layout.prefillMaxQ,
          q: dev.view(q, dt, numDecode * qDim, numPrefillTokens * qDim), cuSeqlensQ: cuSeqlens, seqLensKv: prefillLens, blockTables: prefillTables,
          out: dev.view(attn, dt, numDecode * qDim, numPrefillTokens * qDim), ...cache,
        });
      }
      dev.gemm({ dtype: dt, m: T, n: H, k: qDim, a: attn, b: w.o, c: y });
      if (lora !== null) lora.apply(l, 'o', attn, y, T, seg, loraY!);
      dev.rmsnorm({ dtype: dt, numTokens: T, hidden: H, eps, x: y, residual: h, weight: w.postNorm, out: x });
      dev.gemm({ dtype: dt, m: T, n: 2 * c.ffnSize, k: H, a: x, b: w.gateUp, c: gu });
      if (lora !== null) lora.apply(l, 'gateUp', x, gu, T, seg, loraY!);
      dev.siluMul({ dtype: dt, numTokens: T, d: c.ffnSize, x: gu, out: act });
      dev.gemm({ dtype: dt, m: T, n: H, k: c.ffnSize, a: act, b: w.down, c: y });
      if (lora !== null) lora.apply(l, 'down', act, y, T, seg, loraY!);
    }
    if (S === 0) {
      dev.sync();
      return null;
    }
    // Only the sampled rows need the final norm and the LM head: gather them (an embedding
    // lookup over the token rows) and the residual they add to.
    const ySampled = dev.scratch(dt, SR * H);
    const hSampled = dev.scratch(dt, SR * H);
    dev.embedding({ dtype: dt, vocab: T, hidden: H, numTokens: SR, table: y, ids: sampleRows, out: ySampled });
    dev.embedding({ dtype: dt, vocab: T, hidden: H, numTokens: SR, table: h, ids: sampleRows, out: hSampled });
    const final = dev.scratch(dt, SR * H);
    dev.rmsnorm({ dtype: dt, numTokens: SR, hidden: H, eps, x: ySampled, residual: hSampled, weight: this.finalNorm, out: final });
    return this.lmHeadLogits(final, SR, S);
  }

  /**
   * encode() for a step of one decode row without LoRA (fuseDecode). The o and down kernels add
   * into the residual stream h in place, so each norm (fused into the kernel after it) reads h
   * alone, and the final norm too.
   */
  private encodeOneRowDecode(layout: StepLayout, idx: StepTensors): DeviceLogits | null {
    const c = this.config;
    const dev = this.device;
    const dt: ActDtype = dev.dtype;
    const pdl = dev.kind === 'gpu' && this.decodePdl;
    const [ids, positions, slots, decodeTables, decodeLens] = idx;
    const H = c.hiddenSize;
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    const eps = c.rmsNormEps;
    const h = dev.scratch(dt, H); // the residual stream
    const qkv = dev.scratch(dt, qDim + 2 * kvDim);
    const q = dev.view(qkv, dt, 0, qDim);
    const k = dev.view(qkv, dt, qDim, kvDim);
    const v = dev.view(qkv, dt, qDim + kvDim, kvDim);
    const attn = dev.scratch(dt, qDim);
    const act = dev.scratch(dt, c.ffnSize);
    const partitionTokens = decodePartitionTokens(dev.rowBucket(1) * c.numHeads, contextBucket(layout.decodeMaxLen), dev.smCount, this.decodeMinPartitionTokens);
    dev.embedding({ dtype: dt, vocab: c.vocabSize, hidden: H, numTokens: 1, table: this.embed, ids, out: h });
    for (let l = 0; l < c.numLayers; l++) {
      const w = this.layers[l];
      const cache = this.cacheArgs(l);
      const l2Prefetch = this.decodeL2Prefetch ? { l2Prefetch: w.o } : {};
      dev.decodeGemv({ dtype: dt, n: qDim + 2 * kvDim, k: H, eps, x: h, normWeight: w.inputNorm, weight: w.qkv, out: qkv, pdl, ...l2Prefetch });
      // Rope (and the new token's KV write) either in its own launch or inside attention.
      const ropeNew = this.decodeRopeInAttention ? { kNew: k, vNew: v, theta: c.ropeTheta } : undefined;
      if (ropeNew === undefined) {
        const kvCache = { value: v, slotMapping: slots, kCache: cache.kCache, vCache: cache.vCache, pageSize: cache.pageSize, numPages: cache.numPages };
        dev.rope({ dtype: dt, numTokens: 1, numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, theta: c.ropeTheta, neox: true, positions, q, k, kvCache, pdl });
      }
      dev.pagedDecode({
        dtype: dt, kvDtype: dt, numSeqs: 1, numHeads: c.numHeads, maxPagesPerSeq: layout.decodeMaxPages, maxSeqLen: layout.decodeMaxLen, partitionTokens,
        q, blockTables: decodeTables, seqLens: decodeLens, out: attn, ...cache, fusedReduce: true, ...(ropeNew !== undefined ? { ropeNew } : {}), pdl,
      });
      const gateUpPrefetch = this.decodeL2Prefetch && this.decodeL2PrefetchGateUpBytes > 0 ? { l2Prefetch: w.gateUp, l2PrefetchBytes: this.decodeL2PrefetchGateUpBytes } : {};
      dev.decodeGemv({ dtype: dt, n: H, k: qDim, x: attn, weight: w.o, epilogue: 'add', out: h, pdl, ...gateUpPrefetch });
      dev.decodeGemv({ dtype: dt, n: c.ffnSize, k: H, eps, x: h, normWeight: w.postNorm, weight: w.gateUp, epilogue: 'siluPair', out: act, pdl });
      dev.decodeGemv({ dtype: dt, n: H, k: c.ffnSize, x: act, weight: w.down, epilogue: 'add', out: h, pdl });
    }
    if (layout.numSampled === 0) {
      dev.sync();
      return null;
    }
    if (!dev.gemmF32Out) {
      // The LM head with the final norm in front, in the 16-bit logits the GEMM would write.
      const logits = dev.scratch(dt, c.vocabSize);
      dev.decodeGemv({ dtype: dt, n: c.vocabSize, k: H, eps, x: h, normWeight: this.finalNorm, weight: this.lmHead, out: logits, pdl });
      return { dtype: dt, logits, rows: 1 };
    }
    const final = dev.scratch(dt, H);
    dev.rmsnorm({ dtype: dt, numTokens: 1, hidden: H, eps, x: h, weight: this.finalNorm, out: final });
    return this.lmHeadLogits(final, 1, 1);
  }

  /** Layer `l`'s paged KV cache as the attention and KV-write ops take it. */
  private cacheArgs(l: number) {
    const c = this.config;
    return { numKvHeads: c.numKvHeads, headDim: c.headDim, pageSize: this.kv.pageSizeTokens, numPages: this.kv.numBlocks, kCache: this.kCache[l], vCache: this.vCache[l] };
  }

  /** The LM head over `rows` normed rows, of which the first `sampled` are the step's samples. */
  private lmHeadLogits(final: Tensor, rows: number, sampled: number): DeviceLogits {
    const c = this.config;
    const dev = this.device;
    const dt: ActDtype = dev.dtype;
    if (dev.gemmF32Out) {
      const logits = dev.scratch('f32', rows * c.vocabSize) as Float32Array;
      dev.gemm({ dtype: dt, outDtype: 'f32', m: rows, n: c.vocabSize, k: c.hiddenSize, a: final, b: this.lmHead, c: logits });
      return { dtype: 'f32', logits, rows: sampled };
    }
    const logits = dev.scratch(dt, rows * c.vocabSize);
    dev.gemm({ dtype: dt, m: rows, n: c.vocabSize, k: c.hiddenSize, a: final, b: this.lmHead, c: logits });
    return { dtype: dt, logits, rows: sampled };
  }
}

/** The index tensors of a step on the device, in layoutArrays order. */
export type StepTensors = readonly [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];

/** The 11 index tensors of a step, checked. */
export function stepTensors(t: readonly Tensor[]): StepTensors {
  if (t.length !== 11) throw new Error(`a step has 11 index tensors, got ${t.length}`);
  return t as unknown as StepTensors;
}

/** A step's index arrays in the order `encode` takes them (one upload). */
export function layoutArrays(l: StepLayout): Int32Array[] {
  return [l.ids, l.positions, l.slots, l.decodeTables, l.decodeLens, l.cuSeqlens, l.prefillLens, l.prefillTables, l.sampleRows, l.loraSegStarts, l.loraSegSlots];
}

/** Smallest context bucket: contexts up to 256 tokens share one. */
export const MIN_CONTEXT_BUCKET = 256;

/** The context bucket of a step whose longest sequence has `maxLen` tokens: a power of two >= 256. */
export function contextBucket(maxLen: number): number {
  let b = MIN_CONTEXT_BUCKET;
  // Bound: doubles until it reaches maxLen (< 2^31).
  while (b < maxLen) b *= 2;
  return b;
}

/**
 * Tokens per flash-decoding split for `blocks` (sequences × heads) blocks over contexts up to
 * `maxLen`: enough splits that the grid covers the GPU 8 times over, none shorter than `minTokens`
 * (128: the CUDA launcher's own rule), evaluated here on bucketed inputs so that eager and graph
 * steps split alike. 0 (the launcher chooses) without an SM count (the CPU).
 */
export function decodePartitionTokens(blocks: number, maxLen: number, smCount: number, minTokens = 128): number {
  if (smCount <= 0) return 0;
  const target = smCount * 8;
  let part = 512;
  // Bound: halves from 512 down to minTokens (>= 16).
  while (part > Math.max(16, minTokens) && blocks * Math.ceil(maxLen / part) < target) part /= 2;
  return part;
}

/** Host-side index arrays of one step. Token arrays have the padded row count. */
export interface StepLayout {
  /** Real tokens (rows beyond are padding: token 0 at position 0, KV slot -1 = not written). */
  readonly numTokens: number;
  /** Sequences that sample (rows of sampleRows beyond are padding pointing at row 0). */
  readonly numSampled: number;
  readonly numDecode: number;
  readonly ids: Int32Array;
  readonly positions: Int32Array;
  readonly slots: Int32Array;
  readonly decodeTables: Int32Array;
  readonly decodeLens: Int32Array;
  readonly decodeMaxPages: number;
  readonly decodeMaxLen: number;
  readonly cuSeqlens: Int32Array;
  readonly prefillLens: Int32Array;
  readonly prefillTables: Int32Array;
  readonly prefillMaxPages: number;
  readonly prefillMaxQ: number;
  /** Row (in the decode-first layout) of each sampling sequence's last token, in input order. */
  readonly sampleRows: Int32Array;
  /** LoRA segments over the padded rows: runs of rows with one slot (-1: none). Empty when no sequence has an adapter. */
  readonly loraSegStarts: Int32Array;
  readonly loraSegSlots: Int32Array;
}

/**
 * Lays the step's tokens out decodes first and builds every index array the kernels take;
 * `padRows` gives the row count for a number of real rows (identity: no padding).
 */
export function planLayout(seqs: readonly ForwardSeq[], page: number, numBlocks: number, padRows: (n: number) => number = (n) => n): StepLayout {
  const decodeIdx: number[] = [];
  const prefillIdx: number[] = [];
  seqs.forEach((s, i) => (s.tokenIds.length === 1 ? decodeIdx : prefillIdx).push(i));
  const order = [...decodeIdx, ...prefillIdx];
  let T = 0;
  for (const s of seqs) T += s.tokenIds.length;
  const rows = T === 0 ? 0 : padRows(T);
  if (rows < T) throw new Error(`padRows(${T}) = ${rows}: must not be below the token count`);
  const ids = new Int32Array(rows);
  const positions = new Int32Array(rows);
  const slots = new Int32Array(rows).fill(-1);
  const firstRow = new Array<number>(seqs.length);
  let row = 0;
  for (const i of order) {
    const s = seqs[i];
    firstRow[i] = row;
    for (let j = 0; j < s.tokenIds.length; j++) {
      const pos = s.contextTokens + j;
      const block = s.blockTable[Math.floor(pos / page)];
      if (block === undefined || block < 0 || block >= numBlocks) throw new Error(`seq ${i}: no valid block for position ${pos} (table has ${s.blockTable.length})`);
      ids[row] = s.tokenIds[j];
      positions[row] = pos;
      slots[row] = block * page + (pos % page);
      row++;
    }
  }
  const tables = (idx: number[]): { tables: Int32Array; lens: Int32Array; maxPages: number; maxLen: number } => {
    let maxPages = 1;
    let maxLen = 0;
    const lens = new Int32Array(idx.length);
    idx.forEach((i, n) => {
      lens[n] = seqs[i].contextTokens + seqs[i].tokenIds.length;
      maxLen = Math.max(maxLen, lens[n]);
      maxPages = Math.max(maxPages, Math.ceil(lens[n] / page));
    });
    const t = new Int32Array(idx.length * maxPages);
    idx.forEach((i, n) => {
      const used = Math.ceil(lens[n] / page);
      for (let p = 0; p < used; p++) t[n * maxPages + p] = seqs[i].blockTable[p];
    });
    return { tables: t, lens, maxPages, maxLen };
  };
  const d = tables(decodeIdx);
  const p = tables(prefillIdx);
  const cuSeqlens = new Int32Array(prefillIdx.length + 1);
  let maxQ = 0;
  prefillIdx.forEach((i, n) => {
    cuSeqlens[n + 1] = cuSeqlens[n] + seqs[i].tokenIds.length;
    maxQ = Math.max(maxQ, seqs[i].tokenIds.length);
  });
  const sampleRows: number[] = [];
  seqs.forEach((s, i) => {
    if (s.samples) sampleRows.push(firstRow[i] + s.tokenIds.length - 1);
  });
  const numSampled = sampleRows.length;
  const sampleRowsPadded = new Int32Array(numSampled === 0 ? 0 : padRows(numSampled));
  sampleRowsPadded.set(sampleRows);
  const lora = loraSegments(seqs, order, rows);
  return {
    numTokens: T,
    numSampled,
    numDecode: decodeIdx.length,
    ids, positions, slots,
    decodeTables: d.tables, decodeLens: d.lens, decodeMaxPages: d.maxPages, decodeMaxLen: d.maxLen,
    cuSeqlens, prefillLens: p.lens, prefillTables: p.tables, prefillMaxPages: p.maxPages, prefillMaxQ: Math.max(1, maxQ),
    sampleRows: sampleRowsPadded,
    loraSegStarts: lora.starts,
    loraSegSlots: lora.slots,
  };
}

/** Maximal runs of rows (in layout order, padding last with slot -1) that share an adapter slot; empty when none has one. */
function loraSegments(seqs: readonly ForwardSeq[], order: readonly number[], rows: number): { starts: Int32Array; slots: Int32Array } {
  if (!seqs.some((s) => (s.adapterSlot ?? -1) >= 0)) return { starts: new Int32Array(0), slots: new Int32Array(0) };
  const starts: number[] = [0];
  const slots: number[] = [];
  let row = 0;
  const push = (slot: number, n: number): void => {
    if (n === 0) return;
    if (slots.length > 0 && slots[slots.length - 1] === slot) starts[starts.length - 1] += n;
    else {
      slots.push(slot);
      starts.push(starts[starts.length - 1] + n);
    }
    row += n;
  };
  for (const i of order) push(seqs[i].adapterSlot ?? -1, seqs[i].tokenIds.length);
  push(-1, rows - row);
  return { starts: Int32Array.from(starts), slots: Int32Array.from(slots) };
}

/**
 * Puts named weights (stacked in order) on the device. Random weights on the GPU are filled by
 * device copies of windows of an uploaded pool, so a 7B model needs no 13 GB of host arrays.
 */
class WeightLoader {
  private readonly pools = new Map<string, Tensor>();
  constructor(
    private readonly device: Device,
    private readonly weights: ModelWeights,
  ) {}

  load(names: readonly string[]): Tensor {
    const dev = this.device;
    const dt = dev.dtype;
    const specs = names.map((n) => {
      const s = this.weights.specs.find((x) => x.name === n);
      if (s === undefined) throw new Error(`no weight ${n}`);
      return s;
    });
    const total = specs.reduce((a, s) => a + numElements(s.shape), 0);
    const recipes = names.map((n) => this.weights.recipe(n));
    if (dev.kind === 'gpu' && this.weights.seed !== null && recipes.every((r) => r !== null)) {
      const out = dev.zeros(dt, total);
      let offset = 0;
      specs.forEach((s, i) => {
        const r = recipes[i]!;
        const key = `${r.offset}/${r.scale}`;
        let pool = this.pools.get(key);
        if (pool === undefined) {
          pool = dev.upload(randomPool(this.weights.seed!, r, dt === 'bf16' ? 'bf16' : 'f32'));
          this.pools.set(key, pool);
        }
        const n = numElements(s.shape);
        let done = 0;
        let j = r.start;
        // Bound: each copy takes min(n - done, P - j) > 0 elements.
        while (done < n) {
          const len = Math.min(n - done, RANDOM_POOL_SIZE - j);
          dev.copy(out, offset + done, pool, j, len, dt);
          done += len;
          j = 0;
        }
        offset += n;
      });
      return out;
    }
    const wd = dt === 'bf16' ? 'bf16' : 'f32';
    if (names.length === 1) return dev.upload(this.weights.tensor(names[0], wd));
    const host = wd === 'f32' ? new Float32Array(total) : new Uint16Array(total);
    let offset = 0;
    for (const n of names) {
      const t = this.weights.tensor(n, wd);
      host.set(t as never, offset);
      offset += t.length;
    }
    return dev.upload(host);
  }
}
