// GPU check 5 (run on the H200 by run5.sh; bundled to dist-engine5/gpu-check5.mjs): the case
// study's baselines and multi-tenant LoRA.
//   tiny | 7b: every baseline's greedy tokens against the optimized path; LoRA logits saved for
//              hf_reference.py (transformers + peft, adapter merged).
//   13b:       TODO 1-2 (no KV cache vs KV cache), TODO 5 (host vs device sampling per token),
//              TODO 9 (3 LoRA tenants vs the base model), one loaded model for all.
// Usage: node dist-engine5/gpu-check5.mjs OUT_DIR WORK_DIR MODE
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createScheduler, DEFAULT_SCHEDULER_CONFIG, type PolicyKind, type SchedulerConfig } from '../../policy/index.js';
import { gpu } from '../../../native/index.js';
import { RealClock } from '../clock.js';
import { Engine, syntheticPrompt, type EngineRequest, type EngineStepRecord } from '../engine.js';
import { ATTENTION_MODULES, LORA_MODULES, randomAdapter, type LoraModule } from '../lora/adapter.js';
import { writePeftFolder } from '../lora/peft.js';
import { LoraRegistry } from '../lora/registry.js';
import { kvBytesPerToken, modelConfig, numParams } from '../model-config.js';
import { argmaxRows, LlamaRunner } from '../model-runner.js';
import type { SamplingParams } from '../runner.js';
import { poolValue, RANDOM_POOL_SIZE, randomWeights, writeHfFolder, type ModelWeights } from '../weights.js';

const outDir = process.argv[2] ?? 'out';
const workDir = process.argv[3] ?? '/tmp/stratos-engine5';
const mode = process.argv[4] ?? 'tiny';
mkdirSync(outDir, { recursive: true });
mkdirSync(workDir, { recursive: true });
const results: Record<string, unknown> = { device: gpu().status.name, mode };
const log = (msg: string): void => console.log(msg);
/** STRATOS_RUN5_ONLY=todo9 (comma-separated) runs only those 13b sections. */
const only = (process.env.STRATOS_RUN5_ONLY ?? '').split(',').filter((x) => x !== '');
const section = (name: string): boolean => only.length === 0 || only.includes(name);
const median = (xs: number[]): number => (xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]);
const r3 = (x: number): number => Math.round(x * 1000) / 1000;

interface Variant {
  readonly name: string;
  readonly kvCache: boolean;
  readonly sampleOnDevice: boolean;
  readonly allocator: 'paged' | 'contiguous';
  readonly policy: PolicyKind;
}
const OPTIMIZED: Variant = { name: 'optimized', kvCache: true, sampleOnDevice: true, allocator: 'paged', policy: 'continuous' };
const VARIANTS: readonly Variant[] = [
  OPTIMIZED,
  { ...OPTIMIZED, name: 'no_kv_cache', kvCache: false },
  { ...OPTIMIZED, name: 'contiguous_kv', allocator: 'contiguous' },
  { ...OPTIMIZED, name: 'cpu_sampling', sampleOnDevice: false },
  { ...OPTIMIZED, name: 'static_batching', policy: 'static' },
  { name: 'baseline_stack', kvCache: true, sampleOnDevice: false, allocator: 'contiguous', policy: 'static' },
];

interface RunOut {
  readonly steps: (EngineStepRecord & { hostSampleUs: number })[];
  readonly outputs: ReadonlyMap<number, readonly number[]>;
  readonly wallS: number;
  readonly outputTokens: number;
}

function schedConfig(base: SchedulerConfig, v: Variant): SchedulerConfig {
  return { ...base, policy: v.policy, kv: { ...base.kv, allocator: v.allocator } };
}

/** One engine run of fixed requests on a loaded runner (the variant's switches set first). */
async function run(runner: LlamaRunner, config: SchedulerConfig, requests: readonly EngineRequest[], v: Variant = OPTIMIZED): Promise<RunOut> {
  runner.kvCache = v.kvCache;
  runner.sampleOnDevice = v.sampleOnDevice;
  const steps: (EngineStepRecord & { hostSampleUs: number })[] = [];
  const engine = new Engine({
    scheduler: createScheduler(schedConfig(config, v)), runner, clock: new RealClock(), seed: 1, maxSteps: 200_000,
    observer: {
      onStep: (s) => {
        steps.push({ ...s, hostSampleUs: runner.lastHostSampleUs });
        for (const f of s.outcome.finished) runner.release(f.spec.id);
      },
    },
  });
  let i = 0;
  const t0 = performance.now();
  const { outputs } = await engine.run({ next: () => (i < requests.length ? requests[i++] : null) });
  const wallS = (performance.now() - t0) / 1000;
  let outputTokens = 0;
  for (const o of outputs.values()) outputTokens += o.length;
  return { steps, outputs, wallS, outputTokens };
}

