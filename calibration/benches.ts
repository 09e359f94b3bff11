// One microbenchmark per op family: given a case (its config and grid point) it lays out the
// buffers in the arena and returns the call to time. Shapes follow native/index.ts; every
// buffer's shape is in a comment. Contents are random finite bf16 from the arena, except indices
// (page tables, slots, segments) and sampling logits, which are built to be realistic.
import { DeviceBuffer, type CpuOps, type GpuOps, type Stream } from '../native/index.js';
import { copiesFor, HOT_SOAK_MS, type Arena } from './harness.js';
import type { Case } from './grids.js';

export interface BenchContext {
  readonly g: GpuOps;
  readonly c: CpuOps;
  readonly arena: Arena;
  readonly stream: Stream;
  readonly random: () => number;
  /** Realistic f32 logits rows (randn × 2.5), `logitsRows` rows of `logitsVocab`, on the device. */
  readonly logits: DeviceBuffer;
  readonly logitsRows: number;
  readonly logitsVocab: number;
  /** Pinned host memory for copies. */
  readonly pinned: ArrayBuffer;
}

/** A graph-timed bench: call i uses rotation copy i mod copies. */
export interface GraphBench {
  readonly kind: 'graph';
  readonly call: (i: number) => void;
  readonly copies: number;
  /** Back-to-back replays for about this long before timing, so the GPU is hot (harness.HOT_SOAK_MS). */
  readonly soakMs?: number;
}
/** An eager bench timed with events (host ↔ device copies). */
export interface EagerBench {
  readonly kind: 'eager';
  readonly run: () => void;
  readonly reps: number;
}
/** A host bench timed with a wall clock. */
export interface HostBench {
  readonly kind: 'host';
  readonly run: () => void;
  readonly reps: number;
}
export type Bench = GraphBench | EagerBench | HostBench;

const BF16 = 2;
/**
 * Token rows from which a GEMM or a prefill call is soaked hot before timing: half the H200's
 * roofline ridge (~206 rows), where compute becomes a third of the roofline time and the SM clock
 * starts to matter. Fewer rows are memory-bound, priced as measured by the power model too.
 */
export const HOT_SOAK_MIN_ROWS = 128;
/** Prefill attention calls from this many new tokens are soaked (fewer are short, latency-bound calls). */
export const HOT_SOAK_MIN_PREFILL_TOKENS = 512;
const num = (c: Case['config'], k: string): number => c[k] as number;

