// A cost model driven by a calibration profile: every kernel of a step is priced as its roofline
// time divided by the efficiency measured for that kernel at the nearest shapes (interpolated;
// held at the grid's edge beyond it), and the kernels of a step add up, as they run one after
// another in a CUDA graph. Terms the profile cannot measure on one GPU (tensor-parallel
// all-reduce) or does not have yet (host overhead of the engine loop) come from the options and
// are listed in `notes`. Pure: no clock, only + − × ÷ and the deterministic ln/exp.
import { WEIGHT_BYTES, KV_BYTES, type ReplicaShape } from '../catalog.js';
import type { CostModel, StepShape } from './cost-model.js';
import { layerGemms, lmHeadGemm, loraProjections, shardDims, type ShardDims } from './layer-shapes.js';
import {
  FAMILY_SPECS, decodeWork, gemmWork, opWork, prefillPairs, prefillStepTilePairs, prefillWork, rooflineUs, type ConfigValues, type Family, type Peaks, type PointValues, type Work,
} from './op-work.js';
import { CompiledProfile, ProfileError, type Profile, type TableMatch } from './profile.js';

export const SAMPLING_METHODS = ['greedy', 'temperature', 'topk', 'topp', 'topk_topp'] as const;
export type SamplingMethod = (typeof SAMPLING_METHODS)[number];

export interface ProfileCostOptions {
  /** Where sampling runs: on the GPU (measured kernel) or on the host (logits copied back first). */
  readonly sampling: 'gpu' | 'cpu';
  readonly samplingMethod: SamplingMethod;
  /**
   * Host sampling per sampled token, overriding the measured host sampler (e.g. the case study's
   * 2–8 ms Python sampler). Absent: the profile's measured hostSampling table.
   */
  readonly cpuSamplingUsPerToken?: number;
  /** Used while the profile has no measured host overhead (hostOverheadUs: null). */
  readonly hostOverheadUs: number;
  /** Used while the profile has no measured all-reduce: latency of one all-reduce (two per layer). */
  readonly allReduceLatencyUs: number;
  readonly loraRank: number;
  readonly pageSizeTokens: number;
}

export const DEFAULT_PROFILE_OPTIONS: ProfileCostOptions = {
  sampling: 'gpu',
  samplingMethod: 'topp',
  hostOverheadUs: 1500,
  allReduceLatencyUs: 8,
  loraRank: 16,
  pageSizeTokens: 16,
};

/** One bound table: the family, its config, and where its roofline comes from. */
interface Bound {
  readonly family: Family;
  readonly config: ConfigValues;
  readonly match: TableMatch;
}

/** Bounded memo: cleared when full, so memory stays bounded whatever the workload. */
const MEMO_LIMIT = 1 << 16;
function remember(memo: Map<number, number>, key: number, value: number): void {
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(key, value);
}

/** The same for a pure function of two numbers, keyed by the first and then the second (fast small-integer keys). */
class PairMemo {
  private readonly byFirst = new Map<number, Map<number, number>>();
  private size = 0;

  get(a: number, b: number): number | undefined {
    return this.byFirst.get(a)?.get(b);
  }

  set(a: number, b: number, value: number): void {
    if (this.size >= MEMO_LIMIT) {
      this.byFirst.clear();
      this.size = 0;
    }
    let inner = this.byFirst.get(a);
    if (inner === undefined) {
      inner = new Map();
      this.byFirst.set(a, inner);
    }
    inner.set(b, value);
    this.size++;
  }
}

