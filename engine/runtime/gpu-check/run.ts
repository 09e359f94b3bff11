// GPU check of the engine (run on the H200 by run.sh; bundled to dist-engine/gpu-check.mjs since the
// GPU machine has no npm). Writes our logits for hf_reference.py (Hugging Face transformers loading
// the same weights) and measures the engine's decode latency and offline throughput.
// Usage: node dist-engine/gpu-check.mjs OUT_DIR WORK_DIR
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createScheduler, DEFAULT_SCHEDULER_CONFIG, type SchedulerConfig } from '../../policy/index.js';
import { gpu } from '../../../native/index.js';
import { RealClock } from '../clock.js';
import { Engine, syntheticPrompt, type EngineRequest, type EngineStepRecord } from '../engine.js';
import { modelConfig } from '../model-config.js';
import { argmaxRows, LlamaRunner } from '../model-runner.js';
import { measureRoofline } from './roofline.js';
import { loadHfFolder, poolValue, RANDOM_POOL_SIZE, randomWeights, writeHfFolder, type ModelWeights } from '../weights.js';

const outDir = process.argv[2] ?? 'out';
const workDir = process.argv[3] ?? '/tmp/stratos-engine';
const mode = process.argv[4] ?? 'tiny';
mkdirSync(outDir, { recursive: true });
mkdirSync(workDir, { recursive: true });
const results: Record<string, unknown> = { device: gpu().status.name };
const log = (msg: string): void => console.log(msg);

