// experiments/results/todo/README.md, written from the committed CSVs (todoNN/todo.csv) and the
// engine's committed summary.json files: every figure in it is read from a file, none typed in.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCsv } from './columns.js';

type Row = Record<string, string>;

/** A column of a headline table: its header and the todo.csv column it reads. */
type Column = readonly [header: string, column: string];

type Summary = Record<string, any>;

/** A column of the side-by-side table: its header, the twin's todo.csv column, and the same figure in the engine's summary.json. */
type EngineColumn = readonly [header: string, column: string, fromSummary: (s: Summary) => unknown];

/** An engine run of the same comparison: its committed summary.json and the simulated point it sits beside. */
interface EngineRun {
  readonly label: string;
  readonly summary: string;
  /** The todo.csv `point` of the simulated twin (same workload, flags and seed). */
  readonly point: string;
}

interface TodoEntry {
  readonly n: number;
  readonly title: string;
  readonly mapping: string;
  readonly columns: readonly Column[];
  /** Sentences computed from this TODO's rows (and other TODOs' rows, by number). */
  readonly derive?: (rows: Row[], rowsOf: (n: number) => Row[] | null) => string[];
  readonly engine: readonly EngineRun[];
  /** The side-by-side table's columns (default: throughput and latency). */
  readonly engineColumns?: readonly EngineColumn[];
  /** What the engine measured in a gpu-check run (no summary.json, so no simulated twin): lines written from its JSON. */
  readonly engineChecks?: readonly EngineCheck[];
  /** What the engine has not measured yet for this comparison (a marked gap, no number). */
  readonly engineMissing?: string;
  readonly notes?: readonly string[];
}

/** Figures the engine measured outside `stratos engine bench`: a committed gpu-check JSON and the lines read from it. */
interface EngineCheck {
  readonly file: string;
  readonly lines: (json: Summary) => string[];
}

const LATENCY: Column[] = [['output tok/s', 'output_tokens_per_s'], ['TTFT p99 ms', 'ttft_ms_p99'], ['ITL p50 ms', 'itl_ms_p50'], ['ITL p99 ms', 'itl_ms_p99'], ['TPOT mean ms', 'tpot_ms_mean']];
const H200_TODO8 = 'gpu=h200 workload.durationS=21 workload.inputTokens=constant:512 cost.samplingMethod=greedy';
const BENCH = 'engine/results/bench-gpu';
const GPU_CHECK5 = 'engine/results/gpu-check/run5';
const ENGINE_LATENCY: EngineColumn[] = [
  ['output tok/s', 'output_tokens_per_s', (s) => s.throughput_output_tokens_per_s],
  ['TTFT p99 ms', 'ttft_ms_p99', (s) => s.ttft_ms?.p99],
  ['ITL p99 ms', 'itl_ms_p99', (s) => s.itl_ms?.p99],
  ['TPOT mean ms', 'tpot_ms_mean', (s) => s.tpot_ms?.mean],
];
const H200_TODO4 = 'gpu=h200 workload.rate=8 workload.durationS=5 workload.outputTokens=lognormal:847:0.5:1536 cost.samplingMethod=greedy';
const H200_TODO8_CHUNKED = 'gpu=h200 workload.durationS=21 workload.inputTokens=constant:512 cost.samplingMethod=greedy policy=chunked scheduler.maxNumBatchedTokens=256';
const H200_TODO10 = 'gpu=h200 workload.durationS=10 workload.inputTokens=constant:512 workload.tenants=[{"name":"default"}] cost.samplingMethod=greedy';

const num = (s: string | undefined): number => (s === undefined || s === '' ? NaN : Number(s));
function fmt(x: number): string {
  if (!Number.isFinite(x)) return '—';
  const digits = Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : Math.abs(x) >= 1 ? 2 : 3;
  return x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}
