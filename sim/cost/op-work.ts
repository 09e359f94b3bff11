// The op families a calibration profile covers, and the roofline work of each: the FLOPs and
// bytes a kernel call must do at minimum. A profile stores efficiency = roofline time ÷ measured
// time over a grid of shapes; pricing divides the roofline time of the asked shape by the
// interpolated efficiency. The same `opWork` turns a measured sample into an efficiency (the fit)
// and an efficiency back into time (the cost model), so the two cannot disagree.
//
// Element sizes: activations, weights and KV in bf16 (2 bytes), logits and LoRA intermediates in f32.

export const FAMILIES = [
  'gemm', 'decode', 'prefill', 'sampling', 'hostSampling', 'lora',
  'rmsnorm', 'rope', 'siluMul', 'kvWrite', 'embedding', 'copyH2D', 'copyD2H',
] as const;
export type Family = (typeof FAMILIES)[number];

/** Which peak a family's roofline uses: the GPU (HBM and tensor cores), the PCIe link or the host. */
export type Bound = 'device' | 'pcie' | 'host';

export interface AxisSpec {
  readonly name: string;
  /** Interpolation runs in ln(value + offset): offset 0 for positive axes, > 0 for axes that can be 0. */
  readonly offset: number;
  /**
   * A larger value can always run the smaller problem (pad tokens, sequences, context or bytes),
   * so the fit makes time non-decreasing along it: t(x) = min over measured y >= x of t(y).
   * Not so for page size, or for LoRA adapters (more adapters split the tokens into more parallel segments).
   */
  readonly paddable: boolean;
}

export interface FamilySpec {
  /** Fixed per table (e.g. a GEMM's n and k); a string key (sampling method) must match exactly. */
  readonly configKeys: readonly string[];
  readonly axes: readonly AxisSpec[];
  readonly bound: Bound;
  readonly describe: string;
}

const ax = (name: string, offset = 0, paddable = true): AxisSpec => ({ name, offset, paddable });

export const FAMILY_SPECS: Readonly<Record<Family, FamilySpec>> = {
  gemm: { configKeys: ['n', 'k'], axes: [ax('m')], bound: 'device', describe: 'bf16 GEMM c[m,n] = a[m,k] b[n,k]^T (cuBLASLt, tuned per shape)' },
  decode: { configKeys: ['heads', 'kvHeads', 'headDim'], axes: [ax('batch'), ax('ctx'), ax('page', 0, false)], bound: 'device', describe: 'paged decode attention, one query per sequence, bf16 KV' },
  prefill: { configKeys: ['heads', 'kvHeads', 'headDim'], axes: [ax('seqs'), ax('chunk'), ax('ctx', 64)], bound: 'device', describe: 'causal prefill attention over paged KV: seqs × chunk new tokens after ctx cached' },
  sampling: { configKeys: ['method'], axes: [ax('batch'), ax('vocab')], bound: 'device', describe: 'GPU sampling from f32 logits' },
  hostSampling: { configKeys: ['method', 'vocab'], axes: [ax('batch')], bound: 'host', describe: 'host (CPU reference) sampling from f32 logits, logits already on the host' },
  lora: { configKeys: ['inDim', 'outDim'], axes: [ax('tokens'), ax('adapters', 0, false), ax('rank')], bound: 'device', describe: 'multi-LoRA shrink + expand for one projection' },
  rmsnorm: { configKeys: ['hidden'], axes: [ax('tokens')], bound: 'device', describe: 'fused residual add + RMSNorm' },
  rope: { configKeys: ['heads', 'kvHeads', 'headDim'], axes: [ax('tokens')], bound: 'device', describe: 'rotary embedding of q and k in place' },
  siluMul: { configKeys: ['d'], axes: [ax('tokens')], bound: 'device', describe: 'SiLU(gate) × up' },
  kvWrite: { configKeys: ['kvHeads', 'headDim'], axes: [ax('tokens')], bound: 'device', describe: 'write new K and V into the paged cache (page 16)' },
  embedding: { configKeys: ['hidden'], axes: [ax('tokens')], bound: 'device', describe: 'token embedding gather' },
  copyH2D: { configKeys: [], axes: [ax('bytes')], bound: 'pcie', describe: 'pinned host → device copy (adapter loads, KV swap-in)' },
  copyD2H: { configKeys: [], axes: [ax('bytes')], bound: 'pcie', describe: 'device → pinned host copy (KV swap-out, logits to the host)' },
};

