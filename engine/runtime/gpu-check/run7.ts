// GPU check of CUDA graphs for decode steps (issue 6, "7B batch-1 decode <= 3.6 ms per token").
// Run on the H200 by run7.sh / run7-final.sh (bundled to dist-graph/run7.mjs; the GPU machine has no npm).
// Usage: node dist-graph/run7.mjs OUT_DIR MODE(tiny|7b|7b-final|7b-fused|prof)
//   tiny:     greedy engine runs with graphs off, on (capture), on again (replay), also with the
//             fused q/k/v GEMM and a 32-token decode split: every request's tokens must be equal
//             between eager and graph runs.
//   7b:       the roofline (device-to-device copy bandwidth, this run), then batch 1, 8 and 64
//             decode (128-token prompts, 128 outputs): median step wall and GPU time, eager vs
//             graphs, and whether the greedy tokens are equal; then batch 1 with the fused q/k/v GEMM.
//   7b-final: the roofline; the default path at batch 1; graphs + fused q/k/v with the shortest
//             decode split 128, 64, 32 at batch 1 (teacher-forced logits against the default's);
//             the fastest split at batch 8 and 64.
//   7b-fused: the roofline; batch 1 with graphs through the fused one-row kernels (fuseDecode,
//             with and without PDL) against graphs + fused q/k/v, all with the 32-token split;
//             teacher-forced logits of each against the default path, greedy tokens between them.
//   prof:     kernel time per op of a 7B decode step (batch 1 and 8: unfused, fused q/k/v, fused
//             one-row decode (batch 1 only; PDL off, since event pairs serialize kernels); env
//             STRATOS_PROF_MIN_SPLIT sets the shortest decode split), launch gaps excluded: the GPU
//             is kept busy by device copies while the whole step and an event pair around every op
//             are queued, so each pair measures its kernel (plus the event records' own cost).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createScheduler, DEFAULT_SCHEDULER_CONFIG, type SchedulerConfig } from '../../policy/index.js';
import { gpu } from '../../../native/index.js';
import { RealClock } from '../clock.js';
import { Engine, type EngineRequest, type EngineStepRecord } from '../engine.js';
import { modelConfig } from '../model-config.js';
import { LlamaRunner } from '../model-runner.js';
import { gpuDevice } from '../device.js';
import { LlamaModel, type ForwardSeq } from '../llama.js';
import { measureRoofline } from './roofline.js';
import { median, OpProfiler, opTable, type OpTime } from './op-profiler.js';
import { randomWeights, type ModelWeights } from '../weights.js';

const outDir = process.argv[2] ?? 'out';
const mode = process.argv[3] ?? 'tiny';
mkdirSync(outDir, { recursive: true });
const results: Record<string, unknown> = { device: gpu().status.name, mode, command: `node dist-graph/run7.mjs OUT ${mode} (from engine/runtime/gpu-check/run7.sh)` };
const log = (msg: string): void => console.log(msg);
const page = 16;

interface BenchOut {
  steps: EngineStepRecord[];
  outputs: Map<number, number[]>;
  replayedSteps: number;
}

async function bench(runner: LlamaRunner, numBlocks: number, maxSeqs: number, lens: readonly { prompt: number; output: number }[]): Promise<BenchOut> {
  const config: SchedulerConfig = {
    ...DEFAULT_SCHEDULER_CONFIG, policy: 'continuous', maxNumSeqs: maxSeqs, maxNumBatchedTokens: 8192, maxSeqLenTokens: 2048,
    kv: { allocator: 'paged', numBlocks, pageSizeTokens: page, prefixCaching: false },
  };
  const requests: EngineRequest[] = lens.map((l, id) => ({ id, tenant: 't', adapter: null, priorityClass: 0, arrivalUs: 0, promptTokens: l.prompt, maxOutputTokens: l.output }));
  const steps: EngineStepRecord[] = [];
  let replayedSteps = 0;
  const engine = new Engine({
    scheduler: createScheduler(config), runner, clock: new RealClock(), seed: 1, maxSteps: 100_000,
    observer: { onStep: (s) => { steps.push(s); if (runner.lastReplayed) replayedSteps++; } },
  });
  let i = 0;
  const { outputs } = await engine.run({ next: () => (i < requests.length ? requests[i++] : null) });
  return { steps, outputs: outputs as Map<number, number[]>, replayedSteps };
}