function requestsOf(n: number, prompt: (id: number) => number, output: number, extra: (id: number) => Partial<EngineRequest> = () => ({})): EngineRequest[] {
  return Array.from({ length: n }, (_, id) => ({ id, tenant: 't', adapter: null, priorityClass: 0, arrivalUs: 0, promptTokens: prompt(id), maxOutputTokens: output, ...extra(id) }));
}

/** Token agreement of a run with the reference: equal tokens / all, and requests identical. */
function agreement(ref: ReadonlyMap<number, readonly number[]>, got: ReadonlyMap<number, readonly number[]>) {
  let equal = 0;
  let total = 0;
  let identical = 0;
  const firstDiverge: number[] = [];
  for (const [id, a] of ref) {
    const b = got.get(id) ?? [];
    let k = 0;
    while (k < a.length && a[k] === b[k]) k++;
    firstDiverge.push(k === a.length ? -1 : k);
    if (k === a.length && a.length === b.length) identical++;
    for (let j = 0; j < a.length; j++) if (a[j] === b[j]) equal++;
    total += a.length;
  }
  return { tokens_equal: equal, tokens_total: total, requests_identical: identical, requests: ref.size, first_divergence_per_request: firstDiverge };
}

async function baselineEquivalence(runner: LlamaRunner, config: SchedulerConfig, requests: readonly EngineRequest[]): Promise<Record<string, unknown>> {
  const ref = await run(runner, config, requests, OPTIMIZED);
  const out: Record<string, unknown> = {};
  for (const v of VARIANTS.slice(1)) {
    const r = await run(runner, config, requests, v);
    out[v.name] = agreement(ref.outputs, r.outputs);
    log(`  ${v.name}: ${JSON.stringify(out[v.name])}`);
  }
  return out;
}

/** Teacher-forced greedy run on one sequence with an adapter slot: the prompt's logits, then `steps` decodes. */
function greedyLogits(runner: LlamaRunner, prompt: Int32Array, steps: number, page: number, adapterSlot: number): { logits: Float32Array; tokens: number[] } {
  const vocab = runner.vocabSize;
  const table = Array.from({ length: Math.ceil((prompt.length + steps + 1) / page) }, (_, i) => i);
  const out = new Float32Array((steps + 1) * vocab);
  const tokens: number[] = [];
  let row = runner.forwardLogits([{ tokenIds: prompt, contextTokens: 0, blockTable: table, samples: true, adapterSlot }]);
  for (let s = 0; ; s++) {
    out.set(row, s * vocab);
    const t = argmaxRows({ dtype: 'f32', data: row }, vocab)[0];
    tokens.push(t);
    if (s === steps) break;
    row = runner.forwardLogits([{ tokenIds: Int32Array.from([t]), contextTokens: prompt.length + s, blockTable: table, samples: true, adapterSlot }]);
  }
  return { logits: out, tokens };
}

function saveRun(name: string, prompt: Int32Array, r: { logits: Float32Array; tokens: number[] }, vocab: number, extra: Record<string, unknown> = {}): void {
  writeFileSync(join(workDir, `${name}.logits.f32`), new Uint8Array(r.logits.buffer));
  writeFileSync(join(workDir, `${name}.json`), JSON.stringify({ prompt: Array.from(prompt), tokens: r.tokens, vocab, steps: r.tokens.length - 1, ...extra }));
}

function manifest(w: ModelWeights): void {
  const tensors = w.specs.map((s) => ({ name: s.name, shape: s.shape, ...w.recipe(s.name)! }));
  writeFileSync(join(workDir, `${w.config.name}.manifest.json`), JSON.stringify({ config: w.config, seed: w.seed, poolSize: RANDOM_POOL_SIZE, tensors }));
  const pool = new Float32Array(RANDOM_POOL_SIZE);
  for (let j = 0; j < RANDOM_POOL_SIZE; j++) pool[j] = poolValue(w.seed!, j);
  writeFileSync(join(workDir, 'pool.f32'), new Uint8Array(pool.buffer));
}

