// The GPU side of the LoRA cache: for every layer and served module, A and B stacked over slots
// ([numSlots, maxRank, in] and [numSlots, out, maxRank]), plus per-slot ranks and scales. The
// policy's LoRA cache decides which adapter sits in which slot (plan.loraLoads); `load` writes it.
// gate_proj and up_proj share one stacked GEMM ([T, 2·ffn] out), so their adapters are stacked
// too: A rows [0, r) are gate's, [r, 2r) up's, and B is block-diagonal over (gate | up) × (r | r),
// so one shrink and one expand of rank 2r give both deltas.
import type { ActDtype, Device, Tensor } from '../device.js';
import type { ModelConfig } from '../model-config.js';
import { LoraError, moduleDims, pairKey, type LoraAdapter, type LoraModule } from './adapter.js';

/** The forward's LoRA sites: one per base GEMM. */
export type LoraSite = 'q' | 'k' | 'v' | 'o' | 'gateUp' | 'down';

const SITE_OF: Record<LoraModule, LoraSite> = { q_proj: 'q', k_proj: 'k', v_proj: 'v', o_proj: 'o', gate_proj: 'gateUp', up_proj: 'gateUp', down_proj: 'down' };

interface SiteSlots {
  readonly inDim: number;
  readonly outDim: number;
  /** Rank capacity of this site (2 × maxRank for gateUp). */
  readonly maxRank: number;
  /** Per layer: [numSlots, maxRank, inDim]. */
  readonly a: Tensor[];
  /** Per layer: [numSlots, outDim, maxRank]. */
  readonly b: Tensor[];
  /** [numSlots] int32: this site's rank per slot (0: the slot's adapter does not touch it). */
  readonly ranks: Tensor;
}

/** The step's token grouping by slot: runs of rows that share one slot (-1: no adapter). */
export interface LoraSegments {
  readonly segStarts: Tensor;
  readonly segSlots: Tensor;
  readonly numSegs: number;
}

export interface LoraSlotsOptions {
  readonly numSlots: number;
  /** Largest adapter rank served; rounded up to a multiple of 8 (the GPU expand kernel's tile). */
  readonly maxRank: number;
  /** Modules any served adapter targets: only their sites get slot memory. */
  readonly targets: readonly LoraModule[];
}

/** One site of an adapter, packed into the slots' layout and dtype (per layer). */
interface StagedSite {
  /** [rank]: one element, so the copy reads staged memory too. */
  readonly rank: Int32Array;
  readonly a: (Float32Array | Uint16Array)[];
  readonly b: (Float32Array | Uint16Array)[];
}

/** An adapter packed for loading: every array a view of one host buffer (page-locked on the GPU). */
interface StagedAdapter {
  readonly sites: Map<LoraSite, StagedSite>;
  readonly scale: Float32Array;
}

export class LoraSlots {
  /** Packed adapters by adapter object (a registry re-read of a PEFT folder is a new object, packed anew). */
  private readonly staged = new WeakMap<LoraAdapter, StagedAdapter>();
  readonly numSlots: number;
  readonly maxRank: number;
  readonly sites = new Map<LoraSite, SiteSlots>();
  /** [numSlots] f32 scale per slot. */
  readonly scales: Tensor;
  /** The adapter in each slot (null: empty). */
  readonly resident: (string | null)[];
  /** Bytes of device memory the slots take. */
  readonly bytes: number;
  /** Rank capacity of the widest site: the shrink output's row width. */
  readonly maxSiteRank: number;
  numLoads = 0;

