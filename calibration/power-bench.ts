// How the GPU's power management changes the speed of compute-bound work: the microbenchmark
// behind the profile's `power` section (sim/cost/power.ts). Under a sustained compute-heavy load
// the H200 holds its 700 W cap by lowering the SM clock (the kernel microbenchmarks, which run
// back to back, measure that state); with compute in short bursts between memory-bound work it
// runs at its full boost clock and compute-bound kernels finish sooner.
//
// Phases, on one stream: a compute kernel (a prefill-sized GEMM, 2,048 × 22,016 × 4,096 bf16) and
// a memory-bound one (the same weights at 8 rows, a decode-sized GEMM, weights rotating through
// copies larger than L2).
//   cold: after `idleS` seconds idle, compute back to back for `coldS` seconds, timed in bursts
//         of `burst` calls: how fast the clock comes down (the time constant).
//   duty: periods of `periodMs`, a share D of it compute and the rest memory-bound work, for
//         `levelS` seconds per D (ascending): the steady compute time at each duty.
// Every burst is timed with CUDA events; host epoch milliseconds mark each phase so an
// nvidia-smi log taken beside it can be aligned. Usage (bundled, on the GPU machine):
//   node dist-power/power-bench.mjs OUT.json
import { writeFileSync } from 'node:fs';
import { gpu, type DeviceBuffer, type GpuOps, type Stream } from '../native/index.js';

const GEMM_N = 22016;
const GEMM_K = 4096;
const COMPUTE_ROWS = 2048;
const MEMORY_ROWS = 8;
const BF16 = 2;

export interface PowerBenchConfig {
  readonly idleS: number;
  readonly coldS: number;
  readonly burst: number;
  readonly periodMs: number;
  readonly levelS: number;
  readonly duties: readonly number[];
}

export const POWER_BENCH_CONFIG: PowerBenchConfig = {
  idleS: 4,
  coldS: 3,
  burst: 8,
  periodMs: 50,
  levelS: 4,
  duties: [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1],
};

/** One timed period (duty) or burst (cold): compute time and calls, memory-bound time and calls. */
export type PowerRecord = [computeMs: number, computeCalls: number, memoryMs: number, memoryCalls: number];

export interface PowerPhase {
  readonly name: string;
  /** Target compute share of the period (1 for cold). */
  readonly duty: number;
  readonly startEpochMs: number;
  readonly endEpochMs: number;
  readonly records: PowerRecord[];
}

export interface PowerBenchResult {
  readonly format: 'stratos-power-bench/1';
  readonly device: string;
  readonly command: string;
  readonly config: PowerBenchConfig;
  readonly gemm: { readonly n: number; readonly k: number; readonly computeRows: number; readonly memoryRows: number };
  /** Warm eager estimates used to size the periods, ms per call. */
  readonly estimateComputeMs: number;
  readonly estimateMemoryMs: number;
  readonly phases: PowerPhase[];
  /**
   * Prefill-sized GEMMs of the 7B and 13B layers timed cool (after 1 s idle and then 5 ms of
   * memory-bound calls, three times) and hot (after 300 ms back to back), ms per call: what the
   * profile's GEMM tables should be compared with. The memory-bound calls bring the clock up from
   * idle without heating the GPU: a compute call straight after idle also times the clock's ramp
   * (the 2026-12-07 runs read "hot" faster than "cool" so).
   */
  readonly shapes: { readonly m: number; readonly n: number; readonly k: number; readonly coolMs: number[]; readonly hotMs: number[] }[];
}

/** Prefill-sized dense-layer GEMMs (m, n, k): 7B gate/up and down, 13B gate/up and down, 13B q. */
export const SHAPE_CHECKS: readonly (readonly [number, number, number])[] = [
  [2048, 22016, 4096],
  [2048, 4096, 11008],
  [2048, 27648, 5120],
  [2048, 5120, 13824],
  [2048, 5120, 5120],
];

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

class Work {
  private readonly a: DeviceBuffer; // [2048, 4096] activations
  private readonly weights: DeviceBuffer[]; // each [22016, 4096]
  private readonly c: DeviceBuffer; // [2048, 22016]
  private next = 0;

  constructor(private readonly g: GpuOps, private readonly stream: Stream) {
    // Sized for every shape checked: [2048, <= 13824] activations, [<= 27648, <= 13824] weights.
    this.a = g.alloc(COMPUTE_ROWS * 13824 * BF16);
    g.fill(this.a, 0x3c);
    // 4 copies of 180 MB: a decode GEMM reads its weights from HBM, not from the 50 MB L2.
    this.weights = Array.from({ length: 4 }, () => {
      const w = g.alloc(Math.max(GEMM_N * GEMM_K, 27648 * 5120, 5120 * 13824) * BF16);
      g.fill(w, 0x3c);
      return w;
    });
    this.c = g.alloc(COMPUTE_ROWS * 27648 * BF16);
  }

  call(rows: number, n = GEMM_N, k = GEMM_K): void {
    const b = this.weights[this.next];
    this.next = (this.next + 1) % this.weights.length;
    this.g.gemm({ dtype: 'bf16', m: rows, n, k, a: this.a, b, c: this.c, stream: this.stream });
  }

  free(): void {
    for (const b of [this.a, this.c, ...this.weights]) b.free();
  }
}

