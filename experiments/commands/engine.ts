// `stratos engine bench`: the real engine (or the fake runner) on the same workload configs and
// flags as `stratos simulate`, writing the same summary.json and requests.csv through the
// simulator's writers, plus the per-step log (steps.csv) the validation needs.
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { createScheduler } from '../../engine/policy/index.js';
import { RealClock, VirtualClock, type Clock } from '../../engine/runtime/clock.js';
import { Engine, type EngineObserver, type EngineRequest, type EngineRequestSource, type EngineStepRecord } from '../../engine/runtime/engine.js';
import { FakeRunner, type StepDurationFn } from '../../engine/runtime/fake-runner.js';
import { kvBytesPerToken, MODEL_CONFIG_NAMES, modelConfig, numParams } from '../../engine/runtime/model-config.js';
import { LlamaRunner, type Backend, type LlamaLoraOptions } from '../../engine/runtime/model-runner.js';
import { GREEDY, type ModelRunner, type SamplingParams } from '../../engine/runtime/runner.js';
import { ATTENTION_MODULES, LORA_MODULES, type LoraModule } from '../../engine/runtime/lora/adapter.js';
import { findPeftFolders, LoraRegistry } from '../../engine/runtime/lora/registry.js';
import { loadHfFolder, randomWeights, writeHfFolder, type ModelWeights } from '../../engine/runtime/weights.js';
import type { SimConfig } from '../../sim/config.js';
import type { SummaryInput } from '../../sim/metrics/summary.js';
import { ENGINE_STEP_COLUMNS, EngineMetrics, engineStepCsvLine, type EngineStepRow } from './engine-metrics.js';
import { rawSimConfig, simulateCommand, summaryTable, type SimulateArgs } from './simulate.js';
import { isUserError } from '../user-error.js';

export type BenchBackend = Backend | 'fake';

export interface EngineBenchOptions {
  readonly backend: BenchBackend;
  /** A built-in shape (tiny, llama2-7b, llama2-13b); ignored with `checkpoint`. */
  readonly model: string;
  /** A Hugging Face folder to load instead of random weights. */
  readonly checkpoint?: string;
  readonly dtype: 'bf16' | 'f32';
  /** Fake backend: each step's duration. Default: the simulator's cost model for `config`. */
  readonly stepDurationUs?: StepDurationFn;
  /** KV blocks; default config.kv.numBlocks, else derived (simulator capacity for fake, free memory for gpu, 1024 for cpu). */
  readonly numBlocks?: number;
  readonly outDir?: string;
  /** Also write the weights as a Hugging Face folder here. */
  readonly saveWeights?: string;
  readonly maxSteps?: number;
  readonly onStep?: (row: EngineStepRow) => void;
  /** Every executed step with its whole plan (the validation's plan log). */
  readonly onStepRecord?: (record: EngineStepRecord) => void;
  /**
   * A runner built (and warmed up) by the caller, reused across runs of the same model and KV
   * shape (the validation runs many workloads on one model); not closed here. Needs numBlocks.
   */
  readonly runner?: { readonly runner: ModelRunner; readonly weightsSource: string };
  /** False: the no-KV-cache baseline (every step recomputes each sequence from its first token). Default true. */
  readonly kvCache?: boolean;
  /** Sampling on the device or, false, the CPU-sampling baseline (logits to the host). Default: config.cost.sampling !== 'cpu'. */
  readonly sampleOnDevice?: boolean;
  /** Per-request sampling (seeded per request); default greedy. */
  readonly sampling?: Omit<SamplingParams, 'seed'>;
  /** PEFT folders as DIR/TENANT/ADAPTER; default: random adapters of config.lora.rank for the workload's adapter names. */
  readonly adaptersDir?: string;
  /** Modules random adapters target (default q/k/v/o). */
  readonly loraTargets?: readonly LoraModule[];
  /** GPU: replay decode-only steps from CUDA graphs (LlamaRunnerOptions.cudaGraphs). */
  readonly cudaGraphs?: boolean;
  /** One q/k/v GEMM in single-row steps (LlamaRunnerOptions.fuseQkv). */
  readonly fuseQkv?: boolean;
  /** Batch-1 decode through the fused one-row kernels (LlamaRunnerOptions.fuseDecode). */
  readonly fuseDecode?: boolean;
  /** Shortest flash-decoding split in tokens (LlamaRunnerOptions.decodeMinPartitionTokens). */
  readonly decodeMinSplit?: number;
}