export class ProfileCostModel implements CostModel {
  readonly name: string;
  readonly calibration = 'calibrated' as const;
  /** What was not measured, or not measured at this exact shape, and what stood in for it. */
  readonly notes: readonly string[];
  readonly profile: Profile;
  private readonly compiled: CompiledProfile;
  private readonly peaks: Peaks;
  private readonly dims: ShardDims;
  private readonly numLayers: number;
  private readonly weightBytes: number;
  private readonly kvBytes: number;
  private readonly gemms: { n: number; k: number; bound: Bound }[];
  private readonly lmHead: { n: number; k: number; bound: Bound };
  private readonly decode: Bound;
  private readonly prefill: Bound;
  private readonly rmsnorm: Bound;
  private readonly rope: Bound;
  private readonly siluMul: Bound;
  private readonly kvWrite: Bound;
  private readonly embedding: Bound;
  private readonly sampling: Bound | null;
  private readonly hostSampling: Bound | null;
  private readonly copyD2H: Bound | null;
  private readonly copyH2D: Bound | null;
  private readonly lora: { inDim: number; outDim: number; bound: Bound }[] | null;
  /** One adapter load (copy of its weights to one GPU): the same for every load. */
  private readonly adapterLoadUs: number;
  private readonly allReduceBytesPerToken: number;
  private readonly allReduceFixedUs: number;
  private readonly allReduceBytesPerUs: number;
  private readonly hostOverheadUs: number;
  // Memos of pure functions of integers (steps repeat the same token, sample and adapter counts).
  private readonly tokensMemo = new Map<number, number>();
  private readonly sampledMemo = new Map<number, number>();
  private readonly loraMemo = new PairMemo();
  /** Decode attention by sequences and cached tokens: a pool's replicas run through the same pairs. */
  private readonly decodeMemo = new PairMemo();
  /** Scratch point of decodeAttentionLayerUs (no allocation per step). */
  private readonly decodePoint = [0, 0, 0];

  /** `source`: a profile, or one compiled already (a profile file shared by many cost models). */
  constructor(
    readonly shape: ReplicaShape,
    source: Profile | CompiledProfile,
    readonly options: ProfileCostOptions = DEFAULT_PROFILE_OPTIONS,
  ) {
    const notes: string[] = [];
    this.compiled = source instanceof CompiledProfile ? source : new CompiledProfile(source);
    const profile = (this.profile = this.compiled.profile);
    this.peaks = profile.peaks;
    const { model, tp } = shape;
    if (model.numHeads % tp !== 0) throw new ProfileError(`tp = ${tp} must divide ${model.name}'s ${model.numHeads} heads`);
    this.dims = shardDims(model, tp);
    this.numLayers = model.numLayers;
    this.weightBytes = WEIGHT_BYTES[shape.weightDtype];
    this.kvBytes = KV_BYTES[shape.kvDtype];
    if (this.weightBytes !== 2) notes.push(`weights ${shape.weightDtype}: GEMMs priced by the bf16 efficiency curves over a roofline with ${this.weightBytes}-byte weights at the bf16 FLOP peak (not measured)`);
    if (this.kvBytes !== 2) notes.push(`KV ${shape.kvDtype}: attention priced by the bf16 efficiency over a roofline with ${this.kvBytes}-byte KV (not measured)`);
    const d = this.dims;
    const bind = (family: Family, config: ConfigValues): Bound => {
      const match = this.compiled.match(family, config);
      if (!match) {
        throw new ProfileError(`profile ${profile.name} has no ${family} table${FAMILY_SPECS[family].configKeys.length ? ` for ${JSON.stringify(config)}` : ''}; re-run \`stratos calibrate run\` with this family`);
      }
      if (!match.exact) notes.push(`${family} ${match.asked}: not measured; priced with the efficiency of the nearest measured shape (${match.used})`);
      return { family, config, match };
    };
    const optional = (family: Family, config: ConfigValues, why: string): Bound | null => {
      if (!this.compiled.has(family)) {
        notes.push(`${family}: not in the profile; ${why}`);
        return null;
      }
      return bind(family, config);
    };
    this.gemms = layerGemms(d).map((g) => ({ n: g.n, k: g.k, bound: bind('gemm', { n: g.n, k: g.k }) }));
    const lm = lmHeadGemm(d);
    this.lmHead = { ...lm, bound: bind('gemm', lm) };
    const heads = { heads: d.heads, kvHeads: d.kvHeads, headDim: d.headDim };
    this.decode = bind('decode', heads);
    this.prefill = bind('prefill', heads);
    this.rmsnorm = bind('rmsnorm', { hidden: d.hidden });
    this.rope = bind('rope', heads);
    this.siluMul = bind('siluMul', { d: d.ffnShard });
    this.kvWrite = bind('kvWrite', { kvHeads: d.kvHeads, headDim: d.headDim });
    this.embedding = bind('embedding', { hidden: d.hidden });
    const method = options.samplingMethod;
    if (options.sampling === 'gpu') {
      this.sampling = bind('sampling', { method });
      this.hostSampling = null;
      this.copyD2H = null;
    } else {
      this.sampling = null;
      this.copyD2H = bind('copyD2H', {});
      if (options.cpuSamplingUsPerToken !== undefined) {
        this.hostSampling = null;
        notes.push(`host sampling: ${options.cpuSamplingUsPerToken} us per sampled token (given, not measured), plus the measured logits copy`);
      } else {
        this.hostSampling = bind('hostSampling', { method, vocab: model.vocabSize });
      }
    }
    this.copyH2D = optional('copyH2D', {}, 'adapter loads priced at the spec PCIe bandwidth');
    const rank = options.loraRank;
    const projections = loraProjections(d);
    this.lora = this.compiled.has('lora') ? projections.map((p) => ({ inDim: p.inDim, outDim: p.outDim, bound: bind('lora', { inDim: p.inDim, outDim: p.outDim }) })) : null;
    if (!this.lora) notes.push('lora: not in the profile; adapter matmuls are not priced');
    // One adapter on one GPU: A [rank, in] and B [out, rank] per projection and layer, bf16.
    const adapterBytes = projections.reduce((s, p) => s + rank * (p.inDim + p.outDim) * 2, 0) * model.numLayers;
    this.adapterLoadUs = this.copyH2D ? this.at(this.copyH2D, { bytes: adapterBytes }) : (adapterBytes / this.peaks.pcieBytesPerS) * 1e6;
    // Ring all-reduce of the [tokens, hidden] bf16 activations, twice per layer.
    this.allReduceBytesPerToken = tp > 1 ? (2 * model.numLayers * model.hiddenSize * 2 * (tp - 1)) / tp : 0;
    if (tp > 1 && profile.allReduce) {
      this.allReduceFixedUs = 2 * model.numLayers * profile.allReduce.latencyUs;
      this.allReduceBytesPerUs = profile.allReduce.bytesPerS / 1e6;
    } else {
      this.allReduceFixedUs = tp > 1 ? 2 * model.numLayers * options.allReduceLatencyUs : 0;
      const nvlink = shape.gpu.nvlinkBytesPerS;
      this.allReduceBytesPerUs = nvlink / 1e6;
      if (tp > 1) notes.push(`tensor-parallel all-reduce: analytic (${options.allReduceLatencyUs} us per all-reduce + bytes at ${nvlink / 1e9} GB/s NVLink); the profile was measured on one GPU`);
    }
    if (profile.hostOverheadUs === null) {
      this.hostOverheadUs = options.hostOverheadUs;
      notes.push(`host overhead: ${options.hostOverheadUs} us per step (assumed; the engine loop has not been measured yet)`);
    } else this.hostOverheadUs = profile.hostOverheadUs;
    this.notes = notes;
    this.name = `profile:${profile.name}`;
  }