function sameTokens(a: Map<number, number[]>, b: Map<number, number[]>): { equal: number; total: number; requestsEqual: number; requests: number } {
  let equal = 0;
  let total = 0;
  let requestsEqual = 0;
  for (const [id, ta] of a) {
    const tb = b.get(id) ?? [];
    let same = ta.length === tb.length;
    for (let j = 0; j < ta.length; j++) {
      total++;
      if (ta[j] === tb[j]) equal++;
      else same = false;
    }
    if (same) requestsEqual++;
  }
  return { equal, total, requestsEqual, requests: a.size };
}

function decodeStats(r: BenchOut, batch: number) {
  const d = r.steps.filter((s) => s.plan.numPrefillTokens === 0 && s.plan.items.length === batch);
  const wall = median(d.map((s) => (s.endUs - s.startUs) / 1000));
  const gpuMs = median(d.map((s) => (s.gpuUs ?? 0) / 1000));
  return { decode_steps: d.length, replayed_steps: r.replayedSteps, step_wall_ms_median: wall, step_gpu_ms_median: gpuMs, output_tokens_per_s_at_median: (batch * 1000) / wall };
}

if (mode === 'tiny') {
  const w = randomWeights(modelConfig('tiny'), 1);
  const numBlocks = 256;
  const lens = Array.from({ length: 10 }, (_, i) => ({ prompt: 24 + 7 * i, output: 48 - 3 * i })); // decode batches shrink 10 -> 1
  for (const [fuseQkv, minPart] of [[false, 128], [true, 128], [true, 32]] as const) {
    const runner = new LlamaRunner(w, { backend: 'gpu', dtype: 'bf16', kv: { numBlocks, pageSizeTokens: page }, maxNumBatchedTokens: 512, maxNumSeqs: 16, cudaGraphs: true, fuseQkv, decodeMinPartitionTokens: minPart });
    runner.useGraphs = false;
    const eager = await bench(runner, numBlocks, 16, lens);
    runner.useGraphs = true;
    const capture = await bench(runner, numBlocks, 16, lens);
    const replay = await bench(runner, numBlocks, 16, lens);
    const one = [{ prompt: 300, output: 40 }]; // batch 1, context bucket 512
    runner.useGraphs = false;
    const oneEager = await bench(runner, numBlocks, 16, one);
    runner.useGraphs = true;
    await bench(runner, numBlocks, 16, one);
    const oneGraph = await bench(runner, numBlocks, 16, one);
    const name = `tiny${fuseQkv ? '_fused_qkv' : ''}${minPart !== 128 ? `_split${minPart}` : ''}`;
    results[name] = {
      graphs_captured: runner.graphs!.captures,
      graph_replays: runner.graphs!.replays,
      replayed_steps: { capture_run: capture.replayedSteps, replay_run: replay.replayedSteps, batch1_run: oneGraph.replayedSteps },
      eager_vs_capture_run: sameTokens(eager.outputs, capture.outputs),
      eager_vs_replay_run: sameTokens(eager.outputs, replay.outputs),
      batch1_eager_vs_graph: sameTokens(oneEager.outputs, oneGraph.outputs),
    };
    log(`${name}: ${JSON.stringify(results[name])}`);
    runner.close();
  }
}

function roofline(w: ModelWeights): void {
  Object.assign(results, measureRoofline(w.config));
}