  constructor(
    private readonly device: Device,
    private readonly config: ModelConfig,
    options: LoraSlotsOptions,
  ) {
    if (!Number.isSafeInteger(options.numSlots) || options.numSlots < 1) throw new Error(`LoRA slots: numSlots = ${options.numSlots}: must be >= 1`);
    this.numSlots = options.numSlots;
    this.maxRank = Math.ceil(options.maxRank / 8) * 8;
    this.resident = new Array<string | null>(this.numSlots).fill(null);
    const el = device.dtype === 'bf16' ? 2 : 4;
    let bytes = 0;
    let widest = 0;
    const sites = [...new Set(options.targets.map((m) => SITE_OF[m]))];
    for (const site of sites) {
      const { inDim, outDim } = siteDims(config, site);
      const maxRank = site === 'gateUp' ? 2 * this.maxRank : this.maxRank;
      widest = Math.max(widest, maxRank);
      const a: Tensor[] = [];
      const b: Tensor[] = [];
      for (let l = 0; l < config.numLayers; l++) {
        a.push(device.zeros(device.dtype, this.numSlots * maxRank * inDim));
        b.push(device.zeros(device.dtype, this.numSlots * outDim * maxRank));
        bytes += this.numSlots * maxRank * (inDim + outDim) * el;
      }
      this.sites.set(site, { inDim, outDim, maxRank, a, b, ranks: device.zerosInt(this.numSlots) });
    }
    this.scales = device.zeros('f32', this.numSlots);
    this.bytes = bytes;
    this.maxSiteRank = widest;
  }

  /** Writes the adapter's weights, ranks and scale into `slot`. */
  load(slot: number, adapter: LoraAdapter): void {
    if (!Number.isSafeInteger(slot) || slot < 0 || slot >= this.numSlots) throw new Error(`LoRA slot ${slot} out of range [0, ${this.numSlots})`);
    if (adapter.numLayers !== this.config.numLayers) throw new LoraError('lora_format', adapter.name, `has ${adapter.numLayers} layers, the model ${this.config.numLayers}`);
    if (adapter.rank > this.maxRank) throw new LoraError('lora_rank', adapter.name, `rank ${adapter.rank} exceeds the engine's slot rank ${this.maxRank} (raise lora.rank)`);
    for (const m of adapter.targets) {
      if (!this.sites.has(SITE_OF[m])) throw new LoraError('lora_format', adapter.name, `targets ${m}, which the engine's slots do not serve (served: ${[...this.sites.keys()].join(', ')})`);
    }
    const dev = this.device;
    const staged = this.stage(adapter);
    // ~8 copies per layer (260 for a 7B q/k/v/o adapter): queued from page-locked memory with one
    // wait at the end. Waiting per copy from pageable memory made a load several times the cost
    // the simulator prices (a host-to-device copy of the adapter's bytes).
    for (const [site, s] of this.sites) {
      const st = staged.sites.get(site)!;
      for (let l = 0; l < this.config.numLayers; l++) {
        dev.writeQueued(s.a[l], slot * s.maxRank * s.inDim, st.a[l]);
        dev.writeQueued(s.b[l], slot * s.outDim * s.maxRank, st.b[l]);
      }
      dev.writeQueued(s.ranks, slot, st.rank);
    }
    dev.writeQueued(this.scales, slot, staged.scale);
    // The staged memory of a re-read PEFT adapter may be collected once this returns.
    dev.sync();
    this.resident[slot] = adapter.name;
    this.numLoads++;
  }

  /** Adds the LoRA delta of `site` in `layer`: out[T, outDim] += scale · B (A x[T, inDim]), per token's slot. */
  apply(layer: number, site: LoraSite, x: Tensor, out: Tensor, numTokens: number, seg: LoraSegments, y: Tensor): void {
    const s = this.sites.get(site);
    if (s === undefined) return;
    const dt: ActDtype = this.device.dtype;
    const common = { dtype: dt, numTokens, maxRank: s.maxRank, numSlots: this.numSlots, ranks: s.ranks, segStarts: seg.segStarts, numSegs: seg.numSegs, segSlots: seg.segSlots };
    // y is sized for the widest site: this site's [numTokens, maxRank] is its head.
    const ySite = this.device.view(y, 'f32', 0, numTokens * s.maxRank);
    this.device.loraShrink({ ...common, inDim: s.inDim, x, a: s.a[layer], y: ySite });
    this.device.loraExpand({ ...common, outDim: s.outDim, y: ySite, b: s.b[layer], scales: this.scales, out });
  }

  /**
   * The adapter packed into the slots' layout and dtype, kept on the host for as long as the
   * adapter object lives: a slot load is then only copies (a reload after an eviction repacked
   * ~8M values on the host, ~90 ms for a 7B rank-16 adapter, inside the step). `prepare` does it
   * ahead of the first load.
   */
  prepare(adapter: LoraAdapter): void {
    this.stage(adapter);
  }

