import { headDim, kvBytesPerToken, numParams, WEIGHT_BYTES, type ReplicaShape } from '../catalog.js';
import type { CostModel, StepShape } from './cost-model.js';

export interface RooflineParams {
  /** Achieved fraction of spec HBM bandwidth for weight and KV streaming. */
  readonly memoryEfficiency: number;
  /** Achieved fraction of peak FLOP/s for the GEMMs. */
  readonly gemmEfficiency: number;
  /** Achieved fraction of peak FLOP/s for prefill attention. */
  readonly attentionEfficiency: number;
  /** Scheduler, input preparation and kernel launch cost per step. */
  readonly hostOverheadUs: number;
  /**
   * Host time per sequence in the step on top of hostOverheadUs (an engine's per-sequence input
   * preparation and bookkeeping); default 0.
   */
  readonly hostOverheadPerSeqUs?: number;
  /** Sampling on the host (case study: 2–8 ms per token) or on the GPU (folded into the step). */
  readonly sampling: 'gpu' | 'cpu';
  readonly cpuSamplingUsPerToken: number;
  /** Fixed latency of one all-reduce (two per layer under tensor parallelism). */
  readonly allReduceLatencyUs: number;
  readonly loraRank: number;
}

export const DEFAULT_ROOFLINE: RooflineParams = {
  memoryEfficiency: 0.8,
  gemmEfficiency: 0.7,
  attentionEfficiency: 0.5,
  hostOverheadUs: 1500,
  sampling: 'gpu',
  cpuSamplingUsPerToken: 2000,
  allReduceLatencyUs: 8,
  loraRank: 16,
};

/**
 * An analytic roofline: each step costs max(bytes / bandwidth, FLOPs / peak) per GPU, plus
 * tensor-parallel communication, host overhead, host sampling and adapter loads. Not fitted to
 * any measurement, so every output it feeds says "uncalibrated". Only + − × ÷ and max are used so
 * results are bit-identical on every platform.
 */
export class RooflineCostModel implements CostModel {
  readonly name = 'roofline-analytic';
  readonly calibration = 'uncalibrated' as const;
  private readonly weightBytesPerGpu: number;
  private readonly kvBytesPerTokenPerGpu: number;
  private readonly paramsPerGpu: number;
  private readonly attnFlopsPerPairPerGpu: number;
  private readonly bytesPerUs: number;
  private readonly gemmFlopsPerUs: number;
  private readonly attnFlopsPerUs: number;
  private readonly allReduceBytesPerToken: number;
  private readonly nvlinkBytesPerUs: number;
  private readonly loraBytes: number;
  private readonly loraLoadUs: number;
  private readonly loraFlopsPerToken: number;

  constructor(
    readonly shape: ReplicaShape,
    readonly params: RooflineParams = DEFAULT_ROOFLINE,
  ) {
    const { model, gpu, tp, weightDtype, kvDtype } = shape;
    this.paramsPerGpu = numParams(model) / tp;
    this.weightBytesPerGpu = this.paramsPerGpu * WEIGHT_BYTES[weightDtype];
    this.kvBytesPerTokenPerGpu = kvBytesPerToken(model, kvDtype) / tp;
    // QKᵀ and PV: 2 matmuls × 2 FLOPs × head_dim × heads per (query, key) pair, per layer.
    this.attnFlopsPerPairPerGpu = (4 * model.numLayers * model.numHeads * headDim(model)) / tp;
    this.bytesPerUs = (gpu.memoryBytesPerS * params.memoryEfficiency) / 1e6;
    this.gemmFlopsPerUs = (gpu.bf16FlopsPerS * params.gemmEfficiency) / 1e6;
    this.attnFlopsPerUs = (gpu.bf16FlopsPerS * params.attentionEfficiency) / 1e6;
    this.allReduceBytesPerToken = tp > 1 ? (2 * model.numLayers * model.hiddenSize * 2 * (tp - 1)) / tp : 0;
    this.nvlinkBytesPerUs = gpu.nvlinkBytesPerS / 1e6;
    // A rank-r adapter on q, k, v, o: 4 × 2 × r × hidden per layer, in bf16.
    this.loraBytes = 4 * 2 * params.loraRank * model.hiddenSize * model.numLayers * 2;
    this.loraLoadUs = this.loraBytes / (gpu.pcieBytesPerS / 1e6);
    this.loraFlopsPerToken = (2 * this.loraBytes) / 2 / tp;
  }