const ratio = (a: number, b: number): string => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${fmt(a / b)}×` : '—');
const find = (rows: Row[], point: string): Row | undefined => rows.find((r) => r.point === point);
/** TODO 5 on the engine: one decode step with the fused GPU sampler vs the logits copied to the host and sampled there. */
function samplingLines(json: Summary): string[] {
  const runs = (json.todo5_cpu_vs_gpu_sampling ?? []) as Summary[];
  return [
    '| batch | sampling | GPU sampling step ms | CPU sampling step ms | host sampling ms per token | extra ms per token | tokens equal |',
    '|---|---|---|---|---|---|---|',
    ...runs.map(
      (r) =>
        `| ${r.batch} | ${r.sampling} | ${fmt(r.gpu_sampling?.step_wall_ms_median)} | ${fmt(r.cpu_sampling?.step_wall_ms_median)} | ${fmt(r.cpu_sampling?.host_sample_ms_per_token_median)} | ${fmt(r.cpu_minus_gpu_per_token_ms)} | ${r.tokens_agree?.tokens_equal} / ${r.tokens_agree?.tokens_total} |`,
    ),
  ];
}

/** TODO 9 on the engine: 3 LoRA tenants in one batch vs the base model, offline. */
function loraLines(json: Summary): string[] {
  const t = (json.todo9_lora_vs_base ?? {}) as Summary;
  const base = t.base?.output_tokens_per_s;
  const runs: [string, Summary | undefined][] = [
    ['base model', t.base],
    ['3 LoRA tenants, adapters loaded in the timed window', t.lora_3_tenants_with_loads],
    ['same, repeated (a fresh scheduler: loads the 3 adapters again)', t.lora_3_tenants_resident],
  ];
  const m = (t.memory ?? {}) as Summary;
  return [
    '| run | output tokens | output tok/s | decode step GPU ms (median) | vs base | adapter loads |',
    '|---|---|---|---|---|---|',
    ...runs.map(([label, r]) => `| ${label} | ${r?.output_tokens} | ${fmt(r?.output_tokens_per_s)} | ${fmt(r?.step_gpu_ms_median)} | ${ratio(r?.output_tokens_per_s, base)} | ${r?.slot_loads} |`),
    '',
    `Adapter memory on the engine: ${fmt(m.one_adapter_bytes / 2 ** 30)} GiB per rank-16 q/k/v/o adapter, ${fmt(m.lora_slot_bytes_4_slots_rank16_qkvo / 2 ** 30)} GiB for 4 slots, ${pct(m.lora_fraction_of_weights)} of the ${fmt(m.weights_bytes / 2 ** 30)} GiB of base weights.`,
  ];
}

const pct = (x: unknown): string => (typeof x === 'number' && Number.isFinite(x) ? `${fmt(100 * x)}%` : '—');

/** TODO 1–2 on the engine: no KV cache (every step a full forward) vs the paged KV cache, same requests, greedy. */
function noKvCacheLines(json: Summary): string[] {
  const runs = (json.todo1_2_no_kv_cache_vs_kv_cache ?? []) as Summary[];
  return [
    '| requests × prompt tokens | output tokens each | KV cache tok/s | no KV cache tok/s | KV cache / no KV cache | decode step ms (median wall), cache vs none | greedy tokens equal |',
    '|---|---|---|---|---|---|---|',
    ...runs.map(
      (r) =>
        `| ${r.requests} × ${r.prompt_tokens} | ${r.output_tokens_each} | ${fmt(r.kv_cache?.output_tokens_per_s)} | ${fmt(r.no_kv_cache?.output_tokens_per_s)} | ${ratio(r.kv_cache?.output_tokens_per_s, r.no_kv_cache?.output_tokens_per_s)} | ${fmt(r.kv_cache?.step_wall_ms_median)} vs ${fmt(r.no_kv_cache?.step_wall_ms_median)} | ${r.tokens_agree?.tokens_equal} / ${r.tokens_agree?.tokens_total} |`,
    ),
  ];
}

const TODOS: readonly TodoEntry[] = [
  {
    n: 1,
    title: 'naive generation without a KV cache',
    mapping:
      'One 13B sequence at a time on an A100-80GB (batch 1), `kv.cache: none`: every decode step is a forward over the whole context (sim/cost/no-kv-cache.ts), at prompt lengths 128–3,968 and 128 generated tokens. Tokens/s per sequence = 1000 / mean TPOT. Memory (model in sim/config.ts): nothing is held between steps; a step holds one layer\'s K and V of the sequence at a time (the cache\'s size / 40 layers).',
    columns: [['sequence tokens', 'seq_tokens'], ['tokens/s per sequence', 'tokens_per_s_per_seq'], ['TPOT mean ms', 'tpot_ms_mean'], ['KV held GiB', 'kv_held_gib_peak'], ['K/V of one layer GiB (transient)', 'kv_transient_gib_peak']],
    engine: [],
    engineChecks: [{ file: `${GPU_CHECK5}/engine-gpu5-13b.json`, lines: noKvCacheLines }],
    notes: [
      'The engine\'s figures are the 13B shape (random bf16 weights) on one H200 with 32 output tokens per request (engine/runtime/gpu-check/run5.ts, mode 13b), not the A100 and 128 tokens above: compare the trend with prompt length (the cache\'s gain grows with the context the naive step recomputes), not the figures. Tokens/s there is output tokens over the run\'s wall time, not 1000 / TPOT. Greedy tokens differ from the cached path at batch 8 only through bf16 rounding of a different kernel (see engine/results/gpu-check/README.md, run5).',
    ],
  },
  {
    n: 2,
    title: 'the standard KV cache',
    mapping: 'TODO 1\'s requests with `kv.cache: keep` (K/V kept in 16-token pages, one token fed per step). The speedup and memory columns join this sweep with todo01 by sequence length.',
    columns: [['sequence tokens', 'seq_tokens'], ['tokens/s per sequence', 'tokens_per_s_per_seq'], ['TPOT mean ms', 'tpot_ms_mean'], ['KV held GiB (peak)', 'kv_held_gib_peak']],
    derive: (rows, rowsOf) => {
      const naive = rowsOf(1);
      if (naive === null) return ['Speedup over TODO 1: todo01 has not run (it needs kv.cache = none wired into sim/simulation.ts; `npm run todo -- 1`).'];
      return [
        '| sequence tokens | KV cache tok/s | naive tok/s | speedup | KV held GiB, cache vs naive |',
        '|---|---|---|---|---|',
        ...rows.map((r) => {
          const n = naive.find((x) => x.seq_tokens === r.seq_tokens);
          return `| ${r.seq_tokens} | ${fmt(num(r.tokens_per_s_per_seq))} | ${fmt(num(n?.tokens_per_s_per_seq))} | ${ratio(num(r.tokens_per_s_per_seq), num(n?.tokens_per_s_per_seq))} | ${fmt(num(r.kv_held_gib_peak))} vs ${fmt(num(n?.kv_held_gib_peak))} |`;
        }),
      ];
    },
    engine: [],
    engineChecks: [{ file: `${GPU_CHECK5}/engine-gpu5-13b.json`, lines: noKvCacheLines }],
    notes: ['As in TODO 1, the engine\'s rows are H200 with 32 output tokens per request, not the A100 and 128 tokens simulated here.'],
  },
  {
    n: 3,
    title: 'page table and block allocator: page size',
    mapping:
      'The shared paged allocator (engine/policy/paged-allocator.ts) at 16, 32 and 64 tokens per page and the contiguous allocator (4,096 tokens reserved per request), case-study lengths (prompts log-normal median 600, outputs median 847), 1 and 2 req/s on one 13B A100 replica. KV waste = share of reserved token slots holding no token (time mean): internal fragmentation of the last page, or the unused tail of a contiguous reservation.',
    columns: [['point', 'point'], ['KV waste', 'kv_waste_mean'], ['KV utilization mean', 'kv_utilization_mean'], ['running batch (mean)', 'batch_size_mean_busy'], ['preemptions', 'preemptions'], ['output tok/s', 'output_tokens_per_s'], ['TTFT p99 ms', 'ttft_ms_p99']],
    engine: [],
    engineMissing:
      'engine: page sizes of 32 and 64 tokens not measured (the engine runs 16-token pages only); its contiguous baseline has run on TODO 4\'s burst, not on this workload (engine/results/bench-gpu/run5, side by side in TODO 4)',
  },
  {
    n: 4,
    title: 'memory efficiency: 50 concurrent requests, contiguous vs paged',
    mapping:
      'A Poisson burst of about 50 requests (1,000 req/s for 50 ms) with 512-token prompts and outputs log-normal, median 847 tokens, on one 13B A100 replica: contiguous KV (each request reserves 4,096 tokens) vs paged (16-token pages). Effective concurrency = mean running batch while busy. The two H200 rows are the engine\'s run of the same comparison (engine/results/bench-gpu run5) with its workload and flags.',
    columns: [['point', 'point'], ['requests', 'requests'], ['KV reserved GiB (peak)', 'kv_reserved_gib_peak'], ['KV waste', 'kv_waste_mean'], ['running batch (mean)', 'batch_size_mean_busy'], ['output tok/s', 'output_tokens_per_s'], ['E2E p99 ms', 'e2e_ms_p99']],
    derive: (rows) => {
      // The A100 burst (the H200 rows are the engine's twins, in the side-by-side table).
      const c = rows.find((r) => r.kv_allocator === 'contiguous' && r.gpu !== 'h200');
      const p = rows.find((r) => r.kv_allocator === 'paged' && r.gpu !== 'h200');
      if (!c || !p) return [];
      return [
        `Effective concurrency, paged / contiguous: ${ratio(num(p.batch_size_mean_busy), num(c.batch_size_mean_busy))} (mean running batch ${fmt(num(p.batch_size_mean_busy))} vs ${fmt(num(c.batch_size_mean_busy))}); share of reserved KV holding tokens: ${fmt(100 * (1 - num(p.kv_waste_mean)))}% vs ${fmt(100 * (1 - num(c.kv_waste_mean)))}%; output throughput ${ratio(num(p.output_tokens_per_s), num(c.output_tokens_per_s))}.`,
      ];
    },
    engine: [
      { label: 'run5: contiguous (`--allocator contiguous`)', summary: `${BENCH}/run5/todo4-contiguous/summary.json`, point: `${H200_TODO4} kv.allocator=contiguous` },
      { label: 'run5: paged', summary: `${BENCH}/run5/todo4-paged/summary.json`, point: `${H200_TODO4} kv.allocator=paged` },
    ],
    engineColumns: [
      ['requests', 'requests', (s) => s.requests],
      ['KV waste', 'kv_waste_mean', (s) => s.kv?.waste_mean],
      ['KV utilization peak', 'kv_utilization_peak', (s) => s.kv?.utilization_peak],
      ['running batch (mean)', 'batch_size_mean_busy', (s) => s.concurrency?.batch_size_mean_busy],
      ['output tok/s', 'output_tokens_per_s', (s) => s.throughput_output_tokens_per_s],
      ['TTFT p99 ms', 'ttft_ms_p99', (s) => s.ttft_ms?.p99],
      ['E2E p99 ms', 'e2e_ms_p99', (s) => s.e2e_ms?.p99],
    ],
    notes: [
      'The engine\'s burst is gentler than the A100 rows (8 req/s for 5 s, outputs log-normal with sigma 0.5 capped at 1,536 tokens, on an H200 whose KV cache is larger): the H200 rows above are that workload with the engine\'s flags, priced by the measured H200 profile. On both, reserving 4,096 tokens per request caps how many requests run at once, so later arrivals queue (the contiguous rows\' TTFT p99).',
    ],
  },
  {
    n: 5,
    title: 'GPU vs CPU sampling',
    mapping:
      'Top-p sampling on the GPU (the calibrated fused sampler) vs on the host (the logits copied back, then the profile\'s measured host sampler, or the case study\'s 2 and 8 ms per token), under TODO 8\'s load (13B A100, λ = 10, continuous, batch ≤ 256). The two H200 rows are the engine\'s workload and flags (512-token prompts, 21 s, greedy), so they sit beside engine/results/bench-gpu run1 (host-side greedy) and run4 (GPU sampler).',
    columns: [['point', 'point'], ...LATENCY, ['running batch (mean)', 'batch_size_mean_busy']],
    engine: [
      { label: 'run1: host sampling', summary: `${BENCH}/run1/llama2-13b-todo8/summary.json`, point: `${H200_TODO8} cost.sampling=cpu` },
      { label: 'run4: GPU sampling', summary: `${BENCH}/run4/llama2-13b-todo8/summary.json`, point: `${H200_TODO8} cost.sampling=gpu` },
    ],
    engineChecks: [{ file: `${GPU_CHECK5}/engine-gpu5-13b.json`, lines: samplingLines }],
    notes: [
      'The per-token table is the engine\'s decode step alone (13B shape, H200, 128-token prompts, a fixed batch, median over the run\'s decode steps), not a served load: it prices the host sampler that the A100 rows\' `cost.sampling=cpu` stands for, against the case study\'s 2–8 ms per token. Host greedy is cheap per token but is paid once per row of the batch in every step.',
    ],
  },
  {
    n: 6,
    title: 'sampling strategies',
    mapping:
      'Greedy, temperature only, top-k and top-p on the GPU as the calibration profile prices them, alone (batch 1) and under TODO 8\'s load (batch ≤ 256). The simulator prices time only: output diversity (distinct n-grams), coherence and the probability distributions need real logits from the real engine and are not simulated.',
    columns: [['point', 'point'], ['TPOT mean ms', 'tpot_ms_mean'], ['ITL p50 ms', 'itl_ms_p50'], ['ITL p99 ms', 'itl_ms_p99'], ['output tok/s', 'output_tokens_per_s']],
    engine: [],
    engineMissing:
      'engine: not yet measured (the engine\'s bench runs are greedy; gpu-check run5 timed temperature 0.8 + top-p 0.9 for TODO 5 only; diversity and coherence are the engine\'s to measure)',
  },
  {
    n: 7,
    title: 'batching policies',
    mapping:
      'Static, continuous (prefill-first) and chunked prefill over 2, 6 and 10 req/s, 512-token prompts, 100–500 output tokens, one 13B A100 replica. The two H200 rows are the engine\'s workload and flags with host sampling, as engine/results/bench-gpu run1 (continuous) and run2 (chunked, 512-token budget) ran.',
    columns: [['point', 'point'], ...LATENCY, ['running batch (mean)', 'batch_size_mean_busy']],
    engine: [
      { label: 'run1: continuous', summary: `${BENCH}/run1/llama2-13b-todo8/summary.json`, point: 'gpu=h200 workload.durationS=21 cost.samplingMethod=greedy cost.sampling=cpu policy=continuous' },
      { label: 'run2: chunked, 512-token budget', summary: `${BENCH}/run2/llama2-13b-todo8-chunked/summary.json`, point: 'gpu=h200 workload.durationS=21 cost.samplingMethod=greedy cost.sampling=cpu policy=chunked scheduler.maxNumBatchedTokens=512' },
    ],
  },
  {
    n: 8,
    title: 'throughput under Poisson load, static vs continuous',
    mapping:
      'Poisson λ = 10 req/s for 120 s, 32-token prompts, 100–500 output tokens, 13B on an A100-80GB, batch ≤ 8 and ≤ 256: the settings of experiments/results/simulate (todo8-profile-*), which these rows reproduce. The H200 rows are the engine\'s runs of the TODO 8 shape (512-token prompts, 21 s, greedy, GPU sampling): continuous (engine/results/bench-gpu run3 and run4) and chunked prefill with a 256-token step budget at λ = 10 and 11 (run6).',
    columns: [['point', 'point'], ...LATENCY, ['TTFT p50 ms', 'ttft_ms_p50']],
    derive: (rows) => {
      const s = find(rows, 'policy=static scheduler.maxNumSeqs=256');
      const c = find(rows, 'policy=continuous scheduler.maxNumSeqs=256');
      return s && c ? [`Continuous / static at batch ≤ 256: output throughput ${ratio(num(c.output_tokens_per_s), num(s.output_tokens_per_s))}, p99 TTFT ${fmt(num(c.ttft_ms_p99))} vs ${fmt(num(s.ttft_ms_p99))} ms.`] : [];
    },
    engine: [
      { label: 'run4: continuous, GPU sampling', summary: `${BENCH}/run4/llama2-13b-todo8/summary.json`, point: `${H200_TODO8} policy=continuous scheduler.maxNumSeqs=256` },
      { label: 'run3: continuous, GPU sampling', summary: `${BENCH}/run3/llama2-13b-todo8/summary.json`, point: `${H200_TODO8} policy=continuous scheduler.maxNumSeqs=256` },
      { label: 'run6: chunked, 256-token budget, λ = 10', summary: `${BENCH}/run6/todo8-13b-chunked256-rate10/summary.json`, point: H200_TODO8_CHUNKED },
      { label: 'run6: chunked, 256-token budget, λ = 11', summary: `${BENCH}/run6/todo8-13b-chunked256-rate11/summary.json`, point: `${H200_TODO8_CHUNKED} workload.rate=11` },
    ],
    notes: [
      'run6 is the engine\'s check of the case study\'s targets (p99 TTFT ≤ 400 ms, p99 ITL ≤ 35 ms): chunked prefill with a 256-token step budget met both at λ = 10 and 11 (engine/results/bench-gpu/README.md, run6). The simulated twins here are priced by the default H200 profile; the simulator column of that README used experiments/validate/engine-terms-h200.yaml (the profile plus the engine terms `stratos validate` fitted), so its figures differ from these rows.',
      'The engine has not run static batching on this workload: static vs continuous side by side is engine: not yet measured (its only static run is TODO 10\'s baseline stack, with contiguous KV and host sampling as well).',
    ],
  },
  {
    n: 9,
    title: 'multi-tenant LoRA',
    mapping:
      'Three tenants, each with its own rank-16 adapter on q, k, v and o, served from one 13B base model under TODO 8\'s load, vs the base model alone; 8 adapter slots (all three resident) and 1 slot (adapters take turns). Adapter memory = rank × (in + out) × 2 bytes per projection and layer (sim/fleet/lora-registry.ts) × adapters resident.',
    columns: [['point', 'point'], ['adapters resident GiB', 'adapters_resident_gib'], ['base weights GiB', 'weights_gib'], ...LATENCY, ['preemptions', 'preemptions']],
    engine: [],
    engineChecks: [{ file: `${GPU_CHECK5}/engine-gpu5-13b-todo9-rerun.json`, lines: loraLines }],
    notes: [
      'The engine\'s LoRA figures are an offline batch (192 requests × 128 prompt + 128 output tokens, the 3 tenants round-robin so every batch mixes all three, 13B shape on an H200), not TODO 8\'s Poisson load on an A100 above: compare the relative cost of the adapters, not the throughput. The engine\'s loss against the base model is its unfused LoRA kernels (engine/results/gpu-check/README.md, run5); a LoRA served load (`stratos engine bench` with tenants) is engine: not yet measured.',
    ],
  },
  {
    n: 10,
    title: 'end to end: baseline vs optimized stack',
    mapping:
      'TODO 8\'s Poisson load with three LoRA tenants: the baseline (contiguous KV reserved at 4,096, host sampling with the measured sampler or the case study\'s 2 ms per token, static batching, one adapter slot; and the same with 8 slots) vs the optimized stack (paged KV, GPU sampling, continuous batching, 8 slots). The two H200 rows are the engine\'s end-to-end runs (engine/results/bench-gpu run5: the baseline by flag vs the defaults) with its workload and flags, without LoRA.',
    columns: [['point', 'point'], ...LATENCY, ['KV waste', 'kv_waste_mean'], ['running batch (mean)', 'batch_size_mean_busy']],
    derive: (rows) => {
      const base = rows.find((r) => r.policy === 'static' && !r.point.includes('cpuSamplingUsPerToken') && r.point.includes('lora.numSlots=1'));
      const opt = rows.find((r) => r.policy === 'continuous' && r.gpu !== 'h200');
      return base && opt ? [`Optimized / baseline (measured host sampler, one slot): output throughput ${ratio(num(opt.output_tokens_per_s), num(base.output_tokens_per_s))}, p99 TTFT ${fmt(num(opt.ttft_ms_p99))} vs ${fmt(num(base.ttft_ms_p99))} ms, p99 ITL ${fmt(num(opt.itl_ms_p99))} vs ${fmt(num(base.itl_ms_p99))} ms.`] : [];
    },
    engine: [
      { label: 'run5: baseline (`--policy static --allocator contiguous --sampling cpu`)', summary: `${BENCH}/run5/todo10-baseline/summary.json`, point: `${H200_TODO10} policy=static kv.allocator=contiguous cost.sampling=cpu` },
      { label: 'run5: optimized (paged, continuous, GPU sampling)', summary: `${BENCH}/run5/todo10-optimized/summary.json`, point: `${H200_TODO10} policy=continuous kv.allocator=paged cost.sampling=gpu` },
    ],
    engineColumns: [...ENGINE_LATENCY, ['KV waste', 'kv_waste_mean', (s) => s.kv?.waste_mean], ['running batch (mean)', 'batch_size_mean_busy', (s) => s.concurrency?.batch_size_mean_busy]],
    notes: [
      'The engine\'s end-to-end runs (run5) are the base model without LoRA, 10 s of Poisson λ = 10 with 512-token prompts on an H200; the two H200 rows are that workload and those flags. The LoRA half of the baseline (one adapter slot) is engine: not yet measured as a served load (see TODO 9 for the engine\'s offline LoRA cost).',
    ],
  },
];

function table(columns: readonly Column[], rows: Row[]): string[] {
  const cell = (r: Row, c: string): string => (c === 'point' ? `\`${r[c]}\`` : r[c] === '' || r[c] === undefined ? '—' : fmt(num(r[c])));
  return [`| ${columns.map(([h]) => h).join(' | ')} |`, `|${columns.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${columns.map(([, c]) => cell(r, c)).join(' | ')} |`)];
}

