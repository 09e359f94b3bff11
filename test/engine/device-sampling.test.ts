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
    expect(b.lastLogprobs?.length).toBe(3);
    for (const lp of b.lastLogprobs!) expect(lp).toBeLessThanOrEqual(0);
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
