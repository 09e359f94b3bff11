// Sampling on the device: the greedy tie rule shared by the host argmax and the fused sampler,
// and the runner's device-sampling path (the one the GPU runs) against its host path.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { cpu, encode } from '../../native/index.js';
import type { BatchPlan } from '../../engine/policy/index.js';
import { MODEL_CONFIGS, type ModelConfig } from '../../engine/runtime/model-config.js';
import { argmaxRows, LlamaRunner } from '../../engine/runtime/model-runner.js';
import { GREEDY, type RunnerItem, type SamplingParams } from '../../engine/runtime/runner.js';
import { randomWeights } from '../../engine/runtime/weights.js';
import { ReferenceLlama } from './reference-llama.js';

// A value set with many exact ties, both zeros and -inf (bf16 holds each of these exactly).
const TIE_VALUES = [-Infinity, -3, -1, -0, 0, 0.5, 2, 2.015625, 7];

describe('greedy tie rule: the largest value, the lowest index among equal values (-0 equals 0)', () => {
  it('host argmax over bf16 bits == fused sampler (temperature 0) over castF32 of the same rows', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 37 }),
        fc.array(fc.constantFrom(...TIE_VALUES), { minLength: 37 * 3, maxLength: 37 * 3 }),
        fc.integer({ min: 1, max: 3 }),
        (vocab, pool, rows) => {
          const values = pool.slice(0, vocab * rows);
          for (let r = 0; r < rows; r++) values[r * vocab] = values[r * vocab] === -Infinity ? 0 : values[r * vocab]; // a row of only -inf is status 2
          const bits = encode('bf16', values);
          const host = argmaxRows({ dtype: 'bf16', data: bits }, vocab);
          const logits = cpu().castF32({ dtype: 'bf16', numRows: rows, cols: vocab, x: bits });
          const n = rows;
          const s = cpu().sample({
            batch: n, vocab, logits, temperature: new Float32Array(n), topK: new Int32Array(n), topP: new Float32Array(n).fill(1),
            minP: new Float32Array(n), seeds: new BigUint64Array(n), offsets: new BigUint64Array(n),
          });
          expect(Array.from(s.status)).toEqual(new Array(n).fill(0));
          expect(Array.from(s.tokens)).toEqual(Array.from(host));
          for (let r = 0; r < rows; r++) {
            const row = values.slice(r * vocab, (r + 1) * vocab);
            const best = Math.max(...row);
            expect(host[r]).toBe(row.findIndex((v) => v === best));
          }
        },
      ),
      { examples: [[2, [0, -0, ...new Array(109).fill(-1)], 1], [3, [-0, 0, 0, ...new Array(108).fill(7)], 1]] },
    );
  });
});

describe('LlamaRunner sampleOnDevice', () => {
  const MICRO: ModelConfig = { ...MODEL_CONFIGS.tiny, name: 'micro', hiddenSize: 64, numHeads: 4, numKvHeads: 2, headDim: 16, ffnSize: 128, vocabSize: 96 };
  const weights = randomWeights(MICRO, 5);
  const plan = { items: [], loraLoads: [], blockCopies: [] } as unknown as BatchPlan;
  const runner = (sampleOnDevice: boolean) =>
    new LlamaRunner(weights, { backend: 'cpu', dtype: 'bf16', kv: { numBlocks: 16, pageSizeTokens: 4 }, maxNumBatchedTokens: 64, maxNumSeqs: 8, sampleOnDevice });
  const item = (seqId: number, tokens: number[], block: number, sampling: SamplingParams, outputIndex: number, samples = true): RunnerItem => ({
    seqId: seqId as never, contextTokens: 0, tokenIds: Int32Array.from(tokens), blockTable: [block, block + 1, block + 2], samples, sampling, outputIndex,
  });

  it("gives the host path's tokens for greedy and seeded sampled rows, in item order, -1 where nothing samples", () => {
    const hot: SamplingParams = { temperature: 1.3, topK: 40, topP: 0.95, minP: 0.01, seed: 12345 };
    const items = [
      item(0, [3, 9, 27], 0, GREEDY, 0),
      item(1, [5, 6], 3, hot, 4),
      item(2, [1, 2, 3, 4, 5], 6, GREEDY, 0, false),
      item(3, [50, 51, 52, 53], 9, { ...hot, seed: 99, topK: 0 }, 17),
    ];
    const a = runner(false).execute({ plan, items });
    const b = runner(true);
    const got = b.execute({ plan, items });
    expect(Array.from(got.tokens)).toEqual(Array.from(a.tokens));
    expect(got.tokens[2]).toBe(-1);
    expect(got.tokens.filter((t) => t >= 0 && t < MICRO.vocabSize).length).toBe(3);
    // Log probabilities come with every sampled token on the device path, NaN where nothing samples.
    expect(got.logprobs).toHaveLength(4);
    expect(Number.isNaN(got.logprobs![2])).toBe(true);
    for (const i of [0, 1, 3]) expect(got.logprobs![i]).toBeLessThanOrEqual(0);
    // The host path's sampler gives the same ones.
    for (const i of [0, 1, 3]) expect(a.logprobs![i]).toBeCloseTo(got.logprobs![i], 5);
    // An all-greedy host step takes the argmax alone (no log probabilities), unless one is asked for.
    const greedy = items.map((x) => ({ ...x, sampling: GREEDY }));
    const plain = runner(false).execute({ plan, items: greedy });
    expect(plain.logprobs!.every((x) => Number.isNaN(x))).toBe(true);
    const asked = runner(false).execute({ plan, items: greedy.map((x) => ({ ...x, sampling: { ...GREEDY, logprobs: true } })) });
    expect(Array.from(asked.tokens)).toEqual(Array.from(plain.tokens));
    const onDevice = b.execute({ plan, items: greedy });
    for (const i of [0, 1, 3]) expect(asked.logprobs![i]).toBeCloseTo(onDevice.logprobs![i], 5);
    expect(Number.isNaN(asked.logprobs![2])).toBe(true);
  });

  it("a greedy token's log probability is the log-softmax of the reference model's logits at its token", () => {
    const prompt = [3, 9, 27, 4];
    const f32 = new LlamaRunner(weights, { backend: 'cpu', dtype: 'f32', kv: { numBlocks: 16, pageSizeTokens: 4 }, maxNumBatchedTokens: 64, maxNumSeqs: 8, sampleOnDevice: true });
    const got = f32.execute({ plan, items: [item(0, prompt, 0, GREEDY, 0)] });
    const row = new ReferenceLlama(weights).logits(prompt).at(-1)!;
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let sum = 0;
    for (const v of row) sum += Math.exp(v - max);
    expect(got.tokens[0]).toBe(row.indexOf(max));
    expect(got.logprobs![0]).toBeCloseTo(-Math.log(sum), 4);
  });

  it('draws depend on the request seed and the output index (the sampler stream), not on the batch', () => {
    const hot: SamplingParams = { temperature: 2, topK: 0, topP: 1, minP: 0, seed: 7 };
    const alone = runner(true).execute({ plan, items: [item(0, [4, 4, 4], 0, hot, 3)] }).tokens[0];
    const batched = runner(true).execute({ plan, items: [item(1, [8, 9], 3, hot, 0), item(0, [4, 4, 4], 0, hot, 3)] }).tokens[1];
    expect(batched).toBe(alone);
    const draws = new Set<number>();
    for (let seed = 0; seed < 12; seed++) draws.add(runner(true).execute({ plan, items: [item(0, [4, 4, 4], 0, { ...hot, seed }, 3)] }).tokens[0]);
    expect(draws.size).toBeGreaterThan(1);
  });
});
