// A cost model driven by a calibration profile: every kernel of a step is priced as its roofline
// time divided by the efficiency measured for that kernel at the nearest shapes (interpolated;
// held at the grid's edge beyond it), and the kernels of a step add up, as they run one after
// another in a CUDA graph. Terms the profile cannot measure on one GPU (tensor-parallel
// all-reduce) or does not have yet (host overhead of the engine loop) come from the options and
// are listed in `notes`. Pure: no clock, only + − × ÷ and the deterministic ln/exp.
//
// Speed (the fleet-day prices ~10^9 steps): a step is first estimated with the platform's
// Math.log/Math.exp (and, along a decode run, a recurrence for 1/efficiency), which is within
// ~1e-10 of the exact price; the estimate's ceiling is taken only when the estimate is more than
// FAST_MARGIN (1e-9, relative) away from an integer, else the step is priced exactly. So every
// duration is the exact one, bit for bit, on any platform whose log and exp are accurate to far
// better than 1e-10 (IEEE libms are within an ulp or two); only speed depends on the platform.
import { WEIGHT_BYTES, KV_BYTES, type ReplicaShape } from '../catalog.js';
import type { CostModel, StepShape } from './cost-model.js';
import { layerGemms, layerGemmsSeparateQkv, lmHeadGemm, loraProjections, shardDims, type ShardDims } from './layer-shapes.js';
import {
  FAMILY_SPECS, decodeWork, gemmWork, opWork, prefillPairs, prefillStepTilePairs, prefillWork, rooflineUs, type ConfigValues, type Family, type Peaks, type PointValues, type Work,
} from './op-work.js';
import { CompiledProfile, ProfileError, type Profile, type TableMatch } from './profile.js';
import { PowerState, type PowerProfile } from './power.js';

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
  /**
   * Host time per sequence in the step on top of hostOverheadUs: the engine's per-sequence input
   * preparation and bookkeeping, fitted with it on the real engine's plan log (stratos validate);
   * default 0.
   */
  readonly hostOverheadPerSeqUs?: number;
  /** Used while the profile has no measured all-reduce: latency of one all-reduce (two per layer). */
  readonly allReduceLatencyUs: number;
  readonly loraRank: number;
  readonly pageSizeTokens: number;
  /**
   * How the serving engine pads a step's token rows before its token-wise ops: 'none', or 'pow2'
   * (powers of two up to 1,024, then multiples of 1,024: our engine's GEMM-plan buckets, like
   * vLLM's CUDA-graph batch sizes). Default 'none'.
   */
  readonly rowBuckets?: RowBuckets;
  /**
   * Device time per forward that no kernel measurement covers: launch gaps between the ~10 kernels
   * of each layer when the host launches slower than the GPU runs them. Calibrated from the real
   * engine's plan log (stratos validate); default 0.
   */
  readonly forwardOverheadUs?: number;
  /**
   * Device time per sampled row beyond the LM head and the sampler the profile prices (the engine's
   * per-row logits handling), fitted with forwardOverheadUs on the engine's plan log; default 0.
   */
  readonly sampledRowOverheadUs?: number;
  /** The engine runs q, k and v as one fused GEMM (vLLM does; default) or as three (ours). */
  readonly qkvFused?: boolean;
  /** Price the GPU's power management with the profile's `power` section when it has one (default true). */
  readonly power?: boolean;
}

export const ROW_BUCKETS = ['none', 'pow2'] as const;
export type RowBuckets = (typeof ROW_BUCKETS)[number];

/** Rows a step of `tokens` tokens runs under `buckets` (bounded: 11 doublings at most). */
export function bucketRows(tokens: number, buckets: RowBuckets): number {
  if (buckets === 'none' || tokens <= 0) return tokens;
  if (tokens > 1024) return Math.ceil(tokens / 1024) * 1024;
  let rows = 1;
  while (rows < tokens) rows *= 2;
  return rows;
}