/** Runs the phases on `g` (the addon's GPU backend; tests pass a fake), sleeping with `sleep`. */
export function runPowerBench(g: GpuOps, config: PowerBenchConfig, command: string, log: (line: string) => void, sleep: (ms: number) => void = sleepMs): PowerBenchResult {
  const stream = g.createStream();
  const work = new Work(g, stream);
  const events: bigint[] = [];
  const event = (i: number): bigint => {
    while (events.length <= i) events.push(g.createEvent());
    return events[i];
  };
  const timeCalls = (rows: number, calls: number): number => {
    g.record(event(0), stream);
    for (let i = 0; i < calls; i++) work.call(rows);
    g.record(event(1), stream);
    g.sync(stream);
    return g.elapsedMs(event(0), event(1)) / calls;
  };
  // Warm-up: cuBLASLt picks its algorithms on the first calls of each shape.
  timeCalls(COMPUTE_ROWS, 20);
  timeCalls(MEMORY_ROWS, 200);
  const estimateComputeMs = timeCalls(COMPUTE_ROWS, 40);
  const estimateMemoryMs = timeCalls(MEMORY_ROWS, 400);
  log(`estimates: compute ${estimateComputeMs.toFixed(4)} ms, memory ${estimateMemoryMs.toFixed(4)} ms per call`);

  const phases: PowerPhase[] = [];
  // Queues `n` periods, each [e0] compute [e1] memory [e2], then waits once and reads them all.
  const runPeriods = (name: string, duty: number, n: number, computeCalls: number, memoryCalls: number): void => {
    const startEpochMs = Date.now();
    for (let p = 0; p < n; p++) {
      g.record(event(3 * p), stream);
      for (let i = 0; i < computeCalls; i++) work.call(COMPUTE_ROWS);
      g.record(event(3 * p + 1), stream);
      for (let i = 0; i < memoryCalls; i++) work.call(MEMORY_ROWS);
      g.record(event(3 * p + 2), stream);
    }
    g.sync(stream);
    const records: PowerRecord[] = [];
    for (let p = 0; p < n; p++) {
      const computeMs = computeCalls > 0 ? g.elapsedMs(event(3 * p), event(3 * p + 1)) : 0;
      const memoryMs = memoryCalls > 0 ? g.elapsedMs(event(3 * p + 1), event(3 * p + 2)) : 0;
      records.push([computeMs, computeCalls, memoryMs, memoryCalls]);
    }
    phases.push({ name, duty, startEpochMs, endEpochMs: Date.now(), records });
    const last = records.slice(Math.floor(records.length / 2));
    const perCall = last.reduce((a, r) => a + r[0], 0) / last.reduce((a, r) => a + r[1], 0);
    log(`${name}: ${n} periods, compute ${perCall.toFixed(4)} ms per call over the second half (${(perCall / estimateComputeMs).toFixed(3)} of the warm estimate)`);
  };

  sleep(config.idleS * 1000);
  const coldBursts = Math.ceil((config.coldS * 1000) / (config.burst * estimateComputeMs));
  runPeriods('cold', 1, coldBursts, config.burst, 0);
  for (const duty of config.duties) {
    const computeCalls = Math.max(1, Math.round((duty * config.periodMs) / estimateComputeMs));
    const memoryCalls = Math.round(((1 - duty) * config.periodMs) / estimateMemoryMs);
    const n = Math.ceil((config.levelS * 1000) / config.periodMs);
    runPeriods(`duty ${duty}`, duty, n, computeCalls, memoryCalls);
  }
  const shapes: PowerBenchResult['shapes'] = [];
  for (const [m, n, k] of SHAPE_CHECKS) {
    const one = (): number => {
      g.record(event(0), stream);
      work.call(m, n, k);
      g.record(event(1), stream);
      g.sync(stream);
      return g.elapsedMs(event(0), event(1));
    };
    one(); // the algorithm pick
    const coolMs: number[] = [];
    const rampCalls = Math.max(1, Math.ceil(5 / Math.max(estimateMemoryMs, 1e-3)));
    for (let i = 0; i < 3; i++) {
      sleep(1000);
      for (let j = 0; j < rampCalls; j++) work.call(MEMORY_ROWS);
      coolMs.push(one());
    }
    // 300 ms of device time back to back (bounded: 300 ms of 20-call batches stops long before).
    g.record(event(2), stream);
    for (let batch = 0; batch < 10_000; batch++) {
      for (let i = 0; i < 20; i++) work.call(COMPUTE_ROWS);
      g.record(event(3), stream);
      g.sync(stream);
      if (g.elapsedMs(event(2), event(3)) >= 300) break;
    }
    const hotMs: number[] = [];
    for (let i = 0; i < 10; i++) hotMs.push(one());
    shapes.push({ m, n, k, coolMs, hotMs });
    const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
    log(`gemm ${m}x${n}x${k}: cool ${med(coolMs).toFixed(4)} ms, hot ${med(hotMs).toFixed(4)} ms (hot / cool ${(med(hotMs) / med(coolMs)).toFixed(3)})`);
  }
  for (const e of events) g.destroyEvent(e);
  work.free();
  g.destroyStream(stream);
  return {
    format: 'stratos-power-bench/1',
    device: g.status.name ?? 'unknown',
    command,
    config,
    gemm: { n: GEMM_N, k: GEMM_K, computeRows: COMPUTE_ROWS, memoryRows: MEMORY_ROWS },
    estimateComputeMs,
    estimateMemoryMs,
    phases,
    shapes,
  };
}

if (process.argv[1] !== undefined && /power-bench\.(mjs|ts)$/.test(process.argv[1])) {
  const out = process.argv[2];
  if (out === undefined) {
    process.stderr.write('usage: node dist-power/power-bench.mjs OUT.json\n');
    process.exit(2);
  }
  const result = runPowerBench(gpu(), POWER_BENCH_CONFIG, `node dist-power/power-bench.mjs ${out}`, (l) => console.log(`[power] ${l}`));
  writeFileSync(out, JSON.stringify(result));
}
