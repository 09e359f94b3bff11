// GPU check for issue 7's 13B miss: where a prefill step's time goes, op by op, on the 7B and 13B
// shapes, against the same ops replayed back to back (as the calibration microbenchmarks run
// them), and the whole forward cool (after idle) and hot (after sustained prefill).
// Bundled by bundle9.mjs to dist-prof/run9.mjs; run on the GPU machine by run9.sh.
// Usage: node dist-prof/run9.mjs OUT_DIR [TOKENS...]   (default 512, the TODO 8 prompt)
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gpu } from '../../../native/index.js';
import { gpuDevice } from '../device.js';
import { LlamaModel, type ForwardSeq } from '../llama.js';
import { modelConfig } from '../model-config.js';
import { randomWeights } from '../weights.js';
import { median, OpProfiler, opTable, type OpTime } from './op-profiler.js';

const outDir = process.argv[2] ?? 'out';
const tokenCounts = process.argv.length > 3 ? process.argv.slice(3).map(Number) : [512];
mkdirSync(outDir, { recursive: true });
const g = gpu();
const results: Record<string, unknown> = { device: g.status.name, command: `node dist-prof/run9.mjs OUT ${tokenCounts.join(' ')} (engine/runtime/gpu-check/run9.sh)`, tokens: tokenCounts };
const log = (msg: string): void => console.log(msg);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const page = 16;
const REPS = 5;

for (const name of ['llama2-7b', 'llama2-13b'] as const) {
  const cfg = modelConfig(name);
  const stream = g.createStream();
  const base = gpuDevice('bf16', 2 ** 31, stream);
  const profiler = new OpProfiler(base, stream);
  const dev = profiler.dev;
  const maxTokens = Math.max(...tokenCounts);
  const model = new LlamaModel(dev, randomWeights(cfg, 1), { numBlocks: Math.ceil(maxTokens / page) + 8, pageSizeTokens: page });
  const perModel: Record<string, unknown> = {};
  for (const tokens of tokenCounts) {
    const seq: ForwardSeq = {
      tokenIds: Int32Array.from({ length: tokens }, (_, j) => (j * 7 + 3) % cfg.vocabSize),
      contextTokens: 0,
      blockTable: Array.from({ length: Math.ceil(tokens / page) }, (_, p) => p),
      samples: true,
    };
    const forward = (): void => {
      dev.resetScratch();
      model.forward({ seqs: [seq], blockCopies: [] });
    };
    // Whole forward between two events (launch gaps included), as the engine's gpuUs times it.
    const timed = (): number => {
      dev.resetScratch();
      base.beginTiming();
      model.forward({ seqs: [seq], blockCopies: [] });
      return base.endTimingMs() ?? Number.NaN; // never null on the GPU device
    };
    forward();
    forward();
    base.sync();
    // Cool: queued behind ~200 ms of memory-bound copies (the clock up, the compute heat gone: the
    // H200's power state has a time constant of ~16 ms), as a prefill between decode steps finds it.
    // Idle: after 300 ms with nothing queued. Hot: after ~400 ms of back-to-back forwards.
    const coolMs: number[] = [];
    for (let r = 0; r < REPS; r++) {
      profiler.queueBusy(200);
      coolMs.push(timed());
    }
    const idleMs: number[] = [];
    for (let r = 0; r < REPS; r++) {
      await sleep(300);
      idleMs.push(timed());
    }
    const t0 = performance.now();
    let hotRuns = 0;
    while (performance.now() - t0 < 400) {
      forward();
      base.sync();
      hotRuns++;
    }
    const hotMs: number[] = [];
    for (let r = 0; r < REPS; r++) {
      forward();
      hotMs.push(timed());
    }
    const inForward: Map<string, OpTime>[] = [];
    const spans: number[] = [];
    for (let r = 0; r < REPS; r++) {
      profiler.record(forward);
      g.sync(stream);
      inForward.push(profiler.times());
      spans.push(profiler.spanUs());
    }
    const replayed: Map<string, OpTime>[] = [];
    for (let r = 0; r < REPS; r++) {
      profiler.replay('gemm');
      g.sync(stream);
      replayed.push(profiler.times());
    }
    const a = opTable(inForward);
    const b = opTable(replayed);
    const gemmRatio: Record<string, number> = {};
    for (const label of Object.keys(b.table)) gemmRatio[label] = Math.round(((a.table[label].us_total as number) / (b.table[label].us_total as number)) * 1000) / 1000;
    perModel[`tokens${tokens}`] = {
      forward_gpu_ms_cool_median: median(coolMs),
      forward_gpu_ms_hot_median: median(hotMs),
      forward_gpu_ms_after_idle_median: median(idleMs),
      hot_warmup_forwards: hotRuns,
      forward_gpu_ms_cool: coolMs,
      forward_gpu_ms_hot: hotMs,
      forward_gpu_ms_after_idle: idleMs,
      kernel_us_sum: Math.round(a.sum),
      first_to_last_event_us_median: Math.round(median(spans)),
      ops: a.table,
      gemm_replayed_back_to_back: b.table,
      gemm_in_forward_over_replayed: gemmRatio,
    };
    log(`${name} ${tokens} tokens: forward cool ${median(coolMs).toFixed(2)} ms, after idle ${median(idleMs).toFixed(2)} ms, hot ${median(hotMs).toFixed(2)} ms; kernels ${Math.round(a.sum)} us; GEMM in-forward / back-to-back ${JSON.stringify(gemmRatio)}`);
    log(`  ops: ${JSON.stringify(a.table)}`);
  }
  results[name] = perModel;
  profiler.free();
  base.free();
}
writeFileSync(join(outDir, 'engine-gpu9-prefill-prof.json'), JSON.stringify(results, null, 2) + '\n');
