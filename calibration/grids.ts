// The shapes a calibration run measures: for every op family, a grid over the axes the simulator
// varies (the fit set) plus off-grid shapes drawn at random and held back to test the fit (the
// holdout set). `full` covers the simulator's range; `quick` is a smoke-test subset.
import { rng } from '../native/gpu-tests/numeric.js';
import { gemmShapes, loraShapes, shardsOf, type CalibModel, type Shard } from './shapes.js';

export type CaseFamily =
  | 'gemm' | 'decode' | 'prefill' | 'sampling' | 'hostSampling' | 'lora'
  | 'rmsnorm' | 'rope' | 'siluMul' | 'kvWrite' | 'embedding' | 'copyH2D' | 'copyD2H';

/** Order of measurement: what the simulator leans on most comes first (a run cut short keeps it). */
export const CASE_FAMILIES: readonly CaseFamily[] = [
  'gemm', 'decode', 'prefill', 'rmsnorm', 'rope', 'siluMul', 'kvWrite', 'embedding', 'sampling', 'copyH2D', 'copyD2H', 'hostSampling', 'lora',
];

export interface Case {
  readonly family: CaseFamily;
  readonly config: Readonly<Record<string, number | string>>;
  readonly point: Readonly<Record<string, number>>;
  readonly set: 'fit' | 'holdout';
}

export type GridName = 'full' | 'quick';

export const SAMPLING_METHODS = ['greedy', 'temperature', 'topk', 'topp', 'topk_topp'] as const;

const pow2 = (from: number, to: number): number[] => {
  const out: number[] = [];
  for (let v = from; v <= to; v *= 2) out.push(v);
  return out;
};
/** Powers of two and the points 1.5× between them: 1, 2, 3, 4, 6, 8, 12, ... */
const pow2Half = (from: number, to: number): number[] =>
  [...new Set(pow2(from, to).flatMap((v) => [v, Math.round(v * 1.5)]))].filter((v) => v <= to).sort((a, b) => a - b);

interface Axes {
  gemmM: number[];
  lmHeadMaxM: number;
  decodeBatch: number[];
  decodeCtx: number[];
  decodePage: number[];
  prefillSeqs: number[];
  prefillChunk: number[];
  prefillCtx: number[];
  samplingBatch: number[];
  samplingVocab: number[];
  hostBatch: number[];
  loraTokens: number[];
  loraAdapters: number[];
  loraRank: number[];
  tokens: number[];
  copyBytes: number[];
  methods: readonly string[];
  holdoutPerConfig: Readonly<Record<CaseFamily, number>>;
}

const FULL: Axes = {
  gemmM: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 192, 256, 320, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 16384],
  lmHeadMaxM: 4096,
  decodeBatch: pow2Half(1, 512),
  decodeCtx: pow2(32, 32768),
  decodePage: [8, 16, 32, 128],
  prefillSeqs: pow2Half(1, 32),
  prefillChunk: pow2(16, 16384),
  prefillCtx: [0, 128, 512, 1024, 2048, 4096, 8192, 16384],
  samplingBatch: pow2Half(1, 1024),
  samplingVocab: [8000, 16000, 32000],
  hostBatch: [1, 4, 16, 64, 256],
  loraTokens: pow2(1, 4096),
  loraAdapters: pow2(1, 64),
  loraRank: [8, 16, 32, 64],
  tokens: pow2Half(1, 16384),
  copyBytes: pow2(1 << 16, 1 << 29),
  methods: SAMPLING_METHODS,
  holdoutPerConfig: { gemm: 2, decode: 10, prefill: 10, sampling: 4, hostSampling: 1, lora: 4, rmsnorm: 2, rope: 2, siluMul: 2, kvWrite: 2, embedding: 2, copyH2D: 2, copyD2H: 2 },
};

