// Issue 7's LoRA mix: the validation's prefill steps with adapters (results/h200 lora-mix-7b) run
// ~1.8 ms over their price when small (single adapter, 120-1,000 tokens: 5-11% low) and far under
// it when few of many tokens carry an adapter (the cost model prices LoRA as if every token did).
// This splits a 7B prefill step with adapters into base forward, LoRA kernels and launch gaps:
//   gpu        the forward between two events, launched as the engine launches it (host gaps included)
//   queued     the same, queued behind ~12 ms of copies (the host is ahead: no launch gaps)
//   kernels    the LoRA kernels' own time (op profiler: an event pair each, queued)
// for one sequence of T tokens on an adapter, on the base model, and T tokens split between a
// short adapter sequence and a long base one. Rank 16 on q, k, v, o (the validation's adapters).
// Bundled by bundle9.mjs to dist-prof/lora-steps.mjs. Usage: node dist-prof/lora-steps.mjs OUT_DIR
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gpu } from '../../../native/index.js';
import { gpuDevice } from '../device.js';
import { LlamaModel, type ForwardSeq } from '../llama.js';
import { randomAdapter } from '../lora/adapter.js';
import { LoraSlots } from '../lora/slots.js';
import { modelConfig } from '../model-config.js';
import { randomWeights } from '../weights.js';
import { median, OpProfiler } from './op-profiler.js';

const outDir = process.argv[2] ?? 'out';
mkdirSync(outDir, { recursive: true });
const g = gpu();
const PAGE = 16;
const REPS = 7;
const cfg = modelConfig('llama2-7b');
const stream = g.createStream();
const base = gpuDevice('bf16', 2 ** 31, stream);
const profiler = new OpProfiler(base, stream);
const dev = profiler.dev;
const model = new LlamaModel(dev, randomWeights(cfg, 1), { numBlocks: 4096 / PAGE + 16, pageSizeTokens: PAGE });
const slots = new LoraSlots(dev, cfg, { numSlots: 4, maxRank: 16, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] });
slots.load(0, randomAdapter(cfg, { name: 'a', seed: 3, rank: 16 }));
g.sync(stream);

/** Sequences of `lens` tokens, packed into consecutive pages; slot -1 is the base model. */
function seqs(parts: readonly { tokens: number; slot: number }[]): ForwardSeq[] {
  let page = 0;
  return parts.map(({ tokens, slot }, i) => {
    const pages = Math.ceil(tokens / PAGE);
    const table = Array.from({ length: pages }, (_, p) => page + p);
    page += pages;
    return { tokenIds: Int32Array.from({ length: tokens }, (_, j) => (j * 7 + 3 + i) % cfg.vocabSize), contextTokens: 0, blockTable: table, samples: true, adapterSlot: slot };
  });
}

const cases: { name: string; parts: { tokens: number; slot: number }[] }[] = [];
for (const t of [128, 512, 2048]) {
  cases.push({ name: `adapter ${t}`, parts: [{ tokens: t, slot: 0 }] });
  cases.push({ name: `base ${t}`, parts: [{ tokens: t, slot: -1 }] });
}
cases.push({ name: 'adapter 128 + base 1920', parts: [{ tokens: 128, slot: 0 }, { tokens: 1920, slot: -1 }] });
cases.push({ name: 'adapter 256 + base 3840', parts: [{ tokens: 256, slot: 0 }, { tokens: 3840, slot: -1 }] });

/** A case's forward, and the same forward between two events (queued: behind ~12 ms of copies). */
function runner(c: (typeof cases)[number]): { forward: () => void; timed: (queued: boolean) => number } {
  const input = { seqs: seqs(c.parts), blockCopies: [], lora: slots };
  const forward = (): void => {
    dev.resetScratch();
    model.forward(input);
  };
  const timed = (queued: boolean): number => {
    if (queued) profiler.queueBusy();
    base.beginTiming();
    forward();
    return base.endTimingMs() ?? Number.NaN;
  };
  return { forward, timed };
}

// Every case timed three times before any is measured: the first case measured in a fresh process
// ran 2-3.5 ms above its kernels' sum (run11 warps8: host-side warm-up, not the GPU), later ones did not.
const runners = cases.map(runner);
for (const r of runners) for (let i = 0; i < 3; i++) r.timed(false);
g.sync(stream);

const rows: Record<string, unknown>[] = [];
for (const [k, c] of cases.entries()) {
  const { forward, timed } = runners[k];
  const gpuMs: number[] = [];
  const queuedMs: number[] = [];
  const loraUs: number[] = [];
  const allUs: number[] = [];
  for (let r = 0; r < REPS; r++) {
    forward(); // the engine runs steps back to back: the GPU is warm, the host launches as it goes
    gpuMs.push(timed(false));
    queuedMs.push(timed(true));
    profiler.record(forward);
    g.sync(stream);
    let lora = 0;
    let all = 0;
    for (const [label, t] of profiler.times()) {
      all += t.us;
      if (label.startsWith('lora')) lora += t.us;
    }
    loraUs.push(lora);
    allUs.push(all);
  }
  const row = {
    case: c.name,
    gpu_ms: Math.round(median(gpuMs) * 1000) / 1000,
    queued_ms: Math.round(median(queuedMs) * 1000) / 1000,
    kernels_ms: Math.round(median(allUs)) / 1000,
    lora_kernels_ms: Math.round(median(loraUs)) / 1000,
  };
  rows.push(row);
  console.log(JSON.stringify(row));
}
writeFileSync(join(outDir, 'engine-lora-steps.json'), JSON.stringify({ device: g.status.name, command: 'node dist-prof/lora-steps.mjs OUT (engine/runtime/gpu-check/run10.sh lora)', rows }, null, 2) + '\n');
