// CUDA graphs for decode-only steps. A batch-1 7B decode step is ~400 kernel launches, each
// checked in JavaScript and passed through N-API, so the GPU idles between them; a captured graph
// replays the whole step (forward, bf16 -> f32 cast, fused sampler) with one launch.
//
// A graph is captured per key (decode rows padded to the GPU's row bucket, context padded to a
// power-of-two bucket). Everything a kernel takes as a launch argument is fixed by the key; every
// per-step value (token ids, positions, KV slots, block tables, sequence lengths, sampled rows,
// sampling parameters) sits in the key's own device buffer, written by one copy before the launch.
// Padding rows are token 0 at position 0 with KV slot -1 (not written) and context length 0 (a zero
// attention row), sampled greedily and ignored. The paged decode's split count is sized for the
// context bucket; the kernel reads each sequence's length and skips splits past it, and the split
// size follows the same rule in eager steps (llama.ts, decodePartitionTokens), so a replayed step
// computes what the eager step computes, bit for bit.
//
// Steps that do not fit (a prefill chunk, a LoRA adapter, block copies, rows above maxRows) run
// eagerly. The first step of a key runs eagerly with the graph's exact launches (tuning new GEMM
// shapes and sizing the decode workspace, which must not happen during capture), then is captured.
import type { SampleResult } from '../../native/index.js';
import type { Device, GraphExec, StagedSampleParams, Tensor } from './device.js';
import { contextBucket, layoutArrays, planLayout, type ForwardSeq, type LlamaModel, stepTensors, type StepLayout } from './llama.js';
import type { SamplingParams } from './runner.js';

export interface DecodeGraphKey {
  /** Decode rows the graph runs (a row bucket >= the step's sequences). */
  readonly rows: number;
  /** Context bucket: every sequence's context (including the new token) is at most this. */
  readonly contextTokens: number;
}

/** The key of a step that a graph can replay, or null (it runs eagerly). */
export function decodeGraphKey(seqs: readonly ForwardSeq[], rowBucket: (n: number) => number, maxRows: number): DecodeGraphKey | null {
  if (seqs.length === 0) return null;
  let maxLen = 0;
  for (const s of seqs) {
    if (s.tokenIds.length !== 1 || !s.samples || (s.adapterSlot ?? -1) >= 0) return null;
    maxLen = Math.max(maxLen, s.contextTokens + 1);
  }
  const rows = rowBucket(seqs.length);
  if (rows > maxRows) return null;
  return { rows, contextTokens: contextBucket(maxLen) };
}

/**
 * The step's layout in the key's fixed shape: `rows` decode rows (padding after the real ones),
 * block tables strided by the context bucket's pages, every row sampled.
 */
export function graphLayout(seqs: readonly ForwardSeq[], key: DecodeGraphKey, page: number, numBlocks: number): StepLayout {
  if (key.contextTokens % page !== 0) throw new Error(`context bucket ${key.contextTokens} is not a multiple of the page size ${page}`);
  const base = planLayout(seqs, page, numBlocks, () => key.rows);
  if (base.numDecode !== seqs.length || base.numSampled !== seqs.length) throw new Error('graphLayout: every sequence must be a sampling decode');
  const pages = key.contextTokens / page;
  const tables = new Int32Array(key.rows * pages);
  const lens = new Int32Array(key.rows);
  seqs.forEach((_, i) => {
    const len = base.decodeLens[i];
    if (len > key.contextTokens) throw new Error(`graphLayout: sequence ${i} has ${len} tokens, the bucket ${key.contextTokens}`);
    lens[i] = len;
    tables.set(base.decodeTables.subarray(i * base.decodeMaxPages, i * base.decodeMaxPages + Math.ceil(len / page)), i * pages);
  });
  return {
    ...base,
    numTokens: key.rows,
    numSampled: key.rows,
    numDecode: key.rows,
    decodeTables: tables,
    decodeLens: lens,
    decodeMaxPages: pages,
    decodeMaxLen: key.contextTokens,
  };
}

/** Int32 elements of each packed piece, in order: the 11 layout arrays, then the 6 sampling arrays. */
function pieceLengths(rows: number, pages: number): number[] {
  return [rows, rows, rows, rows * pages, rows, 1, 0, 0, rows, 0, 0, rows, rows, rows, rows, 2 * rows, 2 * rows];
}

/** Offsets of the pieces, each 64 elements (256 bytes) aligned, and the total. */
export function packOffsets(lengths: readonly number[]): { offsets: number[]; total: number } {
  let total = 0;
  const offsets = lengths.map((n) => {
    const o = total;
    total += Math.ceil(Math.max(n, 1) / 64) * 64;
    return o;
  });
  return { offsets, total };
}

interface Entry {
  readonly key: DecodeGraphKey;
  readonly lengths: number[];
  readonly offsets: number[];
  readonly host: Int32Array;
  readonly inputs: Tensor;
  exec: GraphExec | null;
  read: (() => SampleResult) | null;
}

export interface GraphStepResult {
  /** Tokens, logprobs and status of the real rows. */
  readonly result: SampleResult;
  readonly gpuMs: number | null;
  /** True when the step replayed a captured graph (false: the bucket's first, eager step). */
  readonly replayed: boolean;
}

