// The GPU half of `stratos validate`: measure the engine's capacity, then run every workload
// `runs` times on the real engine and keep what the comparison needs as logs: summary.json,
// requests.csv.gz and the plan log (steps.jsonl.gz) per run, the traces they replayed, and a
// manifest with each workload's resolved simulator config. Nothing here compares: the CPU half
// (compare.ts) reads only these logs, so CI can recompute the report without a GPU.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { gpuOfDeviceName } from '../../sim/catalog.js';
import type { SimConfig, SimConfigInput } from '../../sim/config.js';
import type { BenchBackend, BuiltRunner } from '../commands/engine.js';
import { encodeStep, writePlanLog } from './plan-log.js';
import { parseRequestsCsv } from './requests.js';
import { traceNamesOf, ValidateConfigError, withResolvedTrace, type ValidateConfig, type WorkloadSpec } from './spec.js';

export const LOGS_FORMAT = 'stratos-validate-logs/1';

export interface ManifestWorkload {
  readonly name: string;
  /** The simulator config both sides ran, trace files written `traces:REL` (resolved against the logs' traces/). */
  readonly config: SimConfigInput;
  /** KV blocks the engine had (the simulator gets the same). */
  readonly numBlocks: number;
  readonly runs: number;
  readonly numRequests: number;
  readonly load: number | null;
  readonly runner: string;
  /** Capacity measurement only: completions per second between 10% and 90% finished. */
  readonly capacityReqPerS?: number;
}

export interface Manifest {
  readonly format: typeof LOGS_FORMAT;
  readonly gpu: string;
  readonly backend: BenchBackend;
  readonly device: string;
  readonly validateConfig: ValidateConfig;
  readonly capacity: ManifestWorkload | null;
  readonly workloads: ManifestWorkload[];
  /** Workloads the engine could not run, with the error. */
  readonly failures: { name: string; error: string }[];
}

export interface EngineRunsOptions {
  readonly config: ValidateConfig;
  readonly outDir: string;
  readonly tracesDir: string;
  readonly backend: BenchBackend;
  /** Run only these workloads (the capacity is measured when any of them needs it). */
  readonly only?: readonly string[];
  readonly progress: (line: string) => void;
}

/** Completions per second between the 10% and the 90% finished marks of an offline run. */
export function steadyCompletionRate(finishS: readonly number[]): number {
  const done = finishS.filter((t) => Number.isFinite(t)).sort((a, b) => a - b);
  if (done.length < 10) throw new Error(`capacity: only ${done.length} requests finished; use a capacity workload of at least 10 requests`);
  const lo = Math.floor(done.length * 0.1);
  const hi = Math.ceil(done.length * 0.9) - 1;
  return (hi - lo) / (done[hi] - done[lo]);
}

/** Native requests per second of a trace from startS over the next `spanS` seconds (or to its end). */
async function nativeRatePerS(trace: { file: string; format: string; startS?: number }, spanS: number): Promise<number> {
  const { loadAzureTrace } = await import('../../sim/workload/azure.js');
  const { loadMooncakeTrace } = await import('../../sim/workload/mooncake.js');
  const rows = trace.format === 'azure' ? loadAzureTrace(trace.file) : loadMooncakeTrace(trace.file);
  const start = (trace.startS ?? 0) * 1e6;
  const inWindow = rows.filter((r) => r.offsetUs >= start && r.offsetUs < start + spanS * 1e6);
  const last = inWindow.length > 0 ? inWindow[inWindow.length - 1].offsetUs : start;
  const span = Math.min(spanS * 1e6, Math.max(1, last - start));
  if (inWindow.length < 2) throw new Error(`trace ${trace.file}: fewer than 2 requests after startS = ${trace.startS ?? 0}`);
  return inWindow.length / (span / 1e6);
}

/** The config a `load` workload runs: rateScale and endS so it replays durationS seconds at load × capacity. */
export async function scaledToLoad(w: WorkloadSpec, resolved: SimConfigInput, capacityReqPerS: number): Promise<{ symbolic: Record<string, unknown>; resolved: SimConfigInput }> {
  const trace = resolved.trace as { file: string; format: string; startS?: number };
  const native = await nativeRatePerS(trace, 1800);
  const rateScale = round6(((w.load ?? 1) * capacityReqPerS) / native);
  const startS = trace.startS ?? 0;
  const endS = round6(startS + w.durationS * rateScale);
  const patch = (c: Record<string, unknown>): Record<string, unknown> => ({ ...c, trace: { ...(c.trace as object), rateScale, startS, endS } });
  return { symbolic: patch(w.config), resolved: patch(resolved as Record<string, unknown>) as SimConfigInput };
}

