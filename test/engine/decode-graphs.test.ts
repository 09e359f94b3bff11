// CUDA-graph decode steps, checked on the CPU backend: which steps fit a graph, the fixed-shape
// layout a graph replays (its forward must give the eager forward's logits), the split rule shared
// by eager and graph steps, the fused q/k/v GEMM, and clear errors where graphs cannot run.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { contextBucket, decodePartitionTokens, layoutArrays, planLayout, stepTensors, type ForwardSeq } from '../../engine/runtime/llama.js';
import { decodeGraphKey, graphLayout, packOffsets } from '../../engine/runtime/decode-graphs.js';
import { cpuDevice, gpuRowBucket } from '../../engine/runtime/device.js';
import { EngineError } from '../../engine/runtime/errors.js';
import { LlamaRunner } from '../../engine/runtime/model-runner.js';
import { MODEL_CONFIGS, type ModelConfig } from '../../engine/runtime/model-config.js';
import { randomWeights } from '../../engine/runtime/weights.js';

const MICRO: ModelConfig = { ...MODEL_CONFIGS.tiny, name: 'micro', hiddenSize: 64, numHeads: 4, numKvHeads: 2, headDim: 16, ffnSize: 128, vocabSize: 96 };
const PAGE = 4;

const decodeSeq = (context: number, table: number[], token = 3): ForwardSeq => ({ tokenIds: Int32Array.of(token), contextTokens: context, blockTable: table, samples: true });

describe('decodeGraphKey', () => {
  it('fits sampling decodes without adapters, rows bucketed, context bucketed to a power of two >= 256', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 70 }), (contexts) => {
        const seqs = contexts.map((c) => decodeSeq(c, []));
        const key = decodeGraphKey(seqs, gpuRowBucket, 64);
        if (gpuRowBucket(seqs.length) > 64) return key === null;
        const maxLen = Math.max(...contexts) + 1;
        return (
          key !== null && key.rows === gpuRowBucket(seqs.length) && key.contextTokens >= maxLen && key.contextTokens >= 256 &&
          (key.contextTokens & (key.contextTokens - 1)) === 0 && (key.contextTokens === 256 || key.contextTokens < 2 * maxLen)
        );
      }),
    );
  });

  it('leaves prefill chunks, non-sampling rows, LoRA rows and empty steps to the eager path', () => {
    const d = decodeSeq(5, []);
    expect(decodeGraphKey([], gpuRowBucket, 64)).toBeNull();
    expect(decodeGraphKey([d, { ...d, tokenIds: Int32Array.of(1, 2) }], gpuRowBucket, 64)).toBeNull();
    expect(decodeGraphKey([d, { ...d, samples: false }], gpuRowBucket, 64)).toBeNull();
    expect(decodeGraphKey([d, { ...d, adapterSlot: 0 }], gpuRowBucket, 64)).toBeNull();
    expect(decodeGraphKey([d, { ...d, adapterSlot: -1 }], gpuRowBucket, 64)).toEqual({ rows: 2, contextTokens: 256 });
  });
});

describe('the decode split rule', () => {
  it('is the CUDA launcher rule on bucketed inputs, and 0 (launcher chooses) without SMs', () => {
    expect(decodePartitionTokens(32, 256, 132)).toBe(128); // batch 1, 7B: always 128 up to 8K tokens
    expect(decodePartitionTokens(32, 8192, 132)).toBe(128);
    expect(decodePartitionTokens(8 * 32, 2048, 132)).toBe(256); // 256 blocks x 4 splits of 512 < 1056: halve once
    expect(decodePartitionTokens(8 * 32, 1024, 132)).toBe(128);
    expect(decodePartitionTokens(256 * 32, 256, 132)).toBe(512);
    expect(decodePartitionTokens(32, 256, 0)).toBe(0);
    // A shorter minimum spreads a small batch over more blocks; large batches keep 512.
    expect(decodePartitionTokens(32, 256, 132, 32)).toBe(32);
    expect(decodePartitionTokens(32, 256, 132, 64)).toBe(64);
    expect(decodePartitionTokens(64 * 32, 256, 132, 32)).toBe(512);
    expect(contextBucket(1)).toBe(256);
    expect(contextBucket(257)).toBe(512);
    expect(contextBucket(4096)).toBe(4096);
  });
});

