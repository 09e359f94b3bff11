import type { Rng } from '../kernel/rng.js';

/** Standard normal by Box–Muller (one of the pair; simpler to keep streams aligned). */
export function normal(rng: Rng): number {
  let u = rng();
  while (u === 0) u = rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function exponential(rng: Rng, mean: number): number {
  return -Math.log(1 - rng()) * mean;
}

/** Gamma(shape k, scale θ) by Marsaglia–Tsang; k < 1 uses the boost Gamma(k+1)·U^(1/k). */
export function gamma(rng: Rng, shape: number, scale: number): number {
  if (shape < 1) {
    const boosted = gamma(rng, shape + 1, scale);
    let u = rng();
    while (u === 0) u = rng();
    return boosted * Math.pow(u, 1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (let attempt = 0; attempt < 1000; attempt++) {
    const x = normal(rng);
    const v0 = 1 + c * x;
    if (v0 <= 0) continue;
    const v = v0 * v0 * v0;
    const u = rng();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v * scale;
  }
  throw new Error(`gamma sampler did not converge for shape ${shape}`);
}

/** Zipf over ranks 0..n-1 with exponent s, by inverse CDF over precomputed weights. */
export class Zipf {
  private readonly cdf: Float64Array;

  constructor(
    readonly n: number,
    readonly s: number,
  ) {
    this.cdf = new Float64Array(n);
    let sum = 0;
    for (let k = 0; k < n; k++) {
      sum += 1 / Math.pow(k + 1, s);
      this.cdf[k] = sum;
    }
    for (let k = 0; k < n; k++) this.cdf[k] /= sum;
  }

  sample(rng: Rng): number {
    const u = rng();
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cdf[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