  private stage(adapter: LoraAdapter): StagedAdapter {
    const hit = this.staged.get(adapter);
    if (hit !== undefined) return hit;
    const r = adapter.rank;
    const layers = this.config.numLayers;
    const el = this.device.dtype === 'f32' ? 4 : 2;
    let weightBytes = 0;
    for (const s of this.sites.values()) weightBytes += layers * s.maxRank * (s.inDim + s.outDim) * el;
    // Weights first (their views need element alignment only), then a rank per site and the scale.
    const host = this.device.hostBuffer(weightBytes + 4 * (this.sites.size + 1));
    let offsetBytes = 0;
    const take = (count: number): Float32Array | Uint16Array => {
      const view = el === 4 ? new Float32Array(host, offsetBytes, count) : new Uint16Array(host, offsetBytes, count);
      offsetBytes += count * el;
      return view;
    };
    const ranks = new Int32Array(host, weightBytes, this.sites.size);
    const sites = new Map<LoraSite, StagedSite>();
    let siteIndex = 0;
    for (const [site, s] of this.sites) {
      const modules = (Object.keys(SITE_OF) as LoraModule[]).filter((m) => SITE_OF[m] === site && adapter.targets.includes(m));
      ranks[siteIndex] = modules.length === 0 ? 0 : site === 'gateUp' ? 2 * r : r;
      const st: StagedSite = { rank: ranks.subarray(siteIndex, siteIndex + 1), a: [], b: [] };
      siteIndex++;
      // One f32 scratch per site for every layer: each layer writes the same positions (the
      // same modules at the same rank), and the others stay 0.
      const a = new Float32Array(s.maxRank * s.inDim);
      const b = new Float32Array(s.outDim * s.maxRank);
      for (let l = 0; l < layers; l++) {
        for (const m of modules) {
          const p = adapter.pairs.get(pairKey(l, m))!;
          // Within gateUp: gate takes A rows / B columns [0, r) and output rows [0, ffn); up the next ones.
          const k = site === 'gateUp' && m === 'up_proj' ? 1 : 0;
          const outDim = moduleDims(this.config, m).outDim;
          a.set(p.a, k * r * s.inDim);
          for (let n = 0; n < outDim; n++) {
            for (let j = 0; j < r; j++) b[(k * outDim + n) * s.maxRank + k * r + j] = p.b[n * r + j];
          }
        }
        st.a.push(this.castInto(a, take(a.length)));
        st.b.push(this.castInto(b, take(b.length)));
      }
      sites.set(site, st);
    }
    const scale = new Float32Array(host, weightBytes + 4 * this.sites.size, 1);
    scale[0] = adapter.scale;
    const staged = { sites, scale };
    this.staged.set(adapter, staged);
    return staged;
  }

  private castInto(x: Float32Array, out: Float32Array | Uint16Array): Float32Array | Uint16Array {
    if (out instanceof Float32Array) out.set(x);
    else f32ArrayToBf16(x, out);
    return out;
  }
}

/**
 * f32 → bf16 bits, round to nearest even, NaN kept quiet: native's f32ToBf16 as one loop over the
 * array's bits (a slot load converts ~26M values for a 13B rank-16 adapter; a call per value took
 * seconds).
 */
export function f32ArrayToBf16(x: Float32Array, out: Uint16Array = new Uint16Array(x.length)): Uint16Array {
  if (out.length !== x.length) throw new Error(`f32ArrayToBf16: ${x.length} values into ${out.length}`);
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < u.length; i++) {
    const b = u[i];
    out[i] = (b & 0x7fffffff) > 0x7f800000 ? ((b >>> 16) | 0x40) & 0xffff : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

function siteDims(c: ModelConfig, site: LoraSite): { inDim: number; outDim: number } {
  switch (site) {
    case 'q': return moduleDims(c, 'q_proj');
    case 'k': return moduleDims(c, 'k_proj');
    case 'v': return moduleDims(c, 'v_proj');
    case 'o': return moduleDims(c, 'o_proj');
    case 'gateUp': return { inDim: c.hiddenSize, outDim: 2 * c.ffnSize };
    case 'down': return moduleDims(c, 'down_proj');
  }
}