function maxAbs(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Writes a random adapter as a PEFT folder, registers it from there and loads it into `slot`. */
function peftAdapter(runner: LlamaRunner, registry: LoraRegistry, w: ModelWeights, name: string, rank: number, targets: readonly LoraModule[], slot: number): string {
  const dir = join(workDir, name.replace('/', '__'));
  writePeftFolder(dir, randomAdapter(w.config, { name, seed: 11, rank, targets }), 'bf16');
  const reg = registry.register(name, name.split('/')[0], { kind: 'peft', dir });
  runner.lora!.load(slot, registry.load(name));
  return reg.sha256;
}

const smallConfig = (numBlocks: number, page: number, maxSeqLen: number, maxTokens: number, maxSeqs: number): SchedulerConfig => ({
  ...DEFAULT_SCHEDULER_CONFIG, maxNumSeqs: maxSeqs, maxNumBatchedTokens: maxTokens, maxSeqLenTokens: maxSeqLen, watermarkFraction: 0,
  kv: { allocator: 'paged', numBlocks, pageSizeTokens: page, prefixCaching: false },
});

// ---- tiny ------------------------------------------------------------------------------------
if (mode === 'tiny') {
  const w = randomWeights(modelConfig('tiny'), 1);
  const page = 16;
  const registry = new LoraRegistry(w.config);
  const runner = new LlamaRunner(w, {
    backend: 'gpu', dtype: 'bf16', kv: { numBlocks: 256, pageSizeTokens: page }, maxNumBatchedTokens: 512, maxNumSeqs: 16,
    lora: { registry, numSlots: 4, maxRank: 16, targets: LORA_MODULES },
  });
  const config = smallConfig(256, page, 256, 512, 8);
  log('tiny: baselines vs optimized, 10 requests x (16..124 in, 24 out), greedy');
  results.tiny_baselines = await baselineEquivalence(runner, config, requestsOf(10, (id) => 16 + 12 * id, 24));
  // LoRA: rank 16 on all seven modules, from a PEFT folder, against transformers + peft (merged).
  writeHfFolder(join(workDir, 'tiny'), w, 'bf16');
  const sha = peftAdapter(runner, registry, w, 'acme/tiny-lora', 16, LORA_MODULES, 1);
  const prompt = syntheticPrompt(1, 0, 24, w.config.vocabSize);
  const r = greedyLogits(runner, prompt, 32, page, 1);
  saveRun('tiny_lora', prompt, r, w.config.vocabSize, { adapter: 'acme__tiny-lora', sha256: sha });
  const base = greedyLogits(runner, prompt, 32, page, -1);
  results.tiny_lora_vs_base_logits_max_abs = maxAbs(r.logits, base.logits);
  // Mixed batch: the LoRA sequence next to a base sequence and another adapter's, against it alone.
  peftAdapter(runner, registry, w, 'zeta/tiny-lora', 8, ATTENTION_MODULES, 3);
  const other = syntheticPrompt(1, 1, 40, w.config.vocabSize);
  const V = w.config.vocabSize;
  const mixed = runner.forwardLogits([
    { tokenIds: other, contextTokens: 0, blockTable: [100, 101, 102], samples: true, adapterSlot: 3 },
    { tokenIds: prompt, contextTokens: 0, blockTable: [110, 111], samples: true, adapterSlot: 1 },
    { tokenIds: other, contextTokens: 0, blockTable: [120, 121, 122], samples: true, adapterSlot: -1 },
  ]);
  results.tiny_lora_mixed_batch_vs_alone_max_abs = maxAbs(mixed.subarray(V, 2 * V), r.logits.subarray(0, V));
  results.tiny_lora_slot_bytes = runner.lora!.bytes;
  runner.close();
  log(`tiny: ${JSON.stringify(results)}`);
}

// ---- 7b shape --------------------------------------------------------------------------------
if (mode === '7b') {
  const w = randomWeights(modelConfig('llama2-7b'), 1);
  manifest(w);
  const page = 16;
  const registry = new LoraRegistry(w.config);
  const runner = new LlamaRunner(w, {
    backend: 'gpu', dtype: 'bf16', kv: { numBlocks: 2048, pageSizeTokens: page }, maxNumBatchedTokens: 1024, maxNumSeqs: 16,
    lora: { registry, numSlots: 2, maxRank: 16, targets: ATTENTION_MODULES },
  });
  const config = smallConfig(2048, page, 512, 1024, 8);
  log('7b: baselines vs optimized, 4 requests x (32..80 in, 8 out), greedy');
  results.llama7b_baselines = await baselineEquivalence(runner, config, requestsOf(4, (id) => 32 + 16 * id, 8));
  const sha = peftAdapter(runner, registry, w, 'acme/7b-lora', 16, ATTENTION_MODULES, 0);
  const prompt = syntheticPrompt(1, 0, 32, w.config.vocabSize);
  const r = greedyLogits(runner, prompt, 8, page, 0);
  saveRun('llama2-7b_lora', prompt, r, w.config.vocabSize, { adapter: 'acme__7b-lora', sha256: sha });
  const base = greedyLogits(runner, prompt, 8, page, -1);
  results.llama7b_lora_vs_base_logits_max_abs = maxAbs(r.logits, base.logits);
  runner.close();
  log(`7b: ${JSON.stringify(results)}`);
}

// ---- 13b shape: performance of the baselines and of LoRA -------------------------------------
if (mode === '13b') {
  const w = randomWeights(modelConfig('llama2-13b'), 1);
  const page = 16;
  const total = gpu().status.totalMemBytes ?? 0;
  const numBlocks = Math.floor((total * 0.9 - numParams(w.config) * 2 - 5e9) / (kvBytesPerToken(w.config, 2) * page));
  const registry = new LoraRegistry(w.config);
  const tenants = ['acme', 'globex', 'initech'];
  for (const t of tenants) registry.register(`${t}/lora-0`, t, { kind: 'random', spec: { name: `${t}/lora-0`, seed: 1, rank: 16 } });
  let t0 = performance.now();
  const runner = new LlamaRunner(w, {
    backend: 'gpu', dtype: 'bf16', kv: { numBlocks, pageSizeTokens: page }, maxNumBatchedTokens: 8192, maxNumSeqs: 256,
    lora: { registry, numSlots: 4, maxRank: 16, targets: ATTENTION_MODULES },
  });
  runner.warmup();
  gpu().sync();
  results.llama13b_load_and_warmup_s = r3((performance.now() - t0) / 1000);
  results.llama13b_kv_blocks = numBlocks;
  results.llama13b_kv_bytes = numBlocks * page * kvBytesPerToken(w.config, 2);
  results.llama13b_weight_bytes = numParams(w.config) * 2;
  const config = smallConfig(numBlocks, page, 4096, 8192, 256);
  const decodeSteps = (o: RunOut) => o.steps.filter((s) => s.plan.numPrefillTokens === 0 && s.plan.items.length > 0);
  const decodeSummary = (o: RunOut) => {
    const d = decodeSteps(o);
    return { decode_steps: d.length, step_wall_ms_median: r3(median(d.map((s) => (s.endUs - s.startUs) / 1000))), step_gpu_ms_median: r3(median(d.map((s) => (s.gpuUs ?? 0) / 1000))) };
  };
  const span = (o: RunOut) => (o.steps[o.steps.length - 1].endUs - o.steps[0].startUs) / 1e6;

  // TODO 1-2: naive (every token recomputes the whole sequence) vs the KV cache.
  if (section('todo1_2')) {
    log('13b TODO 1-2: no KV cache vs KV cache');
    await run(runner, config, requestsOf(1, () => 128, 4)); // the batch-1 decode shapes once more after warmup
    const todo12: Record<string, unknown>[] = [];
    for (const [n, p] of [[1, 128], [1, 512], [1, 2048], [8, 512]] as const) {
      const reqs = requestsOf(n, () => p, 32);
      const kv = await run(runner, config, reqs, OPTIMIZED);
      const naive = await run(runner, config, reqs, { ...OPTIMIZED, name: 'no_kv_cache', kvCache: false });
      const row = {
        requests: n, prompt_tokens: p, output_tokens_each: 32,
        kv_cache: { output_tokens_per_s: r3(kv.outputTokens / span(kv)), ...decodeSummary(kv) },
        no_kv_cache: { output_tokens_per_s: r3(naive.outputTokens / span(naive)), ...decodeSummary(naive), forwards: naive.steps.length },
        speedup: r3(naive.outputTokens / span(naive) === 0 ? NaN : (kv.outputTokens / span(kv)) / (naive.outputTokens / span(naive))),
        tokens_agree: agreement(kv.outputs, naive.outputs),
      };
      todo12.push(row);
      log(`  ${JSON.stringify(row)}`);
    }
    results.todo1_2_no_kv_cache_vs_kv_cache = todo12;
  }

  // TODO 5: host sampling (logits copied back, sampled in JS/C++) vs the fused GPU sampler, per token.
  if (section('todo5')) {
    log('13b TODO 5: CPU vs GPU sampling');
    const topP: Omit<SamplingParams, 'seed'> = { temperature: 0.8, topK: 0, topP: 0.9, minP: 0 };
    const todo5: Record<string, unknown>[] = [];
    for (const batch of [1, 64]) {
      for (const [label, sp] of [['greedy', null], ['temperature 0.8, top-p 0.9', topP]] as const) {
        const reqs = requestsOf(batch, () => 128, 48, (id) => (sp === null ? {} : { sampling: { ...sp, seed: 1000 + id } }));
        const row: Record<string, unknown> = { batch, sampling: label };
        const outs: RunOut[] = [];
        for (const onDevice of [true, false]) {
          const o = await run(runner, config, reqs, { ...OPTIMIZED, name: onDevice ? 'gpu' : 'cpu', sampleOnDevice: onDevice });
          outs.push(o);
          const d = decodeSteps(o);
          row[onDevice ? 'gpu_sampling' : 'cpu_sampling'] = {
            ...decodeSummary(o),
            host_sample_ms_median: r3(median(d.map((s) => s.hostSampleUs / 1000))),
            host_sample_ms_per_token_median: r3(median(d.map((s) => s.hostSampleUs / 1000 / s.plan.items.length))),
          };
        }
        const [g, c] = outs.map((o) => median(decodeSteps(o).map((s) => (s.endUs - s.startUs) / 1000)));
        row.cpu_minus_gpu_step_ms = r3(c - g);
        row.cpu_minus_gpu_per_token_ms = r3((c - g) / batch);
        row.tokens_agree = agreement(outs[0].outputs, outs[1].outputs);
        todo5.push(row);
        log(`  ${JSON.stringify(row)}`);
      }
    }
    results.todo5_cpu_vs_gpu_sampling = todo5;
  }

  // TODO 9: three LoRA tenants (rank 16 on q/k/v/o, one adapter each, mixed in every batch) vs the base model.
  log('13b TODO 9: 3 LoRA tenants vs base');
  const n9 = 192;
  const baseReqs = requestsOf(n9, () => 128, 128);
  const loraReqs = requestsOf(n9, () => 128, 128, (id) => ({ tenant: tenants[id % 3], adapter: `${tenants[id % 3]}/lora-0` }));
  await run(runner, config, baseReqs); // warm: the batch-192 shapes
  const todo9: Record<string, unknown> = {};
  // Each run has a fresh scheduler (so a fresh policy LoRA cache): both LoRA runs load the three
  // adapters into slots inside their window; the second is a repeat for the run-to-run spread.
  for (const [label, reqs] of [['base', baseReqs], ['lora_3_tenants_with_loads', loraReqs], ['lora_3_tenants_repeat', loraReqs]] as const) {
    const loadsBefore = runner.lora!.numLoads;
    t0 = performance.now();
    const o = await run(runner, config, reqs);
    todo9[label] = { output_tokens: o.outputTokens, output_tokens_per_s: r3(o.outputTokens / span(o)), wall_s: r3(o.wallS), steps: o.steps.length, ...decodeSummary(o), slot_loads: runner.lora!.numLoads - loadsBefore };
    log(`  ${label}: ${JSON.stringify(todo9[label])}`);
  }
  const b = todo9.base as { output_tokens_per_s: number };
  const l = todo9.lora_3_tenants_with_loads as { output_tokens_per_s: number };
  const lr = todo9.lora_3_tenants_repeat as { output_tokens_per_s: number };
  todo9.throughput_ratio_lora_over_base = r3(l.output_tokens_per_s / b.output_tokens_per_s);
  todo9.throughput_ratio_lora_repeat_over_base = r3(lr.output_tokens_per_s / b.output_tokens_per_s);
  todo9.memory = {
    weights_bytes: numParams(w.config) * 2,
    lora_slot_bytes_4_slots_rank16_qkvo: runner.lora!.bytes,
    one_adapter_bytes: runner.lora!.bytes / 4,
    lora_fraction_of_weights: r3(runner.lora!.bytes / (numParams(w.config) * 2)),
  };
  results.todo9_lora_vs_base = todo9;
  runner.close();
}
writeFileSync(join(outDir, `engine-gpu5-${mode}.json`), JSON.stringify(results, null, 2) + '\n');
log(`wrote engine-gpu5-${mode}.json`);