export const DEFAULT_PROFILE_OPTIONS: ProfileCostOptions = {
  sampling: 'gpu',
  samplingMethod: 'topp',
  hostOverheadUs: 1500,
  allReduceLatencyUs: 8,
  loraRank: 16,
  pageSizeTokens: 16,
};

/**
 * Decode attention of one batch size along the context axis: ln(efficiency) piecewise linear in
 * u = ln(kvTokens / batch + offset) through (u[j], lnEff[j]), held beyond the ends, and the
 * roofline as max(flopsUs0 + kv × flopsUsPerKv, bytesUs0 + kv × bytesUsPerKv) µs per layer.
 */
interface DecodeLine {
  readonly u: Float64Array;
  readonly lnEff: Float64Array;
  readonly offset: number;
  readonly flopsUsPerKv: number;
  readonly flopsUs0: number;
  readonly bytesUsPerKv: number;
  readonly bytesUs0: number;
}

/**
 * Relative distance from an integer below which a decode step's estimated total is not trusted
 * (then it is priced exactly). The estimate is within ~1e-13 relative of the exact price.
 */
const FAST_MARGIN = 1e-9;

/**
 * Relative error allowed to gather in a decode run's 1/efficiency recurrence before it is anchored
 * again, and the rounding each recurrence step adds at most (a few ulps). Both far below FAST_MARGIN.
 */