export interface EngineBenchResult {
  readonly summary: Record<string, unknown>;
  readonly requestsCsv: string;
  readonly steps: readonly EngineStepRow[];
  readonly outputs: ReadonlyMap<number, readonly number[]>;
}

/**
 * Workload requests in arrival order, as engine requests with dense ids. `onAdapter` sees each
 * request's adapter before the engine does (registration, the tenant check).
 */
export async function workloadSource(config: SimConfig, metrics: EngineMetrics, sampling: Omit<SamplingParams, 'seed'> | undefined, onAdapter: (adapter: string, tenant: string) => void): Promise<EngineRequestSource> {
  const { RngStreams } = await import('../../sim/kernel/rng.js');
  const { buildWorkload } = await import('../../sim/workload/build.js');
  const { source } = buildWorkload(config, new RngStreams(config.seed));
  let id = 0;
  return {
    next(): EngineRequest | null {
      const r = source.next();
      if (r === null) return null;
      if (r.adapter !== null) onAdapter(r.adapter, r.tenant);
      const reqId = id++;
      const req: EngineRequest = {
        id: reqId, tenant: r.tenant, adapter: r.adapter, priorityClass: r.priorityClass, arrivalUs: r.arrivalUs,
        promptTokens: r.promptTokens, maxOutputTokens: r.outputTokens, ...(r.content !== undefined ? { content: r.content } : {}),
        // The engine's default seed rule, so greedy and sampled runs draw per request alike.
        ...(sampling !== undefined ? { sampling: { ...sampling, seed: config.seed * 1_000_003 + reqId } } : {}),
      };
      metrics.addRequest(req);
      return req;
    },
  };
}

/** The workload's adapter names per tenant (`TENANT/lora-K`, as the workload builder names them). */
function workloadAdapters(config: SimConfig): { name: string; tenant: string }[] {
  const out: { name: string; tenant: string }[] = [];
  for (const t of config.workload.tenants ?? []) for (let k = 0; k < t.numAdapters; k++) out.push({ name: `${t.name}/lora-${k}`, tenant: t.name });
  return out;
}

/**
 * The adapter registry of a bench: PEFT folders under `adaptersDir` (each registered for the
 * tenant its folder names), else random adapters of config.lora.rank for every adapter the
 * workload names, registered before the clock starts. Null when the workload uses no adapters.
 */
function benchLora(config: SimConfig, weights: ModelWeights, opts: EngineBenchOptions): { lora: LlamaLoraOptions; onAdapter: (name: string, tenant: string) => void } | null {
  const registry = new LoraRegistry(weights.config);
  const names = workloadAdapters(config);
  if (opts.adaptersDir === undefined && names.length === 0 && config.fleet === undefined) return null;
  const randomSpec = (name: string) => ({ name, seed: config.seed, rank: config.lora.rank, targets: opts.loraTargets ?? ATTENTION_MODULES });
  if (opts.adaptersDir !== undefined) {
    for (const f of findPeftFolders(opts.adaptersDir)) registry.register(f.name, f.tenant, { kind: 'peft', dir: f.dir });
  } else {
    for (const a of names) registry.register(a.name, a.tenant, { kind: 'random', spec: randomSpec(a.name) });
  }
  const list = registry.list();
  const maxRank = Math.max(config.lora.rank, ...list.map((a) => a.rank));
  const targets = opts.adaptersDir !== undefined ? LORA_MODULES.filter((m) => list.some((a) => a.targets.includes(m))) : (opts.loraTargets ?? ATTENTION_MODULES);
  const onAdapter = (name: string, tenant: string): void => {
    // Adapters the config does not list (a fleet's) are generated on first sight, random mode only.
    if (!registry.has(name) && opts.adaptersDir === undefined) registry.register(name, tenant, { kind: 'random', spec: randomSpec(name) });
    registry.checkTenant(name, tenant);
  };
  return { lora: { registry, numSlots: Math.max(1, config.lora.numSlots), maxRank, targets: targets.length > 0 ? targets : ATTENTION_MODULES }, onAdapter };
}

function loadWeights(opts: EngineBenchOptions, seed: number): ModelWeights {
  return opts.checkpoint !== undefined ? loadHfFolder(opts.checkpoint) : randomWeights(modelConfig(opts.model), seed);
}

