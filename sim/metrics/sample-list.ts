import { bucketOf } from './weighted-samples.js';

/**
 * Unweighted samples (microseconds) kept as a plain list: what per-request latencies need, one
 * value per request. Same answers as a WeightedSamples holding the same values (percentiles over
 * the same buckets, nearest-rank; the mean exact for integer values), but adding is a push and
 * percentiles are one typed-array sort instead of a map update per sample.
 */
export class SampleList {
  private readonly values: number[] = [];
  private sum = 0;
  /** Whether every value is an integer in [0, 2^32): then the buckets sort as 32-bit integers (faster). */
  private allUint32 = true;
  /** Bucketed values in ascending order, built on first use after a change. */
  private sorted: Float64Array | Uint32Array | null = null;

  get size(): number {
    return this.values.length;
  }

  add(value: number): void {
    this.values.push(value);
    this.sum += value;
    if (!(value >= 0 && value < 2 ** 32 && Math.floor(value) === value)) this.allUint32 = false;
    this.sorted = null;
  }

  mean(): number {
    return this.values.length === 0 ? NaN : this.sum / this.values.length;
  }

  /** Nearest-rank percentiles for sorted `ps` in [0, 100]; NaN when empty. */
  percentiles(ps: readonly number[]): number[] {
    const n = this.values.length;
    if (n === 0) return ps.map(() => NaN);
    if (this.sorted === null) {
      // bucketOf maps an integer in [0, 2^32) to one no larger, so the narrow array holds it exactly.
      const sorted = this.allUint32 ? new Uint32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) sorted[i] = bucketOf(this.values[i]);
      this.sorted = sorted.sort();
    }
    const sorted = this.sorted;
    return ps.map((p) => sorted[Math.max(1, Math.ceil((p / 100) * n)) - 1]);
  }
}