describe('packOffsets', () => {
  it('places every piece 64-element aligned without overlap', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 20 }), (lengths) => {
        const { offsets, total } = packOffsets(lengths);
        return offsets.every((o, i) => o % 64 === 0 && o + Math.max(lengths[i], 1) <= (i + 1 < offsets.length ? offsets[i + 1] : total));
      }),
    );
  });
});

describe('graphLayout', () => {
  it('replays the eager forward: padded rows and bucket-strided block tables give the same logits (CPU, f32)', () => {
    const w = randomWeights(MICRO, 7);
    const runner = new LlamaRunner(w, { backend: 'cpu', dtype: 'f32', kv: { numBlocks: 64, pageSizeTokens: PAGE }, maxNumBatchedTokens: 64, maxNumSeqs: 8 });
    const model = runner.model;
    const V = MICRO.vocabSize;
    // Three sequences with prompts in the cache, then decode steps through the graph layout.
    const prompts = [9, 14, 5];
    const tables = [[0, 1, 2, 3, 4, 5], [10, 11, 12, 13, 14, 15, 16], [20, 21, 22, 23]];
    runner.forwardLogits(prompts.map((n, i) => ({ tokenIds: Int32Array.from({ length: n }, (_, j) => (7 * i + j) % V), contextTokens: 0, blockTable: tables[i], samples: true })));
    for (let step = 0; step < 3; step++) {
      const seqs = prompts.map((n, i) => decodeSeq(n + step, tables[i], (11 * i + step) % V));
      const eager = runner.forwardLogits(seqs);
      const key = decodeGraphKey(seqs, gpuRowBucket, 64)!;
      expect(key).toEqual({ rows: 4, contextTokens: 256 });
      const layout = graphLayout(seqs, key, PAGE, 64);
      expect(layout.decodeTables.length).toBe(4 * (256 / PAGE));
      expect(Array.from(layout.decodeLens)).toEqual([...prompts.map((n) => n + step + 1), 0]);
      expect(Array.from(layout.slots.subarray(3))).toEqual([-1]);
      model.device.resetScratch();
      const out = model.encode(layout, stepTensors(model.device.ints(layoutArrays(layout))), null)!;
      expect(out.rows).toBe(4);
      const graph = model.device.readHost(out.logits, out.dtype, 4 * V);
      expect(Array.from(graph.subarray(0, 3 * V))).toEqual(Array.from(eager));
    }
    runner.close();
  });

  it('refuses a context longer than the bucket and a step that is not all sampling decodes', () => {
    const seqs = [decodeSeq(300, Array.from({ length: 80 }, (_, i) => i))];
    expect(() => graphLayout(seqs, { rows: 1, contextTokens: 256 }, PAGE, 100)).toThrow(/301 tokens, the bucket 256/);
    expect(() => graphLayout([{ ...seqs[0], samples: false }], { rows: 1, contextTokens: 512 }, PAGE, 100)).toThrow(/sampling decode/);
  });

  it('matches planLayout on the real rows', () => {
    const seqs = [decodeSeq(3, [4, 5]), decodeSeq(0, [9])];
    const g = graphLayout(seqs, { rows: 2, contextTokens: 256 }, PAGE, 16);
    const p = planLayout(seqs, PAGE, 16);
    expect(Array.from(g.ids)).toEqual(Array.from(p.ids));
    expect(Array.from(g.positions)).toEqual(Array.from(p.positions));
    expect(Array.from(g.slots)).toEqual(Array.from(p.slots));
    expect(Array.from(g.decodeTables.subarray(0, 1))).toEqual([4]);
    expect(g.decodeTables[64]).toBe(9);
  });
});