const QUICK: Axes = {
  gemmM: [1, 16, 256, 4096],
  lmHeadMaxM: 256,
  decodeBatch: [1, 16, 128],
  decodeCtx: [128, 2048],
  decodePage: [16],
  prefillSeqs: [1, 4],
  prefillChunk: [64, 1024],
  prefillCtx: [0, 1024],
  samplingBatch: [1, 64, 256],
  samplingVocab: [32000],
  hostBatch: [1, 16],
  loraTokens: [4, 256],
  loraAdapters: [1, 4],
  loraRank: [16],
  tokens: [1, 64, 4096],
  copyBytes: [1 << 20, 1 << 26],
  methods: ['greedy', 'topp'],
  holdoutPerConfig: { gemm: 1, decode: 1, prefill: 1, sampling: 1, hostSampling: 0, lora: 1, rmsnorm: 1, rope: 0, siluMul: 0, kvWrite: 0, embedding: 0, copyH2D: 1, copyD2H: 0 },
};

/** Caps that keep one call within memory and the run within its time. */
export const LIMITS = {
  /** Decode: B × ctx tokens per call. */
  decodeTokens: 1 << 21,
  /** Decode: KV bytes read per call. */
  decodeKvBytes: 4 * 2 ** 30,
  /** Prefill: new tokens per call and cached + new tokens per call. */
  prefillNewTokens: 16384,
  prefillKvTokens: 65536,
};

/** A seeded generator (mulberry32, the GPU test drivers' own): the holdout shapes are the same on every run. */
export const seededRandom = rng;

/** An integer drawn log-uniformly from [lo, hi] that is not on `grid` (when the range allows). */
function offGrid(r: () => number, lo: number, hi: number, grid: readonly number[], multipleOf = 1): number {
  for (let attempt = 0; attempt < 64; attempt++) {
    const v = Math.round(Math.exp(Math.log(lo) + r() * (Math.log(hi) - Math.log(lo))) / multipleOf) * multipleOf;
    if (v >= lo && v <= hi && !grid.includes(v)) return v;
  }
  return Math.max(lo, Math.min(hi, Math.round((lo + hi) / 2 / multipleOf) * multipleOf));
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.min(xs.length - 1, Math.floor(r() * xs.length))];
}