  /** Microseconds of one call of a bound family at a point, with the roofline work given. */
  private priced(b: Bound, work: Work, point: readonly number[]): number {
    const roof = rooflineUs(FAMILY_SPECS[b.family].bound, work, this.peaks);
    return roof / b.match.grid.efficiency(point);
  }

  private at(b: Bound, p: PointValues): number {
    const axes = FAMILY_SPECS[b.family].axes;
    if (axes.length === 1) {
      const name = axes[0].name;
      return this.priced1d(b, (x) => opWork(b.family, b.config, { ...p, [name]: x }), p[name]);
    }
    const point = axes.map((a) => p[a.name]);
    return this.priced(b, opWork(b.family, b.config, p), point);
  }

  /**
   * A one-axis table (GEMM over m, element-wise ops over tokens, copies over bytes) at x: the
   * interpolated time, but never less than the time at the grid point just below x. Grid times
   * rise with x (the fit pads them so); between two grid points the roofline's kink (memory- to
   * compute-bound) over a smoothly interpolated efficiency could otherwise sag a little.
   */
  private priced1d(b: Bound, workAt: (x: number) => Work, x: number): number {
    const us = this.priced(b, workAt(x), [x]);
    const values = b.match.table.axes[0].values;
    let lo = -1;
    for (let i = 0; i < values.length && values[i] <= x; i++) lo = i; // bounded by the axis length
    if (lo < 0 || values[lo] === x) return us;
    const floorUs = this.priced(b, workAt(values[lo]), [values[lo]]);
    return us > floorUs ? us : floorUs;
  }

