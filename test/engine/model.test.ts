import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encode } from '../../native/index.js';
import { argmaxRows, LlamaRunner } from '../../engine/runtime/model-runner.js';
import { MODEL_CONFIGS, numParams, type ModelConfig } from '../../engine/runtime/model-config.js';
import { openCheckpoint, readSafetensorsHeader, readTensorData, writeSafetensors } from '../../engine/runtime/safetensors.js';
import { loadHfFolder, randomWeights, writeHfFolder } from '../../engine/runtime/weights.js';
import type { ForwardSeq } from '../../engine/runtime/llama.js';
import { ReferenceLlama } from './reference-llama.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'stratos-engine-'));
  dirs.push(d);
  return d;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

// Smaller than `tiny` so the f64 reference stays fast; still GQA (4 heads over 2 KV heads).
const MICRO: ModelConfig = { ...MODEL_CONFIGS.tiny, name: 'micro', hiddenSize: 64, numHeads: 4, numKvHeads: 2, headDim: 16, ffnSize: 128, vocabSize: 96 };

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('safetensors', () => {
  it('round-trips bf16 and f32 tensors with an aligned header', () => {
    const file = join(tmp(), 'a.safetensors');
    const bf = Uint16Array.from([1, 2, 3, 0xffff, 0x3f80, 7]);
    const f = Float32Array.from([1.5, -2, 3e-8]);
    writeSafetensors(file, [
      { name: 'x', dtype: 'BF16', shape: [2, 3], data: () => bf },
      { name: 'y', dtype: 'F32', shape: [3], data: () => f },
    ], { format: 'pt' });
    const { tensors, metadata } = readSafetensorsHeader(file);
    expect(metadata).toEqual({ format: 'pt' });
    const x = tensors.get('x')!;
    expect(x.fileOffset % 8).toBe(0);
    expect(Array.from(readTensorData(file, x))).toEqual(Array.from(bf));
    expect(Array.from(readTensorData(file, tensors.get('y')!))).toEqual(Array.from(f));
  });

  it('rejects a header that does not fit the file, naming the file', () => {
    const file = join(tmp(), 'bad.safetensors');
    const buf = Buffer.alloc(16);
    buf.writeBigUInt64LE(1000n);
    writeFileSync(file, buf);
    expect(() => readSafetensorsHeader(file)).toThrow(/bad\.safetensors: header length 1000/);
  });

  it('reads a sharded checkpoint through its index', () => {
    const dir = tmp();
    writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), [{ name: 'a', dtype: 'F32', shape: [2], data: () => Float32Array.from([1, 2]) }]);
    writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), [{ name: 'b', dtype: 'F32', shape: [1], data: () => Float32Array.from([3]) }]);
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }));
    const ck = openCheckpoint(dir);
    const b = ck.tensors.get('b')!;
    expect(Array.from(readTensorData(b.file, b.info))).toEqual([3]);
  });
});

describe('weights', () => {
  it('random weights are a function of the seed', () => {
    const a = randomWeights(MICRO, 7).tensor('model.layers.1.mlp.up_proj.weight', 'bf16');
    const b = randomWeights(MICRO, 7).tensor('model.layers.1.mlp.up_proj.weight', 'bf16');
    const c = randomWeights(MICRO, 8).tensor('model.layers.1.mlp.up_proj.weight', 'bf16');
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);
  });

  it('a written Hugging Face folder loads back with the same config and tensors', () => {
    const dir = tmp();
    const w = randomWeights(MICRO, 3);
    writeHfFolder(dir, w, 'bf16');
    const back = loadHfFolder(dir);
    expect({ ...back.config, name: 'micro' }).toEqual(MICRO);
    for (const s of w.specs) expect(Array.from(back.tensor(s.name, 'bf16'))).toEqual(Array.from(w.tensor(s.name, 'bf16')));
    expect(w.specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0)).toBe(numParams(MICRO));
  });

  it('counts Llama-2-7B at 6.74 billion parameters', () => {
    expect(numParams(MODEL_CONFIGS['llama2-7b'])).toBe(6_738_415_616);
  });
});