if (mode === '7b') {
  const w = randomWeights(modelConfig('llama2-7b'), 1);
  const numBlocks = 2400;
  roofline(w);
  log(`roofline: ${results.llama7b_roofline_batch1_ms} ms at ${results.copy_bandwidth_tb_per_s} TB/s`);
  for (const fuseQkv of [false, true]) {
    const runner = new LlamaRunner(w, { backend: 'gpu', dtype: 'bf16', kv: { numBlocks, pageSizeTokens: page }, maxNumBatchedTokens: 8192, maxNumSeqs: 64, cudaGraphs: true, fuseQkv });
    await batches(runner, numBlocks, `llama7b${fuseQkv ? '_fused_qkv' : ''}`, fuseQkv ? [1] : [1, 8, 64]);
    results[`llama7b${fuseQkv ? '_fused_qkv' : ''}_graphs_captured`] = runner.graphs!.captures;
    runner.close();
  }
}
// ---- 7b-opt: the default path vs the optimized one (graphs + fused q/k/v + gemv) -------------
/** Teacher-forced logits: the prompt's last token, then `tokens` fed one decode step at a time. */
function teacherForced(runner: LlamaRunner, prompt: Int32Array, tokens: readonly number[] | null, steps: number): { logits: Float32Array; tokens: number[] } {
  const V = runner.vocabSize;
  const table = Array.from({ length: Math.ceil((prompt.length + steps + 1) / page) }, (_, i) => i);
  const out = new Float32Array((steps + 1) * V);
  const picked: number[] = [];
  let row = runner.forwardLogits([{ tokenIds: prompt, contextTokens: 0, blockTable: table, samples: true }]);
  for (let s = 0; ; s++) {
    out.set(row, s * V);
    let best = 0;
    for (let j = 1; j < V; j++) if (row[j] > row[best]) best = j;
    picked.push(best);
    if (s === steps) break;
    const t = tokens !== null ? tokens[s] : best;
    row = runner.forwardLogits([{ tokenIds: Int32Array.of(t), contextTokens: prompt.length + s, blockTable: table, samples: true }]);
  }
  return { logits: out, tokens: picked };
}

/** Eager and graph decode runs at each batch size; returns the last graph run's greedy outputs. */
async function batches(runner: LlamaRunner, numBlocks: number, name: string, list: readonly number[]): Promise<Map<number, number[]>> {
  let last = new Map<number, number[]>();
  for (const b of list) {
    const lens = Array.from({ length: b }, () => ({ prompt: 128, output: 128 }));
    const warm = Array.from({ length: b }, () => ({ prompt: 128, output: 16 }));
    runner.useGraphs = false;
    await bench(runner, numBlocks, 64, warm); // tunes the GEMM shapes
    const eager = await bench(runner, numBlocks, 64, lens);
    runner.useGraphs = true;
    await bench(runner, numBlocks, 64, warm); // captures the bucket's graph (context bucket 256)
    const graph = await bench(runner, numBlocks, 64, lens);
    const e = decodeStats(eager, b);
    const g = decodeStats(graph, b);
    const r = {
      eager: e,
      graphs: g,
      graph_gpu_over_eager_gpu: g.step_gpu_ms_median / e.step_gpu_ms_median,
      graph_wall_over_roofline: b === 1 ? g.step_wall_ms_median / (results.llama7b_roofline_batch1_ms as number) : undefined,
      tokens_eager_vs_graphs: sameTokens(eager.outputs, graph.outputs),
    };
    results[`${name}_batch${b}`] = r;
    log(`${name}_batch${b}: ${JSON.stringify(r)}`);
    last = graph.outputs;
  }
  return last;
}

/** The 7B modes' weights, KV size and prompt, after the roofline is measured. */
function setup7b(): { w: ModelWeights; numBlocks: number; prompt: Int32Array } {
  const w = randomWeights(modelConfig('llama2-7b'), 1);
  roofline(w);
  log(`roofline: ${results.llama7b_roofline_batch1_ms} ms at ${results.copy_bandwidth_tb_per_s} TB/s`);
  return { w, numBlocks: 2400, prompt: Int32Array.from({ length: 32 }, (_, i) => (i * 7919 + 11) % 32000) };
}

/** Teacher-forced logits of a path against the reference path's: largest difference and argmax agreement. */
function logitsAgainst(tf: { logits: Float32Array; tokens: number[] }, ref: { logits: Float32Array; tokens: number[] }) {
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < tf.logits.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(tf.logits[i] - ref.logits[i]));
    maxRef = Math.max(maxRef, Math.abs(ref.logits[i]));
  }
  return { steps_compared: tf.tokens.length, max_abs: maxAbs, relative_max_abs_over_max_logit: maxAbs / maxRef, teacher_forced_argmax_agree: tf.tokens.filter((t, i) => t === ref.tokens[i]).length };
}