  /** Everything that depends only on the step's token count: dense layers, norms, all-reduce. */
  private tokensUs(tokens: number): number {
    const hit = this.tokensMemo.get(tokens);
    if (hit !== undefined) return hit;
    let layer = 0;
    for (const g of this.gemms) layer += this.priced1d(g.bound, (m) => gemmWork(m, g.n, g.k, this.weightBytes), tokens);
    const p = { tokens };
    layer += 2 * this.at(this.rmsnorm, p) + this.at(this.rope, p) + this.at(this.siluMul, p);
    // The KV written has the cache's element size; kvWrite is measured with bf16.
    layer += (this.at(this.kvWrite, p) * (this.kvBytes + 2)) / 4;
    const allReduce = this.allReduceFixedUs + (tokens * this.allReduceBytesPerToken) / this.allReduceBytesPerUs;
    const total = this.numLayers * layer + allReduce + this.at(this.embedding, p) + this.at(this.rmsnorm, p);
    remember(this.tokensMemo, tokens, total);
    return total;
  }

  /** LM head over the sampled rows and sampling itself. */
  private sampledUs(numSampled: number): number {
    const hit = this.sampledMemo.get(numSampled);
    if (hit !== undefined) return hit;
    const { n, k, bound } = this.lmHead;
    let us = this.priced1d(bound, (m) => gemmWork(m, n, k, this.weightBytes), numSampled);
    const vocab = this.shape.model.vocabSize;
    if (this.sampling) us += this.at(this.sampling, { batch: numSampled, vocab });
    else {
      if (this.copyD2H) us += this.at(this.copyD2H, { bytes: numSampled * vocab * 4 });
      if (this.hostSampling) us += this.at(this.hostSampling, { batch: numSampled });
      else us += numSampled * (this.options.cpuSamplingUsPerToken ?? 0);
    }
    remember(this.sampledMemo, numSampled, us);
    return us;
  }

  /** One layer's decode attention over `decodeCtx` cached tokens of `numDecode` sequences. */
  private decodeAttentionLayerUs(numDecode: number, decodeCtx: number): number {
    const hit = this.decodeMemo.get(numDecode, decodeCtx);
    if (hit !== undefined) return hit;
    const kvTokens = decodeCtx + numDecode; // each query also attends to its own new token
    const work = decodeWork(this.decode.config, numDecode, kvTokens, this.kvBytes);
    const point = this.decodePoint;
    point[0] = numDecode;
    point[1] = kvTokens / numDecode;
    point[2] = this.options.pageSizeTokens;
    const us = this.priced(this.decode, work, point);
    this.decodeMemo.set(numDecode, decodeCtx, us);
    return us;
  }