export type ConfigValues = Readonly<Record<string, number | string>>;
export type PointValues = Readonly<Record<string, number>>;

export interface Work {
  readonly flops: number;
  readonly bytes: number;
}

const BF16 = 2;
const F32 = 4;

function num(c: ConfigValues, key: string): number {
  const v = c[key];
  if (typeof v !== 'number') throw new Error(`op config: ${key} must be a number, got ${String(v)}`);
  return v;
}

/** A GEMM with weights of `weightBytes` per element (bf16 = 2; the profile measures bf16). */
export function gemmWork(m: number, n: number, k: number, weightBytes = BF16): Work {
  return { flops: 2 * m * n * k, bytes: (m * k + m * n) * BF16 + n * k * weightBytes };
}

/** Decode attention over `kvTokens` cached tokens in all (sum over sequences, new token included). */
export function decodeWork(c: ConfigValues, batch: number, kvTokens: number, kvBytes = BF16): Work {
  const heads = num(c, 'heads');
  const kvHeads = num(c, 'kvHeads');
  const headDim = num(c, 'headDim');
  return {
    flops: 4 * kvTokens * heads * headDim,
    bytes: 2 * kvTokens * kvHeads * headDim * kvBytes + 2 * batch * heads * headDim * BF16,
  };
}

/** Prefill attention: `pairs` (query, key) pairs computed (tile pairs), `newTokens` queries, `kvTokens` keys read. */
export function prefillWork(c: ConfigValues, newTokens: number, pairs: number, kvTokens: number, kvBytes = BF16): Work {
  const heads = num(c, 'heads');
  const kvHeads = num(c, 'kvHeads');
  const headDim = num(c, 'headDim');
  return {
    flops: 4 * heads * headDim * pairs,
    bytes: 2 * kvTokens * kvHeads * headDim * kvBytes + 2 * newTokens * heads * headDim * BF16,
  };
}

/** Causal pairs of `seqs` sequences, each with `chunk` new tokens after `ctx` cached ones. */
export function prefillPairs(seqs: number, chunk: number, ctx: number): number {
  return (seqs * chunk * (2 * ctx + chunk + 1)) / 2;
}

/**
 * The prefill kernels work in whole tiles of queries × 64 keys and skip only tiles wholly above
 * the causal diagonal (native/src/cuda/prefill.cu: 64-query tiles; the Hopper wgmma kernel uses
 * 64 × warpgroups). The roofline counts 64 × 64 tiles, so the ragged edge of a chunk (65 tokens
 * cost two query tiles) sits in the roofline and not in the efficiency, which then interpolates
 * smoothly; what a larger query tile adds is left to the efficiency. Fit and model use the same
 * count, so they agree whatever the kernel's tile.
 */
export const PREFILL_TILE = 64;

/** (query, key) pairs the kernel computes for one sequence: whole tiles, causal tiles skipped. */
export function prefillTilePairs(chunk: number, ctx: number): number {
  if (chunk <= 0) return 0;
  const t = PREFILL_TILE;
  const qTiles = Math.ceil(chunk / t);
  const ctxTiles = Math.ceil(ctx / t);
  // Query tile j (all but the last) reads keys up to ctx + t(j + 1): j + 1 + ceil(ctx / t) key tiles.
  const full = qTiles - 1;
  const tiles = (full * (full + 1)) / 2 + full * ctxTiles + Math.ceil((ctx + chunk) / t);
  return tiles * t * t;
}

/**
 * Tile pairs expected for a sequence whose chunk and context are not known to be tile-aligned: a
 * ragged edge costs half a tile on average. Continuous and increasing in both arguments (the
 * exact count jumps at every tile edge, which on a step's averages would make prices jump).
 */
export function prefillExpectedTilePairs(chunk: number, ctx: number): number {
  if (chunk <= 0) return 0;
  const t = PREFILL_TILE;
  const qTiles = Math.max(1, chunk / t + 0.5);
  const full = qTiles - 1;
  const tiles = (full * (full + 1)) / 2 + full * (ctx / t + 0.5) + Math.max(1, (ctx + chunk) / t + 0.5);
  return tiles * t * t;
}

/**
 * Tile pairs for a step's prefill, whose sequences' alignment is unknown: its exact pairs scaled
 * by the expected tile overhead of its average sequence.
 */