  /**
   * The replica's decode-run fast path (DecodeRunPricer in sim/replica): pushes onto `durationsUs`
   * stepUs of step i = 0, 1, … of a steady decode run (the shape decodeRunStepShape builds:
   * numSeqs decode tokens over contextTokens0 + i × numSeqs context, all sampled, no prefill, no
   * adapter loads) while i < maxSteps and step i starts before `limitUs` (step 0 always runs), and
   * returns how many. Without building shapes: the terms that do not change over the run are
   * computed once, the rest with the same operations in the same order as stepUs, so every
   * duration is the same to the bit (a test compares the two).
   */
  decodeRunUs(numSeqs: number, contextTokens0: number, numAdapters: number, maxSteps: number, startUs: number, limitUs: number, durationsUs: number[]): number {
    const numTokens = 0 + numSeqs;
    const kvBytesPerToken = this.kvBytesPerTokenPerGpu;
    const adapterBytes = (numAdapters * this.loraBytes) / this.shape.tp;
    const weightBytes = this.weightBytesPerGpu;
    const bytesPerUs = this.bytesPerUs;
    const gemmUs = (numTokens * (2 * this.paramsPerGpu + this.loraFlopsPerToken)) / this.gemmFlopsPerUs;
    const attnFlopsPerPair = this.attnFlopsPerPairPerGpu;
    const attnFlopsPerUs = this.attnFlopsPerUs;
    const commUs =
      this.allReduceBytesPerToken > 0
        ? 2 * this.shape.model.numLayers * this.params.allReduceLatencyUs + (numTokens * this.allReduceBytesPerToken) / this.nvlinkBytesPerUs
        : 0;
    const hostOverheadUs = this.hostUs(numSeqs);
    const samplingUs = this.params.sampling === 'cpu' ? numSeqs * this.params.cpuSamplingUsPerToken : 0;
    const loraUs = 0 * this.loraLoadUs;
    // Time from the run's start, not the clock (a clock past 2^31 µs was boxed at every step;
    // both sides are exact integers or the limit Infinity, so the comparison is the same).
    let elapsedUs = 0;
    const budgetUs = limitUs - startUs;
    let i = 0;
    for (; i < maxSteps; i++) {
      if (i > 0 && elapsedUs >= budgetUs) break;
      const contextTokensSum = contextTokens0 + i * numSeqs;
      const kvBytes = (contextTokensSum + numTokens) * kvBytesPerToken;
      const memoryUs = (weightBytes + kvBytes + adapterBytes) / bytesPerUs;
      const attnUs = ((0 + (contextTokensSum + numSeqs)) * attnFlopsPerPair) / attnFlopsPerUs;
      const computeUs = gemmUs + attnUs;
      const total = Math.max(memoryUs, computeUs) + commUs + hostOverheadUs + samplingUs + loraUs;
      const d = Math.max(1, Math.ceil(total));
      durationsUs.push(d);
      elapsedUs += d;
    }
    return i;
  }

  hostUs(numSeqs: number): number {
    return this.params.hostOverheadUs + (this.params.hostOverheadPerSeqUs ?? 0) * numSeqs;
  }

  stepUs(s: StepShape): number {
    const numTokens = s.numPrefillTokens + s.numDecodeTokens;
    const kvBytes = (s.contextTokensSum + numTokens) * this.kvBytesPerTokenPerGpu;
    const adapterBytes = (s.numAdapters * this.loraBytes) / this.shape.tp;
    const memoryUs = (this.weightBytesPerGpu + kvBytes + adapterBytes) / this.bytesPerUs;
    const gemmUs = (numTokens * (2 * this.paramsPerGpu + this.loraFlopsPerToken)) / this.gemmFlopsPerUs;
    const decodeAttnPairs = s.contextTokensSum + s.numDecodeTokens; // each decode reads its whole context
    const attnUs = ((s.prefillAttentionPairs + decodeAttnPairs) * this.attnFlopsPerPairPerGpu) / this.attnFlopsPerUs;
    const computeUs = gemmUs + attnUs;
    const commUs =
      this.allReduceBytesPerToken > 0
        ? 2 * this.shape.model.numLayers * this.params.allReduceLatencyUs + (numTokens * this.allReduceBytesPerToken) / this.nvlinkBytesPerUs
        : 0;
    const samplingUs = this.params.sampling === 'cpu' ? s.numSampled * this.params.cpuSamplingUsPerToken : 0;
    const loraUs = s.numLoraLoads * this.loraLoadUs;
    const total = Math.max(memoryUs, computeUs) + commUs + this.hostUs(s.numSeqs) + samplingUs + loraUs;
    return Math.max(1, Math.ceil(total));
  }
}