describe('fused q/k/v GEMM', () => {
  it('gives the unfused logits on the CPU (f32) for single-row steps and leaves longer steps alone', () => {
    const w = randomWeights(MICRO, 3);
    const mk = (fuseQkv: boolean) => new LlamaRunner(w, { backend: 'cpu', dtype: 'f32', kv: { numBlocks: 16, pageSizeTokens: PAGE }, maxNumBatchedTokens: 64, maxNumSeqs: 8, fuseQkv });
    const [a, b] = [mk(false), mk(true)];
    const table = [0, 1, 2, 3];
    const prompt = { tokenIds: Int32Array.of(1, 2, 3, 4, 5), contextTokens: 0, blockTable: table, samples: true };
    expect(Array.from(b.forwardLogits([prompt]))).toEqual(Array.from(a.forwardLogits([prompt])));
    for (let s = 0; s < 4; s++) {
      const d = decodeSeq(5 + s, table, 10 + s);
      expect(Array.from(b.forwardLogits([d]))).toEqual(Array.from(a.forwardLogits([d])));
    }
    a.close();
    b.close();
  });
});

describe('fused one-row decode (fuseDecode)', () => {
  for (const dtype of ['f32', 'bf16'] as const) {
    it(`gives the unfused logits on the CPU (${dtype}) up to the order of f32 sums, and leaves other steps alone`, () => {
      const w = randomWeights(MICRO, 5);
      const mk = (fuseDecode: boolean) => new LlamaRunner(w, { backend: 'cpu', dtype, kv: { numBlocks: 16, pageSizeTokens: PAGE }, maxNumBatchedTokens: 64, maxNumSeqs: 8, fuseDecode });
      const [a, b] = [mk(false), mk(true)];
      expect(b.model.fuseDecode).toBe(true);
      const table = [0, 1, 2, 3];
      const other = [4, 5, 6, 7];
      const prompt = { tokenIds: Int32Array.of(1, 2, 3, 4, 5), contextTokens: 0, blockTable: table, samples: true };
      // A prefill and a two-row decode take the unfused path: identical logits, no fused kernel.
      let gemvCalls = 0;
      const dev = b.model.device;
      const gemv = dev.decodeGemv.bind(dev);
      dev.decodeGemv = (args) => {
        gemvCalls++;
        gemv(args);
      };
      expect(Array.from(b.forwardLogits([prompt]))).toEqual(Array.from(a.forwardLogits([prompt])));
      const second = { ...prompt, blockTable: other };
      expect(Array.from(b.forwardLogits([second]))).toEqual(Array.from(a.forwardLogits([second])));
      const two = [decodeSeq(5, table, 7), decodeSeq(5, other, 8)];
      expect(Array.from(b.forwardLogits(two))).toEqual(Array.from(a.forwardLogits(two)));
      expect(gemvCalls).toBe(0);
      // Single decode rows: the fused kernels, logits within rounding and the same argmax.
      const tol = dtype === 'f32' ? 1e-4 : 0.05;
      for (let s = 0; s < 6; s++) {
        const d = decodeSeq(6 + s, table, 10 + s);
        const want = a.forwardLogits([d]);
        const got = b.forwardLogits([d]);
        let maxAbs = 0;
        let maxRef = 0;
        for (let i = 0; i < want.length; i++) {
          maxAbs = Math.max(maxAbs, Math.abs(got[i] - want[i]));
          maxRef = Math.max(maxRef, Math.abs(want[i]));
        }
        expect(maxAbs).toBeLessThanOrEqual(tol * maxRef);
        expect(argmax(got)).toBe(argmax(want));
      }
      expect(gemvCalls).toBe(6 * 4 * MICRO.numLayers);
      a.close();
      b.close();
    });
  }
});

/**
 * A prompt then `steps` decode steps through two fuseDecode runners (CPU) that differ in one
 * setting: their logits equal at every step (each step reads the keys the steps before it wrote,
 * so equal logits all along mean equal caches).
 */