/** KV blocks that fit in free GPU memory next to the weights and the workspace (90% of total, as vLLM's default). */
function gpuKvBlocks(weights: ModelWeights, pageSizeTokens: number, totalMemBytes: number): number {
  const c = weights.config;
  const weightBytes = numParams(c) * 2;
  const reserve = 4e9; // workspace, CUDA context, cuBLAS and the random pools
  const kvBytes = totalMemBytes * 0.9 - weightBytes - reserve;
  return Math.max(1, Math.floor(kvBytes / (kvBytesPerToken(c, 2) * pageSizeTokens)));
}

const sum = (xs: readonly number[]): number => xs.reduce((a, x) => a + x, 0);

/** The mean of µs values in ms, to the nanosecond; null for none. */
function meanMs(us: readonly number[]): number | null {
  return us.length > 0 ? Math.round((sum(us) / us.length) * 1000) / 1e6 : null;
}

export interface BuiltRunner {
  readonly runner: LlamaRunner;
  readonly numBlocks: number;
  readonly weightsSource: string;
  /** Sees each request's adapter before the engine (registration of unlisted random adapters, the tenant check). */
  readonly onAdapter?: (name: string, tenant: string) => void;
  /** The LoRA setup for summary.json (null without adapters). */
  readonly loraInfo?: Record<string, unknown> | null;
}

/** The model runner a config asks for, with its KV blocks, warmed up (GEMM plans tuned) on the GPU. */
export async function buildLlamaRunner(config: SimConfig, opts: EngineBenchOptions & { readonly backend: Backend }): Promise<BuiltRunner> {
  const weights = loadWeights(opts, config.seed);
  if (opts.saveWeights !== undefined) writeHfFolder(opts.saveWeights, weights, opts.dtype);
  let numBlocks: number;
  if (opts.backend === 'gpu') {
    const { gpu } = await import('../../native/index.js');
    numBlocks = opts.numBlocks ?? config.kv.numBlocks ?? gpuKvBlocks(weights, config.kv.pageSizeTokens, gpu().status.totalMemBytes ?? 0);
  } else {
    numBlocks = opts.numBlocks ?? config.kv.numBlocks ?? 1024;
  }
  const kvCache = opts.kvCache ?? true;
  const lora = benchLora(config, weights, opts);
  const runner = new LlamaRunner(weights, {
    backend: opts.backend, dtype: opts.dtype, kv: { numBlocks, pageSizeTokens: config.kv.pageSizeTokens },
    // Without a KV cache a step recomputes whole sequences: its forwards must hold the longest one.
    maxNumBatchedTokens: kvCache ? config.scheduler.maxNumBatchedTokens : Math.max(config.scheduler.maxNumBatchedTokens, config.scheduler.maxSeqLenTokens),
    maxNumSeqs: config.scheduler.maxNumSeqs,
    sampleOnDevice: opts.sampleOnDevice ?? config.cost.sampling !== 'cpu',
    kvCache,
    ...(lora !== null ? { lora: lora.lora } : {}),
    ...(opts.cudaGraphs === true ? { cudaGraphs: true } : {}),
    ...(opts.fuseQkv === true ? { fuseQkv: true } : {}),
    ...(opts.fuseDecode === true ? { fuseDecode: true } : {}),
    ...(opts.decodeMinSplit !== undefined ? { decodeMinPartitionTokens: opts.decodeMinSplit } : {}),
  });
  const loraInfo =
    lora === null
      ? null
      : {
          slots: lora.lora.numSlots, max_rank: runner.lora!.maxRank, targets: lora.lora.targets, slot_bytes: runner.lora!.bytes,
          adapters: lora.lora.registry.list().map((a) => ({ name: a.name, tenant: a.tenant, rank: a.rank, sha256: a.sha256, source: a.source })),
        };
  // GEMM plans are tuned on a shape's first call: tune them all before the clock starts.
  if (opts.backend === 'gpu') runner.warmup();
  return { runner, numBlocks, weightsSource: weights.source, loraInfo, ...(lora !== null ? { onAdapter: lora.onAdapter } : {}) };
}