function unique<T>(xs: T[], key: (x: T) => string): T[] {
  const seen = new Set<string>();
  return xs.filter((x) => {
    const k = key(x);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

const decodeFits = (c: { kvHeads: number; headDim: number }, batch: number, ctx: number): boolean =>
  batch * ctx <= LIMITS.decodeTokens && batch * ctx * c.kvHeads * c.headDim * 4 <= LIMITS.decodeKvBytes;
const prefillFits = (seqs: number, chunk: number, ctx: number): boolean =>
  seqs * chunk <= LIMITS.prefillNewTokens && seqs * (chunk + ctx) <= LIMITS.prefillKvTokens;

/** The H200's streaming multiprocessors (the default when the GPU does not say). */
export const H200_SMS = 132;

/** k·sms and k·sms + 1 up to `max`: the two sides of each wave step of a one-block-per-row kernel. */
export function waveEdges(sms: number, max: number): number[] {
  const out: number[] = [];
  for (let k = 1; k * sms + 1 <= max && k <= 64; k++) out.push(k * sms, k * sms + 1);
  return out;
}

export interface GridOptions {
  readonly models: readonly CalibModel[];
  readonly grid: GridName;
  /** SMs of the GPU (wave edges of the sampling grid); default the H200's 132. */
  readonly smCount?: number;
  /** Only these families (default: all). */
  readonly families?: readonly CaseFamily[];
  readonly seed?: number;
}

/** Every case of a run, in measurement order (family order, fit set before holdout within a family). */
export function buildCases(opts: GridOptions): Case[] {
  const ax = opts.grid === 'full' ? FULL : QUICK;
  const r = seededRandom(opts.seed ?? 20261122);
  const shards = shardsOf(opts.models);
  const want = new Set(opts.families ?? CASE_FAMILIES);
  const out: Case[] = [];
  const add = (family: CaseFamily, config: Record<string, number | string>, fit: Record<string, number>[], holdout: () => Record<string, number> | null) => {
    for (const point of fit) out.push({ family, config, point, set: 'fit' });
    for (let i = 0; i < ax.holdoutPerConfig[family]; i++) {
      const point = holdout();
      if (point) out.push({ family, config, point, set: 'holdout' });
    }
  };
  const headsConfigs = unique(shards.map((s: Shard) => ({ heads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim })), (c) => `${c.heads}/${c.kvHeads}/${c.headDim}`);
  const tokensAxis = (cfg: Record<string, number | string>, family: CaseFamily) =>
    add(family, cfg, ax.tokens.map((tokens) => ({ tokens })), () => ({ tokens: offGrid(r, ax.tokens[0], ax.tokens[ax.tokens.length - 1], ax.tokens) }));

  for (const family of CASE_FAMILIES) {
    if (!want.has(family)) continue;
    switch (family) {
      case 'gemm': {
        const shapes = unique(shards.flatMap((s) => gemmShapes(s)), (g) => `${g.n}x${g.k}`);
        for (const g of shapes) {
          const ms = ax.gemmM.filter((m) => !g.lmHead || m <= ax.lmHeadMaxM);
          add('gemm', { n: g.n, k: g.k }, ms.map((m) => ({ m })), () => ({ m: offGrid(r, ms[0], ms[ms.length - 1], ms) }));
        }
        break;
      }
      case 'decode':
        for (const c of headsConfigs) {
          const fit: Record<string, number>[] = [];
          for (const batch of ax.decodeBatch) for (const ctx of ax.decodeCtx) for (const page of ax.decodePage) if (decodeFits(c, batch, ctx)) fit.push({ batch, ctx, page });
          add('decode', c, fit, () => {
            for (let a = 0; a < 32; a++) {
              const batch = offGrid(r, 1, ax.decodeBatch[ax.decodeBatch.length - 1], ax.decodeBatch);
              const ctx = offGrid(r, ax.decodeCtx[0], ax.decodeCtx[ax.decodeCtx.length - 1], ax.decodeCtx);
              if (decodeFits(c, batch, ctx)) return { batch, ctx, page: pick(r, ax.decodePage) };
            }
            return null;
          });
        }
        break;
      case 'prefill':
        for (const c of headsConfigs) {
          const fit: Record<string, number>[] = [];
          for (const seqs of ax.prefillSeqs) for (const chunk of ax.prefillChunk) for (const ctx of ax.prefillCtx) if (prefillFits(seqs, chunk, ctx)) fit.push({ seqs, chunk, ctx });
          add('prefill', c, fit, () => {
            for (let a = 0; a < 32; a++) {
              const seqs = offGrid(r, 1, ax.prefillSeqs[ax.prefillSeqs.length - 1], ax.prefillSeqs.length > 2 ? ax.prefillSeqs : []);
              const chunk = offGrid(r, ax.prefillChunk[0], ax.prefillChunk[ax.prefillChunk.length - 1], ax.prefillChunk);
              const ctx = r() < 0.25 ? 0 : offGrid(r, 16, ax.prefillCtx[ax.prefillCtx.length - 1], ax.prefillCtx);
              if (prefillFits(seqs, chunk, ctx)) return { seqs, chunk, ctx };
            }
            return null;
          });
        }
        break;
      case 'sampling': {
        // The sampler runs one block per row and one block per SM: time steps up at every multiple
        // of the SM count, so both sides of each step are grid points (full grid only).
        const edges = opts.grid === 'full' ? waveEdges(opts.smCount ?? H200_SMS, ax.samplingBatch[ax.samplingBatch.length - 1]) : [];
        const batches = [...new Set([...ax.samplingBatch, ...edges])].sort((a, b) => a - b);
        for (const method of ax.methods) {
          const fit: Record<string, number>[] = [];
          for (const batch of batches) for (const vocab of ax.samplingVocab) fit.push({ batch, vocab });
          add('sampling', { method }, fit, () => ({
            batch: offGrid(r, 1, batches[batches.length - 1], batches),
            vocab: offGrid(r, ax.samplingVocab[0], ax.samplingVocab[ax.samplingVocab.length - 1], ax.samplingVocab, 8),
          }));
        }
        break;
      }
      case 'hostSampling':
        for (const method of ax.methods) {
          add('hostSampling', { method, vocab: 32000 }, ax.hostBatch.map((batch) => ({ batch })), () => ({ batch: offGrid(r, 1, ax.hostBatch[ax.hostBatch.length - 1], ax.hostBatch) }));
        }
        break;
      case 'lora': {
        const dims = unique(shards.flatMap((s) => loraShapes(s)), (d) => `${d.inDim}x${d.outDim}`);
        for (const d of dims) {
          const fit: Record<string, number>[] = [];
          for (const tokens of ax.loraTokens) for (const adapters of ax.loraAdapters) for (const rank of ax.loraRank) if (adapters <= tokens) fit.push({ tokens, adapters, rank });
          add('lora', d, fit, () => {
            const tokens = offGrid(r, ax.loraTokens[0], ax.loraTokens[ax.loraTokens.length - 1], ax.loraTokens);
            const adapters = Math.min(tokens, offGrid(r, 1, ax.loraAdapters[ax.loraAdapters.length - 1], ax.loraAdapters));
            return { tokens, adapters, rank: offGrid(r, ax.loraRank[0], ax.loraRank[ax.loraRank.length - 1], ax.loraRank, 8) };
          });
        }
        break;
      }
      case 'rmsnorm':
      case 'embedding':
        for (const hidden of unique(shards.map((s) => s.hidden), String)) tokensAxis({ hidden }, family);
        break;
      case 'rope':
        for (const c of headsConfigs) tokensAxis(c, 'rope');
        break;
      case 'siluMul':
        for (const d of unique(shards.map((s) => s.ffnShard), String)) tokensAxis({ d }, 'siluMul');
        break;
      case 'kvWrite':
        for (const c of unique(headsConfigs.map((h) => ({ kvHeads: h.kvHeads, headDim: h.headDim })), (c) => `${c.kvHeads}/${c.headDim}`)) tokensAxis(c, 'kvWrite');
        break;
      case 'copyH2D':
      case 'copyD2H':
        add(family, {}, ax.copyBytes.map((bytes) => ({ bytes })), () => ({ bytes: offGrid(r, ax.copyBytes[0], ax.copyBytes[ax.copyBytes.length - 1], ax.copyBytes, 4096) }));
        break;
    }
  }
  return out;
}

/** Counts per family and set, for logs and provenance. */
export function summarizeCases(cases: readonly Case[]): Record<string, { configs: number; fit: number; holdout: number }> {
  const out: Record<string, { configs: number; fit: number; holdout: number; keys: Set<string> }> = {};
  for (const c of cases) {
    const e = (out[c.family] ??= { configs: 0, fit: 0, holdout: 0, keys: new Set() });
    e[c.set]++;
    e.keys.add(JSON.stringify(c.config));
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { configs: v.keys.size, fit: v.fit, holdout: v.holdout }]));
}

/** The axis values of each family's grid, for provenance. */
export function gridAxes(grid: GridName): Record<string, unknown> {
  const ax = grid === 'full' ? FULL : QUICK;
  return {
    gemm: { m: ax.gemmM, lmHeadMaxM: ax.lmHeadMaxM },
    decode: { batch: ax.decodeBatch, ctx: ax.decodeCtx, page: ax.decodePage, limits: { tokens: LIMITS.decodeTokens, kvBytes: LIMITS.decodeKvBytes } },
    prefill: { seqs: ax.prefillSeqs, chunk: ax.prefillChunk, ctx: ax.prefillCtx, page: 16, limits: { newTokens: LIMITS.prefillNewTokens, kvTokens: LIMITS.prefillKvTokens } },
    sampling: { batch: ax.samplingBatch, vocab: ax.samplingVocab, methods: ax.methods },
    hostSampling: { batch: ax.hostBatch, vocab: 32000, methods: ax.methods },
    lora: { tokens: ax.loraTokens, adapters: ax.loraAdapters, rank: ax.loraRank },
    elementwise: { tokens: ax.tokens },
    copies: { bytes: ax.copyBytes },
    holdoutPerConfig: ax.holdoutPerConfig,
  };
}