  private attentionUs(s: StepShape): number {
    const numDecode = s.numDecodeTokens;
    const prefillSeqs = s.numPrefillSeqs ?? (s.numPrefillTokens > 0 ? Math.max(1, s.numSeqs - numDecode) : 0);
    // Without the split (older callers), context is shared out by sequence count.
    const decodeCtx = s.decodeContextTokensSum ?? (prefillSeqs === 0 ? s.contextTokensSum : (s.contextTokensSum * numDecode) / Math.max(1, s.numSeqs));
    let us = 0;
    if (numDecode > 0) us += this.decodeAttentionLayerUs(numDecode, decodeCtx);
    if (s.numPrefillTokens > 0) {
      const newTokens = s.numPrefillTokens;
      const prefillCtx = Math.max(0, s.contextTokensSum - decodeCtx);
      const kvTokens = prefillCtx + newTokens;
      // The uniform batch with the same new tokens, cached tokens and causal pairs: for s sequences
      // of c new after p cached, 2·pairs/new − 1 = 2p + c, so s = (2·ctx + new) / (2·pairs/new − 1).
      // Exact for uniform batches; a short sequence added to long ones barely moves it.
      const spread = (2 * s.prefillAttentionPairs) / newTokens - 1;
      const uniformSeqs = spread > 0 ? (2 * prefillCtx + newTokens) / spread : prefillSeqs;
      const seqs = Math.min(prefillSeqs, Math.max(1, uniformSeqs));
      const pairs = prefillStepTilePairs(s.prefillAttentionPairs, seqs, newTokens, prefillCtx);
      const work = prefillWork(this.prefill.config, newTokens, pairs, kvTokens, this.kvBytes);
      let prefillUs = this.priced(this.prefill, work, [seqs, newTokens / seqs, prefillCtx / seqs]);
      // The kernel has no split over keys: the longest sequence's blocks walk all its key tiles in
      // turn, so the batch takes at least as long as that sequence alone (a 3-token chunk after
      // 7k cached tokens is slow whatever else runs beside it).
      const longNew = s.prefillLongestNewTokens ?? 0;
      if (longNew > 0 && prefillSeqs > 1) {
        const longCtx = s.prefillLongestContextTokens ?? 0;
        const longPairs = prefillStepTilePairs(prefillPairs(1, longNew, longCtx), 1, longNew, longCtx);
        const longWork = prefillWork(this.prefill.config, longNew, longPairs, longCtx + longNew, this.kvBytes);
        prefillUs = Math.max(prefillUs, this.priced(this.prefill, longWork, [1, longNew, longCtx]));
      }
      us += prefillUs;
    }
    return us * this.numLayers;
  }

  private loraUs(tokens: number, numAdapters: number): number {
    if (numAdapters <= 0 || !this.lora) return 0;
    // Every token of the step is assumed to carry an adapter (the shape does not say how many do).
    const adapters = Math.min(numAdapters, tokens);
    const hit = this.loraMemo.get(tokens, adapters);
    if (hit !== undefined) return hit;
    const rank = this.options.loraRank;
    let layer = 0;
    for (const p of this.lora) layer += this.at(p.bound, { tokens, adapters, rank });
    const us = layer * this.numLayers;
    this.loraMemo.set(tokens, adapters, us);
    return us;
  }

  private loadsUs(numLoads: number): number {
    if (numLoads <= 0) return 0;
    return numLoads * this.adapterLoadUs;
  }

  /**
   * A steady decode run without building shapes (the replica's fast path, as RooflineCostModel's):
   * pushes onto `durationsUs` the price of step i = decodeRunStepShape(numSeqs, contextTokens0,
   * numAdapters, i) while i < maxSteps and step i starts before `limitUs` (step 0 always runs);
   * returns how many it pushed. The same operations in the same order as stepUs, so the same
   * microseconds (a test compares the two).
   */
  decodeRunUs(numSeqs: number, contextTokens0: number, numAdapters: number, maxSteps: number, startUs: number, limitUs: number, durationsUs: number[]): number {
    let pushed = 0;
    let t = startUs;
    // Only attention changes from step to step: the other terms are priced once per run.
    const baseUs = this.hostOverheadUs + this.loadsUs(0);
    const tokensUs = numSeqs > 0 ? this.tokensUs(numSeqs) : 0;
    const loraUs = numSeqs > 0 ? this.loraUs(numSeqs, numAdapters) : 0;
    const sampledUs = numSeqs > 0 ? this.sampledUs(numSeqs) : 0;
    for (let i = 0; i < maxSteps; i++) {
      if (i > 0 && t >= limitUs) break;
      let total = baseUs;
      if (numSeqs > 0) {
        const attention = (0 + this.decodeAttentionLayerUs(numSeqs, contextTokens0 + i * numSeqs)) * this.numLayers;
        total += tokensUs + attention + loraUs;
        total += sampledUs;
      }
      const d = Math.max(1, Math.ceil(total));
      durationsUs.push(d);
      t += d;
      pushed++;
    }
    return pushed;
  }

  stepUs(s: StepShape): number {
    const tokens = s.numPrefillTokens + s.numDecodeTokens;
    let total = this.hostOverheadUs + this.loadsUs(s.numLoraLoads);
    if (tokens > 0) total += this.tokensUs(tokens) + this.attentionUs(s) + this.loraUs(tokens, s.numAdapters);
    if (s.numSampled > 0) total += this.sampledUs(s.numSampled);
    return Math.max(1, Math.ceil(total));
  }
}
