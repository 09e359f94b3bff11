// A calibration run: every case of the grids, timed on the GPU, written as raw samples. Shared by
// `stratos calibrate run` and the bundled device script (calibration/run-gpu.ts).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { cpu, gpu, nativeStatus } from '../native/index.js';
import { HOT_SOAK_MIN_PREFILL_TOKENS, HOT_SOAK_MIN_ROWS, normalLogits, prepareBench, type BenchContext } from './benches.js';
import { buildCases, CASE_FAMILIES, gridAxes, seededRandom, summarizeCases, type CaseFamily, type GridName } from './grids.js';
import { Arena, fillRandom, GraphTimer, HOT_SOAK_MS, timeHost, type TimingStats } from './harness.js';
import { hostInfo, kernelSourcesSha256, nvidiaSmi } from './provenance.js';
import { SamplesWriter } from './samples.js';
import { CALIB_MODELS, type CalibModel } from './shapes.js';

export interface RunOptions {
  readonly out: string;
  readonly models: readonly CalibModel[];
  readonly grid: GridName;
  readonly families?: readonly CaseFamily[];
  /** Stop starting new cases after this many seconds (the samples so far are kept). */
  readonly budgetS: number;
  /** Repository root (for the kernel-source hash). */
  readonly root: string;
  /** The command line, recorded in provenance. */
  readonly command: string;
}

export class CalibrationError extends Error {
  readonly code = 'calibration' as const;
}

export function parseModels(text: string): CalibModel[] {
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  const allowed = Object.keys(CALIB_MODELS);
  for (const n of names) if (!allowed.includes(n)) throw new CalibrationError(`--models: "${n}" is not a model; allowed: ${allowed.join(', ')}`);
  if (names.length === 0) throw new CalibrationError(`--models: name at least one of ${allowed.join(', ')}`);
  return names as CalibModel[];
}

export function parseFamilies(text: string | undefined): CaseFamily[] | undefined {
  if (!text) return undefined;
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!CASE_FAMILIES.includes(n as CaseFamily)) throw new CalibrationError(`--families: "${n}" is not a family; allowed: ${CASE_FAMILIES.join(', ')}`);
  return names as CaseFamily[];
}

const ARENA_BYTES = 16 * 2 ** 30;
const PINNED_BYTES = 2 ** 29;
const LOGITS_ROWS = 64;
const LOGITS_VOCAB = 32768;