describe('Llama forward on the CPU backend', () => {
  const weights = randomWeights(MICRO, 11);
  const reference = new ReferenceLlama(weights);
  const page = 4;
  const newRunner = (): LlamaRunner =>
    new LlamaRunner(weights, { backend: 'cpu', dtype: 'f32', kv: { numBlocks: 32, pageSizeTokens: page }, maxNumBatchedTokens: 64, maxNumSeqs: 8 });
  const prompt = [5, 17, 3, 88, 41, 0, 9, 63, 12, 77, 30];

  it('a whole-prompt prefill matches the plain reference (f32 vs f64)', () => {
    const runner = newRunner();
    const logits = runner.forwardLogits([{ tokenIds: Int32Array.from(prompt), contextTokens: 0, blockTable: [3, 7, 1], samples: true }]);
    const ref = reference.logits(prompt);
    expect(maxAbsDiff(logits, ref[ref.length - 1])).toBeLessThan(2e-4);
  });

  it('chunked prefill and decodes through paged KV give the same logits as one pass', () => {
    const runner = newRunner();
    const table = [9, 2, 14, 5];
    // Chunks of 4 and 5 tokens, then two single-token steps: decode path and prefill path both.
    const steps: [number, number][] = [[0, 4], [4, 9], [9, 10], [10, 11]];
    let last: Float32Array = new Float32Array(0);
    for (const [from, to] of steps) {
      last = runner.forwardLogits([{ tokenIds: Int32Array.from(prompt.slice(from, to)), contextTokens: from, blockTable: table, samples: true }]);
    }
    const ref = reference.logits(prompt);
    expect(maxAbsDiff(last, ref[ref.length - 1])).toBeLessThan(2e-4);
  });

  it('one mixed batch (a decode and two prefill chunks) equals each sequence run alone', () => {
    const runner = newRunner();
    const other = [1, 2, 3, 4, 5, 6];
    // Put `prompt`'s first 10 tokens in the cache (blocks 20..22), then batch.
    runner.forwardLogits([{ tokenIds: Int32Array.from(prompt.slice(0, 10)), contextTokens: 0, blockTable: [20, 21, 22], samples: false }]);
    const seqs: ForwardSeq[] = [
      { tokenIds: Int32Array.from(other.slice(0, 6)), contextTokens: 0, blockTable: [0, 1], samples: true },
      { tokenIds: Int32Array.from(prompt.slice(10, 11)), contextTokens: 10, blockTable: [20, 21, 22], samples: true },
      { tokenIds: Int32Array.from([7, 8, 9]), contextTokens: 0, blockTable: [30], samples: true },
    ];
    const logits = runner.forwardLogits(seqs);
    const V = MICRO.vocabSize;
    const refs = [reference.logits(other).at(-1)!, reference.logits(prompt).at(-1)!, reference.logits([7, 8, 9]).at(-1)!];
    refs.forEach((ref, i) => expect(maxAbsDiff(logits.subarray(i * V, (i + 1) * V), ref)).toBeLessThan(2e-4));
  });

  it('padding token rows to the GPU buckets changes no logit (row-wise ops, padded rows write no KV)', () => {
    const seqs = (): ForwardSeq[] => [
      { tokenIds: Int32Array.from(prompt.slice(0, 7)), contextTokens: 0, blockTable: [0, 1], samples: true },
      { tokenIds: Int32Array.from([4, 5, 6]), contextTokens: 0, blockTable: [8], samples: true },
      { tokenIds: Int32Array.from([9]), contextTokens: 0, blockTable: [9], samples: false },
    ];
    const plain = newRunner().forwardLogits(seqs());
    const padded = new LlamaRunner(weights, { backend: 'cpu', dtype: 'f32', kv: { numBlocks: 32, pageSizeTokens: page }, maxNumBatchedTokens: 64, maxNumSeqs: 8, bucketRows: true });
    expect(Array.from(padded.forwardLogits(seqs()))).toEqual(Array.from(plain));
    // 11 tokens ran as 16 rows and 2 sampled rows as 2; a later step still sees only real KV.
    const next = [{ tokenIds: Int32Array.from(prompt.slice(7, 8)), contextTokens: 7, blockTable: [0, 1], samples: true }];
    expect(maxAbsDiff(padded.forwardLogits(next), reference.logits(prompt.slice(0, 8)).at(-1)!)).toBeLessThan(2e-4);
    expect(padded.warmup()).toBe(7); // buckets 1, 2, 4, 8, 16, 32, 64
  });

  it('bf16 stays close to the f64 reference', () => {
    const runner = new LlamaRunner(weights, { backend: 'cpu', dtype: 'bf16', kv: { numBlocks: 8, pageSizeTokens: page }, maxNumBatchedTokens: 64, maxNumSeqs: 8 });
    const logits = runner.forwardLogits([{ tokenIds: Int32Array.from(prompt), contextTokens: 0, blockTable: [0, 1, 2], samples: true }]);
    const ref = reference.logits(prompt).at(-1)!;
    const scale = Math.max(...Array.from(ref, Math.abs));
    expect(maxAbsDiff(logits, ref) / scale).toBeLessThan(0.05);
  });
});

describe('greedy sampling on raw logits', () => {
  it('argmax over bf16 bits equals argmax over the decoded values (first maximum wins)', () => {
    fc.assert(
      fc.property(fc.array(fc.float({ min: -1e4, max: 1e4, noNaN: true }), { minLength: 1, maxLength: 40 }), (values) => {
        const bits = encode('bf16', values);
        const decoded = Array.from(bits, (b) => new Float32Array(new Uint32Array([b << 16]).buffer)[0]);
        let best = 0;
        for (let i = 1; i < decoded.length; i++) if (decoded[i] > decoded[best]) best = i;
        expect(argmaxRows({ dtype: 'bf16', data: bits }, values.length)[0]).toBe(best);
        expect(argmaxRows({ dtype: 'f32', data: Float32Array.from(decoded) }, values.length)[0]).toBe(best);
      }),
      { examples: [[[-0, 0]], [[0, -0, -1]]] },
    );
  });
});