/** Side by side: the simulated twin's row and the engine's summary.json, read from their files. */
function engineTable(runs: readonly EngineRun[], columns: readonly EngineColumn[], rows: Row[], root: string): string[] {
  const value = (x: unknown): string => (typeof x === 'number' ? fmt(x) : '—');
  const out = [`| run | ${columns.map(([h]) => h).join(' | ')} | source |`, `|---|${columns.map(() => '---').join('|')}|---|`];
  for (const run of runs) {
    const twin = find(rows, run.point);
    const file = join(root, run.summary);
    if (twin) out.push(`| simulator, \`${run.point}\` | ${columns.map(([, c]) => fmt(num(twin[c]))).join(' | ')} | todo.csv |`);
    else out.push(`| simulator, \`${run.point}\` | not run (no such point in todo.csv) | ${columns.slice(1).map(() => '').join(' | ')} | |`);
    if (!existsSync(file)) {
      out.push(`| engine, ${run.label} | engine: not yet measured | ${columns.slice(1).map(() => '').join(' | ')} | ${run.summary} (absent) |`);
      continue;
    }
    const s = JSON.parse(readFileSync(file, 'utf8')) as Summary;
    out.push(`| engine, ${run.label} | ${columns.map(([, , get]) => value(get(s))).join(' | ')} | ${run.summary} |`);
  }
  return out;
}