if (mode === '7b-final') {
  // The default path, then graphs + fused q/k/v with the shortest decode split 128, 64 and 32
  // (batch 1), then the fastest of those at batch 8 and 64; logits of each against the default's.
  const { w, numBlocks, prompt } = setup7b();
  const mk = (fuseQkv: boolean, minPart: number) =>
    new LlamaRunner(w, { backend: 'gpu', dtype: 'bf16', kv: { numBlocks, pageSizeTokens: page }, maxNumBatchedTokens: 8192, maxNumSeqs: 64, cudaGraphs: true, fuseQkv, decodeMinPartitionTokens: minPart });
  const base = mk(false, 128);
  const ref = teacherForced(base, prompt, null, 8);
  await batches(base, numBlocks, 'llama7b_default', [1]);
  base.close();
  let best = { minPart: 128, gpuMs: Infinity };
  for (const minPart of [128, 64, 32]) {
    const runner = mk(true, minPart);
    const tf = teacherForced(runner, prompt, ref.tokens, 8);
    const name = `llama7b_fused_split${minPart}`;
    results[`${name}_vs_default_logits`] = logitsAgainst(tf, ref);
    log(`${name} vs default logits: ${JSON.stringify(results[`${name}_vs_default_logits`])}`);
    await batches(runner, numBlocks, name, [1]);
    const g = (results[`${name}_batch1`] as { graphs: { step_gpu_ms_median: number } }).graphs.step_gpu_ms_median;
    if (g < best.gpuMs) best = { minPart, gpuMs: g };
    runner.close();
  }
  results.llama7b_best_split = best.minPart;
  const runner = mk(true, best.minPart);
  await batches(runner, numBlocks, `llama7b_fused_split${best.minPart}`, [8, 64]);
  runner.close();
}

if (mode === '7b-fused') {
  // The fused one-row decode (LlamaModel.fuseDecode, PDL on and off) against run7's best path
  // (graphs + fused q/k/v + 32-token split), batch 1; logits of each against the default path's.
  const { w, numBlocks, prompt } = setup7b();
  const mk = (fuseQkv: boolean, fuseDecode: boolean, minPart: number) =>
    new LlamaRunner(w, { backend: 'gpu', dtype: 'bf16', kv: { numBlocks, pageSizeTokens: page }, maxNumBatchedTokens: 8192, maxNumSeqs: 64, cudaGraphs: true, fuseQkv, fuseDecode, decodeMinPartitionTokens: minPart });
  const base = mk(false, false, 128);
  const ref = teacherForced(base, prompt, null, 8);
  base.close();
  const variants = [
    { name: 'llama7b_fused_qkv_split32', fuseQkv: true, fuseDecode: false, pdl: true },
    { name: 'llama7b_fuse_decode_split32', fuseQkv: false, fuseDecode: true, pdl: true },
    { name: 'llama7b_fuse_decode_nopdl_split32', fuseQkv: false, fuseDecode: true, pdl: false },
    { name: 'llama7b_fuse_decode_rope_in_attention_split32', fuseQkv: false, fuseDecode: true, pdl: true, ropeInAttention: true },
    { name: 'llama7b_fuse_decode_l2_prefetch_split32', fuseQkv: false, fuseDecode: true, pdl: true, l2Prefetch: true },
    { name: 'llama7b_fuse_decode_l2_prefetch_nopdl_split32', fuseQkv: false, fuseDecode: true, pdl: false, l2Prefetch: true },
    { name: 'llama7b_fuse_decode_l2_prefetch_gateup16m_split32', fuseQkv: false, fuseDecode: true, pdl: true, l2Prefetch: true, gateUpBytes: 16 << 20 },
  ];
  const graphOutputs: Map<number, number[]>[] = [];
  for (const v of variants) {
    const runner = mk(v.fuseQkv, v.fuseDecode, 32);
    runner.model.decodePdl = v.pdl;
    runner.model.decodeRopeInAttention = v.ropeInAttention === true;
    runner.model.decodeL2Prefetch = v.l2Prefetch === true;
    runner.model.decodeL2PrefetchGateUpBytes = v.gateUpBytes ?? 0;
    const tf = teacherForced(runner, prompt, ref.tokens, 8);
    results[`${v.name}_vs_default_logits`] = logitsAgainst(tf, ref);
    log(`${v.name} vs default logits: ${JSON.stringify(results[`${v.name}_vs_default_logits`])}`);
    graphOutputs.push(await batches(runner, numBlocks, v.name, [1]));
    runner.close();
  }
  results.greedy_tokens_fuse_decode_vs_fused_qkv = sameTokens(graphOutputs[0], graphOutputs[1]);
  results.greedy_tokens_fuse_decode_pdl_vs_nopdl = sameTokens(graphOutputs[1], graphOutputs[2]);
  results.greedy_tokens_fuse_decode_rope_in_attention_vs_kernel = sameTokens(graphOutputs[3], graphOutputs[1]);
  // The prefetch is a hint: its greedy tokens must be the plain form's, every one.
  results.greedy_tokens_fuse_decode_l2_prefetch_vs_none = sameTokens(graphOutputs[4], graphOutputs[1]);
  results.greedy_tokens_fuse_decode_l2_prefetch_nopdl_vs_none = sameTokens(graphOutputs[5], graphOutputs[1]);
  results.greedy_tokens_fuse_decode_l2_prefetch_gateup_vs_none = sameTokens(graphOutputs[6], graphOutputs[1]);
  log(`greedy tokens, L2 prefetch vs none: ${JSON.stringify(results.greedy_tokens_fuse_decode_l2_prefetch_vs_none)}, without PDL ${JSON.stringify(results.greedy_tokens_fuse_decode_l2_prefetch_nopdl_vs_none)}, o prefetching gate/up too ${JSON.stringify(results.greedy_tokens_fuse_decode_l2_prefetch_gateup_vs_none)}`);
  log(`greedy tokens (graphs, batch 1, 128 steps): fuse-decode vs fused q/k/v ${JSON.stringify(results.greedy_tokens_fuse_decode_vs_fused_qkv)}, pdl vs none ${JSON.stringify(results.greedy_tokens_fuse_decode_pdl_vs_nopdl)}, rope in attention vs rope kernel ${JSON.stringify(results.greedy_tokens_fuse_decode_rope_in_attention_vs_kernel)}`);
}

