import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runEngineBench } from '../../experiments/commands/engine.js';
import { createScheduler, DEFAULT_SCHEDULER_CONFIG, tokenContent, type SchedulerConfig } from '../../engine/policy/index.js';
import { VirtualClock } from '../../engine/runtime/clock.js';
import { Engine, syntheticPrompt, type EngineRequest, type EngineStepRecord } from '../../engine/runtime/engine.js';
import { MODEL_CONFIGS, type ModelConfig } from '../../engine/runtime/model-config.js';
import { LlamaRunner } from '../../engine/runtime/model-runner.js';
import { randomWeights } from '../../engine/runtime/weights.js';
import { parseSimConfig } from '../../sim/config.js';
import { REQUEST_COLUMNS } from '../../sim/metrics/csv.js';
import { ReferenceLlama } from './reference-llama.js';

const MICRO: ModelConfig = { ...MODEL_CONFIGS.tiny, name: 'micro', hiddenSize: 64, numHeads: 4, numKvHeads: 2, headDim: 16, ffnSize: 128, vocabSize: 96 };
const weights = randomWeights(MICRO, 21);
const reference = new ReferenceLlama(weights);

function schedulerConfig(over: Partial<SchedulerConfig>, kv: Partial<SchedulerConfig['kv']>): SchedulerConfig {
  return { ...DEFAULT_SCHEDULER_CONFIG, maxSeqLenTokens: 64, watermarkFraction: 0, ...over, kv: { ...DEFAULT_SCHEDULER_CONFIG.kv, ...kv } };
}

async function runEngine(config: SchedulerConfig, requests: EngineRequest[]): Promise<{ outputs: ReadonlyMap<number, readonly number[]>; steps: EngineStepRecord[] }> {
  const runner = new LlamaRunner(weights, { backend: 'cpu', dtype: 'f32', kv: { numBlocks: config.kv.numBlocks, pageSizeTokens: config.kv.pageSizeTokens }, maxNumBatchedTokens: 256, maxNumSeqs: 8 });
  const steps: EngineStepRecord[] = [];
  const engine = new Engine({ scheduler: createScheduler(config), runner, clock: new VirtualClock(), seed: 1, maxSteps: 10_000, observer: { onStep: (r) => steps.push(r) } });
  let i = 0;
  const { outputs } = await engine.run({ next: () => (i < requests.length ? requests[i++] : null) });
  return { outputs, steps };
}

function request(id: number, prompt: Int32Array, maxOutputTokens: number, withContent = false): EngineRequest {
  return {
    id, tenant: 't', adapter: null, priorityClass: 0, arrivalUs: 0, promptTokens: prompt.length, maxOutputTokens, promptTokenIds: prompt,
    ...(withContent ? { content: tokenContent(prompt) } : {}),
  };
}

describe('engine loop on the CPU backend', () => {
  it('chunked prefill, mixed batches and preemption (recompute) give every request the reference greedy tokens', async () => {
    const requests = [0, 1, 2, 3, 4].map((id) => request(id, syntheticPrompt(9, id, 10 + 3 * id, MICRO.vocabSize), 6 + id));
    const config = schedulerConfig({ policy: 'chunked', maxNumSeqs: 4, maxNumBatchedTokens: 16 }, { numBlocks: 10, pageSizeTokens: 4, prefixCaching: false });
    const { outputs, steps } = await runEngine(config, requests);
    expect(steps.reduce((a, s) => a + s.plan.preempted.length, 0)).toBeGreaterThan(0);
    expect(steps.some((s) => s.plan.items.some((x) => x.isPrefill) && s.plan.items.some((x) => !x.isPrefill))).toBe(true);
    for (const r of requests) expect(outputs.get(r.id), `request ${r.id}`).toEqual(reference.greedy(Array.from(r.promptTokenIds!), r.maxOutputTokens));
  });

  it('prefix-cached KV blocks shared between requests give the same tokens as recomputing them', async () => {
    const shared = syntheticPrompt(4, 100, 12, MICRO.vocabSize);
    const prompts = [0, 1, 2].map((id) => Int32Array.from([...shared, ...syntheticPrompt(4, id, 3 + id, MICRO.vocabSize)]));
    const requests = prompts.map((p, id) => ({ ...request(id, p, 5, true), arrivalUs: id * 10 }));
    const config = schedulerConfig({ policy: 'continuous', maxNumSeqs: 1, maxNumBatchedTokens: 64 }, { numBlocks: 32, pageSizeTokens: 4, prefixCaching: true });
    const { outputs, steps } = await runEngine(config, requests);
    // Later requests start prefill after the cached prefix.
    const firstPrefill = (id: number) => steps.flatMap((s) => s.plan.items).find((x) => x.seqId === id && x.isPrefill)!;
    expect(firstPrefill(1).contextTokens).toBe(12);
    for (const r of requests) expect(outputs.get(r.id)).toEqual(reference.greedy(Array.from(r.promptTokenIds!), 5));
  });
});