/** The engine's gpu-check figures for this TODO, read from the committed JSON (or marked absent). */
function engineCheckLines(checks: readonly EngineCheck[], root: string): string[] {
  const out: string[] = [];
  for (const check of checks) {
    const file = join(root, check.file);
    if (!existsSync(file)) {
      out.push(`Real engine: **engine: not yet measured** (${check.file} absent).`, '');
      continue;
    }
    out.push(`Real engine (not a simulated workload: read from ${check.file}):`, '', ...check.lines(JSON.parse(readFileSync(file, 'utf8')) as Summary), '');
  }
  return out;
}

export function todoReadme(resultsDir: string, root: string): string {
  const rowsOf = (n: number): Row[] | null => {
    const file = join(resultsDir, `todo${String(n).padStart(2, '0')}`, 'todo.csv');
    return existsSync(file) ? readCsv(readFileSync(file, 'utf8')) : null;
  };
  const lines = [
    '# The notebook\'s comparisons (TODO 1–10), simulated',
    '',
    'Written by `npm run todo` (experiments/todo/run.ts) from the CSVs in this folder and the engine\'s committed',
    'summary.json files; do not edit by hand. Each TODO of the case study\'s notebook',
    '(../shared/seeds/003_…, section 3) is a `stratos sweep` config in experiments/todo/todoNN-*.yaml; `npm run todo -- N`',
    'runs one (`npm run todo` all ten, `--workers 2` on two cores, `--fresh` to start over; finished points are kept)',
    'into todoNN/: `results.csv` (the sweep\'s columns), `todo.csv` (the columns below, with memory in GiB and',
    'effective concurrency), `report.html` (`stratos report`) and `points/` (each point\'s summary.json).',
    'Steps are priced by the calibration profile (default cost model): the A100-80GB one, derived from the H200',
    'measurements, unless a row says `gpu=h200` (measured). Every run is deterministic (seed 1).',
    '',
  ];
  for (const t of TODOS) {
    const rows = rowsOf(t.n);
    lines.push(`## TODO ${t.n}: ${t.title}`, '', t.mapping, '', `    npm run todo -- ${t.n}`, '');
    if (rows === null) {
      lines.push(t.n === 1 ? 'Not run yet: `kv.cache: none` is not yet passed from sim/simulation.ts (buildCostModel) to createCostModel, so TODO 1 refuses to run rather than record cached-decode figures under a naive label.' : 'Not run yet.', '');
    } else {
      lines.push(...table(t.columns, rows), '');
      const derived = t.derive?.(rows, rowsOf) ?? [];
      if (derived.length > 0) lines.push(...derived, '');
    }
    if (t.engine.length > 0 && rows !== null) lines.push('Side by side with the real engine (same workload, flags and seed; H200):', '', ...engineTable(t.engine, t.engineColumns ?? ENGINE_LATENCY, rows, root), '');
    lines.push(...engineCheckLines(t.engineChecks ?? [], root));
    if (t.engineMissing) lines.push(`Real engine: **${t.engineMissing}**.`, '');
    for (const note of t.notes ?? []) lines.push(note, '');
  }
  return lines.join('\n');
}

export function writeTodoReadme(resultsDir: string, root: string): string {
  const file = join(resultsDir, 'README.md');
  writeFileSync(file, todoReadme(resultsDir, root));
  return file;
}
