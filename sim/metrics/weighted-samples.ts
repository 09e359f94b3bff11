/**
 * A multiset of integer values (microseconds) with counts: a step's gap shared by n sequences is
 * one entry with count n, so recording inter-token latency costs O(1) per step, not O(n).
 * Percentiles are nearest-rank over the sorted distinct values, so insertion order never matters.
 */
export class WeightedSamples {
  private readonly counts = new Map<number, number>();
  private numSamples = 0;
  private sum = 0;

  get size(): number {
    return this.numSamples;
  }

  add(value: number, count = 1): void {
    if (count <= 0) return;
    this.counts.set(value, (this.counts.get(value) ?? 0) + count);
    this.numSamples += count;
    this.sum += value * count;
  }

  addAll(other: WeightedSamples): void {
    for (const [value, count] of other.counts) this.add(value, count);
  }

  mean(): number {
    return this.numSamples === 0 ? NaN : this.sum / this.numSamples;
  }

  /** Nearest-rank percentiles for sorted `ps` in [0, 100]; NaN when empty. */
  percentiles(ps: readonly number[]): number[] {
    if (this.numSamples === 0) return ps.map(() => NaN);
    const values = [...this.counts.keys()].sort((a, b) => a - b);
    const out: number[] = [];
    let v = 0;
    let seen = this.counts.get(values[0])!;
    for (const p of ps) {
      const rank = Math.max(1, Math.ceil((p / 100) * this.numSamples));
      while (seen < rank) seen += this.counts.get(values[++v])!;
      out.push(values[v]);
    }
    return out;
  }

  max(): number {
    let m = -Infinity;
    for (const k of this.counts.keys()) if (k > m) m = k;
    return this.numSamples === 0 ? NaN : m;
  }
}

/** Nearest-rank percentiles of plain values (sorted copy). */
export function percentilesOf(values: readonly number[], ps: readonly number[]): number[] {
  const w = new WeightedSamples();
  for (const v of values) w.add(v);
  return w.percentiles(ps);
}