function shuffled(n: number, random: () => number): Int32Array {
  const a = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/** `count` copies of a `bytes` region, for rotation. */
function regions(arena: Arena, bytes: number, count: number): DeviceBuffer[] {
  return Array.from({ length: count }, () => arena.take(bytes));
}

export const SAMPLING_PARAMS: Readonly<Record<string, { temperature: number; topK: number; topP: number }>> = {
  greedy: { temperature: 0, topK: 0, topP: 1 },
  temperature: { temperature: 1, topK: 0, topP: 1 },
  topk: { temperature: 1, topK: 50, topP: 1 },
  topp: { temperature: 1, topK: 0, topP: 0.9 },
  topk_topp: { temperature: 0.8, topK: 50, topP: 0.9 },
};

/** `length` f32 logits drawn as randn × 2.5 (Box–Muller, one pair per two draws): a realistic spread for the samplers, whose search cost depends on it. */
export function normalLogits(length: number, random: () => number): Float32Array {
  const logits = new Float32Array(length);
  for (let i = 0; i < length; i += 2) {
    const u = Math.max(random(), 1e-12);
    const v = random();
    const m = 2.5 * Math.sqrt(-2 * Math.log(u));
    logits[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < length) logits[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return logits;
}

/** Splits `tokens` into `parts` contiguous segments as evenly as possible: [parts + 1] starts. */
function segmentStarts(tokens: number, parts: number): Int32Array {
  const s = new Int32Array(parts + 1);
  for (let i = 0; i <= parts; i++) s[i] = Math.floor((i * tokens) / parts);
  return s;
}

export function prepareBench(k: Case, x: BenchContext): Bench {
  const { g, arena, stream, random } = x;
  const cfg = k.config;
  const p = k.point;
  switch (k.family) {
    case 'gemm': {
      const { m } = p;
      const n = num(cfg, 'n');
      const kk = num(cfg, 'k');
      const copies = copiesFor(n * kk * BF16);
      const a = arena.take(m * kk * BF16); // [m, k]
      const c = arena.take(m * n * BF16); // [m, n]
      const b = regions(arena, n * kk * BF16, copies); // [n, k] per copy (one layer's weight each)
      return {
        kind: 'graph', copies, soakMs: m >= HOT_SOAK_MIN_ROWS ? HOT_SOAK_MS : 0,
        call: (i) => g.gemm({ dtype: 'bf16', m, n, k: kk, a, b: b[i % copies], c, stream }),
      };
    }
    case 'decode': {
      const { batch, ctx, page } = p;
      const heads = num(cfg, 'heads');
      const kvHeads = num(cfg, 'kvHeads');
      const headDim = num(cfg, 'headDim');
      const pagesPer = Math.ceil(ctx / page);
      const numPages = batch * pagesPer;
      const cacheBytes = numPages * kvHeads * page * headDim * BF16; // [numPages, kvHeads, page, headDim]
      const copies = copiesFor(2 * cacheBytes);
      const kc = regions(arena, cacheBytes, copies);
      const vc = regions(arena, cacheBytes, copies);
      const blockTables = arena.put(shuffled(numPages, random), stream); // [batch, pagesPer], pages scattered
      const seqLens = arena.put(new Int32Array(batch).fill(ctx), stream); // [batch]
      const q = arena.take(batch * heads * headDim * BF16); // [batch, heads, headDim]
      const out = arena.take(batch * heads * headDim * BF16);
      return {
        kind: 'graph', copies,
        call: (i) => g.pagedDecode({
          dtype: 'bf16', kvDtype: 'bf16', numSeqs: batch, numHeads: heads, numKvHeads: kvHeads, headDim, pageSize: page, numPages,
          maxPagesPerSeq: pagesPer, maxSeqLen: ctx, q, kCache: kc[i % copies], vCache: vc[i % copies], blockTables, seqLens, out, stream,
        }),
      };
    }
    case 'prefill': {
      const { seqs, chunk, ctx } = p;
      const heads = num(cfg, 'heads');
      const kvHeads = num(cfg, 'kvHeads');
      const headDim = num(cfg, 'headDim');
      const page = 16;
      const pagesPer = Math.ceil((ctx + chunk) / page);
      const numPages = seqs * pagesPer;
      const tokens = seqs * chunk;
      const cacheBytes = numPages * kvHeads * page * headDim * BF16; // [numPages, kvHeads, 16, headDim]
      const copies = copiesFor(2 * cacheBytes);
      const kc = regions(arena, cacheBytes, copies);
      const vc = regions(arena, cacheBytes, copies);
      const q = arena.take(tokens * heads * headDim * BF16); // [tokens, heads, headDim]
      const out = arena.take(tokens * heads * headDim * BF16);
      const cu = arena.put(Int32Array.from({ length: seqs + 1 }, (_, i) => i * chunk), stream); // [seqs + 1]
      const kvLens = arena.put(new Int32Array(seqs).fill(ctx + chunk), stream); // [seqs]
      const bt = arena.put(shuffled(numPages, random), stream); // [seqs, pagesPer]
      return {
        kind: 'graph', copies, soakMs: tokens >= HOT_SOAK_MIN_PREFILL_TOKENS ? HOT_SOAK_MS : 0,
        call: (i) => g.prefill({
          dtype: 'bf16', numSeqs: seqs, numTokens: tokens, numHeads: heads, numKvHeads: kvHeads, headDim, pageSize: page, numPages,
          maxPagesPerSeq: pagesPer, maxQLen: chunk, q, cuSeqlensQ: cu, seqLensKv: kvLens, blockTables: bt, kCache: kc[i % copies], vCache: vc[i % copies], out, stream,
        }),
      };
    }
    case 'sampling': {
      const { batch, vocab } = p;
      const sp = SAMPLING_PARAMS[cfg.method as string];
      if (!sp) throw new Error(`unknown sampling method ${String(cfg.method)}`);
      // Rows of realistic logits: the first `vocab` entries of the prepared rows, copied per row.
      const logits = arena.take(batch * vocab * 4); // [batch, vocab] f32
      for (let r = 0; r < batch; r++) {
        const src = r % x.logitsRows;
        g.copy(viewAt(logits, r * vocab * 4, vocab * 4), viewAt(x.logits, src * x.logitsVocab * 4, vocab * 4), vocab * 4, stream);
      }
      const f32 = (v: number) => arena.put(new Float32Array(batch).fill(v), stream);
      const args = {
        batch, vocab, logits,
        temperature: f32(sp.temperature), topK: arena.put(new Int32Array(batch).fill(sp.topK), stream), topP: f32(sp.topP), minP: f32(0),
        seeds: arena.put(BigUint64Array.from({ length: batch }, (_, i) => BigInt(i + 1)), stream), offsets: arena.put(new BigUint64Array(batch), stream),
        tokens: arena.take(batch * 4), logprobs: arena.take(batch * 4), status: arena.take(batch * 4), stream,
      };
      g.sync(stream);
      return { kind: 'graph', copies: 1, call: () => g.sample(args) };
    }
    case 'hostSampling': {
      const { batch } = p;
      const vocab = num(cfg, 'vocab');
      const sp = SAMPLING_PARAMS[cfg.method as string];
      const logits = normalLogits(batch * vocab, random); // [batch, vocab]
      const args = {
        batch, vocab, logits,
        temperature: new Float32Array(batch).fill(sp.temperature), topK: new Int32Array(batch).fill(sp.topK), topP: new Float32Array(batch).fill(sp.topP), minP: new Float32Array(batch),
        seeds: BigUint64Array.from({ length: batch }, (_, i) => BigInt(i + 1)), offsets: new BigUint64Array(batch),
      };
      return { kind: 'host', reps: batch >= 64 ? 3 : 5, run: () => void x.c.sample(args) };
    }
    case 'lora': {
      const { tokens, adapters, rank } = p;
      const inDim = num(cfg, 'inDim');
      const outDim = num(cfg, 'outDim');
      const weightBytes = adapters * rank * (inDim + outDim) * BF16;
      const copies = copiesFor(weightBytes);
      const aw = regions(arena, adapters * rank * inDim * BF16, copies); // [adapters, rank, inDim]
      const bw = regions(arena, adapters * outDim * rank * BF16, copies); // [adapters, outDim, rank]
      const xin = arena.take(tokens * inDim * BF16); // [tokens, inDim]
      const out = arena.take(tokens * outDim * BF16); // [tokens, outDim], accumulated into
      const y = arena.take(tokens * rank * 4); // [tokens, rank] f32
      g.fill(y, 0, stream);
      const ranks = arena.put(new Int32Array(adapters).fill(rank), stream);
      const scales = arena.put(new Float32Array(adapters).fill(0.5), stream);
      const segStarts = arena.put(segmentStarts(tokens, adapters), stream); // tokens grouped by adapter
      const segSlots = arena.put(Int32Array.from({ length: adapters }, (_, i) => i), stream);
      const common = { dtype: 'bf16' as const, numTokens: tokens, maxRank: rank, numSlots: adapters, ranks, segStarts, numSegs: adapters, segSlots, y, stream };
      return {
        kind: 'graph', copies,
        call: (i) => {
          g.loraShrink({ ...common, inDim, x: xin, a: aw[i % copies] });
          g.loraExpand({ ...common, outDim, b: bw[i % copies], scales, out });
        },
      };
    }
    case 'rmsnorm': {
      const { tokens } = p;
      const hidden = num(cfg, 'hidden');
      const xb = arena.take(tokens * hidden * BF16); // [tokens, hidden]
      const residual = arena.take(tokens * hidden * BF16);
      const weight = arena.take(hidden * BF16);
      const out = arena.take(tokens * hidden * BF16);
      return { kind: 'graph', copies: 1, call: () => g.rmsnorm({ dtype: 'bf16', numTokens: tokens, hidden, x: xb, residual, weight, out, stream }) };
    }
    case 'rope': {
      const { tokens } = p;
      const heads = num(cfg, 'heads');
      const kvHeads = num(cfg, 'kvHeads');
      const headDim = num(cfg, 'headDim');
      const positions = arena.put(Int32Array.from({ length: tokens }, (_, i) => (i * 37) % 4096), stream);
      const q = arena.take(tokens * heads * headDim * BF16); // [tokens, heads, headDim]
      const kb = arena.take(tokens * kvHeads * headDim * BF16);
      return { kind: 'graph', copies: 1, call: () => g.rope({ dtype: 'bf16', numTokens: tokens, numHeads: heads, numKvHeads: kvHeads, headDim, positions, q, k: kb, stream }) };
    }
    case 'siluMul': {
      const { tokens } = p;
      const d = num(cfg, 'd');
      const xb = arena.take(tokens * 2 * d * BF16); // [tokens, 2d]
      const out = arena.take(tokens * d * BF16);
      return { kind: 'graph', copies: 1, call: () => g.siluMul({ dtype: 'bf16', numTokens: tokens, d, x: xb, out, stream }) };
    }
    case 'kvWrite': {
      const { tokens } = p;
      const kvHeads = num(cfg, 'kvHeads');
      const headDim = num(cfg, 'headDim');
      const page = 16;
      const numPages = Math.max(64, 4 * Math.ceil(tokens / page));
      const slots = shuffled(numPages * page, random).subarray(0, tokens); // scattered slots, as for many sequences
      const slotMapping = arena.put(Int32Array.from(slots), stream);
      const key = arena.take(tokens * kvHeads * headDim * BF16); // [tokens, kvHeads, headDim]
      const value = arena.take(tokens * kvHeads * headDim * BF16);
      const kc = arena.take(numPages * kvHeads * page * headDim * BF16);
      const vc = arena.take(numPages * kvHeads * page * headDim * BF16);
      return {
        kind: 'graph', copies: 1,
        call: () => g.kvWrite({ dtype: 'bf16', cacheDtype: 'bf16', numTokens: tokens, numKvHeads: kvHeads, headDim, pageSize: page, numPages, key, value, slotMapping, kCache: kc, vCache: vc, stream }),
      };
    }
    case 'embedding': {
      const { tokens } = p;
      const hidden = num(cfg, 'hidden');
      const vocab = 32000;
      const table = arena.take(vocab * hidden * BF16); // [vocab, hidden]
      const ids = arena.put(Int32Array.from({ length: tokens }, () => Math.floor(random() * vocab)), stream);
      const out = arena.take(tokens * hidden * BF16);
      return { kind: 'graph', copies: 1, call: () => g.embedding({ dtype: 'bf16', vocab, hidden, numTokens: tokens, table, ids, out, stream }) };
    }
    case 'copyH2D':
    case 'copyD2H': {
      const bytes = p.bytes;
      if (bytes > x.pinned.byteLength) throw new Error(`copy of ${bytes} bytes exceeds the pinned buffer (${x.pinned.byteLength})`);
      const host = new Uint8Array(x.pinned, 0, bytes);
      const dev = arena.take(bytes);
      const reps = bytes >= 1 << 26 ? 5 : 9;
      return k.family === 'copyH2D'
        ? { kind: 'eager', reps, run: () => g.copyToDevice(dev, host, { stream, async: true }) }
        : { kind: 'eager', reps, run: () => g.copyToHost(host, dev, { stream, async: true }) };
    }
  }
}

/** A byte range of a buffer as its own view. */
function viewAt(buf: DeviceBuffer, offsetBytes: number, bytes: number): DeviceBuffer {
  return new DeviceBuffer(buf.ptr + BigInt(offsetBytes), bytes);
}