describe('LoRA seam', () => {
  it('a request with an adapter is refused by the model runner, never served by the base model', async () => {
    const config = schedulerConfig({ policy: 'continuous', maxNumSeqs: 2, maxNumBatchedTokens: 64 }, { numBlocks: 16, pageSizeTokens: 4 });
    const req = { ...request(0, syntheticPrompt(1, 0, 5, MICRO.vocabSize), 2), adapter: 'tenant-a/v1' };
    await expect(runEngine({ ...config, lora: { numSlots: 2, eviction: 'lru' } }, [req])).rejects.toMatchObject({ code: 'lora' });
  });
});

describe('stratos engine bench --backend cpu --model tiny', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('runs end to end and writes summary.json, requests.csv and steps.csv in the simulator format', async () => {
    const out = mkdtempSync(join(tmpdir(), 'stratos-bench-'));
    dirs.push(out);
    const config = parseSimConfig({ seed: 4, workload: { rate: 20, durationS: 0.5, inputTokens: 'uniform:4:48', outputTokens: 'uniform:2:8' } });
    const { summary, steps } = await runEngineBench(config, { backend: 'cpu', model: 'tiny', dtype: 'f32', outDir: out });
    expect(summary.requests).toBeGreaterThan(3);
    expect(summary.completed).toBe(summary.requests);
    expect(summary.stratos_output).toBe('engine-bench');
    for (const key of ['duration_s', 'throughput_output_tokens_per_s', 'ttft_ms', 'itl_ms', 'e2e_ms', 'sla', 'kv']) expect(summary).toHaveProperty(key);
    const csv = readFileSync(join(out, 'requests.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe(REQUEST_COLUMNS.join(','));
    expect(csv.length - 1).toBe(summary.requests);
    expect(existsSync(join(out, 'steps.csv'))).toBe(true);
    expect(readFileSync(join(out, 'steps.csv'), 'utf8').trim().split('\n').length - 1).toBe(steps.length);
    // Every step ran at least as long as the runner took, and the log says so.
    for (const s of steps) expect(s.durationUs).toBeGreaterThanOrEqual(s.runUs);
  });
});

describe('the engine bench command line', () => {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const stratos = (...args: string[]) => spawnSync(process.execPath, [join(root, 'bin/stratos.mjs'), ...args], { cwd: root, encoding: 'utf8' });

  it('runs the tiny model on the CPU backend with the simulate flags', () => {
    const out = mkdtempSync(join(tmpdir(), 'stratos-bench-cli-'));
    try {
      const r = stratos('engine', 'bench', '--backend', 'cpu', '--model', 'tiny', '--rate', '10', '--duration', '0.4', '--input-tokens', 'uniform:4:32', '--output-tokens', 'uniform:2:6', '--seed', '3', '--out', out);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/engine-cpu \(measured\)/);
      for (const f of ['summary.json', 'requests.csv', 'steps.csv']) expect(existsSync(join(out, f))).toBe(true);
      expect(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')).model).toBe('tiny');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('--fuse-decode serves the same requests (one-row decode steps through the fused kernels)', () => {
    const out = mkdtempSync(join(tmpdir(), 'stratos-bench-cli-'));
    try {
      const r = stratos('engine', 'bench', '--backend', 'cpu', '--model', 'tiny', '--rate', '3', '--duration', '1', '--input-tokens', 'uniform:4:16', '--output-tokens', 'uniform:4:8', '--seed', '5', '--fuse-decode', '--out', out);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
      expect(summary.completed).toBe(summary.requests);
      expect(summary.requests).toBeGreaterThan(0);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('a bad backend or model exits 2 naming the value and what is allowed', () => {
    const backend = stratos('engine', 'bench', '--backend', 'tpu');
    expect(backend.status).toBe(2);
    expect(backend.stderr).toMatch(/backend = tpu: allowed: cpu, gpu, fake/);
    const model = stratos('engine', 'bench', '--backend', 'cpu', '--model', 'llama2-70b');
    expect(model.status).toBe(2);
    expect(model.stderr).toMatch(/model = llama2-70b: allowed: tiny, llama2-7b, llama2-13b/);
    const tiny = ['engine', 'bench', '--backend', 'cpu', '--model', 'tiny', '--rate', '4', '--duration', '1', '--input-tokens', 'uniform:8:16', '--output-tokens', 'uniform:2:4'];
    const graphs = stratos(...tiny, '--cuda-graphs');
    expect(graphs.status).toBe(2);
    expect(graphs.stderr).toMatch(/cudaGraphs needs the GPU backend/);
    const split = stratos(...tiny, '--decode-min-split', '48');
    expect(split.status).toBe(2);
    expect(split.stderr).toMatch(/decodeMinPartitionTokens = 48: must be a power of two in \[16, 512\]/);
  });
});