export async function runEngineBench(config: SimConfig, opts: EngineBenchOptions): Promise<EngineBenchResult> {
  const { schedulerConfig, replicaShape } = await import('../../sim/simulation.js');
  const { buildSummary } = await import('../../sim/metrics/summary.js');
  const { requestsCsv } = await import('../../sim/metrics/csv.js');
  const { kvCapacity } = await import('../../sim/catalog.js');
  let clock: Clock;
  let runner: ModelRunner;
  let numBlocks: number;
  let weightsSource = 'none';
  let onAdapter = (_name: string, _tenant: string): void => {};
  let loraInfo: Record<string, unknown> | null = null;
  if (opts.backend === 'fake') {
    const virtual = new VirtualClock();
    clock = virtual;
    numBlocks = opts.numBlocks ?? config.kv.numBlocks ?? kvCapacity({ shape: replicaShape(config), gpuMemoryUtilization: config.kv.gpuMemoryUtilization, maxNumBatchedTokens: config.scheduler.maxNumBatchedTokens, pageSizeTokens: config.kv.pageSizeTokens }).numBlocks;
    let duration = opts.stepDurationUs;
    if (duration === undefined) {
      const { buildCostModel } = await import('../../sim/simulation.js');
      const { planDurationUs } = await import('../../sim/replica/step-shape.js');
      const cost = buildCostModel(config, replicaShape(config));
      const slots = new Set<number>();
      const power = cost.newPowerState?.() ?? null;
      duration = (plan, startUs) => planDurationUs(cost, plan, slots, startUs, power);
    }
    runner = new FakeRunner(virtual, duration);
  } else if (opts.runner !== undefined) {
    if (opts.numBlocks === undefined) throw new Error('runEngineBench: a caller-built runner needs numBlocks');
    numBlocks = opts.numBlocks;
    runner = opts.runner.runner;
    weightsSource = opts.runner.weightsSource;
    clock = new RealClock();
  } else {
    const built = await buildLlamaRunner(config, { ...opts, backend: opts.backend });
    ({ runner, numBlocks, weightsSource } = built);
    if (built.onAdapter !== undefined) onAdapter = built.onAdapter;
    loraInfo = built.loraInfo ?? null;
    // The workload's time 0 is when the model is ready, so loading never shows up as queueing.
    clock = new RealClock();
  }
  const llama = runner instanceof LlamaRunner ? runner : null;
  const steps: EngineStepRow[] = [];
  const metrics = new EngineMetrics(Math.round(config.sla.windowS * 1e6), config.kv.pageSizeTokens, (base) => {
    const row: EngineStepRow = llama === null ? base : { ...base, hostSampleUs: llama.sampleOnDevice ? null : llama.lastHostSampleUs, numForwards: llama.lastNumForwards };
    steps.push(row);
    opts.onStep?.(row);
  });
  const scheduler = createScheduler(schedulerConfig(config, numBlocks));
  const onStepRecord = opts.onStepRecord;
  const observer: EngineObserver = {
    onAdmit: (request, seq, nowUs, reason) => metrics.onAdmit(request, seq, nowUs, reason),
    onStep: (record) => {
      metrics.onStep(record);
      onStepRecord?.(record);
    },
  };
  const engine = new Engine({ scheduler, runner, clock, seed: config.seed, maxSteps: opts.maxSteps ?? 100_000_000, observer });
  let outputs: ReadonlyMap<number, readonly number[]>;
  try {
    ({ outputs } = await engine.run(await workloadSource(config, metrics, opts.sampling, onAdapter)));
  } finally {
    if (opts.runner === undefined) runner.close();
  }
  const endUs = metrics.close();
  const model = opts.checkpoint !== undefined ? 'checkpoint' : opts.model;
  // The card the run measured, not the config's GPU (whose default names an A100): the GPU backend's
  // device (its catalog name when it has one), 'cpu' for the CPU backend; the fake backend prices config.gpu.
  let measuredGpu: string | null = opts.backend === 'cpu' ? 'cpu' : null;
  if (opts.backend === 'gpu') {
    const { gpu } = await import('../../native/index.js');
    const { gpuOfDeviceName } = await import('../../sim/catalog.js');
    const name = gpu().status.name ?? '';
    measuredGpu = gpuOfDeviceName(name) ?? (name !== '' ? name : null);
  }
  const benchConfig = { ...config, model, ...(measuredGpu !== null ? { gpu: measuredGpu } : {}) } as SimConfig;
  const kv = { weightBytesPerGpu: 0, activationBytesPerGpu: 0, kvBytesPerGpu: 0, numBlocks, numTokens: numBlocks * config.kv.pageSizeTokens };
  // buildSummary reads only `stats` of each replica: the engine is one replica.
  const replicas = [{ stats: metrics.stats }];
  const calibration = opts.backend === 'fake' ? 'uncalibrated' : 'measured';
  const result: SummaryInput = { config: benchConfig, records: metrics.records, replicas, costModel: { name: `engine-${opts.backend}`, calibration }, kv, endUs };
  const base = buildSummary(result);
  const gpuSteps = steps.filter((s) => s.gpuUs !== null);
  const summary: Record<string, unknown> = {
    ...base,
    stratos_output: 'engine-bench',
    label: calibration,
    engine: {
      backend: opts.backend,
      runner: runner.name,
      dtype: opts.backend === 'fake' ? null : opts.dtype,
      weights: weightsSource,
      steps: steps.length,
      step_ms_mean: meanMs(steps.map((s) => s.durationUs)),
      schedule_ms_mean: meanMs(steps.map((s) => s.scheduleUs)),
      gpu_ms_mean: meanMs(gpuSteps.map((s) => s.gpuUs!)),
      host_fraction: gpuSteps.length > 0 ? Math.round((sum(gpuSteps.map((s) => s.hostUs!)) / Math.max(1, sum(gpuSteps.map((s) => s.durationUs)))) * 1000) / 1000 : null,
      host_fraction_definition: 'share of step wall time not covered by device time (GPU events around the forward)',
      kv_cache: llama?.kvCache ?? null,
      kv_allocator: config.kv.allocator,
      policy: config.policy,
      sampling: llama === null ? null : llama.sampleOnDevice ? 'device' : 'host',
      sampling_params: opts.sampling ?? { ...GREEDY, seed: undefined },
      host_sample_ms_mean: meanMs(steps.filter((s) => s.hostSampleUs != null).map((s) => s.hostSampleUs!)),
      forwards: sum(steps.map((s) => s.numForwards ?? 1)),
      batch_seqs_peak: steps.reduce((m, s) => Math.max(m, s.numSeqs), 0),
      lora: loraInfo === null ? null : { ...loraInfo, slot_loads: llama?.lora?.numLoads ?? null, lora_steps: steps.filter((s) => (s.numLoraSeqs ?? 0) > 0).length },
    },
  };
  const csv = requestsCsv(metrics.records, model);
  if (opts.outDir !== undefined) {
    mkdirSync(opts.outDir, { recursive: true });
    writeFileSync(join(opts.outDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    writeFileSync(join(opts.outDir, 'requests.csv'), csv);
    const fd = openSync(join(opts.outDir, 'steps.csv'), 'w');
    try {
      writeSync(fd, ENGINE_STEP_COLUMNS.join(',') + '\n');
      for (let i = 0; i < steps.length; i += 4096) writeSync(fd, steps.slice(i, i + 4096).map(engineStepCsvLine).join('\n') + '\n');
    } finally {
      closeSync(fd);
    }
  }
  return { summary, requestsCsv: csv, steps, outputs };
}

interface EngineBenchArgs extends SimulateArgs {
  backend?: string;
  checkpoint?: string;
  dtype?: string;
  'kv-blocks'?: number;
  'save-weights'?: string;
  'kv-cache'?: boolean;
  adapters?: string;
  'lora-targets'?: string;
  temperature?: number;
  'top-k'?: number;
  'top-p'?: number;
  'min-p'?: number;
  'cuda-graphs'?: boolean;
  'fuse-qkv'?: boolean;
  'fuse-decode'?: boolean;
  'decode-min-split'?: number;
  url?: string;
  'served-model'?: string;
}

/** The in-process backends, and http (a server elsewhere, runHttpBench). */
const BACKENDS: readonly string[] = ['cpu', 'gpu', 'fake', 'http'];

export const engineBenchCommand: CommandModule<object, EngineBenchArgs> = {
  command: 'bench',
  describe: 'Run the real engine on a workload; same outputs as simulate, plus steps.csv',
  builder: (y: Argv) =>
    (simulateCommand.builder as (y: Argv) => Argv)(y)
      .option('backend', { type: 'string', describe: 'cpu (native CPU reference ops) | gpu (CUDA kernels) | fake (no model; step times from the cost model) | http (a running OpenAI-compatible server at --url)', default: 'cpu' })
      .option('url', { type: 'string', describe: 'http: the server, e.g. http://127.0.0.1:8000 (stratos serve, vLLM, …)' })
      .option('served-model', { type: 'string', describe: 'http: the `model` to ask for (default: --model); prompts are token ids below --model\'s vocabulary' })
      .option('checkpoint', { type: 'string', describe: 'Hugging Face Llama folder (config.json + safetensors) instead of random weights' })
      .option('dtype', { type: 'string', describe: 'bf16 | f32 (f32 on the cpu backend only)' })
      .option('kv-blocks', { type: 'number', describe: 'KV cache blocks (default: derived from memory; 1024 on cpu)' })
      .option('save-weights', { type: 'string', describe: 'also write the weights as a Hugging Face folder' })
      .option('kv-cache', { type: 'boolean', default: true, describe: 'baseline --no-kv-cache: recompute every sequence from its first token at every step' })
      .option('adapters', { type: 'string', describe: 'LoRA: PEFT folders as DIR/TENANT/ADAPTER (default: random adapters of lora.rank for the workload\'s adapter names)' })
      .option('lora-targets', { type: 'string', describe: `modules random adapters target, comma-separated (default q_proj,k_proj,v_proj,o_proj; allowed: ${LORA_MODULES.join(', ')})` })
      .option('temperature', { type: 'number', describe: 'sampling temperature (default 0: greedy)' })
      .option('top-k', { type: 'number', describe: 'top-k (0: off)' })
      .option('top-p', { type: 'number', describe: 'top-p (1: off)' })
      .option('min-p', { type: 'number', describe: 'min-p (0: off)' })
      .option('cuda-graphs', { type: 'boolean', default: false, describe: 'gpu: replay decode-only steps (no LoRA, no block copies) from CUDA graphs, one per row bucket and context bucket' })
      .option('fuse-qkv', { type: 'boolean', default: false, describe: 'one q/k/v GEMM in single-row steps (batch-1 decode; changes rounding slightly)' })
      .option('fuse-decode', { type: 'boolean', default: false, describe: 'batch-1 decode steps through fused one-row kernels: norm, residual add and SiLU-and-mul inside the matrix-vector kernels, launched back to back with programmatic dependent launch (changes rounding slightly)' })
      .option('decode-min-split', { type: 'number', describe: 'shortest flash-decoding split in tokens, a power of two in [16, 512] (default 128; 32 is fastest at batch 1)' })
      .example('stratos engine bench --backend gpu --model llama2-13b --allocator contiguous --sampling cpu --policy static --out out/baseline', 'the case study\'s baseline stack')
      .example('stratos engine bench --backend gpu --model llama2-7b --cuda-graphs --fuse-decode --decode-min-split 32 --rate 0.5 --duration 60 --out out/b1', 'the fastest batch-1 decode path (at this low rate most steps decode one sequence)')
      .example('stratos engine bench --backend cpu --model tiny --rate 4 --duration 2 --input-tokens uniform:8:64 --output-tokens uniform:4:16 --out out/e', '')
      .example('stratos engine bench --backend http --url http://127.0.0.1:8000 --model llama2-7b --rate 2 --duration 60 --out out/served', 'a running server (stratos serve, vLLM) on the same workload, timed from the client')
      .epilogue(`--model for cpu/gpu: ${MODEL_CONFIG_NAMES.join(', ')}; random weights are seeded by --seed. --steps is implied (steps.csv is always written with --out). Baselines: --no-kv-cache, --allocator contiguous, --sampling cpu (logits copied to the host), --policy static.`),
  handler: async (args) => {
    const { parseSimConfig } = await import('../../sim/config.js');
    const backendName = args.backend ?? 'cpu';
    const fail = (message: string): void => {
      process.stderr.write(`stratos engine bench: ${message}\n`);
      process.exitCode = 2;
    };
    if (!BACKENDS.includes(backendName)) return fail(`backend = ${args.backend}: allowed: ${BACKENDS.join(', ')}`);
    if (backendName === 'http') return httpBenchHandler(args, fail);
    const backend = backendName as BenchBackend;
    if (args.url !== undefined) return fail('--url is for --backend http');
    const model = args.model ?? (backend === 'fake' ? 'llama2-13b' : 'tiny');
    const dtype = (args.dtype ?? (backend === 'gpu' ? 'bf16' : 'f32')) as 'bf16' | 'f32';
    if (dtype !== 'bf16' && dtype !== 'f32') return fail(`dtype = ${args.dtype}: allowed: bf16, f32`);
    // The simulator's schema knows only its catalog's models: the engine's shape is checked here.
    const raw = rawSimConfig({ ...args, model: backend === 'fake' ? model : undefined });
    let config: SimConfig;
    try {
      if (backend !== 'fake' && args.checkpoint === undefined) modelConfig(model);
      config = parseSimConfig(raw, args.config ?? 'flags');
    } catch (e) {
      return fail((e as Error).message);
    }
    const targets = args['lora-targets']?.split(',').map((t) => t.trim()).filter((t) => t !== '');
    const badTarget = targets?.find((t) => !LORA_MODULES.includes(t as LoraModule));
    if (badTarget !== undefined) return fail(`lora-targets has ${badTarget}: allowed: ${LORA_MODULES.join(', ')}`);
    const sampled = args.temperature !== undefined || args['top-k'] !== undefined || args['top-p'] !== undefined || args['min-p'] !== undefined;
    try {
      const { summary } = await runEngineBench(config, {
        backend, model, dtype,
        kvCache: args['kv-cache'] ?? true,
        ...(args.adapters !== undefined ? { adaptersDir: args.adapters } : {}),
        ...(targets !== undefined ? { loraTargets: targets as LoraModule[] } : {}),
        ...(sampled ? { sampling: { temperature: args.temperature ?? 1, topK: args['top-k'] ?? 0, topP: args['top-p'] ?? 1, minP: args['min-p'] ?? 0 } } : {}),
        ...(args.checkpoint !== undefined ? { checkpoint: args.checkpoint } : {}),
        ...(args['kv-blocks'] !== undefined ? { numBlocks: args['kv-blocks'] } : {}),
        ...(args.out !== undefined ? { outDir: args.out } : {}),
        ...(args['save-weights'] !== undefined ? { saveWeights: args['save-weights'] } : {}),
        ...(args['cuda-graphs'] === true ? { cudaGraphs: true } : {}),
        ...(args['fuse-qkv'] === true ? { fuseQkv: true } : {}),
        ...(args['fuse-decode'] === true ? { fuseDecode: true } : {}),
        ...(args['decode-min-split'] !== undefined ? { decodeMinSplit: args['decode-min-split'] } : {}),
      });
      process.stdout.write(summaryTable(summary) + '\n');
      if (args.out !== undefined) process.stdout.write(`wrote ${args.out}/summary.json, ${args.out}/requests.csv, ${args.out}/steps.csv\n`);
    } catch (e) {
      // As for simulate: errors with a user-facing `code` (EngineError, NativeError, …) print their message only.
      if (isUserError(e)) return fail(e.message);
      throw e;
    }
  },
};

/** `engine bench --backend http`: the workload against a running server. */
async function httpBenchHandler(args: EngineBenchArgs, fail: (message: string) => void): Promise<void> {
  if (args.url === undefined) return fail('--backend http needs --url (the server, e.g. http://127.0.0.1:8000)');
  if (!/^https?:\/\/[^/]+/.test(args.url)) return fail(`url = ${args.url}: must start with http:// or https:// and name a host`);
  const model = args.model ?? 'llama2-7b';
  const { parseSimConfig } = await import('../../sim/config.js');
  let config: SimConfig;
  let vocabSize: number;
  try {
    vocabSize = modelConfig(model).vocabSize;
    config = parseSimConfig(rawSimConfig({ ...args, model: undefined }), args.config ?? 'flags');
  } catch (e) {
    return fail((e as Error).message);
  }
  const { runHttpBench } = await import('./http-bench.js');
  const { summary } = await runHttpBench(config, {
    url: args.url, servedModel: args['served-model'] ?? model, vocabSize,
    ...(args.out !== undefined ? { outDir: args.out } : {}),
    progress: (line) => process.stderr.write(`stratos engine bench: ${line}\n`),
  });
  process.stdout.write(summaryTable(summary) + '\n');
  if (args.out !== undefined) process.stdout.write(`wrote ${args.out}/summary.json, ${args.out}/requests.csv\n`);
}

/** `stratos engine <action>`. */
export const engineCommand: CommandModule = {
  command: 'engine <action>',
  describe: 'Drive the real engine (bench)',
  builder: (y) => y.command(engineBenchCommand as unknown as CommandModule).demandCommand(1, 'name an action: bench'),
  handler: () => {},
};