export function prefillStepTilePairs(exactPairs: number, seqs: number, newTokens: number, ctxTokens: number): number {
  if (seqs <= 0 || newTokens <= 0) return 0;
  const chunk = newTokens / seqs;
  const ctx = ctxTokens / seqs;
  const avgExact = prefillPairs(1, chunk, ctx);
  return avgExact > 0 ? (exactPairs * prefillExpectedTilePairs(chunk, ctx)) / avgExact : 0;
}

/** The roofline work of one call of `family` at a grid point. */
export function opWork(family: Family, c: ConfigValues, p: PointValues): Work {
  switch (family) {
    case 'gemm':
      return gemmWork(p.m, num(c, 'n'), num(c, 'k'));
    case 'decode':
      return decodeWork(c, p.batch, p.batch * p.ctx);
    case 'prefill':
      return prefillWork(c, p.seqs * p.chunk, p.seqs * prefillTilePairs(p.chunk, p.ctx), p.seqs * (p.ctx + p.chunk));
    case 'sampling':
      return { flops: 0, bytes: p.batch * p.vocab * F32 };
    case 'hostSampling':
      return { flops: 0, bytes: p.batch * num(c, 'vocab') * F32 };
    case 'lora': {
      const inDim = num(c, 'inDim');
      const outDim = num(c, 'outDim');
      const { tokens, adapters, rank } = p;
      return {
        flops: 2 * tokens * rank * (inDim + outDim),
        bytes: adapters * rank * (inDim + outDim) * BF16 + tokens * inDim * BF16 + 2 * tokens * outDim * BF16 + 2 * tokens * rank * F32,
      };
    }
    case 'rmsnorm': // x and residual read, residual and out written
      return { flops: 0, bytes: 4 * p.tokens * num(c, 'hidden') * BF16 };
    case 'rope': // q and k read and written
      return { flops: 0, bytes: 2 * p.tokens * (num(c, 'heads') + num(c, 'kvHeads')) * num(c, 'headDim') * BF16 };
    case 'siluMul': // [tokens, 2d] read, [tokens, d] written
      return { flops: 0, bytes: 3 * p.tokens * num(c, 'd') * BF16 };
    case 'kvWrite': // k and v read and written
      return { flops: 0, bytes: 4 * p.tokens * num(c, 'kvHeads') * num(c, 'headDim') * BF16 };
    case 'embedding':
      return { flops: 0, bytes: 2 * p.tokens * num(c, 'hidden') * BF16 + 4 * p.tokens };
    case 'copyH2D':
    case 'copyD2H':
      return { flops: 0, bytes: p.bytes };
  }
}

export interface Peaks {
  /** HBM bandwidth the efficiencies are relative to (the spec sheet's). */
  readonly memoryBytesPerS: number;
  /** Dense bf16 tensor-core peak (spec). */
  readonly bf16FlopsPerS: number;
  /** Host ↔ device link (spec). */
  readonly pcieBytesPerS: number;
  /** A nominal host memory rate for host-side ops (a scale, not a claim about the CPU). */
  readonly hostBytesPerS: number;
}

/** Roofline time in microseconds of `work` for a family bound to `bound`. */
export function rooflineUs(bound: Bound, work: Work, peaks: Peaks): number {
  if (bound === 'pcie') return (work.bytes / peaks.pcieBytesPerS) * 1e6;
  if (bound === 'host') return (work.bytes / peaks.hostBytesPerS) * 1e6;
  return Math.max((work.flops / peaks.bf16FlopsPerS) * 1e6, (work.bytes / peaks.memoryBytesPerS) * 1e6);
}

/** Canonical text of a config or point: keys in spec order, `k=v` joined by ';' (CSV-safe). */
export function keyText(keys: readonly string[], values: Readonly<Record<string, number | string>>): string {
  return keys.map((k) => `${k}=${values[k]}`).join(';');
}

/** Parses `k=v;k=v` (numbers where they parse, strings otherwise). */
export function parseKeyText(text: string): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  if (text.trim() === '') return out;
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`"${part}" is not key=value`);
    const key = part.slice(0, eq).trim();
    const raw = part.slice(eq + 1).trim();
    const n = Number(raw);
    out[key] = raw !== '' && Number.isFinite(n) ? n : raw;
  }
  return out;
}
