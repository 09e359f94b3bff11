// Fits a profile's `power` section (sim/cost/power.ts) from the power microbenchmark's output
// (calibration/power-bench.ts). The data is the benchmark's JSON; this module reads no clock and
// runs no kernel.
//
// The benchmark's timeline is replayed through the model exactly as the simulator applies it: the
// GPU starts idle (heat 0), every compute burst is a step with the compute kernel's share, every
// memory-bound stretch lets the heat decay, and each burst's predicted time is the hot time ×
// (1 − share × (1 − speed(heat at its midpoint))). Hot time: the compute kernel's time per call
// in the second half of the 100% duty level, the state the kernel microbenchmarks (run back to
// back) measure. speed is piecewise linear over knots in heat; for each τ of a log grid (1 ms to
// 5 s) the knot values are a linear least-squares fit over every burst (the heat follows the
// measured times), then capped at 1 and made non-decreasing (pooled adjacent violators); the τ
// with the smallest relative rms error wins.
import { detDecay, detExp, detLn } from './det-math.js';
import { computeShare, speedAt, type PowerProfile } from './power.js';
import { round } from './profile-fit.js';

export type PowerRecord = readonly [computeMs: number, computeCalls: number, memoryMs: number, memoryCalls: number];

/** What the fit reads of calibration/power-bench.ts's output (format stratos-power-bench/1). */
export interface PowerBenchData {
  readonly format: string;
  readonly device: string;
  readonly command: string;
  readonly gemm: { readonly computeRows: number };
  readonly phases: readonly { readonly name: string; readonly duty: number; readonly records: readonly PowerRecord[] }[];
}

export interface PowerFitResult {
  readonly profile: PowerProfile;
  /** Per phase: measured and predicted compute time per call over the second half, over the hot time. */
  readonly phases: readonly { readonly name: string; readonly measured: number; readonly predicted: number }[];
  /** Relative rms error of every burst's predicted time. */
  readonly rmsError: number;
}

export class PowerFitError extends Error {
  readonly code = 'power_fit' as const;
  constructor(message: string) {
    super(message);
    this.name = 'PowerFitError';
  }
}

const secondHalf = <T>(xs: readonly T[]): readonly T[] => xs.slice(Math.floor(xs.length / 2));

function perCallMs(records: readonly PowerRecord[]): number {
  let ms = 0;
  let calls = 0;
  for (const r of records) {
    ms += r[0];
    calls += r[1];
  }
  return ms / calls;
}

/** Pooled adjacent violators: the closest non-decreasing sequence (least squares, equal weights). */
function nonDecreasing(ys: readonly number[]): number[] {
  const blocks: { sum: number; n: number }[] = [];
  for (const y of ys) {
    blocks.push({ sum: y, n: 1 });
    // Bound: merges at most ys.length times in all.
    while (blocks.length > 1 && blocks[blocks.length - 2].sum / blocks[blocks.length - 2].n > blocks[blocks.length - 1].sum / blocks[blocks.length - 1].n) {
      const b = blocks.pop()!;
      blocks[blocks.length - 1].sum += b.sum;
      blocks[blocks.length - 1].n += b.n;
    }
  }
  return blocks.flatMap((b) => Array.from({ length: b.n }, () => b.sum / b.n));
}

/** Solves the symmetric system a x = b (Gaussian elimination with partial pivoting). */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    for (let r = 0; r < n; r++) {
      if (r === c || m[c][c] === 0) continue;
      const f = m[r][c] / m[c][c];
      for (let k = c; k <= n; k++) m[r][k] -= f * m[c][k];
    }
  }
  return m.map((row, i) => (row[i] !== 0 ? row[n] / row[i] : 0));
}

/** Hat-function weights of heat h over the knots (two neighbours; held beyond the ends). */
function hat(knots: readonly number[], h: number): number[] {
  const w = new Array<number>(knots.length).fill(0);
  if (h <= knots[0]) w[0] = 1;
  else if (h >= knots[knots.length - 1]) w[knots.length - 1] = 1;
  else {
    let i = 1;
    while (knots[i] < h) i++; // bounded by the knot count
    const f = (h - knots[i - 1]) / (knots[i] - knots[i - 1]);
    w[i - 1] = 1 - f;
    w[i] = f;
  }
  return w;
}

interface Burst {
  readonly phase: number;
  /** Heat at the burst's midpoint (given τ), and the measured time over the hot time. */
  readonly mid: number;
  readonly ratio: number;
}