if (mode === 'prof') {
  const w = randomWeights(modelConfig('llama2-7b'), 1);
  const g = gpu();
  const stream = g.createStream();
  const base = gpuDevice('bf16', 2 ** 30, stream);
  const profiler = new OpProfiler(base, stream);
  const dev = profiler.dev;
  const model = new LlamaModel(dev, w, { numBlocks: 256, pageSizeTokens: page });
  model.decodeMinPartitionTokens = Number(process.env.STRATOS_PROF_MIN_SPLIT ?? 128);
  results.prof_decode_min_split_tokens = model.decodeMinPartitionTokens;
  const profile: Record<string, unknown> = {};
  for (const batch of [1, 8]) {
    const tables = Array.from({ length: batch }, (_, i) => Array.from({ length: 16 }, (_, p) => i * 16 + p));
    dev.resetScratch();
    model.forward({ seqs: tables.map((t, i) => ({ tokenIds: Int32Array.from({ length: 128 }, (_, j) => (i * 7 + j) % 32000), contextTokens: 0, blockTable: t, samples: true })), blockCopies: [] });
    // Event pairs serialize the kernels, so PDL is off here: each pair times its kernel alone.
    model.decodePdl = false;
    for (const variant of ['', '_fused_qkv', '_fuse_decode'] as const) {
      model.fuseQkv = variant === '_fused_qkv';
      model.fuseDecode = variant === '_fuse_decode';
      const perStep: Map<string, OpTime>[] = [];
      const spans: number[] = [];
      for (let s = 0; s < 7; s++) {
        const seqs: ForwardSeq[] = tables.map((t) => ({ tokenIds: Int32Array.of(5 + s), contextTokens: 128 + s, blockTable: t, samples: true }));
        dev.resetScratch();
        // Steps 0-1 warm up (GEMM tuning) unrecorded.
        if (s < 2) model.forward({ seqs, blockCopies: [] });
        else profiler.record(() => model.forward({ seqs, blockCopies: [] }));
        g.sync(stream);
        if (s < 2) continue;
        perStep.push(profiler.times());
        spans.push(profiler.spanUs());
      }
      const { table, sum } = opTable(perStep);
      profile[`batch${batch}${variant}`] = { kernel_us_sum: Math.round(sum), first_to_last_event_us_median: Math.round(median(spans)), ops: table };
      log(`prof batch ${batch}${variant}: kernels ${Math.round(sum)} us, span ${Math.round(median(spans))} us: ${JSON.stringify(table)}`);
    }
  }
  results.profile = profile;
  profiler.free();
  base.free();
}
writeFileSync(join(outDir, `engine-gpu7-${mode}${mode === 'prof' && process.env.STRATOS_PROF_MIN_SPLIT !== undefined ? `-split${process.env.STRATOS_PROF_MIN_SPLIT}` : ''}.json`), JSON.stringify(results, null, 2) + '\n');