export function runCalibration(opts: RunOptions, progress: (line: string) => void = (l) => process.stderr.write(l + '\n')): { samples: number; skipped: number; truncated: boolean } {
  const status = nativeStatus();
  if (!status.gpu.available) throw new CalibrationError(`calibrate run needs a GPU: ${status.gpu.reason || status.reason}`);
  const smCount = status.gpu.smCount;
  const cases = buildCases({ models: opts.models, grid: opts.grid, ...(smCount ? { smCount } : {}), ...(opts.families ? { families: opts.families } : {}) });
  const kernel = kernelSourcesSha256(opts.root);
  const provenance = {
    tool: 'stratos calibrate run',
    command: opts.command,
    date: new Date().toISOString(),
    gpu: status.gpu,
    nvidiaSmiBefore: nvidiaSmi(),
    cudaRuntimeVersion: status.gpu.runtimeVersion,
    driverVersion: status.gpu.driverVersion,
    addon: status.path,
    host: hostInfo(),
    kernelSourcesSha256: kernel.sha256,
    kernelSourceFiles: kernel.perFile,
    models: opts.models,
    grid: opts.grid,
    grids: { ...gridAxes(opts.grid), samplingWaveEdgesForSms: smCount ?? null },
    cases: summarizeCases(cases),
    timing:
      'CUDA-graph replay: one eager call (GEMM algorithm tuning happens there), 3 eager calls to estimate, a graph of N calls ' +
      '(N so one replay lasts ~400 us, at most 256; at least the number of rotation copies unless that replay would pass 5 ms), ' +
      `for GEMMs of >= ${HOT_SOAK_MIN_ROWS} rows and prefill calls of >= ${HOT_SOAK_MIN_PREFILL_TOKENS} tokens ${HOT_SOAK_MS} ms of back-to-back replays first (hot prices: the power cap's state), ` +
      'one warm-up replay, then 9/5/3 ' +
      'replays (replay <= 2 ms / <= 20 ms / longer) timed with CUDA events; per-call time = replay time / N; median, p10, p90, min, max kept. ' +
      'Weights, KV and adapters rotate through copies totalling >= 256 MiB (at most 32) so they stream from HBM as in a forward pass. ' +
      'Host-device copies: pinned memory, eager, timed with events. Host sampling: the CPU reference sampler, wall clock.',
    hostOverhead: 'not measured: the engine loop does not exist yet (slot left in the profile as hostOverheadUs: null)',
    budgetS: opts.budgetS,
  };
  mkdirSync(dirname(opts.out), { recursive: true });
  const writer = new SamplesWriter(opts.out, provenance);
  const g = gpu();
  const c = cpu();
  const stream = g.createStream();
  const random = seededRandom(7);
  const t0 = performance.now();
  const arena = new Arena(g, ARENA_BYTES);
  fillRandom(g, arena, random, stream);
  // Realistic logits rows for the sampler (its search cost depends on the distribution).
  const logits = arena.put(normalLogits(LOGITS_ROWS * LOGITS_VOCAB, random), stream); // [LOGITS_ROWS, LOGITS_VOCAB]
  arena.pin();
  const ctx: BenchContext = { g, c, arena, stream, random, logits, logitsRows: LOGITS_ROWS, logitsVocab: LOGITS_VOCAB, pinned: g.hostAlloc(PINNED_BYTES) };
  const timer = new GraphTimer(g, stream);
  progress(`[calibrate] ${cases.length} cases (${opts.grid} grid, models ${opts.models.join(',')}); arena ${ARENA_BYTES / 2 ** 30} GiB ready in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
  let done = 0;
  let failed = 0;
  let truncated = false;
  let lastReport = 0;
  let family = '';
  const familyTotal = new Map<string, number>();
  for (const k of cases) familyTotal.set(k.family, (familyTotal.get(k.family) ?? 0) + 1);
  let familyDone = 0;
  const failures: string[] = [];
  for (const k of cases) {
    const elapsedS = (performance.now() - t0) / 1e3;
    if (elapsedS > opts.budgetS) {
      truncated = true;
      progress(`[calibrate] budget of ${opts.budgetS} s reached: ${cases.length - done - failed} cases not run`);
      break;
    }
    if (k.family !== family) {
      family = k.family;
      familyDone = 0;
      progress(`[calibrate] ${family}: ${familyTotal.get(family)} cases (t = ${elapsedS.toFixed(1)} s)`);
    }
    familyDone++;
    arena.reset();
    try {
      const bench = prepareBench(k, ctx);
      let t: TimingStats;
      if (bench.kind === 'graph') t = timer.time(bench.call, bench.copies, bench.soakMs ?? 0);
      else if (bench.kind === 'eager') t = timer.timeEager(bench.run, bench.reps);
      else t = timeHost(bench.run, bench.reps, () => performance.now());
      writer.add(k, t);
      done++;
    } catch (err) {
      failed++;
      const msg = `${k.family} ${JSON.stringify(k.config)} ${JSON.stringify(k.point)}: ${(err as Error).message}`;
      if (failures.length < 50) failures.push(msg);
      progress(`[calibrate] FAILED ${msg}`);
      try {
        g.sync(stream);
      } catch {
        // a sticky CUDA error: the next case will fail too and say so
      }
    }
    const now = performance.now();
    if (now - lastReport > 5000) {
      lastReport = now;
      const el = (now - t0) / 1e3;
      const rate = (done + failed) / Math.max(el, 1e-3);
      progress(`[calibrate]   ${family} ${familyDone}/${familyTotal.get(family)}; all ${done + failed}/${cases.length}; ${el.toFixed(0)} s elapsed, ~${((cases.length - done - failed) / Math.max(rate, 1e-9)).toFixed(0)} s left at this rate`);
    }
  }
  timer.dispose();
  const totalS = (performance.now() - t0) / 1e3;
  writer.end({ samples: done, failed, truncated, seconds: Number(totalS.toFixed(1)), nvidiaSmiAfter: nvidiaSmi(), failures });
  progress(`[calibrate] wrote ${done} samples to ${opts.out} in ${totalS.toFixed(1)} s (${failed} failed${truncated ? ', truncated by the budget' : ''})`);
  return { samples: done, skipped: cases.length - done, truncated };
}