function expectSameLogits(dtype: 'bf16' | 'f32', seed: number, steps: number, set: (m: LlamaRunner['model'], on: boolean) => void): void {
  const w = randomWeights(MICRO, seed);
  const mk = (on: boolean) => {
    const r = new LlamaRunner(w, { backend: 'cpu', dtype, kv: { numBlocks: 16, pageSizeTokens: PAGE }, maxNumBatchedTokens: 64, maxNumSeqs: 8, fuseDecode: true });
    set(r.model, on);
    return r;
  };
  const [a, b] = [mk(false), mk(true)];
  const table = [0, 1, 2, 3];
  const prompt = { tokenIds: Int32Array.of(4, 9, 2), contextTokens: 0, blockTable: table, samples: true };
  expect(Array.from(b.forwardLogits([prompt]))).toEqual(Array.from(a.forwardLogits([prompt])));
  for (let s = 0; s < steps; s++) {
    const d = decodeSeq(3 + s, table, 20 + s);
    expect(Array.from(b.forwardLogits([d]))).toEqual(Array.from(a.forwardLogits([d])));
  }
  a.close();
  b.close();
}

describe('fused one-row decode with rope inside attention (decodeRopeInAttention)', () => {
  it('gives the rope-kernel form\'s logits exactly and fills the cache alike (CPU, bf16)', () => {
    expectSameLogits('bf16', 8, 8, (m, on) => (m.decodeRopeInAttention = on));
  });
});

describe('fused one-row decode with the L2 prefetch hint (decodeL2Prefetch)', () => {
  it('passes the o (and gate/up) weights as the hint and changes no logit (CPU, bf16 and f32)', () => {
    for (const dtype of ['bf16', 'f32'] as const) {
      expectSameLogits(dtype, 9, 4, (m, on) => {
        m.decodeL2Prefetch = on;
        m.decodeL2PrefetchGateUpBytes = on ? 4096 : 0;
      });
    }
  });
});

const argmax = (xs: Float32Array): number => xs.reduce((best, v, i) => (v > xs[best] ? i : best), 0);

describe('decodeMinPartitionTokens', () => {
  it('accepts powers of two in [16, 512] and names the value otherwise', () => {
    const w = randomWeights(MICRO, 1);
    const mk = (decodeMinPartitionTokens: number) => new LlamaRunner(w, { backend: 'cpu', dtype: 'f32', kv: { numBlocks: 8, pageSizeTokens: PAGE }, maxNumBatchedTokens: 16, maxNumSeqs: 4, decodeMinPartitionTokens });
    expect(mk(32).model.decodeMinPartitionTokens).toBe(32);
    expect(() => mk(48)).toThrow(/decodeMinPartitionTokens = 48: must be a power of two in \[16, 512\]/);
    expect(() => mk(1024)).toThrow(EngineError);
  });
});

describe('CUDA graphs without a GPU', () => {
  it('the CPU backend refuses cudaGraphs with a typed error, and its device refuses capture', () => {
    const w = randomWeights(MICRO, 1);
    const build = () => new LlamaRunner(w, { backend: 'cpu', dtype: 'f32', kv: { numBlocks: 8, pageSizeTokens: PAGE }, maxNumBatchedTokens: 16, maxNumSeqs: 4, cudaGraphs: true });
    expect(build).toThrow(EngineError);
    expect(build).toThrow(/cudaGraphs needs the GPU backend/);
    const dev = cpuDevice('f32');
    try {
      dev.captureGraph(() => {});
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).code).toBe('graphs');
    }
  });

  it('a CPU runner asked to use graphs fails clearly instead of running eagerly', () => {
    const w = randomWeights(MICRO, 1);
    const runner = new LlamaRunner(w, { backend: 'cpu', dtype: 'f32', kv: { numBlocks: 8, pageSizeTokens: PAGE }, maxNumBatchedTokens: 16, maxNumSeqs: 4 });
    expect(runner.useGraphs).toBe(false);
    runner.useGraphs = true;
    expect(() => runner.execute({ plan: { items: [], loraLoads: [], loraEvictions: [], blockCopies: [] } as never, items: [] })).toThrow(/built without cudaGraphs/);
    runner.close();
  });
});
