// The case study's baselines, each selectable on `stratos engine bench`, must change only speed
// and memory, never the tokens: on the tiny model (CPU backend) every baseline gives the same
// greedy tokens as the optimized path for the same workload and seed.
import { describe, expect, it } from 'vitest';
import { runEngineBench, type EngineBenchOptions } from '../../experiments/commands/engine.js';
import { createScheduler, DEFAULT_SCHEDULER_CONFIG } from '../../engine/policy/index.js';
import { VirtualClock } from '../../engine/runtime/clock.js';
import { Engine, type EngineRequest } from '../../engine/runtime/engine.js';
import { LlamaRunner } from '../../engine/runtime/model-runner.js';
import { MODEL_CONFIGS } from '../../engine/runtime/model-config.js';
import { randomWeights } from '../../engine/runtime/weights.js';
import { parseSimConfig, type SimConfigInput } from '../../sim/config.js';

// Small enough for CI: ~12 requests, prompts of 4-40 tokens, 2-10 output tokens.
const WORKLOAD: SimConfigInput = {
  seed: 7,
  scheduler: { maxNumSeqs: 8, maxNumBatchedTokens: 128, maxSeqLenTokens: 64 },
  kv: { pageSizeTokens: 8, numBlocks: 96 },
  workload: { rate: 30, durationS: 0.4, inputTokens: 'uniform:4:40', outputTokens: 'uniform:2:10' },
};

async function bench(over: SimConfigInput, opts: Partial<EngineBenchOptions> = {}) {
  const config = parseSimConfig({ ...WORKLOAD, ...over, kv: { ...WORKLOAD.kv, ...(over.kv ?? {}) } });
  return runEngineBench(config, { backend: 'cpu', model: 'tiny', dtype: 'f32', ...opts });
}

describe('baselines give the optimized path\'s greedy tokens (tiny model, cpu backend)', async () => {
  // Optimized: paged KV, continuous batching, sampling by the fused sampler (the device path).
  const optimized = await bench({ policy: 'continuous' }, { sampleOnDevice: true });

  it('the workload is non-trivial and every request completes', () => {
    expect(optimized.outputs.size).toBeGreaterThan(6);
    expect(optimized.summary.completed).toBe(optimized.summary.requests);
    expect(optimized.steps.some((s) => s.numSeqs > 1)).toBe(true);
  });

  it('no KV cache (--no-kv-cache): every step recomputes whole sequences', async () => {
    const r = await bench({ policy: 'continuous' }, { kvCache: false });
    expect(r.outputs).toEqual(optimized.outputs);
    expect((r.summary.engine as { kv_cache: boolean }).kv_cache).toBe(false);
  });

  it('no KV cache with forwards split at the token limit gives the same tokens', async () => {
    // A 64-token forward is less than the sum of a step's sequences: steps run several forwards.
    const scheduler = { maxNumSeqs: 8, maxNumBatchedTokens: 64, maxSeqLenTokens: 64 };
    const r = await bench({ policy: 'continuous', scheduler }, { kvCache: false });
    const ref = await bench({ policy: 'continuous', scheduler }, { sampleOnDevice: true });
    expect(r.steps.some((s) => (s.numForwards ?? 1) > 1)).toBe(true);
    expect(r.outputs).toEqual(ref.outputs);
  });

  it('contiguous KV reserved at max length (--allocator contiguous)', async () => {
    const r = await bench({ policy: 'continuous', kv: { allocator: 'contiguous' } });
    expect(r.outputs).toEqual(optimized.outputs);
    // Each admitted request holds a whole max-length slot.
    expect(r.steps.every((s) => s.kvBlocksUsed % (64 / 8) === 0)).toBe(true);
  });

  it('CPU sampling (--sampling cpu): logits to the host, the host sampling time in the step log', async () => {
    const r = await bench({ policy: 'continuous', cost: { sampling: 'cpu' } });
    expect(r.outputs).toEqual(optimized.outputs);
    expect((r.summary.engine as { sampling: string }).sampling).toBe('host');
    const sampling = r.steps.filter((s) => s.hostSampleUs !== null && s.hostSampleUs !== undefined);
    expect(sampling.length).toBe(r.steps.length);
    for (const s of r.steps) expect(s.runUs).toBeGreaterThanOrEqual(s.hostSampleUs!);
  });

  it('static batching (--policy static)', async () => {
    const r = await bench({ policy: 'static' }, { sampleOnDevice: true });
    expect(r.outputs).toEqual(optimized.outputs);
  });

  it('the whole baseline stack at once (contiguous + CPU sampling + static + no KV cache)', async () => {
    const r = await bench({ policy: 'static', kv: { allocator: 'contiguous' }, cost: { sampling: 'cpu' } }, { kvCache: false });
    expect(r.outputs).toEqual(optimized.outputs);
  });

  it('seeded sampling (temperature 0.8, top-p 0.9) draws the same tokens on the host and on the device path', async () => {
    const sampling = { temperature: 0.8, topK: 0, topP: 0.9, minP: 0 };
    const device = await bench({ policy: 'continuous' }, { sampleOnDevice: true, sampling });
    const host = await bench({ policy: 'continuous', cost: { sampling: 'cpu' } }, { sampling });
    expect(host.outputs).toEqual(device.outputs);
    expect(device.outputs).not.toEqual(optimized.outputs);
  });
});

describe('the no-KV-cache runner', () => {
  it('recomputes after a preemption (context back to 0) and releases finished sequences', async () => {
    const w = randomWeights(MODEL_CONFIGS.tiny, 3);
    const mk = (kvCache: boolean) => new LlamaRunner(w, { backend: 'cpu', dtype: 'f32', kv: { numBlocks: 10, pageSizeTokens: 4 }, maxNumBatchedTokens: 64, maxNumSeqs: 4, kvCache });
    const requests: EngineRequest[] = [0, 1, 2, 3].map((id) => ({ id, tenant: 't', adapter: null, priorityClass: 0, arrivalUs: 0, promptTokens: 6 + id, maxOutputTokens: 6 }));
    const run = async (runner: LlamaRunner) => {
      const config = { ...DEFAULT_SCHEDULER_CONFIG, policy: 'chunked' as const, maxNumSeqs: 4, maxNumBatchedTokens: 16, maxSeqLenTokens: 64, watermarkFraction: 0, kv: { ...DEFAULT_SCHEDULER_CONFIG.kv, numBlocks: 10, pageSizeTokens: 4, prefixCaching: false } };
      let preempted = 0;
      const engine = new Engine({ scheduler: createScheduler(config), runner, clock: new VirtualClock(), seed: 2, maxSteps: 1000, observer: { onStep: (r) => { preempted += r.plan.preempted.length; for (const s of r.outcome.finished) runner.release(s.spec.id); } } });
      let i = 0;
      const { outputs } = await engine.run({ next: () => (i < requests.length ? requests[i++] : null) });
      return { outputs, preempted };
    };
    const cached = await run(mk(true));
    const recompute = await run(mk(false));
    expect(cached.preempted).toBeGreaterThan(0);
    expect(recompute.outputs).toEqual(cached.outputs);
  });
});