const RECURRENCE_MAX_ERROR = 1e-11;
const RECURRENCE_ROUNDING = 1e-15;
/** A recurrence stops this far (relative) short of its segment's end, so it never crosses it. */
const SEGMENT_SLACK = 1e-9;

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
  private readonly hostOverheadPerSeqUs: number;
  private readonly powerProfile: PowerProfile | null;
  private readonly rowBuckets: RowBuckets;
  private readonly forwardOverheadUs: number;
  /** The forward overhead's share for the LoRA kernels a step with adapters adds (launch gaps). */
  private readonly loraLaunchGapsUs: number;
  private readonly sampledRowOverheadUs: number;
  // Memos of pure functions of integers (steps repeat the same token, sample and adapter counts).
  private readonly tokensMemo = new Map<number, number>();
  private readonly sampledMemo = new Map<number, number>();
  private readonly loraMemo = new PairMemo();
  /** Decode attention by sequences and cached tokens: a pool's replicas run through the same pairs. */
  private readonly decodeMemo = new PairMemo();
  /**
   * While true, every efficiency is read with efficiencyApprox (Math.log/Math.exp) and the memos
   * used are the *Approx ones, so estimates never leak into exact prices (see stepUs).
   */
  private approx = false;
  private readonly tokensMemoApprox = new Map<number, number>();
  private readonly sampledMemoApprox = new Map<number, number>();
  private readonly loraMemoApprox = new PairMemo();
  private readonly decodeMemoApprox = new PairMemo();
  /** Scratch point of decodeAttentionLayerUs (no allocation per step). */
  private readonly decodePoint = [0, 0, 0];
  /** decodeRunFastUs's terms other than attention by batch size (exact prices), and loraUs for the last adapter count asked. */
  private readonly decodeTerms: ({ readonly baseUs: number; readonly tokensUs: number; readonly sampledUs: number; loraAdapters: number; loraUs: number } | undefined)[] = [];
  /** decodeLineOf by batch size (null: no fast path for it). */
  private readonly decodeLines: (DecodeLine | null | undefined)[] = [];
  /** Steps whose estimate was too close to an integer and were priced exactly (for tests). */
  numExactSteps = 0;

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
    const qkvFused = options.qkvFused ?? true;
    const layer = qkvFused ? layerGemms(d) : layerGemmsSeparateQkv(d);
    if (!qkvFused) notes.push('q, k and v priced as three GEMMs (the engine does not fuse them)');
    this.gemms = layer.map((g) => ({ n: g.n, k: g.k, bound: bind('gemm', { n: g.n, k: g.k }) }));
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
    this.rowBuckets = options.rowBuckets ?? 'none';
    this.forwardOverheadUs = options.forwardOverheadUs ?? 0;
    if (this.rowBuckets !== 'none') notes.push(`token rows padded to the engine's ${this.rowBuckets} buckets before the token-wise ops`);
    this.sampledRowOverheadUs = options.sampledRowOverheadUs ?? 0;
    if (this.sampledRowOverheadUs > 0) notes.push(`sampled-row overhead: ${this.sampledRowOverheadUs} us per sampled row (calibrated on the engine's plan log)`);
    if (this.forwardOverheadUs > 0) notes.push(`forward overhead (launch gaps): ${this.forwardOverheadUs} us per step (calibrated on the engine's plan log)`);
    // The overhead is fitted on base-model steps, i.e. per forward of engineKernelsPerForward kernels;
    // a step with adapters launches a shrink and an expand per LoRA site and layer more, each with
    // the same gap (the lora tables were measured back to back in CUDA graphs: without gaps).
    const loraKernels = this.lora ? 2 * this.lora.length * model.numLayers : 0;
    this.loraLaunchGapsUs = (this.forwardOverheadUs * loraKernels) / engineKernelsPerForward(model.numLayers, qkvFused);
    if (this.loraLaunchGapsUs > 0) notes.push(`LoRA launch gaps: ${Math.round(this.loraLaunchGapsUs)} us per step with adapters (the forward overhead over ${loraKernels} more kernels)`);
    if (profile.hostOverheadUs === null) {
      this.hostOverheadUs = options.hostOverheadUs;
      notes.push(`host overhead: ${options.hostOverheadUs} us per step (assumed; the engine loop has not been measured yet)`);
    } else this.hostOverheadUs = profile.hostOverheadUs;
    this.hostOverheadPerSeqUs = options.hostOverheadPerSeqUs ?? 0;
    if (this.hostOverheadPerSeqUs > 0) notes.push(`host overhead per sequence: ${this.hostOverheadPerSeqUs} us (calibrated on the engine's plan log)`);
    this.powerProfile = options.power !== false ? (profile.power ?? null) : null;
    if (this.powerProfile !== null) notes.push(`power management: steps with prefill tokens re-priced by the GPU's heat (profile power section, tau ${this.powerProfile.tauUs / 1000} ms)`);
    this.notes = notes;
    this.name = `profile:${profile.name}${this.powerProfile !== null ? '+power' : ''}`;
  }

  /** Microseconds of one call of a bound family at a point, with the roofline work given. */
  private priced(b: Bound, work: Work, point: readonly number[]): number {
    const roof = rooflineUs(FAMILY_SPECS[b.family].bound, work, this.peaks);
    return roof / (this.approx ? b.match.grid.efficiencyApprox(point) : b.match.grid.efficiency(point));
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

  /**
   * Everything that depends only on the step's token count: dense layers, norms, all-reduce, over
   * the rows the engine runs (its row buckets), plus the forward's unmeasured launch gaps.
   */
  private tokensUs(stepTokens: number): number {
    const memo = this.approx ? this.tokensMemoApprox : this.tokensMemo;
    const hit = memo.get(stepTokens);
    if (hit !== undefined) return hit;
    const tokens = bucketRows(stepTokens, this.rowBuckets);
    let layer = 0;
    for (const g of this.gemms) layer += this.priced1d(g.bound, (m) => gemmWork(m, g.n, g.k, this.weightBytes), tokens);
    const p = { tokens };
    layer += 2 * this.at(this.rmsnorm, p) + this.at(this.rope, p) + this.at(this.siluMul, p);
    // The KV written has the cache's element size; kvWrite is measured with bf16.
    layer += (this.at(this.kvWrite, p) * (this.kvBytes + 2)) / 4;
    const allReduce = this.allReduceFixedUs + (tokens * this.allReduceBytesPerToken) / this.allReduceBytesPerUs;
    const total = this.numLayers * layer + allReduce + this.at(this.embedding, p) + this.at(this.rmsnorm, p) + this.forwardOverheadUs;
    remember(memo, stepTokens, total);
    return total;
  }

  /** LM head over the sampled rows and sampling itself. */
  private sampledUs(numSampled: number): number {
    const memo = this.approx ? this.sampledMemoApprox : this.sampledMemo;
    const hit = memo.get(numSampled);
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
    us += numSampled * this.sampledRowOverheadUs;
    remember(memo, numSampled, us);
    return us;
  }

  /** One layer's decode attention over `decodeCtx` cached tokens of `numDecode` sequences. */
  private decodeAttentionLayerUs(numDecode: number, decodeCtx: number): number {
    const memo = this.approx ? this.decodeMemoApprox : this.decodeMemo;
    const hit = memo.get(numDecode, decodeCtx);
    if (hit !== undefined) return hit;
    const kvTokens = decodeCtx + numDecode; // each query also attends to its own new token
    const work = decodeWork(this.decode.config, numDecode, kvTokens, this.kvBytes);
    const point = this.decodePoint;
    point[0] = numDecode;
    point[1] = kvTokens / numDecode;
    point[2] = this.options.pageSizeTokens;
    const us = this.priced(this.decode, work, point);
    memo.set(numDecode, decodeCtx, us);
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
    const memo = this.approx ? this.loraMemoApprox : this.loraMemo;
    const hit = memo.get(tokens, adapters);
    if (hit !== undefined) return hit;
    const rank = this.options.loraRank;
    let layer = 0;
    for (const p of this.lora) layer += this.at(p.bound, { tokens, adapters, rank });
    const us = layer * this.numLayers + this.loraLaunchGapsUs;
    memo.set(tokens, adapters, us);
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
    return this.decodeRunAtUs(numSeqs, contextTokens0, numAdapters, maxSteps, startUs, limitUs, durationsUs, durationsUs.length);
  }

  /** decodeRunUs writing to durationsUs[0], [1], … (the replica's reused array; see DecodeRunPricer). */
  decodeRunIntoUs(numSeqs: number, contextTokens0: number, numAdapters: number, maxSteps: number, startUs: number, limitUs: number, durationsUs: number[]): number {
    return this.decodeRunAtUs(numSeqs, contextTokens0, numAdapters, maxSteps, startUs, limitUs, durationsUs, 0);
  }

  /** The run's durations written to durationsUs[offset], [offset + 1], …; returns how many. */
  private decodeRunAtUs(numSeqs: number, contextTokens0: number, numAdapters: number, maxSteps: number, startUs: number, limitUs: number, durationsUs: number[], offset: number): number {
    const line = numSeqs > 0 ? this.decodeLineOf(numSeqs) : null;
    if (line !== null) return this.decodeRunFastUs(line, numSeqs, contextTokens0, numAdapters, maxSteps, startUs, limitUs, durationsUs, offset);
    let pushed = 0;
    let t = startUs;
    // Only attention changes from step to step: the other terms are priced once per run.
    const baseUs = this.hostUs(numSeqs) + this.loadsUs(0);
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
      durationsUs[offset + pushed] = d;
      t += d;
      pushed++;
    }
    return pushed;
  }

  /**
   * The decode-attention curve of a batch of `numSeqs` along the context axis (batch and page held),
   * with the roofline's coefficients, or null where the fast path does not apply. Cached per batch.
   */
  private decodeLineOf(numSeqs: number): DecodeLine | null {
    let line = this.decodeLines[numSeqs];
    if (line !== undefined) return line;
    line = null;
    const grid = this.decode.match.grid;
    const axes = FAMILY_SPECS.decode.axes;
    if (FAMILY_SPECS.decode.bound === 'device' && axes.length === 3 && axes[1].name === 'ctx') {
      const curve = grid.lnEfficiencyAlong([numSeqs, 1, this.options.pageSizeTokens], 1);
      if (curve !== null) {
        // The roofline is affine in kvTokens on each side of its kink: read its coefficients off the work.
        const w0 = decodeWork(this.decode.config, numSeqs, 0, this.kvBytes);
        const w1 = decodeWork(this.decode.config, numSeqs, 1, this.kvBytes);
        const flopsUs = 1e6 / this.peaks.bf16FlopsPerS;
        const bytesUs = 1e6 / this.peaks.memoryBytesPerS;
        line = {
          u: curve.u,
          lnEff: curve.lnEff,
          offset: axes[1].offset,
          flopsUsPerKv: (w1.flops - w0.flops) * flopsUs,
          flopsUs0: w0.flops * flopsUs,
          bytesUsPerKv: (w1.bytes - w0.bytes) * bytesUs,
          bytesUs0: w0.bytes * bytesUs,
        };
      }
    }
    this.decodeLines[numSeqs] = line;
    return line;
  }

  /**
   * decodeRunUs with each step's attention estimated in floating point (Math.log/Math.exp on the
   * curve of decodeLineOf, within ~1e-13 of the exact price) and its duration taken from the
   * estimate only when the estimate's ceiling is certain: when the step's total is more than
   * FAST_MARGIN (relative) away from an integer. Otherwise the step is priced exactly, as before.
   * So every duration equals the exact one whatever the platform's libm, as long as its log and
   * exp are accurate to far better than 1e-9 (IEEE libms are within an ulp or two); the test
   * compares the two paths step by step.
   */
  private decodeRunFastUs(
    line: DecodeLine, numSeqs: number, contextTokens0: number, numAdapters: number, maxSteps: number, startUs: number, limitUs: number, durationsUs: number[], firstIndex: number,
    /** Tests: receives each step's estimated attention (all layers), before it is added to the total. */
    estimatesUs: number[] | null = null,
  ): number {
    // The terms that depend on the batch only, kept per batch size (their memos are maps).
    let terms = this.decodeTerms[numSeqs];
    if (terms === undefined) {
      terms = { baseUs: this.hostUs(numSeqs) + this.loadsUs(0), tokensUs: this.tokensUs(numSeqs), sampledUs: this.sampledUs(numSeqs), loraAdapters: -1, loraUs: 0 };
      this.decodeTerms[numSeqs] = terms;
    }
    if (terms.loraAdapters !== numAdapters) {
      terms.loraUs = this.loraUs(numSeqs, numAdapters);
      terms.loraAdapters = numAdapters;
    }
    const { baseUs, tokensUs, sampledUs, loraUs } = terms;
    // The estimate's terms other than attention, summed once (a reordering moves the estimate by
    // a few ulps, far inside FAST_MARGIN; the exact price below keeps stepTotalUs's order).
    const fixedUs = baseUs + tokensUs + loraUs + sampledUs;
    const numLayers = this.numLayers;
    const { u, lnEff, offset, flopsUsPerKv, flopsUs0, bytesUsPerKv, bytesUs0 } = line;
    const last = u.length - 1;
    // 1 / efficiency, and how it moves from step to step. y = kvTokens / numSeqs + offset grows by
    // exactly 1 per step; on one segment of the curve 1/eff ∝ y^a (a = −slope), so the next step's
    // value is this one's × (1 + 1/y)^a, summed as a series to z^5 (z = 1/y). Each recurrence
    // step adds a relative error of at most remainder·z^6 + RECURRENCE_ROUNDING, largest at the
    // anchor (a step priced with Math.log and Math.exp; z falls from there), so the steps up to
    // `recurEnd` keep the error gathered below RECURRENCE_MAX_ERROR and stay short of the
    // segment's end (yLimit); from recurEnd on, re-anchor.
    let invEff = 0;
    let recurEnd = 0;
    let c1 = 0;
    let c2 = 0;
    let c3 = 0;
    let c4 = 0;
    let c5 = 0;
    let zPrev = 0;
    let pushed = 0;
    // Time from the run's start, not the clock: the clock passes 2^31 µs in the first hour, and a
    // loop variable that has left V8's small integers was boxed at every step (a heap number each).
    // Both sides are exact integers (or the limit Infinity), so the comparison is the same.
    let elapsedUs = 0;
    const budgetUs = limitUs - startUs;
    // y of step i is y0 + i (within an ulp or two of kvTokens / numSeqs + offset).
    const y0 = (contextTokens0 + numSeqs) / numSeqs + offset;
    for (let i = 0; i < maxSteps; i++) {
      if (i > 0 && elapsedUs >= budgetUs) break;
      const kvTokens = contextTokens0 + (i + 1) * numSeqs;
      const y = y0 + i;
      if (i < recurEnd) {
        invEff *= 1 + zPrev * (c1 + zPrev * (c2 + zPrev * (c3 + zPrev * (c4 + zPrev * c5))));
      } else {
        const ux = Math.log(y);
        let lnE: number;
        let slope = 0;
        let yLimit: number;
        if (ux <= u[0]) {
          lnE = lnEff[0];
          yLimit = Math.exp(u[0]) * (1 - SEGMENT_SLACK);
        } else if (ux >= u[last]) {
          lnE = lnEff[last];
          yLimit = Infinity;
        } else {
          let j = 0;
          while (j < last - 1 && u[j + 1] <= ux) j++; // bounded by the curve's length
          slope = (lnEff[j + 1] - lnEff[j]) / (u[j + 1] - u[j]);
          lnE = lnEff[j] + ((ux - u[j]) / (u[j + 1] - u[j])) * (lnEff[j + 1] - lnEff[j]);
          yLimit = Math.exp(u[j + 1]) * (1 - SEGMENT_SLACK);
        }
        invEff = Math.exp(-lnE);
        // Binomial coefficients C(a, k) of (1 + z)^a; the series' remainder after z^5 is at most
        // |C(a, 6)| z^6 (1 + ξ)^(a − 6) <= |C(a, 6)| z^6 for a <= 6, relative to (1 + z)^a >= 1/2
        // for z <= 0.1 and a >= −6: hence 2|C(a, 6)|. Outside those bounds, no recurrence.
        const a = -slope;
        c1 = a;
        c2 = (c1 * (a - 1)) / 2;
        c3 = (c2 * (a - 2)) / 3;
        c4 = (c3 * (a - 3)) / 4;
        c5 = (c4 * (a - 4)) / 5;
        recurEnd = i + 1;
        if (Math.abs(a) <= 6 && y >= 10) {
          const z = 1 / y;
          const z2 = z * z;
          const stepError = 2 * Math.abs((c5 * (a - 5)) / 6) * z2 * z2 * z2 + RECURRENCE_ROUNDING;
          // Step i + k (k >= 1) recurs while k·stepError < RECURRENCE_MAX_ERROR and y + k < yLimit.
          const byError = Math.ceil(RECURRENCE_MAX_ERROR / stepError) - 1;
          const byLimit = Math.ceil(yLimit - y) - 1;
          const k = byError < byLimit ? byError : byLimit;
          // Kept a small integer (`| 0`): a bound that may be a double made V8 box the loop's
          // numbers, a heap number per step; a wrapped bound would only re-anchor sooner.
          if (k > 0) recurEnd = i + 1 + ((k < maxSteps ? k : maxSteps) | 0);
        }
      }
      zPrev = 1 / y;
      const flopsRoof = flopsUs0 + kvTokens * flopsUsPerKv;
      const bytesRoof = bytesUs0 + kvTokens * bytesUsPerKv;
      const attention = (flopsRoof > bytesRoof ? flopsRoof : bytesRoof) * invEff * numLayers;
      if (estimatesUs !== null) estimatesUs.push(attention);
      const total = fixedUs + attention;
      const margin = total * FAST_MARGIN + FAST_MARGIN;
      let d = Math.ceil(total - margin);
      // The same ceiling for the whole interval [total − margin, total + margin]: no integer inside.
      if (total + margin > d) {
        const exact = baseUs + (tokensUs + this.decodeAttentionLayerUs(numSeqs, contextTokens0 + i * numSeqs) * numLayers + loraUs) + sampledUs;
        d = Math.ceil(exact);
        this.numExactSteps++;
      }
      if (d < 1) d = 1;
      durationsUs[firstIndex + pushed] = d;
      elapsedUs += d;
      pushed++;
    }
    return pushed;
  }

  /**
   * The step's price: first estimated with Math.log/Math.exp (each term within ~1e-12 relative of
   * its exact price), which settles the rounded microseconds whenever the estimate is more than
   * FAST_MARGIN (relative) away from an integer; otherwise priced exactly. Same result either way.
   */
  stepUs(s: StepShape): number {
    this.approx = true;
    let estimate: number;
    try {
      estimate = this.stepTotalUs(s);
    } finally {
      this.approx = false;
    }
    const margin = estimate * FAST_MARGIN + FAST_MARGIN;
    const d = Math.ceil(estimate - margin);
    if (estimate + margin <= d) return Math.max(1, d);
    this.numExactSteps++;
    return Math.max(1, Math.ceil(this.stepTotalUs(s)));
  }

  /**
   * The step's layer ops, each over all layers, priced as tokensUs and attentionUs price them (GEMMs
   * by shape over the engine's row buckets, norms, rope, SiLU-and-mul, KV write, attention): for
   * reports that set a price beside per-op measurements (experiments/validate/prefill-ops.ts).
   * Not in it: embedding, all-reduce, launch gaps, host time, LM head and sampling, LoRA.
   */
  layerOpsUs(s: StepShape): { op: string; us: number }[] {
    const tokens = bucketRows(s.numPrefillTokens + s.numDecodeTokens, this.rowBuckets);
    const layers = this.numLayers;
    const gemmUs = new Map<string, number>();
    for (const g of this.gemms) {
      const op = `gemm m=${tokens} n=${g.n} k=${g.k}`;
      gemmUs.set(op, (gemmUs.get(op) ?? 0) + layers * this.priced1d(g.bound, (m) => gemmWork(m, g.n, g.k, this.weightBytes), tokens));
    }
    const p = { tokens };
    return [
      ...[...gemmUs].map(([op, us]) => ({ op, us })),
      // Two norms per layer and the final one.
      { op: 'rmsnorm', us: (2 * layers + 1) * this.at(this.rmsnorm, p) },
      { op: 'rope', us: layers * this.at(this.rope, p) },
      { op: 'siluMul', us: layers * this.at(this.siluMul, p) },
      { op: 'kvWrite', us: (layers * this.at(this.kvWrite, p) * (this.kvBytes + 2)) / 4 },
      { op: 'attention', us: this.attentionUs(s) },
    ];
  }

  /** A power state for one replica's GPU, when the profile has a power section and it is on. */
  newPowerState(): PowerState | null {
    if (this.powerProfile === null) return null;
    const ridgeRows = this.peaks.bf16FlopsPerS / this.peaks.memoryBytesPerS;
    return new PowerState(this.powerProfile, ridgeRows, (n) => this.hostUs(n), (tokens) => bucketRows(tokens, this.rowBuckets));
  }

  /** Host time of a step of `numSeqs` sequences (a decode run's steps all have the same). */
  hostUs(numSeqs: number): number {
    return this.hostOverheadUs + this.hostOverheadPerSeqUs * numSeqs;
  }

  /** The step's microseconds before rounding. */
  private stepTotalUs(s: StepShape): number {
    const tokens = s.numPrefillTokens + s.numDecodeTokens;
    let total = this.hostUs(s.numSeqs) + this.loadsUs(s.numLoraLoads);
    if (tokens > 0) total += this.tokensUs(tokens) + this.attentionUs(s) + this.loraUs(tokens, s.numAdapters);
    if (s.numSampled > 0) total += this.sampledUs(s.numSampled);
    return total;
  }
}

/**
 * Kernels in one forward of our engine (engine/runtime/llama.ts): per layer two norms, the q/k/v
 * GEMM (or three), rope, the KV write, attention (flash-decoding's split and merge), o, gate/up,
 * SiLU-and-mul and down; then the embedding, the sampled rows' two gathers, the final norm, the LM
 * head, the widening to f32 and the sampler.
 */
export function engineKernelsPerForward(numLayers: number, qkvFused: boolean): number {
  return numLayers * (10 + (qkvFused ? 1 : 3)) + 7;
}