/** Replays the timeline at τ: each burst's midpoint heat, the heat following the measured times. */
function replay(bench: PowerBenchData, share: number, hotMs: number, tauMs: number): Burst[] {
  const out: Burst[] = [];
  let heat = 0;
  bench.phases.forEach((p, phase) => {
    for (const r of p.records) {
      const priceMs = hotMs * r[1];
      const mid = share + (heat - share) * detDecay(priceMs / (2 * tauMs));
      out.push({ phase, mid, ratio: r[0] / priceMs });
      heat = share + (heat - share) * detDecay(r[0] / tauMs);
      heat *= detDecay(r[2] / tauMs);
    }
  });
  return out;
}

/** Fits the power section; `ridgeRows` = the GPU's peak FLOP/s ÷ peak bytes/s (the profile's peaks). */
export function fitPower(bench: PowerBenchData, ridgeRows: number, source: string): PowerFitResult {
  if (bench.format !== 'stratos-power-bench/1') throw new PowerFitError(`${source}: format ${JSON.stringify(bench.format)}: expected "stratos-power-bench/1"`);
  const share = computeShare(bench.gemm.computeRows, ridgeRows);
  const full = bench.phases.find((p) => p.name.startsWith('duty ') && p.duty === 1);
  if (bench.phases[0]?.name !== 'cold' || full === undefined || bench.phases.length < 4) throw new PowerFitError(`${source}: needs the cold phase first and at least 3 duty levels including 1`);
  for (const p of bench.phases) {
    if (p.records.length < 4) throw new PowerFitError(`${source}: phase ${p.name} has ${p.records.length} records (need 4)`);
  }
  const hotMs = perCallMs(secondHalf(full.records));
  const knots = [0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 1].map((f) => f * share);
  const fitAt = (tauMs: number): { speed: number[]; err: number; bursts: Burst[] } => {
    const bursts = replay(bench, share, hotMs, tauMs);
    // ratio − (1 − share) = share × Σ w_j v_j: normal equations with a small ridge toward 1.
    const k = knots.length;
    const a = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    const b = new Array<number>(k).fill(0);
    for (const x of bursts) {
      const w = hat(knots, x.mid);
      const y = (x.ratio - (1 - share)) / share;
      for (let i = 0; i < k; i++) {
        b[i] += w[i] * y;
        for (let j = 0; j < k; j++) a[i][j] += w[i] * w[j];
      }
    }
    for (let i = 0; i < k; i++) {
      a[i][i] += 1e-6;
      b[i] += 1e-6;
    }
    const speed = nonDecreasing(solve(a, b).map((v) => Math.min(1, v)));
    let sq = 0;
    for (const x of bursts) {
      const w = hat(knots, x.mid);
      let s = 0;
      for (let i = 0; i < k; i++) s += w[i] * speed[i];
      sq += ((1 - share * (1 - s) - x.ratio) / x.ratio) ** 2;
    }
    return { speed, err: Math.sqrt(sq / bursts.length), bursts };
  };
  let best = { tauMs: 1, ...fitAt(1) };
  // Bound: 240 points of a log grid from 1 ms to 5 s.
  for (let i = 1; i <= 240; i++) {
    const tauMs = detExp((detLn(5000) * i) / 240);
    const f = fitAt(tauMs);
    if (f.err < best.err) best = { tauMs, ...f };
  }
  if (!(best.speed[0] > 0)) throw new PowerFitError(`${source}: the fitted speed at heat 0 is ${best.speed[0]}: the data does not fit the model`);
  const profile: PowerProfile = {
    tauUs: Math.round(best.tauMs * 1000),
    heat: knots.map((x) => round(x, 4)),
    speed: best.speed.map((x) => round(x, 4)),
    provenance: {
      source,
      device: bench.device,
      command: bench.command,
      method: 'sim/cost/power-fit.ts: the benchmark timeline replayed through the model; speed knots by least squares per tau, tau by the smallest relative rms error',
      computeShare: round(share, 4),
      ridgeRows: round(ridgeRows, 2),
      hotComputeMsPerCall: round(hotMs, 5),
      rmsError: round(best.err, 4),
    },
  };
  const phases = bench.phases.map((p, i) => {
    const xs = secondHalf(best.bursts.filter((x) => x.phase === i));
    const predicted = xs.reduce((a, x) => a + (1 - share * (1 - speedAt(profile, x.mid))), 0) / xs.length;
    return { name: p.name, measured: perCallMs(secondHalf(p.records)) / hotMs, predicted };
  });
  return { profile, phases, rmsError: best.err };
}