export class DecodeGraphs {
  private readonly entries = new Map<string, Entry>();
  captures = 0;
  replays = 0;

  constructor(
    private readonly device: Device,
    private readonly model: LlamaModel,
    private readonly vocab: number,
    /** Largest row bucket captured. */
    readonly maxRows: number,
  ) {
    if (device.kind !== 'gpu') throw new Error('DecodeGraphs: the GPU device only');
  }

  /** Runs a decode-only step from its graph; null when the step does not fit one (run it eagerly). */
  run(seqs: readonly ForwardSeq[], sampling: readonly (SamplingParams & { readonly outputIndex: number })[]): GraphStepResult | null {
    const dev = this.device;
    const key = decodeGraphKey(seqs, (n) => dev.rowBucket(n), this.maxRows);
    if (key === null) return null;
    if (sampling.length !== seqs.length) throw new Error(`graph step: ${sampling.length} sampling rows for ${seqs.length} sequences`);
    const entry = this.entry(key);
    const layout = graphLayout(seqs, key, this.model.kv.pageSizeTokens, this.model.kv.numBlocks);
    this.pack(entry, layout, sampling);
    dev.resetScratch();
    dev.beginTiming();
    dev.write(entry.inputs, 0, entry.host);
    let result: SampleResult;
    let gpuMs: number | null;
    const replayed = entry.exec !== null;
    if (entry.exec === null) {
      const read = this.queue(entry, layout);
      gpuMs = dev.endTimingMs();
      result = read();
      dev.resetScratch(); // the capture takes the same scratch addresses as the eager run
      entry.exec = dev.captureGraph(() => {
        entry.read = this.queue(entry, layout);
      });
      this.captures++;
    } else {
      dev.launchGraph(entry.exec);
      gpuMs = dev.endTimingMs();
      result = entry.read!();
      this.replays++;
    }
    const n = seqs.length;
    return { result: { tokens: result.tokens.subarray(0, n), logprobs: result.logprobs.subarray(0, n), status: result.status.subarray(0, n) }, gpuMs, replayed };
  }

  /** Graphs captured so far. */
  get size(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.exec !== null) n++;
    return n;
  }

  private entry(key: DecodeGraphKey): Entry {
    const id = `${key.rows}/${key.contextTokens}`;
    let e = this.entries.get(id);
    if (e === undefined) {
      const lengths = pieceLengths(key.rows, key.contextTokens / this.model.kv.pageSizeTokens);
      const { offsets, total } = packOffsets(lengths);
      e = { key, lengths, offsets, host: new Int32Array(total), inputs: this.device.zerosInt(total), exec: null, read: null };
      this.entries.set(id, e);
    }
    return e;
  }

  /** Writes the step's values into the entry's host staging array (padding rows greedy). */
  private pack(e: Entry, layout: StepLayout, sampling: readonly (SamplingParams & { readonly outputIndex: number })[]): void {
    const rows = e.key.rows;
    e.host.fill(0);
    layoutArrays(layout).forEach((a, i) => {
      if (a.length !== e.lengths[i]) throw new Error(`graph step: piece ${i} has ${a.length} values, the key ${e.lengths[i]}`);
      e.host.set(a, e.offsets[i]);
    });
    const temperature = new Float32Array(rows);
    const topK = new Int32Array(rows);
    const topP = new Float32Array(rows).fill(1);
    const minP = new Float32Array(rows);
    const seeds = new BigUint64Array(rows);
    const offsets = new BigUint64Array(rows);
    sampling.forEach((p, i) => {
      temperature[i] = p.temperature;
      topK[i] = p.topK;
      topP[i] = p.topP;
      minP[i] = p.minP;
      seeds[i] = BigInt.asUintN(64, BigInt(p.seed));
      offsets[i] = BigInt(p.outputIndex);
    });
    const bits = (a: Float32Array | Int32Array | BigUint64Array): Int32Array => new Int32Array(a.buffer, a.byteOffset, a.byteLength / 4);
    [temperature, topK, topP, minP, seeds, offsets].forEach((a, j) => e.host.set(bits(a), e.offsets[11 + j]));
  }

  /** Queues forward + cast + sampler over the entry's inputs; the returned function reads the results back. */
  private queue(e: Entry, layout: StepLayout): () => SampleResult {
    const dev = this.device;
    const view = (i: number): Tensor => dev.view(e.inputs, 'f32', e.offsets[i], Math.max(e.lengths[i], 1));
    const idx = stepTensors(Array.from({ length: 11 }, (_, i) => view(i)));
    const out = this.model.encode(layout, idx, null);
    if (out === null || out.rows !== e.key.rows) throw new Error('graph step: the forward returned no logits for its rows');
    const [temperature, topK, topP, minP, seeds, offsets] = [11, 12, 13, 14, 15, 16].map(view);
    const params = { temperature, topK, topP, minP, seeds, offsets } as unknown as StagedSampleParams;
    return dev.sample(out.logits, out.dtype, out.rows, this.vocab, params);
  }
}