const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

/** Copies each `traces:` file the config names into logs/traces (gzip'ed), once. */
function copyTraces(configs: readonly Record<string, unknown>[], tracesDir: string, logsDir: string): void {
  const done = new Set<string>();
  for (const c of configs) {
    for (const rel of traceNamesOf(c)) {
      if (done.has(rel)) continue;
      done.add(rel);
      const src = withResolvedTrace(c, tracesDir, 'h200').trace!.file;
      const dst = join(logsDir, 'traces', rel.endsWith('.gz') ? rel : rel + '.gz');
      mkdirSync(dirname(dst), { recursive: true });
      if (src.endsWith('.gz')) copyFileSync(src, dst);
      else writeFileSync(dst, gzipSync(readFileSync(src), { level: 9 }));
    }
  }
}

export async function runEngineWorkloads(opts: EngineRunsOptions): Promise<Manifest> {
  const { parseSimConfig } = await import('../../sim/config.js');
  const { runEngineBench, buildLlamaRunner } = await import('../commands/engine.js');
  const { config, outDir, tracesDir, backend, progress } = opts;
  const logsDir = join(outDir, 'logs');
  mkdirSync(logsDir, { recursive: true });
  const selected = config.workloads.filter((w) => opts.only === undefined || opts.only.includes(w.name));
  if (opts.only !== undefined) {
    const unknown = opts.only.filter((n) => !config.workloads.some((w) => w.name === n));
    if (unknown.length > 0) throw new ValidateConfigError(`--only: no workload named ${unknown.join(', ')}; workloads: ${config.workloads.map((w) => w.name).join(', ')}`);
  }
  // Every config is checked before the first engine run: a typo must not cost device time.
  for (const c of [...(config.capacity ? [{ name: config.capacity.name, config: config.capacity.config }] : []), ...selected]) {
    parseSimConfig(withResolvedTrace(c.config, tracesDir, config.gpu), `workload ${c.name}`);
  }
  // The simulator prices config.gpu's profile: an engine on another card would make every error a lie.
  let device: string = backend;
  if (backend === 'gpu') {
    const { gpu } = await import('../../native/index.js');
    const deviceName = gpu().status.name ?? 'unknown';
    device = `gpu: ${deviceName}`;
    const card = gpuOfDeviceName(deviceName);
    if (card !== config.gpu) {
      throw new ValidateConfigError(`the engine runs on ${deviceName}, but the config says gpu: ${config.gpu}; pass --gpu ${card ?? '(a catalog GPU)'} to validate on this card`);
    }
  }
  copyTraces([...(config.capacity ? [config.capacity.config] : []), ...selected.map((w) => w.config)], tracesDir, logsDir);

  // One runner per (model, KV and batch shape), built once and reused by every run on it.
  let current: { key: string; built: BuiltRunner } | null = null;
  const runnerFor = async (sim: SimConfig): Promise<BuiltRunner | null> => {
    if (backend === 'fake') return null;
    const key = JSON.stringify([sim.model, sim.seed, sim.kv.pageSizeTokens, sim.kv.numBlocks ?? null, sim.scheduler.maxNumBatchedTokens, sim.scheduler.maxNumSeqs]);
    if (current?.key === key) return current.built;
    current?.built.runner.close();
    current = null;
    progress(`building the ${sim.model} runner (page ${sim.kv.pageSizeTokens}, ${sim.scheduler.maxNumBatchedTokens} batched tokens)`);
    const built = await buildLlamaRunner(sim, { backend, model: sim.model, dtype: 'bf16' });
    current = { key, built };
    return built;
  };

  const runWorkload = async (name: string, symbolic: Record<string, unknown>, resolved: SimConfigInput, runs: number, load: number | null): Promise<ManifestWorkload & { finishS: number[] }> => {
    const sim = parseSimConfig(resolved, `workload ${name}`);
    const built = await runnerFor(sim);
    let numBlocks = built?.numBlocks ?? 0;
    let numRequests = 0;
    let runnerName = 'fake';
    let finishS: number[] = [];
    for (let k = 1; k <= runs; k++) {
      const lines: string[] = [];
      const t0 = performance.now();
      const result = await runEngineBench(sim, {
        backend, model: sim.model, dtype: 'bf16',
        ...(built !== null ? { runner: { runner: built.runner, weightsSource: built.weightsSource }, numBlocks: built.numBlocks } : {}),
        onStepRecord: (r) => lines.push(encodeStep(r)),
      });
      const dir = join(logsDir, name, `run${k}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'summary.json'), JSON.stringify(result.summary, null, 2) + '\n');
      writeFileSync(join(dir, 'requests.csv.gz'), gzipSync(Buffer.from(result.requestsCsv), { level: 9 }));
      writePlanLog(join(dir, 'steps.jsonl.gz'), lines);
      const table = parseRequestsCsv(result.requestsCsv, `${name} run ${k}`);
      numRequests = table.ids.length;
      finishS = table.finishS;
      const kv = result.summary.kv as { blocks_per_replica: number };
      if (built === null) numBlocks = kv.blocks_per_replica;
      runnerName = (result.summary.engine as { runner: string }).runner;
      const s = result.summary as { duration_s: number; throughput_output_tokens_per_s: number; ttft_ms: { p99: number } };
      progress(`${name} run ${k}/${runs}: ${numRequests} requests, ${lines.length} steps, ${s.duration_s} s simulated-equivalent, ` +
        `${s.throughput_output_tokens_per_s} out tok/s, p99 TTFT ${s.ttft_ms.p99} ms (${((performance.now() - t0) / 1000).toFixed(1)} s wall)`);
    }
    return { name, config: symbolic as SimConfigInput, numBlocks, runs, numRequests, load, runner: runnerName, finishS };
  };

  // Logs already in the folder (an earlier call with --only): kept, and their capacity reused.
  const manifestFile = join(logsDir, 'manifest.json');
  const previous = existsSync(manifestFile) ? (JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest) : null;
  if (previous !== null && (previous.format !== LOGS_FORMAT || previous.gpu !== config.gpu || previous.backend !== backend)) {
    throw new ValidateConfigError(`${manifestFile}: logs of another kind (${previous.format}, ${previous.gpu}, ${previous.backend}); use an empty --out`);
  }
  let capacity: ManifestWorkload | null = previous?.capacity ?? null;
  if (capacity === null && config.capacity !== undefined && selected.some((w) => w.load !== undefined)) {
    const c = config.capacity;
    // Offline: the window's requests all arrive within a millisecond.
    const symbolic = { ...c.config, trace: { ...(c.config.trace as object), rateScale: 1e6 } };
    const run = await runWorkload(c.name, symbolic, withResolvedTrace(symbolic, tracesDir, config.gpu), 1, null);
    const { finishS, ...rest } = run;
    capacity = { ...rest, capacityReqPerS: round6(steadyCompletionRate(finishS)) };
    progress(`capacity (${c.name}): ${capacity.capacityReqPerS} requests/s`);
  }
  const workloads: ManifestWorkload[] = [];
  const failures: { name: string; error: string }[] = [];
  // Written after every workload, so a run cut short (the device's time limit) keeps what it measured.
  const writeManifest = (): Manifest => {
    const kept = (previous?.workloads ?? []).filter((p) => !workloads.some((w) => w.name === p.name));
    const earlierFailures = (previous?.failures ?? []).filter((f) => !selected.some((w) => w.name === f.name));
    const manifest: Manifest = { format: LOGS_FORMAT, gpu: config.gpu, backend, device, validateConfig: config, capacity, workloads: [...kept, ...workloads], failures: [...earlierFailures, ...failures] };
    writeFileSync(manifestFile, JSON.stringify(manifest, null, 2) + '\n');
    return manifest;
  };
  for (const w of selected) {
    let symbolic: Record<string, unknown> = w.config;
    let resolved = withResolvedTrace(w.config, tracesDir, config.gpu);
    if (w.load !== undefined) ({ symbolic, resolved } = await scaledToLoad(w, resolved, capacity!.capacityReqPerS!));
    try {
      const { finishS: _f, ...run } = await runWorkload(w.name, symbolic, resolved, config.runs, w.load ?? null);
      workloads.push(run);
    } catch (e) {
      // One failing workload (a shape the engine cannot run) must not cost the others' device time.
      progress(`${w.name}: FAILED: ${(e as Error).message}`);
      failures.push({ name: w.name, error: (e as Error).message });
      (current as { built: BuiltRunner } | null)?.built.runner.close();
      current = null;
    }
    writeManifest();
  }
  (current as { built: BuiltRunner } | null)?.built.runner.close();
  return writeManifest();
}