function maxAbs(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Teacher-forced greedy run on one sequence: logits of the prompt's last token, then `steps` decodes. */
function greedyLogits(runner: LlamaRunner, prompt: Int32Array, steps: number, page: number): { logits: Float32Array; tokens: number[] } {
  const vocab = runner.vocabSize;
  const table = Array.from({ length: Math.ceil((prompt.length + steps + 1) / page) }, (_, i) => i);
  const out = new Float32Array((steps + 1) * vocab);
  const tokens: number[] = [];
  let row = runner.forwardLogits([{ tokenIds: prompt, contextTokens: 0, blockTable: table, samples: true }]);
  for (let s = 0; ; s++) {
    out.set(row, s * vocab);
    const t = argmaxRows({ dtype: 'f32', data: row }, vocab)[0];
    tokens.push(t);
    if (s === steps) break;
    row = runner.forwardLogits([{ tokenIds: Int32Array.from([t]), contextTokens: prompt.length + s, blockTable: table, samples: true }]);
  }
  return { logits: out, tokens };
}

function saveRun(name: string, prompt: Int32Array, r: { logits: Float32Array; tokens: number[] }, vocab: number): void {
  writeFileSync(join(workDir, `${name}.logits.f32`), new Uint8Array(r.logits.buffer));
  writeFileSync(join(workDir, `${name}.json`), JSON.stringify({ prompt: Array.from(prompt), tokens: r.tokens, vocab, steps: r.tokens.length - 1 }));
}

function manifest(w: ModelWeights): void {
  const tensors = w.specs.map((s) => ({ name: s.name, shape: s.shape, ...w.recipe(s.name)! }));
  writeFileSync(join(workDir, `${w.config.name}.manifest.json`), JSON.stringify({ config: w.config, seed: w.seed, poolSize: RANDOM_POOL_SIZE, tensors }));
  const pool = new Float32Array(RANDOM_POOL_SIZE);
  for (let j = 0; j < RANDOM_POOL_SIZE; j++) pool[j] = poolValue(w.seed!, j);
  writeFileSync(join(workDir, 'pool.f32'), new Uint8Array(pool.buffer));
}

// ---- tiny: correctness against transformers, and paging/batching consistency on the GPU ----
if (mode === 'tiny') {
  const w = randomWeights(modelConfig('tiny'), 1);
  writeHfFolder(join(workDir, 'tiny'), w, 'bf16');
  const page = 16;
  const mk = (): LlamaRunner => new LlamaRunner(w, { backend: 'gpu', dtype: 'bf16', kv: { numBlocks: 64, pageSizeTokens: page }, maxNumBatchedTokens: 512, maxNumSeqs: 16 });
  const runner = mk();
  const prompt = syntheticPrompt(1, 0, 24, w.config.vocabSize);
  const r = greedyLogits(runner, prompt, 32, page);
  saveRun('tiny', prompt, r, w.config.vocabSize);
  // The same sequence as chunks (10 + 14 tokens) batched with an unrelated sequence: same logits?
  const other = syntheticPrompt(1, 1, 40, w.config.vocabSize);
  const fresh = mk();
  fresh.forwardLogits([{ tokenIds: prompt.subarray(0, 10), contextTokens: 0, blockTable: [5, 9], samples: false }]);
  const mixed = fresh.forwardLogits([
    { tokenIds: other, contextTokens: 0, blockTable: [1, 2, 3], samples: true },
    { tokenIds: prompt.subarray(10), contextTokens: 10, blockTable: [5, 9], samples: true },
  ]);
  const V = w.config.vocabSize;
  results.tiny_gpu_chunked_vs_whole_max_abs = maxAbs(mixed.subarray(V, 2 * V), r.logits.subarray(0, V));
  // The CPU reference reads the checkpoint transformers reads (bf16 weights), in f32 arithmetic.
  const cpuRunner = new LlamaRunner(loadHfFolder(join(workDir, 'tiny')), { backend: 'cpu', dtype: 'f32', kv: { numBlocks: 64, pageSizeTokens: page }, maxNumBatchedTokens: 512, maxNumSeqs: 16 });
  const c = greedyLogits(cpuRunner, prompt, 32, page);
  saveRun('tiny_cpu_f32', prompt, c, V);
  results.tiny_gpu_vs_cpu_f32_tokens_equal = c.tokens.every((t, i) => t === r.tokens[i]);
  runner.close();
  fresh.close();
  log(`tiny: ${JSON.stringify(results)}`);
}

// ---- llama2-7b shape with random weights: logits for transformers, then performance ----------
if (mode === '7b') {
  const w = randomWeights(modelConfig('llama2-7b'), 1);
  manifest(w);
  const page = 16;
  const numBlocks = 6000;
  let t0 = performance.now();
  const runner = new LlamaRunner(w, { backend: 'gpu', dtype: 'bf16', kv: { numBlocks, pageSizeTokens: page }, maxNumBatchedTokens: 8192, maxNumSeqs: 256 });
  gpu().sync();
  results.llama7b_load_s = (performance.now() - t0) / 1000;
  const prompt = syntheticPrompt(1, 0, 32, w.config.vocabSize);
  const r = greedyLogits(runner, prompt, 8, page);
  saveRun('llama2-7b', prompt, r, w.config.vocabSize);
  log(`7b logits saved; load ${results.llama7b_load_s} s`);

  const schedulerConfig: SchedulerConfig = {
    ...DEFAULT_SCHEDULER_CONFIG, policy: 'continuous', maxNumSeqs: 256, maxNumBatchedTokens: 8192, maxSeqLenTokens: 4096,
    kv: { allocator: 'paged', numBlocks, pageSizeTokens: page, prefixCaching: false },
  };
  const bench = async (n: number, promptLen: number, outputLen: number): Promise<{ steps: EngineStepRecord[]; wallS: number; outputTokens: number }> => {
    const requests: EngineRequest[] = Array.from({ length: n }, (_, id) => ({ id, tenant: 't', adapter: null, priorityClass: 0, arrivalUs: 0, promptTokens: promptLen, maxOutputTokens: outputLen }));
    const steps: EngineStepRecord[] = [];
    const engine = new Engine({ scheduler: createScheduler(schedulerConfig), runner, clock: new RealClock(), seed: 1, maxSteps: 100_000, observer: { onStep: (s) => steps.push(s) } });
    let i = 0;
    t0 = performance.now();
    const { outputs } = await engine.run({ next: () => (i < requests.length ? requests[i++] : null) });
    const wallS = (performance.now() - t0) / 1000;
    let outputTokens = 0;
    for (const o of outputs.values()) outputTokens += o.length;
    return { steps, wallS, outputTokens };
  };
  // The roofline reference, measured in this run: device-to-device copy bandwidth (read + write).
  Object.assign(results, measureRoofline(w.config));
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const decodeStats = (steps: EngineStepRecord[]) => {
    const d = steps.filter((s) => s.plan.numPrefillTokens === 0 && s.plan.items.length > 0);
    return {
      decode_steps: d.length,
      step_wall_ms_median: median(d.map((s) => (s.endUs - s.startUs) / 1000)),
      step_gpu_ms_median: median(d.map((s) => (s.gpuUs ?? 0) / 1000)),
      schedule_ms_median: median(d.map((s) => s.scheduleUs / 1000)),
      host_fraction_median: median(d.map((s) => 1 - (s.gpuUs ?? 0) / Math.max(1, s.endUs - s.startUs))),
    };
  };
  await bench(1, 128, 16); // tunes the GEMM shapes of batch 1
  const b1 = await bench(1, 128, 128);
  results.llama7b_batch1 = { ...decodeStats(b1.steps), wall_s: b1.wallS, output_tokens: b1.outputTokens };
  log(`7b batch 1: ${JSON.stringify(results.llama7b_batch1)}`);
  await bench(256, 128, 128); // warm-up: the same shapes, so the timed run does no GEMM tuning
  const off = await bench(256, 128, 128);
  const firstStart = off.steps[0].startUs;
  const lastEnd = off.steps[off.steps.length - 1].endUs;
  results.llama7b_offline_256x128x128 = {
    ...decodeStats(off.steps),
    steps: off.steps.length,
    output_tokens: off.outputTokens,
    wall_s: off.wallS,
    output_tokens_per_s: off.outputTokens / ((lastEnd - firstStart) / 1e6),
    prefill_steps: off.steps.filter((s) => s.plan.numPrefillTokens > 0).length,
  };
  log(`7b offline: ${JSON.stringify(results.llama7b_offline_256x128x128)}`);
  runner.close();
}
writeFileSync(join(outDir, `engine-gpu-${mode}.json`), JSON.stringify(results, null, 2) + '\n');
